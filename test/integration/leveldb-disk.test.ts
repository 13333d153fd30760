/**
 * LevelDB keeps superseded data in its files until a level fills up; the
 * store compacts a document's key range once enough of it is garbage, so a
 * busy document does not leave megabytes of dead log on disk ([PERS14]).
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { tempDir } from "../helpers/server.ts";

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

describe("LevelDB disk use", () => {
  it("[PERS14] superseded log entries and snapshots are reclaimed from disk", async () => {
    const dir = await tempDir();
    const store = await LevelDbStore.open({ dir });
    const doc = new Y.Doc();
    const text = doc.getText("text");
    const updates: Uint8Array[] = [];
    doc.on("update", (u: Uint8Array) => updates.push(u));
    // 4 MiB of updates, compacted every 1,000 as the server would; each compaction supersedes the log.
    const filler = "x".repeat(1024);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 4096; i++) {
      text.insert(text.length, filler);
      text.delete(0, 1024);
      for (const u of updates.splice(0)) writes.push(store.append("busy", u));
      if (i % 1000 === 999) writes.push(store.compact("busy", Y.encodeStateAsUpdate(doc)));
    }
    writes.push(store.compact("busy", Y.encodeStateAsUpdate(doc)));
    await Promise.all(writes);
    const logical = (await store.meta("busy"))?.bytes ?? 0;
    await store.close();
    const onDisk = await dirBytes(dir);
    // Without reclaiming, the directory holds the whole 8 MiB of superseded updates.
    expect(onDisk).toBeLessThan(1024 * 1024);
    expect(logical).toBeLessThan(64 * 1024);
    const reopened = await LevelDbStore.open({ dir });
    const stored = await reopened.load("busy");
    await reopened.close();
    const loaded = new Y.Doc();
    for (const u of stored?.updates ?? []) Y.applyUpdate(loaded, u);
    expect(loaded.getText("text").toString()).toBe(text.toString());
  });
});

describe("LevelDB keys", () => {
  it("[PERS4] deleting a document leaves none of its keys behind", async () => {
    const dir = await tempDir();
    const store = await LevelDbStore.open({ dir });
    const doc = new Y.Doc();
    doc.on("update", (u: Uint8Array) => void store.append("gone", u));
    for (let i = 0; i < 20; i++) doc.getText("text").insert(0, String(i));
    await store.compact("gone", Y.encodeStateAsUpdate(doc));
    doc.getText("text").insert(0, "tail");
    await store.append("kept", Y.encodeStateAsUpdate(new Y.Doc()));
    await store.delete("gone");
    await store.close();
    const db = new ClassicLevel<string, string>(dir);
    const keys = await db.keys().all();
    await db.close();
    expect(keys.filter((k) => k.includes("gone"))).toEqual([]);
    expect(keys.filter((k) => k.includes("kept")).length).toBeGreaterThan(0);
  });
});

describe("LevelDB format", () => {
  it("[PERS23] a format-2 directory (before the trash) opens and is marked format 3; a newer format is refused", async () => {
    const dir = await tempDir();
    const first = await LevelDbStore.open({ dir });
    const doc = new Y.Doc();
    doc.getText("text").insert(0, "from format 2");
    await first.append("doc", Y.encodeStateAsUpdate(doc));
    await first.close();
    const formatOf = async () => {
      const db = new ClassicLevel<string, string>(dir);
      const format = await db.get("\0format");
      await db.close();
      return format;
    };
    const setFormat = async (format: string) => {
      const db = new ClassicLevel<string, string>(dir);
      await db.put("\0format", format);
      await db.close();
    };
    await setFormat("2");
    const upgraded = await LevelDbStore.open({ dir });
    const loaded = new Y.Doc();
    for (const update of (await upgraded.load("doc"))?.updates ?? []) Y.applyUpdate(loaded, update);
    expect(loaded.getText("text").toString()).toBe("from format 2");
    await upgraded.close();
    expect(await formatOf()).toBe("3");
    await setFormat("4");
    await expect(LevelDbStore.open({ dir })).rejects.toMatchObject({ code: "STORE_CORRUPT" });
  });
});
