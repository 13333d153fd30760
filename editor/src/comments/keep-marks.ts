/**
 * Keeps a thread's mark on text whose writer knows it marked it ([COM2] in
 * SPEC.md).
 *
 * A formatting mark in Yjs is a pair of markers around the text. Yjs writes
 * text inserted inside a marked range without markers of its own (it is
 * marked by those around it), and when a replica deletes all the text it
 * sees between two markers, it deletes those markers too (its formatting
 * cleanup). Text another replica put there at the same time, or that the
 * deleting replica had not received yet, is unmarked once both changes
 * merge, and no replica can tell from the merged document that it was ever
 * marked. Two cases matter for threads:
 * - an editor's moved text: the binding (y-tiptap) re-creates the text a
 *   split or join moves, inside the thread's range when it lands there;
 * - the text a thread covered when the server made it, when an editor that
 *   had not yet received part of it deletes the rest.
 *
 * So the replica that wrote the mark remembers that text (which characters,
 * with which marks): an editor, what its own writes put under thread marks;
 * the server, what a thread covers when it makes it ({@link MarkKeeper.keepMark}).
 * After each remote change to a paragraph holding such text, whatever of it
 * is still there and lost the mark of a thread that still exists is marked
 * again, with markers of its own on both sides. Text is forgotten once
 * deleted, and the oldest first beyond {@link MAX_REMEMBERED} characters;
 * nothing is remembered across reloads or restarts. A copy that a third
 * editor moves (re-creates) while it is unmarked, before the repair reaches
 * it, is not followed: its writer never saw it marked.
 *
 * Relies on Yjs internals (docs/patches.md): the item list of a text
 * (`_start`, `right`), and inserting a marker item where Yjs' own
 * formatting would (`Item`, `integrate`, `getItemCleanStart`).
 *
 * Transport-free: works on a Y.Doc, with no ProseMirror or DOM.
 */
import * as Y from "yjs";
import { threadOfAttribute } from "./model.ts";

/** The origin of the transactions that mark text again. */
export const markRepairOrigin: unique symbol = Symbol("comment mark repair");

/** How many characters a replica remembers per document at most (the oldest are forgotten first). */
export const MAX_REMEMBERED = 20_000;

/** Characters `clock` to `clock + length - 1` of `client`, written into `parent` with `marks`. */
interface Written {
  readonly parent: Y.XmlText;
  readonly client: number;
  readonly clock: number;
  readonly length: number;
  /** Formatting key -> value of each thread mark the text was written with. */
  readonly marks: ReadonlyMap<string, unknown>;
}

export interface KeepMarksOptions {
  /**
   * Whether a local transaction is the binding writing the editor's content
   * (y-tiptap's origin): the text it writes under thread marks is kept marked.
   * @default never (text is kept marked only through {@link MarkKeeper.keepMark})
   */
  readonly isWrite?: (transaction: Y.Transaction) => boolean;
  /** Whether thread `id` still exists (a deleted thread's mark is never put back). */
  readonly threadExists: (id: string) => boolean;
  /**
   * Told of an error while keeping marks; the change that was being observed goes on
   * regardless (a fault here must never stop syncing). @default console.error
   */
  readonly onError?: (error: unknown) => void;
}

/**
 * Keeps thread marks on the text a replica knows it marked, in `doc`, until
 * {@link destroy}: the text its own writes put under thread marks (per
 * `options.isWrite`: an editor's moved text), and the text a thread covered
 * when this replica made it ({@link keepMark}: the server). After a remote
 * change to a paragraph holding such text, any of it still present that lost
 * a mark of a thread that still exists is marked again (origin
 * {@link markRepairOrigin}).
 */
export class MarkKeeper {
  /** What is kept marked, per paragraph, oldest first. */
  private readonly kept = new Map<Y.XmlText, Written[]>();
  /** Every entry of {@link kept}, oldest first: the order they are forgotten in. */
  private order: Written[] = [];
  private remembered = 0;
  private readonly onTransaction = (transaction: Y.Transaction): void => {
    this.guarded(() => this.observe(transaction));
  };

  private readonly doc: Y.Doc;
  private readonly options: KeepMarksOptions;

  constructor(doc: Y.Doc, options: KeepMarksOptions) {
    this.doc = doc;
    this.options = options;
    doc.on("afterTransaction", this.onTransaction);
  }

  /** Stops watching the document and forgets everything. */
  destroy(): void {
    this.doc.off("afterTransaction", this.onTransaction);
    this.kept.clear();
    this.order = [];
    this.remembered = 0;
  }

  /** Keeps the text under formatting attribute `key` (a thread's mark) marked, as it is now. */
  keepMark(root: Y.XmlFragment, key: string): void {
    forEachText(root, (text) => {
      forEachLiveString(text, (item, attributes) => {
        const value = attributes.get(key);
        if (value == null) return;
        this.remember(text, item, new Map([[key, value]]));
      });
    });
    this.forgetOldest();
  }

  /**
   * Marks again whatever kept text lost a mark, in every paragraph: for when
   * `threadExists` may answer differently (the threads have synced). Never
   * throws: a fault is reported to `onError`, so a caller's event (a provider's
   * `synced`) goes on.
   */
  check(): void {
    this.guarded(() => {
      if (this.kept.size > 0) this.repair([...this.kept.keys()]);
    });
  }

  /** Runs `f`, reporting what it throws to `onError` instead (a fault here never stops syncing). */
  private guarded(f: () => void): void {
    try {
      f();
    } catch (error) {
      (this.options.onError ?? console.error)(error);
    }
  }

  /** How many characters are kept marked (for tests). */
  get size(): number {
    return this.remembered;
  }

  private observe(transaction: Y.Transaction): void {
    if (transaction.origin === markRepairOrigin) return;
    if (transaction.local) {
      if (this.options.isWrite?.(transaction)) this.keepWritten(transaction);
      return;
    }
    if (this.kept.size === 0) return;
    // A remote change can take a mark off text only by changing its paragraph: deleting a
    // marker, or putting a marker of its own between the text and the one that marked it.
    const parents: Y.XmlText[] = [];
    for (const type of transaction.changed.keys()) {
      if (type instanceof Y.XmlText && this.kept.has(type)) parents.push(type);
    }
    if (parents.length > 0) this.repair(parents);
  }

  /** Keeps marked the text `transaction` wrote (new items of this replica) under thread marks. */
  private keepWritten(transaction: Y.Transaction): void {
    const client = this.doc.clientID;
    const since = transaction.beforeState.get(client) ?? 0;
    if ((transaction.afterState.get(client) ?? 0) === since) return;
    // The paragraphs written to: those changed, and those made (a split makes one), which a
    // transaction lists only as a change of their parent.
    const texts = new Set<Y.XmlText>();
    for (const type of transaction.changed.keys()) {
      if (type instanceof Y.XmlText) texts.add(type);
      else if (type instanceof Y.XmlElement || type instanceof Y.XmlFragment) {
        for (const child of type.toArray()) {
          const made =
            child._item !== null &&
            child._item.id.client === client &&
            child._item.id.clock >= since;
          if (!made) continue;
          if (child instanceof Y.XmlText) texts.add(child);
          else if (child instanceof Y.XmlElement) forEachText(child, (text) => texts.add(text));
        }
      }
    }
    const ends: Y.Item[] = [];
    for (const text of texts) {
      if (!text._hasFormatting) continue; // no marks at all
      forEachLiveString(text, (item, attributes) => {
        if (item.id.client !== client || item.id.clock < since) return;
        const marks = threadMarks(attributes);
        if (marks.size > 0) this.remember(text, item, marks);
      });
      for (const end of borrowedEnds(text, client, since)) ends.push(end);
    }
    this.forgetOldest();
    if (ends.length > 0) {
      this.doc.transact((t) => {
        for (const end of ends) {
          const key = (end.content as Y.ContentFormat).key;
          insertMarker(t, end.parent as Y.XmlText, end, end.right, key, null);
        }
      }, markRepairOrigin);
    }
  }

  private remember(parent: Y.XmlText, item: Y.Item, marks: ReadonlyMap<string, unknown>): void {
    const w: Written = {
      parent,
      client: item.id.client,
      clock: item.id.clock,
      length: item.length,
      marks,
    };
    const list = this.kept.get(parent) ?? [];
    list.push(w);
    this.kept.set(parent, list);
    this.order.push(w);
    this.remembered += item.length;
  }

  private forgetOldest(): void {
    while (this.remembered > MAX_REMEMBERED) {
      const oldest = this.order.shift();
      if (oldest === undefined) break;
      this.forget(oldest);
    }
  }

  private forget(w: Written): void {
    const list = this.kept.get(w.parent);
    const at = list?.indexOf(w) ?? -1;
    if (list === undefined || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.kept.delete(w.parent);
    this.remembered -= w.length;
  }

  /** Marks again what is kept in `parents` and lost a mark; forgets what was deleted. */
  private repair(parents: Y.XmlText[]): void {
    const fixes: Fix[] = [];
    let forgot = false;
    for (const parent of parents) {
      const list = this.kept.get(parent) ?? [];
      const alive = new Set<Written>();
      if (!parent._item?.deleted) {
        forEachLiveString(parent, (item, attributes) => {
          const end = item.id.clock + item.length;
          for (const w of list) {
            if (w.client !== item.id.client) continue;
            const from = Math.max(w.clock, item.id.clock);
            const to = Math.min(w.clock + w.length, end);
            if (from >= to) continue;
            alive.add(w);
            for (const [key, value] of w.marks) {
              if (attributes.get(key) != null) continue;
              const thread = threadOfAttribute(key, value);
              if (thread === null || !this.options.threadExists(thread)) continue;
              fixes.push({ parent, client: item.id.client, from, to, key, value });
            }
          }
        });
      }
      for (const w of list.filter((each) => !alive.has(each))) {
        this.forget(w);
        forgot = true;
      }
    }
    if (forgot) this.order = this.order.filter((w) => this.kept.get(w.parent)?.includes(w));
    if (fixes.length === 0) return;
    this.doc.transact((transaction) => {
      for (const fix of fixes) markAgain(transaction, fix);
    }, markRepairOrigin);
  }
}

/** Characters `from` to `to - 1` of `client`, in `parent`, that lost mark `key` (with `value`). */
interface Fix {
  readonly parent: Y.XmlText;
  readonly client: number;
  readonly from: number;
  readonly to: number;
  readonly key: string;
  readonly value: unknown;
}

/** The thread marks among formatting `attributes`. */
function threadMarks(attributes: ReadonlyMap<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, value] of attributes) {
    if (value != null && threadOfAttribute(key, value) !== null) out.set(key, value);
  }
  return out;
}

/**
 * Calls `f` for each live text item of `text`, in order, with the formatting
 * in effect there and its index (in the text's own counting).
 */
function forEachLiveString(
  text: Y.XmlText,
  f: (item: Y.Item, attributes: ReadonlyMap<string, unknown>, index: number) => void,
): void {
  const attributes = new Map<string, unknown>();
  let index = 0;
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted) continue;
    if (item.content instanceof Y.ContentFormat) {
      if (item.content.value === null) attributes.delete(item.content.key);
      else attributes.set(item.content.key, item.content.value);
    } else if (item.countable) {
      if (item.content instanceof Y.ContentString) f(item, attributes, index);
      index += item.length;
    }
  }
}

/**
 * Puts mark `key` back on characters `from` to `to - 1` of `client` (part of
 * one item, unmarked) with markers of its own on both sides:
 * - the start marker right before the first character: after whatever
 *   markers precede it, so Yjs' cleanup keeps it, not them;
 * - the end marker right after the last character, or, when the markers that
 *   follow it already end the mark, after the last of them, for the same reason.
 * Yjs' own `format` would reuse an end marker across deleted text, which a
 * concurrent cleanup elsewhere may delete, leaving the mark open to the end
 * of the paragraph.
 */
function markAgain(transaction: Y.Transaction, fix: Fix): void {
  const { parent, client, from, to, key, value } = fix;
  // The run as one item of its own: split where it starts and, if the item goes on, where it ends.
  const run = Y.getItemCleanStart(transaction, Y.createID(client, from));
  if (to < run.id.clock + run.length) Y.getItemCleanStart(transaction, Y.createID(client, to));
  // Where the end marker goes: past the markers for `key` that directly follow, if they end it.
  let endAfter: Y.Item = run;
  for (
    let item = run.right;
    item !== null && (item.deleted || !item.countable);
    item = item.right
  ) {
    if (item.deleted || !(item.content instanceof Y.ContentFormat) || item.content.key !== key)
      continue;
    if (item.content.value !== null) break; // where the mark starts again
    endAfter = item;
  }
  insertMarker(transaction, parent, run.left, run, key, value);
  insertMarker(transaction, parent, endAfter, endAfter.right, key, null);
}

/** Inserts a formatting marker between `left` and `right`, as Yjs' own formatting does. */
function insertMarker(
  transaction: Y.Transaction,
  parent: Y.XmlText,
  left: Y.Item | null,
  right: Y.Item | null,
  key: string,
  value: unknown,
): void {
  const doc = transaction.doc;
  const marker = new Y.Item(
    Y.createID(doc.clientID, Y.getState(doc.store, doc.clientID)),
    left,
    left?.lastId ?? null,
    right,
    right?.id ?? null,
    parent,
    null,
    new Y.ContentFormat(key, value as object),
  );
  marker.integrate(transaction, 0);
}

/**
 * The end markers that thread marks (re)opened by this write (markers of
 * `client` from clock `since`) rely on: y-tiptap writes text it leaves
 * unmarked inside a range with a marker reopening the range after it, which
 * the range's existing end marker closes. When a concurrent deletion of the
 * range deletes that end marker (Yjs' cleanup), the reopened mark would run on
 * over the text after it, to the end of the paragraph. The writer puts an end
 * marker of its own right after each: the later of two markers in a gap is the
 * one cleanup keeps.
 */
function borrowedEnds(text: Y.XmlText, client: number, since: number): Y.Item[] {
  const out: Y.Item[] = [];
  for (let item = text._start; item !== null; item = item.right) {
    if (item.deleted || !(item.content instanceof Y.ContentFormat)) continue;
    if (item.id.client !== client || item.id.clock < since) continue;
    const { key, value } = item.content;
    if (value === null || threadOfAttribute(key, value) === null) continue;
    // The end of the range this marker opens: the next live marker ending `key`.
    let end: Y.Item | null = item.right;
    while (
      end !== null &&
      (end.deleted ||
        !(end.content instanceof Y.ContentFormat) ||
        end.content.key !== key ||
        end.content.value !== null)
    ) {
      end = end.right;
    }
    if (end === null || (end.id.client === client && end.id.clock >= since)) continue;
    if (!out.includes(end)) out.push(end);
  }
  return out;
}

/** Calls `f` for every text of `root`, in document order. */
function forEachText(root: Y.XmlFragment | Y.XmlElement, f: (text: Y.XmlText) => void): void {
  for (const child of root.toArray()) {
    if (child instanceof Y.XmlText) f(child);
    else if (child instanceof Y.XmlElement) forEachText(child, f);
  }
}
