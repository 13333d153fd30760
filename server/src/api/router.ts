/**
 * Serves /api/v1: matches a request to a route of the table (api/routes.ts),
 * checks the caller, the document name and the body (media type, size),
 * runs the handler and writes its answer. Every failure is the one JSON
 * error shape with its status.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { AttachmentService } from "../attachments/service.ts";
import type { LinkSigner } from "../attachments/signing.ts";
import type { Comments } from "../comments/comments.ts";
import type { ContentParser } from "../documents/parser.ts";
import type { DocumentService } from "../documents/service.ts";
import type { Logger } from "../observability/logger.ts";
import type { DocumentStore } from "../persistence/store.ts";
import { checkDocumentName } from "../protocol/names.ts";
import { authorize, type Caller, type CallerOptions, identify } from "./caller.ts";
import { contentDisposition } from "./disposition.ts";
import { ApiError, toApiError } from "./errors.ts";
import { buildOpenApi } from "./openapi.ts";
import { type Reply, ROUTES, type Route } from "./routes.ts";
import { BINARY_CONTENT_TYPES, CONTENT_TYPES, type ContentType } from "./schemas.ts";

export interface ApiOptions extends CallerOptions {
  readonly service: DocumentService;
  readonly comments: Comments;
  readonly store: DocumentStore;
  readonly logger: Logger;
  /** The largest body, except a file (a Word file), whose limit is its format's in `parser`. */
  readonly maxBodyBytes: number;
  readonly parser: ContentParser;
  readonly attachments: AttachmentService;
  readonly links: LinkSigner;
}

/** The most bytes a body may have, and what the refusal names as the limit. */
interface BodyLimit {
  readonly bytes: number;
  readonly name: string;
  /** The limit as the refusal states it, when not `bytes` (a file's, without the multipart framing). */
  readonly shown?: number;
  /** What is too large. @default "body" */
  readonly what?: string;
}

interface CompiledRoute {
  readonly route: Route;
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  return { route, pattern: new RegExp(`^${source}$`), names };
}

/** Handles a request under /api/v1; `path` is the URL path without the prefix. */
export function createApi(
  options: ApiOptions,
): (
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  query: URLSearchParams,
) => Promise<void> {
  const compiled = ROUTES.map(compile);
  const openApi = JSON.stringify(buildOpenApi());

  return async (request, response, path, query) => {
    try {
      if (path === "/openapi.json" && (request.method === "GET" || request.method === "HEAD")) {
        response.writeHead(200, { "content-type": "application/json; charset=utf-8" });
        response.end(request.method === "HEAD" ? undefined : openApi);
        return;
      }
      const matches = compiled
        .map((entry) => ({ entry, match: entry.pattern.exec(path) }))
        .filter((candidate) => candidate.match !== null);
      if (matches.length === 0) throw new ApiError(404, "not_found", `no API route ${path}`);
      const method = request.method === "HEAD" ? "GET" : request.method;
      const found = matches.find(({ entry }) => entry.route.method === method);
      if (found === undefined) {
        response.setHeader(
          "allow",
          [...new Set(matches.map(({ entry }) => entry.route.method))].join(", "),
        );
        throw new ApiError(
          405,
          "method_not_allowed",
          `${request.method} is not allowed on ${path}`,
        );
      }
      const { route, names } = found.entry;
      const params = decodeParams(names, found.match ?? []);
      const caller =
        route.signed === true && query.has("signature")
          ? signedCaller(options.links, params.name ?? "", query)
          : await identify(request, options);
      if (route.need !== "list") authorize(caller, route.need, params.name);
      else if (caller.kind === "anonymous") authorize(caller, "admin");
      const body =
        route.body === undefined || (!route.body.required && hasNoBody(request))
          ? null
          : await readBody(request, route, (type) => bodyLimit(route, type, options));
      const reply = await route.handle({
        caller,
        params,
        query,
        headers: request.headers,
        body,
        service: options.service,
        comments: options.comments,
        store: options.store,
        attachments: options.attachments,
        links: options.links,
        parse: (body, format) => options.parser.parseWithPictures(body, format),
      });
      send(response, reply, request.method === "HEAD", request);
    } catch (error) {
      const failure = toApiError(error);
      if (failure.status === 500) options.logger.error({ err: error, path }, "API request failed");
      if (!response.headersSent) {
        // Do not read on through an oversized body: close the connection after answering.
        if (failure.status === 413) response.setHeader("connection", "close");
        sendError(response, failure);
      } else {
        response.destroy();
      }
      // An unread body would otherwise be parsed as the next request on this connection.
      if (!request.complete) request.resume();
    }
  };
}

function decodeParams(
  names: readonly string[],
  match: RegExpExecArray | readonly string[],
): Record<string, string> {
  const params: Record<string, string> = {};
  names.forEach((name, index) => {
    const raw = match[index + 1] ?? "";
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      throw new ApiError(
        400,
        "invalid_name",
        `the ${name} in the path is not valid percent-encoding`,
      );
    }
    if (name === "name") {
      const problem = checkDocumentName(value);
      if (problem !== null) throw new ApiError(400, "invalid_name", problem);
    }
    params[name] = value;
  });
  return params;
}

/** A request that sends no body at all (an optional body left out). */
function hasNoBody(request: IncomingMessage): boolean {
  const length = request.headers["content-length"];
  return (
    request.headers["content-type"] === undefined &&
    request.headers["transfer-encoding"] === undefined &&
    (length === undefined || length.trim() === "0")
  );
}

/**
 * The limit on a body of media type `type`: a file (a Word file) is parsed in the worker
 * and has its format's own limit (ContentLimits.maxBytes), whatever MAX_BODY_BYTES is;
 * every other body has MAX_BODY_BYTES.
 */
function bodyLimit(route: Route, type: string, options: ApiOptions): BodyLimit {
  if (route.body?.limit === "attachment") {
    const file = options.attachments.limits.maxBytes;
    return {
      bytes: file + MULTIPART_OVERHEAD,
      shown: file,
      name: "MAX_ATTACHMENT_BYTES",
      what: "file",
    };
  }
  const format = BINARY_CONTENT_TYPES.has(type) ? CONTENT_TYPES[type as ContentType] : null;
  return format === "docx"
    ? { bytes: options.parser.maxBytesOf(format), name: "a Word file may be" }
    : { bytes: options.maxBodyBytes, name: "MAX_BODY_BYTES" };
}

/** Reads the body up to its limit, after checking its media type. */
async function readBody(
  request: IncomingMessage,
  route: Route,
  limitOf: (type: string) => BodyLimit,
): Promise<{ text: string; bytes: Uint8Array; type: string }> {
  const accepted = route.body?.types ?? [];
  const type = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const limit = limitOf(accepted.includes(type) ? type : "");
  const declared = Number(request.headers["content-length"] ?? Number.NaN);
  if (declared > limit.bytes) throw tooLarge(limit);
  if (!accepted.includes(type) && !accepted.includes("*/*")) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `Content-Type ${type === "" ? "(none)" : type} is not accepted here; send one of ${accepted.join(", ")}`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > limit.bytes) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  // A Word file or an upload is bytes: it is read as such, never as text.
  if (BINARY_CONTENT_TYPES.has(type) || route.body?.limit === "attachment") {
    return { text: "", bytes, type };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "bad_request", "the body is not valid UTF-8");
  }
  return { text, bytes, type };
}

/** Multipart framing allowed on top of an attachment's own bytes. */
const MULTIPART_OVERHEAD = 64 * 1024;

function tooLarge(limit: BodyLimit): ApiError {
  return new ApiError(
    413,
    "payload_too_large",
    `the ${limit.what ?? "body"} is larger than ${limit.name} (${limit.shown ?? limit.bytes} bytes)`,
  );
}

/** The caller a signed attachment link stands for: a reader of document `name`. */
function signedCaller(links: LinkSigner, name: string, query: URLSearchParams): Caller {
  const problem = links.check(name, query.get("expires") ?? "", query.get("signature") ?? "");
  if (problem !== null) throw new ApiError(403, "forbidden", problem);
  return { kind: "link", name };
}

function send(
  response: ServerResponse,
  reply: Reply,
  head: boolean,
  request: IncomingMessage,
): void {
  if ("raw" in reply) {
    response.writeHead(reply.status, reply.headers);
    const { raw } = reply;
    if (raw instanceof Readable) {
      if (head || request.method === "HEAD") {
        raw.destroy();
        response.end();
        return;
      }
      // A read that fails midway cuts the response (its length says it is short); a client
      // that goes away stops the read.
      pipeline(raw, response).catch(() => response.destroy());
      return;
    }
    response.end(head || request.method === "HEAD" ? undefined : raw);
    return;
  }
  const headers: Record<string, string> = { "cache-control": "no-store" };
  let body: string | Uint8Array | undefined;
  if ("json" in reply) {
    headers["content-type"] = "application/json; charset=utf-8";
    body = JSON.stringify(reply.json);
  } else if ("body" in reply) {
    headers["content-type"] = reply.type;
    body = reply.body;
    if (reply.filename !== undefined) {
      // A download, never shown inline.
      headers["content-disposition"] = contentDisposition("attachment", reply.filename);
    }
  }
  response.writeHead(reply.status, headers);
  response.end(head ? undefined : body);
}

export function sendError(response: ServerResponse, error: ApiError): void {
  response.writeHead(error.status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
  });
  response.end(JSON.stringify({ error: { code: error.code, message: error.message } }));
}
