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
 * After each remote change to a paragraph holding such text that inserts or
 * deletes a thread's marker there (the only way a mark comes off), whatever
 * of it is still there and lost the mark of a thread that still exists is
 * marked again, with markers of its own on both sides. Text is forgotten once
 * deleted (its characters, or the paragraph holding them), once its thread is
 * deleted ({@link MarkKeeper.threadDeleted}), and the oldest first beyond
 * {@link MAX_REMEMBERED} characters; nothing is remembered across reloads or
 * restarts. A copy that a third editor moves (re-creates) while it is
 * unmarked, before the repair reaches it, is not followed: its writer never
 * saw it marked.
 *
 * Work: what a transaction inserted and deleted is found from Yjs' own
 * records of it (the client's new items, the delete set), never by walking
 * the document; what is remembered is kept per paragraph. So a keystroke
 * costs the keeper a few item visits (the thread marks in effect where it
 * typed come from a cache per paragraph, valid until a thread's marker there
 * changes), deleting text costs a look at the changed paragraph's entries of
 * that writer, a deleted paragraph is forgotten at once, and forgetting the
 * oldest is O(1). Only a remote change to a thread's markers, and
 * {@link MarkKeeper.check}, walk a paragraph ({@link MarkKeeper.visits} counts it all).
 *
 * Relies on Yjs internals (docs/patches.md): the item list of a text
 * (`_start`, `left`, `right`), a client's items in the store
 * (`doc.store.clients`, `findIndexSS`) and a transaction's delete set, and
 * inserting a marker item where Yjs' own formatting would (`Item`,
 * `integrate`, `getItemCleanStart`).
 *
 * Transport-free: works on a Y.Doc, with no ProseMirror or DOM.
 */
import * as Y from "yjs";
import { isThreadMarkKey, threadOfAttribute } from "./model.ts";

/** The origin of the transactions that mark text again (and that take a deleted thread's mark off). */
export const markRepairOrigin: unique symbol = Symbol("comment mark repair");

/** How many characters a replica remembers per document at most (the oldest are forgotten first). */
export const MAX_REMEMBERED = 20_000;

/**
 * How long an entry grows at most while its writer goes on typing after it: what is forgotten
 * for the cap goes in steps of at most this many characters.
 */
const MAX_ENTRY = 1_000;

/**
 * How many paragraphs the cache of thread marks in effect covers at most; beyond, it starts
 * afresh (it is only a cache).
 */
const MAX_CACHED_PARAGRAPHS = 1_000;

/** Characters `clock` to `clock + length - 1` of `client`, written into `paragraph.text` with `marks`. */
interface Written {
  readonly paragraph: Paragraph;
  readonly client: number;
  readonly clock: number;
  /** Grows while one writer goes on writing right after it, with the same marks (typing). */
  length: number;
  /** Formatting key -> value of each thread mark the text was written with. */
  readonly marks: Map<string, unknown>;
}

/** What is remembered of one paragraph (a Y.XmlText). */
interface Paragraph {
  readonly text: Y.XmlText;
  /** Its entries, per client that wrote their characters. */
  readonly byClient: Map<number, Set<Written>>;
  /** The entry remembered last here: the next characters right after it extend it. */
  last: Written | null;
  /** Threads whose mark this keeper put back here ({@link MarkKeeper.threadDeleted} takes it off). */
  readonly putBack: Set<string>;
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
 * change to a thread's markers in a paragraph holding such text, any of it
 * still present that lost a mark of a thread that still exists is marked
 * again (origin {@link markRepairOrigin}). No method throws: faults go to
 * `options.onError`.
 */
export class MarkKeeper {
  /** What is kept marked, per paragraph. */
  private readonly kept = new Map<Y.XmlText, Paragraph>();
  /** Every entry, oldest (least recently written) first: the order they are forgotten in. */
  private readonly order = new Set<Written>();
  /** The entries holding each thread's mark. */
  private readonly byThread = new Map<string, Set<Written>>();
  /**
   * Per paragraph this replica writes to, the thread marks known to be in effect at some of
   * its items (key -> value): valid until a thread's marker in the paragraph is inserted or
   * deleted, when the paragraph's cache is dropped.
   */
  private readonly marksAtItem = new Map<
    Y.XmlText,
    WeakMap<Y.Item, ReadonlyMap<string, unknown>>
  >();
  private remembered = 0;
  private visited = 0;
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
    this.order.clear();
    this.byThread.clear();
    this.marksAtItem.clear();
    this.remembered = 0;
  }

  /** Keeps the text under formatting attribute `key` (a thread's mark) marked, as it is now. */
  keepMark(root: Y.XmlFragment, key: string): void {
    this.guarded(() => {
      forEachText(root, (text) => {
        forEachLiveString(text, (item, attributes) => {
          this.visited++;
          const value = attributes.get(key);
          if (value == null) return;
          this.remember(text, item, new Map([[key, value]]));
        });
      });
      this.forgetOldest();
    });
  }

  /**
   * Marks again whatever kept text lost a mark, in every paragraph: for when
   * `threadExists` may answer differently (the threads have synced). Never
   * throws: a fault is reported to `onError`, so a caller's event (a provider's
   * `synced`) goes on.
   */
  check(): void {
    this.guarded(() => {
      if (this.kept.size > 0) this.repair([...this.kept.values()]);
    });
  }

  /**
   * Thread `id` is deleted: forgets its text, and takes its mark off again in the paragraphs
   * where this keeper put it back (origin {@link markRepairOrigin}). A replica that learns of
   * the deletion (its threads document) after the text's unmarking may have put the mark back
   * meanwhile, as the thread still existed for it; this undoes that. (Text forgotten for the
   * cap before, with such a mark, keeps it.) Never throws (faults go to `onError`).
   */
  threadDeleted(id: string): void {
    this.guarded(() => {
      const entries = this.byThread.get(id);
      if (entries === undefined) return;
      const takeBack = new Map<Paragraph, Set<string>>();
      for (const w of [...entries]) {
        this.visited++;
        for (const [key, value] of [...w.marks]) {
          if (threadOfAttribute(key, value) !== id) continue;
          w.marks.delete(key);
          if (w.paragraph.putBack.has(id)) {
            const keys = takeBack.get(w.paragraph) ?? new Set<string>();
            keys.add(key);
            takeBack.set(w.paragraph, keys);
          }
        }
        if (w.marks.size === 0) this.forget(w);
      }
      this.byThread.delete(id);
      if (takeBack.size === 0) return;
      this.doc.transact(() => {
        for (const [paragraph, keys] of takeBack) {
          paragraph.putBack.delete(id);
          if (paragraph.text._item?.deleted !== true) unmark(paragraph.text, keys);
        }
      }, markRepairOrigin);
    });
  }

  /** How many characters are kept marked (for tests and metrics). */
  get size(): number {
    return this.remembered;
  }

  /**
   * How many items and entries this keeper has looked at since it was made: its work, for
   * tests and metrics (a test bounds the work of a keystroke with it, never with a clock).
   */
  get visits(): number {
    return this.visited;
  }

  /** Runs `f`, reporting what it throws to `onError` instead (a fault here never stops syncing). */
  private guarded(f: () => void): void {
    try {
      f();
    } catch (error) {
      (this.options.onError ?? console.error)(error);
    }
  }

  private observe(transaction: Y.Transaction): void {
    const write =
      transaction.local &&
      transaction.origin !== markRepairOrigin &&
      (this.options.isWrite?.(transaction) ?? false);
    if (!write && this.kept.size === 0 && this.marksAtItem.size === 0) return;
    const client = this.doc.clientID;
    // Paragraphs where a thread's marker was inserted or deleted: the only changes that can
    // take a mark off text (or put one on).
    const markersChanged = new Set<Y.XmlText>();
    // Kept paragraphs where characters were deleted, with the clients that wrote them.
    const deletedIn = new Map<Paragraph, Set<number>>();
    forEachDeleted(transaction, (item) => {
      this.visited++;
      const content = item.content;
      if (content instanceof Y.ContentType) {
        // A deleted paragraph (a deleted element takes its children along, in the same set).
        if (content.type instanceof Y.XmlText) this.dropParagraph(content.type);
        return;
      }
      const parent = item.parent;
      if (!(parent instanceof Y.XmlText)) return;
      if (isThreadMarker(item)) markersChanged.add(parent);
      else if (item.countable) {
        const paragraph = this.kept.get(parent);
        if (paragraph === undefined) return;
        const clients = deletedIn.get(paragraph) ?? new Set<number>();
        clients.add(item.id.client);
        deletedIn.set(paragraph, clients);
      }
    });
    const strings: Y.Item[] = [];
    const openers: Y.Item[] = [];
    forEachInserted(transaction, (item) => {
      this.visited++;
      if (item.deleted || !(item.parent instanceof Y.XmlText)) return;
      if (isThreadMarker(item)) {
        markersChanged.add(item.parent);
        if (write && item.id.client === client && (item.content as Y.ContentFormat).value != null) {
          openers.push(item);
        }
      } else if (write && item.id.client === client && item.content instanceof Y.ContentString) {
        strings.push(item);
      }
    });
    for (const text of markersChanged) this.marksAtItem.delete(text);
    // Deleted characters are forgotten once none of an entry's is left.
    for (const [paragraph, clients] of deletedIn) {
      for (const writer of clients) {
        for (const w of [...(paragraph.byClient.get(writer) ?? [])]) {
          this.visited++;
          if (!this.isAlive(w)) this.forget(w);
        }
      }
    }
    if (write) this.keepWritten(strings, openers, transaction.beforeState.get(client) ?? 0);
    else if (!transaction.local) {
      // A remote change can take a mark off text only by changing a thread's markers in its
      // paragraph: deleting one, or putting one of its own between the text and the one that
      // marked it.
      const changed: Paragraph[] = [];
      for (const text of markersChanged) {
        const paragraph = this.kept.get(text);
        if (paragraph !== undefined) changed.push(paragraph);
      }
      if (changed.length > 0) this.repair(changed);
    }
  }

  /**
   * Keeps marked the text a write made (`strings`: this replica's new string items) under
   * thread marks, and bounds the ranges it reopened (`openers`: its new thread markers that
   * open a range). The write's items are this replica's from clock `since` on.
   */
  private keepWritten(strings: Y.Item[], openers: Y.Item[], since: number): void {
    for (const item of strings) {
      const text = item.parent as Y.XmlText;
      if (!text._hasFormatting) continue; // no marks at all
      const marks = this.threadMarksAt(text, item);
      if (marks.size > 0) this.remember(text, item, marks);
    }
    this.forgetOldest();
    const ends: Y.Item[] = [];
    for (const opener of openers) {
      const end = this.borrowedEnd(opener, since);
      if (end !== null && !ends.includes(end)) ends.push(end);
    }
    if (ends.length > 0) {
      this.doc.transact((t) => {
        for (const end of ends) {
          const key = (end.content as Y.ContentFormat).key;
          insertMarker(t, end.parent as Y.XmlText, end, end.right, key, null);
        }
      }, markRepairOrigin);
    }
  }

  /**
   * The thread marks in effect at live item `item` of `text`: walking left, the nearest
   * marker of each thread's key decides it, back to an item whose marks are cached (or the
   * paragraph's start). Cached for `item` in turn, so typing on costs a step or two.
   */
  private threadMarksAt(text: Y.XmlText, item: Y.Item): ReadonlyMap<string, unknown> {
    let cache = this.marksAtItem.get(text);
    if (cache === undefined) {
      if (this.marksAtItem.size >= MAX_CACHED_PARAGRAPHS) this.marksAtItem.clear();
      cache = new WeakMap();
      this.marksAtItem.set(text, cache);
    }
    const nearest = new Map<string, unknown>();
    let base: ReadonlyMap<string, unknown> = NO_MARKS;
    for (let left = item.left; left !== null; left = left.left) {
      this.visited++;
      if (left.deleted) continue;
      if (left.content instanceof Y.ContentFormat) {
        const { key, value } = left.content;
        if (isThreadMarkKey(key) && !nearest.has(key)) nearest.set(key, value);
        continue;
      }
      const known = cache.get(left);
      if (known !== undefined) {
        base = known;
        break;
      }
    }
    let marks = base;
    if (nearest.size > 0) {
      const out = new Map(base);
      for (const [key, value] of nearest) {
        if (value != null && threadOfAttribute(key, value) !== null) out.set(key, value);
        else out.delete(key);
      }
      marks = out;
    }
    cache.set(item, marks);
    return marks;
  }

  /**
   * The end marker that thread marker `opener` (a range this write reopened) relies on, when
   * another replica wrote it: y-tiptap writes text it leaves unmarked inside a range with a
   * marker reopening the range after it, which the range's existing end marker closes. When
   * a concurrent deletion of the range deletes that end marker (Yjs' cleanup), the reopened
   * mark would run on over the text after it, to the end of the paragraph. The writer puts an
   * end marker of its own right after it: the later of two markers in a gap is the one
   * cleanup keeps. Null when there is none to bound, or the write made it (a marker of this
   * replica from clock `since` on).
   */
  private borrowedEnd(opener: Y.Item, since: number): Y.Item | null {
    const key = (opener.content as Y.ContentFormat).key;
    // The end of the range this marker opens: the next live marker ending `key`.
    let end: Y.Item | null = opener.right;
    while (end !== null) {
      this.visited++;
      if (
        !end.deleted &&
        end.content instanceof Y.ContentFormat &&
        end.content.key === key &&
        end.content.value === null
      ) {
        break;
      }
      end = end.right;
    }
    if (end === null || (end.id.client === opener.id.client && end.id.clock >= since)) return null;
    return end;
  }

  /** Remembers `item` (a string item of `text`) as written with thread marks `marks`. */
  private remember(text: Y.XmlText, item: Y.Item, marks: ReadonlyMap<string, unknown>): void {
    let paragraph = this.kept.get(text);
    if (paragraph === undefined) {
      paragraph = { text, byClient: new Map(), last: null, putBack: new Set() };
      this.kept.set(text, paragraph);
    }
    const { client, clock } = item.id;
    const last = paragraph.last;
    if (
      last !== null &&
      last.client === client &&
      last.clock + last.length === clock &&
      last.length + item.length <= MAX_ENTRY &&
      this.order.has(last) &&
      sameMarks(last.marks, marks)
    ) {
      // The same writer goes on right after it (typing): one entry, now the newest.
      last.length += item.length;
      this.remembered += item.length;
      this.order.delete(last);
      this.order.add(last);
      return;
    }
    const w: Written = { paragraph, client, clock, length: item.length, marks: new Map(marks) };
    const own = paragraph.byClient.get(client) ?? new Set<Written>();
    own.add(w);
    paragraph.byClient.set(client, own);
    paragraph.last = w;
    this.order.add(w);
    for (const [key, value] of marks) {
      const thread = threadOfAttribute(key, value);
      if (thread === null) continue;
      const entries = this.byThread.get(thread) ?? new Set<Written>();
      entries.add(w);
      this.byThread.set(thread, entries);
    }
    this.remembered += w.length;
  }

  private forgetOldest(): void {
    while (this.remembered > MAX_REMEMBERED) {
      const oldest = this.order.values().next();
      if (oldest.done === true) break;
      this.forget(oldest.value);
    }
  }

  /** Forgets entry `w` (O(its marks)); forgets its paragraph with its last entry. */
  private forget(w: Written): void {
    if (!this.order.delete(w)) return;
    this.remembered -= w.length;
    const paragraph = w.paragraph;
    const own = paragraph.byClient.get(w.client);
    own?.delete(w);
    if (own?.size === 0) paragraph.byClient.delete(w.client);
    if (paragraph.last === w) paragraph.last = null;
    if (paragraph.byClient.size === 0) this.kept.delete(paragraph.text);
    for (const [key, value] of w.marks) {
      const thread = threadOfAttribute(key, value);
      if (thread === null) continue;
      const entries = this.byThread.get(thread);
      entries?.delete(w);
      if (entries?.size === 0) this.byThread.delete(thread);
    }
  }

  /** Forgets all that is remembered of deleted paragraph `text`, at once. */
  private dropParagraph(text: Y.XmlText): void {
    this.marksAtItem.delete(text);
    const paragraph = this.kept.get(text);
    if (paragraph === undefined) return;
    for (const own of [...paragraph.byClient.values()]) {
      for (const w of [...own]) {
        this.visited++;
        this.forget(w);
      }
    }
    this.kept.delete(text);
  }

  /** Whether any character of entry `w` is still there (visits its items in the store). */
  private isAlive(w: Written): boolean {
    let alive = false;
    forEachItemOf(this.doc, w, (item) => {
      this.visited++;
      if (!item.deleted) alive = true;
      return !alive;
    });
    return alive;
  }

  /** Marks again what is kept in `paragraphs` and lost a mark; forgets what was deleted. */
  private repair(paragraphs: readonly Paragraph[]): void {
    const fixes: Fix[] = [];
    for (const paragraph of paragraphs) {
      const { text } = paragraph;
      if (text._item?.deleted === true) {
        this.dropParagraph(text);
        continue;
      }
      // The thread marks in effect at each live string item, in one walk.
      const marksAt = new Map<Y.Item, ReadonlyMap<string, unknown>>();
      let current: Map<string, unknown> = new Map();
      for (let item = text._start; item !== null; item = item.right) {
        this.visited++;
        if (item.deleted) continue;
        if (item.content instanceof Y.ContentFormat) {
          const { key, value } = item.content;
          if (!isThreadMarkKey(key)) continue;
          const on = value != null && threadOfAttribute(key, value) !== null;
          if (on ? current.get(key) === value : !current.has(key)) continue;
          current = new Map(current); // copied on change: items before keep theirs
          if (on) current.set(key, value);
          else current.delete(key);
        } else if (item.content instanceof Y.ContentString) {
          marksAt.set(item, current);
        }
      }
      const gone: Written[] = [];
      for (const own of paragraph.byClient.values()) {
        for (const w of own) {
          this.visited++;
          let alive = false;
          forEachItemOf(this.doc, w, (item) => {
            this.visited++;
            const attributes = item.deleted ? undefined : marksAt.get(item);
            if (attributes === undefined) return true;
            alive = true;
            const from = Math.max(w.clock, item.id.clock);
            const to = Math.min(w.clock + w.length, item.id.clock + item.length);
            for (const [key, value] of w.marks) {
              if (attributes.get(key) != null) continue;
              const thread = threadOfAttribute(key, value);
              if (thread === null || !this.options.threadExists(thread)) continue;
              fixes.push({ paragraph, client: w.client, from, to, key, value, thread });
            }
            return true;
          });
          if (!alive) gone.push(w);
        }
      }
      for (const w of gone) this.forget(w);
    }
    if (fixes.length === 0) return;
    this.doc.transact((transaction) => {
      for (const fix of fixes) {
        markAgain(transaction, fix);
        fix.paragraph.putBack.add(fix.thread);
      }
    }, markRepairOrigin);
  }
}

const NO_MARKS: ReadonlyMap<string, unknown> = new Map();

/** Whether `item` is a marker of a thread's mark (opening or closing it). */
function isThreadMarker(item: Y.Item): boolean {
  return item.content instanceof Y.ContentFormat && isThreadMarkKey(item.content.key);
}

/** Whether two entries' marks are the same threads' marks. */
function sameMarks(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) {
    if (!b.has(key) || threadOfAttribute(key, b.get(key)) !== threadOfAttribute(key, value)) {
      return false;
    }
  }
  return true;
}

/**
 * Calls `f` for each item (of the store; not GC'd) holding characters of entry `w`, in clock
 * order, until `f` returns false.
 */
function forEachItemOf(doc: Y.Doc, w: Written, f: (item: Y.Item) => boolean): void {
  const structs = doc.store.clients.get(w.client);
  if (structs === undefined) return;
  const end = w.clock + w.length;
  for (let i = Y.findIndexSS(structs, w.clock); i < structs.length; i++) {
    const struct = structs[i];
    if (struct === undefined || struct.id.clock >= end) break;
    if (struct instanceof Y.Item && struct.parent === w.paragraph.text && !f(struct)) break;
  }
}

/**
 * Calls `f` for each item `transaction` deleted, from its delete set, before Yjs
 * garbage-collects them (in `afterTransaction` their content is still there).
 */
function forEachDeleted(transaction: Y.Transaction, f: (item: Y.Item) => void): void {
  const store = transaction.doc.store;
  for (const [client, ranges] of transaction.deleteSet.clients) {
    const structs = store.clients.get(client);
    if (structs === undefined || structs.length === 0) continue;
    const last = structs[structs.length - 1] as Y.Item | Y.GC;
    const known = last.id.clock + last.length;
    for (const range of ranges) {
      if (range.clock >= known) break;
      const end = range.clock + range.len;
      for (let i = Y.findIndexSS(structs, range.clock); i < structs.length; i++) {
        const struct = structs[i];
        if (struct === undefined || struct.id.clock >= end) break;
        if (struct instanceof Y.Item) f(struct);
      }
    }
  }
}

/** Calls `f` for each item `transaction` added (every client's, from its state before). */
function forEachInserted(transaction: Y.Transaction, f: (item: Y.Item) => void): void {
  const store = transaction.doc.store;
  for (const [client, after] of transaction.afterState) {
    const before = transaction.beforeState.get(client) ?? 0;
    if (after === before) continue;
    const structs = store.clients.get(client);
    if (structs === undefined) continue;
    for (let i = Y.findIndexSS(structs, before); i < structs.length; i++) {
      const struct = structs[i];
      if (struct instanceof Y.Item) f(struct);
    }
  }
}

/** Takes the marks `keys` off all text of `text` that has them (in the caller's transaction). */
function unmark(text: Y.XmlText, keys: ReadonlySet<string>): void {
  const runs: Array<{ index: number; length: number; key: string }> = [];
  let index = 0;
  for (const op of text.toDelta() as Array<{
    insert: unknown;
    attributes?: Record<string, unknown>;
  }>) {
    const length = typeof op.insert === "string" ? op.insert.length : 1;
    for (const key of keys) {
      if (op.attributes?.[key] != null) runs.push({ index, length, key });
    }
    index += length;
  }
  for (const run of runs) text.format(run.index, run.length, { [run.key]: null });
}

/** Characters `from` to `to - 1` of `client`, in `paragraph`, that lost mark `key` (with `value`) of `thread`. */
interface Fix {
  readonly paragraph: Paragraph;
  readonly client: number;
  readonly from: number;
  readonly to: number;
  readonly key: string;
  readonly value: unknown;
  readonly thread: string;
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
  const { client, from, to, key, value } = fix;
  const parent = fix.paragraph.text;
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

/** Calls `f` for every text of `root`, in document order. */
function forEachText(root: Y.XmlFragment | Y.XmlElement, f: (text: Y.XmlText) => void): void {
  for (const child of root.toArray()) {
    if (child instanceof Y.XmlText) f(child);
    else if (child instanceof Y.XmlElement) forEachText(child, f);
  }
}
