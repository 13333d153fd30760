/**
 * Peer scenario S3, cold load: how long a client waits for a long document
 * after the server restarted, for every server that keeps documents.
 *
 * For each durable server, on a fresh place (directory or database):
 *
 * 1. Ingest: a client of the load generator (bench/peers/ingest-load.ts, a
 *    process of its own) sends the Kleppmann trace (bench/trace.ts: 259,778
 *    edits, 104,852 characters at the end) as a client sends them: each edit
 *    its own update message from the server's own client library, 100 per
 *    event loop turn, while a reader is connected. The ingest rate (for
 *    context) counts until the server accepted every edit: acknowledged for
 *    Hocuspocus servers (ours: stored; stock: received), delivered to the
 *    reader for y-websocket (it has no acknowledgement). The server's peak
 *    RSS meanwhile shows whether one fast writer can grow its memory.
 * 2. Durable: both clients leave; we wait until the server unloaded the
 *    document (stock Hocuspocus stores it then, through its database
 *    extension) and its files or tables stopped changing (y-websocket's
 *    y-leveldb writes every update through a queue that may lag), then stop
 *    it gracefully (SIGTERM: every server flushes what it still holds) and
 *    measure the bytes on disk.
 * 3. First load: the server is started again on the same place (a fresh
 *    process: nothing cached, nothing compiled) and a new client is timed
 *    from its creation until it holds the whole text, compared with the
 *    trace's final text; not until `synced`, because y-websocket reports
 *    `synced` before its server has loaded the stored content.
 * 4. Repeated loads: the client leaves, we wait until the server unloaded the
 *    document, and a new client loads it again; the median of several.
 *
 * Servers that keep nothing across a restart (Hocuspocus in memory) get null
 * with a note. A server that fails a step, or exceeds a bound, gets NaN for
 * the figures that depend on it, with the reason in the note.
 *
 * Fairness: every server gets the same edits, sent the same way by its own
 * client library, on one clock (the load generator's), one server at a time,
 * each on a fresh place; the first load is always from a freshly started
 * process; load times include connecting, as a user's would.
 */
import { type BenchContext, median, round } from "../lib.ts";
import { cpuMs } from "../server.ts";
import { DOC } from "../trace.ts";
import { attemptSession, settle, whenUnloaded } from "./common.ts";
import {
  acceptedMeans,
  closeClients,
  type IngestLoad,
  measureEach,
  REQUEST_SLACK_MS,
  type TraceReport,
} from "./ingest-load.ts";
import type { Figure, ScenarioResult } from "./report.ts";
import { withPeakRss } from "./s1-s2.ts";
import type { Peer, PeerSet } from "./servers.ts";

/** Loads after the first one, on the same server process; the median is reported. */
const REPEATED_LOADS = 5;
/** Edits applied per event loop turn while sending the trace (each its own message). */
const BURST = 100;
/** Sending the trace until accepted and delivered (10 to 30 s on a quiet 2-core machine). */
const TRACE_TIMEOUT_MS = 200_000;
/** One load; y-leveldb's first load of the long update log takes tens of seconds. */
const LOAD_TIMEOUT_MS = 120_000;
/** After the clients left: the longest to wait for the server to store and unload. */
const SETTLE_TIMEOUT_MS = 120_000;
/** Issue 14's targets: a cold load in 60 ms, and the upload within 300 MB of server RSS. */
const TARGET_FIRST_LOAD_MS = 60;
const TARGET_TRACE_PEAK_RSS_MB = 300;

/** What S3 measured on one server. */
interface PeerRun {
  trace?: TraceReport;
  /** Server CPU (user + system) while the trace was sent, ms. */
  traceServerCpuMs?: number;
  /** The server's peak RSS while the trace was sent, and how it was known. */
  tracePeakRss?: { bytes: number; how: string };
  /** After the clients left: until the document was unloaded and the files or tables last changed. */
  writesAfterMs?: number;
  /** Whether the settle wait ended by its bound rather than by the server going quiet. */
  settleTimedOut?: boolean;
  bytes?: number;
  /** Bytes on disk once the loads are done and the server stopped again. */
  bytesAfterLoads?: number;
  restartMs?: number;
  firstLoadMs?: number;
  firstSyncedMs?: number;
  repeatedLoadsMs: number[];
  /** The server's own load timings (its load hook), where it reports them. */
  serverLoadsMs?: number[];
  error?: string;
}

/** Runs S3 on one durable server; failures end the run and are recorded in `error`. */
async function runPeer(context: BenchContext, load: IngestLoad, peer: Peer): Promise<PeerRun> {
  const run: PeerRun = { repeatedLoadsMs: [] };
  run.error = await attemptSession(context, peer, closeClients(load), async (session) => {
    const { place } = session;
    const before = await session.server.stats();
    const upload = await withPeakRss(session.server.pid, () =>
      load.request(
        {
          type: "trace",
          protocol: peer.protocol,
          url: session.server.wsUrl,
          document: DOC,
          burst: BURST,
          timeoutMs: TRACE_TIMEOUT_MS,
        },
        TRACE_TIMEOUT_MS + REQUEST_SLACK_MS,
      ),
    );
    run.trace = upload.result;
    run.tracePeakRss = upload.peak;
    const after = await session.server.stats();
    run.traceServerCpuMs = cpuMs(after.cpu) - cpuMs(before.cpu);
    context.log(
      `${peer.label}: trace sent, ${Math.round((run.trace.updates / run.trace.acceptedMs) * 1000)} updates/s accepted (${round(run.trace.acceptedMs)} ms; reader done after ${round(run.trace.readerMs)} ms; CPU: server ${round(run.traceServerCpuMs / 1000)} s, clients ${round(run.trace.cpuMs / 1000)} s)`,
    );
    const settled = await settle(session.server, place, SETTLE_TIMEOUT_MS);
    run.writesAfterMs = settled.lastChangeMs;
    run.settleTimedOut = settled.timedOut;
    await session.server.stop();
    run.bytes = await place.bytes();
    context.log(
      `${peer.label}: unloaded, still writing ${round(settled.lastChangeMs)} ms after the clients left${settled.timedOut ? " (bound reached)" : ""}; stopped, ${run.bytes.toLocaleString("en-US")} bytes on disk`,
    );

    run.restartMs = await session.restart();
    const loadOnce = () =>
      load.request(
        {
          type: "load",
          protocol: peer.protocol,
          url: session.server.wsUrl,
          document: DOC,
          timeoutMs: LOAD_TIMEOUT_MS,
        },
        LOAD_TIMEOUT_MS + REQUEST_SLACK_MS,
      );
    const first = await loadOnce();
    run.firstLoadMs = first.contentMs;
    run.firstSyncedMs = first.syncedMs;
    context.log(
      `${peer.label}: first load after restart ${round(first.contentMs)} ms (synced after ${round(first.syncedMs)} ms)`,
    );
    for (let i = 0; i < REPEATED_LOADS; i++) {
      if (!(await whenUnloaded(session.server, LOAD_TIMEOUT_MS))) {
        throw new Error(`${peer.label} still holds a document after ${LOAD_TIMEOUT_MS} ms`);
      }
      const again = await loadOnce();
      run.repeatedLoadsMs.push(again.contentMs);
    }
    context.log(
      `${peer.label}: repeated loads ${run.repeatedLoadsMs.map((ms) => round(ms)).join(", ")} ms`,
    );
    const stats = await session.server.stats();
    run.serverLoadsMs = stats.loads.filter((l) => l.name === DOC).map((l) => l.ms);
    await session.server.stop();
    run.bytesAfterLoads = await place.bytes();
  });
  return run;
}

/**
 * S3, cold load: sends the trace to every durable server, restarts it on
 * the same data and times the first and repeated loads; see the module
 * comment.
 */
export async function runS3(context: BenchContext, set: PeerSet): Promise<ScenarioResult> {
  const durable = set.peers.filter((peer) => peer.durable);
  const runs = await measureEach(durable, (load, peer) => {
    context.log(`${peer.label}: sending the trace (${BURST} edits per turn)`);
    return runPeer(context, load, peer);
  });

  const values = (pick: (run: PeerRun) => number | undefined) =>
    Object.fromEntries(
      set.peers.map((peer) => {
        const run = runs.get(peer.id);
        if (run === undefined) return [peer.id, null];
        return [peer.id, pick(run) ?? Number.NaN];
      }),
    );
  const notes = (describe: (peer: Peer, run: PeerRun) => string | undefined) =>
    Object.fromEntries(
      set.peers.flatMap((peer) => {
        const run = runs.get(peer.id);
        if (run === undefined) return [[peer.id, "keeps nothing across a restart"]];
        const parts = [describe(peer, run), run.error === undefined ? undefined : run.error];
        const text = parts.filter((p) => p !== undefined && p !== "").join("; ");
        return text === "" ? [] : [[peer.id, text]];
      }),
    );
  const serverLoad = (run: PeerRun) =>
    run.serverLoadsMs !== undefined && run.serverLoadsMs.length > 0
      ? `server's own load hook ${round(run.serverLoadsMs[0] as number)} ms first, ${round(median(run.serverLoadsMs.slice(1)))} ms after`
      : undefined;
  const count = "259,778";

  const figures: Figure[] = [
    {
      metric: `cold load after restart: first load of the ${count}-edit trace document, new client → whole text`,
      unit: "ms",
      better: "lower",
      target: { op: "<=", value: TARGET_FIRST_LOAD_MS },
      values: values((run) => run.firstLoadMs),
      notes: notes((_peer, run) =>
        [
          run.firstSyncedMs === undefined
            ? undefined
            : `synced after ${round(run.firstSyncedMs)} ms`,
          serverLoad(run),
          run.restartMs === undefined
            ? undefined
            : `process start → listening ${round(run.restartMs)} ms, not included`,
        ]
          .filter((p) => p !== undefined)
          .join("; "),
      ),
      note: "fresh server process on the stored data; timed in the load generator until the client holds the whole text (checked), connection included",
    },
    {
      metric: "cold load: repeated loads (document unloaded in between)",
      unit: "ms",
      better: "lower",
      values: values((run) =>
        run.repeatedLoadsMs.length === REPEATED_LOADS ? median(run.repeatedLoadsMs) : undefined,
      ),
      notes: notes((_peer, run) =>
        run.repeatedLoadsMs.length > 0
          ? `${run.repeatedLoadsMs.length} loads, ${round(Math.min(...run.repeatedLoadsMs))}–${round(Math.max(...run.repeatedLoadsMs))} ms`
          : undefined,
      ),
      note: `median of ${REPEATED_LOADS}, same server process as the first load`,
    },
    {
      metric: "trace document on disk",
      unit: "B",
      better: "lower",
      values: values((run) => run.bytes),
      notes: notes((_peer, run) =>
        [
          run.settleTimedOut === true
            ? `still changing after ${SETTLE_TIMEOUT_MS / 1000} s`
            : run.writesAfterMs === undefined
              ? undefined
              : `still writing ${round(run.writesAfterMs / 1000)} s after the clients left`,
          run.bytesAfterLoads === undefined
            ? undefined
            : `${run.bytesAfterLoads.toLocaleString("en-US")} B after the loads`,
        ]
          .filter((p) => p !== undefined)
          .join("; "),
      ),
      note: "after the whole trace, the clients gone and the server stopped gracefully (PostgreSQL: tables, TOAST and indexes)",
    },
    {
      metric: "trace ingest: edits accepted per second (for context)",
      unit: "updates/s",
      better: "higher",
      values: values((run) =>
        run.trace === undefined ? undefined : (run.trace.updates / run.trace.acceptedMs) * 1000,
      ),
      notes: notes((peer, run) =>
        [
          acceptedMeans(peer),
          run.trace === undefined
            ? undefined
            : `reader had the text after ${round(run.trace.readerMs / 1000)} s`,
          run.traceServerCpuMs === undefined
            ? undefined
            : `CPU: server ${round(run.traceServerCpuMs / 1000)} s, clients ${round((run.trace?.cpuMs ?? Number.NaN) / 1000)} s`,
        ]
          .filter((p) => p !== undefined)
          .join("; "),
      ),
      note: `one client sends each edit as its own message, ${BURST} per event loop turn, with a reader connected`,
    },
    {
      metric: "trace ingest: server peak RSS",
      unit: "MB",
      better: "lower",
      target: { op: "<=", value: TARGET_TRACE_PEAK_RSS_MB },
      values: values((run) =>
        run.tracePeakRss === undefined ? undefined : run.tracePeakRss.bytes / 1e6,
      ),
      notes: notes((_peer, run) => run.tracePeakRss?.how),
      note: "the server process's peak resident set size while the trace was sent and read",
    },
  ];
  return {
    figures,
    details: {
      burst: BURST,
      repeatedLoads: REPEATED_LOADS,
      runs: Object.fromEntries(runs),
    },
  };
}
