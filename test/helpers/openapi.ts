/**
 * A REST client that checks every answer against the OpenAPI description the
 * server publishes: the status must be documented for the operation, and a
 * JSON body must match the documented schema. Call {@link publishedSpec} (in
 * `beforeAll`) before {@link checkedApi}.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { expect } from "vitest";
import { createCollabServer } from "../../server/src/app.ts";

export type OpenApi = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }>
  >;
  components: { schemas: Record<string, object> };
};

let spec: OpenApi | null = null;
const ajv = new Ajv2020({ strict: false, validateFormats: false });

/** The description as a server publishes it at /api/v1/openapi.json (fetched once per file). */
export async function publishedSpec(): Promise<OpenApi> {
  if (spec !== null) return spec;
  const published = await createCollabServer({
    config: { host: "127.0.0.1", port: 0, store: "memory", logLevel: "silent" },
  });
  const { url } = await published.listen();
  spec = (await (await fetch(`${url}/api/v1/openapi.json`)).json()) as OpenApi;
  await published.close();
  return spec;
}

/** The OpenAPI path template that `path` (under /api/v1) matches. */
function templateOf(described: OpenApi, path: string): string | undefined {
  return Object.keys(described.paths).find((template) =>
    new RegExp(`^${template.replace(/\{\w+\}/g, "[^/]+")}$`).test(path),
  );
}

export interface Api {
  readonly url: string;
  call(
    method: string,
    path: string,
    init?: { body?: string; type?: string; token?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: unknown; text: string; headers: Headers }>;
}

/** A client of the API at `base` whose answers are checked against the published description. */
export function checkedApi(base: string, defaults: { token?: string } = {}): Api {
  return {
    url: base,
    async call(method, path, init = {}) {
      if (spec === null) throw new Error("call publishedSpec() before checkedApi");
      const headers: Record<string, string> = { ...init.headers };
      const token = init.token ?? defaults.token;
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      if (init.type !== undefined) headers["content-type"] = init.type;
      const response = await fetch(`${base}/api/v1${path}`, { method, headers, body: init.body });
      const text = await response.text();
      const type = response.headers.get("content-type") ?? "";
      const body = type.startsWith("application/json") ? (JSON.parse(text) as unknown) : text;
      const template = templateOf(spec, path.split("?")[0] ?? "");
      if (template !== undefined) {
        const operation = spec.paths[template]?.[method.toLowerCase()];
        if (operation !== undefined) {
          const documented = operation.responses[String(response.status)];
          expect(
            documented,
            `${method} ${template} answered ${response.status}, which the OpenAPI description does not list`,
          ).toBeDefined();
          const schema = documented?.content?.["application/json"]?.schema;
          if (schema !== undefined && type.startsWith("application/json")) {
            const validate = ajv.compile({ ...schema, components: spec.components });
            expect(
              validate(body),
              `${method} ${template} ${response.status}: ${ajv.errorsText(validate.errors)}`,
            ).toBe(true);
          }
        }
      }
      return { status: response.status, body, text, headers: response.headers };
    },
  };
}

/** A JSON request body. */
export function json(body: unknown) {
  return { body: JSON.stringify(body), type: "application/json" };
}
