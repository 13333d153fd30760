/**
 * Concurrent structure edits inside a list item, through y-tiptap's own
 * read and write functions ([REL1]).
 *
 * Two replicas of one document each delete one of the two paragraphs that
 * open a list item. Each edit is valid on its own, but merged they leave an
 * item whose first child is whatever came third: a heading, a quote, a code
 * block, a nested list, where the schema wants a paragraph. y-tiptap 3.0.9,
 * rendering an element whose content the schema refuses, deletes the element
 * from the Yjs document, text and all (`createNodeFromYElement`). The
 * editor's patch (`fillRefusedContent`, docs/patches.md) fills in the missing
 * paragraph instead. The rich-text fuzz (REL1) found these structures; this
 * is the smallest form of each.
 */
import { getSchema, type JSONContent } from "@tiptap/core";
import type { Node as PMNode, Schema } from "@tiptap/pm/model";
import { Transform } from "@tiptap/pm/transform";
import {
  initProseMirrorDoc,
  prosemirrorJSONToYXmlFragment,
  updateYFragment,
  ySyncPluginKey,
  yXmlFragmentToProsemirrorJSON,
} from "@tiptap/y-tiptap";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { documentJSON } from "../../server/src/documents/convert.ts";
import { FIELD, schema, schemaExtensions } from "../../server/src/documents/schema.ts";

const text = (value: string): JSONContent => ({ type: "text", text: value });
const p = (value?: string): JSONContent =>
  value === undefined ? { type: "paragraph" } : { type: "paragraph", content: [text(value)] };

/** The block that follows the two paragraphs, and ends up first in the item. */
const followers: ReadonlyArray<[string, JSONContent]> = [
  ["a heading", { type: "heading", attrs: { level: 2 }, content: [text("Title")] }],
  ["a quote", { type: "blockquote", content: [p("Title")] }],
  ["a code block", { type: "codeBlock", content: [text("Title")] }],
  [
    "a nested bullet list",
    { type: "bulletList", content: [{ type: "listItem", content: [p("Title")] }] },
  ],
  [
    "a nested task list",
    {
      type: "taskList",
      content: [{ type: "taskItem", attrs: { checked: false }, content: [p("Title")] }],
    },
  ],
];

const lists: ReadonlyArray<[string, (content: JSONContent[]) => JSONContent]> = [
  ["list item", (content) => ({ type: "bulletList", content: [{ type: "listItem", content }] })],
  [
    "task item",
    (content) => ({
      type: "taskList",
      content: [{ type: "taskItem", attrs: { checked: false }, content }],
    }),
  ],
];

/**
 * One replica, bound to its Y.Doc as y-tiptap's sync plugin binds an editor:
 * `initProseMirrorDoc` renders the fragment (deleting what `schema.node`
 * refuses), `updateYFragment` writes an edited document back. Counts the
 * transactions rendering made.
 */
class Replica {
  readonly doc = new Y.Doc();
  readonly fragment = this.doc.getXmlFragment(FIELD);
  private readonly schema: Schema;
  private meta: ReturnType<typeof initProseMirrorDoc>["meta"];
  private rendering = false;
  /** Transactions rendering made: y-tiptap deleting what the schema refused. */
  repairs = 0;

  constructor(bound: Schema) {
    this.schema = bound;
    this.meta = initProseMirrorDoc(this.fragment, bound).meta;
    this.doc.on("afterTransaction", () => {
      if (this.rendering) this.repairs++;
    });
  }

  /** What the editor shows now. */
  render(): PMNode {
    this.rendering = true;
    try {
      const { doc, meta } = initProseMirrorDoc(this.fragment, this.schema);
      this.meta = meta;
      return doc;
    } finally {
      this.rendering = false;
    }
  }

  /** Renders, applies `change` to the shown document, checks it and writes it, as the editor does. */
  edit(change: (shown: PMNode) => Transform): void {
    const edited = change(this.render()).doc;
    edited.check(); // each replica's edit alone is valid
    this.doc.transact(() => {
      updateYFragment(this.doc, this.fragment, edited, this.meta);
    }, ySyncPluginKey);
  }
}

/** The position of the first textblock reading `value`, and its size. */
function block(doc: PMNode, value: string): { pos: number; size: number } {
  let found: { pos: number; size: number } | undefined;
  doc.descendants((node, pos) => {
    if (node.isTextblock && node.textContent === value) found = { pos, size: node.nodeSize };
    return found === undefined;
  });
  if (found === undefined) throw new Error(`no block reads "${value}"`);
  return found;
}

/** Deletes the paragraph reading `value`, as selecting it and pressing Backspace would. */
const deleteBlock = (value: string) => (shown: PMNode) => {
  const { pos, size } = block(shown, value);
  return new Transform(shown).delete(pos, pos + size);
};

/** The element names in the first item of the first list of `fragment`. */
function itemChildren(fragment: Y.XmlFragment): string[] {
  const item = (fragment.get(0) as Y.XmlElement | undefined)?.get(0);
  if (!(item instanceof Y.XmlElement)) throw new Error("no list item");
  return item.toArray().map((child) => (child instanceof Y.XmlElement ? child.nodeName : "text"));
}

/** Syncs two replicas both ways. */
function sync(a: Replica, b: Replica): void {
  Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc));
  Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc));
}

/**
 * Two replicas of `list([p("one"), p("two"), follower])` on `bound`; one
 * deletes "one" while the other deletes "two"; then they sync.
 */
function concurrentDeletes(
  bound: Schema,
  list: (content: JSONContent[]) => JSONContent,
  follower: JSONContent,
): [Replica, Replica] {
  const a = new Replica(bound);
  const b = new Replica(bound);
  prosemirrorJSONToYXmlFragment(
    bound,
    { type: "doc", content: [list([p("one"), p("two"), follower])] },
    a.fragment,
  );
  Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc));
  a.edit(deleteBlock("one"));
  b.edit(deleteBlock("two"));
  sync(a, b);
  return [a, b];
}

describe("concurrent structure edits in list items", () => {
  for (const [listName, list] of lists) {
    for (const [followerName, follower] of followers) {
      it(`[REL1] a ${listName} left starting with ${followerName} keeps its text`, () => {
        const [a, b] = concurrentDeletes(schema, list, follower);
        const shownJSON = schema.nodeFromJSON({ type: "doc", content: [list([p(), follower])] });
        for (const replica of [a, b]) {
          const shown = replica.render();
          expect(shown.textContent, "the binding dropped the item's text").toBe("Title");
          expect(replica.repairs, "rendering changed the document").toBe(0);
          // Yjs holds the merged item as it is, which the schema refuses.
          expect(itemChildren(replica.fragment)).toEqual([follower.type]);
          // Shown valid, with an empty paragraph in front; the server reads the same.
          shown.check();
          expect(shown.toJSON()).toEqual(shownJSON.toJSON());
          expect(documentJSON(replica.doc)).toEqual(shown.toJSON());
        }
      });
    }
  }

  it("[REL1] the filled-in paragraph is stored with the next edit inside the item", () => {
    const [listName, list] = lists[0] ?? [];
    const [, follower] = followers[0] ?? [];
    if (list === undefined || follower === undefined) throw new Error(`no ${listName}`);
    const [a, b] = concurrentDeletes(schema, list, follower);
    a.edit((shown) =>
      new Transform(shown).insert(block(shown, "Title").pos + 1, schema.text("New ")),
    );
    sync(a, b);
    const expected = schema.nodeFromJSON({
      type: "doc",
      content: [
        list([p(), { type: "heading", attrs: { level: 2 }, content: [text("New Title")] }]),
      ],
    });
    for (const replica of [a, b]) {
      expect(itemChildren(replica.fragment)).toEqual(["paragraph", "heading"]);
      expect(replica.render().toJSON()).toEqual(expected.toJSON());
      expect(replica.repairs).toBe(0);
    }
  });

  it("[REL1] two users editing inside such an item at once each store a paragraph, and lose nothing", () => {
    const [, list] = lists[0] ?? [];
    const [, follower] = followers[0] ?? [];
    if (list === undefined || follower === undefined) throw new Error("no cases");
    const [a, b] = concurrentDeletes(schema, list, follower);
    a.edit((shown) => new Transform(shown).insert(block(shown, "Title").pos + 1, schema.text("A")));
    b.edit((shown) => new Transform(shown).insert(block(shown, "Title").pos + 1, schema.text("B")));
    sync(a, b);
    expect(itemChildren(a.fragment)).toEqual(["paragraph", "paragraph", "heading"]);
    const shown = a.render();
    shown.check();
    expect(b.render().toJSON()).toEqual(shown.toJSON());
    expect(shown.textContent).toMatch(/^(AB|BA)Title$/);
    expect(a.repairs + b.repairs).toBe(0);
  });

  it("[REL1] without the patch, y-tiptap 3.0.9 deletes such an item with its text (if this fails after an upgrade, see docs/patches.md)", () => {
    const unpatched = getSchema(schemaExtensions());
    expect(unpatched).not.toBe(schema);
    for (const [, list] of lists) {
      for (const [, follower] of followers) {
        const [a, b] = concurrentDeletes(unpatched, list, follower);
        expect(a.render().textContent).toBe("");
        expect(a.repairs).toBeGreaterThan(0);
        // The deletion is written to Yjs: every replica loses the item.
        Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc));
        expect(yXmlFragmentToProsemirrorJSON(b.fragment)).toEqual({ type: "doc", content: [] });
      }
    }
  });
});
