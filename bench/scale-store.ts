/**
 * Scale-out benchmark, store part (`npm run bench scale` runs it with the
 * fan-out part, bench/scale.ts): PostgresStore, the store several instances
 * share, against LevelDbStore, the one-process default, both through the
 * DocumentStore interface, in the same run, on the automerge-paper trace
 * (259,778 single-character edits, one Yjs update each). PostgreSQL is a
 * real server on a loopback port (test/helpers/engines.ts) with its default
 * durability: a write is acknowledged once committed (WAL flushed to disk).
 *
 * 1. Ingest: every update appended, all issued then awaited (the stores'
 *    group commit batches them), until flushed; without compaction, and
 *    with compaction every 10,000 appends and once at the end, as the server
 *    compacts. LevelDB with fsync on, so both acknowledge only what is on
 *    disk; its default (fsync off) once more for comparison.
 * 2. One awaited append at a time (a prefix): the latency of one commit.
 * 3. Cold load + apply of the compacted document: the store reopened in this
 *    process, and in a fresh process (bench/load-child.ts, nothing compiled);
 *    once also the uncompacted log of every update.
 * 4. Bytes: what the store reports (meta.bytes), and on disk: the LevelDB
 *    directory; PostgreSQL's tables with their TOAST and indexes
 *    (pg_total_relation_size), as left and after VACUUM FULL. PostgreSQL's
 *    write-ahead log is not counted (it is recycled, not per document).
 *
 * Each run uses fresh storage: a new LevelDB directory, a new PostgreSQL
 * schema. Runs alternate which store goes first.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { escapeIdentifier, Pool } from "pg";
import * as Y from "yjs";
import { LevelDbStore } from "../server/src/persistence/leveldb.ts";
import { PostgresStore } from "../server/src/persistence/postgres.ts";
import type { DocumentStore } from "../server/src/persistence/store.ts";
import { startPostgres } from "../test/helpers/engines.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchmarkResult,
  collectGarbage,
  dirSize,
  median,
  type Row,
  round,
  row,
  spread,
  timed,
} from "./lib.ts";
import type { ChildReport } from "./load-child.ts";
import { COMPACT_EVERY, DOC, loadTrace, type Replay, replayTrace } from "./trace.ts";

/** Runs of each measurement; the median is reported. */
const REPEATS = 3;
/** Updates appended one awaited call at a time: one commit each. */
const SEQUENTIAL_PREFIX = 2_000;
const CHILD_TIMEOUT_MS = 120_000;
const LOAD_CHILD = fileURLToPath(new URL("./load-child.ts", import.meta.url));

type Kind = "postgres" | "leveldb";

/** Fresh storage for one store: a PostgreSQL schema or a LevelDB directory. */
interface Place {
  readonly kind: Kind;
  open(options?: { fsync?: boolean }): Promise<DocumentStore>;
  /** Bytes on disk. */
  bytes(): Promise<number>;
  /** Arguments of bench/load-child.ts to load {@link DOC} from here. */
  readonly childArgs: readonly string[];
  dispose(): Promise<void>;
}

/** Sizes and housekeeping of the benchmark's PostgreSQL schemas, on a connection of our own. */
class PostgresAdmin {
  private readonly pool: Pool;
  private readonly url: string;
  private next = 0;

  constructor(url: string) {
    this.url = url;
    this.pool = new Pool({ connectionString: url, max: 1 });
  }

  /** Tables (with TOAST and indexes) of `schema`, in bytes. */
  async bytes(schema: string): Promise<number> {
    const result = await this.pool.query<{ bytes: number }>(
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::float8 AS bytes
       FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    );
    return result.rows[0]?.bytes ?? Number.NaN;
  }

  /** VACUUM FULL of every table of `schema` (rewrites them without dead rows), then their bytes. */
  async vacuumFull(schema: string): Promise<number> {
    const tables = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    );
    for (const { name } of tables.rows) {
      await this.pool.query(`VACUUM FULL ${escapeIdentifier(schema)}.${escapeIdentifier(name)}`);
    }
    return this.bytes(schema);
  }

  place(label: string): Place {
    const schema = `bench_${label.replaceAll(/[^a-z0-9]/g, "_")}_${this.next++}`;
    return {
      kind: "postgres",
      open: () => PostgresStore.open({ url: this.url, schema }),
      bytes: () => this.bytes(schema),
      childArgs: ["--postgres", this.url, schema, DOC],
      dispose: async () => {
        await this.pool.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(schema)} CASCADE`);
      },
    };
  }

  schemaOf(place: Place): string {
    return place.childArgs[2] as string;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

async function levelPlace(label: string): Promise<Place> {
  const dir = await mkdtemp(join(tmpdir(), `collab-bench-scale-${label}-`));
  return {
    kind: "leveldb",
    open: (options) => LevelDbStore.open({ dir, fsync: options?.fsync ?? false }),
    bytes: () => dirSize(dir),
    childArgs: [dir, DOC],
    dispose: () => rm(dir, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/** How an ingest went. */
interface Ingest {
  readonly ms: number;
  readonly rate: number;
  /** Write batches (transactions, LevelDB writes) the store made durable. */
  readonly commits: number;
  /** The final compaction with the finished document, when asked for. */
  readonly finalCompactMs?: number;
}

/**
 * Appends every update the way the server does under load (all calls issued,
 * then all awaited), compacting with the precomputed state every
 * {@link COMPACT_EVERY} appends when `snapshots` is given, and times it until
 * everything is durable. With `finalState`, also times a final compaction.
 */
async function ingest(
  store: DocumentStore,
  updates: readonly Uint8Array[],
  snapshots: ReadonlyMap<number, Uint8Array> | null,
  finalState: Uint8Array | null,
): Promise<Ingest> {
  let commits = 0;
  const unsubscribe = store.events.on("written", () => {
    commits++;
  });
  try {
    collectGarbage();
    const started = performance.now();
    const pending: Promise<void>[] = [];
    for (const [i, update] of updates.entries()) {
      pending.push(store.append(DOC, update));
      const state = snapshots?.get(i);
      if (state !== undefined) pending.push(store.compact(DOC, state));
    }
    await Promise.all(pending);
    await store.flush();
    const ms = performance.now() - started;
    const result = { ms, rate: (updates.length / ms) * 1000, commits };
    if (finalState === null) return result;
    const { ms: finalCompactMs } = await timed(async () => {
      await store.compact(DOC, finalState);
      await store.flush();
    });
    return { ...result, finalCompactMs };
  } finally {
    unsubscribe();
  }
}

/** Appends `updates` one awaited call at a time; updates/s. */
async function ingestSequentially(
  store: DocumentStore,
  updates: readonly Uint8Array[],
): Promise<number> {
  collectGarbage();
  const started = performance.now();
  for (const update of updates) await store.append(DOC, update);
  return (updates.length / (performance.now() - started)) * 1000;
}

/** Opens the store at `place`, times load() plus applying every update, and checks the text. */
async function coldLoad(
  place: Place,
  expected: string,
): Promise<{ openMs: number; loadMs: number; updates: number; metaBytes: number }> {
  const { ms: openMs, result: store } = await timed(() => place.open());
  try {
    collectGarbage();
    const { ms: loadMs, result } = await timed(async () => {
      const stored = await store.load(DOC);
      if (stored === null) throw new Error(`${place.kind}: ${DOC} is missing`);
      const doc = new Y.Doc();
      doc.getText("text");
      Y.transact(doc, () => {
        for (const update of stored.updates) Y.applyUpdate(doc, update);
      });
      return { doc, updates: stored.updates.length };
    });
    if (result.doc.getText("text").toString() !== expected) {
      throw new Error(`${place.kind}: the loaded text differs from the trace's endContent`);
    }
    result.doc.destroy();
    const meta = await store.meta(DOC);
    return { openMs, loadMs, updates: result.updates, metaBytes: meta?.bytes ?? Number.NaN };
  } finally {
    await store.close();
  }
}

/** Loads {@link DOC} from `place` in a fresh process (bench/load-child.ts). */
async function loadInChild(place: Place): Promise<ChildReport> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", LOAD_CHILD, ...place.childArgs],
    { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout) as ChildReport;
}

/** The trace replayed once, up front and untimed; the replayed Y.Doc itself is not kept. */
interface Prepared {
  readonly updates: readonly Uint8Array[];
  readonly snapshots: ReadonlyMap<number, Uint8Array>;
  readonly finalState: Uint8Array;
  readonly expected: string;
  readonly prefixText: string;
}

function prepare(): Prepared {
  const trace = loadTrace();
  const replay: Replay = replayTrace(trace, { snapshotEvery: COMPACT_EVERY });
  const prefix = new Y.Doc();
  Y.transact(prefix, () => {
    for (const update of replay.updates.slice(0, SEQUENTIAL_PREFIX)) Y.applyUpdate(prefix, update);
  });
  return {
    updates: replay.updates,
    snapshots: replay.snapshots,
    finalState: Y.encodeStateAsUpdate(replay.doc),
    expected: trace.endContent,
    prefixText: prefix.getText("text").toString(),
  };
}

/** One store's measurements in one run. */
interface StoreRun {
  readonly kind: Kind;
  readonly plain: Ingest;
  /** LevelDB only: the plain ingest with fsync off, its default. */
  readonly plainNoFsync?: Ingest;
  readonly compacting: Ingest;
  readonly bytesCompacted: number;
  readonly bytesVacuumed?: number;
  readonly load: { openMs: number; loadMs: number; updates: number; metaBytes: number };
  readonly child: ChildReport;
  /** First run only: the uncompacted log and one-at-a-time appends. */
  readonly first?: {
    readonly bytesUncompacted: number;
    readonly uncompactedLoad: { loadMs: number; updates: number };
    readonly sequentialRate: number;
  };
}

async function measureStore(
  context: BenchContext,
  kind: Kind,
  run: number,
  prepared: Prepared,
  admin: PostgresAdmin,
): Promise<StoreRun> {
  const { updates, snapshots, finalState, expected } = prepared;
  const place = (label: string) =>
    kind === "postgres" ? Promise.resolve(admin.place(label)) : levelPlace(label);
  // LevelDB with fsync, like PostgreSQL, which acknowledges a commit once its WAL is on disk.
  const fsync = { fsync: true };
  const using = async <T>(label: string, body: (place: Place) => Promise<T>): Promise<T> => {
    const p = await place(label);
    try {
      return await body(p);
    } finally {
      await p.dispose();
    }
  };

  context.log(`${kind}, run ${run + 1}/${REPEATS}: ingest without compaction`);
  const plainPart = await using("plain", async (p) => {
    const store = await p.open(fsync);
    let plain: Ingest;
    try {
      plain = await ingest(store, updates, null, null);
    } finally {
      await store.close();
    }
    if (run > 0) return { plain };
    const bytesUncompacted = await p.bytes();
    context.log(`${kind}: cold load of the uncompacted ${updates.length}-entry log`);
    const uncompactedLoad = await coldLoad(p, expected);
    return { plain, bytesUncompacted, uncompactedLoad };
  });
  const plainNoFsync =
    kind === "leveldb"
      ? await using("plain-nofsync", async (p) => {
          const store = await p.open({ fsync: false });
          try {
            return await ingest(store, updates, null, null);
          } finally {
            await store.close();
          }
        })
      : undefined;

  context.log(`${kind}, run ${run + 1}/${REPEATS}: ingest with compaction, cold loads`);
  const compactPart = await using("compact", async (p) => {
    const store = await p.open(fsync);
    let compacting: Ingest;
    try {
      compacting = await ingest(store, updates, snapshots, finalState);
    } finally {
      await store.close();
    }
    const bytesCompacted = await p.bytes();
    const load = await coldLoad(p, expected);
    const child = await loadInChild(p);
    if (child.textLength !== expected.length) {
      throw new Error(`${kind}: the fresh-process load holds ${child.textLength} characters`);
    }
    const bytesVacuumed =
      kind === "postgres" ? await admin.vacuumFull(admin.schemaOf(p)) : undefined;
    return { compacting, bytesCompacted, load, child, bytesVacuumed };
  });

  let first: StoreRun["first"];
  if (plainPart.bytesUncompacted !== undefined && plainPart.uncompactedLoad !== undefined) {
    context.log(`${kind}: one awaited append at a time (${SEQUENTIAL_PREFIX} updates)`);
    const sequentialRate = await using("sequential", async (p) => {
      const store = await p.open(fsync);
      try {
        return await ingestSequentially(store, updates.slice(0, SEQUENTIAL_PREFIX));
      } finally {
        await store.close();
      }
    });
    first = {
      bytesUncompacted: plainPart.bytesUncompacted,
      uncompactedLoad: plainPart.uncompactedLoad,
      sequentialRate,
    };
  }
  return {
    kind,
    plain: plainPart.plain,
    ...(plainNoFsync === undefined ? {} : { plainNoFsync }),
    ...compactPart,
    ...(first === undefined ? {} : { first }),
  };
}

function buildRows(runs: readonly StoreRun[], count: number): Row[] {
  const pg = runs.filter((r) => r.kind === "postgres");
  const level = runs.filter((r) => r.kind === "leveldb");
  const pgFirst = pg.find((r) => r.first !== undefined)?.first;
  const levelFirst = level.find((r) => r.first !== undefined)?.first;
  const both = (pick: (r: StoreRun) => number) => ({
    value: median(pg.map(pick)),
    reference: median(level.map(pick)),
  });
  const spreads = (pick: (r: StoreRun) => number) =>
    `PostgreSQL ${spread(pg.map(pick))}; LevelDB ${spread(level.map(pick))}`;
  const plainRate = (r: StoreRun) => r.plain.rate;
  const compactRate = (r: StoreRun) => r.compacting.rate;
  const perCommit = (ingested: (r: StoreRun) => Ingest) => (list: readonly StoreRun[]) =>
    round(median(list.map((r) => count / ingested(r).commits)));
  const n = count.toLocaleString("en-US");
  return [
    row({
      name: `ingest of ${n} updates, all issued then awaited (group commit; acknowledged = committed, on disk)`,
      ...both(plainRate),
      unit: "updates/s",
      better: "higher",
      target: { op: ">=", value: 20_000 },
      note: `the ingest target of issue 2; LevelDB with fsync; ${spreads(plainRate)}; updates per commit ${perCommit((r) => r.plain)(pg)} / ${perCommit((r) => r.plain)(level)}; LevelDB with fsync off (its default) ${Math.round(median(level.map((r) => r.plainNoFsync?.rate ?? Number.NaN)))}/s`,
    }),
    row({
      name: `ingest + compact every ${COMPACT_EVERY.toLocaleString("en-US")} appends, as the server does`,
      ...both(compactRate),
      unit: "updates/s",
      better: "higher",
      target: { op: ">=", value: 20_000 },
      note: `${spreads(compactRate)}; final compaction ${round(median(pg.map((r) => r.compacting.finalCompactMs ?? Number.NaN)))} / ${round(median(level.map((r) => r.compacting.finalCompactMs ?? Number.NaN)))} ms`,
    }),
    row({
      name: `one awaited append at a time (first ${SEQUENTIAL_PREFIX.toLocaleString("en-US")}): one commit each`,
      value: pgFirst?.sequentialRate ?? Number.NaN,
      reference: levelFirst?.sequentialRate ?? Number.NaN,
      unit: "updates/s",
      better: "higher",
      note: `${round(1000 / (pgFirst?.sequentialRate ?? Number.NaN))} / ${round(1000 / (levelFirst?.sequentialRate ?? Number.NaN))} ms per commit; 1 run`,
    }),
    row({
      name: "cold load + apply of the compacted document, store reopened in this process",
      ...both((r) => r.load.loadMs),
      unit: "ms",
      better: "lower",
      target: { op: "<=", value: 150 },
      note: `the cold-load target of issue 2; ${spreads((r) => r.load.loadMs)}; open (connect, schema check / open the directory) ${round(median(pg.map((r) => r.load.openMs)))} / ${round(median(level.map((r) => r.load.openMs)))} ms, not included`,
    }),
    row({
      name: "cold load + apply in a fresh process (nothing compiled yet)",
      ...both((r) => r.child.loadMs),
      unit: "ms",
      better: "lower",
      target: { op: "<=", value: 150 },
      note: `${spreads((r) => r.child.loadMs)}; open ${round(median(pg.map((r) => r.child.openMs)))} / ${round(median(level.map((r) => r.child.openMs)))} ms, not included`,
    }),
    row({
      name: `cold load + apply of the uncompacted log of ${n} updates`,
      value: pgFirst?.uncompactedLoad.loadMs ?? Number.NaN,
      reference: levelFirst?.uncompactedLoad.loadMs ?? Number.NaN,
      unit: "ms",
      better: "lower",
      note: "1 run; the server never lets a log grow this long (it compacts every 10,000)",
    }),
    row({
      name: "stored bytes the store reports after the final compaction (meta.bytes)",
      ...both((r) => r.load.metaBytes),
      unit: "B",
      better: "lower",
    }),
    row({
      name: "on disk after the final compaction, as left",
      ...both((r) => r.bytesCompacted),
      unit: "B",
      better: "lower",
      note: "PostgreSQL: its tables with TOAST and indexes (WAL not counted), the deleted log rows still in them until vacuumed; LevelDB: the directory",
    }),
    row({
      name: "  PostgreSQL after VACUUM FULL (LevelDB: as left)",
      value: median(pg.map((r) => r.bytesVacuumed ?? Number.NaN)),
      reference: median(level.map((r) => r.bytesCompacted)),
      unit: "B",
      better: "lower",
      note: "autovacuum makes dead rows' space reusable but does not shrink the files",
    }),
    row({
      name: `on disk, uncompacted log of ${n} updates`,
      value: pgFirst?.bytesUncompacted ?? Number.NaN,
      reference: levelFirst?.bytesUncompacted ?? Number.NaN,
      unit: "B",
      better: "lower",
      note: "one row per update in PostgreSQL (row header, id, name, index entry)",
    }),
  ];
}

async function runStores(context: BenchContext): Promise<BenchmarkResult> {
  context.log("starting PostgreSQL; loading and replaying the trace (not timed)");
  const postgres = await startPostgres();
  const prepared = prepare();
  const admin = new PostgresAdmin(postgres.url);
  try {
    const runs: StoreRun[] = [];
    for (let run = 0; run < REPEATS; run++) {
      const order: Kind[] = run % 2 === 0 ? ["postgres", "leveldb"] : ["leveldb", "postgres"];
      for (const kind of order) {
        const result = await measureStore(context, kind, run, prepared, admin);
        runs.push(result);
        context.log(
          `${kind}, run ${run + 1}: ingest ${Math.round(result.plain.rate)}/s (${result.plain.commits} commits), with compaction ${Math.round(result.compacting.rate)}/s; cold load ${round(result.load.loadMs)} ms, fresh process ${round(result.child.loadMs)} ms; ${result.bytesCompacted} B on disk`,
        );
      }
    }
    return {
      rows: buildRows(runs, prepared.updates.length),
      details: {
        trace: { file: "bench/data/automerge-paper.json.gz", updates: prepared.updates.length },
        compactEvery: COMPACT_EVERY,
        repeats: REPEATS,
        sequentialPrefix: SEQUENTIAL_PREFIX,
        postgres: "test/helpers/engines.ts: initdb defaults, fsync and synchronous_commit on",
        runs,
      },
    };
  } finally {
    await admin.close();
    await postgres.stop();
  }
}

/** The store part of `npm run bench scale`. */
export const scaleStoreBenchmark: Benchmark = {
  id: "scale-store",
  group: "scale",
  title: "Scale-out: PostgresStore vs LevelDbStore (automerge-paper trace)",
  subject: "PostgreSQL",
  reference: "LevelDB",
  run: runStores,
};
