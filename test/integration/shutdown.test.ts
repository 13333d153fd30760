/**
 * Shutdown and unloading while writes are pending or failing ([LIFE3],
 * [PERS13]): nothing pending is lost, nothing failing is reported stored, and
 * an unresponsive peer does not hold the shutdown past its deadline.
 */
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { startServer, startServerWithFaults } from "../helpers/server.ts";
import { rawSocket, wire } from "../helpers/wire.ts";

async function textIn(dir: string, name: string): Promise<string> {
  const store = await LevelDbStore.open({ dir });
  const stored = await store.load(name);
  await store.close();
  const doc = new Y.Doc();
  for (const update of stored?.updates ?? []) Y.applyUpdate(doc, update);
  return doc.getText("text").toString();
}

describe("shutdown with writes pending", () => {
  it("[LIFE3] close waits for writes still being retried, closes sockets with 1001, and stores everything", async () => {
    const { server, address, store, faults, dataDir } = await startServerWithFaults({
      retryMs: 50,
    });
    const writer = connect({ url: address.wsUrl, name: "pending" });
    const raw = rawSocket(address.wsUrl);
    await Promise.all([synced(writer), raw.opened]);
    faults.remaining = 4;
    writer.document.getText("text").insert(0, "written during shutdown");
    await vi.waitFor(() => expect(store.health().state).toBe("failing"));
    expect(writer.unsyncedChanges).toBeGreaterThan(0);

    expect(await server.close()).toEqual({ abandonedUpdates: 0 });
    expect((await raw.closed).code).toBe(1001);
    expect(faults.remaining).toBe(0);
    expect(await textIn(dataDir, "pending")).toBe("written during shutdown");
  });

  it("[LIFE3] writes still failing at the deadline are reported as not stored", async () => {
    const { server, address, store, faults } = await startServerWithFaults({
      retryMs: 20,
      config: { shutdownTimeoutMs: 300 },
    });
    const writer = connect({ url: address.wsUrl, name: "doomed" });
    await synced(writer);
    faults.remaining = Number.POSITIVE_INFINITY;
    writer.document.getText("text").insert(0, "cannot be stored");
    await vi.waitFor(() => expect(store.health().state).toBe("failing"));
    const started = Date.now();
    const report = await server.close();
    expect(report.abandonedUpdates).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("[LIFE3] a peer that ignores the close handshake does not hold the shutdown", async () => {
    const { server, address } = await startServer({ config: { shutdownTimeoutMs: 500 } });
    const raw = rawSocket(address.wsUrl);
    await raw.opened;
    raw.ws.send(wire.auth("quiet"));
    // Stop reading: the close frame is never answered.
    (raw.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("unloading while writes fail", () => {
  it("[PERS13] a document whose writes fail stays in memory after its last client leaves, and unloads once they are stored", async () => {
    const { server, address, store, faults } = await startServerWithFaults({ retryMs: 100 });
    const writer = connect({ url: address.wsUrl, name: "kept-in-memory" });
    await synced(writer);
    faults.remaining = 3;
    writer.document.getText("text").insert(0, "not yet stored");
    await vi.waitFor(() => expect(store.health().state).toBe("failing"));
    writer.destroy();
    // Still failing: the document must not leave memory.
    await vi.waitFor(() => expect(server.hocuspocus.getConnectionsCount()).toBe(0));
    expect(store.health().state).toBe("failing");
    expect(server.hocuspocus.documents.has("kept-in-memory")).toBe(true);
    await vi.waitFor(() => expect(store.health().state).toBe("ok"), { timeout: 5_000 });
    await vi.waitFor(() => expect(server.hocuspocus.documents.has("kept-in-memory")).toBe(false), {
      timeout: 5_000,
    });
    const reader = connect({ url: address.wsUrl, name: "kept-in-memory" });
    await synced(reader);
    expect(reader.document.getText("text").toString()).toBe("not yet stored");
    await acknowledged(reader);
  });
});
