/**
 * Shared pieces of the benchmarks: the shape of a result row, the benchmark
 * interface `bench/run.ts` drives, and small helpers (temporary directories,
 * directory sizes, garbage collection, timing, latency percentiles).
 */
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";

/** Whether a larger or a smaller value is the better one. */
export type Better = "higher" | "lower";

/** One measured number, as printed in the table and written to the JSON. */
export interface Row {
  /** What was measured, e.g. "durable ingest, fsync off". */
  readonly name: string;
  readonly value: number;
  /** Unit of `value`, `target` and `reference`: "updates/s", "ms", "B", "×". */
  readonly unit: string;
  /** Direction of goodness; needed to judge `target` and orient `ratio`. */
  readonly better?: Better;
  /** What the project aims for. */
  readonly target?: { readonly op: ">=" | "<="; readonly value: number };
  /** The same measurement for the reference implementation, in the same run. */
  readonly reference?: number;
  /**
   * How many times better ours is than the reference (> 1: ours is better):
   * value / reference when higher is better, reference / value otherwise.
   */
  readonly ratio?: number;
  /** A short remark printed beside the row. */
  readonly note?: string;
}

/** What a benchmark hands back: its rows plus free-form details for the JSON file. */
export interface BenchmarkResult {
  readonly rows: Row[];
  /**
   * The report's Markdown, when the standard one-reference table does not
   * fit (the peer benchmarks compare many servers side by side); `rows`
   * still carry the targets and ratios for the JSON.
   */
  readonly markdown?: string;
  readonly details?: Record<string, unknown>;
}

/** Passed to every benchmark by the runner. */
export interface BenchContext {
  /** Progress output (stderr), so stdout carries only the report. */
  log(message: string): void;
}

/** A named group of measurements that `bench/run.ts` can run on its own. */
export interface Benchmark {
  /** Selects the benchmark on the command line: `node bench/run.ts <id>`. */
  readonly id: string;
  readonly title: string;
  /**
   * Also selects the benchmark, together with the others of the same group:
   * `node bench/run.ts scale` runs every benchmark of group "scale".
   */
  readonly group?: string;
  /** What the value column measures, when not our implementation ("two instances"). @default "ours" */
  readonly subject?: string;
  /** The name of the reference implementation the `reference` column holds. */
  readonly reference?: string;
  run(context: BenchContext): Promise<BenchmarkResult>;
}

/**
 * Builds a row, deriving `ratio` from `reference` and `better`, so every
 * benchmark orients ratios the same way (> 1 always means ours is better).
 */
export function row(fields: Row): Row {
  if (fields.ratio !== undefined || fields.reference === undefined || !(fields.value > 0)) {
    return fields;
  }
  if (fields.better === undefined || fields.reference === 0) return fields;
  const ratio =
    fields.better === "higher" ? fields.value / fields.reference : fields.reference / fields.value;
  return { ...fields, ratio };
}

/** Whether `row` meets its target (undefined when it has none). */
export function meetsTarget(r: Row): boolean | undefined {
  if (r.target === undefined) return undefined;
  return r.target.op === ">=" ? r.value >= r.target.value : r.value <= r.target.value;
}

/**
 * Runs `body` with a fresh directory under os.tmpdir() and removes the
 * directory afterwards, also when `body` fails, so benchmarks leave nothing
 * behind.
 */
export async function withTempDir<T>(label: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `collab-bench-${label}-`));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Sizes of the files directly in `dir` (a LevelDB directory is flat), by file name. */
export async function dirFiles(dir: string): Promise<Record<string, number>> {
  const files: Record<string, number> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) files[entry.name] = (await stat(join(dir, entry.name))).size;
  }
  return files;
}

/** Total bytes of the files directly in `dir`: what the directory costs on disk, before block rounding. */
export async function dirSize(dir: string): Promise<number> {
  return Object.values(await dirFiles(dir)).reduce((sum, size) => sum + size, 0);
}

/**
 * Collects garbage when the process runs with --expose-gc (the `bench` npm
 * script passes it), so one measurement does not pay for the previous one's
 * garbage. Returns whether it could.
 */
export function collectGarbage(): boolean {
  if (typeof globalThis.gc !== "function") return false;
  globalThis.gc();
  globalThis.gc();
  return true;
}

/** Milliseconds `body` took, with its result. */
export async function timed<T>(body: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await body();
  return { ms: performance.now() - started, result };
}

/** Rounds for display and JSON: keeps three significant digits below 100, integers above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(3));
}

/** A value for a Markdown table: rounded, thousands separated, "failed" for NaN. */
export function formatNumber(value: number, unit: string): string {
  if (Number.isNaN(value)) return "failed";
  const rounded = round(value);
  if (unit === "B" || Math.abs(rounded) >= 1000) return Math.round(rounded).toLocaleString("en-US");
  return String(rounded);
}

/** Text for a Markdown table cell: pipes escaped. */
export function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const upper = sorted[middle] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] as number) + upper) / 2;
}

/** Percentiles of a set of durations, in ms (NaN for an empty set). */
export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** The {@link Latency} of `sorted`, durations in ascending order. */
export function summarizeLatency(sorted: Float64Array): Latency {
  if (sorted.length === 0) return { count: 0, p50: NaN, p99: NaN, max: NaN, mean: NaN };
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}

/** "median of N, min–max" for a row's note. */
export function spread(values: readonly number[]): string {
  if (values.length < 2) return "1 run";
  return `median of ${values.length} runs, ${round(Math.min(...values))}–${round(Math.max(...values))}`;
}

/** Rejects with a message naming `what` when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Busy and total CPU time of every core of the machine so far, in ms. */
export function machineTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}
