/**
 * Scale-out benchmark, fan-out part (`npm run bench scale` runs it with the
 * store part, bench/scale-store.ts): the same load on one instance and on
 * two instances sharing one Redis and one PostgreSQL, in the same run.
 *
 * - Engines: a real PostgreSQL and Redis on loopback ports
 *   (test/helpers/engines.ts: Debian's binaries, default durability, so an
 *   acknowledged update is a committed one).
 * - Servers: our server as bench/server.ts runs it (bench/servers/ours.ts,
 *   child processes reporting CPU over IPC): "one instance" with
 *   STORE=postgres; "two instances" with STORE=postgres, REDIS_URL and
 *   CLUSTER=true. All three run for the whole benchmark.
 * - Clients: @hocuspocus/provider clients in a load-generator process of
 *   their own (bench/scale-load.ts). Per run, a fresh document; writers
 *   type one character per update at a fixed rate, readers only receive;
 *   on two instances, writers and readers are split evenly between them.
 *   Measured: delivered updates per second at the receivers (every client
 *   but the writer receives each update), delivery latency from the
 *   writer's insert to the update integrated in another client's document
 *   (both in the load generator, one clock), acknowledgement latency (insert
 *   to "stored"), and CPU: the servers' (IPC), the load generator's, and the
 *   whole machine's (os.cpus()), the rest being PostgreSQL, Redis and the
 *   kernel.
 * - Each setup gets a warm-up run per load level; then rounds in which each
 *   setup runs once, the order alternating; medians over the rounds.
 *
 * On a 2-core machine the servers, the load generator, PostgreSQL and Redis
 * share the two cores: a second instance adds no CPU, only a second process
 * and the Redis hop, so this measures what scaling out costs, not what it
 * gains. See docs/benchmarks.md, "Scale-out".
 */
import { execFileSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { type Engine, startPostgres, startRedis } from "../test/helpers/engines.ts";
import { startLoadProcess, type WithoutId } from "./child-process.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchmarkResult,
  machineTimes,
  median,
  type Row,
  round,
  row,
  spread,
} from "./lib.ts";
import type { LoadReply, LoadReport, LoadRequest, Pace } from "./scale-load.ts";
import { type ChildServer, cpuMs, OURS, startServer } from "./server.ts";

/**
 * Load levels: `writers` typing one character per update, plus `readers`;
 * every update reaches writers + readers - 1 clients. Two open-loop levels
 * at fixed rates (what typing users send, whatever the servers do), and a
 * closed-loop one in which each writer sends whenever it has fewer than
 * `window` updates unacknowledged: the servers' pace sets the load, so the
 * delivered rate is what the whole machine can do.
 */
const LEVELS = [
  {
    id: "typing",
    label: "typing: 8 writers at 10 updates/s each, 32 readers",
    writers: 8,
    readers: 32,
    pace: { kind: "rate", rate: 10 },
  },
  {
    id: "busy",
    label: "busy: 8 writers at 40 updates/s each, 32 readers",
    writers: 8,
    readers: 32,
    pace: { kind: "rate", rate: 40 },
  },
  {
    id: "saturated",
    label: "saturated: 8 writers as fast as acknowledged (4 in flight each), 32 readers",
    writers: 8,
    readers: 32,
    pace: { kind: "window", window: 4 },
  },
] as const satisfies ReadonlyArray<{
  id: string;
  label: string;
  writers: number;
  readers: number;
  pace: Pace;
}>;
type Level = (typeof LEVELS)[number];

/** LEVELS, or those BENCH_SCALE_LEVELS names (comma-separated ids), to look at one level. */
function selectedLevels(): Level[] {
  const raw = process.env.BENCH_SCALE_LEVELS?.trim();
  if (!raw) return [...LEVELS];
  const ids = raw.split(",").map((id) => id.trim());
  const levels = LEVELS.filter((level) => ids.includes(level.id));
  if (levels.length !== ids.length) {
    throw new Error(`BENCH_SCALE_LEVELS: known levels are ${LEVELS.map((l) => l.id).join(", ")}`);
  }
  return levels;
}

/** Sending time of a measured run, and of the warm-up run. */
const RUN_MS = 6_000;
const WARM_UP_MS = 3_000;
/** Measured runs per setup and level. */
const ROUNDS = 3;
/** After the last update was sent, the longest to wait for every delivery. */
const DRAIN_MS = 20_000;
/** After connecting, before sending: presence announcements settle. */
const SETTLE_MS = 500;
/**
 * After the clients left, before the next run: the server stores and
 * unloads the document (a cluster keeps it subscribed for 1 s).
 */
const GAP_MS = 1_500;
const REQUEST_TIMEOUT_MS = 90_000;
const TARGET_THROUGHPUT = 0.7;
const TARGET_P99 = 2;

const LOAD = fileURLToPath(new URL("./scale-load.ts", import.meta.url));

// --- Machine CPU -----------------------------------------------------------------------------

// --- The load generator ----------------------------------------------------------------------

interface LoadGenerator {
  request(command: WithoutId<LoadRequest>): Promise<LoadReply>;
  stop(): Promise<void>;
}

/** Starts bench/scale-load.ts in a child process and waits until it is ready. */
async function startLoadGenerator(): Promise<LoadGenerator> {
  const child = await startLoadProcess<LoadRequest, LoadReply>(LOAD);
  return {
    request: (command) => child.request(command, REQUEST_TIMEOUT_MS),
    stop: child.stop,
  };
}

// --- Runs ------------------------------------------------------------------------------------

/** One setup: its servers, all running for the whole benchmark. */
interface Setup {
  readonly id: "one" | "two";
  readonly label: string;
  readonly servers: readonly ChildServer[];
}

/** One measured (or warm-up) run. */
interface FanOutRun {
  readonly setup: Setup["id"];
  readonly level: Level["id"];
  readonly document: string;
  /** Connecting every client until all were synced. */
  readonly connectMs: number;
  readonly report: LoadReport;
  /** User + system CPU of the server processes over the run, in ms. */
  readonly serverCpuMs: number;
  readonly instanceCpuMs: readonly number[];
  /** Store write batches (commits) over the run, and the operations they carried. */
  readonly commits: number;
  readonly committedOperations: number;
  /** CPU cores busy on average over the run (all processes, the kernel included). */
  readonly machineCores: number;
  readonly wallMs: number;
  readonly loadAverage: number;
}

/** Runs `level` once on `setup`, on a fresh document. */
async function runOnce(
  load: LoadGenerator,
  setup: Setup,
  level: Level,
  document: string,
  durationMs: number,
): Promise<FanOutRun> {
  const loadAverage = loadavg()[0] ?? Number.NaN;
  const connected = await load.request({
    type: "connect",
    urls: setup.servers.map((server) => server.wsUrl),
    document,
    writers: level.writers,
    readers: level.readers,
  });
  if (connected.type !== "connected") throw new Error(`unexpected reply ${connected.type}`);
  try {
    await sleep(SETTLE_MS);
    const before = await Promise.all(setup.servers.map((server) => server.stats()));
    const machineBefore = machineTimes();
    const started = performance.now();
    const reply = await load.request({
      type: "run",
      pace: level.pace,
      durationMs,
      drainMs: DRAIN_MS,
    });
    const wallMs = performance.now() - started;
    const machineAfter = machineTimes();
    const after = await Promise.all(setup.servers.map((server) => server.stats()));
    if (reply.type !== "report") throw new Error(`unexpected reply ${reply.type}`);
    const instanceCpuMs = after.map(
      (stats, i) => cpuMs(stats.cpu) - cpuMs(before[i]?.cpu ?? stats.cpu),
    );
    const writes = (pick: (w: { batches: number; operations: number }) => number) =>
      after.reduce((sum, stats, i) => {
        const was = before[i]?.writes;
        return stats.writes === undefined || was === undefined
          ? sum
          : sum + pick(stats.writes) - pick(was);
      }, 0);
    const cores = cpus().length;
    return {
      setup: setup.id,
      level: level.id,
      document,
      connectMs: connected.connectMs,
      report: reply.report,
      serverCpuMs: instanceCpuMs.reduce((sum, ms) => sum + ms, 0),
      instanceCpuMs,
      commits: writes((w) => w.batches),
      committedOperations: writes((w) => w.operations),
      machineCores:
        ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) *
        cores,
      wallMs,
      loadAverage,
    };
  } finally {
    await load.request({ type: "close" });
    await sleep(GAP_MS);
  }
}

function describeRun(run: FanOutRun): string {
  const r = run.report;
  const cross =
    r.crossInstance === null ? "" : `, cross-instance p99 ${round(r.crossInstance.p99)} ms`;
  return `${Math.round(r.deliveredPerSecond)} delivered/s (${r.delivered}/${r.expectedDeliveries}${r.complete ? "" : ", INCOMPLETE"}, ${round(r.delivered / r.deliveringMessages)} per message), latency p50 ${round(r.latency.p50)} / p99 ${round(r.latency.p99)} / max ${round(r.latency.max)} ms${cross}, ack p99 ${round(r.acknowledged.p99)} ms; CPU servers ${Math.round(run.serverCpuMs)} ms, load generator ${Math.round(r.cpuMs)} ms, machine ${round(run.machineCores)} cores; send lag max ${round(r.maxSendLagMs)} ms`;
}

async function measureFanOut(
  context: BenchContext,
  levels: readonly Level[],
  postgres: Engine,
  redis: Engine,
): Promise<{ runs: FanOutRun[]; warmUps: FanOutRun[]; startupMs: Record<string, number[]> }> {
  const common = { STORE: "postgres", DATABASE_URL: postgres.url, LOG_LEVEL: "info" };
  const cluster = { ...common, REDIS_URL: redis.url, CLUSTER: "true" };
  const started: ChildServer[] = [];
  let load: LoadGenerator | undefined;
  try {
    context.log("starting one instance, two clustered instances and the load generator");
    const one = await startServer("one instance", OURS, common);
    started.push(one);
    const pair = await Promise.all([
      startServer("instance A of two", OURS, cluster),
      startServer("instance B of two", OURS, cluster),
    ]);
    started.push(...pair);
    load = await startLoadGenerator();
    const setups: Setup[] = [
      { id: "one", label: "one instance", servers: [one] },
      { id: "two", label: "two instances", servers: pair },
    ];
    const runs: FanOutRun[] = [];
    const warmUps: FanOutRun[] = [];
    for (const level of levels) {
      for (const setup of setups) {
        const run = await runOnce(
          load,
          setup,
          level,
          `warm-up-${level.id}-${setup.id}`,
          WARM_UP_MS,
        );
        warmUps.push(run);
        context.log(`${level.id}, ${setup.label}, warm-up: ${describeRun(run)}`);
      }
      for (let round_ = 0; round_ < ROUNDS; round_++) {
        const order = round_ % 2 === 0 ? setups : [...setups].reverse();
        for (const setup of order) {
          const document = `fan-out-${level.id}-${setup.id}-${round_}`;
          const run = await runOnce(load, setup, level, document, RUN_MS);
          runs.push(run);
          context.log(
            `${level.id}, ${setup.label}, run ${round_ + 1}/${ROUNDS}: ${describeRun(run)}`,
          );
        }
      }
    }
    return {
      runs,
      warmUps,
      startupMs: { one: [one.startupMs], two: pair.map((server) => server.startupMs) },
    };
  } finally {
    await load?.stop();
    await Promise.all(started.map((server) => server.stop()));
  }
}

// --- Rows ------------------------------------------------------------------------------------

function buildRows(levels: readonly Level[], runs: readonly FanOutRun[]): Row[] {
  const rows: Row[] = [];
  const cores = cpus().length;
  for (const level of levels) {
    const of = (setup: Setup["id"]) =>
      runs.filter((r) => r.setup === setup && r.level === level.id);
    const one = of("one");
    const two = of("two");
    const values = (list: readonly FanOutRun[], pick: (r: FanOutRun) => number) => list.map(pick);
    const both = (pick: (r: FanOutRun) => number) => ({
      value: median(values(two, pick)),
      reference: median(values(one, pick)),
    });
    const spreads = (pick: (r: FanOutRun) => number) =>
      `two ${spread(values(two, pick))}; one ${spread(values(one, pick))}`;
    const delivered = (r: FanOutRun) => r.report.deliveredPerSecond;
    const p99 = (r: FanOutRun) => r.report.latency.p99;
    const perMessage = (r: FanOutRun) => r.report.delivered / r.report.deliveringMessages;
    const receivers = level.writers + level.readers - 1;
    const offered =
      level.pace.kind === "rate"
        ? `offered ${(level.writers * level.pace.rate * receivers).toLocaleString("en-US")}/s (${level.writers * level.pace.rate} updates/s × ${receivers} receivers), sent at most ${round(Math.max(...runs.filter((r) => r.level === level.id).map((r) => r.report.maxSendLagMs)))} ms late`
        : `closed loop: sent ${Math.round(median(values(two, (r) => r.report.sentPerSecond)))} / ${Math.round(median(values(one, (r) => r.report.sentPerSecond)))} updates/s × ${receivers} receivers`;
    const incomplete = runs.filter((r) => r.level === level.id && !r.report.complete).length;
    const deliveredBoth = both(delivered);
    const p99Both = both(p99);
    rows.push(
      row({
        name: `${level.label}: updates delivered per second at the receivers`,
        ...deliveredBoth,
        unit: "updates/s",
        better: "higher",
        target: { op: ">=", value: TARGET_THROUGHPUT * deliveredBoth.reference },
        note: `target ${TARGET_THROUGHPUT}× one instance; ${offered}; from the first update sent to the last delivered; ${incomplete === 0 ? "every update reached every client" : `${incomplete} runs incomplete`}; updates per received message ${round(median(values(two, perMessage)))} / ${round(median(values(one, perMessage)))} (two / one); clients in one load-generator process, which shares the ${cores} cores with the servers, PostgreSQL and Redis; ${spreads(delivered)}`,
      }),
      row({
        name: "  delivery latency p99 (insert → integrated in another client)",
        ...p99Both,
        unit: "ms",
        better: "lower",
        target: { op: "<=", value: TARGET_P99 * p99Both.reference },
        note: `target ${TARGET_P99}× one instance; median of the runs' p99s; ${spreads(p99)}`,
      }),
      row({
        name: "  delivery latency p50",
        ...both((r) => r.report.latency.p50),
        unit: "ms",
        better: "lower",
        note: spreads((r) => r.report.latency.p50),
      }),
      row({
        name: "  delivery latency max",
        ...both((r) => r.report.latency.max),
        unit: "ms",
        better: "lower",
        note: spreads((r) => r.report.latency.max),
      }),
      row({
        name: "  two instances: p99 between clients on different instances (reference: same instance)",
        value: median(values(two, (r) => r.report.crossInstance?.p99 ?? Number.NaN)),
        reference: median(values(two, (r) => r.report.sameInstance?.p99 ?? Number.NaN)),
        unit: "ms",
        better: "lower",
        note: `p50 ${round(median(values(two, (r) => r.report.crossInstance?.p50 ?? Number.NaN)))} vs ${round(median(values(two, (r) => r.report.sameInstance?.p50 ?? Number.NaN)))} ms; a change crosses to the other instance only once PostgreSQL has committed it`,
      }),
      row({
        name: "  acknowledged (committed to PostgreSQL) p99",
        ...both((r) => r.report.acknowledged.p99),
        unit: "ms",
        better: "lower",
        note: `writer's insert → the server's reply that it is stored; p50 ${round(median(values(two, (r) => r.report.acknowledged.p50)))} / ${round(median(values(one, (r) => r.report.acknowledged.p50)))} ms, updates per commit ${round(median(values(two, (r) => r.committedOperations / Math.max(1, r.commits))))} / ${round(median(values(one, (r) => r.committedOperations / Math.max(1, r.commits))))} (two / one)`,
      }),
      row({
        name: "  server CPU per update sent, all instances",
        ...both((r) => (r.serverCpuMs * 1000) / r.report.sent),
        unit: "µs",
        better: "lower",
        note: `user + system of the server processes; two instances: each applies every update and serves half the clients; ${spreads((r) => (r.serverCpuMs * 1000) / r.report.sent)}`,
      }),
      row({
        name: `  machine CPU busy (${cores} cores, everything on it)`,
        ...both((r) => r.machineCores),
        unit: "cores",
        better: "lower",
        note: `servers ${round(median(values(two, (r) => r.serverCpuMs / r.wallMs)))} / ${round(median(values(one, (r) => r.serverCpuMs / r.wallMs)))}, load generator ${round(median(values(two, (r) => r.report.cpuMs / r.wallMs)))} / ${round(median(values(one, (r) => r.report.cpuMs / r.wallMs)))}, the rest (PostgreSQL, Redis, kernel) ${round(median(values(two, (r) => r.machineCores - (r.serverCpuMs + r.report.cpuMs) / r.wallMs)))} / ${round(median(values(one, (r) => r.machineCores - (r.serverCpuMs + r.report.cpuMs) / r.wallMs)))} cores (two / one)`,
      }),
    );
  }
  return rows;
}

// --- The benchmark ---------------------------------------------------------------------------

async function runFanOut(context: BenchContext): Promise<BenchmarkResult> {
  const loadBefore = loadavg();
  if (loadBefore[0] !== undefined && loadBefore[0] > 0.5 * cpus().length) {
    context.log(
      `warning: load average ${round(loadBefore[0])} on ${cpus().length} cores; other work skews these timings`,
    );
  }
  const levels = selectedLevels();
  // engines.ts reports a missing PostgreSQL itself; a missing redis-server would end the process.
  if (execFileSync("sh", ["-c", "command -v redis-server || true"]).toString().trim() === "") {
    throw new Error(
      "redis-server is not installed: apt-get install redis-server (npm test does it)",
    );
  }
  context.log("starting PostgreSQL and Redis");
  const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  try {
    const { runs, warmUps, startupMs } = await measureFanOut(context, levels, postgres, redis);
    return {
      rows: buildRows(levels, runs),
      details: {
        levels,
        runMs: RUN_MS,
        warmUpMs: WARM_UP_MS,
        rounds: ROUNDS,
        clients: "one load-generator process (bench/scale-load.ts), @hocuspocus/provider",
        startupMs,
        loadAverageBefore: loadBefore.map(round),
        loadAverageAfter: loadavg().map(round),
        runs,
        warmUps,
      },
    };
  } finally {
    await Promise.all([postgres.stop(), redis.stop()]);
  }
}

/** The fan-out part of `npm run bench scale`. */
export const scaleFanOutBenchmark: Benchmark = {
  id: "scale-fanout",
  group: "scale",
  title: "Scale-out: two instances (Redis + PostgreSQL) vs one instance (PostgreSQL), same load",
  subject: "two instances",
  reference: "one instance",
  run: runFanOut,
};
