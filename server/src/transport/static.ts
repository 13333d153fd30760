/**
 * Serves the editor's built files: the app at `/`, `/trash` and `/d/<name>`, its assets,
 * and the standalone embed bundle at `/embed/`. Paths are resolved inside the
 * build directory only; nothing outside it is ever read.
 */
import { readFile, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Where `npm run build -w editor` (run by `npm start` when needed) puts the builds. */
export const EDITOR_DIST = fileURLToPath(new URL("../../../editor/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** A file inside `root`, or null when the path escapes it or does not exist. */
async function fileIn(root: string, relative: string): Promise<string | null> {
  const path = normalize(join(root, relative));
  if (!path.startsWith(root.endsWith(sep) ? root : root + sep)) return null;
  try {
    return (await stat(path)).isFile() ? path : null;
  } catch {
    return null;
  }
}

async function send(
  response: ServerResponse,
  path: string,
  cache: string,
  head: boolean,
  extra: Record<string, string> = {},
): Promise<void> {
  const body = await readFile(path);
  response.writeHead(200, {
    "content-type": TYPES[extname(path)] ?? "application/octet-stream",
    "content-length": body.byteLength,
    "cache-control": cache,
    "x-content-type-options": "nosniff",
    ...extra,
  });
  response.end(head ? undefined : body);
}

/**
 * Answers `request` from the editor builds and returns true, or returns false
 * when the path is not one of them (or the editor is not built).
 */
export async function serveEditor(
  request: IncomingMessage,
  response: ServerResponse,
  dist = EDITOR_DIST,
  pageHeaders: Record<string, string> = {},
): Promise<boolean> {
  let path: string;
  try {
    path = decodeURIComponent(new URL(request.url ?? "/", "http://localhost").pathname);
  } catch {
    return false;
  }
  const head = request.method === "HEAD";
  const app = join(dist, "app");
  if (path === "/" || path === "/trash" || path.startsWith("/d/")) {
    const index = await fileIn(app, "index.html");
    if (index === null) return false;
    await send(response, index, "no-cache", head, pageHeaders);
    return true;
  }
  if (path === "/sw.js") {
    const file = await fileIn(app, "sw.js");
    if (file === null) return false;
    await send(response, file, "no-cache", head);
    return true;
  }
  if (path.startsWith("/assets/")) {
    const file = await fileIn(app, path);
    if (file === null) return false;
    // Vite puts a content hash in every asset name.
    await send(response, file, "public, max-age=31536000, immutable", head);
    return true;
  }
  if (path.startsWith("/embed/")) {
    const file = await fileIn(join(dist, "standalone"), path.slice("/embed/".length));
    if (file === null) return false;
    // Any page may load the embed as a module script, which needs CORS.
    await send(response, file, "no-cache", head, { "access-control-allow-origin": "*" });
    return true;
  }
  return false;
}
