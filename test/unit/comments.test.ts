/**
 * The comment core without a server: anchoring by quote and by relative
 * positions (comments/anchor.ts, text.ts), and the operations' rules
 * (threads.ts) on a text and its threads document.
 */
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import {
  MAX_COMMENTS_PER_THREAD,
  MAX_THREADS,
  readThreads,
  THREADS,
} from "../../editor/src/comments/model.ts";
import { CODE_EXCLUDES } from "../../editor/src/extensions.ts";
import { resolveAnchor } from "../../server/src/comments/anchor.ts";
import { anchoredTexts, flatten, unmarkThread } from "../../server/src/comments/text.ts";
import {
  applyThreadOp,
  type Commenter,
  type ThreadDocs,
} from "../../server/src/comments/threads.ts";
import { replaceContent } from "../../server/src/documents/convert.ts";
import { schema } from "../../server/src/documents/schema.ts";
import { isCollabError } from "../../server/src/errors.ts";

const ANN: Commenter = { person: { id: "ann", name: "Ann" }, role: "comment" };
const BOB: Commenter = { person: { id: "bob", name: "Bob" }, role: "comment" };

/** A server document with two paragraphs, its threads document, and a client that has synced it. */
function pair(): { server: Y.Doc; client: Y.Doc; docs: ThreadDocs } {
  const server = new Y.Doc();
  replaceContent(server, {
    type: "doc",
    content: [
      { type: "paragraph", content: [{ type: "text", text: "alpha beta gamma" }] },
      { type: "paragraph", content: [{ type: "text", text: "beta delta" }] },
    ],
  });
  const client = new Y.Doc();
  Y.applyUpdate(client, Y.encodeStateAsUpdate(server));
  return { server, client, docs: { text: server, threads: new Y.Doc() } };
}

function create(docs: ThreadDocs, id: string, quote: string, by = ANN) {
  return docs.threads.transact(() =>
    applyThreadOp(
      docs,
      {
        op: "create",
        thread: id,
        comment: `${id}-1`,
        anchor: { kind: "quote", quote },
        body: "why?",
        mentions: [],
      },
      by,
      1000,
    ),
  );
}

function firstText(doc: Y.Doc, paragraph = 0): Y.XmlText {
  return (doc.getXmlFragment("default").get(paragraph) as Y.XmlElement).get(0) as Y.XmlText;
}

describe("anchors", () => {
  it("[COM5] a quote matches once, with a prefix or suffix to choose; across paragraphs with \\n", () => {
    const { server, docs } = pair();
    const flat = flatten(server);
    expect(flat.text).toBe("alpha beta gamma\nbeta delta");
    const error = (run: () => unknown) => {
      try {
        run();
      } catch (caught) {
        if (isCollabError(caught)) return caught.code;
        throw caught;
      }
      return "none";
    };
    expect(error(() => resolveAnchor(server, flat, { kind: "quote", quote: "beta" }))).toBe(
      "ANCHOR_AMBIGUOUS",
    );
    expect(resolveAnchor(server, flat, { kind: "quote", quote: "beta", suffix: " delta" })).toEqual(
      {
        from: 17,
        to: 21,
      },
    );
    expect(resolveAnchor(server, flat, { kind: "quote", quote: "beta", prefix: "alpha " })).toEqual(
      { from: 6, to: 10 },
    );
    expect(error(() => resolveAnchor(server, flat, { kind: "quote", quote: "omega" }))).toBe(
      "ANCHOR_NOT_FOUND",
    );
    create(docs, "t1", "gamma\nbeta");
    expect(anchoredTexts(server).get("t1")).toBe("gamma\nbeta");
  });

  it("[COM5] relative positions made on a client find their text after the server changed it", () => {
    const { server, client } = pair();
    const text = firstText(client);
    const anchor = {
      kind: "relative" as const,
      start: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, 6)),
      end: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, 10)),
    };
    // Someone typed at the start meanwhile.
    firstText(server).insert(0, "Once: ");
    const range = resolveAnchor(server, flatten(server), anchor);
    expect(flatten(server).text.slice(range.from, range.to)).toBe("beta");
  });
});

describe("operations", () => {
  it("[COM4] authors: only the author edits or deletes a comment; replays apply once", () => {
    const { server, docs } = pair();
    create(docs, "t1", "gamma", ANN);
    expect(anchoredTexts(server).get("t1")).toBe("gamma");
    const run = (op: Parameters<typeof applyThreadOp>[1], by: Commenter) =>
      docs.threads.transact(() => applyThreadOp(docs, op, by, 2000));
    const reply = { op: "reply" as const, thread: "t1", comment: "r1", body: "yes", mentions: [] };
    expect(run(reply, BOB).event?.type).toBe("comment.created");
    expect(run(reply, BOB).event).toBeNull();
    expect(() => run({ ...reply, body: "other" }, BOB)).toThrow(/exists/);
    expect(() =>
      run({ op: "edit", thread: "t1", comment: "r1", body: "no", mentions: [] }, ANN),
    ).toThrow(/only its author/);
    expect(() => run({ op: "delete-thread", thread: "t1" }, BOB)).toThrow(/only its author/);
    expect(run({ op: "resolve", thread: "t1" }, BOB).event?.type).toBe("thread.resolved");
    expect(run({ op: "resolve", thread: "t1" }, ANN).event).toBeNull();
    expect(run({ op: "delete-thread", thread: "t1" }, ANN).thread).toBeNull();
    expect(readThreads(docs.threads)).toEqual([]);
    expect(anchoredTexts(server).size).toBe(0);
  });

  it("[COM4] limits: a document keeps at most MAX_THREADS threads, a thread MAX_COMMENTS_PER_THREAD comments", () => {
    const { docs } = pair();
    create(docs, "t1", "gamma");
    const run = (op: Parameters<typeof applyThreadOp>[1]) =>
      docs.threads.transact(() => applyThreadOp(docs, op, BOB, 3000));
    const code = (thunk: () => unknown) => {
      try {
        thunk();
      } catch (error) {
        return isCollabError(error) ? error.code : "other";
      }
      return "none";
    };
    for (let i = 1; i < MAX_COMMENTS_PER_THREAD; i++) {
      run({ op: "reply", thread: "t1", comment: `r${i}`, body: "+1", mentions: [] });
    }
    const full = { op: "reply" as const, thread: "t1", comment: "over", body: "+1", mentions: [] };
    expect(code(() => run(full))).toBe("COMMENT_LIMIT");
    // A reply sent again still answers as before.
    expect(run({ op: "reply", thread: "t1", comment: "r1", body: "+1", mentions: [] }).event).toBe(
      null,
    );
    // Fill the document up to the limit of threads (the map's entries are what counts).
    docs.threads.transact(() => {
      const map = docs.threads.getMap(THREADS);
      for (let i = map.size; i < MAX_THREADS; i++) map.set(`filler-${i}`, new Y.Map());
    });
    expect(code(() => create(docs, "t2", "delta"))).toBe("COMMENT_LIMIT");
    expect(anchoredTexts(docs.text).has("t2")).toBe(false);
  });

  it("[COM1] a creation sent again marks its text when the thread was stored without its mark (a crash between the two documents)", () => {
    const { server, docs } = pair();
    create(docs, "t1", "gamma");
    server.transact(() => unmarkThread(server, "t1"));
    expect(anchoredTexts(server).has("t1")).toBe(false);
    expect(create(docs, "t1", "gamma").event).toBeNull();
    expect(anchoredTexts(server).get("t1")).toBe("gamma");
    expect(readThreads(docs.threads)).toHaveLength(1);
  });
});

describe("the comment mark in the schema", () => {
  it("[COM2] formatting a thread's text as inline code keeps the thread's mark; code still excludes every formatting mark", () => {
    const comment = schema.marks.comment;
    const code = schema.marks.code;
    if (comment === undefined || code === undefined)
      throw new Error("comment and code marks expected");
    // What ProseMirror does when code is applied over commented text (addMark).
    const marks = code.create().addToSet([comment.create({ thread: "t1" })]);
    expect(marks.map((m) => m.type.name).sort()).toEqual(["code", "comment"]);
    // Every mark but comment (and code itself) is one code excludes: a new mark must be
    // listed in CODE_EXCLUDES or this fails.
    const others = Object.keys(schema.marks).filter(
      (name) => name !== "comment" && name !== "code",
    );
    expect([...CODE_EXCLUDES].sort()).toEqual(others.sort());
    for (const name of others) {
      const other = schema.marks[name];
      if (other === undefined) continue;
      expect(code.excludes(other), name).toBe(true);
    }
  });
});
