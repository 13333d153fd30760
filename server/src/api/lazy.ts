/**
 * The REST API as the HTTP layer sees it: its path prefix, and a handler that
 * loads the API (api/router.ts: the route table, its request schemas, the
 * OpenAPI document) on the first request under the prefix. A process that
 * only syncs never loads it: about 1 MB less idle memory (docs/benchmarks.md,
 * "Profile: idle memory at start-up").
 */
import type { ApiHandler } from "../transport/http.ts";
import { lazily } from "../util/lazy.ts";
import type { ApiOptions } from "./router.ts";

export const API_PREFIX = "/api/v1";

/** A handler for requests under {@link API_PREFIX} that builds the API with `options` when first called. */
export function lazyApi(options: ApiOptions): ApiHandler {
  const api = lazily(() => import("./router.ts").then(({ createApi }) => createApi(options)));
  return async (request, response, path, query) => (await api())(request, response, path, query);
}
