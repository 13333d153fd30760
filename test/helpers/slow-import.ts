/**
 * Preloaded into a server process (`NODE_OPTIONS=--import <this file>`, which its
 * worker threads inherit): loading a module whose URL contains `SLOW_IMPORT` takes
 * `SLOW_IMPORT_MS` longer, as on a cold disk or a busy machine, and each such load is
 * written to stderr as `slow-import <main|worker> <url>`.
 */
import { registerHooks } from "node:module";
import { isMainThread } from "node:worker_threads";

const pattern = process.env.SLOW_IMPORT;
const delayMs = Number(process.env.SLOW_IMPORT_MS ?? 0);

if (pattern !== undefined && pattern !== "") {
  registerHooks({
    load(url, context, nextLoad) {
      if (url.includes(pattern)) {
        process.stderr.write(`slow-import ${isMainThread ? "main" : "worker"} ${url}\n`);
        // Blocks this thread, as a slow synchronous load does.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
      }
      return nextLoad(url, context);
    },
  });
}
