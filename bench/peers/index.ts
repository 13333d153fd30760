/**
 * The peer benchmarks (`npm run bench peers`, or one scenario:
 * `npm run bench peers-s3`): the same load against this server and the
 * reference servers (bench/peers/servers.ts), each in its own process,
 * measured one at a time. Every scenario prints a side-by-side table with
 * each of ours against the best peer, writes its JSON
 * (bench/results/peers-sN.json) and its charts (bench/results/peers-sN-*.svg).
 */
import type { BenchContext, Benchmark, BenchmarkResult } from "../lib.ts";
import { writeCharts } from "./charts.ts";
import { figureRows, peerTable, type ScenarioResult } from "./report.ts";
import { runS1, runS2 } from "./s1-s2.ts";
import { runS3 } from "./s3.ts";
import { runS4 } from "./s4.ts";
import { runS5 } from "./s5.ts";
import { type PeerSet, peerSet } from "./servers.ts";

const RESULTS = new URL("../results/", import.meta.url);

/** A scenario as a benchmark of the runner: starts the peers, runs, reports, cleans up. */
function scenario(
  id: string,
  title: string,
  run: (context: BenchContext, set: PeerSet) => Promise<ScenarioResult>,
): Benchmark {
  return {
    id,
    title,
    group: "peers",
    reference: "best peer",
    async run(context): Promise<BenchmarkResult> {
      const set = await peerSet();
      try {
        for (const reason of set.skipped) context.log(`skipped ${reason}`);
        const result = await run(context, set);
        const charts = await writeCharts(new URL(id, RESULTS), title, result.charts, set.peers);
        for (const file of charts) context.log(`wrote ${file}`);
        return {
          rows: figureRows(result.figures, set.peers),
          markdown: peerTable(result.figures, set.peers, set.skipped),
          details: {
            servers: set.peers.map(
              ({ id, label, protocol, durable, acknowledges, description }) => ({
                id,
                label,
                protocol,
                durable,
                acknowledges,
                description,
              }),
            ),
            skipped: set.skipped,
            figures: result.figures,
            charts: charts.map((file) => file.slice(file.lastIndexOf("/") + 1)),
            ...result.details,
          },
        };
      } finally {
        await set.close();
      }
    },
  };
}

/** S1 to S5, in order. */
export const PEER_BENCHMARKS: readonly Benchmark[] = [
  scenario("peers-s1", "S1 fan-out: 1 document, 50 clients, 10 writing", runS1),
  scenario("peers-s2", "S2 many rooms: 3 clients per document", runS2),
  scenario("peers-s3", "S3 cold load of the trace document", runS3),
  scenario("peers-s4", "S4 capacity: idle connections", runS4),
  scenario("peers-s5", "S5 durable ingest and kill -9", runS5),
];
