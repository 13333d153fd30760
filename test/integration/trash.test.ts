/**
 * Deleted documents stay deleted, and the trash undoes a mistake ([TRASH1]-
 * [TRASH5] in SPEC.md). Real server, real LevelDB, the real Hocuspocus
 * provider and y-websocket client. A client that holds a deleted document,
 * whether it was online at the delete or comes back later with its copy,
 * is refused with `document-deleted`, and its old state never reaches the
 * store, the trash copy or a new document of the same name.
 */
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import * as decoding from "lib0/decoding";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { AuthType, MessageType } from "../../server/src/protocol/messages.ts";
import { acknowledged, connect, nodeSocket, refusal, synced } from "../helpers/clients.ts";
import { type RunningServer, startServer } from "../helpers/server.ts";
import { rawSocket, wire } from "../helpers/wire.ts";
import { finalClose, yws, ywsSynced } from "../helpers/y-websocket.ts";

const SOON = { timeout: 10_000, interval: 10 };
const DAY_MS = 24 * 60 * 60 * 1000;

async function api(
  server: RunningServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.address.url}/api/v1${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : JSON.parse(text) };
}

/** The text of what the store holds for `name` ("" when nothing). */
async function storedText(server: RunningServer, name: string): Promise<string> {
  const stored = await server.server.store.load(name);
  const doc = new Y.Doc();
  for (const update of stored?.updates ?? []) Y.applyUpdate(doc, update);
  return doc.getText("text").toString();
}

/** A provider on its own socket that reconnects quickly, for documents it keeps across reconnects. */
function reconnecting(server: RunningServer, name: string, document: Y.Doc): HocuspocusProvider {
  const socket = new HocuspocusProviderWebsocket({
    url: server.address.wsUrl,
    WebSocketPolyfill: nodeSocket(),
    delay: 50,
    minDelay: 50,
    maxDelay: 200,
  });
  const provider = new HocuspocusProvider({ websocketProvider: socket, name, document });
  provider.attach();
  onTestFinished(() => {
    provider.destroy();
    socket.destroy();
  });
  return provider;
}

/** Drops the provider's socket and opens a new one, as a network drop and return would. */
async function reconnect(provider: HocuspocusProvider): Promise<void> {
  const socket = provider.configuration.websocketProvider;
  const down = new Promise<void>((resolve) => {
    const onStatus = ({ status }: { status: string }) => {
      if (status !== "disconnected") return;
      socket.off("status", onStatus);
      resolve();
    };
    socket.on("status", onStatus);
  });
  socket.disconnect();
  await down;
  await socket.connect();
}

/** The reasons of the permission-denied messages among `frames`. */
function denials(frames: readonly Uint8Array[]): string[] {
  return frames.flatMap((frame) => {
    const decoder = decoding.createDecoder(frame);
    decoding.readVarString(decoder);
    if (decoding.readVarUint(decoder) !== MessageType.Auth) return [];
    if (decoding.readVarUint(decoder) !== AuthType.PermissionDenied) return [];
    return [decoding.readVarString(decoder)];
  });
}

/** A document with `text`, written by a provider and stored; returns the provider's state. */
async function written(server: RunningServer, name: string, text: string): Promise<Y.Doc> {
  const writer = connect({ url: server.address.wsUrl, name });
  await synced(writer);
  writer.document.getText("text").insert(0, text);
  await acknowledged(writer);
  writer.destroy();
  const copy = new Y.Doc();
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(writer.document));
  return copy;
}

describe("the trash", () => {
  it("[TRASH1] DELETE moves a document with its versions to the trash; restore brings both back; purge ends it", async () => {
    const server = await startServer();
    await written(server, "plan", "the plan");
    expect((await api(server, "POST", "/documents/plan/versions", { name: "v1" })).status).toBe(
      201,
    );
    const deleted = await api(server, "DELETE", "/documents/plan");
    expect(deleted.status).toBe(200);
    const trash = deleted.body.trash as Record<string, string | number>;
    expect(trash).toMatchObject({ name: "plan", versions: 1 });
    expect(Date.parse(trash.purgeAt as string) - Date.parse(trash.deleted as string)).toBe(
      30 * DAY_MS,
    );
    expect((await api(server, "GET", "/documents/plan")).status).toBe(404);
    expect((await api(server, "GET", "/trash")).body).toMatchObject({
      items: [{ name: "plan", id: trash.id }],
      next: null,
    });

    const restored = await api(server, "POST", "/trash/plan/restore");
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ document: { name: "plan" }, restored: { id: trash.id } });
    expect(await storedText(server, "plan")).toBe("the plan");
    const versions = await api(server, "GET", "/documents/plan/versions");
    expect(versions.body).toMatchObject({ versions: [{ name: "v1" }] });
    expect((await api(server, "GET", "/trash")).body).toMatchObject({ items: [] });
    expect((await api(server, "POST", "/trash/plan/restore")).status).toBe(404);

    await api(server, "DELETE", "/documents/plan");
    const purged = await api(server, "DELETE", "/trash/plan");
    expect(purged.status).toBe(200);
    expect(purged.body).toMatchObject({ purged: [{ name: "plan" }] });
    expect((await api(server, "DELETE", "/trash/plan")).status).toBe(404);
    expect((await api(server, "POST", "/trash/plan/restore")).status).toBe(404);
    expect(await server.server.store.listVersions("plan")).toEqual([]);
  });

  it("[TRASH1] a restore into a name that has a new document is refused; under another name it works", async () => {
    const server = await startServer();
    await written(server, "notes", "old notes");
    await api(server, "DELETE", "/documents/notes");
    await written(server, "notes", "new notes");
    const refused = await api(server, "POST", "/trash/notes/restore");
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error: { code: "conflict" } });
    const elsewhere = await api(server, "POST", "/trash/notes/restore", { as: "notes (old)" });
    expect(elsewhere.status).toBe(200);
    expect(await storedText(server, "notes (old)")).toBe("old notes");
    expect(await storedText(server, "notes")).toBe("new notes");
    expect((await api(server, "POST", "/trash/notes/restore", { as: "" })).status).toBe(400);
    expect((await api(server, "POST", "/trash/notes/restore", { bogus: 1 })).status).toBe(400);
  });

  it("[TRASH4] entries past TRASH_RETENTION_DAYS are purged by the sweep; 0 purges at once", async () => {
    const server = await startServer({ config: { trashRetentionDays: 7 } });
    await written(server, "a", "a");
    await api(server, "DELETE", "/documents/a");
    const service = server.server.documents;
    expect(await service.purgeExpired(Date.now() + 6 * DAY_MS)).toBe(0);
    expect(await service.purgeExpired(Date.now() + 7 * DAY_MS + 1000)).toBe(1);
    expect((await api(server, "GET", "/trash")).body).toMatchObject({ items: [] });

    const immediate = await startServer({ config: { trashRetentionDays: 0 } });
    const state = await written(immediate, "b", "b");
    expect((await api(immediate, "DELETE", "/documents/b")).status).toBe(200);
    expect((await api(immediate, "GET", "/trash")).body).toMatchObject({ items: [] });
    // Purged, and still deleted: a copy of it is refused.
    const copy = connect({ url: immediate.address.wsUrl, name: "b", document: state });
    expect(await refusal(copy)).toMatch(/^document-deleted/);
  });
});

describe("trash races", () => {
  it("[TRASH1] a restore and a purge of one entry at once: one wins, and the other says so", async () => {
    const server = await startServer();
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      await written(server, name, "contested");
      await api(server, "DELETE", `/documents/${name}`);
      const [restored, purged] = await Promise.all([
        api(server, "POST", `/trash/${name}/restore`),
        api(server, "DELETE", `/trash/${name}`),
      ]);
      expect([restored.status, purged.status].sort()).toEqual([200, 404]);
      expect(await storedText(server, name)).toBe(restored.status === 200 ? "contested" : "");
      expect((await api(server, "GET", "/trash")).body).toMatchObject({ items: [] });
    }
  });

  it("[TRASH1] two restores of one entry under two names: one gets the document, the other 404", async () => {
    const server = await startServer();
    await written(server, "twice", "only once");
    await api(server, "DELETE", "/documents/twice");
    const results = await Promise.all([
      api(server, "POST", "/trash/twice/restore", { as: "x" }),
      api(server, "POST", "/trash/twice/restore", { as: "y" }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 404]);
    const texts = [await storedText(server, "x"), await storedText(server, "y")].sort();
    expect(texts).toEqual(["", "only once"]);
  });

  it("[TRASH3] content restored back into the name it was deleted from opens and edits for everyone", async () => {
    const server = await startServer();
    await written(server, "a", "hello");
    await api(server, "DELETE", "/documents/a");
    expect((await api(server, "POST", "/trash/a/restore", { as: "b" })).status).toBe(200);
    await api(server, "DELETE", "/documents/b");
    expect((await api(server, "POST", "/trash/b/restore", { as: "a" })).status).toBe(200);
    const provider = connect({ url: server.address.wsUrl, name: "a" });
    await synced(provider);
    expect(provider.document.getText("text").toString()).toBe("hello");
    const denials: string[] = [];
    provider.on("authenticationFailed", ({ reason }: { reason: string }) => denials.push(reason));
    provider.document.getText("text").insert(5, ", world");
    await acknowledged(provider);
    expect(denials).toEqual([]);
    expect(await storedText(server, "a")).toBe("hello, world");
  });
});

describe("deleted documents stay deleted", () => {
  it("[TRASH2] a provider online at the delete is closed, refused when it comes back, and its copy is never stored", async () => {
    const server = await startServer();
    const doc = new Y.Doc();
    const provider = reconnecting(server, "gone", doc);
    await synced(provider);
    doc.getText("text").insert(0, "before the delete");
    await acknowledged(provider);
    const closed = new Promise<string>((resolve) =>
      provider.on("close", ({ event }: { event: { reason: string } }) => resolve(event.reason)),
    );
    await api(server, "DELETE", "/documents/gone");
    expect(await closed).toBe("document-deleted");
    const trashed = await server.server.store.loadTrash(
      "gone",
      ((await server.server.store.listTrash({ limit: 1 }))[0]?.id as string) ?? "",
    );
    // It keeps editing its copy and its socket comes back: refused, nothing stored.
    doc.getText("text").insert(0, "typed after ");
    const denied = refusal(provider);
    await reconnect(provider);
    expect(await denied).toMatch(/^document-deleted: /);
    expect(await server.server.store.load("gone")).toBeNull();
    const trashNow = await server.server.store.loadTrash("gone", trashed?.entry.id ?? "");
    expect(trashNow?.state).toEqual(trashed?.state);

    // A new document of the same name starts empty and never gets the old content.
    const fresh = connect({ url: server.address.wsUrl, name: "gone" });
    await synced(fresh);
    expect(fresh.document.getText("text").toString()).toBe("");
    fresh.document.getText("text").insert(0, "a new start");
    await acknowledged(fresh);
    const again = refusal(provider);
    await reconnect(provider);
    expect(await again).toMatch(/^document-deleted/);
    expect(await storedText(server, "gone")).toBe("a new start");
    expect(fresh.document.getText("text").toString()).toBe("a new start");
  });

  it("[TRASH2] a provider that comes back days later with a copy, edits queued offline, is refused before anything is applied", async () => {
    const server = await startServer();
    const copy = await written(server, "old-news", "kept offline");
    await api(server, "DELETE", "/documents/old-news");
    // The copy as a browser would bring it back (a new client id, the old content, new edits).
    const doc = new Y.Doc();
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(copy));
    doc.getText("text").insert(0, "offline edit: ");
    const provider = connect({ url: server.address.wsUrl, name: "old-news", document: doc });
    // Queued before the socket opens: sent right behind the sync handshake.
    doc.getText("text").insert(0, "more ");
    expect(await refusal(provider)).toMatch(/^document-deleted/);
    expect(await server.server.store.load("old-news")).toBeNull();
    expect(
      server.server.hocuspocus.documents.get("old-news")?.getText("text").toString() ?? "",
    ).toBe("");
  });

  it("[TRASH2] an update referring to deleted content is refused even without a state vector that shows it", async () => {
    const server = await startServer();
    const copy = await written(server, "sneaky", "old");
    await api(server, "DELETE", "/documents/sneaky");
    // A client whose only own struct is inserted after the deleted text: its clock is its own,
    // but its origin points into the deleted content.
    const doc = new Y.Doc();
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(copy));
    const before = Y.encodeStateVector(doc);
    doc.getText("text").insert(3, "!");
    const update = Y.encodeStateAsUpdate(doc, before);
    const raw = rawSocket(server.address.wsUrl);
    await raw.opened;
    raw.ws.send(wire.auth("sneaky"));
    raw.ws.send(wire.syncStep1("sneaky"));
    raw.ws.send(wire.update("sneaky", update));
    await vi.waitFor(() => expect(denials(raw.received)).toHaveLength(1), SOON);
    expect(denials(raw.received)[0]).toMatch(/^document-deleted/);
    expect(await server.server.store.load("sneaky")).toBeNull();
  });

  it("[TRASH2] a y-websocket client online at the delete, and one that comes back with a copy, are closed with 4410", async () => {
    const server = await startServer();
    const doc = new Y.Doc();
    const plain = yws(server, "shared", { doc });
    await ywsSynced(plain);
    doc.getText("text").insert(0, "y-websocket text");
    await vi.waitFor(async () => expect(await storedText(server, "shared")).toContain("y-"), SOON);
    const closed = finalClose(plain);
    await api(server, "DELETE", "/documents/shared");
    expect(await closed).toEqual({ code: 4410, reason: "document-deleted" });

    const copy = new Y.Doc();
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc));
    const back = yws(server, "shared", { doc: copy });
    const refused = await finalClose(back);
    expect(refused.code).toBe(4410);
    expect(refused.reason).toMatch(/^document-deleted/);
    expect(await server.server.store.load("shared")).toBeNull();
  });

  it("[TRASH3] restored to its name, the document welcomes back clients that kept a copy, and their offline edits merge", async () => {
    const server = await startServer();
    const doc = new Y.Doc();
    const provider = reconnecting(server, "oops", doc);
    await synced(provider);
    doc.getText("text").insert(0, "deleted by mistake");
    await acknowledged(provider);
    await api(server, "DELETE", "/documents/oops");
    doc.getText("text").insert(0, "edited meanwhile: ");
    const denied = refusal(provider);
    await reconnect(provider);
    await denied;

    expect((await api(server, "POST", "/trash/oops/restore")).status).toBe(200);
    const authenticated = new Promise<void>((resolve) =>
      provider.on("authenticated", () => resolve()),
    );
    await reconnect(provider);
    await authenticated;
    await vi.waitFor(
      async () =>
        expect(await storedText(server, "oops")).toBe("edited meanwhile: deleted by mistake"),
      SOON,
    );
  });

  it("[TRASH3] a client with an empty document open when one is restored into its name gets the content", async () => {
    const server = await startServer();
    await written(server, "back", "restored content");
    await api(server, "DELETE", "/documents/back");
    const opened = connect({ url: server.address.wsUrl, name: "back" });
    await synced(opened);
    const closed = new Promise<string>((resolve) =>
      opened.on("close", ({ event }: { event: { reason: string } }) => resolve(event.reason)),
    );
    expect((await api(server, "POST", "/trash/back/restore")).status).toBe(200);
    expect(await closed).toBe("document-restored");
    expect(await storedText(server, "back")).toBe("restored content");
  });
});
