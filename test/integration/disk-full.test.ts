/**
 * A real write failure: LevelDB on a tiny tmpfs that fills up ([PERS13]).
 * Without reopening LevelDB before the retry, the retried write "succeeds"
 * after a torn write-ahead-log record and is gone after a restart: this test
 * fails if LevelDbStore.recover stops reopening.
 * Needs root to mount the tmpfs (CI and the development machines run as
 * root); elsewhere the test is skipped and says why.
 */
import { execFileSync } from "node:child_process";
import { mkdir, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";

function tryMount(dir: string): string | null {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir], { stdio: "pipe" });
    return null;
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error).trim();
  }
}

let mountPoint = "";
let cannotMount: string | null = "not tried";

beforeAll(async () => {
  mountPoint = join(tmpdir(), `collab-diskfull-${process.pid}`);
  await mkdir(mountPoint, { recursive: true });
  cannotMount = process.getuid?.() === 0 ? tryMount(mountPoint) : "not running as root";
});

afterAll(async () => {
  if (cannotMount === null) execFileSync("umount", [mountPoint]);
  await rm(mountPoint, { recursive: true, force: true });
});

describe("a full disk", () => {
  it("[PERS13] writes fail loudly while the disk is full, are retried, and land once space is back", async (context) => {
    if (cannotMount !== null) context.skip(`cannot mount a tmpfs: ${cannotMount}`);
    const store = await LevelDbStore.open({
      dir: join(mountPoint, "db"),
      initialRetryMs: 20,
      maxRetryMs: 100,
    });
    const failures: unknown[] = [];
    store.events.on("writeFailed", ({ error }) => failures.push(error));
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on("update", (u: Uint8Array) => updates.push(u));
    doc.getText("text").insert(0, "before the disk filled");
    await store.append("doc", updates.shift() as Uint8Array);

    // Fill what is left of the tmpfs.
    const { bavail, bsize } = await statfs(mountPoint);
    const filler = join(mountPoint, "filler");
    await writeFile(filler, Buffer.alloc(Math.max(0, bavail * bsize - 4096)));
    doc.getText("text").insert(0, "x".repeat(256 * 1024));
    const pending = store.append("doc", updates.shift() as Uint8Array);
    await vi.waitFor(() => expect(store.health().state).toBe("failing"), { timeout: 10_000 });
    expect(failures.length).toBeGreaterThan(0);
    expect(String(failures[0])).toMatch(/space|IO error/i);

    await rm(filler);
    await pending;
    expect(store.health().state).toBe("ok");
    await store.close();

    const reopened = await LevelDbStore.open({ dir: join(mountPoint, "db") });
    const stored = await reopened.load("doc");
    await reopened.close();
    const loaded = new Y.Doc();
    for (const u of stored?.updates ?? []) Y.applyUpdate(loaded, u);
    expect(loaded.getText("text").toString()).toBe(doc.getText("text").toString());
  });
});
