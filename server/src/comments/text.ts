/**
 * The document's text as one string, for anchoring threads: every text node
 * of the content fragment in document order, with "\n" between text nodes
 * that are not next to each other in one block (paragraph breaks, hard
 * breaks, images). Each position of the string maps back to a text node and
 * an index in it, so a range of the string can be marked.
 */
import * as Y from "yjs";
import { commentMarkKey, threadOfAttribute } from "../../../editor/src/comments/model.ts";
import { FIELD } from "../../../editor/src/field.ts";

/** One run of text in a text node, at `start` in the flat string. */
interface Segment {
  readonly node: Y.XmlText;
  /** Where the node's text starts in the flat string. */
  readonly start: number;
  readonly length: number;
}

/** The flat text and where each text node sits in it. */
export interface FlatText {
  readonly text: string;
  readonly segments: readonly Segment[];
}

/** A run of the flat string: [from, to). */
export interface TextRange {
  readonly from: number;
  readonly to: number;
}

/** The content fragment's text, flattened. */
export function flatten(doc: Y.Doc): FlatText {
  let text = "";
  const segments: Segment[] = [];
  let adjacent = false;
  const walk = (element: Y.XmlFragment | Y.XmlElement) => {
    for (const child of element.toArray()) {
      if (child instanceof Y.XmlText) {
        if (!adjacent && text.length > 0) text += "\n";
        const content = plain(child);
        segments.push({ node: child, start: text.length, length: content.length });
        text += content;
        adjacent = true;
      } else if (child instanceof Y.XmlElement) {
        adjacent = false;
        walk(child);
        adjacent = false;
      }
    }
  };
  walk(doc.getXmlFragment(FIELD));
  return { text, segments };
}

/** A text node's characters (embeds count as one character, shown as U+FFFC). */
function plain(node: Y.XmlText): string {
  let out = "";
  for (const op of node.toDelta() as Array<{ insert: unknown }>) {
    out += typeof op.insert === "string" ? op.insert : "\uFFFC";
  }
  return out;
}

/** Where flat position `at` is: the text node and the index in it (end of the previous node at a boundary). */
export function locate(flat: FlatText, at: number): { node: Y.XmlText; index: number } | null {
  for (const segment of flat.segments) {
    if (at >= segment.start && at <= segment.start + segment.length) {
      return { node: segment.node, index: at - segment.start };
    }
  }
  return null;
}

/** The flat position of index `index` in text node `node`, or null when the node is not in the content. */
export function positionOf(flat: FlatText, node: unknown, index: number): number | null {
  const segment = flat.segments.find((s) => s.node === node);
  return segment === undefined ? null : segment.start + Math.min(index, segment.length);
}

/**
 * The flat position of the start of child `index` of `element` (an element or the
 * fragment): the first text at or after it, or the end of the text before it.
 */
export function positionBefore(flat: FlatText, element: unknown, index: number): number | null {
  if (!(element instanceof Y.XmlFragment || element instanceof Y.XmlElement)) return null;
  const children = element.toArray();
  for (let i = index; i < children.length; i++) {
    const first = firstText(children[i]);
    if (first !== null) return positionOf(flat, first, 0);
  }
  for (let i = Math.min(index, children.length) - 1; i >= 0; i--) {
    const last = lastText(children[i]);
    if (last !== null) return positionOf(flat, last, last.length);
  }
  // An element with no text: after the text before it in the document.
  const parent = element.parent;
  if (parent instanceof Y.XmlFragment || parent instanceof Y.XmlElement) {
    const own = parent.toArray().indexOf(element as Y.XmlElement);
    if (own >= 0) return positionBefore(flat, parent, own);
  }
  return 0;
}

function firstText(node: unknown): Y.XmlText | null {
  if (node instanceof Y.XmlText) return node;
  if (node instanceof Y.XmlElement) {
    for (const child of node.toArray()) {
      const found = firstText(child);
      if (found !== null) return found;
    }
  }
  return null;
}

function lastText(node: unknown): Y.XmlText | null {
  if (node instanceof Y.XmlText) return node;
  if (node instanceof Y.XmlElement) {
    const children = node.toArray();
    for (let i = children.length - 1; i >= 0; i--) {
      const found = lastText(children[i]);
      if (found !== null) return found;
    }
  }
  return null;
}

/**
 * Sets (or, with `on` false, removes) thread `threadId`'s mark on `range`. Call inside a
 * transaction; the separators between text nodes are not marked.
 */
export function markRange(flat: FlatText, range: TextRange, threadId: string, on: boolean): void {
  const key = commentMarkKey(threadId);
  for (const segment of flat.segments) {
    const from = Math.max(range.from, segment.start);
    const to = Math.min(range.to, segment.start + segment.length);
    if (to <= from) continue;
    segment.node.format(from - segment.start, to - from, {
      [key]: on ? { thread: threadId } : null,
    });
  }
}

/** Removes thread `threadId`'s mark wherever it is. Call inside a transaction. */
export function unmarkThread(doc: Y.Doc, threadId: string): void {
  const key = commentMarkKey(threadId);
  for (const segment of flatten(doc).segments) {
    let index = 0;
    for (const op of segment.node.toDelta() as DeltaOp[]) {
      const length = typeof op.insert === "string" ? op.insert.length : 1;
      if (op.attributes?.[key] !== undefined) segment.node.format(index, length, { [key]: null });
      index += length;
    }
  }
}

interface DeltaOp {
  readonly insert: unknown;
  readonly attributes?: Record<string, unknown>;
}

/**
 * The text each thread covers now: per thread id, its marked runs in document order,
 * joined with "\n" where they are not contiguous. Threads with no marked text are absent.
 */
export function anchoredTexts(doc: Y.Doc): Map<string, string> {
  const pieces = new Map<string, { text: string; end: number }>();
  const flat = flatten(doc);
  for (const segment of flat.segments) {
    let index = 0;
    for (const op of segment.node.toDelta() as DeltaOp[]) {
      const content = typeof op.insert === "string" ? op.insert : "\uFFFC";
      const at = segment.start + index;
      for (const [key, value] of Object.entries(op.attributes ?? {})) {
        const thread = threadOfAttribute(key, value);
        if (thread === null) continue;
        const seen = pieces.get(thread);
        if (seen === undefined) pieces.set(thread, { text: content, end: at + content.length });
        else {
          seen.text += (seen.end === at ? "" : "\n") + content;
          seen.end = at + content.length;
        }
      }
      index += content.length;
    }
  }
  return new Map([...pieces].map(([thread, { text }]) => [thread, text]));
}
