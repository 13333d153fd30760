/**
 * Presence across reconnects, with the stock provider ([SYNC4]). Stock
 * Hocuspocus shows a reconnected user again only after the provider's
 * 15-second awareness renewal; these waits are far shorter than that.
 */
import type { HocuspocusProvider } from "@hocuspocus/provider";
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { connect, synced } from "../helpers/clients.ts";
import { startServer } from "../helpers/server.ts";

const SOON = { timeout: 5_000, interval: 10 };

function names(provider: HocuspocusProvider): string[] {
  return [...(provider.awareness?.getStates().values() ?? [])]
    .map((state) => (state.user as { name?: string } | undefined)?.name ?? "?")
    .sort();
}

async function reconnect(provider: HocuspocusProvider): Promise<void> {
  const socket = provider.configuration.websocketProvider;
  socket.disconnect();
  await vi.waitFor(() => expect(provider.isSynced).toBe(false), SOON);
  await socket.connect();
  await synced(provider);
}

/** Alice and Bob on one document, each seeing both. */
async function aliceAndBob(): Promise<{ alice: HocuspocusProvider; bob: HocuspocusProvider }> {
  const { address } = await startServer();
  const alice = connect({ url: address.wsUrl, name: "presence" });
  const bob = connect({ url: address.wsUrl, name: "presence" });
  await Promise.all([synced(alice), synced(bob)]);
  alice.setAwarenessField("user", { name: "Alice" });
  bob.setAwarenessField("user", { name: "Bob" });
  await vi.waitFor(() => expect(names(bob)).toEqual(["Alice", "Bob"]), SOON);
  return { alice, bob };
}

describe("presence across reconnects", () => {
  it("[SYNC4] a client that reconnects is visible to the others at once", async () => {
    const { alice, bob } = await aliceAndBob();

    await reconnect(alice);
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice", "Bob"]), SOON);
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob"]), SOON);
    // Later changes still flow both ways.
    alice.setAwarenessField("user", { name: "Alice 2" });
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice 2", "Bob"]), SOON);
    bob.setAwarenessField("user", { name: "Bob 2" });
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice 2", "Bob 2"]), SOON);
  });

  it("[SYNC4] a client that reconnects sees everyone who stayed, at once", async () => {
    const { alice, bob } = await aliceAndBob();

    await reconnect(bob);
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice", "Bob"]), SOON);
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob"]), SOON);
  });

  it("[SYNC5] a connection cannot speak for another's presence: a forged state for Alice's client is dropped", async () => {
    const { address } = await startServer();
    const alice = connect({ url: address.wsUrl, name: "presence" });
    const bob = connect({ url: address.wsUrl, name: "presence" });
    await Promise.all([synced(alice), synced(bob)]);
    alice.setAwarenessField("user", { name: "Alice" });
    bob.setAwarenessField("user", { name: "Bob" });
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice", "Bob"]), SOON);

    // Mallory's document takes Alice's client id, so her provider announces a state for it.
    const forged = new Y.Doc();
    forged.clientID = alice.document.clientID;
    const mallory = connect({ url: address.wsUrl, name: "presence", document: forged });
    await synced(mallory);
    mallory.setAwarenessField("user", { name: "Alice (forged)" });
    // Bob's own later change arrives after Mallory's (one server, in order): the forgery is gone by then.
    bob.setAwarenessField("user", { name: "Bob 2" });
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob 2"]), SOON);
    expect(names(bob)).toEqual(["Alice", "Bob 2"]);
    mallory.destroy();
    alice.setAwarenessField("user", { name: "Alice 2" });
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice 2", "Bob 2"]), SOON);
  });
});
