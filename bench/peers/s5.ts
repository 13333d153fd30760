/**
 * Peer scenario S5, durable ingest: how many updates per second each server
 * takes in while keeping them, and how many edits it has confirmed to a
 * client but loses when its process is killed (`kill -9`).
 *
 * Clients run in the load generator (bench/peers/ingest-load.ts, a process
 * of its own; one clock). For each server, on a fresh place:
 *
 * 1. Ingest: WRITERS documents, each with one writer and one reader (the
 *    server's own client library). Every writer types one character per
 *    update whenever it has fewer than WINDOW updates not yet accepted
 *    (closed loop: the server sets the pace) for INGEST_MS; then we wait
 *    until everything was accepted and delivered (checked, and reported when
 *    not). Figure: updates accepted per second, from the first update sent
 *    to the last accepted.
 * 2. Loss window, KILL_AFTER_MS.length times, each on new documents of the
 *    same place and each once the server has finished writing what came
 *    before (documents unloaded, files or tables no longer changing:
 *    y-websocket's y-leveldb may still be writing a backlog): the same
 *    stream, and after the given time the server process gets SIGKILL (no
 *    shutdown). The load generator stops sending and counts what had been
 *    accepted; the server is started again on the same place, and a fresh
 *    client reads each document (with y-websocket, whose stored content
 *    arrives after `synced`, waiting up to QUIET_MS for it). An accepted
 *    update missing after the restart is lost; per run we count them (all
 *    writers together) and take, per writer, the time from the acceptance of
 *    its first lost update to the kill. Figures: the largest of the runs.
 *    The restored text is also checked to be exactly the start of what its
 *    writer typed.
 *
 * "Accepted", per server, is the closest thing its protocol has to "the
 * server has it", so the same window and the same question apply to all:
 * - ours: the acknowledgement, which our server sends once the update is
 *   stored (FSYNC off: written to the operating system, which a process
 *   kill does not lose; PostgreSQL: committed);
 * - stock Hocuspocus: its acknowledgement, sent on receipt; the database
 *   extension stores the whole document later (debounced 2 s, at most every
 *   10 s while edits keep coming), so a kill loses what came since the last
 *   store. The runs are 3, 7 and 12 s long, so one of them spans a 10 s store;
 * - y-websocket: no acknowledgement exists; an update counts as accepted
 *   once another client (the reader) received it from the server, which is
 *   all a y-websocket user can know. Its y-leveldb stores every update
 *   through a queue, so a kill loses what the queue had not written yet.
 * Hocuspocus in memory keeps nothing: its ingest rate is not a durable one
 * (null, the rate in the note) and a kill loses every accepted update.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type BenchContext, median, round } from "../lib.ts";
import { type ChildServer, cpuMs } from "../server.ts";
import { attemptSession, settle } from "./common.ts";
import {
  acceptedMeans,
  closeClients,
  type HaltReport,
  type IngestLoad,
  type LossReport,
  measureEach,
  REQUEST_SLACK_MS,
  type StreamReport,
} from "./ingest-load.ts";
import type { Figure, ScenarioResult } from "./report.ts";
import type { Peer, PeerSet } from "./servers.ts";

/** Documents, each with one writer and one reader. */
const WRITERS = 4;
/** Updates a writer may have sent and not yet seen accepted. */
const WINDOW = 128;
/** How long writers send in the ingest run. */
const INGEST_MS = 6_000;
/** After sending stopped, the longest to wait for every update to be accepted and delivered. */
const DRAIN_MS = 30_000;
/** When each loss run kills the server, after the stream started. */
const KILL_AFTER_MS = [3_000, 7_000, 12_000] as const;
/**
 * Reading back after the restart: a Hocuspocus server has loaded a document
 * when the client is synced; y-websocket sends its stored content (in one
 * update) after `synced`, so the read waits this long for it before
 * concluding that nothing was kept.
 */
const QUIET_MS = { hocuspocus: 500, "y-websocket": 10_000 } as const;
/** Before each kill: the longest to wait for the server to finish writing what came before. */
const SETTLE_TIMEOUT_MS = 60_000;
const READ_TIMEOUT_MS = 90_000;
const CONNECT_TIMEOUT_MS = 60_000;
const TARGET_RATE = 20_000;

/** One loss run: the stream at the kill, and what the restarted server had. */
interface KillRun {
  readonly killAfterMs: number;
  /** Waiting, before the stream, until the server had written what came before (ms). */
  readonly settleMs: number;
  readonly halt: HaltReport;
  readonly loss: LossReport;
  /** Restart on the same place: spawn until listening. */
  readonly restartMs: number;
}

/** What S5 measured on one server. */
interface PeerRun {
  ingest?: StreamReport;
  /** Server CPU (user + system) over the ingest run, ms. */
  ingestServerCpuMs?: number;
  /** After the ingest run's clients left: how long the server's files or tables kept changing, ms. */
  ingestWritesAfterMs?: number;
  kills: KillRun[];
  error?: string;
}

function documents(prefix: string): string[] {
  return Array.from({ length: WRITERS }, (_, w) => `${prefix}-${w}`);
}

async function open(load: IngestLoad, peer: Peer, server: ChildServer, prefix: string) {
  await load.request(
    { type: "open", protocol: peer.protocol, url: server.wsUrl, documents: documents(prefix) },
    CONNECT_TIMEOUT_MS,
  );
}

/** Runs S5 on one server; a failure ends its run and is recorded in `error`. */
async function runPeer(context: BenchContext, load: IngestLoad, peer: Peer): Promise<PeerRun> {
  const run: PeerRun = { kills: [] };
  run.error = await attemptSession(context, peer, closeClients(load), async (session) => {
    const { place } = session;
    await open(load, peer, session.server, "ingest");
    const before = await session.server.stats();
    await load.request({ type: "start", window: WINDOW }, REQUEST_SLACK_MS);
    await sleep(INGEST_MS);
    run.ingest = await load.request(
      { type: "finish", drainMs: DRAIN_MS },
      DRAIN_MS + REQUEST_SLACK_MS,
    );
    const after = await session.server.stats();
    run.ingestServerCpuMs = cpuMs(after.cpu) - cpuMs(before.cpu);
    const drained = await settle(session.server, place, SETTLE_TIMEOUT_MS);
    if (drained.timedOut) {
      throw new Error(`still writing ${SETTLE_TIMEOUT_MS / 1000} s after the ingest run`);
    }
    run.ingestWritesAfterMs = drained.lastChangeMs;
    context.log(
      `${peer.label}: ingest ${Math.round(run.ingest.acceptedPerSecond)} updates/s accepted (${run.ingest.accepted} of ${run.ingest.sent} sent, ${run.ingest.delivered} delivered${run.ingest.complete ? "" : ", INCOMPLETE"}); accept latency p50 ${round(run.ingest.acceptLatency.p50)} ms, p99 ${round(run.ingest.acceptLatency.p99)} ms; CPU: server ${round(run.ingestServerCpuMs / 1000)} s, clients ${round(run.ingest.cpuMs / 1000)} s; still writing ${round(drained.lastChangeMs / 1000)} s after the clients left`,
    );

    for (const [k, killAfterMs] of KILL_AFTER_MS.entries()) {
      // Start every kill from a quiet server (the first follows the ingest run's settle).
      const quiet =
        k === 0
          ? { ms: 0, timedOut: false }
          : await settle(session.server, place, SETTLE_TIMEOUT_MS);
      if (quiet.timedOut) {
        throw new Error(`still writing ${SETTLE_TIMEOUT_MS / 1000} s after the previous stream`);
      }
      await open(load, peer, session.server, `kill-${k}`);
      await load.request({ type: "start", window: WINDOW }, REQUEST_SLACK_MS);
      await sleep(killAfterMs);
      const killedAt = performance.timeOrigin + performance.now();
      await session.server.kill();
      const halt = await load.request({ type: "halt", killedAt }, REQUEST_SLACK_MS);
      const restartMs = await session.restart();
      const loss = await load.request(
        {
          type: "read",
          url: session.server.wsUrl,
          quietMs: QUIET_MS[peer.protocol],
          timeoutMs: READ_TIMEOUT_MS,
        },
        READ_TIMEOUT_MS + REQUEST_SLACK_MS,
      );
      run.kills.push({ killAfterMs, settleMs: quiet.ms, halt, loss, restartMs });
      context.log(
        `${peer.label}: kill -9 after ${round(halt.killedAfterMs / 1000)} s: ${loss.lost} of ${loss.accepted} accepted updates lost (window ${round(loss.lostWindowMs)} ms, read ${round(loss.readMs)} ms), ${loss.keptUnaccepted} unaccepted kept${loss.consistent ? "" : ", restored text INCONSISTENT"}`,
      );
    }
  });
  return run;
}

/**
 * S5, durable ingest and kill -9: the closed-loop ingest rate of every
 * server, then the acknowledged-but-lost edits after killing it mid-stream;
 * see the module comment.
 */
export async function runS5(context: BenchContext, set: PeerSet): Promise<ScenarioResult> {
  const runs = await measureEach(set.peers, (load, peer) => {
    context.log(`${peer.label}: ${WRITERS} writers, window ${WINDOW}, ${INGEST_MS / 1000} s`);
    return runPeer(context, load, peer);
  });

  const complete = (run: PeerRun) => run.kills.length === KILL_AFTER_MS.length;
  const worst = (run: PeerRun, pick: (kill: KillRun) => number) =>
    complete(run) ? Math.max(...run.kills.map(pick)) : Number.NaN;
  const byPeer = <T>(pick: (peer: Peer, run: PeerRun) => T) =>
    Object.fromEntries(
      set.peers.flatMap((peer) => {
        const run = runs.get(peer.id);
        return run === undefined ? [] : [[peer.id, pick(peer, run)]];
      }),
    );
  const join = (...parts: Array<string | undefined | false>) =>
    parts.filter((p) => typeof p === "string" && p !== "").join("; ");

  const rateNote = (peer: Peer, run: PeerRun): string => {
    const ingest = run.ingest;
    if (ingest === undefined) return join(acceptedMeans(peer), run.error);
    const perUpdate =
      run.ingestServerCpuMs === undefined
        ? undefined
        : `server CPU ${round((run.ingestServerCpuMs * 1000) / Math.max(1, ingest.accepted))} µs per update`;
    return join(
      !peer.durable && `keeps nothing: accepted ${Math.round(ingest.acceptedPerSecond)} updates/s`,
      acceptedMeans(peer),
      ingest.complete
        ? "every update accepted and delivered"
        : `INCOMPLETE: ${ingest.accepted} of ${ingest.sent} accepted, ${ingest.delivered} delivered`,
      `accept latency p50 ${round(ingest.acceptLatency.p50)} ms, p99 ${round(ingest.acceptLatency.p99)} ms`,
      perUpdate,
      peer.durable &&
        run.ingestWritesAfterMs !== undefined &&
        `files or tables still changing ${round(run.ingestWritesAfterMs / 1000)} s after the clients left`,
      run.error,
    );
  };
  const lossNote = (peer: Peer, run: PeerRun): string =>
    join(
      !peer.durable && "keeps nothing: every accepted update is lost",
      acceptedMeans(peer),
      run.kills.length > 0 &&
        `per run (${run.kills.map((k) => `${round(k.halt.killedAfterMs / 1000)} s`).join(", ")}): ${run.kills.map((k) => `${k.loss.lost}/${k.loss.accepted}`).join(", ")} lost/accepted`,
      run.kills.some((k) => !k.loss.consistent) &&
        "a restored text was not the start of what its writer typed",
      run.error,
    );

  const figures: Figure[] = [
    {
      metric: `durable ingest: updates accepted per second (${WRITERS} writers, ${WINDOW} in flight each)`,
      unit: "updates/s",
      better: "higher",
      target: { op: ">=", value: TARGET_RATE },
      values: byPeer((peer, run) =>
        !peer.durable ? null : (run.ingest?.acceptedPerSecond ?? Number.NaN),
      ),
      notes: byPeer(rateNote),
      note: `closed loop for ${INGEST_MS / 1000} s, one character per update, each writer on its own document with a reader; from the first update sent to the last accepted`,
    },
    {
      metric: `kill -9 mid-stream: accepted updates lost, largest of ${KILL_AFTER_MS.length} runs`,
      unit: "updates",
      better: "lower",
      target: { op: "<=", value: 0 },
      values: byPeer((_peer, run) => worst(run, (k) => k.loss.lost)),
      notes: byPeer(lossNote),
      note: `the same stream, SIGKILL after ${KILL_AFTER_MS.map((ms) => ms / 1000).join(", ")} s, restart on the same data, a fresh client reads every document; all ${WRITERS} writers together`,
    },
    {
      metric: `kill -9 mid-stream: loss window, largest of ${KILL_AFTER_MS.length} runs`,
      unit: "ms",
      better: "lower",
      values: byPeer((_peer, run) => worst(run, (k) => k.loss.lostWindowMs)),
      notes: byPeer((_peer, run) =>
        join(
          run.kills.length > 0 &&
            `per run: ${run.kills.map((k) => round(k.loss.lostWindowMs)).join(", ")} ms`,
          run.error,
        ),
      ),
      note: "from the acceptance of the first lost update to the kill (0: nothing lost)",
    },
  ];
  return {
    figures,
    details: {
      writers: WRITERS,
      window: WINDOW,
      ingestMs: INGEST_MS,
      killAfterMs: KILL_AFTER_MS,
      quietMs: QUIET_MS,
      runs: Object.fromEntries(runs),
      medianKillRate: Object.fromEntries(
        [...runs].map(([id, run]) => [id, median(run.kills.map((k) => k.halt.acceptedPerSecond))]),
      ),
    },
  };
}
