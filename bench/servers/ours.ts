/**
 * Our server as bench/server.ts runs it: a child process doing what
 * server/src/main.ts does (settings from the environment: HOST, PORT,
 * DATA_DIR, STORE, LOG_LEVEL, ...; createCollabServer; listen), plus the
 * benchmark's IPC (bench/servers/child.ts). The only addition inside the
 * server is a timer around our persistence extension's onLoadDocument, so
 * the benchmark can tell server-side load time from the rest, and a count
 * of the store's write batches (from its "written" events). With
 * BENCH_EVENT_LOOP_DELAY=1 it also samples its event loop's delay
 * (perf_hooks.monitorEventLoopDelay, a 10 ms timer) and reports it with the
 * stats, per interval between two stats requests.
 *
 *   node --expose-gc bench/servers/ours.ts     (with an IPC channel)
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
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

const RESOLUTION_MS = 10;
const delay =
  process.env.BENCH_EVENT_LOOP_DELAY === "1"
    ? monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    : undefined;
delay?.enable();
/** The delay since the last call, in ms; starts the next interval. */
const eventLoopDelay = () => {
  if (delay === undefined) return undefined;
  // The histogram holds the time between two runs of the timer: its interval plus the delay.
  const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  const sample = {
    p50: ms(delay.percentile(50)),
    p99: ms(delay.percentile(99)),
    max: ms(delay.max),
    mean: ms(delay.mean),
  };
  delay.reset();
  return sample;
};

const { port } = await server.listen();
serveBenchmark({
  stats: () => ({
    loads,
    documents: server.hocuspocus.getDocumentsCount(),
    connections: server.hocuspocus.getConnectionsCount(),
    writes: { ...writes },
    eventLoopDelay: eventLoopDelay(),
  }),
  close: async () => {
    await server.close();
  },
  settle: () => server.store.flush(),
  activity: () => writes.batches,
});
announce(port);
