/**
 * Soak ([REL4] in SPEC.md): hundreds of real clients connect, edit, set
 * presence and leave, cycle after cycle, for SIZE.soakMs. After every cycle
 * the server must hold no document and no connection, and its memory, once
 * settled, must not creep upwards: a document, connection, timer or Buffer
 * kept per client or per cycle shows up as heap or Buffer growth from cycle
 * to cycle (Hocuspocus has had several such leaks), and native memory kept
 * per cycle (LevelDB, add-ons) as growth of the malloc arenas. At the end
 * every edit a client saw acknowledged is read back from the server.
 *
 * The server runs as its own process (bench/servers/ours.ts, the same
 * createCollabServer as the CLI, started with --expose-gc by bench/server.ts)
 * so its memory is its own and can be measured after a full GC over IPC.
 * Compaction and automatic versions are set to happen often, so their code
 * paths (and timers) run many times during the soak.
 *
 * The seed fixes each cycle's plan (which documents, sockets, edits and ways
 * of leaving); the interleaving on the real sockets is not reproducible.
 */
import { appendFileSync } from "node:fs";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { median, withTimeout } from "../../bench/lib.ts";
import { whenAcknowledged, whenSynced } from "../../bench/provider.ts";
import { type ChildServer, OURS, startServer } from "../../bench/server.ts";
import type { MemorySample } from "../../bench/servers/child.ts";
import { ALLOCATOR_ENV } from "../../server/src/observability/allocator.ts";
import { nodeSocket } from "../helpers/clients.ts";
import { type Rng, random, randomTextEdit, rng, runSeed, withSeed } from "../helpers/prng.ts";
import { tempDir } from "../helpers/server.ts";
import { LONG, report, SIZE, timeout } from "./size.ts";

/**
 * Seeds pinned as regression tests (add failing seeds here, with a note). A
 * seed fixes the plan of every cycle, not the interleaving on the sockets.
 * These run in the long run only, at its size: five minutes each.
 */
const REGRESSION_SEEDS: ReadonlyArray<{ seed: number; note: string }> = [
  ...[684029191, 594306776, 1324683134, 1343541965].map((seed) => ({
    seed,
    note: "long run lost confirmed y-websocket edits before a client whose edits and close frame arrive together kept its connection to the end",
  })),
];

/** Documents the clients choose among: few enough that most cycles reload stored ones. */
const DOCUMENTS = 50;
/** Clients (one provider on one document each) per cycle. */
const CLIENTS_PER_CYCLE = 200;
/** Cycles at least, so the growth check compares several cycles with several. */
const MIN_CYCLES = 6;
/** Cycles at most, whatever the time: the loop always stops by itself. */
const MAX_CYCLES = 1_000;
/** How long one cycle's clients may take to connect, edit and leave. */
const CYCLE_TIMEOUT_MS = 60_000;
/** How long the server may take to unload everything once the clients left. */
const UNLOAD_TIMEOUT_MS = 30_000;
const MIB = 1024 * 1024;
/*
 * Memory is sampled once the server has settled after each cycle (ChildServer.settledMemory):
 * every document unloaded, its store's writes done, then full garbage collections until a
 * round in which it did no background work (automatic versions write to the store) and heap
 * and Buffer memory stood still. A sample then holds what the server keeps, not what a
 * cycle left in flight; the checks compare the medians of the first, middle and last third
 * of the samples, so one sample taken in a busy moment moves none of them.
 */
/**
 * Heap used may exceed the baseline (after the warm-up cycle), and its last
 * third the first, by this much. Settled, it stood 1-2 MiB above the
 * baseline from the first third on and moved by under 0.5 MiB between
 * thirds in an 82-cycle run; one leaked server-side connection costs
 * several KiB, so a leak of one connection per client (200 a cycle) or of
 * one document per cycle passes this within a few cycles.
 */
const HEAP_BOUND = 4 * MIB;
/**
 * Buffer memory (process.memoryUsage's external, which includes
 * arrayBuffers, and arrayBuffers alone) may exceed the baseline, and its last
 * third the first, by this much. Settled, both stayed within 0.3 MiB of the
 * baseline (external about 11 MiB, arrayBuffers 0.4 MiB); a Buffer of one
 * message kept per client would add about 200 KiB a cycle.
 */
const BUFFER_BOUND = MIB;
/*
 * Where the resident memory went, measured with SOAK_MEMORY_LOG over 5-minute runs (80 to
 * 88 cycles), second half of each run:
 * - Sampled after plain full GCs, RSS rose 0.49 to 1.24 MiB a cycle (ten runs) while heap,
 *   Buffers and files stood still: V8 keeps the pages a collection frees mapped for reuse,
 *   up to the largest heap the process has had (around cycle 40 its page mappings exceeded
 *   the pages its statistics count by 23 MiB). The settled sample now ends with V8's
 *   memory-pressure collection (`last-resort`, bench/servers/child.ts), which gives them
 *   back as its memory reducer does in an idle process: 0.22 MiB a cycle, V8's resident
 *   heap flat at 24 MiB.
 * - What was left was glibc's malloc arenas, 38 to 66 MiB (0.21 MiB a cycle): freed memory
 *   kept in per-thread arenas, and a mmap threshold raised to the largest block freed, so
 *   the ever larger reads of the growing documents came from the arenas and fragmented them.
 *   With the settings the server is started with (ALLOCATOR_ENV, which npm start and the
 *   Docker image set): RSS 0.05 MiB a cycle, the arenas 0.034 (flat at 31 MiB after cycle
 *   33), with LevelDB's caches bounded by their own settings (SERVER_ENV).
 */
/**
 * Which settled samples the growth per cycle is taken over (Theil-Sen slope): the second
 * half of the long run; in the bounded run (about 14 cycles) all of them after the warm-up,
 * since one step of the arenas (3 MiB between two cycles, seen once in three runs) moves
 * the slope of 7 samples to 0.7 MiB a cycle and that of 14 to 0.3.
 */
const SLOPE_WINDOW = LONG ? "2nd half" : "all cycles";
const slopeWindow = <T>(samples: readonly T[]): readonly T[] =>
  LONG ? samples.slice(Math.floor(samples.length / 2)) : samples;
/**
 * glibc's malloc arenas (resident, from /proc/self/smaps: everything native code
 * allocates apart from V8's heap pages and blocks mapped on their own) may grow by this
 * much per cycle over {@link SLOPE_WINDOW}. Measured 0.034 MiB a cycle in a quiet long run
 * (above), as the RSS below on a busy machine, and 0.03 to 0.24 in three bounded runs.
 */
const MALLOC_SLOPE_BOUND = LONG ? 0.3 * MIB : 0.6 * MIB;
/**
 * The whole RSS, per cycle over {@link SLOPE_WINDOW}. Long runs measured 0.05 to 0.09 MiB
 * a cycle on a quiet machine (80 to 88 cycles), and 0.12 to 0.25 with tests and builds
 * running on the same two cores (37 to 51 cycles: the same few MiB of arena steps over
 * fewer cycles); three bounded runs measured 0.09 to 0.31. A leak of 1 MiB a cycle, of
 * anything, comes on top of that and exceeds the bound of either run.
 */
const RSS_SLOPE_BOUND = LONG ? 0.3 * MIB : 0.6 * MIB;

/**
 * The server's settings for the soak: frequent compaction and automatic
 * versions, and LevelDB's two memory bounds (both caches, filled once) set
 * low: no block cache, a 64 KiB write buffer (so LevelDB also writes and
 * compacts table files all the time). At the defaults they fill over the
 * first 20 or so cycles, spread over the malloc arenas of the threads that
 * read and write (+0.55 MiB a cycle over 23 cycles measured, against +0.3 and
 * slowing with these), which would hide a leak of that size.
 */
const SERVER_ENV = {
  ...ALLOCATOR_ENV,
  COMPACT_MAX_ENTRIES: "20",
  VERSION_INTERVAL_MS: "1000",
  MAX_AUTO_VERSIONS: "3",
  LEVELDB_CACHE_BYTES: "0",
  LEVELDB_WRITE_BUFFER_BYTES: "65536",
};
/**
 * V8's young generation at its full size from the start (128 MiB reserved on
 * this machine's heap size): it otherwise doubles from 64 MiB within the
 * first cycles, and RSS counts its pages only as allocation first touches
 * them, a rise of about 60 MiB over ten cycles that levels off.
 */
const SERVER_NODE_FLAGS = ["--min-semi-space-size=64"];

/** How a socket leaves. */
type Leave =
  /** Destroys its providers (close messages, close frame) after everything was acknowledged. */
  | "graceful"
  /** Drops the TCP connection without a close frame after everything was acknowledged. */
  | "abrupt"
  /** Drops the TCP connection while connecting: at open or at authentication, before any edit. */
  | "early";

/** One socket of a cycle: its protocol, its documents (distinct), and how it leaves. */
interface SocketPlan {
  readonly protocol: "hocuspocus" | "y-websocket";
  readonly documents: readonly string[];
  readonly leave: Leave;
  /** For "early": leave when the socket opens, or when the first document is authenticated. */
  readonly earlyAt: "open" | "authenticated";
  /** Edits per document. */
  readonly edits: readonly number[];
}

/** What a cycle did. */
interface Tally {
  sockets: number;
  sharedSockets: number;
  clients: number;
  yWebsocketClients: number;
  edits: number;
  graceful: number;
  abrupt: number;
  early: number;
}

/**
 * Keys each document must hold in its "soak" map, written by clients whose
 * edits were confirmed, each with who wrote it (for the failure message).
 */
type Confirmed = Map<string, Map<string, string>>;

const documentName = (n: number) => `soak-${n}`;

/** A seeded plan for one cycle: sockets until CLIENTS_PER_CYCLE clients. */
function planCycle(r: Rng): SocketPlan[] {
  const plans: SocketPlan[] = [];
  let clients = 0;
  while (clients < CLIENTS_PER_CYCLE) {
    const kind = random.int(r, 0, 9);
    const protocol = kind === 0 ? "y-websocket" : "hocuspocus";
    // One socket in three of the Hocuspocus ones carries 2 to 4 documents.
    const wanted =
      protocol === "hocuspocus" && kind % 3 === 0
        ? Math.min(random.int(r, 2, 4), CLIENTS_PER_CYCLE - clients)
        : 1;
    const documents = new Set<string>();
    while (documents.size < wanted) documents.add(documentName(random.int(r, 0, DOCUMENTS - 1)));
    const way = random.int(r, 0, 19);
    const leave: Leave = way < 3 ? "early" : way < 7 ? "abrupt" : "graceful";
    plans.push({
      protocol,
      documents: [...documents],
      leave,
      earlyAt: random.bool(r) ? "open" : "authenticated",
      edits: [...documents].map(() => random.int(r, 1, 4)),
    });
    clients += documents.size;
  }
  return plans;
}

/** One seeded edit: a key only this edit writes, plus a random text or paragraph change. */
function edit(r: Rng, doc: Y.Doc, key: string): void {
  doc.transact(() => {
    doc.getMap("soak").set(key, random.word(r, 1, 4));
    if (random.int(r, 0, 2) === 0) {
      const fragment = doc.getXmlFragment("default");
      if (fragment.length > 8) fragment.delete(random.int(r, 0, fragment.length - 1), 1);
      const paragraph = new Y.XmlElement("paragraph");
      paragraph.insert(0, [new Y.XmlText(random.word(r))]);
      fragment.insert(random.int(r, 0, fragment.length), [paragraph]);
    } else {
      randomTextEdit(r, doc.getText("text"));
    }
  });
}

/** Closes the TCP connection under `ws` at once: no close frame, as when a client's process dies. */
function dropConnection(ws: unknown): void {
  if (!(ws instanceof WebSocket)) throw new Error("the client's socket is not a ws WebSocket");
  ws.terminate();
}

/** Resolves at the first of `events` on `emitter`. */
function first(
  emitter: { on(event: string, listener: () => void): unknown },
  ...events: string[]
): Promise<void> {
  return new Promise((resolve) => {
    for (const event of events) emitter.on(event, () => resolve());
  });
}

/**
 * One Hocuspocus socket with its providers: connect, edit, set presence,
 * wait for every acknowledgement, leave as planned. Returns the keys the
 * server acknowledged, per document. Every object is destroyed by
 * `cleanups`, also when the cycle fails.
 */
async function runHocuspocus(
  r: Rng,
  url: string,
  plan: SocketPlan,
  label: string,
  cleanups: Array<() => void>,
): Promise<Array<[string, string[]]>> {
  const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: nodeSocket() });
  const providers = plan.documents.map(
    (name) => new HocuspocusProvider({ websocketProvider: socket, name, document: new Y.Doc() }),
  );
  const destroy = () => {
    for (const provider of providers) {
      provider.destroy();
      provider.document.destroy();
    }
    socket.destroy();
  };
  cleanups.push(destroy);
  const drop = () => {
    dropConnection(socket.webSocket);
    destroy();
  };
  if (plan.leave === "early") {
    const at =
      plan.earlyAt === "open"
        ? first(socket, "open")
        : first(providers[0] as HocuspocusProvider, "authenticated");
    for (const provider of providers) provider.attach();
    await at;
    drop();
    return [];
  }
  for (const provider of providers) provider.attach();
  await Promise.all(providers.map(whenSynced));
  const keys = providers.map((provider, index) => {
    provider.setAwarenessField("user", { name: `${label}-${index}`, color: "#336699" });
    const written: string[] = [];
    for (let e = 0; e < (plan.edits[index] ?? 0); e++) {
      const key = `${label}-${index}-${e}`;
      edit(r, provider.document, key);
      written.push(key);
    }
    return [provider.configuration.name, written] as [string, string[]];
  });
  await Promise.all(providers.map(whenAcknowledged));
  if (plan.leave === "abrupt") drop();
  else destroy();
  return keys;
}

/**
 * One y-websocket client on `/yjs/<name>`: connect, set presence, edit,
 * leave as planned. y-websocket has no acknowledgements, so only the edits of
 * a graceful leave (sent before the close frame, on the socket it synced on,
 * open throughout) count as confirmed; an abrupt leave may lose what was
 * still in flight. A graceful leave sends its edits and its close frame at
 * once, so the server reads them together (see YWS3 in the y-websocket
 * integration test).
 */
async function runYWebsocket(
  r: Rng,
  url: string,
  plan: SocketPlan,
  label: string,
  cleanups: Array<() => void>,
): Promise<Array<[string, string[]]>> {
  const name = plan.documents[0] as string;
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`${url}/yjs`, encodeURIComponent(name), doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  const destroy = () => {
    provider.destroy();
    doc.destroy();
  };
  cleanups.push(destroy);
  const drop = () => {
    dropConnection(provider.ws);
    destroy();
  };
  if (plan.leave === "early") {
    await first(provider, "status");
    drop();
    return [];
  }
  await new Promise<void>((resolve) => {
    if (provider.synced) resolve();
    provider.on("sync", (isSynced: boolean) => isSynced && resolve());
  });
  // Only edits sent on an open socket count: y-websocket drops an edit made while its socket
  // is not open (the next connection would carry it, and this client makes none). A socket the
  // server closed before the leave fails the cycle as what it is, not as lost edits.
  let closedBy: string | null = null;
  provider.on("connection-close", (event) => {
    closedBy = event === null ? "the client" : `the server (${event.code} ${event.reason})`;
  });
  const open = (when: string) => {
    if (closedBy !== null || !provider.wsconnected || provider.ws?.readyState !== WebSocket.OPEN) {
      const state = closedBy === null ? "was not open" : `was closed by ${closedBy}`;
      throw new Error(`${label}: its y-websocket socket ${state} ${when}`);
    }
  };
  open("before it edited");
  provider.awareness.setLocalStateField("user", { name: label, color: "#993366" });
  const written: string[] = [];
  for (let e = 0; e < (plan.edits[0] ?? 0); e++) {
    const key = `${label}-${e}`;
    edit(r, doc, key);
    written.push(key);
  }
  if (plan.leave === "abrupt") {
    drop();
    return [];
  }
  open("before its graceful leave");
  destroy();
  return [[name, written]];
}

/** Runs one cycle's clients to the end and counts what they did into `tally`. */
async function runCycle(
  r: Rng,
  server: ChildServer,
  cycle: number,
  tally: Tally,
  confirmed: Confirmed,
): Promise<void> {
  const plans = planCycle(r);
  const cleanups: Array<() => void> = [];
  try {
    const runs = plans.map((plan, s) => {
      const label = `c${cycle}s${s}`;
      return plan.protocol === "hocuspocus"
        ? runHocuspocus(r, server.wsUrl, plan, label, cleanups)
        : runYWebsocket(r, server.wsUrl, plan, label, cleanups);
    });
    const results = await withTimeout(
      Promise.all(runs),
      CYCLE_TIMEOUT_MS,
      `cycle ${cycle}'s ${plans.length} sockets to connect, edit and leave`,
    );
    results.forEach((written, s) => {
      const plan = plans[s] as SocketPlan;
      const who = `${plan.protocol} socket of ${plan.documents.length}, ${plan.leave} leave`;
      for (const [name, keys] of written) {
        const known = confirmed.get(name) ?? new Map<string, string>();
        for (const key of keys) known.set(key, who);
        confirmed.set(name, known);
      }
    });
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
  for (const plan of plans) {
    tally.sockets++;
    if (plan.documents.length > 1) tally.sharedSockets++;
    tally.clients += plan.documents.length;
    if (plan.protocol === "y-websocket") tally.yWebsocketClients++;
    if (plan.leave !== "early") tally.edits += plan.edits.reduce((a, b) => a + b, 0);
    tally[plan.leave]++;
  }
}

/** Waits (polling the server over IPC) until it holds no document and no connection. */
async function unloaded(server: ChildServer, what: string): Promise<void> {
  await expect
    .poll(
      async () => {
        const { documents, connections } = await server.stats();
        return { documents, connections };
      },
      { timeout: UNLOAD_TIMEOUT_MS, interval: 50, message: `everything unloaded ${what}` },
    )
    .toEqual({ documents: 0, connections: 0 });
}

/** Reads every document back through a fresh provider; returns the confirmed keys it lacks. */
async function missingKeys(server: ChildServer, confirmed: Confirmed): Promise<string[]> {
  const missing: string[] = [];
  for (const [name, keys] of confirmed) {
    const provider = new HocuspocusProvider({
      url: server.wsUrl,
      name,
      document: new Y.Doc(),
    });
    try {
      await withTimeout(whenSynced(provider), CYCLE_TIMEOUT_MS, `${name} to sync`);
      const map = provider.document.getMap("soak");
      for (const [key, who] of keys) if (!map.has(key)) missing.push(`${name} ${key} (${who})`);
    } finally {
      provider.destroy();
      provider.document.destroy();
    }
  }
  return missing;
}

const mib = (bytes: number) => Math.round((bytes / MIB) * 10) / 10;
const perCycle = (bytes: number) => Math.round((bytes / MIB) * 1000) / 1000;

/** Resident bytes of glibc's malloc arenas (NaN where /proc is missing). */
const arenas = (m: MemorySample) => m.resident?.mallocArenas ?? Number.NaN;

/** RSS that is neither V8's counted heap, nor the malloc arenas, nor mapped files. */
const unaccounted = (m: MemorySample) =>
  m.rss - m.heapResident - arenas(m) - (m.resident?.file ?? Number.NaN);

/** The medians of the first, middle and last third of `values` (each at least one value). */
function thirds(values: readonly number[]): [number, number, number] {
  const size = Math.max(1, Math.floor(values.length / 3));
  const middle = values.slice(size, values.length - size);
  return [
    median(values.slice(0, size)),
    median(middle.length > 0 ? middle : values),
    median(values.slice(-size)),
  ];
}

/**
 * The slope of `values` per step, as the median of the slopes between every
 * two of them (Theil-Sen; 0 for fewer than two): a steady leak moves every
 * pair alike, while one step (LevelDB writing a table file, V8 or malloc
 * taking a new chunk at once) moves only the pairs around it.
 */
function slope(values: readonly number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < values.length; i++) {
    for (let j = i + 1; j < values.length; j++) {
      slopes.push(((values[j] ?? 0) - (values[i] ?? 0)) / (j - i));
    }
  }
  return slopes.length === 0 ? 0 : median(slopes);
}

/** One settled sample, for a failure message. */
function describeSample(m: MemorySample): string {
  return `heap ${mib(m.heapUsed)} ext ${mib(m.external)} ab ${mib(m.arrayBuffers)} rss ${mib(m.rss)} v8 ${mib(m.heapResident)} malloc ${mib(arenas(m))}`;
}

/** Appends a settled sample to SOAK_MEMORY_LOG (JSON lines), when set: for measuring the soak. */
function logMemory(cycle: number, sample: MemorySample): void {
  const file = process.env.SOAK_MEMORY_LOG;
  if (file) appendFileSync(file, `${JSON.stringify({ cycle, ...sample })}\n`);
}

async function soak(seed: number): Promise<void> {
  const r = rng(seed);
  const dataDir = await tempDir("collab-soak-");
  const server = await startServer(
    "soak",
    OURS,
    { ...SERVER_ENV, DATA_DIR: dataDir },
    SERVER_NODE_FLAGS,
  );
  try {
    const tally: Tally = {
      sockets: 0,
      sharedSockets: 0,
      clients: 0,
      yWebsocketClients: 0,
      edits: 0,
      graceful: 0,
      abrupt: 0,
      early: 0,
    };
    const confirmed: Confirmed = new Map();
    // Warm-up: module loading, JIT, the store's first writes of every document.
    await runCycle(r, server, 0, tally, confirmed);
    await unloaded(server, "after the warm-up cycle");
    const baseline = await server.settledMemory();
    logMemory(0, baseline);
    const samples: MemorySample[] = [];
    const started = performance.now();
    let cycles = 0;
    while (
      cycles < MAX_CYCLES &&
      (cycles < MIN_CYCLES || performance.now() - started < SIZE.soakMs)
    ) {
      cycles++;
      await runCycle(r, server, cycles, tally, confirmed);
      await unloaded(server, `after cycle ${cycles}`);
      const sample = await server.settledMemory();
      logMemory(cycles, sample);
      samples.push(sample);
    }
    const heap = thirds(samples.map((m) => m.heapUsed));
    const external = thirds(samples.map((m) => m.external));
    const arrayBuffers = thirds(samples.map((m) => m.arrayBuffers));
    const sloped = slopeWindow(samples);
    const mallocSlope = slope(sloped.map(arenas));
    const rssSlope = slope(sloped.map((m) => m.rss));
    const expected = [...confirmed.values()].reduce((sum, keys) => sum + keys.size, 0);
    const missing = await missingKeys(server, confirmed);
    await unloaded(server, "after reading every document back");
    const final = await server.stats();
    const last = samples.at(-1) ?? baseline;
    report(
      "soak",
      {
        seed,
        cycles: cycles + 1,
        "ms of cycles": Math.round(performance.now() - started),
        clients: tally.clients,
        "y-websocket clients": tally.yWebsocketClients,
        sockets: tally.sockets,
        "shared sockets": tally.sharedSockets,
        edits: tally.edits,
        documents: confirmed.size,
        "graceful leaves": tally.graceful,
        "abrupt leaves": tally.abrupt,
        "early leaves": tally.early,
      },
      {
        "documents loaded at end": final.documents,
        "connections open at end": final.connections,
        "confirmed edits stored": `${expected - missing.length}/${expected}`,
        "heap baseline MiB": mib(baseline.heapUsed),
        "heap by thirds MiB": heap.map(mib).join(" / "),
        "external baseline MiB": mib(baseline.external),
        "external by thirds MiB": external.map(mib).join(" / "),
        "arrayBuffers by thirds MiB": arrayBuffers.map(mib).join(" / "),
        "rss baseline MiB": mib(baseline.rss),
        "rss end MiB": mib(last.rss),
        [`rss slope, ${SLOPE_WINDOW} MiB/cycle`]: `${perCycle(rssSlope)} (bound ${perCycle(RSS_SLOPE_BOUND)})`,
        "malloc arenas baseline→end MiB": `${mib(arenas(baseline))}→${mib(arenas(last))}`,
        [`malloc arenas slope, ${SLOPE_WINDOW} MiB/cycle`]: `${perCycle(mallocSlope)} (bound ${perCycle(MALLOC_SLOPE_BOUND)})`,
        "rss outside V8's heap, malloc and files baseline→end MiB": `${mib(unaccounted(baseline))}→${mib(unaccounted(last))}`,
        "V8 heap resident end MiB": mib(last.heapResident),
      },
    );
    expect(missing, "confirmed edits missing when read back").toEqual([]);
    const series = `settled samples per cycle (MiB): ${samples.map(describeSample).join("; ")}`;
    expect(heap[2] - baseline.heapUsed, `heap above its baseline; ${series}`).toBeLessThan(
      HEAP_BOUND,
    );
    expect(heap[2] - heap[0], `heap, last third above the first; ${series}`).toBeLessThan(
      HEAP_BOUND,
    );
    for (const [name, byThirds, base] of [
      ["external", external, baseline.external],
      ["arrayBuffers", arrayBuffers, baseline.arrayBuffers],
    ] as const) {
      expect(byThirds[2] - base, `${name} above its baseline; ${series}`).toBeLessThan(
        BUFFER_BOUND,
      );
      expect(
        byThirds[2] - byThirds[0],
        `${name}, last third above the first; ${series}`,
      ).toBeLessThan(BUFFER_BOUND);
    }
    if (!Number.isNaN(mallocSlope)) {
      expect(mallocSlope, `malloc arenas grow over ${SLOPE_WINDOW}; ${series}`).toBeLessThan(
        MALLOC_SLOPE_BOUND,
      );
    }
    expect(rssSlope, `RSS grows over ${SLOPE_WINDOW}; ${series}`).toBeLessThan(RSS_SLOPE_BOUND);
  } finally {
    await server.stop();
  }
}

describe("soak", () => {
  for (const { seed, note } of LONG ? REGRESSION_SEEDS : []) {
    it(
      `[REL4] pinned seed ${seed} (${note})`,
      () => withSeed("soak", seed, () => soak(seed)),
      timeout(180_000, 900_000),
    );
  }

  it(
    "[REL4] clients connect, edit and leave in cycles; documents unload and memory returns to its baseline",
    () => {
      const seed = runSeed();
      return withSeed("soak", seed, () => soak(seed));
    },
    timeout(180_000, 900_000),
  );
});
