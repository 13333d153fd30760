/**
 * Benchmark entry point: `npm run bench` runs every benchmark,
 * `node --expose-gc bench/run.ts store` (or `npm run bench store`) only the
 * named ones; a name is a benchmark's id or its group (`scale` runs
 * `scale-fanout` and `scale-store`). Prints a Markdown table per benchmark
 * to stdout (progress goes to stderr) and writes each benchmark's result,
 * with the machine it ran on, to bench/results/<id>.json and into
 * bench/results/latest.json, replacing only the benchmarks that ran.
 *
 * To add a benchmark, implement {@link Benchmark} (bench/lib.ts) in its own
 * file and list it in `BENCHMARKS`.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, platform, release, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { attachmentsBenchmark } from "./attachments.ts";
import { compressionBenchmark } from "./compression.ts";
import { editorBenchmark } from "./editor.ts";
import {
  type Benchmark,
  type BenchmarkResult,
  escapeCell,
  formatNumber,
  meetsTarget,
  type Row,
  round,
} from "./lib.ts";
import { PEER_BENCHMARKS } from "./peers/index.ts";
import { scaleFanOutBenchmark } from "./scale.ts";
import { scaleStoreBenchmark } from "./scale-store.ts";
import { serverBenchmark } from "./server.ts";
import { storeBenchmark } from "./store.ts";

/** Every benchmark, in the order they run. */
const BENCHMARKS: readonly Benchmark[] = [
  storeBenchmark,
  serverBenchmark,
  editorBenchmark,
  scaleFanOutBenchmark,
  scaleStoreBenchmark,
  attachmentsBenchmark,
  compressionBenchmark,
  ...PEER_BENCHMARKS,
];

const RESULTS = new URL("./results/latest.json", import.meta.url);

/** The machine and runtime, recorded with every result so numbers can be compared fairly. */
function machine(): Record<string, unknown> {
  const cores = cpus();
  return {
    cpu: cores[0]?.model ?? "unknown",
    cores: cores.length,
    totalMemoryBytes: totalmem(),
    platform: `${platform()} ${release()}`,
    node: process.version,
    gcExposed: typeof globalThis.gc === "function",
    date: new Date().toISOString(),
  };
}

/** A Markdown table of `rows`; `reference` names the reference column, `subject` the value column. */
export function markdownTable(
  rows: readonly Row[],
  reference = "reference",
  subject = "ours",
): string {
  const lines = [
    `| metric | ${subject} | unit | ${reference} | ${subject} better by | target | met |`,
    "|---|--:|---|--:|--:|---|---|",
  ];
  for (const r of rows) {
    const met = meetsTarget(r);
    const cells = [
      r.note === undefined ? r.name : `${r.name} — ${r.note}`,
      formatNumber(r.value, r.unit),
      r.unit,
      r.reference === undefined ? "" : formatNumber(r.reference, r.unit),
      r.ratio === undefined ? "" : `${round(r.ratio)}×`,
      r.target === undefined ? "" : `${r.target.op} ${formatNumber(r.target.value, r.unit)}`,
      met === undefined ? "" : met ? "yes" : "**no**",
    ];
    lines.push(`| ${cells.map(escapeCell).join(" | ")} |`);
  }
  return lines.join("\n");
}

function select(args: readonly string[]): Benchmark[] {
  if (args.length === 0) return [...BENCHMARKS];
  const names = new Set(
    BENCHMARKS.flatMap((b) => (b.group === undefined ? [b.id] : [b.id, b.group])),
  );
  const unknown = args.filter((name) => !names.has(name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown benchmark(s): ${unknown.join(", ")}; available: ${[...names].join(", ")}`,
    );
  }
  return BENCHMARKS.filter(
    (b) => args.includes(b.id) || (b.group !== undefined && args.includes(b.group)),
  );
}

/** The benchmarks recorded in latest.json so far (none if it is missing or unreadable). */
async function previousResults(): Promise<Array<{ id: string }>> {
  try {
    const parsed = JSON.parse(await readFile(RESULTS, "utf8")) as { benchmarks?: unknown };
    return Array.isArray(parsed.benchmarks) ? (parsed.benchmarks as Array<{ id: string }>) : [];
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const selected = select(process.argv.slice(2));
  const info = machine();
  if (info.gcExposed !== true) {
    process.stderr.write("note: run with --expose-gc (npm run bench does) for steadier numbers\n");
  }
  const results: Array<{ id: string; title: string; seconds: number } & BenchmarkResult> = [];
  for (const benchmark of selected) {
    const started = performance.now();
    const result = await benchmark.run({
      log: (message) => process.stderr.write(`[${benchmark.id}] ${message}\n`),
    });
    const seconds = round((performance.now() - started) / 1000);
    results.push({ id: benchmark.id, title: benchmark.title, seconds, ...result });
    process.stdout.write(
      `\n## ${benchmark.title}\n\n${result.markdown ?? markdownTable(result.rows, benchmark.reference, benchmark.subject)}\n\n(${seconds} s)\n`,
    );
  }
  process.stdout.write(
    `\nMachine: ${String(info.cpu)}, ${String(info.cores)} cores, ${round(Number(info.totalMemoryBytes) / 2 ** 30)} GiB, Node ${String(info.node)}\n`,
  );
  await mkdir(new URL("./", RESULTS), { recursive: true });
  const benchmarks = results.map((r) => ({
    ...r,
    rows: r.rows.map((x) => ({ ...x, met: meetsTarget(x) })),
  }));
  // latest.json keeps the newest result of every benchmark: a partial run replaces only its own.
  const kept = (await previousResults()).filter((b) => !benchmarks.some((r) => r.id === b.id));
  await writeFile(
    RESULTS,
    `${JSON.stringify({ machine: info, benchmarks: [...kept, ...benchmarks] }, null, 2)}\n`,
  );
  process.stderr.write(`wrote ${fileURLToPath(RESULTS)}\n`);
  for (const benchmark of benchmarks) {
    const file = new URL(`./${benchmark.id}.json`, RESULTS);
    await writeFile(
      file,
      `${JSON.stringify({ machine: info, benchmarks: [benchmark] }, null, 2)}\n`,
    );
    process.stderr.write(`wrote ${fileURLToPath(file)}\n`);
  }
}

await main();
