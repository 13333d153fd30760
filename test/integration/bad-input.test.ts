/**
 * Bad input against a live server: each bad client is closed with a
 * protocol-error code and a reason, alone; a client on another document keeps
 * syncing and the process stays up (PROT rules in SPEC.md).
 */
import type { HocuspocusProvider } from "@hocuspocus/provider";
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { acknowledged, connect, refusal, synced } from "../helpers/clients.ts";
import { random, rng, runSeed, withSeed } from "../helpers/prng.ts";
import { startServer } from "../helpers/server.ts";
import { rawSocket, wire } from "../helpers/wire.ts";

/** A healthy client on another document: proves the server still serves everyone else. */
async function bystander(
  url: string,
): Promise<{ provider: HocuspocusProvider; check: (text: string) => Promise<void> }> {
  const writer = connect({ url, name: "bystander" });
  const reader = connect({ url, name: "bystander" });
  await Promise.all([synced(writer), synced(reader)]);
  return {
    provider: writer,
    async check(text: string) {
      writer.document.getText("text").insert(0, text);
      await vi.waitFor(() => expect(reader.document.getText("text").toString()).toContain(text));
      await acknowledged(writer);
    },
  };
}

function updateFor(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("text").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

describe("bad input", () => {
  it("[PROT1] a truncated Yjs update closes its socket with 1002 and is never applied or acknowledged", async () => {
    const { address, server } = await startServer();
    const other = await bystander(address.wsUrl);
    const bad = rawSocket(address.wsUrl);
    await bad.opened;
    bad.ws.send(wire.auth("victim"));
    bad.ws.send(wire.syncStep1("victim"));
    const update = updateFor("this update is cut short");
    bad.ws.send(wire.update("victim", update.subarray(0, update.length - 5)));
    const { code, reason } = await bad.closed;
    expect(code).toBe(1002);
    expect(reason).toMatch(/Yjs update does not decode/);
    await other.check("still here");
    expect((await server.store.load("victim"))?.updates ?? []).toHaveLength(0);
    expect(server.hocuspocus.documents.get("victim")?.getText("text").toString() ?? "").toBe("");
  });

  it("[PROT1] random bytes close only their own socket", async () => {
    const seed = runSeed();
    await withSeed("random bytes", seed, async () => {
      const r = rng(seed);
      const { address } = await startServer();
      const other = await bystander(address.wsUrl);
      for (let i = 0; i < 20; i++) {
        const bad = rawSocket(address.wsUrl);
        await bad.opened;
        const frame = random.bytes(r, random.int(r, 1, 200));
        bad.ws.send(frame);
        // A random frame may happen to parse (then it is a harmless message); otherwise it is refused.
        const outcome = await Promise.race([
          bad.closed,
          other.check(`round ${i}`).then(() => null),
        ]);
        if (outcome !== null) expect([1002, 1007]).toContain(outcome.code);
        bad.ws.terminate();
      }
      await other.check("after random bytes");
    });
  });

  it("[PROT1] mutated protocol messages never crash the server or reach other documents", async () => {
    const seed = runSeed();
    await withSeed("mutated messages", seed, async () => {
      const r = rng(seed);
      const { address, server } = await startServer();
      const other = await bystander(address.wsUrl);
      const valid = [
        wire.auth("mutant"),
        wire.syncStep1("mutant"),
        wire.update("mutant", updateFor("mutation target")),
        wire.awareness("mutant", 42, JSON.stringify({ user: { name: "M" } })),
      ];
      for (let i = 0; i < 40; i++) {
        const bad = rawSocket(address.wsUrl);
        await bad.opened;
        const frame = random.pick(r, valid).slice();
        const mutations = random.int(r, 1, 4);
        for (let m = 0; m < mutations; m++) {
          const at = random.int(r, 0, frame.length - 1);
          frame[at] = random.int(r, 0, 255);
        }
        bad.ws.send(frame);
        bad.ws.send(wire.auth("mutant"));
        bad.ws.close();
        const { code } = await bad.closed;
        expect([1000, 1002, 1005, 1007]).toContain(code);
      }
      await other.check("after mutations");
      expect(server.hocuspocus.documents.get("bystander")).toBeDefined();
    });
  });

  it("[PROT2] a message over MAX_MESSAGE_BYTES closes its socket with 1009", async () => {
    const { address, server } = await startServer({ config: { maxMessageBytes: 64 * 1024 } });
    const other = await bystander(address.wsUrl);
    const big = rawSocket(address.wsUrl);
    await big.opened;
    big.ws.send(wire.auth("huge"));
    big.ws.send(wire.update("huge", updateFor("x".repeat(100 * 1024))));
    expect(await big.closed).toEqual({
      code: 1009,
      reason: "message too big: the limit is 65536 bytes",
    });
    await other.check("after oversized");
    const metrics = await server.metrics.registry.getSingleMetricAsString(
      "collab_protocol_errors_total",
    );
    expect(metrics).toMatch(/code="1009"} 1/);
  });

  it("[PROT3] text frames and addresses that are not UTF-8 are refused", async () => {
    const { address } = await startServer();
    const other = await bystander(address.wsUrl);
    const text = rawSocket(address.wsUrl);
    await text.opened;
    text.ws.send("hello");
    expect((await text.closed).code).toBe(1003);
    const badName = rawSocket(address.wsUrl);
    await badName.opened;
    badName.ws.send(wire.badUtf8Address());
    expect(await badName.closed).toEqual({
      code: 1007,
      reason: "invalid payload: document address is not valid UTF-8",
    });
    await other.check("after bad frames");
  });

  it("[NAME1] invalid document names are refused per document with a clear reason", async () => {
    const { address, server } = await startServer();
    const other = await bystander(address.wsUrl);
    for (const name of ["x".repeat(256), "tab\there", "nul\0byte".replace("\0", "\u0001"), "   "]) {
      const provider = connect({ url: address.wsUrl, name });
      expect(await refusal(provider)).toMatch(/^invalid-document-name: /);
    }
    // Valid but unusual names are ordinary documents.
    for (const name of ["../../etc/passwd", "x".repeat(255), "ümlaut/😀 name"]) {
      const provider = connect({ url: address.wsUrl, name });
      await synced(provider);
      provider.document.getText("text").insert(0, name);
      await acknowledged(provider);
      expect((await server.store.meta(name))?.logEntries).toBe(1);
    }
    await other.check("after bad names");
  });

  it("[LIM1] documents beyond MAX_DOCUMENTS are refused until one unloads", async () => {
    const { address } = await startServer({ config: { maxDocuments: 2 } });
    const a = connect({ url: address.wsUrl, name: "one" });
    const b = connect({ url: address.wsUrl, name: "two" });
    await Promise.all([synced(a), synced(b)]);
    const c = connect({ url: address.wsUrl, name: "three" });
    expect(await refusal(c)).toBe("too-many-documents");
    a.destroy();
    const d = connect({ url: address.wsUrl, name: "three" });
    await vi.waitFor(() => expect(d.isSynced).toBe(true));
  });
});

describe("limits before authentication", () => {
  it("[LIM2] a connection that queues too much before authenticating is closed, alone", async () => {
    const { address } = await startServer({
      config: { maxUnauthenticatedQueueMessages: 5, maxPendingDocuments: 3 },
    });
    const other = await bystander(address.wsUrl);
    // Messages for a document whose auth never comes are queued, up to the limit.
    const chatty = rawSocket(address.wsUrl);
    await chatty.opened;
    for (let i = 0; i < 6; i++) chatty.ws.send(wire.syncStep1("never-authenticated"));
    expect((await chatty.closed).code).toBe(4205);
    // Too many documents waiting for authentication at once.
    const fanout = rawSocket(address.wsUrl);
    await fanout.opened;
    for (let i = 0; i < 4; i++) fanout.ws.send(wire.syncStep1(`pending-${i}`));
    expect((await fanout.closed).code).toBe(4205);
    await other.check("after the limits");
  });
});
