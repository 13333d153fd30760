/**
 * The document schema: one list of Tiptap extensions shared by the editor and
 * (in a later issue) the server's JSON/HTML/Markdown conversion, so both agree
 * on the shape of a document.
 */
import { Extension, type Extensions, type Node, type NodeViewRenderer } from "@tiptap/core";
import Code from "@tiptap/extension-code";
import { TaskItem, TaskList } from "@tiptap/extension-list";
import {
  Table,
  TableCell,
  TableHeader,
  type TableOptions,
  TableRow,
} from "@tiptap/extension-table";
import { Fragment, type Schema } from "@tiptap/pm/model";
import { Plugin } from "@tiptap/pm/state";
import { fixTables, tableEditingKey } from "@tiptap/pm/tables";
import type { EditorView } from "@tiptap/pm/view";
import StarterKit from "@tiptap/starter-kit";
import { ySyncPluginKey } from "@tiptap/y-tiptap";
import { AttachmentFile, AttachmentImage } from "./attachments/nodes.ts";
import { CommentMark } from "./comments/mark.ts";

/**
 * The marks inline code excludes: every formatting mark, so code is never bold or a link
 * (Tiptap's own code mark excludes all marks), but not a thread's `comment` mark, which
 * formatting its text as code must not remove (found by the anchoring fuzz: a user's code
 * formatting took threads off their text). A test checks this lists every other mark.
 */
export const CODE_EXCLUDES = ["bold", "italic", "strike", "underline", "link"] as const;

export { FIELD } from "./field.ts";

/** What an editor decides about the document's shape. */
export interface SchemaOptions {
  /**
   * Whether this editor repairs tables concurrent edits left malformed, now: one editor
   * of those present should (see {@link repairsWhen}). @default always (a lone editor)
   */
  readonly repairTables?: () => boolean;
  /** How the editor shows images and file cards (attachments/views.ts); none on the server. */
  readonly attachmentViews?: {
    readonly image: NodeViewRenderer;
    readonly file: NodeViewRenderer;
  };
}

/** Every node and mark a document may contain. */
export function schemaExtensions(options: SchemaOptions = {}): Extensions {
  return [
    StarterKit.configure({
      // Undo and redo come from the collaboration binding, per user.
      undoRedo: false,
      heading: { levels: [1, 2, 3] },
      link: { openOnClick: false, autolink: true, defaultProtocol: "https" },
      code: false,
    }),
    Code.extend({ excludes: [...CODE_EXCLUDES, "code"].join(" ") }),
    TaskList,
    TaskItem.configure({ nested: true }),
    // Tables with a header row, merged cells and column widths (kept in the document).
    CollabTable.configure({
      resizable: true,
      cellMinWidth: 48,
      repairTables: options.repairTables ?? (() => true),
    }),
    TableRow,
    TableHeader,
    TableCell,
    // Images and file cards: the bytes are attachments on the server, the document holds their ids.
    withView(AttachmentImage, options.attachmentViews?.image),
    withView(AttachmentFile, options.attachmentViews?.file),
    CommentMark,
    FillRefusedContent,
  ];
}

/** `node` shown by `view` in the editor; unchanged without one. */
function withView(node: Node, view: NodeViewRenderer | undefined): Node {
  return view === undefined ? node : node.extend({ addNodeView: () => view });
}

const patched = new WeakSet<Schema>();

/**
 * Dependency patch, written for @tiptap/y-tiptap 3.0.9 (docs/patches.md):
 * content the schema refuses is filled in, not deleted.
 *
 * y-tiptap builds the node for each Yjs element with `schema.node`, and when
 * that throws (the element's content does not fit the schema) it deletes the
 * element from the Yjs document, with all its text, for every user. Edits
 * that are each valid can leave such content when they meet: one user
 * deletes a list item's first paragraph while another deletes its second,
 * and the item starts with what came third (a heading, a quote, a code block,
 * a nested list), where the schema wants a paragraph.
 *
 * After this, `schema.node` builds such a node as `NodeType.createAndFill`
 * does: with what the content lacks filled in (an empty paragraph at the
 * start of the item). The editor shows the item with its text, nothing is
 * written to Yjs while rendering, and the filler is stored with the next edit
 * made inside the item. An element with no children at all (an emptied list
 * or item) is still refused, so y-tiptap deletes it as before: it holds no
 * text. Only y-tiptap and the server's reader (convert.ts) call `schema.node`.
 * Idempotent; returns `schema`.
 */
export function fillRefusedContent(schema: Schema): Schema {
  if (patched.has(schema)) return schema;
  patched.add(schema);
  const checked = schema.node.bind(schema);
  schema.node = (type, attrs, content, marks) => {
    try {
      return checked(type, attrs, content, marks);
    } catch (error) {
      const nodeType = typeof type === "string" ? schema.nodes[type] : type;
      const children = Fragment.from(content);
      if (nodeType === undefined || children.childCount === 0) throw error;
      let node: ReturnType<typeof checked> | null = null;
      try {
        node = nodeType.createAndFill(attrs, children, marks);
      } catch {
        // Attributes the type refuses: nothing to fill.
      }
      if (node === null || !nodeType.validContent(node.content)) throw error;
      return node;
    }
  };
  return schema;
}

/**
 * Dependency patch, written for prosemirror-tables 1.8.5 with @tiptap/extension-table
 * 3.31.3 and @tiptap/y-tiptap 3.0.9 (docs/patches.md). The `tableEditing` plugin repairs
 * every table a transaction leaves malformed (a row short of cells, a width on one cell of
 * a column) in a transaction appended to it, on every editor. Tables become malformed
 * through concurrent edits (one person adds a row while another adds a column), and then:
 * - every editor makes the same repair at once, and the repairs add up: two people adding
 *   rows and columns made tables grow without end (prosemirror-tables issue 249);
 * - y-tiptap never writes to Yjs what is appended to a change it rendered (its mutex is
 *   held), so a repair made there shows in one editor only.
 * Here only the editor `repairs()` names repairs (the editor gives that to one of those
 * present, table-repairer.ts): after its own edits in the same step, as before, and after a
 * rendered remote change in a transaction of its own, dispatched right after. An editor
 * that becomes the one that repairs (the one before it left) repairs at once
 * ({@link repairTablesNow}, called by the editor).
 */
export function repairsWhen(plugin: Plugin, repairs: () => boolean): Plugin {
  const append = plugin.spec.appendTransaction;
  if (append === undefined) {
    throw new Error("prosemirror-tables' tableEditing has no appendTransaction: revisit the patch");
  }
  let view: EditorView | null = null;
  let scheduled = false;
  const repairLater = () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      if (view !== null && repairs()) repairTablesNow(view);
    }, 0);
  };
  return new Plugin({
    ...plugin.spec,
    view(editorView) {
      view = editorView;
      return {
        destroy() {
          view = null;
        },
      };
    },
    appendTransaction(transactions, oldState, newState) {
      if (!repairs()) return null;
      if (transactions.some((tr) => tr.getMeta(ySyncPluginKey) === undefined)) {
        return append.call(this, transactions, oldState, newState);
      }
      if (fixTables(newState, oldState) !== undefined) repairLater();
      return null;
    },
  });
}

/**
 * Repairs every malformed table of `view`'s document now, in a transaction of its own (a
 * local edit, which the binding writes to Yjs): for the editor that repairs (see
 * {@link repairsWhen}), after a rendered remote change or when it has just become the one
 * that repairs. Must not be called while a transaction is being applied to `view`. Returns
 * whether there was anything to repair; does nothing to a destroyed view.
 */
export function repairTablesNow(view: EditorView): boolean {
  if (view.isDestroyed) return false;
  const tr = fixTables(view.state);
  if (tr === undefined) return false;
  view.dispatch(tr);
  return true;
}

interface CollabTableOptions extends TableOptions {
  /** Whether this editor repairs malformed tables now ({@link repairsWhen}). @default always */
  repairTables: () => boolean;
}

const CollabTable = Table.extend<CollabTableOptions>({
  addOptions() {
    return { ...(this.parent?.() as TableOptions), repairTables: () => true };
  },
  addProseMirrorPlugins() {
    const plugins = this.parent?.() ?? [];
    if (!plugins.some((plugin) => plugin.spec.key === tableEditingKey)) {
      throw new Error("@tiptap/extension-table no longer adds tableEditing: revisit the patch");
    }
    const repairs = () => this.options.repairTables();
    return plugins.map((plugin) =>
      plugin.spec.key === tableEditingKey ? repairsWhen(plugin, repairs) : plugin,
    );
  },
});

/** Applies {@link fillRefusedContent} to an editor's schema before its view, and y-tiptap, first render. */
const FillRefusedContent = Extension.create({
  name: "fillRefusedContent",
  onBeforeCreate() {
    fillRefusedContent(this.editor.schema);
  },
});
