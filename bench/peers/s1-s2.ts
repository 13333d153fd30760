/**
 * Peer scenarios S1 (fan-out) and S2 (many rooms): the same open-loop typing
 * load on every server, one server at a time.
 *
 * - S1 fan-out: one document, 50 clients, 10 of them typing one character
 *   every 20 ms (500 updates/s, each to reach 49 clients), 15 s.
 * - S2 many rooms: 320 documents with 3 clients each (960 connections), one
 *   writer per document typing one character per second (320 updates/s in
 *   total, each to reach 2 clients), 15 s.
 *
 * How: for each server (bench/peers/servers.ts), a fresh place and a fresh
 * server process, and a fresh load-generator process (bench/peers/load.ts)
 * whose clients use the server's own client library. A short warm-up run of
 * the same shape on other documents (so neither side pays for compiling its
 * code in the measured run); once the server has unloaded those, its peak
 * RSS is reset (`/proc/<pid>/clear_refs`, so VmHWM then covers connecting
 * and the run; if the kernel refuses, it is sampled every 100 ms instead);
 * then the measured clients connect, and the run.
 *
 * Figures: delivery latency p50 / p99 / max (the writer's insert until the
 * update is integrated in another client's Y.Doc, both ends in the load
 * generator: one clock, every delivery counted), delivered updates per
 * second at the receivers (from the first update sent until the last one
 * delivered) and completeness (every update must reach every other client
 * of its document), the server's CPU seconds (user + system, from the first
 * update sent until all were delivered and the writers had nothing
 * unacknowledged), and its peak RSS.
 *
 * Why it is fair: every server gets the same updates on the same schedule
 * from a process of its own (open loop: the schedule does not depend on
 * the server, and how late the load generator itself sent is reported);
 * latency is measured at the receivers, which every protocol has, not from
 * acknowledgements, whose meaning differs (ours: stored; stock Hocuspocus:
 * received; y-websocket: none). The durable servers store as they go (ours
 * before acknowledging, y-websocket per update, Hocuspocus' database
 * extension on a 2 s debounce, so within the run), so CPU and memory include
 * their persistence; Hocuspocus in memory stores nothing and is the
 * no-persistence bound.
 */
import { readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { type BenchContext, round } from "../lib.ts";
import { cpuMs } from "../server.ts";
import { type Failure, failureReason, outcomeValues, whenUnloaded } from "./common.ts";
import { type DocumentPlan, type LoadReport, withPeer } from "./load.ts";
import type { Figure, ScenarioResult } from "./report.ts";
import type { Peer, PeerSet } from "./servers.ts";

/** One fan-out scenario's load. */
interface FanOutLoad {
  readonly id: "s1" | "s2";
  readonly label: string;
  readonly documents: readonly DocumentPlan[];
  /** The warm-up's documents: the same shape, other names. */
  readonly warmUp: readonly DocumentPlan[];
  /** Updates per second per writer. */
  readonly rate: number;
  readonly durationMs: number;
  readonly warmUpMs: number;
  /** Clients opened at once while connecting. */
  readonly batch: number;
}

const documents = (prefix: string, count: number, writers: number, readers: number) =>
  Array.from({ length: count }, (_, i) => ({ name: `${prefix}-${i}`, writers, readers }));

const S1: FanOutLoad = {
  id: "s1",
  label: "1 document, 50 clients, 10 writing one character every 20 ms",
  documents: documents("s1-fan-out", 1, 10, 40),
  warmUp: documents("s1-warm-up", 1, 10, 40),
  rate: 50,
  durationMs: 15_000,
  warmUpMs: 3_000,
  batch: 50,
};

const S2_DOCUMENTS = 320;
const S2: FanOutLoad = {
  id: "s2",
  label: `${S2_DOCUMENTS} documents × 3 clients, one writing one character per second`,
  documents: documents("s2-room", S2_DOCUMENTS, 1, 2),
  warmUp: documents("s2-warm-up", 32, 1, 2),
  rate: 1,
  durationMs: 15_000,
  warmUpMs: 3_000,
  batch: 100,
};

/** After the last update was sent, the longest to wait for every delivery (and acknowledgement). */
const DRAIN_MS = 15_000;
/** The longest to wait for all clients to be connected and synced. */
const CONNECT_TIMEOUT_MS = 60_000;
/** After the warm-up's clients left, the longest to wait for the server to unload their documents. */
const UNLOAD_TIMEOUT_MS = 15_000;
/** After connecting, before sending: presence announcements settle. */
const SETTLE_MS = 500;
/** Latency samples per server kept for the distribution chart. */
const CHART_SAMPLES = 5_000;
/** Send lag (ms) beyond which a latency figure says the load generator itself fell behind. */
const LAG_WARNING_MS = 50;
/** RSS sampling period when the peak cannot be reset. */
const RSS_SAMPLE_MS = 100;

// --- Peak RSS --------------------------------------------------------------------------------

/** A field of /proc/<pid>/status in bytes (the kernel reports kB), or NaN. */
async function statusBytes(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/**
 * Runs `body` and returns, with its result, the peak RSS of process `pid`
 * while it ran, in bytes, and how that was known.
 */
export async function withPeakRss<T>(
  pid: number,
  body: () => Promise<T>,
): Promise<{ result: T; peak: { bytes: number; how: string } }> {
  let reset = false;
  try {
    // Writing 5 resets the peak resident set size (VmHWM) to the current RSS.
    await writeFile(`/proc/${pid}/clear_refs`, "5");
    reset = true;
  } catch {
    // Not allowed here: sample instead.
  }
  let sampled = await statusBytes(pid, "VmRSS");
  const timer = setInterval(() => {
    void statusBytes(pid, "VmRSS").then((bytes) => {
      if (bytes > sampled || Number.isNaN(sampled)) sampled = bytes;
    });
  }, RSS_SAMPLE_MS);
  let result: T;
  try {
    result = await body();
  } finally {
    clearInterval(timer);
  }
  const hwm = reset ? await statusBytes(pid, "VmHWM") : Number.NaN;
  const peak = Number.isNaN(hwm)
    ? { bytes: sampled, how: `VmRSS sampled every ${RSS_SAMPLE_MS} ms` }
    : { bytes: Math.max(hwm, sampled), how: "VmHWM reset before connecting" };
  return { result, peak };
}

// --- One server ------------------------------------------------------------------------------

/** What one server did under the load. */
interface PeerRun {
  readonly peer: string;
  readonly connectMs: number;
  readonly clients: number;
  readonly report: LoadReport;
  readonly warmUp: Omit<LoadReport, "latencySamples">;
  /** Whether the server had unloaded the warm-up's documents before the measured run. */
  readonly warmUpUnloaded: boolean;
  /** User + system CPU of the server process over the run, in ms. */
  readonly serverCpuMs: number;
  readonly peakRssBytes: number;
  readonly peakRssHow: string;
  /** The server's own count after connecting (documents, connections). */
  readonly serverDocuments: number;
  readonly serverConnections: number;
  /** This machine's 1-minute load average before the server started. */
  readonly loadAverage: number;
}

function describe(run: PeerRun): string {
  const r = run.report;
  return `${Math.round(r.deliveredPerSecond)} delivered/s (${r.delivered}/${r.expectedDeliveries}${r.complete ? "" : ", INCOMPLETE"}), latency p50 ${round(r.latency.p50)} / p99 ${round(r.latency.p99)} / max ${round(r.latency.max)} ms, server CPU ${round(run.serverCpuMs / 1000)} s, peak RSS ${round(run.peakRssBytes / 2 ** 20)} MiB, ${run.clients} clients connected in ${round(run.connectMs / 1000)} s, send lag max ${round(r.sendLag.max)} ms, load generator CPU ${round(r.cpuMs / 1000)} s, ${round(r.delivered / Math.max(1, r.deliveringMessages))} updates per received message, load average ${round(run.loadAverage)}`;
}

async function measure(load: FanOutLoad, peer: Peer): Promise<PeerRun> {
  const loadAverage = loadavg()[0] ?? Number.NaN;
  return withPeer(peer, async (server, generator) => {
    const connect = (documents: readonly DocumentPlan[]) =>
      generator.connect({
        protocol: peer.protocol,
        url: server.wsUrl,
        documents,
        batch: load.batch,
        timeoutMs: CONNECT_TIMEOUT_MS,
      });
    const run = (durationMs: number, samples: number) =>
      generator.run({ rate: load.rate, durationMs, drainMs: DRAIN_MS, samples });

    await connect(load.warmUp);
    const { latencySamples: _, ...warmUp } = await run(load.warmUpMs, 0);
    await generator.close();
    const warmUpUnloaded = await whenUnloaded(server, UNLOAD_TIMEOUT_MS);

    const { result, peak } = await withPeakRss(server.pid, async () => {
      const connected = await connect(load.documents);
      await sleep(SETTLE_MS);
      const before = await server.stats();
      const report = await run(load.durationMs, CHART_SAMPLES);
      const after = await server.stats();
      return { connected, before, after, report };
    });
    const { connected, before, after, report } = result;
    await generator.close();
    return {
      peer: peer.id,
      connectMs: connected.connectMs,
      clients: connected.clients,
      report,
      warmUp,
      warmUpUnloaded,
      serverCpuMs: cpuMs(after.cpu) - cpuMs(before.cpu),
      peakRssBytes: peak.bytes,
      peakRssHow: peak.how,
      serverDocuments: before.documents,
      serverConnections: before.connections,
      loadAverage,
    };
  });
}

// --- Figures ---------------------------------------------------------------------------------

type Outcome = { run: PeerRun } | Failure;

function figures(
  load: FanOutLoad,
  peers: readonly Peer[],
  outcomes: ReadonlyMap<string, Outcome>,
): Figure[] {
  const writers = load.documents.reduce((sum, d) => sum + d.writers, 0);
  const offeredDeliveries = load.documents.reduce(
    (sum, d) => sum + d.writers * load.rate * (d.writers + d.readers - 1),
    0,
  );
  const lagMax = Math.max(
    ...[...outcomes.values()].map((o) => ("run" in o ? o.run.report.sendLag.max : 0)),
  );
  const figure = (
    metric: string,
    unit: string,
    better: Figure["better"],
    pick: (run: PeerRun) => number,
    note: string,
    extra: Partial<Pick<Figure, "target">> = {},
    notePerRun?: (run: PeerRun) => string | undefined,
  ): Figure => ({
    metric,
    unit,
    better,
    ...outcomeValues(
      peers,
      outcomes,
      ({ run }) => pick(run),
      ({ run }) => [
        run.report.complete
          ? undefined
          : `INCOMPLETE: ${run.report.delivered} of ${run.report.expectedDeliveries} deliveries`,
        run.report.acknowledged === false
          ? `some updates were still unacknowledged ${DRAIN_MS / 1000} s after the last was sent`
          : undefined,
        notePerRun?.(run),
      ],
    ),
    note,
    ...extra,
  });
  const latencyNote = `writer's insert → integrated in another client's Y.Doc, both in the load generator (one clock), every delivery; sends went out at most ${round(lagMax)} ms late`;
  /** The load generator itself fell behind: its latencies include its own delay. */
  const lagged = (run: PeerRun) =>
    run.report.sendLag.max > LAG_WARNING_MS
      ? `the load generator sent up to ${round(run.report.sendLag.max)} ms late (p99 ${round(run.report.sendLag.p99)} ms): the machine was busy, latencies include its delay`
      : undefined;
  return [
    figure(
      "delivery latency p50",
      "ms",
      "lower",
      (r) => r.report.latency.p50,
      latencyNote,
      {},
      lagged,
    ),
    figure(
      "delivery latency p99",
      "ms",
      "lower",
      (r) => r.report.latency.p99,
      `${latencyNote}; target for ours: no worse than the best peer (ratio ≥ 1)`,
      {},
      lagged,
    ),
    figure(
      "delivery latency max",
      "ms",
      "lower",
      (r) => r.report.latency.max,
      latencyNote,
      {},
      lagged,
    ),
    figure(
      "delivered updates/s",
      "updates/s",
      "higher",
      (r) => r.report.deliveredPerSecond,
      `at the receivers, from the first update sent to the last delivered; offered ${offeredDeliveries.toLocaleString("en-US")}/s (${writers} writers × ${load.rate}/s × the other clients of the document); target for ours: at least the best peer`,
    ),
    figure(
      "deliveries completed",
      "%",
      "higher",
      (r) => (100 * r.report.delivered) / r.report.expectedDeliveries,
      `every update sent must reach every other client of its document within ${DRAIN_MS / 1000} s of the last send`,
      { target: { op: ">=", value: 100 } },
    ),
    figure(
      "server CPU",
      "s",
      "lower",
      (r) => r.serverCpuMs / 1000,
      "user + system of the server process, from the first update sent until every update was delivered and acknowledged; includes storing for the durable servers (ours before acknowledging, y-websocket per update, Hocuspocus' database extension on its 2 s debounce)",
    ),
    figure(
      "server peak RSS",
      "MB",
      "lower",
      (r) => r.peakRssBytes / 1e6,
      "the server process's peak resident set size while the measured clients connected and ran (after the warm-up)",
      {},
      (r) => (r.peakRssHow.startsWith("VmHWM") ? undefined : r.peakRssHow),
    ),
  ];
}

// --- The scenarios ---------------------------------------------------------------------------

async function runFanOut(
  context: BenchContext,
  set: PeerSet,
  load: FanOutLoad,
): Promise<ScenarioResult> {
  context.log(`${load.id}: ${load.label}, ${load.durationMs / 1000} s per server`);
  const outcomes = new Map<string, Outcome>();
  const latencies: Record<string, readonly number[]> = {};
  for (const peer of set.peers) {
    const started = performance.now();
    try {
      const run = await measure(load, peer);
      outcomes.set(peer.id, { run });
      latencies[peer.id] = run.report.latencySamples;
      context.log(
        `${load.id} ${peer.label}: ${describe(run)} (${round((performance.now() - started) / 1000)} s)`,
      );
    } catch (error) {
      outcomes.set(peer.id, { error: failureReason(error) });
      context.log(`${load.id} ${peer.label}: FAILED: ${failureReason(error)}`);
    }
  }
  const runs = [...outcomes.entries()].map(([id, outcome]) =>
    "run" in outcome
      ? { ...outcome.run, report: { ...outcome.run.report, latencySamples: undefined } }
      : { peer: id, error: outcome.error },
  );
  return {
    figures: figures(load, set.peers, outcomes),
    charts: { latencies },
    details: {
      load: {
        label: load.label,
        documents: load.documents.length,
        clients: load.documents.reduce((sum, d) => sum + d.writers + d.readers, 0),
        writers: load.documents.reduce((sum, d) => sum + d.writers, 0),
        ratePerWriter: load.rate,
        durationMs: load.durationMs,
        warmUpMs: load.warmUpMs,
        warmUpDocuments: load.warmUp.length,
        drainMs: DRAIN_MS,
      },
      clients:
        "one load-generator process per server (bench/peers/load.ts), the server's own client library",
      cores: cpus().length,
      skipped: set.skipped,
      runs,
    },
  };
}

/** S1 fan-out: one document, 50 clients, 10 typing every 20 ms, 15 s; every server in turn. */
export function runS1(context: BenchContext, set: PeerSet): Promise<ScenarioResult> {
  return runFanOut(context, set, S1);
}

/** S2 many rooms: 320 documents × 3 clients, about 300 updates/s in total, 15 s; every server in turn. */
export function runS2(context: BenchContext, set: PeerSet): Promise<ScenarioResult> {
  return runFanOut(context, set, S2);
}
