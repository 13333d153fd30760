/**
 * Comparing two versions of a document, transport-free: {@link compareDocuments}
 * takes two Tiptap JSON documents (of the editor's schema) and gives one
 * document of the comparison schema (`editor/src/comparison.ts`) holding both:
 * what only the earlier one has is marked deleted, what only the later one
 * has is marked inserted, and the rest is as they both have it.
 *
 * How: the two trees are compared level by level. At each level the children
 * are matched, equal ones first (Myers' diff over the children), then, in
 * each run of unequal ones, pairs of the same kind that share enough words
 * (most of the shorter one's; the best pairing that keeps their order). A pair of textblocks is diffed
 * by prosemirror-changeset (ProseMirror's own change tracking: a token diff,
 * widened to whole words where a word is partly replaced, for reading); a
 * pair of containers (lists, quotes, tables, rows, cells) is compared one
 * level down. A child left without a partner is shown whole, as a block
 * inserted or deleted. So the result is always a valid document, and it
 * holds both documents exactly: {@link comparedSide} takes either back out.
 *
 * What counts as a change: text, inline marks (bold, links, ...) and line
 * breaks, a block's type and attributes (a heading's level, a task's check
 * box, a code block's language: such a block shows as replaced), and blocks
 * added or removed. Comment threads' marks and table column widths are not
 * changes. Comparing is bounded: character diffs stop after
 * {@link CompareOptions.diffBudget} tokens of changed text (beyond it a
 * changed textblock shows from its first to its last difference as
 * replaced), and the children of one node are matched only up to
 * {@link MAX_BLOCK_EDITS} differences (beyond that, as all removed and added).
 *
 * Who made a change is not known here: a document's Yjs history records
 * editor client ids, and the server keeps no record of which person each
 * client id was. The API names who saved each version instead.
 */
import { getSchema, type JSONContent } from "@tiptap/core";
import { type Change, ChangeSet, simplifyChanges, type TokenEncoder } from "@tiptap/pm/changeset";
import {
  DOMSerializer,
  Fragment,
  type Mark,
  type MarkType,
  type Node as PMNode,
  type Schema,
} from "@tiptap/pm/model";
import { StepMap } from "@tiptap/pm/transform";
import { COMMENT_MARK } from "../../../editor/src/comments/model.ts";
import {
  type BlockChange,
  CHANGE_ATTRIBUTE,
  comparisonExtensions,
  DELETION_MARK,
  INSERTION_MARK,
} from "../../../editor/src/comparison.ts";
import { checkedJSON, serializeHTML } from "./convert.ts";

/** The comparison schema: the document schema, plus insertion and deletion marks and the `change` attribute. */
export const comparisonSchema: Schema = getSchema(comparisonExtensions());

/** How many changes a comparison shows. */
export interface ChangeCounts {
  /**
   * Runs of inserted content: text, line breaks and whole blocks inserted
   * next to each other, in reading order, count as one.
   */
  readonly insertions: number;
  /** Runs of deleted content, counted the same way. */
  readonly deletions: number;
}

/** What {@link compareDocuments} gives. */
export interface Comparison {
  /**
   * One document of the comparison schema holding both: insertions marked
   * `insertion`, deletions `deletion`, blocks added or removed whole with
   * `attrs.change` (`"inserted"`, `"deleted"`; the attribute is left out
   * elsewhere).
   */
  readonly doc: JSONContent;
  readonly changes: ChangeCounts;
}

export interface CompareOptions {
  /**
   * Tokens (characters and inline nodes, both sides together) of changed
   * textblocks diffed in detail; past it, the rest are diffed from their
   * first to their last difference. @default DEFAULT_DIFF_BUDGET
   */
  readonly diffBudget?: number;
}

/** Tokens of changed textblocks diffed in detail by default: about a second of CPU at worst. */
export const DEFAULT_DIFF_BUDGET = 100_000;
/** Differences between the children of one node beyond which they are not matched. */
export const MAX_BLOCK_EDITS = 1_000;
/** Pairs of unequal children weighed against each other, at most, per run of them. */
const MAX_PAIRINGS = 10_000;
/**
 * The share of the shorter block's words the other must have too for the two to show as one
 * block changed (rather than one removed and one added).
 */
const MIN_OVERLAP = 0.5;
/** Attributes that are layout, not content: a difference in them is not shown. */
const LAYOUT_ATTRIBUTES: ReadonlySet<string> = new Set(["colwidth"]);

const insertion = markType(INSERTION_MARK);
const deletion = markType(DELETION_MARK);
const serializer = DOMSerializer.fromSchema(comparisonSchema);

/**
 * Compares `before` with `after` (Tiptap JSON of the document schema). Both
 * are checked as every reader of the API checks a document (CONTENT_INVALID
 * when one is not valid); comment threads' marks are left out. Changes
 * nothing it is given.
 *
 * @example
 * const { doc, changes } = compareDocuments(version, current);
 * // changes: { insertions: 1, deletions: 1 }
 */
export function compareDocuments(
  before: JSONContent,
  after: JSONContent,
  options: CompareOptions = {},
): Comparison {
  const a = comparable(before);
  const b = comparable(after);
  const differ = new Differ(options.diffBudget ?? DEFAULT_DIFF_BUDGET);
  const merged =
    differ.merge(a, b) ??
    b.type.create(b.attrs, [
      ...childrenOf(a).map((child) => wholly(child, "deleted")),
      ...childrenOf(b).map((child) => wholly(child, "inserted")),
    ]);
  return { doc: withoutUnsetChanges(merged.toJSON()), changes: countChanges(merged) };
}

/**
 * One side of a comparison ({@link Comparison.doc}): `"before"` is the
 * earlier document and `"after"` the later one, as Tiptap JSON of the
 * document schema, with comment marks left out as in the comparison.
 */
export function comparedSide(doc: JSONContent, side: "before" | "after"): JSONContent {
  const dropped: BlockChange = side === "before" ? "inserted" : "deleted";
  const droppedMark = side === "before" ? insertion : deletion;
  const keep = (node: PMNode): PMNode | null => {
    if (node.attrs[CHANGE_ATTRIBUTE] === dropped || droppedMark.isInSet(node.marks)) return null;
    const marks = deletion.removeFromSet(insertion.removeFromSet(node.marks));
    if (node.isText) return node.mark(marks);
    const children = childrenOf(node).flatMap((child) => keep(child) ?? []);
    return node.type.create(
      { ...node.attrs, [CHANGE_ATTRIBUTE]: null },
      Fragment.fromArray(children),
      marks,
    );
  };
  const kept = keep(comparisonSchema.nodeFromJSON(doc));
  if (kept === null) throw new Error("a comparison's document is never removed whole");
  return withoutUnsetChanges(kept.toJSON());
}

/**
 * A comparison's document ({@link Comparison.doc}) as HTML: the document's
 * own HTML, with `<ins class="collab-insertion">`, `<del
 * class="collab-deletion">` and `data-change` on blocks added or removed
 * whole. Rendered through the DOM in the sandbox every HTML output uses, so
 * all text and attributes are escaped.
 */
export function renderComparisonHTML(doc: JSONContent): string {
  return serializeHTML(comparisonSchema.nodeFromJSON(doc), serializer);
}

// ---------------------------------------------------------------------------
// Comparing

/** A replaced range: `[fromA, toA)` of the earlier content became `[fromB, toB)` of the later. */
interface Replaced {
  readonly fromA: number;
  readonly toA: number;
  readonly fromB: number;
  readonly toB: number;
}

class Differ {
  /** Tokens still to diff in detail. */
  private budget: number;
  private readonly keys = new WeakMap<PMNode, string>();
  private readonly words = new WeakMap<PMNode, Map<string, number>>();

  constructor(budget: number) {
    this.budget = budget;
  }

  /**
   * `a` and `b` as one node of `b`'s type and attributes, when they are of
   * one kind (same type and content attributes) and the merged content is
   * valid; null otherwise (then they show as one deleted and one inserted).
   */
  merge(a: PMNode, b: PMNode): PMNode | null {
    if (!sameKind(a, b)) return null;
    if (a.eq(b)) return b;
    if (b.isTextblock) return this.mergeInline(a, b);
    if (b.isLeaf) return b;
    const content = Fragment.fromArray(this.mergeChildren(childrenOf(a), childrenOf(b)));
    return b.type.validContent(content) ? b.type.create(b.attrs, content, b.marks) : null;
  }

  /** Two textblocks' inline content, changes marked. */
  private mergeInline(a: PMNode, b: PMNode): PMNode {
    const pieces: PMNode[] = [];
    const take = (fragment: Fragment, mark?: MarkType) => {
      fragment.forEach((node) => {
        pieces.push(mark === undefined ? node : withMark(node, mark));
      });
    };
    let at = 0;
    for (const change of this.inlineChanges(a, b)) {
      take(b.content.cut(at, change.fromB));
      take(a.content.cut(change.fromA, change.toA), deletion);
      take(b.content.cut(change.fromB, change.toB), insertion);
      at = change.toB;
    }
    take(b.content.cut(at));
    return b.type.create(b.attrs, Fragment.fromArray(pieces), b.marks);
  }

  /** The replaced ranges between two textblocks' content, in order. */
  private inlineChanges(a: PMNode, b: PMNode): readonly Replaced[] {
    const sizeA = a.content.size;
    const sizeB = b.content.size;
    if (sizeA + sizeB > this.budget) return outerChange(a.content, b.content);
    this.budget -= sizeA + sizeB;
    const changes = ChangeSet.create(a, undefined, ENCODER).addSteps(
      b,
      [new StepMap([0, sizeA, sizeB])],
      null,
    ).changes;
    const widened = widenToWords(changes, b);
    return isExact(widened, a.content, b.content) ? widened : changes;
  }

  /** The children of two matched nodes, merged in order. */
  private mergeChildren(as: readonly PMNode[], bs: readonly PMNode[]): PMNode[] {
    // The ends by walking both nodes (no allocation); the rest by their JSON, made once per node.
    const equal = matchEqual(
      as.length,
      bs.length,
      (i, j) => (as[i] as PMNode).eq(bs[j] as PMNode),
      (i, j) => this.key(as[i] as PMNode) === this.key(bs[j] as PMNode),
    );
    const merged: PMNode[] = [];
    let i = 0;
    let j = 0;
    for (const [matchA, matchB] of [...equal, [as.length, bs.length] as const]) {
      // Not push(...run): a run may have more nodes than a call may have arguments.
      for (const node of this.mergeRun(as.slice(i, matchA), bs.slice(j, matchB))) {
        merged.push(node);
      }
      const same = bs[matchB];
      if (same !== undefined) merged.push(same);
      i = matchA + 1;
      j = matchB + 1;
    }
    return merged;
  }

  /** A run of unequal children: similar pairs merged, the rest deleted then inserted. */
  private mergeRun(as: readonly PMNode[], bs: readonly PMNode[]): PMNode[] {
    const merged: PMNode[] = [];
    let i = 0;
    let j = 0;
    const flush = (toA: number, toB: number) => {
      for (; i < toA; i++) merged.push(wholly(as[i] as PMNode, "deleted"));
      for (; j < toB; j++) merged.push(wholly(bs[j] as PMNode, "inserted"));
    };
    for (const [pairA, pairB] of this.pairSimilar(as, bs)) {
      flush(pairA, pairB);
      const a = as[pairA] as PMNode;
      const b = bs[pairB] as PMNode;
      const both = this.merge(a, b);
      if (both === null) merged.push(wholly(a, "deleted"), wholly(b, "inserted"));
      else merged.push(both);
      i = pairA + 1;
      j = pairB + 1;
    }
    flush(as.length, bs.length);
    return merged;
  }

  /**
   * Pairs of one kind and enough words in common, in order, with the most
   * similarity in total. A run of one child on each side is paired whenever
   * they are of one kind: that block changed.
   */
  private pairSimilar(as: readonly PMNode[], bs: readonly PMNode[]): Array<[number, number]> {
    const n = as.length;
    const m = bs.length;
    if (n === 0 || m === 0) return [];
    if (n === 1 && m === 1) return sameKind(as[0] as PMNode, bs[0] as PMNode) ? [[0, 0]] : [];
    if (n * m > MAX_PAIRINGS) return [];
    const score = (i: number, j: number): number => {
      const a = as[i] as PMNode;
      const b = bs[j] as PMNode;
      if (!sameKind(a, b)) return 0;
      const { overlap, dice } = this.similarity(a, b);
      // Of the pairs that overlap enough, the ones closest in size too.
      return overlap >= MIN_OVERLAP ? (overlap + dice) / 2 : 0;
    };
    // best[i * (m + 1) + j]: the most similarity pairing as[i..] with bs[j..] can have.
    const width = m + 1;
    const best = new Float64Array((n + 1) * width);
    const scores = new Float64Array(n * m);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        const s = score(i, j);
        scores[i * m + j] = s;
        const paired = s > 0 ? s + (best[(i + 1) * width + j + 1] as number) : 0;
        best[i * width + j] = Math.max(
          paired,
          best[(i + 1) * width + j] as number,
          best[i * width + j + 1] as number,
        );
      }
    }
    const pairs: Array<[number, number]> = [];
    for (let i = 0, j = 0; i < n && j < m; ) {
      const here = best[i * width + j] as number;
      const s = scores[i * m + j] as number;
      if (s > 0 && here === s + (best[(i + 1) * width + j + 1] as number)) {
        pairs.push([i, j]);
        i++;
        j++;
      } else if (here === best[(i + 1) * width + j]) i++;
      else j++;
    }
    return pairs;
  }

  /**
   * How alike two nodes' words are: `overlap`, the share of the shorter one's words the
   * other has too (text added to a block keeps it alike); `dice`, the share of both (1 when
   * neither has any words).
   */
  private similarity(a: PMNode, b: PMNode): { overlap: number; dice: number } {
    const wordsA = this.wordsOf(a);
    const wordsB = this.wordsOf(b);
    let sizeA = 0;
    let sizeB = 0;
    let common = 0;
    for (const [word, count] of wordsA) {
      sizeA += count;
      common += Math.min(count, wordsB.get(word) ?? 0);
    }
    for (const count of wordsB.values()) sizeB += count;
    if (sizeA + sizeB === 0) return { overlap: 1, dice: 1 };
    const shorter = Math.min(sizeA, sizeB);
    return {
      overlap: shorter === 0 ? 0 : common / shorter,
      dice: (2 * common) / (sizeA + sizeB),
    };
  }

  private wordsOf(node: PMNode): Map<string, number> {
    let counts = this.words.get(node);
    if (counts === undefined) {
      counts = new Map();
      // Blocks apart, or their first and last words would run together.
      const text = node.isText ? node.text : node.textBetween(0, node.content.size, " ", " ");
      for (const [word] of (text ?? "").toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
        counts.set(word, (counts.get(word) ?? 0) + 1);
      }
      this.words.set(node, counts);
    }
    return counts;
  }

  /** A key equal for equal nodes (their JSON), computed once per node. */
  private key(node: PMNode): string {
    let key = this.keys.get(node);
    if (key === undefined) {
      key = JSON.stringify(node.toJSON());
      this.keys.set(node, key);
    }
    return key;
  }
}

/**
 * Tokens for prosemirror-changeset: a character with its marks, an inline
 * node with its attributes and marks, so formatting and text both count.
 */
const ENCODER: TokenEncoder<number | string> = {
  encodeCharacter: (char, marks) => (marks.length === 0 ? char : `${char} ${marksKey(marks)}`),
  encodeNodeStart: (node) =>
    `<${node.type.name} ${JSON.stringify(node.attrs)} ${marksKey(node.marks)}`,
  encodeNodeEnd: (node) => `>${node.type.name}`,
  compareTokens: (a, b) => a === b,
};

const markKeys = new WeakMap<readonly Mark[], string>();

function marksKey(marks: readonly Mark[]): string {
  let key = markKeys.get(marks);
  if (key === undefined) {
    key = JSON.stringify(marks.map((mark) => mark.toJSON()));
    markKeys.set(marks, key);
  }
  return key;
}

/**
 * `changes` (between two textblocks' content, `b` the later block) with replacements that are
 * part of a word widened to the whole word(s), which reads better than letters changed here
 * and there: prosemirror-changeset's `simplifyChanges`, given the changes that touch one word
 * at a time. Given them all at once, it also joins a deletion and an insertion on either side
 * of an unchanged word ("Hello brave world" -> "Hello world again" would show "brave world"
 * replaced by "world again").
 */
function widenToWords(changes: readonly Change[], b: PMNode): Replaced[] {
  const text = tokenText(b.content);
  const letter = (pos: number) => pos >= 0 && pos < text.length && isWordCharacter(text, pos);
  const widened: Replaced[] = [];
  const add = (group: readonly Change[]) => {
    for (const wide of simplifyChanges(group, b)) {
      const last = widened.at(-1);
      if (last !== undefined && wide.fromB <= last.toB) {
        // Widened up to the next one: one change.
        widened[widened.length - 1] = {
          fromA: last.fromA,
          fromB: last.fromB,
          toA: Math.max(last.toA, wide.toA),
          toB: Math.max(last.toB, wide.toB),
        };
      } else widened.push(wide);
    }
  };
  let group: Change[] = [];
  for (const change of changes) {
    const last = group.at(-1);
    // In one word: only letters between them, and letters at both ends of that stretch.
    let inOneWord = last !== undefined && letter(last.toB - 1) && letter(change.fromB);
    for (let pos = last?.toB ?? 0; inOneWord && pos < change.fromB; pos++) {
      inOneWord = letter(pos);
    }
    if (!inOneWord && group.length > 0) {
      add(group);
      group = [];
    }
    group.push(change);
  }
  if (group.length > 0) add(group);
  return widened;
}

/** Content as prosemirror-changeset reads it for words: a character per token, nodes as spaces. */
function tokenText(content: Fragment): string {
  let text = "";
  content.forEach((node) => {
    text += node.isText ? (node.text ?? "") : " ".repeat(node.nodeSize);
  });
  return text;
}

/** prosemirror-changeset's idea of a letter (ASCII letters and digits, or any alphabetic). */
function isWordCharacter(text: string, pos: number): boolean {
  const code = text.charCodeAt(pos);
  if (code < 128)
    return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
  return /[\p{Alphabetic}_]/u.test(text.charAt(pos));
}

/**
 * Whether `changes` describe `a` -> `b` exactly: in order, within both, and what lies between
 * them equal on both sides. (Widening is checked, not trusted: a wrong range would show text
 * twice or lose it.)
 */
function isExact(changes: readonly Replaced[], a: Fragment, b: Fragment): boolean {
  let atA = 0;
  let atB = 0;
  for (const change of [...changes, { fromA: a.size, toA: a.size, fromB: b.size, toB: b.size }]) {
    if (change.fromA < atA || change.fromB < atB || change.toA < change.fromA) return false;
    if (change.toB < change.fromB || change.toA > a.size || change.toB > b.size) return false;
    if (!a.cut(atA, change.fromA).eq(b.cut(atB, change.fromB))) return false;
    atA = change.toA;
    atB = change.toB;
  }
  return true;
}

/** The one range from the first to the last difference of two fragments (none when equal). */
function outerChange(a: Fragment, b: Fragment): Replaced[] {
  const start = a.findDiffStart(b);
  if (start === null) return [];
  const end = a.findDiffEnd(b) ?? { a: a.size, b: b.size };
  // Repeated content can make the end overlap the start ("ab" -> "abab"): move both past it.
  const overlap = Math.max(0, start - Math.min(end.a, end.b));
  return [{ fromA: start, toA: end.a + overlap, fromB: start, toB: end.b + overlap }];
}

/** Whether item `i` of the first sequence equals item `j` of the second. */
export type SameItem = (i: number, j: number) => boolean;

/**
 * Index pairs of equal items of two sequences (of lengths `n` and `m`), in
 * order, as many as Myers' diff finds (a longest common subsequence), when
 * they differ in at most {@link MAX_BLOCK_EDITS} places past their common
 * start and end; beyond that only the common start and end are matched.
 * `sameEnds` compares while the common start and end are trimmed (each pair
 * once), `same` inside the rest (where pairs are compared again and again:
 * make it cheap to repeat).
 */
export function matchEqual(
  n: number,
  m: number,
  sameEnds: SameItem,
  same: SameItem,
): Array<[number, number]> {
  let start = 0;
  while (start < n && start < m && sameEnds(start, start)) start++;
  let endA = n;
  let endB = m;
  while (endA > start && endB > start && sameEnds(endA - 1, endB - 1)) {
    endA--;
    endB--;
  }
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < start; i++) pairs.push([i, i]);
  const middle = myers(endA - start, endB - start, (i, j) => same(start + i, start + j));
  for (const [i, j] of middle) pairs.push([start + i, start + j]);
  for (let k = 0; endA + k < n; k++) pairs.push([endA + k, endB + k]);
  return pairs;
}

/**
 * Myers' O((N+M)D) diff of two sequences: the matched index pairs, or none
 * when they are more than {@link MAX_BLOCK_EDITS} edits apart.
 */
function myers(n: number, m: number, same: SameItem): Array<[number, number]> {
  // At least |n - m| edits apart.
  if (n === 0 || m === 0 || Math.abs(n - m) > MAX_BLOCK_EDITS) return [];
  const max = Math.min(n + m, MAX_BLOCK_EDITS);
  const offset = max + 1;
  // v[offset + k]: the furthest x reached on diagonal k (y = x - k).
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      const down =
        k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number));
      let x = down ? (v[offset + k + 1] as number) : (v[offset + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && same(x, y)) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, d, n, m, offset);
    }
  }
  return [];
}

function backtrack(
  trace: readonly Int32Array[],
  edits: number,
  n: number,
  m: number,
  offset: number,
): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  let x = n;
  let y = m;
  for (let d = edits; d > 0; d--) {
    const v = trace[d] as Int32Array;
    const k = x - y;
    const down =
      k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number));
    const previousK = down ? k + 1 : k - 1;
    const previousX = v[offset + previousK] as number;
    const previousY = previousX - previousK;
    // The diagonal run after this edit (it starts one step right or down of the previous point).
    while (x > previousX && y > previousY) {
      x--;
      y--;
      pairs.push([x, y]);
    }
    x = previousX;
    y = previousY;
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    pairs.push([x, y]);
  }
  return pairs.reverse();
}

// ---------------------------------------------------------------------------
// Helpers

/** `json` as a node of the comparison schema, checked, without comment marks. */
function comparable(json: JSONContent): PMNode {
  return comparisonSchema.nodeFromJSON(withoutMark(checkedJSON(json), COMMENT_MARK));
}

function withoutMark(json: JSONContent, name: string): JSONContent {
  const copy: JSONContent = { ...json };
  if (json.marks !== undefined) {
    const marks = json.marks.filter((mark) => mark.type !== name);
    if (marks.length > 0) copy.marks = marks;
    else delete copy.marks;
  }
  if (json.content !== undefined) copy.content = json.content.map((c) => withoutMark(c, name));
  return copy;
}

/** JSON with `change: null` left out of every node's attributes (and `attrs` when that empties it). */
function withoutUnsetChanges(json: JSONContent): JSONContent {
  const copy: JSONContent = { ...json };
  if (json.attrs !== undefined && json.attrs[CHANGE_ATTRIBUTE] === null) {
    const { [CHANGE_ATTRIBUTE]: _unset, ...attrs } = json.attrs;
    if (Object.keys(attrs).length > 0) copy.attrs = attrs;
    else delete copy.attrs;
  }
  if (json.content !== undefined) copy.content = json.content.map(withoutUnsetChanges);
  return copy;
}

/** Same type and same content attributes (layout attributes aside). */
function sameKind(a: PMNode, b: PMNode): boolean {
  if (a.type !== b.type) return false;
  for (const name of Object.keys(b.attrs)) {
    if (LAYOUT_ATTRIBUTES.has(name)) continue;
    if (JSON.stringify(a.attrs[name]) !== JSON.stringify(b.attrs[name])) return false;
  }
  return true;
}

/** `node` added or removed whole: the `change` attribute, and every inline node in it marked. */
function wholly(node: PMNode, change: BlockChange): PMNode {
  const mark = change === "inserted" ? insertion : deletion;
  const marked = markInside(node, mark);
  return marked.type.create(
    { ...marked.attrs, [CHANGE_ATTRIBUTE]: change },
    marked.content,
    marked.marks,
  );
}

function markInside(node: PMNode, mark: MarkType): PMNode {
  if (node.isLeaf || node.childCount === 0) return node;
  const children = childrenOf(node).map((child) =>
    child.isInline
      ? node.type.allowsMarkType(mark)
        ? withMark(child, mark)
        : child
      : markInside(child, mark),
  );
  return node.copy(Fragment.fromArray(children));
}

function withMark(node: PMNode, type: MarkType): PMNode {
  return node.mark(type.create().addToSet(node.marks));
}

function childrenOf(node: PMNode): PMNode[] {
  const children: PMNode[] = [];
  node.forEach((child) => {
    children.push(child);
  });
  return children;
}

/** Counts runs of inserted and of deleted content, in reading order. */
function countChanges(doc: PMNode): ChangeCounts {
  let insertions = 0;
  let deletions = 0;
  let previous: BlockChange | null = null;
  const unit = (change: BlockChange | null) => {
    if (change !== previous) {
      if (change === "inserted") insertions++;
      if (change === "deleted") deletions++;
    }
    previous = change;
  };
  const visit = (node: PMNode, inherited: BlockChange | null) => {
    if (node.isInline) {
      unit(
        insertion.isInSet(node.marks)
          ? "inserted"
          : deletion.isInSet(node.marks)
            ? "deleted"
            : null,
      );
      return;
    }
    const own = (node.attrs[CHANGE_ATTRIBUTE] as BlockChange | null) ?? inherited;
    if (node.childCount === 0) unit(own);
    else
      node.forEach((child) => {
        visit(child, own);
      });
  };
  visit(doc, null);
  return { insertions, deletions };
}

function markType(name: string): MarkType {
  const type = comparisonSchema.marks[name];
  if (type === undefined) throw new Error(`the comparison schema has no "${name}" mark`);
  return type;
}
