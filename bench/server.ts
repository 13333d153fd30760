/**
 * Server end-to-end benchmarks: our server (Hocuspocus with our durable
 * LevelDB persistence) against stock Hocuspocus 4.7, both in child processes
 * (bench/servers/ours.ts, bench/servers/stock.ts) on 127.0.0.1, driven by
 * @hocuspocus/provider clients in this process.
 *
 * 1. Cold load: the finished automerge-paper document (259,778 updates) is
 *    stored once in our LevelDbStore (the fast path: LevelDbStore.open,
 *    append everything, compact every 10,000 appends as the server does and
 *    once at the end, close) and once in y-leveldb (storeUpdate, never
 *    loaded, so the reference pays its first load). For each run a copy of
 *    the directory is served by a fresh server process, and we time
 *    `new HocuspocusProvider(...)` until `synced`, checking the text.
 * 2. Memory of each of those server processes with the document loaded and
 *    the client synced, reported by the child over IPC after a full GC.
 * 3. Throughput: one provider sends the first 20,000 updates of the trace,
 *    each as its own message (100 per event loop turn, and 1 per turn), and
 *    we time until every one is acknowledged (`unsyncedChanges === 0`; on
 *    our server that means stored durably), until a second provider has
 *    received all of them, and the server process's CPU time. Stock
 *    Hocuspocus runs without persistence, with its default broadcast
 *    batching (flushDelay 0) and with flushDelay false; ours also runs with
 *    its memory store, to separate the cost of storing from the rest.
 *    Every server gets one warm-up run; setups take turns run by run.
 *
 * The clients run in this process, so on a 2-core machine client and server
 * compete for CPU with anything else running: wall-clock rates move by tens
 * of percent between runs; server CPU per update is the steadier comparison.
 *
 * The y-websocket reference server is not installed, so it is not measured.
 *
 * Set BENCH_SERVER_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
 * to pass extra Node flags to every server child.
 */
import { readFileSync } from "node:fs";
import { cp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { Server as StockServer } from "@hocuspocus/server";
import { LeveldbPersistence } from "y-leveldb";
import * as Y from "yjs";
import { THREADS, threadsDocumentName } from "../editor/src/comments/model.ts";
import { SETTINGS } from "../server/src/config.ts";
import { LevelDbStore } from "../server/src/persistence/leveldb.ts";
import { startChild } from "./child-process.ts";
import { addThreads } from "./comments.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchmarkResult,
  collectGarbage,
  dirSize,
  median,
  type Row,
  round,
  row,
  spread,
  withTempDir,
  withTimeout,
} from "./lib.ts";
import { whenAcknowledged, whenSynced } from "./provider.ts";
import type {
  ChildReply,
  ChildRequest,
  ChildStats,
  ListeningLine,
  MemorySample,
} from "./servers/child.ts";
import { COMPACT_EVERY, DOC, loadTrace, type Replay, replayTrace } from "./trace.ts";

/** Fresh server processes per server for the cold load; the median is reported. */
const COLD_REPEATS = 7;
/** Updates sent through the server per throughput run: a prefix of the trace. */
const THROUGHPUT_UPDATES = 20_000;
/**
 * How the sending client paces its updates: `burst` updates applied (and so
 * sent, one message each) per event loop turn, yielding in between so
 * acknowledgements and broadcasts are processed while it sends. 100 per turn
 * is a fast client flooding the server; 1 per turn makes every update arrive
 * on its own, which is what Hocuspocus' broadcast batching handles worst.
 * `setups` lists the THROUGHPUT_SETUPS ids that run the pattern.
 */
const SEND_PATTERNS = [
  { burst: 100, repeats: 5, setups: ["ours", "oursMemory", "stockDefault", "stockNoBatch"] },
  { burst: 1, repeats: 3, setups: ["ours", "stockDefault", "stockNoBatch"] },
] as const;

const START_TIMEOUT_MS = 30_000;
const SYNC_TIMEOUT_MS = 60_000;
const THROUGHPUT_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const MIB = 1024 * 1024;

export const OURS = fileURLToPath(new URL("./servers/ours.ts", import.meta.url));
const STOCK = fileURLToPath(new URL("./servers/stock.ts", import.meta.url));

/** Settings the children read from the environment: never inherited from this process. */
const CHILD_SETTINGS = [...SETTINGS.map((s) => s.env), "FLUSH_DELAY"];

// --- Small helpers ---------------------------------------------------------------------------

/** User plus system CPU time of a process.cpuUsage() result, in ms. */
export const cpuMs = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000;

function checkText(doc: Y.Doc, expected: string, who: string): void {
  const actual = doc.getText("text").toString();
  if (actual !== expected) {
    throw new Error(
      `${who}: the client holds ${actual.length} characters that differ from the expected ${expected.length}`,
    );
  }
}

// --- Server child processes ------------------------------------------------------------------

/** A server running in a child process. */
export interface ChildServer {
  readonly label: string;
  readonly wsUrl: string;
  /** The child's process id (e.g. to read its /proc/<pid>/status). */
  readonly pid: number;
  /** From spawn until the listening line arrived. */
  readonly startupMs: number;
  /** process.memoryUsage() of the child after a full GC (with /proc's resident breakdown). */
  memory(): Promise<MemorySample>;
  /** The same once the child has settled: pending writes done, memory no longer moving. */
  settledMemory(): Promise<MemorySample>;
  stats(): Promise<ChildStats>;
  /** SIGTERM, then SIGKILL if it has not exited in time. Idempotent. */
  stop(): Promise<void>;
  /**
   * SIGKILL at once, with no chance to shut down (what a crash or an
   * out-of-memory kill looks like); resolves once the process is gone.
   * Idempotent, and a no-op after `stop()`.
   */
  kill(): Promise<void>;
}

function extraNodeFlags(): string[] {
  const raw = process.env.BENCH_SERVER_NODE_FLAGS?.trim();
  return raw ? raw.split(/\s+/) : [];
}

/** Starts `script` in a child process with `env` (and Node `nodeFlags`) and waits until it listens. */
export async function startServer(
  label: string,
  script: string,
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): Promise<ChildServer> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CHILD_SETTINGS) delete base[name];
  const child = await startChild<ChildRequest, ChildReply>(label, script, {
    ready: "listening",
    nodeFlags: [...extraNodeFlags(), ...nodeFlags, "--expose-gc"],
    // Every benchmark client connects from 127.0.0.1: no per-address connection limit.
    env: { ...base, HOST: "127.0.0.1", PORT: "0", RATE_LIMIT_CONNECTIONS: "0", ...env },
    startTimeoutMs: START_TIMEOUT_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
    failure: (reply) => (reply.type === "error" ? reply.message : undefined),
  });
  const { port } = child.readyLine as Partial<ListeningLine>;
  if (typeof port !== "number") {
    await child.stop();
    throw new Error(`${label} printed a listening line without a port`);
  }
  const request = (type: ChildRequest["type"]) => child.request({ type }, REQUEST_TIMEOUT_MS);
  return {
    label,
    wsUrl: `ws://127.0.0.1:${port}`,
    pid: child.pid,
    startupMs: child.startupMs,
    async memory() {
      const reply = await request("memory");
      if (reply.type !== "memory") throw new Error(`${label}: unexpected reply ${reply.type}`);
      return reply.usage;
    },
    async settledMemory() {
      const reply = await request("settled");
      if (reply.type !== "memory") throw new Error(`${label}: unexpected reply ${reply.type}`);
      return reply.usage;
    },
    async stats() {
      const reply = await request("stats");
      if (reply.type !== "stats") throw new Error(`${label}: unexpected reply ${reply.type}`);
      return reply.stats;
    },
    stop: child.stop,
    kill: child.kill,
  };
}

/** Runs `body` with a server child and stops the child afterwards, also on failure. */
async function withServer<T>(
  label: string,
  script: string,
  env: Record<string, string>,
  body: (server: ChildServer) => Promise<T>,
): Promise<T> {
  const server = await startServer(label, script, env);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

// --- Clients ---------------------------------------------------------------------------------

/** A provider for `name` on `url` with its own socket and a fresh document unless given one. */
function openProvider(url: string, name: string, document = new Y.Doc()): HocuspocusProvider {
  return new HocuspocusProvider({ url, name, document });
}

/** What a document looks like once it holds a given set of updates from one client. */
interface Expected {
  readonly client: number;
  readonly clock: number;
  readonly text: string;
}

/** Resolves with the time at which `doc` holds everything `expected` describes. */
function whenReceived(doc: Y.Doc, expected: Expected): Promise<number> {
  return new Promise((resolve) => {
    const onUpdate = () => {
      if (Y.getState(doc.store, expected.client) < expected.clock) return;
      if (doc.getText("text").toString() !== expected.text) return;
      doc.off("afterTransaction", onUpdate);
      resolve(performance.now());
    };
    doc.on("afterTransaction", onUpdate);
  });
}

// --- Measurements ----------------------------------------------------------------------------

/** One cold load: the provider's view and the server child's. */
interface ColdLoad {
  /**
   * With the threads document opened beside the document on the same socket, as the editor
   * does: from `new HocuspocusProvider` until it was synced too (null when not opened).
   */
  readonly threadsMs: number | null;
  readonly startupMs: number;
  /** From `new HocuspocusProvider` until its WebSocket was open. */
  readonly openMs: number;
  readonly connectMs: number;
  /** The server's onLoadDocument hook, start to end. */
  readonly serverLoadMs: number;
  /** CPU time (user + system, all its threads) the server process spent from connect to synced. */
  readonly serverCpuMs: number;
  /** This machine's 1-minute load average when the run started: other work skews timings. */
  readonly loadAverage: number;
  readonly baseline: NodeJS.MemoryUsage;
  readonly loaded: NodeJS.MemoryUsage;
}

/**
 * Connects one provider to a freshly started server holding the document and times it to
 * synced; with `threads`, the editor's way: the document, then (once it has synced) its
 * threads document on the same socket, timed to the document synced (what the editor shows
 * first) and to the threads synced too.
 */
async function coldLoad(
  server: ChildServer,
  expected: string,
  options: { readonly threads?: boolean } = {},
): Promise<ColdLoad> {
  const baseline = await server.memory();
  const before = await server.stats();
  const loadAverage = loadavg()[0] ?? Number.NaN;
  collectGarbage();
  const document = new Y.Doc();
  const started = performance.now();
  const socket =
    options.threads === true ? new HocuspocusProviderWebsocket({ url: server.wsUrl }) : null;
  const provider =
    socket === null
      ? openProvider(server.wsUrl, DOC, document)
      : new HocuspocusProvider({ websocketProvider: socket, name: DOC, document });
  const companion =
    socket === null
      ? null
      : new HocuspocusProvider({
          websocketProvider: socket,
          name: threadsDocumentName(DOC),
          document: new Y.Doc(),
          awareness: null,
        });
  if (socket !== null) provider.attach();
  let openedAt = Number.NaN;
  provider.on("open", () => {
    openedAt = performance.now();
  });
  // As the editor does: the threads document once the document has synced.
  const threadsSynced =
    companion === null
      ? null
      : whenSynced(provider).then(() => {
          companion.attach();
          return whenSynced(companion);
        });
  try {
    await withTimeout(whenSynced(provider), SYNC_TIMEOUT_MS, `${server.label} to sync`);
    const connectMs = performance.now() - started;
    let threadsMs: number | null = null;
    if (companion !== null && threadsSynced !== null) {
      await withTimeout(threadsSynced, SYNC_TIMEOUT_MS, `${server.label} threads to sync`);
      threadsMs = performance.now() - started;
      const count = companion.document.getMap(THREADS).size;
      if (count !== COMMENT_THREADS) {
        throw new Error(`${server.label}: ${count} threads loaded, ${COMMENT_THREADS} stored`);
      }
    }
    const stats = await server.stats();
    checkText(document, expected, server.label);
    const loaded = await server.memory();
    const load = stats.loads.find((l) => l.name === DOC);
    if (load === undefined) throw new Error(`${server.label} did not report loading ${DOC}`);
    return {
      threadsMs,
      startupMs: server.startupMs,
      openMs: openedAt - started,
      connectMs,
      serverLoadMs: load.ms,
      serverCpuMs: cpuMs(stats.cpu) - cpuMs(before.cpu),
      loadAverage,
      baseline,
      loaded,
    };
  } finally {
    companion?.destroy();
    provider.destroy();
    socket?.destroy();
    document.destroy();
  }
}

/** One throughput run. */
interface Throughput {
  /** From the first update applied on the sender until the last acknowledgement. */
  readonly ackMs: number;
  readonly rate: number;
  /** From the first update until the second provider held all of them. */
  readonly receiveMs: number;
  /** CPU time (user + system) the server process spent from the first update until both were done. */
  readonly serverCpuMs: number;
  /** CPU time this process (both clients) spent over the same span. */
  readonly clientCpuMs: number;
  /** Our store's write batches over the same span (undefined for stock Hocuspocus). */
  readonly writeBatches?: number;
  /** Seconds those batches took, summed. */
  readonly writeSeconds?: number;
}

/**
 * Connects a sender and a receiver to a new document `name`, then applies
 * `updates` on the sender's document (the provider sends each as its own
 * message), `burst` per event loop turn, and times acknowledgement and
 * delivery.
 */
async function throughput(
  server: ChildServer,
  name: string,
  updates: readonly Uint8Array[],
  expected: Expected,
  burst: number,
): Promise<Throughput> {
  const senderDoc = new Y.Doc();
  const receiverDoc = new Y.Doc();
  const sender = openProvider(server.wsUrl, name, senderDoc);
  const receiver = openProvider(server.wsUrl, name, receiverDoc);
  try {
    await withTimeout(
      Promise.all([whenSynced(sender), whenSynced(receiver)]),
      SYNC_TIMEOUT_MS,
      `${server.label}: two clients to sync`,
    );
    // The initial sync leaves one change pending until the server answers the client's state.
    await withTimeout(whenAcknowledged(sender), SYNC_TIMEOUT_MS, `${server.label}: sync ack`);
    collectGarbage();
    const received = whenReceived(receiverDoc, expected);
    const before = await server.stats();
    const clientBefore = process.cpuUsage();
    const started = performance.now();
    const run = (async () => {
      for (let at = 0; at < updates.length; at += burst) {
        if (at > 0) await nextTurn();
        const end = Math.min(at + burst, updates.length);
        for (let i = at; i < end; i++) Y.applyUpdate(senderDoc, updates[i] as Uint8Array);
      }
      const acknowledgedAt = await whenAcknowledged(sender);
      const receivedAt = await received;
      return { acknowledgedAt, receivedAt };
    })();
    const { acknowledgedAt, receivedAt } = await withTimeout(
      run,
      THROUGHPUT_TIMEOUT_MS,
      `${server.label}: ${updates.length} updates to be acknowledged and received`,
    );
    const clientCpu = cpuMs(process.cpuUsage(clientBefore));
    const after = await server.stats();
    const serverCpu = cpuMs(after.cpu) - cpuMs(before.cpu);
    checkText(senderDoc, expected.text, `${server.label} sender`);
    const ackMs = acknowledgedAt - started;
    return {
      ackMs,
      rate: (updates.length / ackMs) * 1000,
      receiveMs: receivedAt - started,
      serverCpuMs: serverCpu,
      clientCpuMs: clientCpu,
      ...(after.writes !== undefined && before.writes !== undefined
        ? {
            writeBatches: after.writes.batches - before.writes.batches,
            writeSeconds: after.writes.seconds - before.writes.seconds,
          }
        : {}),
    };
  } finally {
    sender.destroy();
    receiver.destroy();
    senderDoc.destroy();
    receiverDoc.destroy();
  }
}

/**
 * Exercises the client side once (WebSocket, provider, applying the large
 * state, sending many updates) against an in-process stock server, so the
 * first measured run does not pay for loading and compiling client code.
 */
async function warmUpClients(finalState: Uint8Array, updates: readonly Uint8Array[]) {
  const server = new StockServer({
    port: 0,
    address: "127.0.0.1",
    quiet: true,
    stopOnSignals: false,
    extensions: [
      {
        async onLoadDocument({ document, documentName }) {
          if (documentName === DOC) Y.applyUpdate(document, finalState);
        },
      },
    ],
  });
  await server.listen();
  const url = `ws://127.0.0.1:${server.address.port}`;
  try {
    for (let i = 0; i < 5; i++) {
      const document = new Y.Doc();
      const provider = openProvider(url, DOC, document);
      try {
        await withTimeout(whenSynced(provider), SYNC_TIMEOUT_MS, "warm-up sync");
      } finally {
        provider.destroy();
        document.destroy();
      }
    }
    const sender = new Y.Doc();
    const senderProvider = openProvider(url, "warm-up", sender);
    try {
      await withTimeout(whenSynced(senderProvider), SYNC_TIMEOUT_MS, "warm-up sync");
      for (const update of updates) Y.applyUpdate(sender, update);
      await withTimeout(whenAcknowledged(senderProvider), SYNC_TIMEOUT_MS, "warm-up acks");
    } finally {
      senderProvider.destroy();
      sender.destroy();
    }
  } finally {
    await server.destroy();
  }
}

// --- Preparation -----------------------------------------------------------------------------

/** The trace replayed once, up front and untimed; the replayed Y.Doc itself is not kept. */
interface Prepared {
  readonly updates: readonly Uint8Array[];
  readonly snapshots: ReadonlyMap<number, Uint8Array>;
  readonly finalState: Uint8Array;
  readonly expected: string;
  /** The document after the throughput prefix. */
  readonly prefix: Expected;
}

/** Replays the trace in a function of its own so the replayed document is garbage afterwards. */
function prepare(): Prepared {
  const trace = loadTrace();
  const replay: Replay = replayTrace(trace, { snapshotEvery: COMPACT_EVERY });
  const updates = replay.updates;
  const scratch = new Y.Doc();
  Y.transact(scratch, () => {
    for (const update of updates.slice(0, THROUGHPUT_UPDATES)) Y.applyUpdate(scratch, update);
  });
  const clocks = Y.decodeStateVector(Y.encodeStateVector(scratch));
  if (clocks.size !== 1) throw new Error(`the trace prefix has ${clocks.size} clients, not 1`);
  const [[client, clock]] = clocks as unknown as [[number, number]];
  const prefix = { client, clock, text: scratch.getText("text").toString() };
  scratch.destroy();
  return {
    updates,
    snapshots: replay.snapshots,
    finalState: Y.encodeStateAsUpdate(replay.doc),
    expected: trace.endContent,
    prefix,
  };
}

/** Stores the trace in our LevelDbStore as the server would: compaction every 10,000 and at the end. */
async function ingestOurs(dir: string, prepared: Prepared): Promise<number> {
  const started = performance.now();
  const store = await LevelDbStore.open({ dir });
  try {
    const pending: Promise<void>[] = [];
    for (const [i, update] of prepared.updates.entries()) {
      pending.push(store.append(DOC, update));
      const state = prepared.snapshots.get(i);
      if (state !== undefined) pending.push(store.compact(DOC, state));
    }
    pending.push(store.compact(DOC, prepared.finalState));
    await Promise.all(pending);
    await store.flush();
  } finally {
    await store.close();
  }
  return performance.now() - started;
}

/** Comment threads the cold load with comments carries, and comments per thread (issue 12). */
const COMMENT_THREADS = 500;
const COMMENTS_PER_THREAD = 3;

/**
 * Adds the threads to the document stored in `dir`: their marks to its text, and the
 * threads to its threads document (each compacted into one state, as the server would).
 */
async function withThreads(dir: string, prepared: Prepared): Promise<void> {
  const store = await LevelDbStore.open({ dir });
  try {
    const doc = new Y.Doc();
    const threads = new Y.Doc();
    Y.applyUpdate(doc, prepared.finalState);
    addThreads(doc, threads, COMMENT_THREADS, COMMENTS_PER_THREAD);
    await store.compact(DOC, Y.encodeStateAsUpdate(doc));
    await store.compact(threadsDocumentName(DOC), Y.encodeStateAsUpdate(threads));
    await store.flush();
    doc.destroy();
    threads.destroy();
  } finally {
    await store.close();
  }
}

/** Stores every update with y-leveldb's storeUpdate (all issued, then awaited). */
async function ingestReference(dir: string, updates: readonly Uint8Array[]): Promise<number> {
  const persistence = new LeveldbPersistence(dir);
  try {
    await persistence.getMeta(DOC, "bench-open");
    const started = performance.now();
    await Promise.all(updates.map((update) => persistence.storeUpdate(DOC, update)));
    return performance.now() - started;
  } finally {
    await persistence.destroy();
  }
}

/** The version in the package.json of `name` as resolved from here. */
function versionOf(name: string): string {
  const require = createRequire(import.meta.url);
  try {
    let dir = dirname(require.resolve(name));
    for (let depth = 0; depth < 5; depth++) {
      try {
        const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
          name?: string;
          version?: string;
        };
        if (manifest.name === name && manifest.version !== undefined) return manifest.version;
      } catch {
        // No manifest at this level.
      }
      dir = dirname(dir);
    }
  } catch {
    // Not resolvable.
  }
  return "unknown";
}

// --- The benchmark ---------------------------------------------------------------------------

const mib = (bytes: number) => bytes / MIB;

/** One server setup for the throughput measurement. */
interface ThroughputSetup {
  readonly id: string;
  readonly label: string;
  readonly script: string;
  readonly env: Record<string, string>;
  /** Whether it needs a (fresh, empty) DATA_DIR. */
  readonly dataDir: boolean;
}

const THROUGHPUT_SETUPS: readonly ThroughputSetup[] = [
  { id: "ours", label: "ours (LevelDB)", script: OURS, env: { LOG_LEVEL: "info" }, dataDir: true },
  {
    id: "oursMemory",
    label: "ours (memory store)",
    script: OURS,
    env: { LOG_LEVEL: "info", STORE: "memory" },
    dataDir: false,
  },
  { id: "stockDefault", label: "stock (flushDelay 0)", script: STOCK, env: {}, dataDir: false },
  {
    id: "stockNoBatch",
    label: "stock (flushDelay false)",
    script: STOCK,
    env: { FLUSH_DELAY: "false" },
    dataDir: false,
  },
];

/** Stores the document both ways, then runs COLD_REPEATS cold loads on each, alternating. */
async function measureColdLoads(
  context: BenchContext,
  root: string,
  prepared: Prepared,
  details: Record<string, unknown>,
): Promise<{ ours: ColdLoad[]; reference: ColdLoad[]; comments: ColdLoad[] }> {
  const { updates, expected } = prepared;
  const sources = {
    ours: join(root, "ours-source"),
    reference: join(root, "y-leveldb-source"),
    comments: join(root, "ours-comments-source"),
  };
  context.log("ours: storing the trace (LevelDbStore fast path, compaction as the server does)");
  const oursIngestMs = await ingestOurs(sources.ours, prepared);
  context.log(
    `ours: stored in ${round(oursIngestMs / 1000)} s; y-leveldb: storeUpdate × ${updates.length} (slow: 20 to 50 s)`,
  );
  context.log(
    `ours with comments: the same, plus ${COMMENT_THREADS} threads of ${COMMENTS_PER_THREAD} comments`,
  );
  await cp(sources.ours, sources.comments, { recursive: true });
  await withThreads(sources.comments, prepared);
  const referenceIngestMs = await ingestReference(sources.reference, updates);
  context.log(`y-leveldb: stored in ${round(referenceIngestMs / 1000)} s`);
  details.stored = {
    oursIngestMs: round(oursIngestMs),
    oursBytes: await dirSize(sources.ours),
    referenceIngestMs: round(referenceIngestMs),
    referenceBytes: await dirSize(sources.reference),
  };

  context.log("warming up the client side against an in-process stock server (not timed)");
  await warmUpClients(prepared.finalState, updates.slice(0, 2_000));
  const clientApplyMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const doc = new Y.Doc();
    Y.applyUpdate(doc, prepared.finalState);
    clientApplyMs.push(performance.now() - started);
    doc.destroy();
  }
  details.clientApplyFinalStateMs = clientApplyMs.map(round);

  const results = {
    ours: [] as ColdLoad[],
    reference: [] as ColdLoad[],
    comments: [] as ColdLoad[],
  };
  const kinds = ["ours", "reference", "comments"] as const;
  for (let run = 0; run < COLD_REPEATS; run++) {
    // Rotate the order so none always runs right after another.
    const order = kinds.map((_, i) => kinds[(i + run) % kinds.length] ?? "ours");
    for (const kind of order) {
      const dir = join(root, `${kind}-run-${run}`);
      await cp(sources[kind], dir, { recursive: true });
      try {
        const result =
          kind === "reference"
            ? await withServer("stock + y-leveldb", STOCK, { DATA_DIR: dir }, (server) =>
                coldLoad(server, expected),
              )
            : await withServer(kind, OURS, { DATA_DIR: dir, LOG_LEVEL: "info" }, (server) =>
                coldLoad(server, expected, { threads: kind === "comments" }),
              );
        results[kind].push(result);
        context.log(
          `${kind}: cold load ${run + 1}/${COLD_REPEATS}: connect → synced ${round(result.connectMs)} ms (socket open ${round(result.openMs)} ms, server onLoadDocument ${round(result.serverLoadMs)} ms), RSS ${round(mib(result.loaded.rss))} MiB`,
        );
      } finally {
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      }
    }
  }
  return results;
}

/** The results key of a setup under a send pattern. */
const patternKey = (id: string, burst: number) => `${id}, burst ${burst}`;

/**
 * Starts one server per setup, gives each a warm-up run, then, per send
 * pattern, runs rounds in which every setup runs once, in a rotating order,
 * so a disturbance (this machine may be shared) spreads over all setups
 * instead of skewing one.
 */
async function measureThroughput(
  context: BenchContext,
  root: string,
  prepared: Prepared,
): Promise<Record<string, Throughput[]>> {
  const sendUpdates = prepared.updates.slice(0, THROUGHPUT_UPDATES);
  const servers = new Map<string, { setup: ThroughputSetup; server: ChildServer }>();
  const results: Record<string, Throughput[]> = {};
  try {
    for (const setup of THROUGHPUT_SETUPS) {
      const env = { ...setup.env };
      if (setup.dataDir) env.DATA_DIR = join(root, `throughput-${setup.id}`);
      servers.set(setup.id, { setup, server: await startServer(setup.label, setup.script, env) });
    }
    context.log("throughput: one warm-up run per server (not counted)");
    for (const { server } of servers.values()) {
      // The first run in a fresh process is dominated by compiling the server's hot paths.
      await throughput(server, "warm-up", sendUpdates, prepared.prefix, 100);
    }
    for (const { burst, repeats, setups } of SEND_PATTERNS) {
      for (let round_ = 0; round_ < repeats; round_++) {
        for (let i = 0; i < setups.length; i++) {
          const id = setups[(i + round_) % setups.length] as string;
          const entry = servers.get(id);
          if (entry === undefined) throw new Error(`no throughput setup "${id}"`);
          const { setup, server } = entry;
          const name = `burst-${burst}-run-${round_}`;
          const result = await throughput(server, name, sendUpdates, prepared.prefix, burst);
          const key = patternKey(setup.id, burst);
          results[key] = [...(results[key] ?? []), result];
          const writes =
            result.writeBatches === undefined ? "" : `, ${result.writeBatches} store writes`;
          context.log(
            `${setup.label}, ${burst} per turn: run ${round_ + 1}/${repeats}: ${Math.round(result.rate)} updates/s acknowledged (${round(result.ackMs)} ms), all received after ${round(result.receiveMs)} ms; CPU server ${round(result.serverCpuMs)} ms, clients ${round(result.clientCpuMs)} ms${writes}`,
          );
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map(({ server }) => server.stop()));
  }
  return results;
}

/** Runs every server measurement; see the module comment. */
async function runServerBenchmarks(context: BenchContext): Promise<BenchmarkResult> {
  const loadBefore = loadavg();
  if (loadBefore[0] !== undefined && loadBefore[0] > 0.5 * cpus().length) {
    context.log(
      `warning: load average ${round(loadBefore[0])} on ${cpus().length} cores; other work skews these timings`,
    );
  }
  context.log("loading and replaying the trace (not timed)");
  const prepared = prepare();
  const { updates, expected, prefix } = prepared;
  const details: Record<string, unknown> = {
    versions: Object.fromEntries(
      ["@hocuspocus/server", "@hocuspocus/provider", "yjs", "y-leveldb"].map((n) => [
        n,
        versionOf(n),
      ]),
    ),
    trace: { updates: updates.length, finalCharacters: [...expected].length },
    coldRepeats: COLD_REPEATS,
    throughputSettings: {
      updates: THROUGHPUT_UPDATES,
      patterns: SEND_PATTERNS,
      prefixCharacters: prefix.text.length,
    },
    loadAverageBefore: loadBefore.map(round),
  };
  return withTempDir("server", async (root) => {
    const cold = await measureColdLoads(context, root, prepared, details);
    details.coldLoad = cold;
    const throughputs = await measureThroughput(context, root, prepared);
    details.throughput = throughputs;
    details.loadAverageAfter = loadavg().map(round);
    return {
      rows: [
        ...buildRows(cold.ours, cold.reference, throughputs, updates.length),
        commentsRow(cold.comments, cold.ours),
      ],
      details,
    };
  });
}

/** Cold load of the document carrying comments, as a multiple of the same document without. */
function commentsRow(withComments: readonly ColdLoad[], without: readonly ColdLoad[]): Row {
  const connect = (c: ColdLoad) => c.connectMs;
  const withMs = median(withComments.map(connect));
  const withoutMs = median(without.map(connect));
  return row({
    name: `cold load with ${COMMENT_THREADS} threads × ${COMMENTS_PER_THREAD} comments, vs the same document without`,
    value: withMs / withoutMs,
    unit: "×",
    better: "lower",
    target: { op: "<=", value: 1.3 },
    note: `the editor's way: the document, then its threads document on the same socket, timed to the document synced; with ${round(withMs)} ms ${spread(withComments.map(connect))}, the threads synced too after ${round(median(withComments.map((c) => c.threadsMs ?? Number.NaN)))} ms; without ${round(withoutMs)} ms (the document alone); server onLoadDocument of the document ${round(median(withComments.map((c) => c.serverLoadMs)))} / ${round(median(without.map((c) => c.serverLoadMs)))} ms`,
  });
}

function buildRows(
  oursCold: readonly ColdLoad[],
  referenceCold: readonly ColdLoad[],
  throughputs: Record<string, readonly Throughput[]>,
  count: number,
): Row[] {
  const cold = (runs: readonly ColdLoad[], pick: (c: ColdLoad) => number) => median(runs.map(pick));
  const connect = (c: ColdLoad) => c.connectMs;
  const loads = [...oursCold, ...referenceCold].map((c) => c.loadAverage);
  const rss = (c: ColdLoad) => mib(c.loaded.rss);
  const heap = (c: ColdLoad) => mib(c.loaded.heapUsed);
  const baseRss = (c: ColdLoad) => mib(c.baseline.rss);
  const baseHeap = (c: ColdLoad) => mib(c.baseline.heapUsed);
  const runs = (id: string, burst: number) => throughputs[patternKey(id, burst)] ?? [];
  const rates = (id: string, burst: number) => runs(id, burst).map((t) => t.rate);
  const receives = (id: string, burst: number) => runs(id, burst).map((t) => t.receiveMs);
  /** Server CPU per update, in µs. */
  const cpu = (id: string, burst: number) =>
    runs(id, burst).map((t) => (t.serverCpuMs * 1000) / THROUGHPUT_UPDATES);
  const n = THROUGHPUT_UPDATES.toLocaleString("en-US");
  const throughputRows = (burst: number, pattern: string): Row[] => {
    const memory = runs("oursMemory", burst).length > 0;
    return [
      row({
        name: `throughput, ${pattern}: ${n} updates from one provider until all acknowledged (stock: flushDelay 0, no persistence)`,
        value: median(rates("ours", burst)),
        unit: "updates/s",
        better: "higher",
        reference: median(rates("stockDefault", burst)),
        note: `ours acknowledges once written to LevelDB (fsync off, the default), stock at once; ours ${spread(rates("ours", burst))}; reference ${spread(rates("stockDefault", burst))}`,
      }),
      row({
        name: "  same, stock with flushDelay false",
        value: median(rates("ours", burst)),
        unit: "updates/s",
        better: "higher",
        reference: median(rates("stockNoBatch", burst)),
        note: `reference ${spread(rates("stockNoBatch", burst))}`,
      }),
      ...(memory
        ? [
            row({
              name: "  same, ours with the memory store (stock: flushDelay false)",
              value: median(rates("oursMemory", burst)),
              unit: "updates/s",
              better: "higher",
              reference: median(rates("stockNoBatch", burst)),
              note: `not durable; ${spread(rates("oursMemory", burst))}`,
            }),
          ]
        : []),
      row({
        name: "  until a second provider has received all of them (stock: flushDelay 0)",
        value: median(receives("ours", burst)),
        unit: "ms",
        better: "lower",
        reference: median(receives("stockDefault", burst)),
        note: `from the first update sent; ours ${spread(receives("ours", burst))}; reference ${spread(receives("stockDefault", burst))}; stock flushDelay false ${round(median(receives("stockNoBatch", burst)))} ms`,
      }),
      row({
        name: "  server CPU per update (stock: flushDelay 0)",
        value: median(cpu("ours", burst)),
        unit: "µs",
        better: "lower",
        reference: median(cpu("stockDefault", burst)),
        note: `user + system of the server process; ours ${spread(cpu("ours", burst))}; reference ${spread(cpu("stockDefault", burst))}${memory ? `; ours with the memory store ${round(median(cpu("oursMemory", burst)))} µs` : ""}`,
      }),
      row({
        name: "  server CPU per update (stock: flushDelay false)",
        value: median(cpu("ours", burst)),
        unit: "µs",
        better: "lower",
        reference: median(cpu("stockNoBatch", burst)),
        note: `reference ${spread(cpu("stockNoBatch", burst))}`,
      }),
    ];
  };
  return [
    row({
      name: `cold load: new provider → synced, ${count.toLocaleString("en-US")}-update document, fresh server process (y-leveldb: 1st load)`,
      value: cold(oursCold, connect),
      unit: "ms",
      better: "lower",
      target: { op: "<=", value: 150 },
      reference: cold(referenceCold, connect),
      note: `ours ${spread(oursCold.map(connect))}; reference ${spread(referenceCold.map(connect))}; socket open after ${round(cold(oursCold, (c) => c.openMs))} / ${round(cold(referenceCold, (c) => c.openMs))} ms`,
    }),
    row({
      name: "  server CPU from connect to synced",
      value: cold(oursCold, (c) => c.serverCpuMs),
      unit: "ms",
      better: "lower",
      reference: cold(referenceCold, (c) => c.serverCpuMs),
      note: `all threads (compiler, GC, LevelDB) of the fresh process; load average at the runs ${round(Math.min(...loads))}–${round(Math.max(...loads))} on ${cpus().length} cores`,
    }),
    row({
      name: "  of which the server's onLoadDocument",
      value: cold(oursCold, (c) => c.serverLoadMs),
      unit: "ms",
      better: "lower",
      reference: cold(referenceCold, (c) => c.serverLoadMs),
      note: "ours: store.load + apply; y-leveldb: getYDoc (merges and rewrites the log) + apply",
    }),
    row({
      name: "server process start → listening",
      value: cold(oursCold, (c) => c.startupMs),
      unit: "ms",
      better: "lower",
      reference: cold(referenceCold, (c) => c.startupMs),
      note: "not part of the cold load above",
    }),
    row({
      name: "server RSS, document loaded, one client synced",
      value: cold(oursCold, rss),
      unit: "MiB",
      better: "lower",
      reference: cold(referenceCold, rss),
      note: `before the client: ours ${round(cold(oursCold, baseRss))}, reference ${round(cold(referenceCold, baseRss))} MiB`,
    }),
    row({
      name: "server heap used after GC, document loaded, one client synced",
      value: cold(oursCold, heap),
      unit: "MiB",
      better: "lower",
      reference: cold(referenceCold, heap),
      note: `before the client: ours ${round(cold(oursCold, baseHeap))}, reference ${round(cold(referenceCold, baseHeap))} MiB`,
    }),
    ...throughputRows(100, "fast client: 100 updates per event loop turn"),
    ...throughputRows(1, "1 update per event loop turn"),
  ];
}

/** The server benchmark as `bench/run.ts` runs it (`node bench/run.ts server`). */
export const serverBenchmark: Benchmark = {
  id: "server",
  title: "Server end to end: ours vs stock Hocuspocus 4.7 (automerge-paper trace)",
  reference: "stock Hocuspocus",
  run: runServerBenchmarks,
};
