/**
 * Durability: what the server acknowledged survives restarts, SIGKILL, and
 * compaction while a document stays open; a failing store holds
 * acknowledgements back and shows in /readyz; a document that cannot be loaded
 * is refused and its stored data left untouched (PERS and LIFE rules).
 */
import { ClassicLevel } from "classic-level";
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { acknowledged, connect, refusal, synced } from "../helpers/clients.ts";
import { spawnServer, startServer, startServerWithFaults, tempDir } from "../helpers/server.ts";

describe("durability", () => {
  it("[PERS10] a restart on the same DATA_DIR keeps every document", async () => {
    const dataDir = await tempDir();
    const first = await startServer({ dataDir });
    const writer = connect({ url: first.address.wsUrl, name: "kept" });
    await synced(writer);
    writer.document.getText("text").insert(0, "survives a restart");
    writer.document.getXmlFragment("prosemirror").insert(0, [new Y.XmlElement("paragraph")]);
    await acknowledged(writer);
    writer.destroy();
    await first.server.close();

    const second = await startServer({ dataDir });
    const reader = connect({ url: second.address.wsUrl, name: "kept" });
    await synced(reader);
    expect(reader.document.getText("text").toString()).toBe("survives a restart");
    expect(reader.document.getXmlFragment("prosemirror").length).toBe(1);
  });

  it("[PERS11] every edit acknowledged before SIGKILL is there after restart", async () => {
    const dataDir = await tempDir();
    const first = await spawnServer({ DATA_DIR: dataDir });
    const writers = [0, 1, 2].map(() => connect({ url: first.address.wsUrl, name: "crash" }));
    await Promise.all(writers.map((w) => synced(w)));
    for (let round = 0; round < 20; round++) {
      writers.forEach((w, i) => {
        w.document.getText("text").insert(0, `[${i}:${round}]`);
      });
    }
    await Promise.all(writers.map((w) => acknowledged(w)));
    // Killed the moment every client saw unsyncedChanges === 0: nothing may be lost.
    const acknowledgedText = writers[0]?.document.getText("text").toString() ?? "";
    const acknowledgedState = writers.map((w) => Y.encodeStateVector(w.document));
    first.child.kill("SIGKILL");
    expect((await first.exited).signal).toBe("SIGKILL");
    for (const w of writers) w.destroy();

    const second = await spawnServer({ DATA_DIR: dataDir });
    const reader = connect({ url: second.address.wsUrl, name: "crash" });
    await synced(reader);
    const text = reader.document.getText("text").toString();
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 3; i++) expect(text).toContain(`[${i}:${round}]`);
    }
    expect(text.length).toBe(acknowledgedText.length);
    // The restarted server's state covers every acknowledged client clock.
    const restored = Y.decodeStateVector(Y.encodeStateVector(reader.document));
    for (const sv of acknowledgedState) {
      for (const [client, clock] of Y.decodeStateVector(sv)) {
        expect(restored.get(client) ?? 0).toBeGreaterThanOrEqual(clock);
      }
    }
  });

  it("[PERS12] a document edited past several compactions while open loads correctly", async () => {
    const dataDir = await tempDir();
    const first = await startServer({ dataDir, config: { compactMaxEntries: 40 } });
    const early = connect({ url: first.address.wsUrl, name: "long" });
    await synced(early);
    const text = early.document.getText("text");
    for (let i = 0; i < 400; i++) {
      text.insert(i % 7 === 0 ? 0 : text.length, String(i % 10));
      if (i % 5 === 4) text.delete(text.length - 1, 1);
      // Separate round trips, as a person typing would make them.
      if (i % 10 === 9) await acknowledged(early);
    }
    const compactions = async () =>
      Number(
        /collab_compactions_total (\d+)/.exec(await first.server.metrics.registry.metrics())?.[1],
      );
    await vi.waitFor(async () => expect(await compactions()).toBeGreaterThanOrEqual(5));
    // A client joining while the document is open gets the live state.
    const late = connect({ url: first.address.wsUrl, name: "long" });
    await synced(late);
    expect(late.document.getText("text").toString()).toBe(text.toString());
    const stored = await first.server.store.meta("long");
    expect(stored?.logEntries).toBeLessThan(40 + 5);
    early.destroy();
    late.destroy();
    await first.server.close();

    const second = await startServer({ dataDir });
    const reader = connect({ url: second.address.wsUrl, name: "long" });
    await synced(reader);
    expect(reader.document.getText("text").toString()).toBe(text.toString());
  });

  it("[PERS13] while store writes fail, edits are not acknowledged and /readyz says so; they are stored once it recovers", async () => {
    const { address, server, store, faults } = await startServerWithFaults({ retryMs: 30 });
    const writer = connect({ url: address.wsUrl, name: "fragile" });
    await synced(writer);
    expect((await fetch(`${address.url}/readyz`)).status).toBe(200);

    faults.remaining = 5;
    writer.document.getText("text").insert(0, "written while the disk fails");
    await vi.waitFor(() => expect(store.health().state).toBe("failing"));
    const ready = await fetch(`${address.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: "unavailable",
      reason: "store writes failing",
    });
    // The edit is applied and relayed, but not acknowledged: it is not stored yet.
    expect(writer.unsyncedChanges).toBeGreaterThan(0);
    expect(writer.hasUnsyncedChanges).toBe(true);

    await acknowledged(writer);
    expect(faults.remaining).toBe(0);
    expect((await fetch(`${address.url}/readyz`)).status).toBe(200);
    const metrics = await server.metrics.registry.getSingleMetricAsString(
      "collab_store_errors_total",
    );
    expect(metrics).toMatch(/collab_store_errors_total 5/);
    const stored = await store.load("fragile");
    const doc = new Y.Doc();
    for (const update of stored?.updates ?? []) Y.applyUpdate(doc, update);
    expect(doc.getText("text").toString()).toBe("written while the disk fails");
  });

  it("[LOAD1] a document that fails to load is refused, other documents still work, and its data is left untouched", async () => {
    const dataDir = await tempDir();
    const first = await startServer({ dataDir });
    for (const name of ["broken", "fine"]) {
      const writer = connect({ url: first.address.wsUrl, name });
      await synced(writer);
      writer.document.getText("text").insert(0, `content of ${name}`);
      await acknowledged(writer);
      writer.destroy();
    }
    await first.server.close();

    // Corrupt "broken": its metadata now claims log entries that do not exist.
    const db = new ClassicLevel<string, string>(dataDir);
    const metaKey = "m\0broken";
    const meta = JSON.parse((await db.get(metaKey)) ?? "{}") as { nextSeq: number };
    meta.nextSeq += 3;
    await db.put(metaKey, JSON.stringify(meta));
    const before = await db.iterator().all();
    await db.close();

    const second = await startServer({ dataDir });
    const victim = connect({ url: second.address.wsUrl, name: "broken" });
    expect(await refusal(victim)).toBe("document-load-failed");
    victim.document.getText("text").insert(0, "must not overwrite");
    const fine = connect({ url: second.address.wsUrl, name: "fine" });
    await synced(fine);
    expect(fine.document.getText("text").toString()).toBe("content of fine");
    victim.destroy();
    fine.destroy();
    await second.server.close();

    const reopened = new ClassicLevel<string, string>(dataDir);
    const after = (await reopened.iterator().all()).filter(
      ([key]) =>
        !key.startsWith("m\0fine") &&
        !key.startsWith("s\0fine") &&
        !key.startsWith("u\0fine") &&
        !key.startsWith("\0probe"),
    );
    await reopened.close();
    expect(after).toEqual(
      before.filter(
        ([key]) =>
          !key.startsWith("m\0fine") &&
          !key.startsWith("s\0fine") &&
          !key.startsWith("u\0fine") &&
          !key.startsWith("\0probe"),
      ),
    );
  });
});
