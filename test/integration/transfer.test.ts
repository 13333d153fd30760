/**
 * `collab-server migrate`, `export` and `import` through the real CLI:
 * every document arrives byte for byte on its Yjs state, with its times and
 * versions, and so do the trash and the record of deleted clients; running a migration twice changes nothing; a progress bar is
 * shown; a bad backup file is refused with a clear message.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { FileAttachmentStore } from "../../server/src/attachments/files.ts";
import type { AttachmentOwner, AttachmentStore } from "../../server/src/attachments/store.ts";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { PostgresStore } from "../../server/src/persistence/postgres.ts";
import type { DocumentStore } from "../../server/src/persistence/store.ts";
import { allNames, mergedState } from "../../server/src/persistence/transfer.ts";
import { type Engine, startPostgres } from "../helpers/engines.ts";
import { random, rng } from "../helpers/prng.ts";
import { runCli, tempDir } from "../helpers/server.ts";

const SEED = 20261122;

/** Documents with edit histories, compactions and versions, made from a seeded PRNG. */
async function populate(store: DocumentStore, count: number): Promise<void> {
  const r = rng(SEED);
  const int = (below: number) => random.int(r, 0, below - 1);
  for (let d = 0; d < count; d++) {
    const name = d % 3 === 0 ? `team/doc ${d}` : `doc-${d}`;
    const doc = new Y.Doc();
    doc.on("update", (update: Uint8Array) => void store.append(name, update));
    const text = doc.getText("t");
    for (let edit = 0; edit < 20 + int(40); edit++) {
      if (text.length > 0 && int(4) === 0) text.delete(int(text.length), 1);
      else text.insert(int(text.length + 1), String.fromCharCode(97 + int(26)));
    }
    if (d % 2 === 0) await store.compact(name, Y.encodeStateAsUpdate(doc));
    if (d % 4 === 0) {
      await store.saveVersion(
        name,
        {
          id: `0000000000001-${d}`,
          label: `v${d}`,
          kind: "named",
          created: 1_700_000_000_000 + d,
          author: "ada",
        },
        Y.encodeStateAsUpdate(doc),
      );
    }
    text.insert(0, "after the version ");
  }
  // The trash: two documents deleted (one with a version), one of them purged since.
  await store.flush();
  await store.trash("doc-1", {
    id: "0000000000002-a",
    deleted: 1_700_000_100_000,
    deletedBy: "ada",
  });
  await store.trash("team/doc 0", {
    id: "0000000000002-b",
    deleted: 1_700_000_200_000,
    deletedBy: null,
  });
  await store.trash("doc-2", {
    id: "0000000000002-c",
    deleted: 1_700_000_300_000,
    deletedBy: null,
  });
  await store.purgeTrash("doc-2", "0000000000002-c");
  await store.flush();
}

interface Snapshot {
  readonly trash: Array<{ entry: unknown; state: string; versions: string[] }>;
  readonly deletedClients: unknown[];
  readonly names: string[];
  readonly documents: Record<string, { state: string; created: number; updated: number }>;
  readonly versions: Record<
    string,
    Array<{ id: string; label: string | null; created: number; state: string }>
  >;
}

/** Everything a store holds, comparable with toEqual: states as hex of their canonical encoding. */
async function snapshot(store: DocumentStore): Promise<Snapshot> {
  const names = await allNames(store);
  const documents: Snapshot["documents"] = {};
  const versions: Snapshot["versions"] = {};
  for (const name of names) {
    const stored = await store.load(name);
    if (stored === null) continue;
    documents[name] = {
      state: Buffer.from(mergedState(stored.updates)).toString("hex"),
      created: stored.meta.created,
      updated: stored.meta.updated,
    };
    versions[name] = [];
    for (const meta of await store.listVersions(name)) {
      const version = await store.loadVersion(name, meta.id);
      versions[name].push({
        id: meta.id,
        label: meta.label,
        created: meta.created,
        state: Buffer.from(version?.state ?? []).toString("hex"),
      });
    }
  }
  const trash: Snapshot["trash"] = [];
  for (const entry of await store.listTrash({ limit: 1000 })) {
    const loaded = await store.loadTrash(entry.name, entry.id);
    trash.push({
      entry,
      state: Buffer.from(loaded?.state ?? []).toString("hex"),
      versions: (await store.trashVersions(entry.name, entry.id)).map(
        (v) => `${v.meta.id}:${Buffer.from(v.state).toString("hex")}`,
      ),
    });
  }
  const deletedClients = await store.listDeletedClients({ limit: 1000 });
  return { names, documents, versions, trash, deletedClients };
}

async function levelDb(dir: string): Promise<DocumentStore> {
  return LevelDbStore.open({ dir });
}

/** Attachments beside a LevelDB directory: one shared by a document and a trash entry, one of its own. */
async function populateAttachments(dataDir: string): Promise<void> {
  const store = await FileAttachmentStore.open(join(dataDir, "attachments"));
  const put = (owner: AttachmentOwner, text: string) => {
    const bytes = new TextEncoder().encode(text);
    const id = createHash("sha256").update(bytes).digest("hex");
    const meta = {
      id,
      type: "image/png",
      size: bytes.byteLength,
      filename: `${text}.png`,
      created: 1_700_000_000_000,
    };
    return store.put(owner, meta, bytes);
  };
  await put({ name: "team/doc 3" }, "shared picture");
  await put({ name: "doc-1", trashId: "0000000000002-a" }, "shared picture");
  await put({ name: "doc-1", trashId: "0000000000002-a" }, "trashed file");
  await store.close();
}

/** Every attachment of a store, with its bytes in hex. */
async function attachmentSnapshot(store: AttachmentStore): Promise<unknown[]> {
  const all: unknown[] = [];
  for (const owner of await store.owners()) {
    for (const meta of await store.list(owner)) {
      all.push({
        owner,
        meta,
        bytes: Buffer.from((await store.read(owner, meta.id)) ?? []).toString("hex"),
      });
    }
  }
  return all;
}

/** Runs a transfer command; the stores it names must be closed meanwhile. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const result = await runCli(env, args);
  return result;
}

let postgres: Engine;
beforeAll(async () => {
  postgres = await startPostgres();
}, 60_000);
afterAll(async () => {
  await postgres?.stop();
});

describe("migrate", () => {
  it("[SCALE8] copies LevelDB to PostgreSQL byte for byte with times and versions; a second run changes nothing", async () => {
    const source = join(await tempDir(), "data");
    const store = await levelDb(source);
    await populate(store, 24);
    const expected = await snapshot(store);
    await store.close();
    await populateAttachments(source);
    const files = await FileAttachmentStore.open(join(source, "attachments"));
    const expectedAttachments = await attachmentSnapshot(files);
    expect(expectedAttachments).toHaveLength(3);

    const first = await cli(["migrate", "--from", `leveldb:${source}`, "--to", postgres.url]);
    expect(first.stderr).toContain("21/21 documents");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(
      "migrated 21 documents: 21 written, 0 already up to date; 5 versions written; 2 trash entries written; 3 attachments written",
    );

    const target = await PostgresStore.open({ url: postgres.url });
    expect(await snapshot(target)).toEqual(expected);
    expect(await attachmentSnapshot(target.attachments())).toEqual(expectedAttachments);
    await target.close();

    const second = await cli(["migrate", "--from", `leveldb:${source}`, "--to", postgres.url]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(
      "migrated 21 documents: 0 written, 21 already up to date; 0 versions written; 0 trash entries written; 0 attachments written",
    );
    const again = await PostgresStore.open({ url: postgres.url });
    expect(await snapshot(again)).toEqual(expected);
    await again.close();
  });

  it("[SCALE8] names a store it does not understand, without echoing a password", async () => {
    const result = await cli([
      "migrate",
      "--from",
      "mysql://root:hunter2@db/x",
      "--to",
      "leveldb:./nowhere",
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("use leveldb:<directory> or postgres://");
    expect(result.stderr).not.toContain("hunter2");
  });
});

describe("export and import", () => {
  for (const gzip of [false, true]) {
    it(`[SCALE9] round-trips every document byte for byte${gzip ? " through a .gz file" : ""}`, async () => {
      const dir = await tempDir();
      const source = join(dir, "source");
      const store = await levelDb(source);
      await populate(store, 12);
      const expected = await snapshot(store);
      await store.close();
      await populateAttachments(source);
      const expectedAttachments = await attachmentSnapshot(
        await FileAttachmentStore.open(join(source, "attachments")),
      );

      const file = join(dir, gzip ? "backup.jsonl.gz" : "backup.jsonl");
      const exported = await cli(["export", "--out", file], { STORE: "leveldb", DATA_DIR: source });
      expect(exported.code).toBe(0);
      expect(exported.stdout).toContain(
        "exported 9 documents, 2 versions, 2 trash entries and 3 attachments",
      );
      expect(exported.stderr).toContain("9/9 documents");

      const restored = join(dir, "restored");
      const imported = await cli(["import", file, "--to", `leveldb:${restored}`]);
      expect(imported.code).toBe(0);
      expect(imported.stdout).toContain("imported 9 documents: 9 written");
      const target = await levelDb(restored);
      expect(await snapshot(target)).toEqual(expected);
      await target.close();
      expect(
        await attachmentSnapshot(await FileAttachmentStore.open(join(restored, "attachments"))),
      ).toEqual(expectedAttachments);

      const twice = await cli(["import", file, "--to", `leveldb:${restored}`]);
      expect(twice.stdout).toContain(
        "imported 9 documents: 0 written, 9 already up to date; 0 versions written; 0 trash entries written; 0 attachments written",
      );
    });
  }

  it("[SCALE9] reads a version-1 backup, written before the trash", async () => {
    const dir = await tempDir();
    const file = join(dir, "old.jsonl");
    const doc = new Y.Doc();
    doc.getText("t").insert(0, "from an old backup");
    const state = Buffer.from(Y.encodeStateAsUpdate(doc)).toString("base64");
    await writeFile(
      file,
      `${JSON.stringify({ type: "header", format: "collab-docs-export", version: 1, created: "2026-01-01T00:00:00.000Z", documents: 1 })}\n${JSON.stringify({ type: "document", name: "old", created: 1, updated: 2, state })}\n`,
    );
    const target = join(dir, "target");
    const result = await cli(["import", file, "--to", `leveldb:${target}`]);
    expect(result.code).toBe(0);
    const store = await levelDb(target);
    const loaded = new Y.Doc();
    for (const update of (await store.load("old"))?.updates ?? []) Y.applyUpdate(loaded, update);
    expect(loaded.getText("t").toString()).toBe("from an old backup");
    await store.close();
  });

  it("[SCALE9] refuses a file that is not a backup, saying where", async () => {
    const dir = await tempDir();
    const file = join(dir, "not-a-backup.jsonl");
    await writeFile(file, '{"type":"document","name":"x"}\n');
    const result = await cli(["import", file, "--to", `leveldb:${join(dir, "target")}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("not valid at line 1: the file does not start with a header");
  });
});
