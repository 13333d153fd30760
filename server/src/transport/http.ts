/**
 * HTTP routes on the same port as the WebSocket: health, readiness, metrics,
 * the REST API under /api/v1 (with CORS), the editor app and the start page.
 * Every error is JSON `{ "error": { "code", "message" } }`.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { API_PREFIX } from "../api/lazy.ts";
import type { Logger } from "../observability/logger.ts";
import type { DocumentStore } from "../persistence/store.ts";
import type { Gate } from "./gate.ts";
import { pageHeaders, setCommonHeaders, startPageHeaders } from "./headers.ts";
import { serveEditor } from "./static.ts";

/** Serves one API request; `path` is below /api/v1. */
export type ApiHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  query: URLSearchParams,
) => Promise<void>;

export interface HttpRoutesOptions {
  readonly store: DocumentStore;
  readonly metrics: { readonly registry: { contentType: string; metrics(): Promise<string> } };
  /** True once shutdown began: readiness fails so load balancers stop sending traffic. */
  readonly isShuttingDown: () => boolean;
  /** How long the readiness probe waits for its store write. @default 2_000 */
  readonly probeTimeoutMs?: number;
  /** The editor builds to serve. @default editor/dist of this checkout */
  readonly editorDist?: string;
  readonly api: ApiHandler;
  /** Decides which browser origins may call the API. */
  readonly gate: Gate;
  readonly logger?: Logger;
  /** Browser origins allowed to embed (frame) the app's pages, besides the server's own. @default [] */
  readonly allowedOrigins?: readonly string[];
  /** Bearer token `/metrics` requires; null leaves it open. @default null */
  readonly metricsToken?: string | null;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => Promise<void> | void;

export function createHttpHandler(options: HttpRoutesOptions): Handler {
  const routes: Record<string, Handler> = {
    "/healthz": (_request, response) => json(response, 200, { status: "ok" }),
    "/readyz": async (_request, response) => {
      const ready = await readiness(options);
      json(response, ready.ok ? 200 : 503, ready.body);
    },
    "/metrics": async (request, response) => {
      if (!metricsAllowed(request, options.metricsToken ?? null)) {
        response.setHeader("www-authenticate", 'Bearer realm="metrics"');
        return error(response, 401, "unauthorized", "send Authorization: Bearer <METRICS_TOKEN>");
      }
      const body = await options.metrics.registry.metrics();
      response.writeHead(200, { "content-type": options.metrics.registry.contentType });
      response.end(body);
    },
    "/": (_request, response) => {
      response.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        ...startPageHeaders(options.allowedOrigins ?? []),
      });
      response.end(START_PAGE);
    },
  };
  return async (request, response) => {
    setCommonHeaders(response);
    let path: string;
    try {
      path = new URL(request.url ?? "/", "http://localhost").pathname;
    } catch {
      return error(response, 400, "bad_request", "the request URL does not parse");
    }
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
      if (!admitApi(request, response, options.gate)) return;
      const query = new URL(request.url ?? "/", "http://localhost").searchParams;
      // The raw path: URL parsing would resolve "." and ".." segments, yet "." and ".."
      // (also as %2e%2e) are document names the API must reach like any other.
      const raw = (request.url ?? "/").split("?")[0] ?? "/";
      const below = raw.startsWith(API_PREFIX)
        ? raw.slice(API_PREFIX.length)
        : path.slice(API_PREFIX.length);
      return options.api(request, response, below, query);
    }
    const readOnly = request.method === "GET" || request.method === "HEAD";
    try {
      const page = pageHeaders(request, options.allowedOrigins ?? [], {
        framable: path !== "/trash",
      });
      if (readOnly && (await serveEditor(request, response, options.editorDist, page))) return;
    } catch (cause) {
      options.logger?.error({ err: cause }, "serving the editor failed");
      if (!response.headersSent)
        return error(response, 500, "internal", "internal error; see the server log");
    }
    const route = routes[path];
    if (route === undefined) return error(response, 404, "not_found", `no route for ${path}`);
    if (!readOnly) {
      response.setHeader("allow", "GET, HEAD");
      return error(
        response,
        405,
        "method_not_allowed",
        `${request.method} is not allowed on ${path}`,
      );
    }
    try {
      await route(request, response);
    } catch (cause) {
      options.logger?.error({ err: cause }, "HTTP request failed");
      if (!response.headersSent)
        error(response, 500, "internal", "internal error; see the server log");
      else response.destroy();
    }
  };
}

/**
 * The gate for the API: a Host refused against DNS rebinding and a foreign
 * origin not in ALLOWED_ORIGINS get 403; an allowed origin gets the CORS
 * headers, and its preflight is answered here. False when the request has
 * been answered.
 */
function admitApi(request: IncomingMessage, response: ServerResponse, gate: Gate): boolean {
  const host = gate.hostRefusal(request);
  if (host !== null) {
    error(response, host.status, host.code, host.message);
    request.resume();
    return false;
  }
  const origin = gate.foreignOrigin(request);
  if (origin === null) return true;
  response.setHeader("vary", "Origin");
  if (!gate.originAllowed(request)) {
    error(
      response,
      403,
      "origin_not_allowed",
      `origin ${origin} is not allowed; add it to ALLOWED_ORIGINS`,
    );
    request.resume();
    return false;
  }
  response.setHeader("access-control-allow-origin", request.headers.origin ?? origin);
  if (request.method !== "OPTIONS") return true;
  response.writeHead(204, {
    "access-control-allow-methods": "GET, HEAD, PUT, POST, DELETE",
    "access-control-allow-headers": "authorization, content-type",
    "access-control-max-age": "600",
  });
  response.end();
  return false;
}

/** Whether a `/metrics` request may read metrics: always without a token, else with `Bearer <token>`. */
function metricsAllowed(request: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
  const given = Buffer.from(match?.[1] ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function readiness(options: HttpRoutesOptions): Promise<{ ok: boolean; body: object }> {
  const { store } = options;
  if (options.isShuttingDown())
    return { ok: false, body: { status: "unavailable", reason: "shutting down" } };
  const health = store.health();
  switch (health.state) {
    case "closed":
      return { ok: false, body: { status: "unavailable", reason: "store closed" } };
    case "failing":
      return {
        ok: false,
        body: {
          status: "unavailable",
          reason: "store writes failing",
          since: new Date(health.since).toISOString(),
          error: health.error,
        },
      };
    case "ok":
      break;
  }
  const timeoutMs = options.probeTimeoutMs ?? 2_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.probe(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`store write probe took over ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    return { ok: true, body: { status: "ready", store: store.kind } };
  } catch (cause) {
    return {
      ok: false,
      body: {
        status: "unavailable",
        reason: cause instanceof Error ? cause.message : String(cause),
      },
    };
  } finally {
    clearTimeout(timer);
  }
}

function json(response: ServerResponse, status: number, body: object): void {
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
  });
  response.end(JSON.stringify(body));
}

/** Sends the one error shape every route uses. */
export function error(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
): void {
  json(response, status, { error: { code, message } });
}

const START_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>collab-docs server</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:.1em .3em;border-radius:3px}</style>
</head><body>
<h1>collab-docs server is running</h1>
<p>The editor is not built: run <code>npm run build -w editor</code> (<code>npm start</code> does it when needed).</p>
<p>Connect a Hocuspocus provider to the WebSocket on this address (any path), for example
<code>new HocuspocusProvider({ url: "ws://" + location.host, name: "my-document" })</code>.</p>
<p><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · <a href="/metrics">/metrics</a></p>
</body></html>
`;
