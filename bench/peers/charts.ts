/**
 * The peer benchmarks' charts, drawn as SVG files with Vega-Lite (compiled
 * to a Vega view and rendered headless, no browser or canvas needed):
 *
 * - delivery latency distribution per server: the share of deliveries at or
 *   below each latency (an empirical CDF), latency on a log scale so the
 *   tail is visible;
 * - server memory per idle connection and per document, per server.
 */
import { mkdir, writeFile } from "node:fs/promises";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { ChartData } from "./report.ts";
import type { Peer } from "./servers.ts";

/** Points per server on a distribution curve: enough to look smooth, small enough to keep the SVG light. */
const CURVE_POINTS = 200;

/** Renders a Vega-Lite spec to SVG text. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Up to `points` evenly spaced quantiles of sorted `values`, as [latency, share at or below]. */
function curve(values: readonly number[], points: number): Array<[number, number]> {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return [];
  const out: Array<[number, number]> = [];
  const step = Math.max(1, Math.floor(sorted.length / points));
  for (let i = step - 1; i < sorted.length; i += step)
    out.push([sorted[i] as number, (i + 1) / sorted.length]);
  const last = sorted.length - 1;
  if (out.at(-1)?.[1] !== 1) out.push([sorted[last] as number, 1]);
  return out;
}

const labelOf = (peers: readonly Peer[], id: string) => peers.find((p) => p.id === id)?.label ?? id;

/** The latency distribution chart for one scenario. */
export function latencySpec(
  title: string,
  data: NonNullable<ChartData["latencies"]>,
  peers: readonly Peer[],
): TopLevelSpec {
  const values = Object.entries(data).flatMap(([id, samples]) =>
    curve(samples, CURVE_POINTS).map(([ms, share]) => ({
      server: labelOf(peers, id),
      // A log scale cannot show 0; loopback deliveries under 10 µs are drawn at 10 µs.
      ms: Math.max(ms, 0.01),
      share,
    })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    background: "white",
    width: 560,
    height: 300,
    data: { values },
    mark: { type: "line", interpolate: "step-after" },
    encoding: {
      x: {
        field: "ms",
        type: "quantitative",
        scale: { type: "log" },
        title: "delivery latency (ms, log scale)",
      },
      y: {
        field: "share",
        type: "quantitative",
        axis: { format: "%" },
        title: "deliveries at or below",
      },
      color: { field: "server", type: "nominal", title: "server", legend: { labelLimit: 0 } },
    },
  };
}

/** The memory chart: KB per idle connection and per document, grouped by server. */
export function memorySpec(
  title: string,
  data: NonNullable<ChartData["memory"]>,
  peers: readonly Peer[],
): TopLevelSpec {
  const values = Object.entries(data).flatMap(([id, m]) => [
    { server: labelOf(peers, id), what: "per idle connection", kb: m.perConnectionKb },
    { server: labelOf(peers, id), what: "per document", kb: m.perDocumentKb },
  ]);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    background: "white",
    data: { values },
    mark: "bar",
    encoding: {
      y: { field: "server", type: "nominal", title: null, axis: { labelLimit: 0 } },
      yOffset: { field: "what" },
      x: { field: "kb", type: "quantitative", title: "server memory (KB)" },
      color: { field: "what", type: "nominal", title: null },
    },
    width: 480,
  };
}

/**
 * Writes the charts `charts` calls for next to the results, as
 * `<base>-latency.svg` and `<base>-memory.svg`; returns the files written.
 */
export async function writeCharts(
  base: URL,
  title: string,
  charts: ChartData | undefined,
  peers: readonly Peer[],
): Promise<string[]> {
  const written: string[] = [];
  const write = async (kind: "latency" | "memory", spec: TopLevelSpec) => {
    const file = new URL(`${base.href}-${kind}.svg`);
    // A fresh checkout has no results directory until the runner writes its JSON, after the charts.
    await mkdir(new URL("./", file), { recursive: true });
    await writeFile(file, await renderSvg(spec));
    written.push(file.pathname);
  };
  if (charts?.latencies !== undefined && Object.keys(charts.latencies).length > 0) {
    await write("latency", latencySpec(`${title}: delivery latency`, charts.latencies, peers));
  }
  if (charts?.memory !== undefined && Object.keys(charts.memory).length > 0) {
    await write("memory", memorySpec(`${title}: server memory`, charts.memory, peers));
  }
  return written;
}
