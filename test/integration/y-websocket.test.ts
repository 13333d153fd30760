/**
 * y-websocket compatibility against a real server: the stock y-websocket
 * client (`WebsocketProvider`) at `/yjs/<name>` next to the stock Hocuspocus
 * provider on the same documents (YWS rules in SPEC.md).
 */
import { request as httpRequest } from "node:http";
import type { HocuspocusProvider } from "@hocuspocus/provider";
import * as encoding from "lib0/encoding";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import type { Awareness } from "y-protocols/awareness";
import type { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { createCollabServer } from "../../server/src/app.ts";
import { mintToken } from "../../server/src/auth/tokens.ts";
import { createLogger } from "../../server/src/observability/logger.ts";
import { SyncType } from "../../server/src/protocol/messages.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { expectConverged } from "../helpers/converge.ts";
import { type RunningServer, startServer, tempDir } from "../helpers/server.ts";
import { rawSocket } from "../helpers/wire.ts";
import { finalClose, yws, ywsSynced } from "../helpers/y-websocket.ts";

const SOON = { timeout: 10_000, interval: 10 };

/** Names in an awareness, of the states that carry a user. */
function names(awareness: Awareness | null): string[] {
  return [...(awareness?.getStates().values() ?? [])]
    .map((state) => (state.user as { name?: string } | undefined)?.name)
    .filter((name) => name !== undefined)
    .sort();
}

/** A y-websocket sync update frame (no document address). */
function plainUpdate(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  encoding.writeVarUint(encoder, SyncType.Update);
  encoding.writeVarUint8Array(encoder, update);
  return encoding.toUint8Array(encoder);
}

/** Status and body of an upgrade request to `path`. */
function upgrade(server: RunningServer, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      host: server.address.host,
      port: server.address.port,
      path,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    request.on("upgrade", (_response, socket) => {
      socket.destroy();
      resolve({ status: 101, body: "" });
    });
    request.on("response", (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

/** A y-websocket client and a Hocuspocus provider on `name`, both synced. */
async function pair(server: RunningServer, name: string) {
  const plain = yws(server, encodeURIComponent(name));
  const hocus = connect({ url: server.address.wsUrl, name });
  await Promise.all([ywsSynced(plain), synced(hocus)]);
  return { plain, hocus };
}

/** Proves `plain` and `hocus` still sync both ways. */
async function stillSyncing(plain: WebsocketProvider, hocus: HocuspocusProvider, text: string) {
  plain.doc.getText("text").insert(0, `${text} from y-websocket;`);
  hocus.document.getText("text").insert(0, `${text} from hocuspocus;`);
  await vi.waitFor(() => {
    expect(hocus.document.getText("text").toString()).toContain(`${text} from y-websocket;`);
    expect(plain.doc.getText("text").toString()).toContain(`${text} from hocuspocus;`);
  }, SOON);
  await acknowledged(hocus);
}

describe("y-websocket compatibility", () => {
  it("[YWS1] a y-websocket client and a Hocuspocus provider editing one Y.Text concurrently converge, and it is stored", async () => {
    const dataDir = await tempDir();
    const first = await startServer({ dataDir });
    const { plain, hocus } = await pair(first, "mixed");
    const a = plain.doc.getText("text");
    const b = hocus.document.getText("text");
    const inserted: string[] = [];
    for (let n = 0; n < 40; n++) {
      a.insert(n % 2 === 0 ? 0 : a.length, `[y${n}]`);
      b.insert(n % 3 === 0 ? 0 : b.length, `[h${n}]`);
      inserted.push(`[y${n}]`, `[h${n}]`);
      // Let the two streams cross in flight rather than arrive as two blocks.
      if (n % 5 === 4) await new Promise((resolve) => setImmediate(resolve));
    }
    await vi.waitFor(() => expectConverged([plain.doc, hocus.document]), SOON);
    await acknowledged(hocus);
    for (const piece of inserted) expect(a.toString()).toContain(piece);
    expect(a.length).toBe(inserted.join("").length);
    // The stored log rebuilds to the same document...
    await first.server.store.flush();
    const stored = await first.server.store.load("mixed");
    expectConverged([plain.doc, hocus.document], stored?.updates);
    const expected = a.toString();
    plain.destroy();
    hocus.destroy();
    await first.server.close();

    // ...and a y-websocket client gets it back after a restart on the same directory.
    const second = await startServer({ dataDir });
    const reader = yws(second, "mixed");
    await ywsSynced(reader);
    expect(reader.doc.getText("text").toString()).toBe(expected);
  });

  it("[YWS1] two y-websocket clients on one document converge through the server", async () => {
    const server = await startServer();
    const one = yws(server, "pair");
    const two = yws(server, "pair");
    await Promise.all([ywsSynced(one), ywsSynced(two)]);
    for (let n = 0; n < 20; n++) {
      one.doc.getText("text").insert(0, `a${n}`);
      two.doc.getMap("map").set(`b${n}`, n);
    }
    await vi.waitFor(() => expectConverged([one.doc, two.doc]), SOON);
    expect(two.doc.getText("text").length).toBe(one.doc.getText("text").length);
    expect(one.doc.getMap("map").size).toBe(20);
    expect(server.server.hocuspocus.documents.get("pair")?.getConnectionsCount()).toBe(2);
  });

  it("[YWS1] a name with spaces, slashes and unicode round-trips through URL encoding", async () => {
    const server = await startServer();
    const name = "Plans 2025/Café ✓ 日本語";
    const { plain, hocus } = await pair(server, name);
    await stillSyncing(plain, hocus, "unicode");
    expect([...server.server.hocuspocus.documents.keys()]).toEqual([name]);
    await server.server.store.flush();
    expect((await server.server.store.load(name))?.updates.length).toBeGreaterThan(0);
  });

  it("[YWS1] ?token= is checked like a provider's token: a refusal closes with 4403 for good, read-only edits go nowhere", async () => {
    const secret = "y-websocket-test-secret-of-32-characters";
    const server = await startServer({ config: { authSecret: secret } });
    const mint = (perm: "read" | "write", docs = ["guarded"]) =>
      mintToken({ secret, userId: perm, docs, perm, ttl: "1h" });

    const writer = yws(server, "guarded", { token: await mint("write") });
    const hocus = connect({
      url: server.address.wsUrl,
      name: "guarded",
      token: await mint("write"),
    });
    await Promise.all([ywsSynced(writer), synced(hocus)]);
    await stillSyncing(writer, hocus, "authorised");

    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    for (const [token, reason] of [
      [undefined, "token-missing: this server needs an access token"],
      ["nope", "token-invalid: it is not a JWT"],
      [await mint("write", ["other"]), "access-denied: the token does not grant this document"],
    ] as const) {
      const denied = yws(server, "guarded", token === undefined ? {} : { token });
      expect(await finalClose(denied)).toEqual({ code: 4403, reason });
      expect(denied.shouldConnect).toBe(false);
      expect(denied.doc.getText("text").toString()).toBe("");
    }
    // The client read the y-protocols permission-denied message before the close.
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("token-missing"));
    warn.mockRestore();

    const reader = yws(server, "guarded", { token: await mint("read") });
    await ywsSynced(reader);
    expect(reader.doc.getText("text").toString()).toBe(hocus.document.getText("text").toString());
    const before = hocus.document.getText("text").toString();
    reader.doc.getText("text").insert(0, "VANDAL");
    reader.awareness.setLocalStateField("user", { name: "Reader" });
    // Messages from one socket are handled in order: once its presence arrives, the edit was refused.
    await vi.waitFor(() => expect(names(hocus.awareness)).toContain("Reader"), SOON);
    expect(hocus.document.getText("text").toString()).toBe(before);
    expect(writer.doc.getText("text").toString()).toBe(before);
    // It still receives live changes.
    hocus.document.getText("text").insert(0, "live ");
    await vi.waitFor(() => expect(reader.doc.getText("text").toString()).toContain("live "), SOON);
  });

  it("[YWS4] a document the name guard refuses closes the y-websocket socket with 4403 and the reason", async () => {
    const server = await startServer();
    const refused = yws(server, "%20%20");
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const close = await finalClose(refused);
    warn.mockRestore();
    expect(close.code).toBe(4403);
    expect(close.reason).toMatch(/^invalid-document-name: document name is only whitespace/);
  });

  it("[API10] a document deleted through the API closes its y-websocket clients with 4410 for good", async () => {
    const server = await startServer();
    const { plain } = await pair(server, "doomed");
    plain.doc.getText("text").insert(0, "soon gone");
    await vi.waitFor(
      async () => expect(await server.server.store.meta("doomed")).not.toBeNull(),
      SOON,
    );
    const closed = finalClose(plain);
    const deleted = await fetch(`${server.address.url}/api/v1/documents/doomed`, {
      method: "DELETE",
    });
    expect(deleted.status).toBe(200);
    expect(await closed).toEqual({ code: 4410, reason: "document-deleted" });
    expect(plain.shouldConnect).toBe(false);
    expect(await server.server.store.load("doomed")).toBeNull();
  });

  it("[YWS4] a document the server closes closes the y-websocket socket with 4500, and the client comes back", async () => {
    const server = await startServer();
    const { plain, hocus } = await pair(server, "reset");
    const closes: Array<{ code: number; reason: string }> = [];
    plain.on("connection-close", (event) => {
      if (event !== null) closes.push({ code: event.code, reason: event.reason });
    });
    server.server.hocuspocus.closeConnections("reset");
    await vi.waitFor(
      () => expect(closes).toContainEqual({ code: 4500, reason: "Reset Connection" }),
      SOON,
    );
    await ywsSynced(plain);
    // The Hocuspocus provider was closed too; a fresh one shows the document is served again.
    hocus.destroy();
    const fresh = connect({ url: server.address.wsUrl, name: "reset" });
    await synced(fresh);
    await stillSyncing(plain, fresh, "after the reset");
  });

  it("[YWS3] awareness flows both ways and a leaving client is removed for the other", async () => {
    const server = await startServer();
    const { plain, hocus } = await pair(server, "presence");
    plain.awareness.setLocalStateField("user", { name: "Yuki" });
    hocus.setAwarenessField("user", { name: "Hana" });
    await vi.waitFor(() => {
      expect(names(plain.awareness)).toEqual(["Hana", "Yuki"]);
      expect(names(hocus.awareness)).toEqual(["Hana", "Yuki"]);
    }, SOON);
    plain.awareness.setLocalStateField("user", { name: "Yuki 2" });
    await vi.waitFor(() => expect(names(hocus.awareness)).toEqual(["Hana", "Yuki 2"]), SOON);

    // y-websocket re-sends every awareness change it applies: those echoes must not circle.
    let received = 0;
    const apply = plain.messageHandlers[1];
    plain.messageHandlers[1] = (...args) => {
      received++;
      apply?.(...args);
    };
    for (let n = 0; n < 20; n++) await stillSyncing(plain, hocus, `round ${n}`);
    expect(received).toBeLessThanOrEqual(2);

    // The y-websocket client leaves without a goodbye (destroy only closes its socket).
    plain.destroy();
    await vi.waitFor(() => expect(names(hocus.awareness)).toEqual(["Hana"]), SOON);

    // A new y-websocket client sees Hana at once, and sees her go when she leaves.
    const later = yws(server, "presence");
    later.awareness.setLocalStateField("user", { name: "Yori" });
    await ywsSynced(later);
    await vi.waitFor(() => expect(names(later.awareness)).toEqual(["Hana", "Yori"]), SOON);
    await vi.waitFor(() => expect(names(hocus.awareness)).toEqual(["Hana", "Yori"]), SOON);
    hocus.destroy();
    await vi.waitFor(() => expect(names(later.awareness)).toEqual(["Yori"]), SOON);
  });

  it("[YWS3] a client that edits, announces itself and closes in one write keeps its connection until every message is handled", async () => {
    // What a y-websocket client does when it edits and leaves at once (the soak's graceful
    // leave): its frames and its close frame reach the server in one read. Hocuspocus used to
    // detach the connection from its document at the first reply it sent on the closing
    // socket, with the rest of its frames still queued: those were then handled for a
    // connection the document no longer counted. The presence that came after the edit was
    // kept with no connection to remove it (a ghost for 30 s), and the document could be
    // unloaded under the edits still queued.
    const server = await startServer();
    const { plain, hocus } = await pair(server, "edit-and-leave");
    hocus.setAwarenessField("user", { name: "Hana" });
    await vi.waitFor(() => expect(names(plain.awareness)).toEqual(["Hana"]), SOON);
    const ws = plain.ws;
    if (!(ws instanceof WebSocket)) throw new Error("the y-websocket client has no ws socket");
    const tcp = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    const client = plain.doc.clientID;
    tcp.cork();
    plain.doc.getText("text").insert(0, "last words");
    plain.awareness.setLocalStateField("user", { name: "Yuki" });
    plain.destroy();
    tcp.uncork();

    await vi.waitFor(
      () => expect(hocus.document.getText("text").toString()).toBe("last words"),
      SOON,
    );
    const document = server.server.hocuspocus.documents.get("edit-and-leave");
    await vi.waitFor(() => expect(server.server.hocuspocus.getConnectionsCount()).toBe(1), SOON);
    // Once the server has seen the socket close, nothing of the client is left.
    expect(document?.awareness.getStates().has(client)).toBe(false);
    // Well before the 30 s after which an awareness state no one renews is dropped.
    await vi.waitFor(() => expect(names(hocus.awareness)).toEqual(["Hana"]), SOON);
    hocus.destroy();
    await vi.waitFor(() => expect(server.server.hocuspocus.getDocumentsCount()).toBe(0), SOON);
    const reader = connect({ url: server.address.wsUrl, name: "edit-and-leave" });
    await synced(reader);
    expect(reader.document.getText("text").toString()).toBe("last words");
  });

  it("[YWS5] a malformed frame, a foreign message type or a text frame closes only its own socket", async () => {
    const server = await startServer();
    const { plain, hocus } = await pair(server, "victim");
    const url = `${server.address.wsUrl}/yjs/victim`;
    const doc = new Y.Doc();
    doc.getText("text").insert(0, "never applied");
    const update = Y.encodeStateAsUpdate(doc);
    const cases: Array<[string | Uint8Array, number, RegExp]> = [
      [plainUpdate(update.subarray(0, update.length - 4)), 1002, /Yjs update does not decode/],
      [Uint8Array.of(7), 1002, /y-websocket message type 7 is not accepted/],
      [Uint8Array.of(2, 0, 1, 120), 1002, /y-websocket message type 2 is not accepted/],
      [Uint8Array.of(1, 5, 1, 9, 1, 1, 123), 1007, /awareness state is not JSON/],
      ["hello", 1003, /text frames/],
    ];
    for (const [frame, code, reason] of cases) {
      const bad = rawSocket(url);
      await bad.opened;
      bad.ws.send(frame);
      const closed = await bad.closed;
      expect(closed.code, String(reason)).toBe(code);
      expect(closed.reason).toMatch(reason);
    }
    await stillSyncing(plain, hocus, "after bad input");
    expect(plain.doc.getText("text").toString()).not.toContain("never applied");
    expect(server.server.hocuspocus.documents.get("victim")?.getConnectionsCount()).toBe(2);
  });

  it("[YWS5] a frame over MAX_MESSAGE_BYTES closes its y-websocket socket with 1009", async () => {
    const server = await startServer({ config: { maxMessageBytes: 4096 } });
    const { plain, hocus } = await pair(server, "big");
    const bad = rawSocket(`${server.address.wsUrl}/yjs/big`);
    await bad.opened;
    bad.ws.send(new Uint8Array(8192));
    const { code, reason } = await bad.closed;
    expect(code).toBe(1009);
    expect(reason).toMatch(/the limit is 4096 bytes/);
    await stillSyncing(plain, hocus, "after a big frame");
  });

  it("[YWS6] a /yjs/ path with an empty or undecodable name is answered with HTTP 400", async () => {
    const server = await startServer();
    for (const path of ["/yjs/%E0%A4%A", "/yjs/%ZZ?token=secret", "/yjs/", "/yjs/a%00b"]) {
      const { status, body } = await upgrade(server, path);
      expect(status, path).toBe(400);
      expect(JSON.parse(body)).toMatchObject({ error: { code: "bad_request" } });
    }
    expect((await upgrade(server, "/yjs/fine")).status).toBe(101);
    expect((await upgrade(server, "/")).status).toBe(101);
  });

  it("[OBS2] a y-websocket connection logs its open and close with its path but never its token", async () => {
    const lines: string[] = [];
    const dataDir = await tempDir();
    const server = await createCollabServer({
      config: { host: "127.0.0.1", port: 0, dataDir },
      logger: createLogger("info", { write: (line: string) => lines.push(line) }),
    });
    onTestFinished(() => server.close().then(() => {}));
    const address = await server.listen();
    const running: RunningServer = { server, address, dataDir };
    const provider = yws(running, "logged%20doc", { token: "s3cret-token" });
    await ywsSynced(provider);
    provider.destroy();
    const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    await vi.waitFor(
      () => expect(entries().map((e) => e.msg)).toContain("connection closed"),
      SOON,
    );
    expect(entries().find((e) => e.msg === "connection opened")).toMatchObject({
      path: "/yjs/logged%20doc",
      protocol: "y-websocket",
    });
    expect(entries().find((e) => e.msg === "connection closed")).toMatchObject({
      documents: ["logged doc"],
    });
    expect(lines.join("\n")).not.toContain("s3cret-token");
    const metrics = await server.metrics.registry.metrics();
    expect(metrics).toMatch(/collab_messages_received_total [1-9]/);
  });
});
