/**
 * Peer scenario S4, capacity: what an idle server, an idle connection and an
 * open document cost in server memory, for every server, one at a time.
 *
 * For each server, two phases, each on a freshly started server (fresh
 * place) with a fresh load-generator process (bench/peers/load.ts, the
 * server's own client library):
 *
 * 1. "own documents": 2,000 clients, each on a document of its own;
 * 2. "one document": 2,000 clients, all on one document.
 *
 * In each phase: a warm-up (20 clients connect the same way on other
 * documents and leave, so code that runs once per process, such as lazily
 * compiled functions and first allocations, is not counted per connection),
 * then, once the server has unloaded those documents, its memory after a
 * full GC (RSS, and the JS heap plus external memory; bench/servers/child.ts)
 * as the baseline; then the 2,000 clients connect (100 at a time, each
 * synced before the next batch) and stay idle, without presence (below);
 * after a short settling pause the server's memory after a full GC again,
 * and its own count of connections and documents, which must match.
 *
 * - KB per connection = (one document: after − before) / 2,000: a
 *   connection's cost with the document shared.
 * - KB per document = (own documents: after − before) / 2,000 − KB per
 *   connection: what a loaded (empty) document adds.
 * - Idle server memory: each phase's server is first measured as it comes,
 *   freshly started and listening, after a full GC, before any client (the
 *   warm-up's included) has connected; the figure is the median of the two
 *   phases' servers: what a process that serves nobody yet costs (the
 *   modules loaded at start, and what starting left behind).
 *
 * A fresh server per phase, rather than one server unloading between the
 * phases, keeps the second phase's baseline free of what the first left
 * behind (V8 and the allocator keep freed pages, which would show up as
 * RSS). RSS is what the operating system charges and the target refers to;
 * the heap figure excludes freed-but-kept pages and is the steadier one.
 *
 * Fairness: every server gets the same clients and the same sequence; all
 * are measured after the same warm-up and full GC. The clients share no
 * presence (awareness state null, bench/peers/client.ts): with presence,
 * 2,000 clients on one document turn every join, and every client's renewal
 * each 15 s, into a 2,000-way broadcast (about 4 million messages per
 * round), which measures presence fan-out, not an idle connection, and
 * leaves garbage behind that would be counted as per-connection memory.
 * Without presence both libraries reconnect after 30 s without a message;
 * a phase measures well within that.
 */
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { type BenchContext, median, round } from "../lib.ts";
import type { ChildServer } from "../server.ts";
import type { ChildStats } from "../servers/child.ts";
import { type Failure, failureReason, outcomeValues, whenUnloaded } from "./common.ts";
import { type DocumentPlan, type LoadGenerator, withPeer } from "./load.ts";
import type { Figure, ScenarioResult } from "./report.ts";
import type { Peer, PeerSet } from "./servers.ts";

/** Idle connections per phase. */
const CONNECTIONS = 2_000;
/** Clients of the warm-up. */
const WARM_UP_CLIENTS = 20;
/** Clients opened at once while connecting. */
const BATCH = 100;
/** Under the clients' 30 s reconnect-when-silent limit, so every phase measures clients that never reconnected. */
const CONNECT_TIMEOUT_MS = 25_000;
const UNLOAD_TIMEOUT_MS = 15_000;
/** After the clients connected, before measuring: the last messages are processed. */
const SETTLE_MS = 1_000;
const TARGET_KB_PER_CONNECTION = 20;
/** Issue 14's bound on an idle server's RSS before any client, in MB. */
const TARGET_IDLE_MB = 100;
const KB = 1024;
const MB = 1024 * 1024;

type PhaseId = "own" | "one";

/** The documents of a phase: each client on its own, or all on one. */
function plan(phase: PhaseId, prefix: string, clients: number): DocumentPlan[] {
  return phase === "own"
    ? Array.from({ length: clients }, (_, i) => ({
        name: `${prefix}-${i}`,
        writers: 0,
        readers: 1,
      }))
    : [{ name: prefix, writers: 0, readers: clients }];
}

/** Bytes counted as memory: the whole process (RSS), or the JS heap in use plus external memory. */
const rss = (usage: NodeJS.MemoryUsage) => usage.rss;
const heap = (usage: NodeJS.MemoryUsage) => usage.heapUsed + usage.external;

/** One phase on one server. */
interface Phase {
  readonly phase: PhaseId;
  /** The fresh server before any client, after a full GC. */
  readonly idle: NodeJS.MemoryUsage;
  readonly connectMs: number;
  readonly clients: number;
  readonly before: NodeJS.MemoryUsage;
  readonly after: NodeJS.MemoryUsage;
  /** The server's own counts once connected. */
  readonly stats: Pick<ChildStats, "documents" | "connections">;
  readonly warmUpUnloaded: boolean;
}

async function phase(
  id: PhaseId,
  peer: Peer,
  server: ChildServer,
  load: LoadGenerator,
): Promise<Phase> {
  const connect = (documents: readonly DocumentPlan[]) =>
    load.connect({
      protocol: peer.protocol,
      url: server.wsUrl,
      documents,
      batch: BATCH,
      timeoutMs: CONNECT_TIMEOUT_MS,
      presence: false,
    });
  const idle = await server.memory();
  await connect(plan(id, "s4-warm-up", WARM_UP_CLIENTS));
  await load.close();
  const warmUpUnloaded = await whenUnloaded(server, UNLOAD_TIMEOUT_MS);
  const before = await server.memory();
  const connected = await connect(plan(id, `s4-${id}`, CONNECTIONS));
  await sleep(SETTLE_MS);
  const stats = await server.stats();
  const after = await server.memory();
  await load.close();
  return {
    phase: id,
    idle,
    connectMs: connected.connectMs,
    clients: connected.clients,
    before,
    after,
    stats: { documents: stats.documents, connections: stats.connections },
    warmUpUnloaded,
  };
}

/** What one server cost, in KB, from its two phases. */
interface Costs {
  readonly rssPerConnection: number;
  readonly heapPerConnection: number;
  readonly rssPerDocument: number;
  readonly heapPerDocument: number;
  /** The idle server, in MB: the median of the two phases' fresh servers. */
  readonly idleRss: number;
  readonly idleHeap: number;
}

function costs(own: Phase, one: Phase): Costs {
  const per = (p: Phase, pick: (usage: NodeJS.MemoryUsage) => number) =>
    (pick(p.after) - pick(p.before)) / p.clients / KB;
  const rssPerConnection = per(one, rss);
  const heapPerConnection = per(one, heap);
  const idle = (pick: (usage: NodeJS.MemoryUsage) => number) =>
    median([own, one].map((p) => pick(p.idle) / MB));
  return {
    rssPerConnection,
    heapPerConnection,
    rssPerDocument: per(own, rss) - rssPerConnection,
    heapPerDocument: per(own, heap) - heapPerConnection,
    idleRss: idle(rss),
    idleHeap: idle(heap),
  };
}

/** The server's counts do not match the clients: why, or undefined when they do. */
function mismatch(p: Phase): string | undefined {
  const documents = p.phase === "own" ? p.clients : 1;
  const wrong: string[] = [];
  if (p.stats.connections !== p.clients) wrong.push(`${p.stats.connections} connections`);
  if (p.stats.documents !== documents) wrong.push(`${p.stats.documents} documents`);
  return wrong.length === 0
    ? undefined
    : `${p.phase === "own" ? "own documents" : "one document"}: the server counted ${wrong.join(" and ")} for ${p.clients} clients`;
}

type Outcome = { own: Phase; one: Phase; costs: Costs } | Failure;

function figures(peers: readonly Peer[], outcomes: ReadonlyMap<string, Outcome>): Figure[] {
  const figure = (
    metric: string,
    unit: string,
    pick: (outcome: Extract<Outcome, { own: Phase }>) => number,
    note: string,
    target?: Figure["target"],
  ): Figure => ({
    metric,
    unit,
    better: "lower",
    ...outcomeValues(peers, outcomes, pick, (outcome) => [
      mismatch(outcome.own),
      mismatch(outcome.one),
    ]),
    note,
    ...(target ? { target } : {}),
  });
  const phases = `${CONNECTIONS.toLocaleString("en-US")} idle clients without presence, fresh server per phase, memory after a full GC`;
  return [
    figure(
      "memory per idle connection (RSS)",
      "KB",
      (o) => o.costs.rssPerConnection,
      `all clients on one document: (RSS after − before) / ${CONNECTIONS}; ${phases}; RSS counts what the process keeps, including memory the allocator and V8 hold after freeing what connecting allocated`,
      { op: "<=", value: TARGET_KB_PER_CONNECTION },
    ),
    figure(
      "memory per idle connection (JS heap + external)",
      "KB",
      (o) => o.costs.heapPerConnection,
      "as above, heapUsed + external: leaves out pages the allocator keeps after freeing",
    ),
    figure(
      "memory per document (RSS)",
      "KB",
      (o) => o.costs.rssPerDocument,
      `each client on its own (empty) document: (RSS after − before) / ${CONNECTIONS} − the per-connection cost`,
    ),
    figure(
      "memory per document (JS heap + external)",
      "KB",
      (o) => o.costs.heapPerDocument,
      "as above, heapUsed + external",
    ),
    figure(
      "idle server RSS before any client",
      "MB",
      (o) => o.costs.idleRss,
      "a freshly started server, listening, after a full GC, before any client connected; the median of the two phases' servers",
      { op: "<=", value: TARGET_IDLE_MB },
    ),
    figure(
      "idle server JS heap + external before any client",
      "MB",
      (o) => o.costs.idleHeap,
      "as above, heapUsed + external",
    ),
    figure(
      `time to connect ${CONNECTIONS.toLocaleString("en-US")} clients to one document`,
      "s",
      (o) => o.one.connectMs / 1000,
      `${BATCH} at a time, each batch synced before the next`,
    ),
    figure(
      `time to connect ${CONNECTIONS.toLocaleString("en-US")} clients to their own documents`,
      "s",
      (o) => o.own.connectMs / 1000,
      `${BATCH} at a time, each batch synced before the next (each loads or creates its document)`,
    ),
  ];
}

/**
 * S4 capacity: 2,000 idle connections each on its own document, then all on
 * one document, on a fresh server each; KB of server memory per connection
 * and per document, for every server in turn.
 */
export async function runS4(context: BenchContext, set: PeerSet): Promise<ScenarioResult> {
  context.log(
    `s4: ${CONNECTIONS} idle connections, each on its own document, then all on one; per server`,
  );
  const outcomes = new Map<string, Outcome>();
  const memory: Record<string, { perConnectionKb: number; perDocumentKb: number }> = {};
  const loadAverages: Record<string, number> = {};
  for (const peer of set.peers) {
    const started = performance.now();
    loadAverages[peer.id] = round(loadavg()[0] ?? Number.NaN);
    try {
      const own = await withPeer(peer, (server, load) => phase("own", peer, server, load));
      const one = await withPeer(peer, (server, load) => phase("one", peer, server, load));
      const result = costs(own, one);
      outcomes.set(peer.id, { own, one, costs: result });
      memory[peer.id] = {
        perConnectionKb: result.rssPerConnection,
        perDocumentKb: result.rssPerDocument,
      };
      context.log(
        `s4 ${peer.label}: idle ${round(result.idleRss)} MB RSS / ${round(result.idleHeap)} MB heap; per connection ${round(result.rssPerConnection)} KB RSS / ${round(result.heapPerConnection)} KB heap, per document ${round(result.rssPerDocument)} KB RSS / ${round(result.heapPerDocument)} KB heap; connected in ${round(own.connectMs / 1000)} s (own) and ${round(one.connectMs / 1000)} s (one)${[
          mismatch(own),
          mismatch(one),
        ]
          .filter((n) => n !== undefined)
          .map((n) => `; ${n}`)
          .join("")} (${round((performance.now() - started) / 1000)} s)`,
      );
    } catch (error) {
      outcomes.set(peer.id, { error: failureReason(error) });
      context.log(`s4 ${peer.label}: FAILED: ${failureReason(error)}`);
    }
  }
  return {
    figures: figures(set.peers, outcomes),
    charts: { memory },
    details: {
      connections: CONNECTIONS,
      warmUpClients: WARM_UP_CLIENTS,
      batch: BATCH,
      settleMs: SETTLE_MS,
      clients:
        "one load-generator process per phase (bench/peers/load.ts), the server's own client library",
      cores: cpus().length,
      loadAverages,
      skipped: set.skipped,
      runs: Object.fromEntries(outcomes),
    },
  };
}
