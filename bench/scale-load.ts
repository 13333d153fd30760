/**
 * The load generator of the scale-out benchmark (bench/scale.ts), also
 * the typists of the attachments benchmark (bench/attachments.ts), in a
 * process of its own so the clients' CPU is not the servers'. The benchmark
 * drives it over Node's IPC channel, one request at a time:
 *
 * 1. `connect`: opens `writers + readers` @hocuspocus/provider clients on one
 *    document, split evenly over the given server URLs (writer i and reader i
 *    on URL i mod n), and waits until every one is synced and the writers
 *    have nothing unacknowledged.
 * 2. `run`: every writer types one character per update at the end of the
 *    text for `durationMs`, either at a fixed rate (open loop: a writer that
 *    fell behind its schedule catches up) or whenever it has fewer than a
 *    window of updates unacknowledged (closed loop, to find the servers'
 *    capacity); then everyone waits until all updates reached every other
 *    client or `drainMs` passed. Reports delivered updates per second,
 *    delivery latency (a writer's insert to the update integrated in another
 *    client's Y.Doc; one clock, this process's) split into same-instance and
 *    cross-instance pairs, acknowledgement latency (insert to the server's
 *    "stored" reply) and this process's CPU.
 * 3. `close`: destroys the clients.
 *
 *   node --expose-gc bench/scale-load.ts     (with an IPC channel)
 */
import { setTimeout as sleep } from "node:timers/promises";
import { HocuspocusProvider } from "@hocuspocus/provider";
import * as Y from "yjs";
import { serveLoadRequests } from "./child-process.ts";
import { type Latency, summarizeLatency, withTimeout } from "./lib.ts";
import { whenAcknowledged, whenSynced } from "./provider.ts";

/** How writers pace their updates. */
export type Pace =
  /** Open loop: `rate` updates per second per writer, on schedule, however the servers keep up. */
  | { readonly kind: "rate"; readonly rate: number }
  /**
   * Closed loop: each writer sends whenever it has fewer than `window`
   * updates unacknowledged, so the servers' pace sets the load (saturation).
   */
  | { readonly kind: "window"; readonly window: number };

/** What the benchmark asks. */
export type LoadRequest =
  | {
      readonly id: number;
      readonly type: "connect";
      /** WebSocket URLs of the instances, one or more. */
      readonly urls: readonly string[];
      readonly document: string;
      readonly writers: number;
      readonly readers: number;
    }
  | {
      readonly id: number;
      readonly type: "run";
      readonly pace: Pace;
      /** How long writers send. */
      readonly durationMs: number;
      /** After the last update was sent, the longest to wait for it to reach everyone. */
      readonly drainMs: number;
    }
  | { readonly id: number; readonly type: "close" };

/** What one `run` measured. */
export interface LoadReport {
  readonly writers: number;
  readonly receivers: number;
  readonly sent: number;
  /** `sent` × the clients that should receive each update (every client but its writer). */
  readonly expectedDeliveries: number;
  readonly delivered: number;
  /** Received messages (applied as one transaction each) that brought any of them. */
  readonly deliveringMessages: number;
  /** From the first update sent until the last one delivered (or the drain gave up). */
  readonly spanMs: number;
  /** From the first update sent until the last one sent. */
  readonly sendMs: number;
  readonly sentPerSecond: number;
  /** `delivered` over `spanMs`: what the receivers got per second. */
  readonly deliveredPerSecond: number;
  /** How late (ms) the latest update was sent against its schedule (open loop): the load generator's own lag. */
  readonly maxSendLagMs: number;
  readonly latency: Latency;
  readonly sameInstance: Latency | null;
  readonly crossInstance: Latency | null;
  /** Writer's insert until the server acknowledged it (stored). */
  readonly acknowledged: Latency;
  /** User + system CPU of this process over `spanMs`, in ms. */
  readonly cpuMs: number;
  /** Whether everything sent was delivered everywhere before `drainMs` ran out. */
  readonly complete: boolean;
}

/** What the load generator answers. */
export type LoadReply =
  | { readonly id: number; readonly type: "connected"; readonly connectMs: number }
  | { readonly id: number; readonly type: "report"; readonly report: LoadReport }
  | { readonly id: number; readonly type: "closed" }
  | { readonly id: number; readonly type: "error"; readonly message: string };

const SYNC_TIMEOUT_MS = 30_000;
/** The scheduler's tick: sends due since the last tick go out together. */
const TICK_MS = 2;
/** What writers type, over and over. */
const TYPED = "the quick brown fox jumps over the lazy dog ";

interface Client {
  readonly provider: HocuspocusProvider;
  readonly doc: Y.Doc;
  /** Index into the URLs: the instance it is connected to. */
  readonly instance: number;
  /** Its index among the writers, or -1 for a reader. */
  readonly writer: number;
  /** Per writer: the clock up to which this client has integrated that writer's updates. */
  readonly seen: number[];
}

interface Writer {
  readonly client: Client;
  /** performance.now() of each update sent, by its clock (one character per update). */
  sendTimes: Float64Array;
  sent: number;
  acked: number;
}

let clients: Client[] = [];
let writers: Writer[] = [];
/** Set while a run measures; called by the clients' transaction hooks. */
let onDelivered: ((client: Client, writer: number, from: number, to: number) => void) | null = null;
/** Transactions (one per received message) that brought updates, during the current run. */
let deliveringTransactions = 0;
/** Acknowledgement latencies of the current run, in ms. */
let acknowledgements: number[] = [];

async function connect(
  urls: readonly string[],
  document: string,
  writerCount: number,
  readerCount: number,
): Promise<number> {
  if (clients.length > 0) throw new Error("already connected");
  if (urls.length === 0 || writerCount < 1) throw new Error("need a URL and a writer");
  const started = performance.now();
  const open = (instance: number, writer: number): Client => {
    const doc = new Y.Doc();
    const url = urls[instance] as string;
    const provider = new HocuspocusProvider({ url, name: document, document: doc });
    const client: Client = {
      provider,
      doc,
      instance,
      writer,
      seen: new Array<number>(writerCount).fill(0),
    };
    doc.on("afterTransaction", (transaction: Y.Transaction) => {
      if (transaction.local) return;
      let advanced = false;
      for (let w = 0; w < writers.length; w++) {
        if (w === writer) continue;
        const id = (writers[w] as Writer).client.doc.clientID;
        const clock = Y.getState(doc.store, id);
        const from = client.seen[w] as number;
        if (clock > from) {
          client.seen[w] = clock;
          advanced = true;
          onDelivered?.(client, w, from, clock);
        }
      }
      if (advanced && onDelivered !== null) deliveringTransactions++;
    });
    return client;
  };
  const writerClients = Array.from({ length: writerCount }, (_, w) => open(w % urls.length, w));
  const readerClients = Array.from({ length: readerCount }, (_, r) => open(r % urls.length, -1));
  clients = [...writerClients, ...readerClients];
  writers = writerClients.map((client) => ({
    client,
    sendTimes: new Float64Array(0),
    sent: 0,
    acked: 0,
  }));
  for (const writer of writers) {
    writer.client.provider.on("unsyncedChanges", ({ number }: { number: number }) => {
      if (onDelivered === null) return;
      const acked = writer.sent - number;
      for (let k = writer.acked; k < acked; k++)
        acknowledgements.push(performance.now() - (writer.sendTimes[k] as number));
      writer.acked = Math.max(writer.acked, acked);
    });
  }
  await withTimeout(
    Promise.all(clients.map((client) => whenSynced(client.provider))),
    SYNC_TIMEOUT_MS,
    `${clients.length} clients to sync`,
  );
  // The initial sync leaves one change pending until the server answers the client's state.
  await withTimeout(
    Promise.all(writers.map((writer) => whenAcknowledged(writer.client.provider))),
    SYNC_TIMEOUT_MS,
    "the writers' initial sync to be acknowledged",
  );
  return performance.now() - started;
}

/** The {@link Latency} of `values`, in any order. */
function summarize(values: readonly number[]): Latency {
  return summarizeLatency(Float64Array.from(values).sort());
}

/** Sends bounded per writer in window mode (sendTimes is allocated up front). */
const MAX_WINDOW_SENDS = 200_000;

async function run(pace: Pace, durationMs: number, drainMs: number): Promise<LoadReport> {
  if (clients.length === 0) throw new Error("not connected");
  const perWriter =
    pace.kind === "rate"
      ? Math.max(1, Math.floor((pace.rate * durationMs) / 1000))
      : MAX_WINDOW_SENDS;
  for (const [w, writer] of writers.entries()) {
    // A writer's clock starts at 0 and grows by one per character typed.
    if (Y.getState(writer.client.doc.store, writer.client.doc.clientID) !== writer.sent) {
      throw new Error("a writer's clock does not match what it sent");
    }
    if (clients.some((client) => client.writer !== w && client.seen[w] !== writer.sent)) {
      throw new Error("a client had not received everything sent before the run");
    }
    const times = new Float64Array(writer.sent + perWriter);
    times.set(writer.sendTimes.subarray(0, writer.sent));
    writer.sendTimes = times;
    writer.acked = writer.sent - writer.client.provider.unsyncedChanges;
  }
  const before = writers.map((writer) => writer.sent);
  const sentBy = (w: number) => (writers[w] as Writer).sent - (before[w] as number);
  /** Known once sending has ended. */
  let expectedDeliveries = Number.POSITIVE_INFINITY;
  const same: number[] = [];
  const cross: number[] = [];
  acknowledgements = [];
  deliveringTransactions = 0;
  let delivered = 0;
  let lastDelivery = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  onDelivered = (client, w, from, to) => {
    const now = performance.now();
    const writer = writers[w] as Writer;
    const into = writer.client.instance === client.instance ? same : cross;
    for (let k = from; k < to; k++) into.push(now - (writer.sendTimes[k] as number));
    delivered += to - from;
    lastDelivery = now;
    if (delivered >= expectedDeliveries) resolveDone();
  };

  globalThis.gc?.();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let lastSend = started;
  /** Types one character at the end of the writer's text: one update, sent at once. */
  const type = (writer: Writer) => {
    const text = writer.client.doc.getText("text");
    const at = performance.now();
    writer.sendTimes[writer.sent] = at;
    writer.sent++;
    text.insert(text.length, TYPED[writer.sent % TYPED.length] as string);
    lastSend = at;
    return at;
  };
  let maxSendLagMs = 0;
  if (pace.kind === "rate") {
    const interval = 1000 / pace.rate;
    for (let sentEach = 0; sentEach < perWriter; ) {
      const now = performance.now();
      // Writers are spread evenly over one interval, so their updates do not all go out together.
      for (let w = 0; w < writers.length; w++) {
        const offset = (w / writers.length) * interval;
        const due = Math.min(perWriter, Math.floor((now - started - offset) / interval) + 1);
        while (sentBy(w) < due) {
          const scheduled = started + offset + sentBy(w) * interval;
          maxSendLagMs = Math.max(maxSendLagMs, type(writers[w] as Writer) - scheduled);
        }
      }
      sentEach = Math.min(...writers.map((_, w) => sentBy(w)));
      if (sentEach < perWriter) await sleep(TICK_MS);
    }
  } else {
    const end = started + durationMs;
    while (performance.now() < end) {
      for (let w = 0; w < writers.length; w++) {
        const writer = writers[w] as Writer;
        while (writer.client.provider.unsyncedChanges < pace.window && sentBy(w) < perWriter) {
          type(writer);
        }
      }
      await sleep(TICK_MS);
    }
  }
  const sent = writers.reduce((sum, _, w) => sum + sentBy(w), 0);
  expectedDeliveries = sent * (clients.length - 1);
  if (delivered >= expectedDeliveries) resolveDone();
  const complete = await withTimeout(done, drainMs, "deliveries").then(
    () => true,
    () => false,
  );
  const acked = await withTimeout(
    Promise.all(writers.map((writer) => whenAcknowledged(writer.client.provider))),
    drainMs,
    "acknowledgements",
  ).then(
    () => true,
    () => false,
  );
  onDelivered = null;
  const end = complete ? lastDelivery : performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  const spanMs = end - started;
  return {
    writers: writers.length,
    receivers: clients.length - 1,
    sent,
    expectedDeliveries,
    delivered,
    deliveringMessages: deliveringTransactions,
    spanMs,
    sendMs: lastSend - started,
    sentPerSecond: (sent / (lastSend - started)) * 1000,
    deliveredPerSecond: (delivered / spanMs) * 1000,
    maxSendLagMs,
    latency: summarize([...same, ...cross]),
    sameInstance: same.length > 0 ? summarize(same) : null,
    crossInstance: cross.length > 0 ? summarize(cross) : null,
    acknowledged: summarize(acknowledgements),
    cpuMs: (cpu.user + cpu.system) / 1000,
    complete: complete && acked,
  };
}

function close(): void {
  for (const client of clients) {
    client.provider.destroy();
    client.doc.destroy();
  }
  clients = [];
  writers = [];
}

serveLoadRequests<LoadRequest, LoadReply>(
  {
    connect: async (request) => ({
      id: request.id,
      type: "connected",
      connectMs: await connect(request.urls, request.document, request.writers, request.readers),
    }),
    run: async ({ id, pace, durationMs, drainMs }) => ({
      id,
      type: "report",
      report: await run(pace, durationMs, drainMs),
    }),
    close: ({ id }) => {
      close();
      return { id, type: "closed" };
    },
  },
  close,
);
