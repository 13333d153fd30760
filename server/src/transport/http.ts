/**
 * HTTP routes on the same port as the WebSocket: health, readiness, metrics
 * and the start page. Every error is JSON `{ "error": { "code", "message" } }`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DocumentStore } from "../persistence/store.ts";
import { serveEditor } from "./static.ts";

export interface HttpRoutesOptions {
  readonly store: DocumentStore;
  readonly metrics: { readonly registry: { contentType: string; metrics(): Promise<string> } };
  /** True once shutdown began: readiness fails so load balancers stop sending traffic. */
  readonly isShuttingDown: () => boolean;
  /** How long the readiness probe waits for its store write. @default 2_000 */
  readonly probeTimeoutMs?: number;
  /** The editor builds to serve. @default editor/dist of this checkout */
  readonly editorDist?: string;
}

type Handler = (request: IncomingMessage, response: ServerResponse) => Promise<void> | void;

export function createHttpHandler(options: HttpRoutesOptions): Handler {
  const routes: Record<string, Handler> = {
    "/healthz": (_request, response) => json(response, 200, { status: "ok" }),
    "/readyz": async (_request, response) => {
      const ready = await readiness(options);
      json(response, ready.ok ? 200 : 503, ready.body);
    },
    "/metrics": async (_request, response) => {
      const body = await options.metrics.registry.metrics();
      response.writeHead(200, { "content-type": options.metrics.registry.contentType });
      response.end(body);
    },
    "/api/v1/documents": async (request, response) => {
      const query = new URL(request.url ?? "/", "http://localhost").searchParams;
      const limit = Math.min(1000, Math.max(1, Number(query.get("limit") ?? 100) || 100));
      const page = await options.store.list({
        prefix: query.get("prefix") ?? undefined,
        after: query.get("after") ?? undefined,
        limit,
      });
      json(response, 200, {
        documents: page.map(({ name, meta }) => ({
          name,
          created: new Date(meta.created).toISOString(),
          updated: new Date(meta.updated).toISOString(),
          size: meta.bytes,
        })),
        next: page.length === limit ? (page.at(-1)?.name ?? null) : null,
      });
    },
    "/": (_request, response) => {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(START_PAGE);
    },
  };
  return async (request, response) => {
    let path: string;
    try {
      path = new URL(request.url ?? "/", "http://localhost").pathname;
    } catch {
      return error(response, 400, "bad_request", "the request URL does not parse");
    }
    const readOnly = request.method === "GET" || request.method === "HEAD";
    try {
      if (readOnly && (await serveEditor(request, response, options.editorDist))) return;
    } catch (cause) {
      if (!response.headersSent) return error(response, 500, "internal", String(cause));
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
      if (!response.headersSent) error(response, 500, "internal", String(cause));
      else response.destroy();
    }
  };
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
