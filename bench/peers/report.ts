/**
 * What a peer scenario (S1 to S5) hands back, and how it becomes the
 * benchmark runner's rows: every figure is measured for every server in the
 * same run, and each of ours is compared with the best peer (the best value
 * among the servers that are not ours).
 */
import { type Better, escapeCell, formatNumber, type Row, round, row } from "../lib.ts";
import type { Peer } from "./servers.ts";

/** One measured quantity, for every server. */
export interface Figure {
  /** What was measured, e.g. "delivery latency p99". */
  readonly metric: string;
  readonly unit: string;
  readonly better: Better;
  /** The issue's target for ours, if any. */
  readonly target?: { readonly op: ">=" | "<="; readonly value: number };
  /**
   * By peer id: the value, or null when it does not apply to that server
   * (e.g. a restart's cold load on a server that keeps nothing).
   */
  readonly values: Readonly<Record<string, number | null>>;
  /** Remarks per peer id (spread of runs, why a value is missing...). */
  readonly notes?: Readonly<Record<string, string>>;
  /** A remark on the figure as a whole. */
  readonly note?: string;
}

/** Data for the charts, by peer id. */
export interface ChartData {
  /** Delivery latencies in ms (all samples, or an evenly spaced subset), for distribution charts. */
  readonly latencies?: Readonly<Record<string, readonly number[]>>;
  /** Server memory in KB per idle connection and per document, for the capacity chart. */
  readonly memory?: Readonly<
    Record<string, { readonly perConnectionKb: number; readonly perDocumentKb: number }>
  >;
}

/** One scenario's outcome. */
export interface ScenarioResult {
  readonly figures: readonly Figure[];
  readonly charts?: ChartData;
  /** Anything else worth keeping in the JSON (raw runs, settings). */
  readonly details?: Record<string, unknown>;
}

/**
 * The best value among the servers that are not ours, with its id: the
 * highest or the lowest by `better`, ignoring nulls and failures (NaN).
 */
export function bestPeer(
  figure: Figure,
  peers: readonly Peer[],
): { id: string; value: number } | null {
  let best: { id: string; value: number } | null = null;
  for (const peer of peers) {
    if (peer.ours) continue;
    const value = figure.values[peer.id];
    if (value === null || value === undefined || Number.isNaN(value)) continue;
    const better =
      best === null || (figure.better === "higher" ? value > best.value : value < best.value);
    if (better) best = { id: peer.id, value };
  }
  return best;
}

/**
 * Rows for the runner's JSON and target check: one per figure and server of
 * ours, with the best peer as the reference (so `ratio` > 1 means ours is
 * better than every peer).
 */
export function figureRows(figures: readonly Figure[], peers: readonly Peer[]): Row[] {
  const rows: Row[] = [];
  const byId = new Map(peers.map((p) => [p.id, p]));
  for (const figure of figures) {
    const best = bestPeer(figure, peers);
    for (const peer of peers) {
      if (!peer.ours) continue;
      const value = figure.values[peer.id];
      if (value === null || value === undefined) continue;
      const notes = [figure.note, figure.notes?.[peer.id]];
      if (best !== null) notes.push(`best peer: ${byId.get(best.id)?.label ?? best.id}`);
      rows.push(
        row({
          name: `${figure.metric} — ${peer.label}`,
          value,
          unit: figure.unit,
          better: figure.better,
          target: figure.target,
          reference: best?.value,
          note: notes.filter((n) => n !== undefined && n !== "").join("; ") || undefined,
        }),
      );
    }
  }
  return rows;
}

/**
 * The side-by-side Markdown table: one row per figure, one column per
 * server, then each of ours divided by the best peer (oriented so that more
 * than 1× means ours is better) and the target, followed by the notes.
 */
export function peerTable(
  figures: readonly Figure[],
  peers: readonly Peer[],
  skipped: readonly string[] = [],
): string {
  const ours = peers.filter((p) => p.ours);
  const cell = (value: number | null | undefined, unit: string) =>
    value === null || value === undefined ? "n/a" : formatNumber(value, unit);
  const lines = [
    `| metric | unit | ${peers.map((p) => p.label).join(" | ")} | ${ours.map((p) => `${p.label} vs best peer`).join(" | ")} | target | met |`,
    `|---|---|${peers.map(() => "--:").join("|")}|${ours.map(() => "--:").join("|")}|---|---|`,
  ];
  const notes: string[] = [];
  figures.forEach((figure, index) => {
    const best = bestPeer(figure, peers);
    const ratios = ours.map((p) => {
      const value = figure.values[p.id];
      if (
        best === null ||
        value === null ||
        value === undefined ||
        !(value > 0) ||
        !(best.value > 0)
      ) {
        return "";
      }
      const ratio = figure.better === "higher" ? value / best.value : best.value / value;
      return `${round(ratio)}×`;
    });
    const met = ours.map((p) => {
      const value = figure.values[p.id];
      if (figure.target === undefined || value === null || value === undefined) return "";
      const ok =
        figure.target.op === ">=" ? value >= figure.target.value : value <= figure.target.value;
      return ok ? "yes" : "**no**";
    });
    const target =
      figure.target === undefined
        ? ""
        : `${figure.target.op} ${formatNumber(figure.target.value, figure.unit)}`;
    const marker = figure.note !== undefined || figure.notes !== undefined ? ` [${index + 1}]` : "";
    const cells = [
      `${figure.metric}${marker}`,
      figure.unit,
      ...peers.map((p) => cell(figure.values[p.id], figure.unit)),
      ...ratios,
      target,
      met.filter((m) => m !== "").join(" / "),
    ];
    lines.push(`| ${cells.map(escapeCell).join(" | ")} |`);
    if (marker !== "") {
      const parts = [
        figure.note,
        ...Object.entries(figure.notes ?? {}).map(
          ([id, note]) => `${peers.find((p) => p.id === id)?.label ?? id}: ${note}`,
        ),
      ].filter((n) => n !== undefined && n !== "");
      notes.push(`${index + 1}. ${parts.join("; ")}`);
    }
  });
  const servers = peers.map((p) => `- **${p.label}**: ${p.description}`);
  const missing = skipped.map((s) => `- not run: ${s}`);
  return [lines.join("\n"), "", ...notes, "", ...servers, ...missing].join("\n");
}
