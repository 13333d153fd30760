/**
 * Editing traces (see bench/data/README.md): loading, decoding and replaying
 * them on a Yjs document, one Yjs update per trace transaction, the way an
 * editor would send them.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import * as Y from "yjs";

/** One patch: at code point `position`, delete `deleted` code points, then insert `inserted`. */
export type Patch = readonly [position: number, deleted: number, inserted: string];

/** A sequential editing trace as stored in bench/data. */
export interface Trace {
  readonly startContent: string;
  readonly endContent: string;
  readonly txns: ReadonlyArray<{ readonly patches: readonly Patch[] }>;
}

/** The Automerge paper trace: 259,778 single-character edits by one writer. */
/** The document name the benchmarks store the trace under. */
export const DOC = "automerge-paper";
/** The server's compaction threshold (COMPACT_MAX_ENTRIES' default), in log entries. */
export const COMPACT_EVERY = 10_000;

export const AUTOMERGE_PAPER = new URL("./data/automerge-paper.json.gz", import.meta.url);

/**
 * Reads and validates a gzipped sequential trace. Validation is structural
 * only (types of every field), so a truncated or foreign file fails here with
 * a clear message rather than as a wrong benchmark result later.
 */
export function loadTrace(file: URL | string = AUTOMERGE_PAPER): Trace {
  const parsed: unknown = JSON.parse(gunzipSync(readFileSync(file)).toString("utf8"));
  if (!isRecord(parsed)) throw new Error(`${String(file)}: not a JSON object`);
  const { startContent, endContent, txns } = parsed;
  if (typeof startContent !== "string" || typeof endContent !== "string") {
    throw new Error(`${String(file)}: startContent and endContent must be strings`);
  }
  if (!Array.isArray(txns)) throw new Error(`${String(file)}: txns must be an array`);
  const checked: Array<{ patches: Patch[] }> = [];
  for (const [i, txn] of txns.entries()) {
    const patches: unknown = isRecord(txn) ? txn.patches : undefined;
    if (!Array.isArray(patches)) throw new Error(`${String(file)}: txns[${i}].patches is missing`);
    for (const patch of patches) {
      if (!isPatch(patch)) {
        throw new Error(`${String(file)}: txns[${i}] holds a malformed patch`);
      }
    }
    checked.push({ patches: patches as Patch[] });
  }
  return { startContent, endContent, txns: checked };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isPatch(value: unknown): value is Patch {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    Number.isSafeInteger(value[0]) &&
    value[0] >= 0 &&
    Number.isSafeInteger(value[1]) &&
    value[1] >= 0 &&
    typeof value[2] === "string"
  );
}

/**
 * Maps code point positions (what traces use) to UTF-16 offsets (what Y.Text
 * uses). It keeps the sorted code point positions of the characters outside
 * the Basic Multilingual Plane, which take two UTF-16 units; with none (the
 * usual case) both positions coincide and every operation is O(1).
 */
export class CodePointIndex {
  /** Code point positions of astral characters, ascending. */
  private readonly astral: number[] = [];

  /** The UTF-16 offset of code point position `position`. */
  utf16(position: number): number {
    return position + this.countBefore(position);
  }

  /** The UTF-16 length of the `count` code points starting at code point `position`. */
  utf16Length(position: number, count: number): number {
    return count + this.countBefore(position + count) - this.countBefore(position);
  }

  /** Records that `count` code points at code point `position` were deleted. */
  delete(position: number, count: number): void {
    if (count === 0 || this.astral.length === 0) return;
    const from = this.lowerBound(position);
    const to = this.lowerBound(position + count);
    this.astral.splice(from, to - from);
    for (let i = from; i < this.astral.length; i++) (this.astral[i] as number) -= count;
  }

  /** Records that `text` was inserted at code point `position`. */
  insert(position: number, text: string): void {
    let length = 0;
    const added: number[] = [];
    for (const char of text) {
      if (char.length === 2) added.push(position + length);
      length++;
    }
    if (this.astral.length === 0 && added.length === 0) return;
    const from = this.lowerBound(position);
    for (let i = from; i < this.astral.length; i++) (this.astral[i] as number) += length;
    this.astral.splice(from, 0, ...added);
  }

  private countBefore(position: number): number {
    return this.astral.length === 0 ? 0 : this.lowerBound(position);
  }

  /** Index of the first astral position >= `position`. */
  private lowerBound(position: number): number {
    let low = 0;
    let high = this.astral.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.astral[mid] as number) < position) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** What {@link replayTrace} produced. */
export interface Replay {
  /** The document after the whole trace; its Y.Text "text" equals `trace.endContent`. */
  readonly doc: Y.Doc;
  /** One Yjs update per trace transaction, in order (preceded by one for a non-empty startContent). */
  readonly updates: Uint8Array[];
  /** `Y.encodeStateAsUpdate(doc)` after update `i` (0-based) for each `i` with `(i + 1) % snapshotEvery === 0`. */
  readonly snapshots: Map<number, Uint8Array>;
}

/**
 * Replays `trace` on the Y.Text "text" of a fresh document, one Yjs
 * transaction (so one update) per trace transaction, and checks the final
 * text against `endContent` so a replay bug cannot silently skew a benchmark.
 * With `snapshotEvery`, it also records the encoded state at those points, so
 * a benchmark can compact with the exact state a server would hold without
 * timing the encoding.
 */
export function replayTrace(trace: Trace, options: { snapshotEvery?: number } = {}): Replay {
  const doc = new Y.Doc();
  const text = doc.getText("text");
  const positions = new CodePointIndex();
  const updates: Uint8Array[] = [];
  const snapshots = new Map<number, Uint8Array>();
  const emitted: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => emitted.push(update));
  const take = (): void => {
    const update = emitted[0];
    if (emitted.length !== 1 || update === undefined) {
      throw new Error(`transaction ${updates.length} produced ${emitted.length} updates, not 1`);
    }
    updates.push(update);
    emitted.length = 0;
  };
  const every = options.snapshotEvery ?? 0;
  if (trace.startContent.length > 0) {
    // The initial content is the first update, so the stored log holds the whole document.
    text.insert(0, trace.startContent);
    positions.insert(0, trace.startContent);
    take();
  }
  for (const txn of trace.txns) {
    doc.transact(() => {
      for (const [position, deleted, inserted] of txn.patches) {
        const at = positions.utf16(position);
        if (deleted > 0) {
          text.delete(at, positions.utf16Length(position, deleted));
          positions.delete(position, deleted);
        }
        if (inserted.length > 0) {
          text.insert(at, inserted);
          positions.insert(position, inserted);
        }
      }
    });
    take();
    if (every > 0 && updates.length % every === 0) {
      snapshots.set(updates.length - 1, Y.encodeStateAsUpdate(doc));
    }
  }
  const result = text.toString();
  if (result !== trace.endContent) {
    throw new Error(
      `replay does not reproduce endContent: ${result.length} UTF-16 units, expected ${trace.endContent.length}`,
    );
  }
  return { doc, updates, snapshots };
}
