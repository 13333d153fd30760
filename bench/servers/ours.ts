/**
 * Our server as bench/server.ts runs it: a child process doing what
 * server/src/main.ts does (settings from the environment: HOST, PORT,
 * DATA_DIR, STORE, LOG_LEVEL, ...; createCollabServer; listen), plus the
 * benchmark's IPC (bench/servers/child.ts). The only addition inside the
 * server is a timer around our persistence extension's onLoadDocument, so
 * the benchmark can tell server-side load time from the rest, and a count
 * of the store's write batches (from its "written" events).
 *
 *   node --expose-gc bench/servers/ours.ts     (with an IPC channel)
 */
import type { Extension, onLoadDocumentPayload } from "@hocuspocus/server";
import { createCollabServer } from "../../server/src/app.ts";
import { configFromEnv } from "../../server/src/config.ts";
import { announce, type LoadTiming, serveBenchmark } from "./child.ts";

const config = configFromEnv();
const server = await createCollabServer({ config });

const loads: LoadTiming[] = [];
const persistence = server.hocuspocus.configuration.extensions.find(
  (extension: Extension) => extension.extensionName === "durable-persistence",
);
const onLoadDocument = persistence?.onLoadDocument?.bind(persistence);
if (persistence === undefined || onLoadDocument === undefined) {
  throw new Error("the durable-persistence extension is missing");
}
persistence.onLoadDocument = async (payload: onLoadDocumentPayload) => {
  const started = performance.now();
  try {
    return await onLoadDocument(payload);
  } finally {
    loads.push({ name: payload.documentName, ms: performance.now() - started });
  }
};

const writes = { batches: 0, operations: 0, seconds: 0 };
server.store.events.on("written", ({ operations, seconds }) => {
  writes.batches++;
  writes.operations += operations;
  writes.seconds += seconds;
});

const { port } = await server.listen();
serveBenchmark({
  stats: () => ({
    loads,
    documents: server.hocuspocus.getDocumentsCount(),
    connections: server.hocuspocus.getConnectionsCount(),
    writes: { ...writes },
  }),
  close: async () => {
    await server.close();
  },
  settle: () => server.store.flush(),
  activity: () => writes.batches,
});
announce(port);
