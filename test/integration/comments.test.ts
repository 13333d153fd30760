/**
 * Comments ([COM1]-[COM6] in SPEC.md), on a real server with LevelDB, the
 * real Hocuspocus provider and y-websocket client: the REST API (every
 * route, every error status, answers checked against the OpenAPI
 * description), live delivery to connected editors, webhooks, and the
 * server's enforcement: a `comment` token comments but never changes the
 * content, authors cannot be forged, others' comments cannot be edited, and
 * no client writes a threads document.
 */

import { join } from "node:path";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { commentClient } from "../../editor/src/comments/client.ts";
import {
  commentMarkKey,
  readThreads,
  THREADS,
  threadsDocumentName,
} from "../../editor/src/comments/model.ts";
import { mintToken, type Permission } from "../../server/src/auth/tokens.ts";
import { exportStore, importStore } from "../../server/src/persistence/transfer.ts";
import { acknowledged, connect, nodeSocket, synced } from "../helpers/clients.ts";
import { type Api, checkedApi, json, publishedSpec } from "../helpers/openapi.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";
import { signedReceiver } from "../helpers/webhook-receiver.ts";
import { yws, ywsSynced } from "../helpers/y-websocket.ts";

const SECRET = "comments-test-secret-0123456789";
const API_SECRET = "comments-api-secret-0123456789";
const HOOK_SECRET = "hook-secret-16chars";
const SOON = { timeout: 10_000, interval: 10 };
const DOC = "notes";
const TEXT = "The quick brown fox jumps over the lazy dog.\n\nA second paragraph about the fox.";

beforeAll(async () => {
  await publishedSpec();
});

function token(sub: string, perm: Permission, name?: string): Promise<string> {
  return mintToken({
    secret: SECRET,
    userId: sub,
    ...(name === undefined ? {} : { name }),
    docs: ["*"],
    perm,
    ttl: "1h",
  });
}

interface Setup {
  readonly running: RunningServer;
  readonly admin: Api;
  readonly hooks: Awaited<ReturnType<typeof signedReceiver>>;
}

/** A server with tokens and the API secret, a webhook receiver, and the document written. */
async function setup(): Promise<Setup> {
  const hooks = await signedReceiver(HOOK_SECRET);
  const running = await startServer({
    config: {
      authSecret: SECRET,
      apiSecret: API_SECRET,
      webhookUrls: [hooks.url],
      webhookSecret: HOOK_SECRET,
      webhookDebounceMs: 50,
    },
  });
  const admin = checkedApi(running.address.url, { token: API_SECRET });
  const put = await admin.call("PUT", `/documents/${DOC}`, { body: TEXT, type: "text/markdown" });
  expect(put.status).toBe(201);
  return { running, admin, hooks };
}

/** The threads document each provider of {@link provider} opened beside its document. */
const threadsOf = new WeakMap<HocuspocusProvider, HocuspocusProvider>();

/** The threads of the document `client` has open, as its threads document holds them. */
function threads(client: HocuspocusProvider) {
  const companion = threadsOf.get(client);
  if (companion === undefined) throw new Error("no threads document open");
  return readThreads(companion.document);
}

/**
 * A provider with `tokenValue` on its own socket, with the document's threads document open
 * beside it on the same socket, as the editor opens them.
 */
function provider(running: RunningServer, tokenValue: string, document = new Y.Doc(), name = DOC) {
  const socket = new HocuspocusProviderWebsocket({
    url: running.address.wsUrl,
    WebSocketPolyfill: nodeSocket(),
  });
  const client = new HocuspocusProvider({
    websocketProvider: socket,
    name,
    document,
    token: tokenValue,
  });
  client.attach();
  const companion = new HocuspocusProvider({
    websocketProvider: socket,
    name: threadsDocumentName(name),
    document: new Y.Doc(),
    token: tokenValue,
  });
  companion.attach();
  threadsOf.set(client, companion);
  onTestFinished(() => {
    companion.destroy();
    client.destroy();
    socket.destroy();
  });
  return client;
}

/** The text of the stored document's content (every text node, in order). */
async function storedContent(running: RunningServer): Promise<string> {
  const doc = new Y.Doc();
  for (const update of (await running.server.store.load(DOC))?.updates ?? []) {
    Y.applyUpdate(doc, update);
  }
  return doc.getXmlFragment("default").toString();
}

type ThreadJson = {
  id: string;
  status: string;
  anchor: { quote: string; text: string };
  author: { id: string; name: string };
  comments: Array<{ id: string; body: string; author: { id: string }; mentions: unknown[] }>;
};

describe("comments over the REST API", () => {
  it("[COM1] [COM5] every route: create by quote, reply, edit, resolve, reopen, list, delete; live for editors; webhooks", async () => {
    const { running, admin, hooks } = await setup();
    const editor = provider(running, await token("ann", "write", "Ann"));
    await synced(editor);
    const ann = checkedApi(running.address.url, { token: await token("ann", "write", "Ann") });

    const created = await ann.call(
      "POST",
      `/documents/${DOC}/threads`,
      json({
        anchor: { quote: "fox", prefix: "brown ", suffix: " jumps" },
        body: "Which fox? @Bob",
        mentions: [{ id: "bob", label: "Bob" }],
      }),
    );
    expect(created.status).toBe(201);
    const thread = (created.body as { thread: ThreadJson }).thread;
    expect(thread).toMatchObject({
      status: "open",
      anchor: { quote: "fox", text: "fox" },
      author: { id: "ann", name: "Ann" },
      comments: [{ body: "Which fox? @Bob", author: { id: "ann" } }],
    });

    // The connected editor has it at once: the thread, and the mark on its text.
    await vi.waitFor(() => {
      expect(threads(editor).map((t) => t.id)).toEqual([thread.id]);
    }, SOON);
    const marked = editor.document
      .getXmlFragment("default")
      .toArray()
      .flatMap((node) => (node instanceof Y.XmlElement ? node.toArray() : []))
      .flatMap((text) =>
        text instanceof Y.XmlText
          ? (text.toDelta() as Array<{ insert: string; attributes?: Record<string, unknown> }>)
          : [],
      )
      .filter((op) => op.attributes?.[commentMarkKey(thread.id)] !== undefined)
      .map((op) => op.insert);
    expect(marked).toEqual(["fox"]);

    const bob = checkedApi(running.address.url, { token: await token("bob", "comment", "Bob") });
    const reply = await bob.call(
      "POST",
      `/documents/${DOC}/threads/${thread.id}/comments`,
      json({ body: "The brown one.", mentions: ["ann"] }),
    );
    expect(reply.status).toBe(201);
    const replyId = (reply.body as { comment: { id: string } }).comment.id;
    const edited = await bob.call(
      "PATCH",
      `/documents/${DOC}/threads/${thread.id}/comments/${replyId}`,
      json({ body: "The quick brown one." }),
    );
    expect(edited.status).toBe(200);
    expect((edited.body as { comment: { edited: string | null } }).comment.edited).not.toBeNull();

    expect(
      (
        await bob.call(
          "PATCH",
          `/documents/${DOC}/threads/${thread.id}`,
          json({ status: "resolved" }),
        )
      ).status,
    ).toBe(200);
    expect((await ann.call("GET", `/documents/${DOC}/threads`)).body).toEqual({ threads: [] });
    const resolved = await ann.call("GET", `/documents/${DOC}/threads?status=resolved`);
    expect((resolved.body as { threads: ThreadJson[] }).threads.map((t) => t.status)).toEqual([
      "resolved",
    ]);
    await vi.waitFor(() => expect(threads(editor)[0]?.status).toBe("resolved"), SOON);
    expect(
      (await ann.call("PATCH", `/documents/${DOC}/threads/${thread.id}`, json({ status: "open" })))
        .status,
    ).toBe(200);
    const one = await ann.call("GET", `/documents/${DOC}/threads/${thread.id}`);
    expect((one.body as { thread: ThreadJson }).thread).toMatchObject({
      status: "open",
      comments: [{ body: "Which fox? @Bob" }, { body: "The quick brown one." }],
    });

    // Deleting the reply, then the thread: its mark goes with it.
    expect(
      (await bob.call("DELETE", `/documents/${DOC}/threads/${thread.id}/comments/${replyId}`))
        .status,
    ).toBe(204);
    expect((await ann.call("DELETE", `/documents/${DOC}/threads/${thread.id}`)).status).toBe(204);
    await vi.waitFor(() => expect(threads(editor)).toEqual([]), SOON);
    expect(await storedContent(running)).not.toContain("comment--");
    expect((await admin.call("GET", `/documents/${DOC}/threads?status=all`)).body).toEqual({
      threads: [],
    });

    await vi.waitFor(() => {
      expect(hooks.received.map((event) => event.type)).toEqual(
        expect.arrayContaining([
          "comment.created",
          "comment.updated",
          "comment.deleted",
          "thread.resolved",
          "thread.reopened",
          "thread.deleted",
        ]),
      );
    }, SOON);
    const first = hooks.received.find((event) => event.type === "comment.created");
    expect(first?.valid).toBe(true);
    expect(first?.data).toMatchObject({
      document: DOC,
      thread: { id: thread.id, text: "fox", quote: "fox" },
      comment: { body: "Which fox? @Bob" },
      author: { id: "ann", name: "Ann" },
      mentions: ["bob"],
    });
    const second = hooks.received.filter((event) => event.type === "comment.created")[1];
    expect(second?.data).toMatchObject({ author: { id: "bob" }, mentions: ["ann"] });
  });

  it("[COM5] errors: 400, 401, 403, 404, 409, 422", async () => {
    const { running, admin } = await setup();
    const anonymous = checkedApi(running.address.url);
    const reader = checkedApi(running.address.url, { token: await token("rita", "read") });
    const bob = checkedApi(running.address.url, { token: await token("bob", "comment") });
    const path = `/documents/${DOC}/threads`;

    expect((await anonymous.call("GET", path)).status).toBe(401);
    expect((await reader.call("GET", path)).status).toBe(200);
    expect(
      (await reader.call("POST", path, json({ anchor: { quote: "fox" }, body: "x" }))).status,
    ).toBe(403);
    expect(
      (await bob.call("POST", path, json({ anchor: { quote: "fox" }, body: "" }))).status,
    ).toBe(400);
    expect((await bob.call("POST", path, json({ body: "no anchor" }))).status).toBe(400);
    expect((await bob.call("POST", path, { body: "{", type: "application/json" })).status).toBe(
      400,
    );
    expect(
      (await bob.call("POST", path, json({ anchor: { quote: "fox" }, body: "which?" }))).status,
    ).toBe(409);
    expect(
      (await bob.call("POST", path, json({ anchor: { quote: "wolf" }, body: "?" }))).status,
    ).toBe(422);
    expect(
      (await bob.call("POST", path, json({ anchor: { quote: "fox", prefix: "nope " }, body: "?" })))
        .status,
    ).toBe(422);
    // Forged author: a token writes as its own user only.
    expect(
      (
        await bob.call(
          "POST",
          path,
          json({ anchor: { quote: "lazy" }, body: "hi", author: { id: "ann", name: "Ann" } }),
        )
      ).status,
    ).toBe(403);
    expect((await bob.call("GET", "/documents/missing/threads")).status).toBe(404);
    expect((await bob.call("GET", `${path}/nope`)).status).toBe(404);
    expect((await bob.call("PATCH", `${path}/nope`, json({ status: "resolved" }))).status).toBe(
      404,
    );
    expect((await bob.call("PATCH", `${path}/nope`, json({ status: "shut" }))).status).toBe(400);

    // Someone else's comment: neither edited nor deleted; the API secret may delete it.
    const made = await bob.call("POST", path, json({ anchor: { quote: "lazy" }, body: "Lazy?" }));
    const { thread, comment } = made.body as { thread: ThreadJson; comment: { id: string } };
    const ann = checkedApi(running.address.url, { token: await token("ann", "comment") });
    const commentPath = `${path}/${thread.id}/comments/${comment.id}`;
    expect((await ann.call("PATCH", commentPath, json({ body: "Mine now" }))).status).toBe(403);
    expect((await ann.call("DELETE", commentPath)).status).toBe(403);
    expect((await ann.call("DELETE", `${path}/${thread.id}`)).status).toBe(403);
    expect((await bob.call("DELETE", `${path}/${thread.id}/comments/unknown`)).status).toBe(404);
    expect((await admin.call("DELETE", commentPath)).status).toBe(204);
    // Its only comment gone, the thread is gone too.
    expect((await bob.call("GET", `${path}/${thread.id}`)).status).toBe(404);
  });
});

describe("comments kept with their document", () => {
  it("[COM1] export and import carry threads byte for byte; restoring an older version keeps them", async () => {
    const { running, admin } = await setup();
    const path = `/documents/${DOC}`;
    const version = await admin.call("POST", `${path}/versions`, json({ name: "before comments" }));
    expect(version.status).toBe(201);
    const versionId = (version.body as { id: string }).id;
    const made = await admin.call(
      "POST",
      `${path}/threads`,
      json({ anchor: { quote: "lazy" }, body: "Lazy?", author: { id: "ann", name: "Ann" } }),
    );
    expect(made.status).toBe(201);
    await admin.call(
      "POST",
      `${path}/threads/${(made.body as { thread: ThreadJson }).thread.id}/comments`,
      json({ body: "Sleepy.", author: { id: "bob", name: "Bob" } }),
    );
    const listed = (await admin.call("GET", `${path}/threads`)).body;

    // Export, then import into a new store: the threads read back the same.
    const file = join(running.dataDir, "..", `export-${Date.now()}.jsonl`);
    await running.server.store.flush();
    // The threads document goes with its document, and counts as part of it.
    const progress: Array<[number, number]> = [];
    const report = await exportStore(running.server.store, file, (done, total) =>
      progress.push([done, total]),
    );
    expect(report.documents).toBe(1);
    expect(progress).toEqual([
      [0, 1],
      [1, 1],
    ]);
    const target = await startServer({ config: { apiSecret: API_SECRET, authSecret: SECRET } });
    expect((await importStore(target.server.store, file)).documents).toBe(1);
    const imported = checkedApi(target.address.url, { token: API_SECRET });
    expect((await imported.call("GET", `${path}/threads`)).body).toEqual(listed);
    const stored = async (store: typeof running.server.store) => {
      const doc = new Y.Doc();
      const name = threadsDocumentName(DOC);
      for (const update of (await store.load(name))?.updates ?? []) Y.applyUpdate(doc, update);
      return { map: doc.getMap(THREADS).toJSON(), state: Y.encodeStateAsUpdate(doc) };
    };
    const source = await stored(running.server.store);
    expect(Object.keys(source.map)).toHaveLength(1);
    expect(await stored(target.server.store)).toEqual(source);

    // A version from before the thread: the text goes back, the thread stays (detached).
    expect((await admin.call("POST", `${path}/versions/${versionId}/restore`)).status).toBe(200);
    const after = (await admin.call("GET", `${path}/threads`)).body as { threads: ThreadJson[] };
    expect(after.threads).toHaveLength(1);
    expect(after.threads[0]?.comments.map((c) => c.body)).toEqual(["Lazy?", "Sleepy."]);
    expect(after.threads[0]?.anchor).toEqual({ quote: "lazy", text: "" });
  });
});

describe("comments deleted and restored with their document", () => {
  it("[COM1] [PERS24] deleting a document closes its threads document and trashes it; a new document of the name starts without threads; a restore brings them back", async () => {
    const { running, admin } = await setup();
    const path = `/documents/${DOC}`;
    const made = await admin.call(
      "POST",
      `${path}/threads`,
      json({ anchor: { quote: "lazy" }, body: "Lazy?", author: { id: "ann", name: "Ann" } }),
    );
    expect(made.status).toBe(201);
    const editor = provider(running, await token("ann", "write", "Ann"));
    await synced(editor);
    const companion = threadsOf.get(editor) as HocuspocusProvider;
    await vi.waitFor(() => expect(threads(editor)).toHaveLength(1), SOON);
    const closed = new Promise<string>((resolve) =>
      companion.on("close", ({ event }: { event: { reason: string } }) => resolve(event.reason)),
    );

    expect((await admin.call("DELETE", path)).status).toBe(200);
    expect(await closed).toContain("document-deleted");
    expect(await running.server.store.load(threadsDocumentName(DOC))).toBeNull();
    expect((await admin.call("GET", `${path}/threads`)).status).toBe(404);

    // The name again: a new document, with no threads of the old one.
    const again = await admin.call("PUT", path, { body: "The lazy cat.", type: "text/markdown" });
    expect(again.status).toBe(201);
    expect((await admin.call("GET", `${path}/threads`)).body).toEqual({ threads: [] });

    // The old one restored under another name has its thread, on its text.
    const restored = await admin.call("POST", `/trash/${DOC}/restore`, json({ as: "restored" }));
    expect(restored.status).toBe(200);
    const listed = (await admin.call("GET", "/documents/restored/threads")).body as {
      threads: ThreadJson[];
    };
    expect(listed.threads.map((t) => [t.anchor.quote, t.anchor.text])).toEqual([["lazy", "lazy"]]);
    editor.destroy();
  });
});

describe("threads stored the first way", () => {
  it("[COM1] threads kept in the document's own Y.Doc (before threads documents) are moved to its threads document when it is read or opened", async () => {
    const { running, admin } = await setup();
    const opened = "notes-opened";
    expect(
      (await admin.call("PUT", `/documents/${opened}`, { body: TEXT, type: "text/markdown" }))
        .status,
    ).toBe(201);
    for (const name of [DOC, opened]) await writeLegacyThread(running, name);

    // Read through the API: moved, with its text.
    const listed = (await admin.call("GET", `/documents/${DOC}/threads`)).body as {
      threads: ThreadJson[];
    };
    expect(listed.threads.map((t) => [t.id, t.anchor.text, t.comments[0]?.body])).toEqual([
      ["old", "lazy", "From before."],
    ]);
    // Opened in an editor first: moved on load; the editor sees it, and the old map is empty.
    const editor = provider(running, await token("ann", "write", "Ann"), new Y.Doc(), opened);
    await synced(editor);
    await vi.waitFor(() => expect(threads(editor).map((t) => t.id)).toEqual(["old"]), SOON);
    await vi.waitFor(() => expect(editor.document.getMap(THREADS).size).toBe(0), SOON);
  });
});

/** Stores in `name` a thread as the first design did: in a root map of its own Y.Doc, with its mark. */
async function writeLegacyThread(running: RunningServer, name: string): Promise<void> {
  await running.server.store.flush();
  const doc = new Y.Doc();
  for (const update of (await running.server.store.load(name))?.updates ?? []) {
    Y.applyUpdate(doc, update);
  }
  let captured: Uint8Array | null = null;
  doc.once("update", (update: Uint8Array) => {
    captured = update;
  });
  doc.transact(() => {
    const thread = new Y.Map<unknown>();
    thread.set("id", "old");
    thread.set("author", { id: "ann", name: "Ann" });
    thread.set("created", 1_700_000_000_000);
    thread.set("quote", "lazy");
    thread.set("status", "open");
    thread.set("c:old1", {
      id: "old1",
      author: { id: "ann", name: "Ann" },
      body: "From before.",
      mentions: [],
      created: 1_700_000_000_000,
      edited: null,
    });
    doc.getMap(THREADS).set("old", thread);
    const text = (doc.getXmlFragment("default").get(0) as Y.XmlElement).get(0) as Y.XmlText;
    text.format(text.toString().indexOf("lazy"), 4, { [commentMarkKey("old")]: { thread: "old" } });
  });
  const update = captured as Uint8Array | null;
  if (update === null) throw new Error("no update");
  await running.server.store.append(name, update);
}

describe("comments over the WebSocket", () => {
  it("[COM3] [COM4] a comment token comments through requests; its content edits are refused and never stored", async () => {
    const { running } = await setup();
    const before = await storedContent(running);
    const commenter = provider(running, await token("carl", "comment", "Carl"));
    await synced(commenter);
    const client = commentClient(commenter);
    onTestFinished(() => client.destroy());

    // The editor's way: relative positions of a selection ("brown").
    const paragraph = commenter.document.getXmlFragment("default").get(0) as Y.XmlElement;
    const text = paragraph.get(0) as Y.XmlText;
    const at = text.toString().indexOf("brown");
    const anchor = {
      start: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, at)),
      end: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, at + 5)),
    };
    await client.send(
      {
        op: "create",
        thread: "t1",
        comment: "c1",
        anchor,
        body: "Brown?",
        mentions: [],
      },
      // Ignored with tokens: the author is the token's user.
      { id: "mallory", name: "Mallory" },
    );
    await vi.waitFor(
      () =>
        expect(threads(commenter)).toMatchObject([
          { id: "t1", quote: "brown", author: { id: "carl", name: "Carl" } },
        ]),
      SOON,
    );

    // A content edit from this connection is refused: never stored, never relayed.
    const watcher = provider(running, await token("wendy", "write"));
    await synced(watcher);
    text.insert(0, "VANDAL ");
    await client.send({
      op: "reply",
      thread: "t1",
      comment: "c2",
      body: "still here",
      mentions: [],
    });
    await vi.waitFor(() => expect(threads(watcher)[0]?.comments).toHaveLength(2), SOON);
    expect(watcher.document.getXmlFragment("default").toString()).not.toContain("VANDAL");
    const stored = await storedContent(running);
    expect(stored).not.toContain("VANDAL");
    expect(stored).toContain("comment--");
    expect(before).not.toContain("comment--");

    // Another user's comment: refused, with a reason.
    const dana = provider(running, await token("dana", "comment", "Dana"));
    await synced(dana);
    const danaClient = commentClient(dana);
    onTestFinished(() => danaClient.destroy());
    await expect(
      danaClient.send({ op: "edit", thread: "t1", comment: "c1", body: "forged", mentions: [] }),
    ).rejects.toMatchObject({ code: "COMMENT_FORBIDDEN" });
    await expect(
      danaClient.send({ op: "delete-comment", thread: "t1", comment: "c2" }),
    ).rejects.toMatchObject({ code: "COMMENT_FORBIDDEN" });
    // Anyone who may comment resolves.
    await danaClient.send({ op: "resolve", thread: "t1" });
    await vi.waitFor(
      () => expect(threads(dana)[0]?.statusBy).toEqual({ id: "dana", name: "Dana" }),
      SOON,
    );

    // Sent again (an answer lost in a reconnect): applied once.
    await client.send({
      op: "reply",
      thread: "t1",
      comment: "c2",
      body: "still here",
      mentions: [],
    });
    expect(threads(commenter)[0]?.comments).toHaveLength(2);
  });

  it("[COM3] read may not comment; no client writes a threads document, over either protocol", async () => {
    const { running, admin } = await setup();
    const reader = provider(running, await token("rita", "read"));
    await synced(reader);
    const readerClient = commentClient(reader);
    onTestFinished(() => readerClient.destroy());
    await expect(readerClient.send({ op: "resolve", thread: "anything" })).rejects.toMatchObject({
      code: "COMMENT_FORBIDDEN",
    });
    const bob = checkedApi(running.address.url, { token: await token("bob", "comment") });
    const made = await bob.call(
      "POST",
      `/documents/${DOC}/threads`,
      json({ anchor: { quote: "lazy" }, body: "Lazy?" }),
    );
    expect(made.status).toBe(201);
    const id = (made.body as { thread: ThreadJson }).thread.id;

    // A writer's client forges a thread and deletes the real one in its threads document: its
    // connection to that document is read-only, so nothing of it is applied, stored or relayed.
    const forger = provider(running, await token("eve", "write"));
    await synced(forger);
    const forgerThreads = threadsOf.get(forger) as HocuspocusProvider;
    await synced(forgerThreads);
    expect(forgerThreads.authorizedScope).toBe("readonly");
    forgerThreads.document.transact(() => {
      const forged = new Y.Map<unknown>();
      forged.set("id", "forged");
      forged.set("author", { id: "ann", name: "Ann" });
      forged.set("created", 1);
      const map = forgerThreads.document.getMap(THREADS);
      map.set("forged", forged);
      map.delete(id);
    });
    // Its edit of the text, after that on the same socket, is handled after it.
    forger.document.getXmlFragment("default").insert(0, [new Y.XmlElement("paragraph")]);
    await acknowledged(forger);

    // A y-websocket client on the same document keeps syncing content and sees the marks;
    // on the threads document it reads, and its forgeries go nowhere either.
    const ydoc = new Y.Doc();
    const ywsClient = yws(running, DOC, { doc: ydoc, token: await token("yan", "write") });
    await ywsSynced(ywsClient);
    expect(ydoc.getXmlFragment("default").toString()).toContain(commentMarkKey(id));
    const yText = (ydoc.getXmlFragment("default").get(1) as Y.XmlElement).get(0) as Y.XmlText;
    yText.insert(0, "Edited over y-websocket. ");
    const ythreads = new Y.Doc();
    const ywsThreads = yws(running, threadsDocumentName(DOC), {
      doc: ythreads,
      token: await token("yan", "write"),
    });
    await ywsSynced(ywsThreads);
    expect(readThreads(ythreads).map((t) => t.id)).toEqual([id]);
    ythreads.getMap(THREADS).delete(id);
    ywsThreads.awareness.setLocalStateField("user", { name: "Yan" });
    const watcher = connect({
      url: running.address.wsUrl,
      name: threadsDocumentName(DOC),
      token: await token("wendy", "read"),
    });
    // The server handles a socket's messages in order: once its presence is seen, the
    // deletion before it was handled (and refused).
    await vi.waitFor(() => {
      const states = [...(watcher.awareness?.getStates().values() ?? [])];
      expect(states.some((state) => (state.user as { name?: string })?.name === "Yan")).toBe(true);
    }, SOON);
    const writer = provider(running, await token("wendy", "write"));
    await synced(writer);
    await vi.waitFor(
      () => expect(writer.document.getXmlFragment("default").toString()).toContain("y-websocket"),
      SOON,
    );
    expect(threads(writer).map((t) => t.id)).toEqual([id]);
    const listed = await admin.call("GET", `/documents/${DOC}/threads`);
    expect((listed.body as { threads: ThreadJson[] }).threads.map((t) => t.id)).toEqual([id]);
    await running.server.store.flush();
    const stored = new Y.Doc();
    const name = threadsDocumentName(DOC);
    for (const update of (await running.server.store.load(name))?.updates ?? []) {
      Y.applyUpdate(stored, update);
    }
    expect(readThreads(stored).map((t) => t.id)).toEqual([id]);
    ywsThreads.destroy();
    ywsClient.destroy();
    await acknowledged(writer);
  });
});
