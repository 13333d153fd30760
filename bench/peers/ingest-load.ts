/**
 * The load generator of the peer scenarios S3 (cold load, bench/peers/s3.ts)
 * and S5 (durable ingest and kill -9, bench/peers/s5.ts): every client runs
 * here, in a process of its own, so the clients' CPU is not the server's and
 * every time is taken on one clock (this process's). Clients are each
 * server's own client library (bench/peers/client.ts: the Hocuspocus
 * provider, or y-websocket's `WebsocketProvider`).
 *
 * Run directly (with an IPC channel) it is the load generator; imported, it
 * gives the benchmark {@link startIngestLoad} (and {@link measureEach}, which
 * runs a scenario's servers in turn with one), which spawns it and sends it
 * one request at a time:
 *
 * - `trace`: a writer and a reader on a fresh document; the writer sends the
 *   whole Kleppmann trace (bench/trace.ts), each edit its own update message,
 *   `burst` per event loop turn; timed until the server accepted everything
 *   (see "accepted" below) and until the reader holds the final text.
 * - `load`: a fresh client connects and is timed until it holds the whole
 *   trace text (checked), not until `synced`: y-websocket reports `synced`
 *   before its server has loaded the stored content.
 * - `open`, `start`, `finish`: one writer and one reader per document; the
 *   writers type one character per update, each whenever it has fewer than
 *   `window` updates not yet accepted (closed loop: the server sets the
 *   pace), until `finish`, which waits until everything is accepted and
 *   delivered and reports the rate.
 * - `halt` (after the benchmark killed the server during a stream) and
 *   `read` (after it restarted it): which accepted updates the restarted
 *   server no longer has.
 *
 * "Accepted" is the closest thing each protocol has to "the server has it":
 * a Hocuspocus server's acknowledgement (ours sends it once the update is
 * stored; stock Hocuspocus on receipt), and for y-websocket, which has no
 * acknowledgement, the update's delivery to another connected client (the
 * reader), which shows the server received and applied it.
 *
 *   node --expose-gc bench/peers/ingest-load.ts     (with an IPC channel)
 */
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import * as Y from "yjs";
import { serveRequests, startChild } from "../child-process.ts";
import { withTimeout } from "../lib.ts";
import { loadTrace, replayTrace } from "../trace.ts";
import { openClient, type PeerClient } from "./client.ts";
import type { Peer, Protocol } from "./servers.ts";

// --- Protocol between the benchmark and this process -----------------------------------------

/** What the benchmark asks (without the id the wrapper adds). */
export type IngestCommand =
  | {
      readonly type: "trace";
      readonly protocol: Protocol;
      readonly url: string;
      readonly document: string;
      /** Edits applied (each sent as its own message) per event loop turn. */
      readonly burst: number;
      readonly timeoutMs: number;
    }
  | {
      readonly type: "load";
      readonly protocol: Protocol;
      readonly url: string;
      readonly document: string;
      readonly timeoutMs: number;
    }
  | {
      readonly type: "open";
      readonly protocol: Protocol;
      readonly url: string;
      /** One writer and one reader on each. */
      readonly documents: readonly string[];
    }
  | { readonly type: "start"; readonly window: number }
  | { readonly type: "finish"; readonly drainMs: number }
  | {
      readonly type: "halt";
      /** When the benchmark killed the server: `performance.timeOrigin + performance.now()` there. */
      readonly killedAt: number;
    }
  | {
      readonly type: "read";
      readonly url: string;
      /**
       * With y-websocket, stored content arrives after `synced`: how long to
       * wait for it before concluding the server kept nothing.
       */
      readonly quietMs: number;
      readonly timeoutMs: number;
    }
  | { readonly type: "close" };

/** How the trace was sent (`trace`). */
export interface TraceReport {
  readonly updates: number;
  readonly characters: number;
  /** From the first edit applied until the last one applied (sent into the socket). */
  readonly sendMs: number;
  /** From the first edit until the server had accepted all of them. */
  readonly acceptedMs: number;
  /** From the first edit until the reader held the final text. */
  readonly readerMs: number;
  /** User + system CPU of this process (writer and reader) over the same span, ms. */
  readonly cpuMs: number;
}

/** One timed load (`load`). */
export interface LoadReport {
  /** From creating the client until it held the whole text. */
  readonly contentMs: number;
  /** From creating the client until it reported `synced`. */
  readonly syncedMs: number;
}

/** What a closed-loop stream achieved (`finish`). */
export interface StreamReport {
  readonly writers: number;
  readonly window: number;
  readonly sent: number;
  readonly accepted: number;
  /** Updates that reached the readers (each writer's reader). */
  readonly delivered: number;
  /** Whether everything sent was accepted and delivered before the drain ran out. */
  readonly complete: boolean;
  /** From the start until sending stopped. */
  readonly sendMs: number;
  /** From the start until the last update was accepted. */
  readonly spanMs: number;
  /** `accepted` per second over `spanMs`. */
  readonly acceptedPerSecond: number;
  /** Send to acceptance, ms. */
  readonly acceptLatency: { readonly p50: number; readonly p99: number; readonly max: number };
  /** User + system CPU of this process over the stream, ms. */
  readonly cpuMs: number;
}

/** The stream at the moment the server was killed (`halt`). */
export interface HaltReport {
  readonly sent: number;
  readonly accepted: number;
  /** From the start of the stream until the kill. */
  readonly killedAfterMs: number;
  /** Acceptance rate over the stream until the kill. */
  readonly acceptedPerSecond: number;
}

/** What the restarted server had kept of the halted stream (`read`). */
export interface LossReport {
  readonly accepted: number;
  /** Accepted updates present after the restart (each writer's contiguous prefix). */
  readonly kept: number;
  /** Accepted updates missing after the restart, all writers together. */
  readonly lost: number;
  /**
   * The longest stretch of lost accepted edits of one writer: from the
   * acceptance of its first lost update until the kill, ms (0 when none was lost).
   */
  readonly lostWindowMs: number;
  /** Updates kept beyond what had been accepted (sent, not yet acknowledged, but stored). */
  readonly keptUnaccepted: number;
  /** Whether each restored text is exactly the start of what its writer typed. */
  readonly consistent: boolean;
  /** Reading every document after the restart, until its content was there (or quiet). */
  readonly readMs: number;
}

/** The result of each command. */
export interface IngestResults {
  readonly trace: TraceReport;
  readonly load: LoadReport;
  readonly open: { readonly connectMs: number };
  readonly start: { readonly started: true };
  readonly finish: StreamReport;
  readonly halt: HaltReport;
  readonly read: LossReport;
  readonly close: { readonly closed: true };
}

type IngestRequest = IngestCommand & { readonly id: number };
type IngestReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly message: string };

// --- The benchmark's side --------------------------------------------------------------------

/** The longest {@link measureEach} waits for the load generator to stop. */
const STOP_LIMIT_MS = 20_000;
/** What a request may take beyond its own bounds (e.g. its command's `timeoutMs`). */
export const REQUEST_SLACK_MS = 15_000;

const SCRIPT = fileURLToPath(import.meta.url);

/** The running load generator, as the benchmark sees it. */
export interface IngestLoad {
  /** Sends `command` and waits for its result (rejects on its error, or after `timeoutMs`). */
  request<C extends IngestCommand>(
    command: C,
    timeoutMs: number,
  ): Promise<IngestResults[C["type"]]>;
  /** Stops the process (SIGTERM, then SIGKILL). Idempotent. */
  stop(): Promise<void>;
}

/** Starts this file as the load generator in a child process and waits until it is ready. */
export async function startIngestLoad(): Promise<IngestLoad> {
  const child = await startChild<IngestRequest, IngestReply>("the load generator", SCRIPT, {
    ready: "ingest-load-ready",
    failure: (reply) => (reply.ok ? undefined : reply.message),
  });
  return {
    async request<C extends IngestCommand>(command: C, timeoutMs: number) {
      const reply = await child.request(command, timeoutMs);
      // The child answers `command.type` with that command's result.
      return (reply as Extract<IngestReply, { ok: true }>).result as IngestResults[C["type"]];
    },
    stop: child.stop,
  };
}

/**
 * Runs `measure` on each of `peers` in turn, sharing one fresh load
 * generator, and stops it afterwards, also on failure; a load generator
 * that does not stop in time is left to the exit hook (bench/child-process.ts
 * kills it when the benchmark exits). Returns the results by peer id.
 */
export async function measureEach<R>(
  peers: readonly Peer[],
  measure: (load: IngestLoad, peer: Peer) => Promise<R>,
): Promise<Map<string, R>> {
  const results = new Map<string, R>();
  const load = await startIngestLoad();
  try {
    for (const peer of peers) results.set(peer.id, await measure(load, peer));
    return results;
  } finally {
    await withTimeout(load.stop(), STOP_LIMIT_MS, "the load generator to stop").catch(
      () => undefined,
    );
  }
}

/**
 * What "accepted" means for `peer`'s updates (see the module comment), for
 * the notes of S3 and S5.
 */
export function acceptedMeans(peer: Peer): string {
  switch (peer.acknowledges) {
    case "stored":
      return "accepted = acknowledged, sent once stored";
    case "received":
      return peer.durable
        ? "accepted = acknowledged on receipt; stored later (debounced 2 s, at most 10 s)"
        : "accepted = acknowledged on receipt; never stored";
    case "none":
      return "no acknowledgement: accepted = delivered to another client (the reader)";
  }
}

/** A cleanup after a failed step: `close` destroys whatever clients the failure left open. */
export function closeClients(load: IngestLoad): () => Promise<unknown> {
  return () => load.request({ type: "close" }, REQUEST_SLACK_MS);
}

// --- The load generator's side ---------------------------------------------------------------

const SYNC_TIMEOUT_MS = 30_000;
/** What writers type, over and over. */
const TYPED = "the quick brown fox jumps over the lazy dog ";
/** After a kill, before counting: lets the last replies already received be processed. */
const HALT_SETTLE_MS = 300;

/** The trace, replayed once (untimed) on first use. */
let traceCache: { updates: readonly Uint8Array[]; text: string } | undefined;

function trace(): { updates: readonly Uint8Array[]; text: string } {
  if (traceCache === undefined) {
    const replay = replayTrace(loadTrace());
    traceCache = { updates: replay.updates, text: replay.doc.getText("text").toString() };
    replay.doc.destroy();
  }
  return traceCache;
}

/** Whether `doc` holds exactly `text` (cheap length check first). */
function holds(doc: Y.Doc, text: string): boolean {
  const shared = doc.getText("text");
  return shared.length === text.length && shared.toString() === text;
}

async function syncAll(clients: readonly PeerClient[], what: string): Promise<void> {
  await withTimeout(
    Promise.all(clients.map((client) => client.synced())),
    SYNC_TIMEOUT_MS,
    `${what} to sync`,
  );
  // A Hocuspocus provider's initial sync leaves one change pending until the server answers.
  await withTimeout(
    Promise.all(clients.map((client) => client.acknowledged())),
    SYNC_TIMEOUT_MS,
    `${what}: the initial sync to be acknowledged`,
  );
}

/** Clients a request opened, destroyed by the next `close` (or a failure's cleanup). */
const open = new Set<PeerClient>();

function connect(protocol: Protocol, url: string, document: string): PeerClient {
  const client = openClient(protocol, url, document);
  open.add(client);
  return client;
}

function destroy(client: PeerClient): void {
  client.destroy();
  client.doc.destroy();
  open.delete(client);
}

async function sendTrace(command: Extract<IngestCommand, { type: "trace" }>): Promise<TraceReport> {
  const { updates, text } = trace();
  const writer = connect(command.protocol, command.url, command.document);
  const reader = connect(command.protocol, command.url, command.document);
  try {
    await syncAll([writer, reader], "the trace's writer and reader");
    globalThis.gc?.();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const readerHolds = reader.until((doc) => holds(doc, text)).then(() => performance.now());
    let abandoned = false;
    const run = (async () => {
      for (let at = 0; at < updates.length && !abandoned; at += command.burst) {
        if (at > 0) await nextTurn();
        const end = Math.min(at + command.burst, updates.length);
        for (let i = at; i < end; i++) Y.applyUpdate(writer.doc, updates[i] as Uint8Array);
      }
      const sentAt = performance.now();
      const readerAt = await readerHolds;
      // y-websocket has no acknowledgement: accepted means delivered to the reader.
      const acceptedAt =
        command.protocol === "y-websocket" ? readerAt : await writer.acknowledged();
      return { sentAt, readerAt, acceptedAt };
    })();
    const { sentAt, readerAt, acceptedAt } = await withTimeout(
      run,
      command.timeoutMs,
      `${updates.length} edits to be accepted and delivered`,
    ).catch((error: unknown) => {
      abandoned = true;
      throw error;
    });
    const cpu = process.cpuUsage(cpuBefore);
    if (!holds(writer.doc, text)) throw new Error("the writer's text differs from the trace's");
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      updates: updates.length,
      characters: text.length,
      sendMs: sentAt - started,
      acceptedMs: acceptedAt - started,
      readerMs: readerAt - started,
    };
  } finally {
    destroy(writer);
    destroy(reader);
  }
}

async function timeLoad(command: Extract<IngestCommand, { type: "load" }>): Promise<LoadReport> {
  const { text } = trace();
  globalThis.gc?.();
  const started = performance.now();
  const client = connect(command.protocol, command.url, command.document);
  try {
    const synced = client.synced().then(() => performance.now());
    await withTimeout(
      client.until((doc) => holds(doc, text)),
      command.timeoutMs,
      "the client to hold the whole trace text",
    );
    const contentMs = performance.now() - started;
    return { contentMs, syncedMs: (await synced) - started };
  } finally {
    destroy(client);
  }
}

/** A writer and its reader on one document, during a closed-loop stream. */
interface Pair {
  readonly document: string;
  readonly writer: PeerClient;
  readonly reader: PeerClient;
  /** The writer's Yjs client id: its updates' clocks are 0, 1, 2... (one character each). */
  readonly writerId: number;
  sent: number;
  accepted: number;
  /** How many of the writer's updates the reader holds. */
  delivered: number;
  readonly sendTimes: number[];
  readonly acceptTimes: number[];
}

/** The current (or last halted) stream. */
const stream = {
  protocol: "hocuspocus" as Protocol,
  pairs: [] as Pair[],
  running: false,
  window: 0,
  startedAt: 0,
  cpuBefore: process.cpuUsage(),
  pumpScheduled: false,
  /** Set by `halt`: the kill on this process's clock, and each writer's text then. */
  killedAt: Number.NaN,
  typed: [] as string[],
};

function accept(pair: Pair, count: number): void {
  if (count <= pair.accepted) return;
  const now = performance.now();
  for (let k = pair.accepted; k < count; k++) pair.acceptTimes[k] = now;
  pair.accepted = count;
  schedulePump();
}

function schedulePump(): void {
  if (stream.pumpScheduled || !stream.running) return;
  stream.pumpScheduled = true;
  setImmediate(pump);
}

/** Types one character per update for every writer with room in its window. */
function pump(): void {
  stream.pumpScheduled = false;
  if (!stream.running) return;
  for (const pair of stream.pairs) {
    const text = pair.writer.doc.getText("text");
    while (pair.sent - pair.accepted < stream.window) {
      pair.sendTimes[pair.sent] = performance.now();
      // Counted before the insert: a Hocuspocus provider reports the pending change during it.
      pair.sent++;
      text.insert(text.length, TYPED[pair.sent % TYPED.length] as string);
    }
  }
}

async function openStream(
  command: Extract<IngestCommand, { type: "open" }>,
): Promise<{ connectMs: number }> {
  if (stream.pairs.length > 0) throw new Error("a stream is already open");
  const started = performance.now();
  const pairs = command.documents.map((document): Pair => {
    const writer = connect(command.protocol, command.url, document);
    const reader = connect(command.protocol, command.url, document);
    return {
      document,
      writer,
      reader,
      writerId: writer.doc.clientID,
      sent: 0,
      accepted: 0,
      delivered: 0,
      sendTimes: [],
      acceptTimes: [],
    };
  });
  stream.protocol = command.protocol;
  stream.pairs = pairs;
  stream.killedAt = Number.NaN;
  stream.typed = [];
  await syncAll(
    pairs.flatMap((pair) => [pair.writer, pair.reader]),
    `${pairs.length} writers and readers`,
  );
  for (const pair of pairs) {
    pair.reader.doc.on("afterTransaction", () => {
      const delivered = Y.getState(pair.reader.doc.store, pair.writerId);
      if (delivered <= pair.delivered) return;
      pair.delivered = delivered;
      if (stream.protocol === "y-websocket") accept(pair, delivered);
    });
    if (command.protocol === "hocuspocus") {
      pair.writer.onUnacknowledged((count) => accept(pair, pair.sent - count));
    }
  }
  return { connectMs: performance.now() - started };
}

function startStream(window: number): { started: true } {
  if (stream.pairs.length === 0) throw new Error("no stream is open");
  if (!(window >= 1)) throw new Error("the window must be at least 1");
  stream.window = window;
  globalThis.gc?.();
  stream.cpuBefore = process.cpuUsage();
  stream.startedAt = performance.now();
  stream.running = true;
  pump();
  return { started: true };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

function closeStream(): void {
  for (const pair of stream.pairs) {
    destroy(pair.writer);
    destroy(pair.reader);
  }
  stream.pairs = [];
  stream.running = false;
}

async function finishStream(drainMs: number): Promise<StreamReport> {
  if (stream.pairs.length === 0) throw new Error("no stream is open");
  stream.running = false;
  const stoppedAt = performance.now();
  const done = () => stream.pairs.every((p) => p.accepted === p.sent && p.delivered === p.sent);
  const deadline = stoppedAt + drainMs;
  while (!done() && performance.now() < deadline) await sleep(5);
  const cpu = process.cpuUsage(stream.cpuBefore);
  const pairs = stream.pairs;
  const sum = (pick: (pair: Pair) => number) => pairs.reduce((total, p) => total + pick(p), 0);
  const accepted = sum((p) => p.accepted);
  let lastAccept = stream.startedAt;
  const latencies: number[] = [];
  for (const pair of pairs) {
    for (let k = 0; k < pair.accepted; k++) {
      const at = pair.acceptTimes[k] as number;
      lastAccept = Math.max(lastAccept, at);
      latencies.push(at - (pair.sendTimes[k] as number));
    }
  }
  const sorted = Float64Array.from(latencies).sort();
  const spanMs = lastAccept - stream.startedAt;
  const report: StreamReport = {
    writers: pairs.length,
    window: stream.window,
    sent: sum((p) => p.sent),
    accepted,
    delivered: sum((p) => p.delivered),
    complete: done(),
    sendMs: stoppedAt - stream.startedAt,
    spanMs,
    acceptedPerSecond: spanMs > 0 ? (accepted / spanMs) * 1000 : Number.NaN,
    acceptLatency: {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: percentile(sorted, 1),
    },
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  closeStream();
  return report;
}

async function haltStream(killedAt: number): Promise<HaltReport> {
  if (stream.pairs.length === 0) throw new Error("no stream is open");
  stream.running = false;
  stream.killedAt = killedAt - performance.timeOrigin;
  // Replies the server sent before it died may still wait in the sockets: let them be processed.
  await sleep(HALT_SETTLE_MS);
  const pairs = stream.pairs;
  stream.typed = pairs.map((pair) => pair.writer.doc.getText("text").toString());
  for (const pair of pairs) {
    destroy(pair.writer);
    destroy(pair.reader);
  }
  // The pairs stay (clients destroyed) for `read`.
  const accepted = pairs.reduce((total, p) => total + p.accepted, 0);
  const killedAfterMs = stream.killedAt - stream.startedAt;
  return {
    sent: pairs.reduce((total, p) => total + p.sent, 0),
    accepted,
    killedAfterMs,
    acceptedPerSecond: (accepted / killedAfterMs) * 1000,
  };
}

/**
 * Resolves once `client` has synced and then holds at least `count` updates
 * of `writerId`, or received the writer's stored content (y-websocket sends
 * a document's stored state, once loaded, as one update after `synced`), or
 * nothing more arrived for `quietMs` (the server kept nothing).
 */
async function settled(
  client: PeerClient,
  writerId: number,
  count: number,
  quietMs: number,
): Promise<void> {
  await client.synced();
  const state = () => Y.getState(client.doc.store, writerId);
  const initial = state();
  if (initial >= count) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(finish, quietMs);
    function finish() {
      clearTimeout(timer);
      client.doc.off("afterTransaction", onChange);
      resolve();
    }
    function onChange() {
      if (state() > initial) finish();
    }
    client.doc.on("afterTransaction", onChange);
  });
}

async function readBack(command: Extract<IngestCommand, { type: "read" }>): Promise<LossReport> {
  const pairs = stream.pairs;
  if (pairs.length === 0 || stream.running || Number.isNaN(stream.killedAt)) {
    throw new Error("no halted stream to read back");
  }
  const started = performance.now();
  const readers = pairs.map((pair) => connect(stream.protocol, command.url, pair.document));
  try {
    await withTimeout(
      Promise.all(
        readers.map((client, i) => {
          const pair = pairs[i] as Pair;
          return settled(client, pair.writerId, pair.accepted, command.quietMs);
        }),
      ),
      command.timeoutMs,
      "the restarted server's documents",
    );
    const readMs = performance.now() - started;
    let accepted = 0;
    let kept = 0;
    let lost = 0;
    let lostWindowMs = 0;
    let keptUnaccepted = 0;
    let consistent = true;
    for (const [i, pair] of pairs.entries()) {
      const doc = (readers[i] as PeerClient).doc;
      const present = Y.getState(doc.store, pair.writerId);
      const restored = doc.getText("text").toString();
      if (restored !== (stream.typed[i] ?? "").slice(0, present)) consistent = false;
      accepted += pair.accepted;
      kept += Math.min(present, pair.accepted);
      keptUnaccepted += Math.max(0, present - pair.accepted);
      if (present < pair.accepted) {
        lost += pair.accepted - present;
        const firstLost = pair.acceptTimes[present] as number;
        lostWindowMs = Math.max(lostWindowMs, stream.killedAt - firstLost);
      }
    }
    return { accepted, kept, lost, lostWindowMs, keptUnaccepted, consistent, readMs };
  } finally {
    for (const client of readers) destroy(client);
    stream.pairs = [];
  }
}

function closeAll(): void {
  stream.running = false;
  stream.pairs = [];
  for (const client of [...open]) destroy(client);
}

async function answer(request: IngestRequest): Promise<unknown> {
  switch (request.type) {
    case "trace":
      return sendTrace(request);
    case "load":
      return timeLoad(request);
    case "open":
      return openStream(request);
    case "start":
      return startStream(request.window);
    case "finish":
      return finishStream(request.drainMs);
    case "halt":
      return haltStream(request.killedAt);
    case "read":
      return readBack(request);
    case "close":
      closeAll();
      return { closed: true };
  }
}

if (import.meta.main) {
  serveRequests<IngestRequest, IngestReply>(
    "ingest-load-ready",
    async (request) => ({ id: request.id, ok: true, result: await answer(request) }),
    ({ id }, message) => ({ id, ok: false, message }),
    closeAll,
  );
}
