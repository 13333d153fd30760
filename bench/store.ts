/**
 * Store benchmarks: our LevelDbStore against the reference y-leveldb 0.2.0
 * (with its own classic-level 1.x), measured in the same run on the
 * automerge-paper trace (259,778 single-character edits, one Yjs update each).
 *
 * 1. Durable ingest: every update appended (and acknowledged) as fast as the
 *    store takes them; ours also with fsync and with compaction every
 *    10,000 appends, as the server compacts.
 * 2. Cold load: close, reopen, time load() plus applying the updates.
 * 3. Bytes on disk after compaction, against the encoded document.
 * 4. Memory of the loaded document, in a process of its own.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ClassicLevel as ReferenceLevel } from "classic-level";
import { LeveldbPersistence } from "y-leveldb";
import * as Y from "yjs";
import { LevelDbStore } from "../server/src/persistence/leveldb.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchmarkResult,
  collectGarbage,
  dirFiles,
  dirSize,
  median,
  type Row,
  round,
  row,
  spread,
  timed,
  withTempDir,
} from "./lib.ts";
import type { ChildReport } from "./load-child.ts";
import { COMPACT_EVERY, DOC, loadTrace, type Replay, replayTrace } from "./trace.ts";

/** Updates stored one awaited call at a time, to show per-call latency (a prefix: y-leveldb is slow). */
const SEQUENTIAL_PREFIX = 50_000;
/** Upper bound for the child process that measures memory. */
const CHILD_TIMEOUT_MS = 180_000;
const MIB = 1024 * 1024;
/** Runs of each of our (fast) measurements; the median is reported. y-leveldb runs once. */
const REPEATS = 3;

/** Our store's write path: how long `updates` took to become durable. */
interface IngestResult {
  readonly ms: number;
  readonly rate: number;
}

/** A LevelDB handle reduced to what a manual compaction needs; both classic-level versions fit. */
interface CompactableLevel {
  open(): Promise<void>;
  compactRange(start: Uint8Array, end: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** The classic-level our store loads (3.x from the server workspace), not the root one y-leveldb uses. */
const storeRequire = createRequire(
  new URL("../server/src/persistence/leveldb.ts", import.meta.url),
);

function openOurLevel(dir: string): CompactableLevel {
  const { ClassicLevel } = storeRequire("classic-level") as {
    ClassicLevel: new (
      location: string,
      options: { keyEncoding: "view"; valueEncoding: "view" },
    ) => CompactableLevel;
  };
  return new ClassicLevel(dir, { keyEncoding: "view", valueEncoding: "view" });
}

function openReferenceLevel(dir: string): CompactableLevel {
  return new ReferenceLevel<Uint8Array, Uint8Array>(dir, {
    keyEncoding: "view",
    valueEncoding: "view",
  });
}

/**
 * Compacts the whole key space of the LevelDB in `dir` (neither store does
 * this itself), so dead log entries and tombstones are dropped, and returns
 * the directory size afterwards.
 */
async function compactLevelDb(
  dir: string,
  open: (dir: string) => CompactableLevel,
): Promise<number> {
  const db = open(dir);
  await db.open();
  await db.compactRange(new Uint8Array([0x00]), new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  await db.close();
  return dirSize(dir);
}

/**
 * Appends every update to a fresh LevelDbStore the way the server does under
 * load (all calls issued, then all awaited), optionally compacting with the
 * precomputed state every `COMPACT_EVERY` appends, and times it until
 * everything is durable. The store is left open for the caller.
 */
async function ingestOurs(
  store: LevelDbStore,
  updates: readonly Uint8Array[],
  snapshots: ReadonlyMap<number, Uint8Array> | null,
): Promise<IngestResult> {
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
  return { ms, rate: (updates.length / ms) * 1000 };
}

/** Appends `updates` one awaited call at a time and returns updates/s. */
async function ingestSequentially(
  append: (update: Uint8Array) => Promise<unknown>,
  updates: readonly Uint8Array[],
): Promise<number> {
  collectGarbage();
  const started = performance.now();
  for (const update of updates) await append(update);
  return (updates.length / (performance.now() - started)) * 1000;
}

/** Opens our store in `dir`, times load() plus applying the updates, and checks the text. */
async function coldLoadOurs(
  dir: string,
  expected: string,
): Promise<{ openMs: number; loadMs: number; updates: number; metaBytes: number }> {
  const { ms: openMs, result: store } = await timed(() => LevelDbStore.open({ dir }));
  try {
    collectGarbage();
    const { ms: loadMs, result } = await timed(async () => {
      const stored = await store.load(DOC);
      if (stored === null) throw new Error(`document ${DOC} is missing after ingest`);
      const doc = new Y.Doc();
      doc.getText("text");
      Y.transact(doc, () => {
        for (const update of stored.updates) Y.applyUpdate(doc, update);
      });
      return { doc, updates: stored.updates.length };
    });
    checkText(result.doc, expected, "our store");
    const meta = await store.meta(DOC);
    return { openMs, loadMs, updates: result.updates, metaBytes: meta?.bytes ?? 0 };
  } finally {
    await store.close();
  }
}

/** Opens y-leveldb in `dir` and times getYDoc (which merges the log when it holds over 500 updates). */
async function loadReference(dir: string, expected: string): Promise<number> {
  const persistence = new LeveldbPersistence(dir);
  try {
    // level opens lazily; a read of an absent key opens it without touching the document.
    await persistence.getMeta(DOC, "bench-open");
    collectGarbage();
    const { ms, result: doc } = await timed(() => persistence.getYDoc(DOC));
    checkText(doc, expected, "y-leveldb");
    return ms;
  } finally {
    await persistence.destroy();
  }
}

/** The text of a fresh document after applying `updates`. */
function textAfter(updates: readonly Uint8Array[]): string {
  const doc = new Y.Doc();
  Y.transact(doc, () => {
    for (const update of updates) Y.applyUpdate(doc, update);
  });
  return doc.getText("text").toString();
}

function checkText(doc: Y.Doc, expected: string, who: string): void {
  const actual = doc.getText("text").toString();
  if (actual !== expected) {
    throw new Error(
      `${who} loaded ${actual.length} characters that differ from the trace's endContent (${expected.length})`,
    );
  }
}

/** Runs bench/load-child.ts on `dir` and returns its report. */
async function loadInChild(dir: string): Promise<ChildReport> {
  const child = fileURLToPath(new URL("./load-child.ts", import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", child, dir, DOC], {
    timeout: CHILD_TIMEOUT_MS,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout) as ChildReport;
}

/** The version in the package.json next to (or above) the module `from` resolves `name` to. */
function versionOf(name: string, from: NodeJS.Require): string {
  try {
    let dir = dirname(from.resolve(name));
    for (let depth = 0; depth < 4; depth++) {
      const manifest = join(dir, "package.json");
      try {
        const parsed = JSON.parse(readFileSync(manifest, "utf8")) as {
          name?: string;
          version?: string;
        };
        if (parsed.name === name && parsed.version !== undefined) return parsed.version;
      } catch {
        // No manifest at this level; look one up.
      }
      dir = dirname(dir);
    }
  } catch {
    // Not resolvable from there.
  }
  return "unknown";
}

function storeVersions(): Record<string, string> {
  const rootRequire = createRequire(import.meta.url);
  return {
    yjs: versionOf("yjs", rootRequire),
    "classic-level (ours)": versionOf("classic-level", storeRequire),
    "classic-level (y-leveldb)": versionOf("classic-level", rootRequire),
    "y-leveldb": versionOf("y-leveldb", rootRequire),
  };
}

/** The trace replayed once, up front and untimed; the replayed Y.Doc itself is not kept. */
interface Prepared {
  readonly updates: readonly Uint8Array[];
  readonly snapshots: ReadonlyMap<number, Uint8Array>;
  /** `Y.encodeStateAsUpdate` of the finished document: the final compaction's state. */
  readonly finalState: Uint8Array;
  readonly encodedV2: number;
  readonly expected: string;
  readonly replayMs: number;
}

/**
 * Replays the trace in a function of its own so the replayed document (over
 * 100 MB of heap with its history) is garbage once this returns and does not
 * slow the measurements' garbage collections.
 */
function prepare(): Prepared {
  const trace = loadTrace();
  const started = performance.now();
  const replay: Replay = replayTrace(trace, { snapshotEvery: COMPACT_EVERY });
  const replayMs = performance.now() - started;
  return {
    updates: replay.updates,
    snapshots: replay.snapshots,
    finalState: Y.encodeStateAsUpdate(replay.doc),
    encodedV2: Y.encodeStateAsUpdateV2(replay.doc).byteLength,
    expected: trace.endContent,
    replayMs,
  };
}

/** Runs `body` `times` times, one after the other. */
async function repeat<T>(times: number, body: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < times; i++) results.push(await body(i));
  return results;
}

/** Runs every store measurement; see the module comment. */
async function runStoreBenchmarks(context: BenchContext): Promise<BenchmarkResult> {
  context.log("loading and replaying the trace (not timed)");
  const { updates, snapshots, finalState, encodedV2, expected, replayMs } = prepare();
  const encodedV1 = finalState.byteLength;
  const updateBytes = updates.reduce((sum, update) => sum + update.byteLength, 0);
  const count = updates.length;
  const prefix = updates.slice(0, SEQUENTIAL_PREFIX);
  const prefixText = textAfter(prefix);
  const details: Record<string, unknown> = {
    versions: storeVersions(),
    trace: {
      file: "bench/data/automerge-paper.json.gz",
      updates: count,
      updateBytes,
      finalCharacters: [...expected].length,
      encodedV1,
      encodedV2,
      replayMs: round(replayMs),
    },
    compactEvery: COMPACT_EVERY,
    repeats: REPEATS,
  };

  // --- Reference: y-leveldb, once (it is slow). All calls issued, then awaited, as for ours:
  // it chains them itself, each after the previous one finished.
  context.log("y-leveldb: ingest (slow: 20 to 60 s)");
  const reference = await withTempDir("y-leveldb", async (dir) => {
    const persistence = new LeveldbPersistence(dir);
    await persistence.getMeta(DOC, "bench-open");
    collectGarbage();
    const started = performance.now();
    await Promise.all(updates.map((update) => persistence.storeUpdate(DOC, update)));
    const ingestMs = performance.now() - started;
    await persistence.destroy();
    const uncompactedBytes = await dirSize(dir);
    context.log(`y-leveldb: ingest took ${round(ingestMs / 1000)} s; first and second load`);
    const firstLoadMs = await loadReference(dir, expected);
    const afterFirstLoadBytes = await dirSize(dir);
    const secondLoadMs = await loadReference(dir, expected);
    const compactedFiles = await dirFiles(dir);
    const compactedBytes = await dirSize(dir);
    const levelCompactedBytes = await compactLevelDb(dir, openReferenceLevel);
    return {
      ingestRate: (count / ingestMs) * 1000,
      ingestMs,
      uncompactedBytes,
      firstLoadMs,
      afterFirstLoadBytes,
      secondLoadMs,
      compactedFiles,
      compactedBytes,
      levelCompactedBytes,
    };
  });
  context.log(`y-leveldb: one awaited storeUpdate at a time (${prefix.length} updates)`);
  const referenceSequential = await withTempDir("y-leveldb-seq", async (dir) => {
    const persistence = new LeveldbPersistence(dir);
    await persistence.getMeta(DOC, "bench-open");
    let rate: number;
    try {
      rate = await ingestSequentially((update) => persistence.storeUpdate(DOC, update), prefix);
    } finally {
      await persistence.destroy();
    }
    const firstLoadMs = await loadReference(dir, prefixText);
    return { rate, firstLoadMs };
  });
  details.reference = { ...reference, sequential: referenceSequential };

  // --- Ours, no compaction; the first run also tries a cold load of the whole log.
  const plain = await repeat(REPEATS, (run) =>
    withTempDir("ours-plain", async (dir) => {
      context.log(`ours: ingest without compaction, run ${run + 1}/${REPEATS}`);
      const store = await LevelDbStore.open({ dir });
      const ingest = await ingestOurs(store, updates, null);
      await store.close();
      const files = await dirFiles(dir);
      if (run > 0) return { ingest, files, load: null };
      context.log(`ours: cold load of the uncompacted ${count}-entry log`);
      const load = await coldLoadOurs(dir, expected).catch((error: unknown) => {
        context.log(`ours: FAILED to load the uncompacted log: ${String(error)}`);
        return String(error);
      });
      return { ingest, files, load };
    }),
  );
  const plainLoad = plain[0]?.load ?? "not run";

  const synced = await repeat(REPEATS, (run) =>
    withTempDir("ours-fsync", async (dir) => {
      context.log(`ours: ingest with fsync, run ${run + 1}/${REPEATS}`);
      const store = await LevelDbStore.open({ dir, fsync: true });
      try {
        return await ingestOurs(store, updates, null);
      } finally {
        await store.close();
      }
    }),
  );

  context.log(`ours: one awaited append at a time (${prefix.length} updates)`);
  const sequential = await withTempDir("ours-seq", async (dir) => {
    const store = await LevelDbStore.open({ dir });
    let rate: number;
    try {
      rate = await ingestSequentially((update) => store.append(DOC, update), prefix);
    } finally {
      await store.close();
    }
    const load = await coldLoadOurs(dir, prefixText);
    return { rate, load };
  });

  // --- Ours as the server runs it: compaction every 10,000 entries and when the last client
  // leaves; then the first (cold) load. The last run also measures disk and memory.
  const compacting = await repeat(REPEATS, (run) =>
    withTempDir("ours-compact", async (dir) => {
      context.log(
        `ours: ingest with compaction, final compaction, cold load, run ${run + 1}/${REPEATS}`,
      );
      const store = await LevelDbStore.open({ dir });
      const ingest = await ingestOurs(store, updates, snapshots);
      const { ms: finalCompactMs } = await timed(async () => {
        await store.compact(DOC, finalState);
        await store.flush();
      });
      await store.close();
      const closedFiles = await dirFiles(dir);
      const closedBytes = await dirSize(dir);
      const load = await coldLoadOurs(dir, expected);
      if (run < REPEATS - 1) return { ingest, finalCompactMs, closedBytes, load, last: null };
      const reopenedFiles = await dirFiles(dir);
      const reopenedBytes = await dirSize(dir);
      context.log("ours: load in a fresh process (memory), then LevelDB compactRange");
      const child = await loadInChild(dir);
      const levelCompactedBytes = await compactLevelDb(dir, openOurLevel);
      const levelCompactedFiles = await dirFiles(dir);
      const last = {
        closedFiles,
        reopenedFiles,
        reopenedBytes,
        child,
        levelCompactedBytes,
        levelCompactedFiles,
      };
      return { ingest, finalCompactMs, closedBytes, load, last };
    }),
  );
  const last = compacting.at(-1)?.last;
  if (last === undefined || last === null)
    throw new Error("the last compaction run reported nothing");
  const expectedSha = createHash("sha256").update(expected).digest("hex");
  if (last.child.textSha256 !== expectedSha) {
    throw new Error("the fresh-process load did not reproduce the trace's endContent");
  }
  details.ours = { plain, synced, sequential, compacting };

  // --- Rows: medians over the runs, the spread in the note.
  const plainRates = plain.map((r) => r.ingest.rate);
  const syncedRates = synced.map((r) => r.rate);
  const compactingRates = compacting.map((r) => r.ingest.rate);
  const coldLoads = compacting.map((r) => r.load.loadMs);
  const closedBytes = compacting.map((r) => r.closedBytes);
  const { child } = last;
  const rows: Row[] = [
    row({
      name: "ingest, all issued then awaited, fsync off",
      value: median(plainRates),
      unit: "updates/s",
      better: "higher",
      target: { op: ">=", value: 20_000 },
      reference: reference.ingestRate,
      note: `${spread(plainRates)}; y-leveldb took ${round(reference.ingestMs / 1000)} s`,
    }),
    row({
      name: `ingest + compact every ${COMPACT_EVERY} appends, fsync off`,
      value: median(compactingRates),
      unit: "updates/s",
      better: "higher",
      target: { op: ">=", value: 20_000 },
      reference: reference.ingestRate,
      note: `${spread(compactingRates)}; ${snapshots.size} compactions (states precomputed)`,
    }),
    row({
      name: "ingest, all issued then awaited, fsync on",
      value: median(syncedRates),
      unit: "updates/s",
      better: "higher",
      target: { op: ">=", value: 20_000 },
      reference: reference.ingestRate,
      note: `${spread(syncedRates)}; y-leveldb has no fsync option`,
    }),
    row({
      name: `ingest, one awaited call at a time (first ${prefix.length})`,
      value: sequential.rate,
      unit: "updates/s",
      better: "higher",
      reference: referenceSequential.rate,
      note: "latency-bound: one LevelDB write per update",
    }),
    row({
      name: "final compaction (compact + flush)",
      value: median(compacting.map((r) => r.finalCompactMs)),
      unit: "ms",
      better: "lower",
    }),
    row({
      name: "cold load + apply after ingest with compaction (y-leveldb: 2nd load)",
      value: median(coldLoads),
      unit: "ms",
      better: "lower",
      target: { op: "<=", value: 150 },
      reference: reference.secondLoadMs,
      note: `${spread(coldLoads)}; reads the snapshot only; reopen ${round(median(compacting.map((r) => r.load.openMs)))} ms not included`,
    }),
    row({
      name: "cold load + apply in a fresh process",
      value: child.loadMs,
      unit: "ms",
      better: "lower",
      target: { op: "<=", value: 150 },
      note: `nothing compiled yet; open ${round(child.openMs)} ms not included`,
    }),
    row({
      name: `cold load + apply, uncompacted log of ${count} (y-leveldb: 1st load)`,
      value: typeof plainLoad === "string" ? Number.NaN : plainLoad.loadMs,
      unit: "ms",
      better: "lower",
      reference: reference.firstLoadMs,
      note:
        typeof plainLoad === "string"
          ? `ours fails: ${plainLoad}`
          : "y-leveldb's 1st load also merges and rewrites the log",
    }),
    row({
      name: `cold load + apply, uncompacted log of ${prefix.length} (y-leveldb: 1st load)`,
      value: sequential.load.loadMs,
      unit: "ms",
      better: "lower",
      reference: referenceSequential.firstLoadMs,
      note: "y-leveldb's 1st load also merges and rewrites the log",
    }),
    row({
      name: "disk after final compaction, store closed",
      value: median(closedBytes),
      unit: "B",
      better: "lower",
      target: { op: "<=", value: 2 * encodedV1 },
      reference: reference.compactedBytes,
      note: "LevelDB dir as left; y-leveldb after its own compaction (2nd load)",
    }),
    row({
      name: "disk after one reopen + close",
      value: last.reopenedBytes,
      unit: "B",
      better: "lower",
      target: { op: "<=", value: 2 * encodedV1 },
      note: "write-ahead log turned into a table; superseded data not yet dropped",
    }),
    row({
      name: "disk after LevelDB compactRange",
      value: last.levelCompactedBytes,
      unit: "B",
      better: "lower",
      target: { op: "<=", value: 2 * encodedV1 },
      reference: reference.levelCompactedBytes,
      note: "a full compactRange of the whole database, for comparison",
    }),
    row({
      name: "stored bytes the store reports (meta.bytes)",
      value: compacting.at(-1)?.load.metaBytes ?? Number.NaN,
      unit: "B",
      better: "lower",
      target: { op: "<=", value: 2 * encodedV1 },
    }),
    row({
      name: "encoded document: Y.encodeStateAsUpdate (V1)",
      value: encodedV1,
      unit: "B",
      note: `V2 ${encodedV2} B; the ${count} updates total ${updateBytes} B`,
    }),
    row({
      name: "disk after compaction ÷ encoded V1, store closed / after compactRange",
      value: median(closedBytes) / encodedV1,
      unit: "×",
      better: "lower",
      target: { op: "<=", value: 2 },
      note: `after compactRange: ${round(last.levelCompactedBytes / encodedV1)}×`,
    }),
    row({
      name: "heap used after loading the document (fresh process, after GC)",
      value: child.loaded.heapUsed / MIB,
      unit: "MiB",
      better: "lower",
      note: `baseline before opening the store ${round(child.baseline.heapUsed / MIB)} MiB: the document adds ${round((child.loaded.heapUsed - child.baseline.heapUsed) / MIB)} MiB`,
    }),
    row({
      name: "RSS after loading the document (fresh process)",
      value: child.loaded.rss / MIB,
      unit: "MiB",
      better: "lower",
      note: `baseline ${round(child.baseline.rss / MIB)} MiB${child.gcExposed ? "" : "; gc was not exposed"}`,
    }),
  ];
  return { rows, details };
}

/** The store benchmark as `bench/run.ts` runs it (`node bench/run.ts store`). */
export const storeBenchmark: Benchmark = {
  id: "store",
  title: "Store: LevelDbStore vs y-leveldb 0.2.0 (automerge-paper trace)",
  reference: "y-leveldb",
  run: runStoreBenchmarks,
};
