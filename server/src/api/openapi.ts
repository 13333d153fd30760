/**
 * The OpenAPI 3.1 description of /api/v1, generated from the route table and
 * its zod schemas (zod's JSON Schema output is the dialect OpenAPI 3.1 uses).
 */
import { z } from "zod";
import { ROUTES, type Route } from "./routes.ts";
import { API_SCHEMAS, ErrorBody } from "./schemas.ts";

/** The error answers a route can give besides its successes. */
export function errorStatuses(route: Route): number[] {
  const statuses = [400, 401, 403];
  if (route.path.includes("{name}")) statuses.push(404);
  if (route.method !== "GET") statuses.push(409);
  if (route.operationId === "createThread") statuses.push(422);
  if (route.operationId === "putDocument") statuses.push(412);
  if (route.body !== undefined) statuses.push(413, 415);
  statuses.push(500, 503);
  return statuses;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid name, query, body or content",
  401: "Missing or invalid credentials",
  403: "The credentials do not allow this",
  404: "No such document, version, thread, comment or route",
  409: "Conflict: a version with that name exists, the document has the most named versions it may keep, it is being deleted, a restore's name has a document, or a quote matches several places",
  412: "If-None-Match: * was sent and the document exists",
  413: "The body is larger than MAX_BODY_BYTES (a Word file: 8 MiB), or its content unpacks or expands too large",
  415: "The Content-Type is not accepted",
  422: "The quote matches no text of the document",
  500: "Internal error",
  503: "The store is unavailable or the server is at its document limit",
};

const PARAMETER_DESCRIPTIONS: Record<string, string> = {
  name: "The document name, percent-encoded",
  id: "The version id",
  thread: "The thread id",
  comment: "The comment id",
};

export function buildOpenApi(): object {
  const { schemas: components } = z.toJSONSchema(API_SCHEMAS, {
    target: "draft-2020-12",
    uri: (id) => `#/components/schemas/${id}`,
  });
  for (const schema of Object.values(components)) delete schema.$schema;
  const ref = (schema: z.ZodType): object => {
    const id = API_SCHEMAS.get(schema)?.id;
    if (id === undefined)
      throw new Error("API body and answer schemas must be registered in API_SCHEMAS");
    return { $ref: `#/components/schemas/${id}` };
  };
  const errorRef = ref(ErrorBody);

  const paths: Record<string, Record<string, object>> = {};
  for (const route of ROUTES) {
    const parameters = [
      ...[...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
        name,
        in: "path",
        required: true,
        schema: { type: "string" },
        description: PARAMETER_DESCRIPTIONS[name ?? ""] ?? name,
      })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => {
        const json = z.toJSONSchema(schema as z.ZodType, {
          target: "draft-2020-12",
          io: "input",
        }) as Record<string, unknown>;
        const { $schema: _ignored, description, ...rest } = json;
        return { name, in: "query", required: false, schema: rest, description };
      }),
    ];
    const responses: Record<string, object> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      const content: Record<string, object> = {};
      if (response.schema !== undefined)
        content["application/json"] = { schema: ref(response.schema) };
      for (const media of response.media ?? []) content[media] ??= {};
      responses[status] =
        Object.keys(content).length === 0
          ? { description: response.description }
          : { description: response.description, content };
    }
    for (const status of errorStatuses(route)) {
      responses[String(status)] = {
        description: ERROR_DESCRIPTIONS[status] ?? "Error",
        content: { "application/json": { schema: errorRef } },
      };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      parameters,
      responses,
    };
    if (route.body !== undefined) {
      operation.requestBody = {
        required: route.body.required,
        content: Object.fromEntries(
          route.body.types.map((type) => [
            type,
            type === "application/json" && route.body?.schema !== undefined
              ? { schema: ref(route.body.schema) }
              : { schema: { type: "string" } },
          ]),
        ),
      };
    }
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, object>)[route.method.toLowerCase()] = operation;
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "collab-docs document API",
      version: "1",
      description:
        "Read, write and version collaborative documents. Changes reach connected editors live and are stored like any edit.",
    },
    servers: [{ url: "/api/v1" }],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description:
            "API_SECRET for everything, or an access token (JWT) for the documents it grants. Not needed in anonymous loopback mode.",
        },
      },
    },
  };
}
