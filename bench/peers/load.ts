/**
 * The load generator of the peer benchmarks (bench/peers/s1-s2.ts,
 * bench/peers/s4.ts): clients of any server under comparison, in a process
 * of their own so their CPU is not the server's, driven over Node's IPC
 * channel one request at a time. It generalises bench/scale-load.ts (one
 * document, Hocuspocus only) to many documents and to both client libraries
 * (bench/peers/client.ts: the Hocuspocus provider, or y-websocket's
 * `WebsocketProvider`):
 *
 * 1. `connect`: opens, for every document of the plan, its writers and its
 *    readers (one socket each), a batch at a time, and waits until every
 *    client is synced and has nothing unacknowledged (Hocuspocus counts the
 *    initial sync as one change until the server answers).
 * 2. `run`: every writer types one character per update at the end of its
 *    document's text, `rate` updates per second, on schedule (open loop: a
 *    writer that fell behind catches up, and how late it sent is reported),
 *    writers spread evenly over one interval; then it waits until every
 *    update reached every other client of its document, or `drainMs`
 *    passed. Reports delivered updates per second, delivery latency (a
 *    writer's insert until the update is integrated in another client's
 *    Y.Doc: one clock, this process's `performance.now()`), completeness,
 *    the writers' acknowledgement latency (Hocuspocus only), how late sends
 *    went out, and this process's CPU.
 * 3. `close`: destroys the clients.
 *
 * The benchmark side starts it with {@link startLoadGenerator}; the process
 * itself runs `node --expose-gc bench/peers/load.ts` (with an IPC channel).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import * as Y from "yjs";
import { serveLoadRequests, startLoadProcess } from "../child-process.ts";
import { type Latency, summarizeLatency, withTimeout } from "../lib.ts";
import type { ChildServer } from "../server.ts";
import { openClient, type PeerClient } from "./client.ts";
import { withSession } from "./common.ts";
import type { Peer, Protocol } from "./servers.ts";

// --- Messages --------------------------------------------------------------------------------

/** One document of a load: how many of its clients type, and how many only receive. */
export interface DocumentPlan {
  readonly name: string;
  readonly writers: number;
  readonly readers: number;
}

/** What the benchmark asks. */
export type LoadRequest =
  | {
      readonly id: number;
      readonly type: "connect";
      readonly protocol: Protocol;
      /** The server's WebSocket URL. */
      readonly url: string;
      readonly documents: readonly DocumentPlan[];
      /** Clients opened at once; the next batch opens when these are synced. */
      readonly batch: number;
      /** The longest to wait for all clients to be synced. */
      readonly timeoutMs: number;
      /** Whether clients share presence (their library's default). @default true */
      readonly presence?: boolean;
    }
  | {
      readonly id: number;
      readonly type: "run";
      /** Updates per second, per writer. */
      readonly rate: number;
      /** How long writers send. */
      readonly durationMs: number;
      /** After the last update was sent, the longest to wait for it to reach everyone. */
      readonly drainMs: number;
      /** How many evenly spaced latencies (of the sorted samples) to send back. */
      readonly samples: number;
    }
  | { readonly id: number; readonly type: "close" };

/** What one `run` measured. */
export interface LoadReport {
  readonly writers: number;
  readonly clients: number;
  readonly sent: number;
  /** Every update sent × the other clients of its document. */
  readonly expectedDeliveries: number;
  readonly delivered: number;
  /** Whether everything sent reached every other client of its document before `drainMs` ran out. */
  readonly complete: boolean;
  /** Whether the writers had nothing unacknowledged at the end (null: the protocol has no acknowledgements). */
  readonly acknowledged: boolean | null;
  /** Received messages (applied as one transaction each) that brought updates. */
  readonly deliveringMessages: number;
  /** From the first update sent until the last one delivered (or the drain gave up). */
  readonly spanMs: number;
  /** From the first update sent until the last one sent. */
  readonly sendMs: number;
  readonly sentPerSecond: number;
  /** `delivered` over `spanMs`: what the receivers got per second. */
  readonly deliveredPerSecond: number;
  /** How late updates went out against their schedule: this process's own lag. */
  readonly sendLag: Latency;
  readonly latency: Latency;
  /** Up to `samples` latencies, evenly spaced over the sorted ones (ms). */
  readonly latencySamples: readonly number[];
  /** Writer's insert until the server's acknowledgement (null: no acknowledgements). */
  readonly acknowledgement: Latency | null;
  /** User + system CPU of this process over the run, in ms. */
  readonly cpuMs: number;
}

/** What the load generator answers. */
export type LoadReply =
  | {
      readonly id: number;
      readonly type: "connected";
      readonly connectMs: number;
      readonly clients: number;
    }
  | { readonly id: number; readonly type: "report"; readonly report: LoadReport }
  | { readonly id: number; readonly type: "closed" }
  | { readonly id: number; readonly type: "error"; readonly message: string };

// --- The benchmark's side --------------------------------------------------------------------

const LOAD = fileURLToPath(import.meta.url);
/** Added to a request's own bounds (its connect timeout, or duration plus two drains). */
const REQUEST_MARGIN_MS = 30_000;

/** The benchmark's handle on a load-generator process. */
export interface LoadGenerator {
  connect(
    command: Omit<Extract<LoadRequest, { type: "connect" }>, "type" | "id">,
  ): Promise<{ connectMs: number; clients: number }>;
  run(command: Omit<Extract<LoadRequest, { type: "run" }>, "type" | "id">): Promise<LoadReport>;
  close(): Promise<void>;
  /** Ends the process (SIGTERM, then SIGKILL). Idempotent. */
  stop(): Promise<void>;
}

/** Starts a load-generator process and waits until it is ready. */
export async function startLoadGenerator(): Promise<LoadGenerator> {
  const child = await startLoadProcess<LoadRequest, LoadReply>(LOAD);
  return {
    async connect(command) {
      const reply = await child.request(
        { type: "connect", ...command },
        command.timeoutMs + REQUEST_MARGIN_MS,
      );
      if (reply.type !== "connected") throw new Error(`unexpected reply ${reply.type}`);
      return { connectMs: reply.connectMs, clients: reply.clients };
    },
    async run(command) {
      const reply = await child.request(
        { type: "run", ...command },
        command.durationMs + 2 * command.drainMs + REQUEST_MARGIN_MS,
      );
      if (reply.type !== "report") throw new Error(`unexpected reply ${reply.type}`);
      return reply.report;
    },
    async close() {
      await child.request({ type: "close" }, REQUEST_MARGIN_MS);
    },
    stop: child.stop,
  };
}

/**
 * Runs `body` with `peer` started fresh on a fresh place and a fresh load
 * generator, and afterwards stops both and disposes of the place, also when
 * `body` fails.
 */
export function withPeer<T>(
  peer: Peer,
  body: (server: ChildServer, load: LoadGenerator) => Promise<T>,
): Promise<T> {
  return withSession(peer, async ({ server }) => {
    const load = await startLoadGenerator();
    try {
      return await body(server, load);
    } finally {
      await load.stop();
    }
  });
}

// --- The load generator's side ---------------------------------------------------------------

/** The scheduler's tick: sends due since the last tick go out together. */
const TICK_MS = 2;
/** What writers type, over and over. */
const TYPED = "the quick brown fox jumps over the lazy dog ";

interface Client {
  readonly peer: PeerClient;
  /** Indices (into `writers`) of the other writers on this client's document. */
  readonly watched: readonly number[];
  /** Per watched writer: the clock up to which this client has integrated its updates. */
  readonly seen: number[];
}

interface Writer {
  readonly client: Client;
  readonly clientId: number;
  readonly text: Y.Text;
  /** Clients that should receive each of its updates: the others on its document. */
  readonly receivers: number;
  /** Its clock when the current run started (one clock tick per character typed). */
  base: number;
  /** performance.now() of each update sent in the current run, by clock - base. */
  sendTimes: Float64Array;
  /** Updates sent in the current run. */
  sent: number;
  /** Updates of the current run acknowledged so far. */
  acked: number;
}

let clients: Client[] = [];
let writers: Writer[] = [];
/** Set while a run measures; called by the clients' transaction hooks. */
let onDelivered: ((writer: Writer, from: number, to: number) => void) | null = null;
let deliveringTransactions = 0;
/** Set while a run measures; called on every acknowledgement count change of a writer. */
let onAcknowledged: ((writer: Writer, unacknowledged: number) => void) | null = null;

async function connect(
  protocol: Protocol,
  url: string,
  plan: readonly DocumentPlan[],
  batch: number,
  timeoutMs: number,
  presence: boolean,
): Promise<number> {
  if (clients.length > 0) throw new Error("already connected");
  const started = performance.now();
  const deadline = started + timeoutMs;
  /** Every client to open, writers first within a document, with the writer indices they watch. */
  const specs: Array<{ name: string; writer: number; watched: number[]; receivers: number }> = [];
  let writerCount = 0;
  for (const document of plan) {
    const first = writerCount;
    writerCount += document.writers;
    const ids = Array.from({ length: document.writers }, (_, k) => first + k);
    const size = document.writers + document.readers;
    for (let k = 0; k < size; k++) {
      const writer = k < document.writers ? (ids[k] as number) : -1;
      specs.push({
        name: document.name,
        writer,
        watched: ids.filter((id) => id !== writer),
        receivers: size - 1,
      });
    }
  }
  for (let at = 0; at < specs.length; at += batch) {
    const opened: Client[] = [];
    for (const spec of specs.slice(at, at + batch)) {
      const peer = openClient(protocol, url, spec.name, new Y.Doc(), { presence });
      const client: Client = { peer, watched: spec.watched, seen: spec.watched.map(() => 0) };
      peer.doc.on("afterTransaction", (transaction: Y.Transaction) => {
        if (transaction.local) return;
        let advanced = false;
        for (let j = 0; j < client.watched.length; j++) {
          const writer = writers[client.watched[j] as number];
          if (writer === undefined) continue;
          const clock = Y.getState(peer.doc.store, writer.clientId);
          const from = client.seen[j] as number;
          if (clock > from) {
            client.seen[j] = clock;
            advanced = true;
            onDelivered?.(writer, from, clock);
          }
        }
        if (advanced && onDelivered !== null) deliveringTransactions++;
      });
      if (spec.writer >= 0) {
        const writer: Writer = {
          client,
          clientId: peer.doc.clientID,
          text: peer.doc.getText("text"),
          receivers: spec.receivers,
          base: 0,
          sendTimes: new Float64Array(0),
          sent: 0,
          acked: 0,
        };
        writers[spec.writer] = writer;
        peer.onUnacknowledged((count) => onAcknowledged?.(writer, count));
      }
      clients.push(client);
      opened.push(client);
    }
    const left = deadline - performance.now();
    await withTimeout(
      Promise.all(opened.map((client) => client.peer.synced())),
      Math.max(1, left),
      `${clients.length} of ${specs.length} clients to sync`,
    );
  }
  // The initial sync leaves one change pending until the server answers the client's state.
  await withTimeout(
    Promise.all(clients.map((client) => client.peer.acknowledged())),
    Math.max(1, deadline - performance.now()),
    "the initial sync to be acknowledged",
  );
  return performance.now() - started;
}

/** Destroys every client. */
function close(): void {
  for (const client of clients) {
    client.peer.destroy();
    client.peer.doc.destroy();
  }
  clients = [];
  writers = [];
}

/** `count` values evenly spaced over `sorted`, first and last included. */
function subsample(sorted: Float64Array, count: number): number[] {
  if (sorted.length <= count) return Array.from(sorted);
  if (count < 2) return count === 1 ? [sorted[sorted.length - 1] as number] : [];
  return Array.from(
    { length: count },
    (_, i) => sorted[Math.round((i * (sorted.length - 1)) / (count - 1))] as number,
  );
}

async function run(
  rate: number,
  durationMs: number,
  drainMs: number,
  samples: number,
): Promise<LoadReport> {
  if (writers.length === 0) throw new Error("no writers connected");
  const perWriter = Math.max(1, Math.floor((rate * durationMs) / 1000));
  let expectedMax = 0;
  for (const writer of writers) {
    const clock = Y.getState(writer.client.peer.doc.store, writer.clientId);
    writer.base = clock;
    writer.sendTimes = new Float64Array(perWriter);
    writer.sent = 0;
    writer.acked = 0;
    expectedMax += perWriter * writer.receivers;
  }
  for (const client of clients) {
    for (let j = 0; j < client.watched.length; j++) {
      const writer = writers[client.watched[j] as number] as Writer;
      if (client.seen[j] !== writer.base) {
        throw new Error("a client had not received everything sent before the run");
      }
    }
  }
  const latencies = new Float64Array(expectedMax);
  const lags = new Float64Array(perWriter * writers.length);
  const acknowledgements: number[] = [];
  let delivered = 0;
  let sent = 0;
  let lastDelivery = 0;
  /** Known once sending has ended. */
  let expectedDeliveries = Number.POSITIVE_INFINITY;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  deliveringTransactions = 0;
  onDelivered = (writer, from, to) => {
    const now = performance.now();
    for (let k = from; k < to; k++) {
      if (delivered < latencies.length) {
        latencies[delivered] = now - (writer.sendTimes[k - writer.base] as number);
      }
      delivered++;
    }
    lastDelivery = now;
    if (delivered >= expectedDeliveries) resolveDone();
  };
  const acknowledgeable = writers[0]?.client.peer.protocol === "hocuspocus";
  onAcknowledged = (writer, unacknowledged) => {
    const now = performance.now();
    const acked = writer.sent - unacknowledged;
    for (let k = writer.acked; k < acked; k++) {
      acknowledgements.push(now - (writer.sendTimes[k] as number));
    }
    writer.acked = Math.max(writer.acked, acked);
  };

  globalThis.gc?.();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let lastSend = started;
  const interval = 1000 / rate;
  const offsets = writers.map((_, w) => (w / writers.length) * interval);
  for (let finished = 0; finished < writers.length; ) {
    const now = performance.now();
    finished = 0;
    for (let w = 0; w < writers.length; w++) {
      const writer = writers[w] as Writer;
      const offset = offsets[w] as number;
      const due = Math.min(perWriter, Math.floor((now - started - offset) / interval) + 1);
      while (writer.sent < due) {
        const scheduled = started + offset + writer.sent * interval;
        const at = performance.now();
        writer.sendTimes[writer.sent] = at;
        lags[sent] = at - scheduled;
        writer.sent++;
        sent++;
        writer.text.insert(writer.text.length, TYPED[sent % TYPED.length] as string);
        lastSend = at;
      }
      if (writer.sent >= perWriter) finished++;
    }
    if (finished < writers.length) await sleep(TICK_MS);
  }
  expectedDeliveries = writers.reduce((sum, writer) => sum + writer.sent * writer.receivers, 0);
  if (delivered >= expectedDeliveries) resolveDone();
  const complete = await withTimeout(done, drainMs, "deliveries").then(
    () => true,
    () => false,
  );
  const end = complete ? lastDelivery : performance.now();
  const acknowledged = acknowledgeable
    ? await withTimeout(
        Promise.all(writers.map((writer) => writer.client.peer.acknowledged())),
        drainMs,
        "acknowledgements",
      ).then(
        () => true,
        () => false,
      )
    : null;
  onDelivered = null;
  onAcknowledged = null;
  const cpu = process.cpuUsage(cpuBefore);
  const sorted = latencies.subarray(0, Math.min(delivered, latencies.length)).sort();
  const spanMs = end - started;
  return {
    writers: writers.length,
    clients: clients.length,
    sent,
    expectedDeliveries,
    delivered,
    complete,
    acknowledged,
    deliveringMessages: deliveringTransactions,
    spanMs,
    sendMs: lastSend - started,
    sentPerSecond: (sent / Math.max(1, lastSend - started)) * 1000,
    deliveredPerSecond: (delivered / spanMs) * 1000,
    sendLag: summarizeLatency(lags.subarray(0, sent).sort()),
    latency: summarizeLatency(sorted),
    latencySamples: subsample(sorted, samples),
    acknowledgement: acknowledgeable
      ? summarizeLatency(Float64Array.from(acknowledgements).sort())
      : null,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

if (import.meta.main) {
  serveLoadRequests<LoadRequest, LoadReply>(
    {
      connect: async (request) => ({
        id: request.id,
        type: "connected",
        connectMs: await connect(
          request.protocol,
          request.url,
          request.documents,
          request.batch,
          request.timeoutMs,
          request.presence ?? true,
        ),
        clients: clients.length,
      }),
      run: async ({ id, rate, durationMs, drainMs, samples }) => ({
        id,
        type: "report",
        report: await run(rate, durationMs, drainMs, samples),
      }),
      close: ({ id }) => {
        close();
        return { id, type: "closed" };
      },
    },
    close,
  );
}
