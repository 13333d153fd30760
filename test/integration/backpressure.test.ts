/**
 * Backpressure (LIM4): a client that writes faster than the store keeps its
 * own backlog. The server stops reading a connection once
 * MAX_UNSTORED_BYTES of its updates wait to be stored, and reads it again as
 * they are stored; nothing is lost, and other connections are not slowed.
 */
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { startServerWithFaults } from "../helpers/server.ts";

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
});
