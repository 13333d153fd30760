/**
 * Backpressure (LIM4): a client that writes faster than the store keeps its
 * own backlog. The server stops reading a connection once
 * MAX_UNSTORED_BYTES of its updates wait to be stored, and reads it again as
 * they are stored; nothing is lost, and other connections are not slowed.
 */
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { MemoryStore } from "../../server/src/persistence/memory.ts";
import { MessageType } from "../../server/src/protocol/messages.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { startServer, startServerWithFaults } from "../helpers/server.ts";
import { rawSocket, wire } from "../helpers/wire.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("backpressure", () => {
  it("[LIM4] a writer that outpaces the store is paused, holds its own backlog, and is stored in full once the store catches up", async () => {
    const { address, server, store, faults } = await startServerWithFaults({
      retryMs: 20,
      config: { maxUnstoredBytes: 512 * KiB },
    });
    const counter = async (name: string) =>
      Number(
        new RegExp(`^${name} (\\d+)`, "m").exec(
          await server.metrics.registry.getSingleMetricAsString(name),
        )?.[1] ?? Number.NaN,
      );
    const writer = connect({ url: address.wsUrl, name: "flood" });
    const other = connect({ url: address.wsUrl, name: "flood" });
    const reader = connect({ url: address.wsUrl, name: "flood" });
    await Promise.all([synced(writer), synced(other), synced(reader)]);
    const receivedBefore = await counter("collab_bytes_received_total");

    // Every store write fails (and is retried) until the store is healed below.
    faults.remaining = Number.MAX_SAFE_INTEGER;
    const chunk = "x".repeat(64 * KiB);
    const text = writer.document.getText("text");
    const CHUNKS = 128; // 8 MiB, more than the kernel's socket buffers hold here (4 MiB + 128 KiB)
    for (let i = 0; i < CHUNKS; i++) text.insert(text.length, chunk);

    // The server stopped reading: the rest waits in the writer's own socket.
    const socket = writer.configuration.websocketProvider.webSocket;
    if (socket === null) throw new Error("the writer has no socket");
    await vi.waitFor(
      async () => {
        expect(await counter("collab_reads_paused_total")).toBeGreaterThanOrEqual(1);
        expect(socket.bufferedAmount).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 20 },
    );
    const read = (await counter("collab_bytes_received_total")) - receivedBefore;
    // 512 KiB waiting, plus what ws had already read off the socket when it paused.
    expect(read).toBeLessThan(2 * MiB);
    expect(read).toBeLessThan(CHUNKS * chunk.length);

    // Another connection to the same document is still read, relayed and applied.
    other.document.getText("notes").insert(0, "not slowed");
    await vi.waitFor(() => expect(reader.document.getText("notes").toString()).toBe("not slowed"), {
      timeout: 10_000,
    });

    // The store recovers: everything the writer sent is stored and acknowledged, in full.
    faults.remaining = 0;
    await acknowledged(writer, 120_000);
    await vi.waitFor(() => expect(reader.document.getText("text").length).toBe(text.length), {
      timeout: 30_000,
    });
    const stored = await store.load("flood");
    const doc = new Y.Doc();
    for (const update of stored?.updates ?? []) Y.applyUpdate(doc, update);
    expect(doc.getText("text").length).toBe(CHUNKS * chunk.length);
    expect(doc.getText("notes").toString()).toBe("not slowed");
  }, 180_000);

  it("[LIM4] updates that will never be acknowledged (a refused document) do not keep the connection paused", async () => {
    const store = new MemoryStore();
    // Client 424242 wrote a content of "old" that was deleted: its state is refused there.
    await store.putDeletedClients({ name: "old", id: "t1", clients: [424242] });
    const { address } = await startServer({ store, config: { maxUnstoredBytes: 64 * KiB } });
    const raw = rawSocket(address.wsUrl);
    await raw.opened;
    const name = (m: Uint8Array) => new TextDecoder().decode(m.subarray(1, 1 + (m[0] ?? 0)));
    /** Auth messages (authenticated, permission denied) the server sent for `document`. */
    const authAnswers = (document: string) =>
      raw.received.filter((m) => name(m) === document && m[1 + (m[0] ?? 0)] === MessageType.Auth)
        .length;
    const answered = (document: string, count: number) =>
      vi.waitFor(() => expect(authAnswers(document)).toBeGreaterThanOrEqual(count), {
        timeout: 5_000,
      });
    raw.ws.send(wire.auth("old"));
    raw.ws.send(wire.syncStep1("old"));
    // The server's sync answer: the document is open on this socket.
    await vi.waitFor(
      () =>
        expect(
          raw.received.some((m) => name(m) === "old" && m[1 + (m[0] ?? 0)] === MessageType.Sync),
        ).toBe(true),
      { timeout: 5_000 },
    );
    // Once open, the deleted content's state is refused, and the document closed on this
    // socket, with 120 KiB more of updates queued behind it that nobody will acknowledge.
    const dead = new Y.Doc();
    dead.clientID = 424242;
    dead.getText("t").insert(0, "old");
    const live = new Y.Doc();
    const frames = [wire.update("old", Y.encodeStateAsUpdate(dead))];
    let known = Y.encodeStateVector(live);
    for (let i = 0; i < 3; i++) {
      live.getText("t").insert(0, "x".repeat(40 * KiB));
      frames.push(wire.update("old", Y.encodeStateAsUpdate(live, known)));
      known = Y.encodeStateVector(live);
    }
    for (const frame of frames) raw.ws.send(frame);
    // Refused: told so (permission denied), the document closed on this socket.
    await answered("old", 2);
    // The same socket still opens another document: it is read.
    raw.ws.send(wire.auth("other"));
    await answered("other", 1);
  });

  it("[LIM4] a paused connection is not closed as idle while the store catches up", async () => {
    const { address, server, faults } = await startServerWithFaults({
      retryMs: 20,
      config: { maxUnstoredBytes: 64 * KiB, idleTimeoutMs: 1000 },
    });
    const writer = connect({ url: address.wsUrl, name: "stalled" });
    await synced(writer);
    let disconnects = 0;
    writer.on("disconnect", () => disconnects++);
    faults.remaining = Number.MAX_SAFE_INTEGER;
    const text = writer.document.getText("text");
    for (let i = 0; i < 8; i++) text.insert(text.length, "y".repeat(32 * KiB));
    await vi.waitFor(
      async () =>
        expect(
          await server.metrics.registry.getSingleMetricAsString("collab_reads_paused_total"),
        ).toMatch(/collab_reads_paused_total [1-9]/),
      { timeout: 10_000 },
    );
    // Hocuspocus checks for idle connections every IDLE_TIMEOUT_MS: let three checks pass
    // while the store fails and the connection stays paused.
    const pausedAt = performance.now();
    await vi.waitFor(() => expect(performance.now() - pausedAt).toBeGreaterThan(3_500), {
      timeout: 5_000,
      interval: 100,
    });
    expect(disconnects).toBe(0);
    faults.remaining = 0;
    await acknowledged(writer, 30_000);
    expect(disconnects).toBe(0);
  }, 60_000);
});
