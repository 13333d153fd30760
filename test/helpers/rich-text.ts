/**
 * Seeded rich-text editing for convergence tests: a headless stand-in for the
 * editor's collaboration binding, and random ProseMirror edits on the
 * editor's own schema.
 *
 * {@link RichTextEditor} keeps a ProseMirror document (what the editor would
 * show) bound to a Y.Doc's {@link FIELD} fragment with y-tiptap's own
 * functions, the way its sync plugin does it: a local edit is a ProseMirror
 * transform whose result `updateYFragment` writes into the fragment (origin
 * `ySyncPluginKey`, with the binding's node mapping), and every remote change
 * re-renders the fragment (`initProseMirrorDoc`, with the server's schema,
 * which carries the editor's patch to y-tiptap: content the schema refuses is
 * filled in, and only elements left with no content are deleted, as in the
 * editor) and fits it into the document with one replace, as the plugin's
 * `_typeChanged` does. So the Yjs updates the server sees are the ones a real
 * editor makes, without a DOM.
 *
 * {@link randomEdit} picks one edit a person could make (type, delete, mark,
 * split or join blocks, wrap in or lift out of lists and quotes, change block
 * type or attributes, insert nodes, paste) at random positions of the
 * current document, with the ProseMirror commands' own validity checks
 * (`canSplit`, `canJoin`, `findWrapping`, `liftTarget`), and returns the new
 * document, or null when the edit does not apply there.
 */
import type { JSONContent } from "@tiptap/core";
import { Fragment, Mark, type NodeType, type Node as PMNode, Slice } from "@tiptap/pm/model";
import { canJoin, canSplit, findWrapping, liftTarget, Transform } from "@tiptap/pm/transform";
import { initProseMirrorDoc, updateYFragment, ySyncPluginKey } from "@tiptap/y-tiptap";
import * as Y from "yjs";
import { MarkKeeper } from "../../editor/src/comments/keep-marks.ts";
import { FIELD, schema } from "../../server/src/documents/schema.ts";
import { type Rng, random } from "./prng.ts";

/** The kinds of edit {@link randomEdit} makes, with how often each is picked (relative weights). */
export const EDIT_WEIGHTS = {
  type: 24,
  delete: 10,
  mark: 10,
  unmark: 5,
  split: 10,
  join: 8,
  wrap: 8,
  lift: 6,
  block: 6,
  insert: 5,
  attrs: 4,
  paste: 4,
} as const;

export type EditKind = keyof typeof EDIT_WEIGHTS;

/** What {@link randomEdit} picks from and types. */
export interface EditOptions {
  /** Relative weights of the kinds of edit (kinds left out never happen). @default EDIT_WEIGHTS */
  readonly weights?: Partial<Record<EditKind, number>>;
  /** The text a `type` edit inserts. @default a random word */
  readonly word?: (r: Rng) => string;
}

export const EDIT_KINDS = Object.keys(EDIT_WEIGHTS) as EditKind[];

type BindingMeta = ReturnType<typeof initProseMirrorDoc>["meta"];

/** The document a new editor shows before anything is typed: one empty paragraph. */
function emptyDocument(): PMNode {
  const doc = schema.topNodeType.createAndFill();
  if (doc === null) throw new Error("the schema has no empty document");
  return doc;
}

/**
 * One user's editor over `doc`: the shown ProseMirror document, kept in sync
 * with the document's {@link FIELD} fragment in both directions.
 */
export class RichTextEditor {
  /** The ProseMirror document the editor shows. */
  view: PMNode;
  /**
   * Transactions the binding made while rendering remote changes (repairs),
   * not edits: y-tiptap deletes an element the schema refuses that the
   * editor's patch cannot fill in (an emptied list, say) and merges adjacent
   * text it created.
   */
  repairs = 0;
  /** Characters inside elements those repairs deleted; REL1 fails a schedule with any. */
  droppedCharacters = 0;
  readonly doc: Y.Doc;
  private readonly fragment: Y.XmlFragment;
  private meta: BindingMeta = { mapping: new Map(), isOMark: new Map() };
  /** Set while the binding itself reads or writes, as y-tiptap's mutex: its own changes are not re-rendered. */
  private busy = false;
  private writing = false;
  /** y-tiptap writes nothing until the shown document first differs from the empty one. */
  private changed = false;

  constructor(doc: Y.Doc) {
    this.doc = doc;
    this.fragment = doc.getXmlFragment(FIELD);
    this.view = emptyDocument();
    this.render();
    this.fragment.observeDeep(() => {
      if (!this.busy) this.render();
    });
    // As the editor does: text it moved keeps its threads' marks through concurrent deletions.
    new MarkKeeper(doc, {
      isWrite: (transaction) => transaction.origin === ySyncPluginKey,
      threadExists: () => true,
    });
    doc.on("afterTransaction", (transaction: Y.Transaction) => {
      if (transaction.origin !== ySyncPluginKey || this.writing) return;
      const inserted = [...transaction.afterState].some(
        ([client, clock]) => (transaction.beforeState.get(client) ?? 0) !== clock,
      );
      if (!inserted && transaction.deleteSet.clients.size === 0) return;
      this.repairs++;
      // A repair that only deletes drops whatever text the refused element held.
      if (inserted) return;
      Y.iterateDeletedStructs(transaction, transaction.deleteSet, (struct) => {
        if (struct instanceof Y.Item && struct.content instanceof Y.ContentString) {
          this.droppedCharacters += struct.length;
        }
      });
    });
  }

  /**
   * Makes one random edit and writes it into the fragment. Returns the kind
   * tried and whether it applied (an edit that does not fit the document
   * where it was tried changes nothing, as a refused command would).
   */
  edit(r: Rng, options: EditOptions = {}): { kind: EditKind; applied: boolean } {
    const { kind, doc } = randomEdit(r, this.view, options);
    if (doc === null || doc.eq(this.view)) return { kind, applied: false };
    // ProseMirror's steps keep a valid document valid (a failure here is a bug in the edit).
    // Concurrent edits can make the shown document invalid; the editor shows it anyway.
    if (isValid(this.view)) doc.check();
    this.view = doc;
    this.write();
    return { kind, applied: true };
  }

  /**
   * The shown document as the fragment can hold it: y-tiptap stores marks on
   * text only, so marks on other inline nodes (a bold hard break) are shown
   * locally but never written, and vanish at the next re-render.
   */
  stored(view: PMNode = this.view): JSONContent {
    const json = view.toJSON() as JSONContent;
    let nodeMarks = false;
    view.descendants((node) => {
      nodeMarks ||= !node.isText && node.marks.length > 0;
      return !nodeMarks;
    });
    return nodeMarks ? withoutNodeMarks(json) : json;
  }

  /**
   * What the server's converter reads for the shown document: as stored,
   * with each text run's marks reduced to a set the schema allows (see
   * {@link withExclusiveMarks}).
   */
  readable(): JSONContent {
    return this.stored(withExclusiveMarks(this.view));
  }

  /** Writes the shown document into the fragment, as the sync plugin's view update does. */
  private write(): void {
    if (!this.noteChange()) return;
    this.busy = true;
    this.writing = true;
    try {
      this.doc.transact(() => {
        updateYFragment(this.doc, this.fragment, this.view, this.meta);
      }, ySyncPluginKey);
    } finally {
      this.writing = false;
      this.busy = false;
    }
  }

  /**
   * Whether the shown document has ever differed from the empty one, noted
   * on every view update as the sync plugin does; until it has, the plugin
   * writes nothing to Yjs.
   */
  private noteChange(): boolean {
    if (!this.changed) {
      this.changed = this.view.content.findDiffStart(emptyDocument().content) !== null;
    }
    return this.changed;
  }

  /** Re-renders the fragment into the shown document, as the sync plugin does on a remote change. */
  private render(): void {
    this.busy = true;
    try {
      const { doc, meta } = initProseMirrorDoc(this.fragment, schema);
      this.meta = meta;
      const size = this.view.content.size;
      this.view = new Transform(this.view).replace(0, size, new Slice(doc.content, 0, 0)).doc;
      // The plugin's view update runs after a render too: it notes the change, but writes nothing.
      this.noteChange();
    } finally {
      this.busy = false;
    }
  }
}

/** Whether `doc` conforms to the schema (content, marks and attributes). */
export function isValid(doc: PMNode): boolean {
  try {
    doc.check();
    return true;
  } catch {
    return false;
  }
}

/**
 * `doc` with every text node's marks reduced to a set the schema allows, as
 * ProseMirror's `addToSet` would build it: a mark replaces the marks it
 * excludes. Concurrent formatting can leave both (one user makes text code
 * while another makes it bold): Yjs keeps both attributes, and y-tiptap reads
 * both back as marks.
 */
export function withExclusiveMarks(doc: PMNode): PMNode {
  if (doc.isText) return doc.mark(doc.marks.reduce((set, mark) => mark.addToSet(set), Mark.none));
  if (doc.isLeaf) return doc;
  const children: PMNode[] = [];
  doc.forEach((child) => {
    children.push(withExclusiveMarks(child));
  });
  return doc.copy(Fragment.from(children));
}

/** `json` without marks on nodes other than text (keys stay in their order). */
function withoutNodeMarks(json: JSONContent): JSONContent {
  const entries = Object.entries(json).flatMap(([key, value]): Array<[string, unknown]> => {
    if (key === "marks" && json.type !== "text") return [];
    if (key === "content" && Array.isArray(value)) return [[key, value.map(withoutNodeMarks)]];
    return [[key, value]];
  });
  return Object.fromEntries(entries) as JSONContent;
}

// ---------------------------------------------------------------------------
// Random edits

/** One random edit of `doc`: its kind, and the edited document (null when it did not apply). */
export function randomEdit(
  r: Rng,
  doc: PMNode,
  options: EditOptions = {},
): { kind: EditKind; doc: PMNode | null } {
  const kind = pickKind(r, options.weights ?? EDIT_WEIGHTS);
  const tr = new Transform(doc);
  try {
    return { kind, doc: EDITS[kind](r, tr, options) ? tr.doc : null };
  } catch (error) {
    // A step that does not fit here (ReplaceError, TransformError): the command would refuse it.
    if (error instanceof Error && /RangeError|ReplaceError|TransformError/.test(error.name)) {
      return { kind, doc: null };
    }
    throw error;
  }
}

function pickKind(r: Rng, weights: Partial<Record<EditKind, number>>): EditKind {
  const total = EDIT_KINDS.reduce((sum, kind) => sum + (weights[kind] ?? 0), 0);
  let at = random.int(r, 0, total - 1);
  for (const kind of EDIT_KINDS) {
    at -= weights[kind] ?? 0;
    if (at < 0) return kind;
  }
  return "type";
}

const nodes = schema.nodes;
// Comment marks are the server's to set (with their thread), never an editor's formatting.
const markTypes = Object.values(schema.marks).filter((type) => type.name !== "comment");

function node(name: string): NodeType {
  const type = nodes[name];
  if (type === undefined) throw new Error(`the schema has no "${name}" node`);
  return type;
}

/** Each edit applies its change to `tr` and says whether it found a place to apply it. */
const EDITS: Record<EditKind, (r: Rng, tr: Transform, options: EditOptions) => boolean> = {
  type(r, tr, options) {
    const at = pickOf(r, textPositions(tr.doc));
    if (at === undefined) return false;
    const $at = tr.doc.resolve(at);
    // Typing continues the marks at the cursor, where the block allows them.
    const marks = $at.parent.type.allowedMarks($at.marks());
    tr.insert(at, schema.text(options.word?.(r) ?? random.word(r, 1, 5), marks));
    return true;
  },

  delete(r, tr) {
    const [from, to] = textRange(r, tr.doc) ?? [0, 0];
    if (random.bool(r)) {
      // Backspace or a small selection: from a text position a few steps on.
      const end = Math.min(tr.doc.content.size, from + random.int(r, 1, 6));
      tr.delete(from, end);
    } else {
      // A selection across blocks.
      tr.delete(from, to);
    }
    return tr.docChanged;
  },

  mark(r, tr) {
    const range = textRange(r, tr.doc);
    if (range === undefined) return false;
    tr.addMark(range[0], range[1], randomMark(r));
    return tr.docChanged;
  },

  unmark(r, tr) {
    // Select some marked text (maybe a little more or less) and remove that mark, or all marks.
    const found = markedRange(r, tr.doc);
    if (found === undefined) return false;
    const size = tr.doc.content.size;
    const from = Math.max(0, found.from + random.int(r, -3, 2));
    const to = Math.min(size, Math.max(from, found.to + random.int(r, -2, 3)));
    tr.removeMark(from, to, random.int(r, 0, 3) > 0 ? found.mark.type : undefined);
    return tr.docChanged;
  },

  split(r, tr) {
    const at = pickOf(r, textPositions(tr.doc));
    if (at === undefined) return false;
    // Enter in a paragraph splits it; in a list item it splits the item (depth 2).
    const depth = Math.min(random.int(r, 1, 2), tr.doc.resolve(at).depth);
    if (!canSplit(tr.doc, at, depth)) return false;
    tr.split(at, depth);
    return true;
  },

  join(r, tr) {
    // Join two neighbouring blocks (paragraphs, list items, lists) that fit together.
    const at = pickOf(
      r,
      blockGaps(tr.doc).filter((pos) => canJoin(tr.doc, pos)),
    );
    if (at === undefined) return false;
    tr.join(at);
    return true;
  },

  wrap(r, tr) {
    // Wrap the selected blocks in a list or a quote.
    const range = blockRange(r, tr.doc);
    if (range === null) return false;
    const type = node(random.pick(r, ["bulletList", "orderedList", "taskList", "blockquote"]));
    const wrapping = findWrapping(range, type);
    if (wrapping === null) return false;
    tr.wrap(range, wrapping);
    return true;
  },

  lift(r, tr) {
    // Lift the selected blocks out of their list item or quote.
    const range = blockRange(r, tr.doc);
    if (range === null) return false;
    const target = liftTarget(range);
    if (target === null) return false;
    tr.lift(range, target);
    return true;
  },

  block(r, tr) {
    // Turn the selected textblocks into headings, paragraphs or a code block.
    const range = textRange(r, tr.doc);
    if (range === undefined) return false;
    const choice = random.int(r, 0, 4);
    if (choice < 3) tr.setBlockType(range[0], range[1], node("heading"), { level: choice + 1 });
    else if (choice === 3) tr.setBlockType(range[0], range[1], node("paragraph"));
    else tr.setBlockType(range[0], range[1], node("codeBlock"));
    return tr.docChanged;
  },

  insert(r, tr) {
    if (random.bool(r)) {
      // Shift-Enter: a hard break at the cursor (not in a code block).
      const at = pickOf(r, textPositions(tr.doc));
      if (at === undefined) return false;
      const $at = tr.doc.resolve(at);
      if (!$at.parent.canReplaceWith($at.index(), $at.index(), node("hardBreak"))) return false;
      tr.insert(at, node("hardBreak").create());
      return true;
    }
    // A horizontal rule or a new paragraph between blocks.
    const type = random.bool(r) ? node("horizontalRule") : node("paragraph");
    const gaps = blockGaps(tr.doc).filter((pos) => {
      const $pos = tr.doc.resolve(pos);
      return $pos.parent.canReplaceWith($pos.index(), $pos.index(), type);
    });
    const at = pickOf(r, gaps);
    if (at === undefined) return false;
    const content = type.isLeaf ? null : schema.text(random.word(r, 1, 5));
    tr.insert(at, type.create(null, content));
    return true;
  },

  attrs(r, tr) {
    // Change one node's attributes: heading level, list start, task checked, code language.
    const targets: Array<{ pos: number; node: PMNode }> = [];
    tr.doc.descendants((child, pos) => {
      if (["heading", "orderedList", "taskItem", "codeBlock"].includes(child.type.name)) {
        targets.push({ pos, node: child });
      }
      return true;
    });
    const target = pickOf(r, targets);
    if (target === undefined) return false;
    const attrs = { ...target.node.attrs };
    switch (target.node.type.name) {
      case "heading":
        attrs.level = random.int(r, 1, 3);
        break;
      case "orderedList":
        attrs.start = random.int(r, 1, 20);
        break;
      case "taskItem":
        attrs.checked = attrs.checked !== true;
        break;
      default:
        attrs.language = random.pick(r, [null, "js", "ts", "python"]);
    }
    tr.setNodeMarkup(target.pos, undefined, attrs);
    return tr.docChanged;
  },

  paste(r, tr) {
    // Copy a range of the document and paste it over another (or at a cursor).
    const source = textRange(r, tr.doc);
    const target = textRange(r, tr.doc);
    if (source === undefined || target === undefined) return false;
    const slice = tr.doc.slice(source[0], source[1]);
    tr.replace(target[0], random.bool(r) ? target[0] : target[1], slice);
    return tr.docChanged;
  },
};

function randomMark(r: Rng): Mark {
  const type = pickOf(r, markTypes);
  if (type === undefined) throw new Error("the schema has no marks");
  if (type.name !== "link") return type.create();
  return type.create({ href: `https://example.com/${random.word(r, 1, 4)}` });
}

function pickOf<T>(r: Rng, items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : random.pick(r, items);
}

/** Every position inside a textblock (where a cursor can be). */
function textPositions(doc: PMNode): number[] {
  const out: number[] = [];
  doc.descendants((child, pos) => {
    if (!child.isTextblock) return true;
    for (let at = pos + 1; at <= pos + 1 + child.content.size; at++) out.push(at);
    return false;
  });
  return out;
}

/** Two cursor positions, in order: a random selection (mostly a few characters, sometimes across blocks). */
function textRange(r: Rng, doc: PMNode): [number, number] | undefined {
  const positions = textPositions(doc);
  if (positions.length === 0) return undefined;
  const i = random.int(r, 0, positions.length - 1);
  const j =
    random.int(r, 0, 3) === 0
      ? random.int(r, 0, positions.length - 1)
      : Math.min(i + random.int(r, 1, 8), positions.length - 1);
  const [a, b] = [positions[i] ?? 0, positions[j] ?? 0];
  return a <= b ? [a, b] : [b, a];
}

/** The range of a random marked text node and one of its marks, if any text is marked. */
function markedRange(r: Rng, doc: PMNode): { from: number; to: number; mark: Mark } | undefined {
  const marked: Array<{ from: number; to: number; marks: readonly Mark[] }> = [];
  doc.descendants((child, pos) => {
    if (child.isText && child.marks.length > 0) {
      marked.push({ from: pos, to: pos + child.nodeSize, marks: child.marks });
    }
    return true;
  });
  const found = pickOf(r, marked);
  const mark = found === undefined ? undefined : pickOf(r, found.marks);
  return found === undefined || mark === undefined ? undefined : { ...found, mark };
}

/** The range of blocks between two random cursor positions. */
function blockRange(r: Rng, doc: PMNode) {
  const range = textRange(r, doc);
  if (range === undefined) return null;
  return doc.resolve(range[0]).blockRange(doc.resolve(range[1]));
}

/** Every position between two blocks (or at either end of a block container). */
function blockGaps(doc: PMNode): number[] {
  const out: number[] = [];
  const visit = (parent: PMNode, start: number) => {
    if (parent.inlineContent || parent.isLeaf) return;
    let at = start;
    out.push(at);
    parent.forEach((child) => {
      visit(child, at + 1);
      at += child.nodeSize;
      out.push(at);
    });
  };
  visit(doc, 0);
  return out;
}
