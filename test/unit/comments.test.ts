/**
 * The comment core without a server: which client updates write threads
 * (comments/guard.ts), anchoring by quote and by relative positions
 * (comments/anchor.ts, text.ts), and the operations' rules (threads.ts).
 */
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { readThreads, THREADS } from "../../editor/src/comments/model.ts";
import { resolveAnchor } from "../../server/src/comments/anchor.ts";
import { writesThreads } from "../../server/src/comments/guard.ts";
import { anchoredTexts, flatten } from "../../server/src/comments/text.ts";
import { applyThreadOp, type Commenter } from "../../server/src/comments/threads.ts";
import { replaceContent } from "../../server/src/documents/convert.ts";
import { isCollabError } from "../../server/src/errors.ts";

const ANN: Commenter = { person: { id: "ann", name: "Ann" }, role: "comment" };
const BOB: Commenter = { person: { id: "bob", name: "Bob" }, role: "comment" };

/** A server document with two paragraphs, and a client that has synced it. */
function pair(): { server: Y.Doc; client: Y.Doc } {
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
  return { server, client };
}

/** The update `change` makes on `doc` (what a client would send). */
function updateOf(doc: Y.Doc, change: () => void): Uint8Array {
  let update: Uint8Array | null = null;
  const capture = (bytes: Uint8Array) => {
    update = bytes;
  };
  doc.once("update", capture);
  doc.transact(change);
  if (update === null) throw new Error("the change made no update");
  return update;
}

function create(doc: Y.Doc, id: string, quote: string, by = ANN) {
  return doc.transact(() =>
    applyThreadOp(
      doc,
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

describe("the threads guard", () => {
  it("[COM3] lets content edits through: typing, formatting, deleting, new paragraphs", () => {
    const { server, client } = pair();
    create(server, "t1", "gamma");
    Y.applyUpdate(client, Y.encodeStateAsUpdate(server, Y.encodeStateVector(client)));
    const text = firstText(client);
    for (const change of [
      () => text.insert(3, "xyz"),
      () => text.format(0, 5, { bold: {} }),
      () => text.delete(0, 4),
      () => client.getXmlFragment("default").insert(0, [new Y.XmlElement("paragraph")]),
    ]) {
      const update = updateOf(client, change);
      expect(writesThreads(server, update)).toBe(false);
      Y.applyUpdate(server, update);
    }
  });

  it("[COM3] on a document without threads, an update that names the root is refused, typing is not", () => {
    const { server, client } = pair();
    const typing = updateOf(client, () => firstText(client).insert(0, "threads "));
    expect(writesThreads(server, typing)).toBe(false);
    Y.applyUpdate(server, typing);
    const forged = updateOf(client, () => client.getMap(THREADS).set("t", new Y.Map()));
    expect(writesThreads(server, forged)).toBe(true);
  });

  it("[COM3] a client's sync after the server changed threads is not a write (its delete set holds the server's deletions)", () => {
    const { server, client } = pair();
    create(server, "t1", "gamma");
    server.transact(() => applyThreadOp(server, { op: "resolve", thread: "t1" }, BOB, 1500));
    server.transact(() => applyThreadOp(server, { op: "reopen", thread: "t1" }, BOB, 1600));
    Y.applyUpdate(client, Y.encodeStateAsUpdate(server, Y.encodeStateVector(client)));
    // The client typed offline; its sync step 2 is its state against the server's vector.
    firstText(client).insert(0, "offline ");
    const sync = Y.encodeStateAsUpdate(client, Y.encodeStateVector(server));
    expect(Y.decodeUpdate(sync).ds.clients.size).toBeGreaterThan(0);
    expect(writesThreads(server, sync)).toBe(false);
    // Its whole state, the server's thread items in it, neither.
    expect(writesThreads(server, Y.encodeStateAsUpdate(client))).toBe(false);
  });

  it("[COM3] refuses a new thread, a key in an existing one, a deleted thread, and nested content", () => {
    const { server, client } = pair();
    create(server, "t1", "gamma");
    Y.applyUpdate(client, Y.encodeStateAsUpdate(server, Y.encodeStateVector(client)));
    const attempts: Array<[string, (threads: Y.Map<Y.Map<unknown>>) => void]> = [
      ["a new thread", (threads) => threads.set("forged", new Y.Map())],
      ["a comment forged into a thread", (threads) => threads.get("t1")?.set("c:x", { b: 1 })],
      ["a thread resolved", (threads) => threads.get("t1")?.set("status", "resolved")],
      ["a thread deleted", (threads) => threads.delete("t1")],
      [
        "a nested type inside a new thread",
        (threads) => {
          const forged = new Y.Map<unknown>();
          forged.set("list", new Y.Array());
          threads.set("nested", forged);
        },
      ],
    ];
    for (const [what, change] of attempts) {
      // Each attempt on its own copy of the client.
      const copy = new Y.Doc();
      Y.applyUpdate(copy, Y.encodeStateAsUpdate(client));
      const update = updateOf(copy, () => change(copy.getMap<Y.Map<unknown>>(THREADS)));
      expect(writesThreads(server, update), what).toBe(true);
    }
  });
});

describe("anchors", () => {
  it("[COM5] a quote matches once, with a prefix or suffix to choose; across paragraphs with \\n", () => {
    const { server } = pair();
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
    create(server, "t1", "gamma\nbeta");
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
    const { server } = pair();
    create(server, "t1", "gamma", ANN);
    const run = (op: Parameters<typeof applyThreadOp>[1], by: Commenter) =>
      server.transact(() => applyThreadOp(server, op, by, 2000));
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
    expect(readThreads(server)).toEqual([]);
    expect(anchoredTexts(server).size).toBe(0);
  });
});

describe("the threads guard against hostile updates", () => {
  it("[COM3] a delete set naming 2^30 clocks of a client the document has never seen is checked at once", () => {
    const { server } = pair();
    create(server, "t1", "gamma");
    // A Yjs v1 update with no structs and one deleted range: client 424243, clocks 0 to 2^30.
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, 424_243);
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, 0);
    encoding.writeVarUint(encoder, 2 ** 30);
    const update = encoding.toUint8Array(encoder);
    expect(Y.decodeUpdate(update).ds.clients.get(424_243)).toEqual([{ clock: 0, len: 2 ** 30 }]);
    // One step per clock would not finish within the test's timeout.
    expect(writesThreads(server, update)).toBe(false);
  });
});
