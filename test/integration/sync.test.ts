/**
 * Real-socket sync: the stock provider against an in-process server on port 0
 * with a real LevelDB directory.
 */
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { acknowledged, connect, sharedSocket, synced } from "../helpers/clients.ts";
import { expectConverged } from "../helpers/converge.ts";
import { startServer } from "../helpers/server.ts";

describe("sync over real sockets", () => {
  it("[SYNC1] three providers editing one XmlFragment and one Text concurrently converge", async () => {
    const { address, server } = await startServer();
    const providers = [0, 1, 2].map(() => connect({ url: address.wsUrl, name: "shared" }));
    await Promise.all(providers.map((p) => synced(p)));
    // Everyone edits at once, without waiting for the others.
    providers.forEach((provider, i) => {
      const doc = provider.document;
      const fragment = doc.getXmlFragment("prosemirror");
      for (let n = 0; n < 20; n++) {
        const paragraph = new Y.XmlElement("paragraph");
        paragraph.insert(0, [new Y.XmlText(`client ${i} line ${n}`)]);
        fragment.insert(n % 2 === 0 ? 0 : fragment.length, [paragraph]);
        doc.getText("text").insert(n % 3 === 0 ? 0 : doc.getText("text").length, `${i}`);
      }
    });
    await Promise.all(providers.map((p) => acknowledged(p)));
    const docs = providers.map((p) => p.document);
    await vi.waitFor(() => expectConverged(docs), { timeout: 10_000 });
    expect(docs[0]?.getXmlFragment("prosemirror").length).toBe(60);
    expect(docs[0]?.getText("text").length).toBe(60);
    // The stored state rebuilds to the same document.
    await server.store.flush();
    const stored = await server.store.load("shared");
    expectConverged(docs, stored?.updates);
  });

  it("[SYNC2] two documents over one socket stay isolated", async () => {
    const { address } = await startServer();
    const socketA = sharedSocket(address.wsUrl);
    const socketB = sharedSocket(address.wsUrl);
    const a1 = connect({ url: address.wsUrl, name: "alpha", socket: socketA });
    const b1 = connect({ url: address.wsUrl, name: "beta", socket: socketA });
    const a2 = connect({ url: address.wsUrl, name: "alpha", socket: socketB });
    const b2 = connect({ url: address.wsUrl, name: "beta", socket: socketB });
    await Promise.all([a1, b1, a2, b2].map((p) => synced(p)));
    a1.document.getText("text").insert(0, "only in alpha");
    b2.document.getText("text").insert(0, "only in beta");
    await vi.waitFor(() => {
      expect(a2.document.getText("text").toString()).toBe("only in alpha");
      expect(b1.document.getText("text").toString()).toBe("only in beta");
    });
    await Promise.all([a1, b2].map((p) => acknowledged(p)));
    expect(a1.document.getText("text").toString()).toBe("only in alpha");
    expect(b2.document.getText("text").toString()).toBe("only in beta");
  });

  it("[SYNC3] awareness is relayed and removed when a client disconnects", async () => {
    const { address } = await startServer();
    const alice = connect({ url: address.wsUrl, name: "presence" });
    const bob = connect({ url: address.wsUrl, name: "presence" });
    await Promise.all([alice, bob].map((p) => synced(p)));
    alice.setAwarenessField("user", { name: "Alice", color: "#f00" });
    bob.setAwarenessField("user", { name: "Bob", color: "#00f" });
    const names = (p: typeof alice) =>
      [...(p.awareness?.getStates().values() ?? [])]
        .map((s) => (s.user as { name: string } | undefined)?.name)
        .sort();
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice", "Bob"]));
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob"]));
    // Closing the socket (not a polite awareness removal) must still remove Alice for Bob.
    alice.configuration.websocketProvider.disconnect();
    await vi.waitFor(() => expect(names(bob)).toEqual(["Bob"]));
  });
});
