/**
 * WebSocket compression (issue 14): what `WS_COMPRESSION=on` saves on the
 * wire and costs the server, against `off`. `npm run bench compression`
 * (about a minute and a half).
 *
 * For each setting, a fresh server process (bench/servers/ours.ts: LevelDB in
 * a fresh directory, the allocator settings `npm start` uses) and, in this
 * process, @hocuspocus/provider clients over `ws` that offer permessage-deflate
 * and compress what they send, as browsers do (Node's own WebSocket accepts
 * compression but sends plain). Bytes are counted on the clients' TCP
 * connections, both ways, by a proxy in front of the server: upgrade, frame
 * headers and payloads, what a network carries before TLS.
 *
 * 1. Initial sync of the trace document: the final state of the 259,778-edit
 *    trace is stored once (one client sends it whole, and stays, so the
 *    document stays loaded); then, after one run not counted, SYNC_RUNS
 *    times, a new client connects through the proxy until it has synced and
 *    holds the whole text. Bytes, time to synced (loopback, so no link is
 *    slow), and the server's CPU over that span.
 * 2. Fan-out, S1's shape made short: FAN_OUT.clients clients on one document
 *    with presence, FAN_OUT.writers of them typing one character every
 *    FAN_OUT.intervalMs for FAN_OUT.durationMs; bytes of all clients and the
 *    server's CPU from the first keystroke until every client holds every
 *    character and the writers have nothing unacknowledged.
 * 3. Idle connections: IDLE_CONNECTIONS clients without presence (as S4) on
 *    one document of IDLE_CHARACTERS characters, connected BATCH at a time,
 *    each synced (so each was sent the document, over the threshold) before
 *    the next batch; the server's memory after settling (full GC) before and
 *    after, per connection, and its CPU over the connecting, per connection.
 * 4. The zlib streams alone, to choose their options: a bare `ws` server
 *    (bench/servers/bare-ws.ts) that answers each client's one (compressed)
 *    message with 8 KiB, ZLIB_CONNECTIONS clients: RSS per connection with no
 *    compression, with zlib's defaults and with the options WS_COMPRESSION=on
 *    uses (server/src/transport/compression.ts); and, with the same options,
 *    the trace document's state compressed in this process (size, time).
 *
 * The machine has 2 cores, shared by the server, the clients and the proxy
 * here (and by whatever else runs): bytes and memory repeat, CPU and time
 * move by tens of percent between runs.
 */
import { createServer, type Socket, connect as tcpConnect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { deflateRawSync } from "node:zlib";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import WebSocket, { type PerMessageDeflateOptions } from "ws";
import * as Y from "yjs";
import { ALLOCATOR_ENV } from "../server/src/observability/allocator.ts";
import { perMessageDeflate } from "../server/src/transport/compression.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchmarkResult,
  formatNumber,
  median,
  type Row,
  round,
  row,
  withTempDir,
  withTimeout,
} from "./lib.ts";
import { until, whenAcknowledged, whenSynced } from "./provider.ts";
import { type ChildServer, cpuMs, OURS, startServer } from "./server.ts";
import type { MemorySample } from "./servers/child.ts";
import { DOC, loadTrace, replayTrace } from "./trace.ts";

const SYNC_RUNS = 5;
const FAN_OUT = { clients: 10, writers: 3, intervalMs: 20, durationMs: 4_000 } as const;
const IDLE_CONNECTIONS = 500;
const IDLE_CHARACTERS = 10_000;
const WARM_UP_CLIENTS = 20;
const BATCH = 50;
const ZLIB_CONNECTIONS = 300;
const TIMEOUT_MS = 60_000;
const POLL_MS = 100;
const KB = 1024;

const BARE_WS = fileURLToPath(new URL("./servers/bare-ws.ts", import.meta.url));

/** The two settings compared, each on a server of its own. */
const SETTINGS = [
  { id: "off", env: { WS_COMPRESSION: "off" } },
  { id: "on", env: { WS_COMPRESSION: "on" } },
] as const;
type SettingId = (typeof SETTINGS)[number]["id"];

/** zlib options compared on the bare server. */
const ZLIB_SETUPS = [
  { label: "no compression", options: false },
  {
    label: "zlib's defaults (32 KiB window, memLevel 8, level 6, 16 KiB chunks)",
    options: { serverNoContextTakeover: true, threshold: 1024 },
  },
  { label: "WS_COMPRESSION=on's options", options: perMessageDeflate({ minBytes: 1024 }) },
] as const;

// --- Clients ---------------------------------------------------------------------------------

/** ws offering permessage-deflate (its default), which compresses every message it sends, as browsers do. */
class CompressingSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols, { perMessageDeflate: true });
    // The provider removes its listeners before closing a socket that may still be connecting;
    // ws then reports an error with no listener left (docs/patches.md).
    this.on("error", () => {});
  }
}

interface Client {
  readonly provider: HocuspocusProvider;
  destroy(): void;
}

function openClient(
  url: string,
  name: string,
  options: { readonly presence?: boolean; readonly document?: Y.Doc } = {},
): Client {
  const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: CompressingSocket });
  const provider = new HocuspocusProvider({
    websocketProvider: socket,
    name,
    document: options.document ?? new Y.Doc(),
    ...(options.presence === false ? { awareness: null } : {}),
  });
  provider.attach();
  return {
    provider,
    destroy() {
      provider.destroy();
      socket.destroy();
    },
  };
}

/** Opens `count` clients of `name`, BATCH at a time, each batch synced before the next. */
async function connectMany(url: string, name: string, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let at = 0; at < count; at += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - at) }, () =>
      openClient(url, name, { presence: false }),
    );
    clients.push(...batch);
    await withTimeout(
      Promise.all(batch.map((c) => whenSynced(c.provider))),
      TIMEOUT_MS,
      `${clients.length} clients to sync`,
    );
  }
  return clients;
}

/** Resolves once the server counts `connections` connections, polling its statistics. */
async function whenConnections(server: ChildServer, connections: number): Promise<void> {
  const deadline = performance.now() + TIMEOUT_MS;
  while ((await server.stats()).connections !== connections) {
    if (performance.now() > deadline) throw new Error(`the server never got to ${connections}`);
    await sleep(POLL_MS);
  }
}

// --- Counting bytes --------------------------------------------------------------------------

/** A TCP proxy in front of a server that counts what it carries each way. */
interface CountingProxy {
  /** ws:// URL of the proxy. */
  readonly url: string;
  /** Bytes since the last reset: client to server (`up`) and back (`down`). */
  readonly bytes: { up: number; down: number };
  reset(): void;
  close(): Promise<void>;
}

async function countingProxy(target: string): Promise<CountingProxy> {
  const port = Number(new URL(target).port);
  const bytes = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk: Buffer) => {
      bytes.up += chunk.length;
    });
    upstream.on("data", (chunk: Buffer) => {
      bytes.down += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  return {
    url: `ws://127.0.0.1:${address.port}`,
    bytes,
    reset() {
      bytes.up = 0;
      bytes.down = 0;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// --- Measurements ----------------------------------------------------------------------------

interface Traffic {
  readonly up: number;
  readonly down: number;
}

interface SyncRun extends Traffic {
  readonly ms: number;
  readonly serverCpuMs: number;
}

/** A new client loads the trace document through the proxy. */
async function initialSync(
  server: ChildServer,
  proxy: CountingProxy,
  expected: string,
): Promise<SyncRun> {
  const before = await server.stats();
  proxy.reset();
  const started = performance.now();
  const client = openClient(proxy.url, DOC);
  try {
    await withTimeout(whenSynced(client.provider), TIMEOUT_MS, "the trace document to sync");
    const ms = performance.now() - started;
    const traffic = { ...proxy.bytes };
    if (client.provider.document.getText("text").toString() !== expected) {
      throw new Error("the synced client does not hold the trace document's text");
    }
    const after = await server.stats();
    return { ...traffic, ms, serverCpuMs: cpuMs(after.cpu) - cpuMs(before.cpu) };
  } finally {
    client.destroy();
  }
}

interface FanOutRun extends Traffic {
  readonly updates: number;
  readonly deliveries: number;
  readonly ms: number;
  readonly serverCpuMs: number;
}

/** S1's shape, short: writers type, everyone receives; bytes of every client through the proxy. */
async function fanOut(server: ChildServer, proxy: CountingProxy): Promise<FanOutRun> {
  const clients = Array.from({ length: FAN_OUT.clients }, () => openClient(proxy.url, "fan-out"));
  try {
    await withTimeout(
      Promise.all(clients.map((c) => whenSynced(c.provider))),
      TIMEOUT_MS,
      "the fan-out clients to sync",
    );
    await Promise.all(clients.map((c) => whenAcknowledged(c.provider)));
    const writers = clients.slice(0, FAN_OUT.writers);
    const perWriter = FAN_OUT.durationMs / FAN_OUT.intervalMs;
    const updates = writers.length * perWriter;
    const received = Promise.all(
      clients.map((c) =>
        until(c.provider.document, (doc) => doc.getText("text").length === updates),
      ),
    );
    const before = await server.stats();
    proxy.reset();
    const started = performance.now();
    await Promise.all(
      writers.map(
        (writer, w) =>
          new Promise<void>((resolve) => {
            let typed = 0;
            const text = writer.provider.document.getText("text");
            const timer = setInterval(() => {
              // Spread over the text, as several people typing in different places.
              text.insert(
                (typed * 7919 + w * 104_729) % (text.length + 1),
                "abcdefgh".charAt(typed % 8),
              );
              if (++typed === perWriter) {
                clearInterval(timer);
                resolve();
              }
            }, FAN_OUT.intervalMs);
          }),
      ),
    );
    await withTimeout(received, TIMEOUT_MS, "every client to receive every keystroke");
    await Promise.all(writers.map((w) => whenAcknowledged(w.provider)));
    const ms = performance.now() - started;
    const traffic = { ...proxy.bytes };
    const after = await server.stats();
    return {
      ...traffic,
      updates,
      deliveries: updates * (FAN_OUT.clients - 1),
      ms,
      serverCpuMs: cpuMs(after.cpu) - cpuMs(before.cpu),
    };
  } finally {
    for (const client of clients) client.destroy();
  }
}

interface IdleRun {
  readonly before: MemorySample;
  readonly after: MemorySample;
  readonly connectMs: number;
  readonly serverCpuMs: number;
}

/** IDLE_CONNECTIONS clients on one document that a holder keeps loaded. */
async function idle(server: ChildServer, text: string): Promise<IdleRun> {
  const holder = openClient(server.wsUrl, "idle", { presence: false });
  const clients: Client[] = [];
  try {
    await withTimeout(whenSynced(holder.provider), TIMEOUT_MS, "the idle document's holder");
    holder.provider.document.getText("text").insert(0, text);
    await whenAcknowledged(holder.provider);
    // Warm-up: code that runs once per process is not counted per connection.
    const warm = await connectMany(server.wsUrl, "idle", WARM_UP_CLIENTS);
    for (const client of warm) client.destroy();
    await whenConnections(server, 1);
    const before = await server.settledMemory();
    const cpuBefore = (await server.stats()).cpu;
    const started = performance.now();
    clients.push(...(await connectMany(server.wsUrl, "idle", IDLE_CONNECTIONS)));
    const connectMs = performance.now() - started;
    const cpuAfter = (await server.stats()).cpu;
    await whenConnections(server, IDLE_CONNECTIONS + 1);
    const after = await server.settledMemory();
    return { before, after, connectMs, serverCpuMs: cpuMs(cpuAfter) - cpuMs(cpuBefore) };
  } finally {
    for (const client of clients) client.destroy();
    holder.destroy();
  }
}

interface SettingResult {
  readonly sync: SyncRun[];
  readonly fanOut: FanOutRun;
  readonly idle: IdleRun;
}

async function measureSetting(
  context: BenchContext,
  setting: (typeof SETTINGS)[number],
  dir: string,
  trace: { readonly state: Uint8Array; readonly text: string },
): Promise<SettingResult> {
  const server = await startServer(`WS_COMPRESSION=${setting.id}`, OURS, {
    ...ALLOCATOR_ENV,
    ...setting.env,
    DATA_DIR: dir,
    LOG_LEVEL: "warn",
  });
  const proxy = await countingProxy(server.wsUrl);
  try {
    // The client that stores the document stays, so every run finds it loaded and measures
    // the sync itself (encoding, compressing, sending), not a load from LevelDB.
    const seeder = openClient(server.wsUrl, DOC, { presence: false });
    const sync: SyncRun[] = [];
    try {
      Y.applyUpdate(seeder.provider.document, trace.state);
      await withTimeout(whenSynced(seeder.provider), TIMEOUT_MS, "storing the trace document");
      await withTimeout(whenAcknowledged(seeder.provider), TIMEOUT_MS, "the trace stored");
      await initialSync(server, proxy, trace.text); // warm-up, not counted
      for (let run = 0; run < SYNC_RUNS; run++) {
        const result = await initialSync(server, proxy, trace.text);
        sync.push(result);
        context.log(
          `${setting.id}: initial sync ${run + 1}/${SYNC_RUNS}: ${result.down.toLocaleString("en-US")} B down, ${result.up.toLocaleString("en-US")} B up, ${round(result.ms)} ms, server CPU ${round(result.serverCpuMs)} ms`,
        );
      }
    } finally {
      seeder.destroy();
    }
    const fan = await fanOut(server, proxy);
    context.log(
      `${setting.id}: fan-out: ${fan.down.toLocaleString("en-US")} B down, ${fan.up.toLocaleString("en-US")} B up for ${fan.updates} updates, server CPU ${round(fan.serverCpuMs)} ms`,
    );
    const idleRun = await idle(server, trace.text.slice(0, IDLE_CHARACTERS));
    context.log(
      `${setting.id}: ${IDLE_CONNECTIONS} idle connections: RSS ${round((idleRun.after.rss - idleRun.before.rss) / IDLE_CONNECTIONS / KB)} KB each, connected in ${round(idleRun.connectMs)} ms`,
    );
    return { sync, fanOut: fan, idle: idleRun };
  } finally {
    await proxy.close();
    await server.stop();
  }
}

interface ZlibRun {
  readonly label: string;
  readonly rssKb: number;
  readonly heapKb: number;
  /** The trace document's state compressed with these options (zlib in this process), or null. */
  readonly traceBytes: number | null;
  readonly traceMs: number | null;
}

/** `state` deflated as `ws` would with `options`: bytes, and the median ms of 5. */
function deflateTrace(
  state: Uint8Array,
  options: PerMessageDeflateOptions | false,
): { bytes: number; ms: number } | null {
  if (options === false) return null;
  const { level, memLevel } = options.zlibDeflateOptions ?? {};
  const zlibOptions = { level, memLevel, windowBits: options.serverMaxWindowBits ?? 15 };
  let bytes = 0;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    bytes = deflateRawSync(state, zlibOptions).length;
    times.push(performance.now() - started);
  }
  return { bytes, ms: median(times) };
}

/** Per-connection memory of the bare ws server under each of ZLIB_SETUPS. */
async function measureZlib(context: BenchContext, state: Uint8Array): Promise<ZlibRun[]> {
  const results: ZlibRun[] = [];
  const hello = Buffer.from(JSON.stringify({ user: { name: "a client", color: "#123456" } }));
  for (const setup of ZLIB_SETUPS) {
    const server = await startServer(setup.label, BARE_WS, {
      ...ALLOCATOR_ENV,
      WS_DEFLATE: JSON.stringify(setup.options),
    });
    const open: WebSocket[] = [];
    const one = async () => {
      const ws = new WebSocket(server.wsUrl, { perMessageDeflate: true });
      ws.on("error", () => {});
      await new Promise<void>((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      const replied = new Promise<void>((resolve) => ws.once("message", () => resolve()));
      ws.send(hello);
      await replied;
      return ws;
    };
    try {
      for (let i = 0; i < WARM_UP_CLIENTS; i++) (await one()).close();
      await whenConnections(server, 0);
      const before = await server.settledMemory();
      for (let at = 0; at < ZLIB_CONNECTIONS; at += BATCH) {
        open.push(...(await Promise.all(Array.from({ length: BATCH }, one))));
      }
      const after = await server.settledMemory();
      const per = (pick: (m: MemorySample) => number) =>
        (pick(after) - pick(before)) / ZLIB_CONNECTIONS / KB;
      const trace = deflateTrace(state, setup.options);
      const result = {
        label: setup.label,
        rssKb: per((m) => m.rss),
        heapKb: per((m) => m.heapUsed + m.external),
        traceBytes: trace?.bytes ?? null,
        traceMs: trace?.ms ?? null,
      };
      results.push(result);
      context.log(`bare ws, ${setup.label}: ${round(result.rssKb)} KB RSS per connection`);
    } finally {
      for (const ws of open) ws.terminate();
      await server.stop();
    }
  }
  return results;
}

// --- Report ----------------------------------------------------------------------------------

function buildRows(results: Record<SettingId, SettingResult>, traceStateBytes: number): Row[] {
  const { off, on } = results;
  const total = (t: Traffic) => t.up + t.down;
  const syncBytes = (r: SettingResult) => median(r.sync.map(total));
  const syncDown = (r: SettingResult) => median(r.sync.map((s) => s.down));
  const syncUp = (r: SettingResult) => median(r.sync.map((s) => s.up));
  const syncMs = (r: SettingResult) => median(r.sync.map((s) => s.ms));
  const syncCpu = (r: SettingResult) => median(r.sync.map((s) => s.serverCpuMs));
  const idleKb = (r: SettingResult, pick: (m: MemorySample) => number) =>
    (pick(r.idle.after) - pick(r.idle.before)) / IDLE_CONNECTIONS / KB;
  const rss = (m: MemorySample) => m.rss;
  const heap = (m: MemorySample) => m.heapUsed + m.external;
  const perDelivery = (r: SettingResult) => total(r.fanOut) / r.fanOut.deliveries;
  const fan = `${FAN_OUT.clients} clients with presence, ${FAN_OUT.writers} typing one character every ${FAN_OUT.intervalMs} ms for ${FAN_OUT.durationMs / 1000} s`;
  const idleWhat = `${IDLE_CONNECTIONS} clients without presence on one ${IDLE_CHARACTERS.toLocaleString("en-US")}-character document`;
  return [
    row({
      name: "initial sync of the trace document: bytes on the wire, both ways",
      value: syncBytes(on),
      unit: "B",
      better: "lower",
      reference: syncBytes(off),
      note: `down ${formatNumber(syncDown(on), "B")} / ${formatNumber(syncDown(off), "B")}, up ${formatNumber(syncUp(on), "B")} / ${formatNumber(syncUp(off), "B")} (on / off); the document's state is ${formatNumber(traceStateBytes, "B")}; median of ${SYNC_RUNS}`,
    }),
    row({
      name: "  time to synced, on loopback",
      value: syncMs(on),
      unit: "ms",
      better: "lower",
      reference: syncMs(off),
      note: "no slow link here: what compressing adds, not what it saves on a network",
    }),
    row({
      name: "  server CPU",
      value: syncCpu(on),
      unit: "ms",
      better: "lower",
      reference: syncCpu(off),
      note: "from connecting until synced, the document loaded: encoding, compressing, sending",
    }),
    row({
      name: "fan-out: bytes on the wire, all clients, both ways",
      value: total(on.fanOut),
      unit: "B",
      better: "lower",
      reference: total(off.fanOut),
      note: `${fan}: ${round(perDelivery(on))} / ${round(perDelivery(off))} B per delivered update (on / off), messages under the threshold go plain both ways from the server, clients compress theirs`,
    }),
    row({
      name: "  server CPU",
      value: on.fanOut.serverCpuMs,
      unit: "ms",
      better: "lower",
      reference: off.fanOut.serverCpuMs,
      note: `${on.fanOut.updates} updates to ${FAN_OUT.clients - 1} clients each, until all delivered and acknowledged`,
    }),
    row({
      name: "idle connection: server RSS",
      value: idleKb(on, rss),
      unit: "KB",
      better: "lower",
      reference: idleKb(off, rss),
      note: `${idleWhat}, each sent the document on connecting; (after − before) / ${IDLE_CONNECTIONS}, settled, after a full GC`,
    }),
    row({
      name: "  server JS heap + external",
      value: idleKb(on, heap),
      unit: "KB",
      better: "lower",
      reference: idleKb(off, heap),
      note: "leaves out zlib's own allocations, which only RSS sees",
    }),
    row({
      name: "  server CPU to connect and sync, per connection",
      value: on.idle.serverCpuMs / IDLE_CONNECTIONS,
      unit: "ms",
      better: "lower",
      reference: off.idle.serverCpuMs / IDLE_CONNECTIONS,
      note: `${BATCH} at a time; connecting took ${round(on.idle.connectMs / 1000)} / ${round(off.idle.connectMs / 1000)} s (on / off)`,
    }),
  ];
}

function markdown(rows: readonly Row[], zlib: readonly ZlibRun[]): string {
  const lines = [
    "| figure | off | on | on / off | note |",
    "|---|--:|--:|--:|---|",
    ...rows.map((r) => {
      const off = r.reference ?? Number.NaN;
      return `| ${r.name} | ${formatNumber(off, r.unit)} ${r.unit} | ${formatNumber(r.value, r.unit)} ${r.unit} | ${round(r.value / off)}× | ${r.note ?? ""} |`;
    }),
    "",
    `zlib streams alone (a bare ws server; each of ${ZLIB_CONNECTIONS} clients sent one compressed message and got 8 KiB back):`,
    "",
    "| options | RSS per connection | JS heap + external per connection | trace document's state compressed | in |",
    "|---|--:|--:|--:|--:|",
    ...zlib.map(
      (z) =>
        `| ${z.label} | ${round(z.rssKb)} KB | ${round(z.heapKb)} KB | ${z.traceBytes === null ? "" : `${formatNumber(z.traceBytes, "B")} B`} | ${z.traceMs === null ? "" : `${round(z.traceMs)} ms`} |`,
    ),
  ];
  return lines.join("\n");
}

async function run(context: BenchContext): Promise<BenchmarkResult> {
  context.log("replaying the trace (not timed)");
  const trace = loadTrace();
  const replay = replayTrace(trace);
  const state = Y.encodeStateAsUpdate(replay.doc);
  replay.doc.destroy();
  const prepared = { state, text: trace.endContent };
  const results = {} as Record<SettingId, SettingResult>;
  await withTempDir("compression", async (root) => {
    for (const setting of SETTINGS) {
      results[setting.id] = await measureSetting(
        context,
        setting,
        `${root}/${setting.id}`,
        prepared,
      );
    }
  });
  const zlib = await measureZlib(context, state);
  const rows = buildRows(results, state.length);
  return {
    rows,
    markdown: markdown(rows, zlib),
    details: {
      traceStateBytes: state.length,
      fanOut: FAN_OUT,
      idleConnections: IDLE_CONNECTIONS,
      idleCharacters: IDLE_CHARACTERS,
      settings: results,
      zlib,
    },
  };
}

/** `npm run bench compression`. */
export const compressionBenchmark: Benchmark = {
  id: "compression",
  title: "WebSocket compression: WS_COMPRESSION off and on",
  subject: "on",
  reference: "off",
  run,
};
