/**
 * [COM2] Keeping a thread's mark on text its writer knows it marked
 * (editor/src/comments/keep-marks.ts, server/src/comments/keep.ts), on plain
 * Yjs replicas exchanging updates by hand, so each merge order is exact.
 */
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { MAX_REMEMBERED, MarkKeeper } from "../../editor/src/comments/keep-marks.ts";
import { commentMarkKey, THREADS } from "../../editor/src/comments/model.ts";
import { keepThreadMark, watchThreads } from "../../server/src/comments/keep.ts";
import { applyThreadOp, type Commenter, type ThreadOp } from "../../server/src/comments/threads.ts";
import { FIELD } from "../../server/src/documents/schema.ts";

/** The origin of an "editor write" here, standing for y-tiptap's. */
const WRITE = Symbol("write");
const KEY = commentMarkKey("t1");
const MARK = { thread: "t1" };

/** A replica with one paragraph of text. */
function replica(): { doc: Y.Doc; text: () => Y.XmlText } {
  const doc = new Y.Doc();
  return {
    doc,
    text: () => {
      const paragraph = doc.getXmlFragment(FIELD).get(0) as Y.XmlElement;
      return paragraph.get(0) as Y.XmlText;
    },
  };
}

/** A first replica holding `content` in one paragraph. */
function origin(content: string): { doc: Y.Doc; text: () => Y.XmlText } {
  const r = replica();
  const paragraph = new Y.XmlElement("paragraph");
  paragraph.insert(0, [new Y.XmlText(content)]);
  r.doc.getXmlFragment(FIELD).insert(0, [paragraph]);
  return r;
}

function sync(from: Y.Doc, to: Y.Doc): void {
  Y.applyUpdate(to, Y.encodeStateAsUpdate(from, Y.encodeStateVector(to)));
}

function syncAll(docs: Y.Doc[]): void {
  // Twice: a repair made while receiving reaches the others in the second round.
  for (let round = 0; round < 2; round++) {
    for (const a of docs) for (const b of docs) if (a !== b) sync(a, b);
  }
}

/** The characters thread t1's mark covers, and those it does not. */
function marked(text: Y.XmlText): { marked: string; unmarked: string } {
  let on = "";
  let off = "";
  for (const op of text.toDelta() as Array<{
    insert: unknown;
    attributes?: Record<string, unknown>;
  }>) {
    if (typeof op.insert !== "string") continue;
    if (op.attributes?.[KEY] != null) on += op.insert;
    else off += op.insert;
  }
  return { marked: on, unmarked: off };
}

/**
 * The race: A writes "XY" inside t1's range "cde" (as y-tiptap does with moved text: no
 * markers of its own), while B deletes all of "cde". Returns the replicas, merged.
 */
function race(options: { keep: boolean; threadExists?: boolean }) {
  const server = origin("abcdefgh");
  server.text().format(2, 3, { [KEY]: MARK });
  const a = replica();
  const b = replica();
  sync(server.doc, a.doc);
  sync(server.doc, b.doc);
  const keeper = options.keep
    ? new MarkKeeper(a.doc, {
        isWrite: (transaction) => transaction.origin === WRITE,
        threadExists: () => options.threadExists ?? true,
      })
    : null;
  a.doc.transact(() => a.text().insert(3, "XY"), WRITE);
  expect(marked(a.text()).marked).toBe("cXYde");
  b.text().delete(2, 3);
  syncAll([server.doc, a.doc, b.doc]);
  return { replicas: [server, a, b], keeper };
}

describe("[COM2] text an editor moved keeps its thread's mark", () => {
  it("yjs 13.6.33 still takes the mark off text written inside a range whose rest is deleted at once (why the keeper exists)", () => {
    const { replicas } = race({ keep: false });
    for (const r of replicas) {
      expect(r.text().toString()).not.toContain("<");
      expect(marked(r.text())).toEqual({ marked: "", unmarked: "abXYfgh" });
    }
  });

  it("the writer marks it again, and every replica ends with the same mark on it alone", () => {
    const { replicas, keeper } = race({ keep: true });
    for (const r of replicas) expect(marked(r.text())).toEqual({ marked: "XY", unmarked: "abfgh" });
    expect(keeper?.size).toBe(2);
  });

  it("a fault while keeping marks is reported and never stops the change it observed", () => {
    const server = origin("abcdefgh");
    server.text().format(2, 3, { [KEY]: MARK });
    const a = replica();
    sync(server.doc, a.doc);
    const errors: unknown[] = [];
    new MarkKeeper(a.doc, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => {
        throw new Error("threads unavailable");
      },
      onError: (error) => errors.push(error),
    });
    a.doc.transact(() => a.text().insert(3, "XY"), WRITE);
    const b = replica();
    sync(server.doc, b.doc);
    b.text().delete(2, 3);
    sync(b.doc, a.doc);
    expect(a.text().toString()).toBe("abXYfgh");
    expect(errors).toHaveLength(1);
  });

  it("check() reports a fault instead of throwing it (it runs in the threads provider's `synced`)", () => {
    const server = origin("abcdefgh");
    server.text().format(2, 3, { [KEY]: MARK });
    const a = replica();
    const b = replica();
    sync(server.doc, a.doc);
    sync(server.doc, b.doc);
    let synced = false;
    const errors: unknown[] = [];
    const keeper = new MarkKeeper(a.doc, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => {
        if (!synced) return false;
        throw new Error("threads unavailable");
      },
      onError: (error) => errors.push(error),
    });
    a.doc.transact(() => a.text().insert(3, "XY"), WRITE);
    b.text().delete(2, 3);
    sync(b.doc, a.doc);
    expect(errors).toEqual([]);
    synced = true;
    expect(() => keeper.check()).not.toThrow();
    expect(errors).toHaveLength(1);
  });

  it("never puts back the mark of a thread that no longer exists", () => {
    const { replicas } = race({ keep: true, threadExists: false });
    for (const r of replicas) expect(marked(r.text()).marked).toBe("");
  });

  it("marks again text written at the range's end when both the range's markers are deleted at once", () => {
    // "XY" is written at the range's end (before its end marker); B deletes the range, and Yjs
    // deletes both markers there. Marked again, "XY" has markers of its own on both sides.
    const server = origin("abcdefgh");
    server.text().format(2, 2, { [KEY]: MARK });
    const a = replica();
    const b = replica();
    sync(server.doc, a.doc);
    sync(server.doc, b.doc);
    new MarkKeeper(a.doc, { isWrite: (t) => t.origin === WRITE, threadExists: () => true });
    a.doc.transact(() => a.text().insert(4, "XY"), WRITE);
    expect(marked(a.text()).marked).toBe("cdXY");
    b.text().delete(2, 2);
    b.text().insert(2, "Q");
    syncAll([server.doc, a.doc, b.doc]);
    for (const r of [server, a, b]) {
      expect(marked(r.text())).toEqual({ marked: "XY", unmarked: "abQefgh" });
    }
  });

  it("its own end marker bounds the mark put back: right after the text, not past the deleted text after it (where Yjs' format puts it)", () => {
    // "xy" is written at the end of t1's range "fg"; B deletes "efghij", to the paragraph's end,
    // and C types "q" after "h" at the same time. When A marks "xy" again, Yjs' `format` would
    // put the end marker after the deleted "hij": C's "q", which lands there, would be marked
    // (this test fails with a Y.Text.format-based repair: checked). The keeper's own end
    // marker, right after "xy", leaves "q" unmarked.
    const server = origin("abcdefghij");
    server.text().format(5, 2, { [KEY]: MARK });
    const a = replica();
    const b = replica();
    const c = replica();
    for (const r of [a, b, c]) sync(server.doc, r.doc);
    new MarkKeeper(a.doc, { isWrite: (t) => t.origin === WRITE, threadExists: () => true });
    a.doc.transact(() => a.text().insert(7, "xy"), WRITE);
    expect(marked(a.text()).marked).toBe("fgxy");
    b.text().delete(4, 6);
    c.text().insert(8, "q");
    // A marks "xy" again on receiving B's deletion, before C's "q" arrives.
    sync(b.doc, a.doc);
    expect(marked(a.text())).toEqual({ marked: "xy", unmarked: "abcd" });
    syncAll([server.doc, a.doc, b.doc, c.doc]);
    for (const r of [server, a, b, c]) {
      expect(marked(r.text())).toEqual({ marked: "xy", unmarked: "abcdq" });
    }
  });

  it("remembers text written into a paragraph the same write made (a split)", () => {
    const a = origin("abc");
    a.text().format(0, 3, { [KEY]: MARK });
    const keeper = new MarkKeeper(a.doc, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => true,
    });
    a.doc.transact(() => {
      const paragraph = new Y.XmlElement("paragraph");
      const text = new Y.XmlText();
      paragraph.insert(0, [text]);
      a.doc.getXmlFragment(FIELD).insert(1, [paragraph]);
      text.insert(0, "de", { [KEY]: MARK });
    }, WRITE);
    expect(keeper.size).toBe(2);
  });

  it(`remembers at most ${MAX_REMEMBERED} characters, forgetting the oldest first`, () => {
    const a = origin("");
    const keeper = new MarkKeeper(a.doc, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => true,
    });
    const chunk = "x".repeat(1_000);
    for (let i = 0; i < 30; i++) {
      a.doc.transact(() => a.text().insert(a.text().length, chunk, { [KEY]: MARK }), WRITE);
      expect(keeper.size).toBeLessThanOrEqual(MAX_REMEMBERED);
    }
    expect(keeper.size).toBeGreaterThan(MAX_REMEMBERED - chunk.length);
  });

  it("forgets text once it is deleted, and stops with destroy", () => {
    const a = origin("abc");
    a.text().format(0, 3, { [KEY]: MARK });
    const keeper = new MarkKeeper(a.doc, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => true,
    });
    a.doc.transact(() => a.text().insert(1, "XY"), WRITE);
    expect(keeper.size).toBe(2);
    // Deleted by someone else: forgotten when their change arrives.
    const b = replica();
    sync(a.doc, b.doc);
    b.text().delete(1, 2);
    sync(b.doc, a.doc);
    expect(keeper.size).toBe(0);
    a.doc.transact(() => a.text().insert(1, "Z"), WRITE);
    keeper.destroy();
    expect(keeper.size).toBe(0);
    a.doc.transact(() => a.text().insert(1, "W"), WRITE);
    expect(keeper.size).toBe(0);
  });
});

describe("[COM2] what a keeper remembers, and its work", () => {
  /** A replica with paragraphs "abc" and "def", all under t1's mark, and a keeper of A's writes. */
  function twoParagraphs() {
    const a = new Y.Doc();
    const fragment = a.getXmlFragment(FIELD);
    for (const content of ["abc", "def"]) {
      const paragraph = new Y.XmlElement("paragraph");
      const text = new Y.XmlText(content);
      paragraph.insert(0, [text]);
      fragment.push([paragraph]);
      text.format(0, 3, { [KEY]: MARK });
    }
    const keeper = new MarkKeeper(a, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => true,
    });
    const text = (i: number) => (fragment.get(i) as Y.XmlElement).get(0) as Y.XmlText;
    return { a, fragment, keeper, text };
  }

  it("forgets a deleted paragraph's text at once, deleted by another replica or here", () => {
    const { a, fragment, keeper, text } = twoParagraphs();
    a.transact(() => text(0).insert(1, "XY"), WRITE);
    a.transact(() => text(1).insert(1, "ZW"), WRITE);
    expect(keeper.size).toBe(4);
    // Another replica deletes the second paragraph (Yjs leaves a deleted type out of a
    // transaction's changes, and its text with it): forgotten when the change arrives.
    const b = new Y.Doc();
    sync(a, b);
    b.getXmlFragment(FIELD).delete(1, 1);
    sync(b, a);
    expect(keeper.size).toBe(2);
    // Deleted here, by a write or not.
    fragment.delete(0, 1);
    expect(keeper.size).toBe(0);
  });

  it("forgets the text of a paragraph deleted with the element around it (a list item)", () => {
    const server = new Y.Doc();
    const item = new Y.XmlElement("listItem");
    const paragraph = new Y.XmlElement("paragraph");
    const text = new Y.XmlText("abcdef");
    paragraph.insert(0, [text]);
    item.insert(0, [paragraph]);
    server.getXmlFragment(FIELD).insert(0, [item]);
    text.format(1, 3, { [KEY]: MARK });
    const threads = new Y.Doc();
    threads.getMap(THREADS).set("t1", new Y.Map());
    const keeper = keepThreadMark(server, "t1", () => threads);
    expect(keeper.size).toBe(3);
    const b = new Y.Doc();
    sync(server, b);
    b.getXmlFragment(FIELD).delete(0, 1);
    sync(b, server);
    expect(keeper.size).toBe(0);
  });

  it("typing into a long marked paragraph costs each keystroke a bounded number of visits", () => {
    // A paragraph of 2,000 separate items (each typed at the start), all under t1's mark.
    const server = origin("");
    for (let i = 0; i < 2_000; i++) server.text().insert(0, "x");
    server.text().format(0, 2_000, { [KEY]: MARK });
    const a = replica();
    const b = replica();
    sync(server.doc, a.doc);
    sync(server.doc, b.doc);
    const keeper = new MarkKeeper(a.doc, {
      isWrite: (t) => t.origin === WRITE,
      threadExists: () => true,
    });
    // A types at 200 places all over it: 200 entries.
    for (let i = 0; i < 200; i++) a.doc.transact(() => a.text().insert(i * 10 + 5, "y"), WRITE);
    expect(keeper.size).toBe(200);
    // Then 300 characters in a row, in the middle of the paragraph.
    a.doc.transact(() => a.text().insert(1_000, "z"), WRITE);
    const perKeystroke: number[] = [];
    for (let i = 1; i < 300; i++) {
      const before = keeper.visits;
      a.doc.transact(() => a.text().insert(1_000 + i, "z"), WRITE);
      perKeystroke.push(keeper.visits - before);
    }
    expect(keeper.size).toBe(500);
    expect(Math.max(...perKeystroke)).toBeLessThanOrEqual(4);
    // B's keystrokes and deletions there (no marker changes): as few visits each.
    sync(a.doc, b.doc);
    const remote: number[] = [];
    for (let i = 0; i < 50; i++) {
      b.text().insert(700 + i, "w");
      if (i % 2 === 1) b.text().delete(b.text().length - 1, 1); // the server's "x"
      const before = keeper.visits;
      sync(b.doc, a.doc);
      remote.push(keeper.visits - before);
    }
    expect(Math.max(...remote)).toBeLessThanOrEqual(4);
    expect(keeper.size).toBe(500);
  });
});

describe("[COM2] the server keeps the text it marked", () => {
  it("marks again text an editor deleted the rest of the range around without having seen it", () => {
    const server = origin("abcdef");
    const c = replica();
    const b = replica();
    sync(server.doc, c.doc);
    sync(server.doc, b.doc);
    // C types "Z" inside; the server has it, B does not yet.
    c.text().insert(3, "Z");
    sync(c.doc, server.doc);
    // The server makes thread t1 on "cZd"; B receives the marks, not yet "Z".
    const threads = new Y.Doc();
    threads.getMap(THREADS).set("t1", new Y.Map());
    const marks: Uint8Array[] = [];
    const capture = (update: Uint8Array) => marks.push(update);
    server.doc.on("update", capture);
    server.text().format(2, 3, { [KEY]: MARK });
    server.doc.off("update", capture);
    keepThreadMark(server.doc, "t1", () => threads);
    for (const update of marks) Y.applyUpdate(b.doc, update);
    expect(marked(b.text())).toEqual({ marked: "cd", unmarked: "abef" });
    // B deletes all of the range it sees, and with it the markers.
    b.text().delete(2, 2);
    syncAll([server.doc, c.doc, b.doc]);
    for (const r of [server, c, b])
      expect(marked(r.text())).toEqual({ marked: "Z", unmarked: "abef" });
  });
});

describe("[COM2] a thread deleted on another server instance", () => {
  const ANN: Commenter = { person: { id: "ann", name: "Ann" }, role: "write" };

  /** One instance's copies of the document and its threads document, changed as Comments.apply does. */
  function instance(text: { doc: Y.Doc; text: () => Y.XmlText }) {
    const threads = new Y.Doc();
    /** Applies `op`; returns the text's keeper when it made one (a thread created). */
    const apply = (op: ThreadOp): MarkKeeper | null => {
      let keeper: MarkKeeper | null = null;
      text.doc.transact(() =>
        threads.transact(() => {
          watchThreads(text.doc, threads);
          applyThreadOp({ text: text.doc, threads }, op, ANN, 1_000);
          if (op.op === "create") keeper = keepThreadMark(text.doc, op.thread, () => threads);
        }),
      );
      return keeper;
    };
    return { ...text, threads, apply };
  }

  /** B makes thread t1 on "cdef" (its keeper keeps it), and A, which has it all, deletes it. */
  function deletedOnA() {
    const a = instance(origin("abcdefgh"));
    const b = instance(replica());
    sync(a.doc, b.doc);
    const keeper = b.apply({
      op: "create",
      thread: "t1",
      comment: "c1",
      anchor: { kind: "quote", quote: "cdef" },
      body: "why?",
      mentions: [],
    });
    if (keeper === null) throw new Error("no keeper");
    expect(keeper.size).toBe(4);
    sync(b.doc, a.doc);
    sync(b.threads, a.threads);
    expect(marked(a.text()).marked).toBe("cdef");
    a.apply({ op: "delete-thread", thread: "t1" });
    expect(marked(a.text()).marked).toBe("");
    return { a, b, keeper };
  }

  it("is forgotten on the instance that made it once the deletion reaches its threads document", () => {
    const { a, b, keeper } = deletedOnA();
    sync(a.threads, b.threads);
    expect(keeper.size).toBe(0);
    sync(a.doc, b.doc);
    syncAll([a.doc, b.doc]);
    for (const r of [a, b]) expect(marked(r.text()).marked).toBe("");
  });

  it("has its mark taken off again when the text's unmarking arrived first and the mark was put back", () => {
    const { a, b, keeper } = deletedOnA();
    // The unmarking reaches B's document before the deletion reaches B's threads document (they
    // travel separately between instances): for B the thread still exists, and the mark comes back.
    sync(a.doc, b.doc);
    expect(marked(b.text()).marked).toBe("cdef");
    sync(a.threads, b.threads);
    expect(keeper.size).toBe(0);
    expect(marked(b.text()).marked).toBe("");
    syncAll([a.doc, b.doc]);
    for (const r of [a, b]) expect(marked(r.text())).toEqual({ marked: "", unmarked: "abcdefgh" });
  });
});
