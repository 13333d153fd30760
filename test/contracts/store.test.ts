import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import * as Y from "yjs";
import { isCollabError } from "../../server/src/errors.ts";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import type { FaultInjector } from "../../server/src/persistence/log-store.ts";
import { MemoryStore } from "../../server/src/persistence/memory.ts";
import { LOCK, PostgresStore, prefixEnd } from "../../server/src/persistence/postgres.ts";
import type { DocumentStore } from "../../server/src/persistence/store.ts";
import { type Engine, freePort, startPostgres } from "../helpers/engines.ts";
import { docFrom, Typist, textOf } from "../helpers/ydoc.ts";
import { describeStoreContract } from "./store.contract.ts";

const fastRetry = { initialRetryMs: 5, maxRetryMs: 20 };

describeStoreContract("memory", {
  create: async (options) => new MemoryStore({ ...fastRetry, ...options }),
});

const dirs: string[] = [];
const dirOf = new WeakMap<DocumentStore, string>();
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

for (const fsync of [false, true])
  describeStoreContract(fsync ? "leveldb with fsync" : "leveldb", {
    async create(options) {
      const dir = await mkdtemp(join(tmpdir(), "collab-store-"));
      dirs.push(dir);
      const store = await LevelDbStore.open({ dir, fsync, ...fastRetry, ...options });
      dirOf.set(store, dir);
      return store;
    },
    async reopen(store) {
      const dir = dirOf.get(store);
      if (dir === undefined) throw new Error("unknown store");
      await store.close();
      const reopened = await LevelDbStore.open({ dir, fsync, ...fastRetry });
      dirOf.set(reopened, dir);
      return reopened;
    },
  });

describe("postgres", () => {
  let engine: Engine;
  let schemas = 0;
  const schemaOf = new WeakMap<DocumentStore, string>();
  beforeAll(async () => {
    engine = await startPostgres();
  });
  afterAll(async () => {
    await engine.stop();
  });

  async function openIn(schema: string, options: { faults?: FaultInjector } = {}) {
    const store = await PostgresStore.open({ url: engine.url, schema, ...fastRetry, ...options });
    schemaOf.set(store, schema);
    return store;
  }

  function schemaOfStore(store: DocumentStore): string {
    const schema = schemaOf.get(store);
    if (schema === undefined) throw new Error("unknown store");
    return schema;
  }

  describeStoreContract("postgres", {
    create: (options) => openIn(`contract_${++schemas}`, options),
    async reopen(store) {
      await store.close();
      return openIn(schemaOfStore(store));
    },
    createSibling: (store) => openIn(schemaOfStore(store)),
  });

  describe("PostgresStore", () => {
    /** A query on the test cluster, outside any store. */
    async function admin<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      const client = new pg.Client({ connectionString: engine.url });
      await client.connect();
      try {
        return (await client.query<R>(text, values)).rows;
      } finally {
        await client.end();
      }
    }

    it("[PERS20] an unreachable database fails open with STORE_UNAVAILABLE naming the host, never the password", async () => {
      const port = await freePort();
      const failure = await PostgresStore.open({
        url: `postgres://collab:pa55-w0rd-secret@127.0.0.1:${port}/collab`,
      }).catch((error: unknown) => error);
      expect(isCollabError(failure, "STORE_UNAVAILABLE")).toBe(true);
      const message = (failure as Error).message;
      expect(message).toContain(`127.0.0.1:${port}/collab`);
      expect(JSON.stringify(failure)).not.toContain("pa55-w0rd-secret");
      expect(message).not.toContain("pa55-w0rd-secret");
      // A login the server refuses says so, also without the password.
      const refused = await PostgresStore.open({
        url: engine.url.replace("postgres@", "nobody:pa55-w0rd-secret@"),
      }).catch((error: unknown) => error);
      expect(isCollabError(refused, "STORE_UNAVAILABLE")).toBe(true);
      expect((refused as Error).message).toMatch(/role "nobody" does not exist/);
      expect((refused as Error).message).not.toContain("pa55-w0rd-secret");
    });

    it("[PERS20] instances opening at once create the schema once, with a version row and logged tables", async () => {
      const schema = `opening_${++schemas}`;
      const stores = await Promise.all(Array.from({ length: 4 }, () => openIn(schema)));
      await Promise.all(stores.map((store) => store.close()));
      const reopened = await openIn(schema);
      await reopened.close();
      expect(await admin(`SELECT version FROM "${schema}".collab_schema`)).toEqual([
        { version: 3 },
      ]);
      const tables = await admin<{ relname: string; relpersistence: string }>(
        `SELECT relname, relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY relname`,
        [schema],
      );
      expect(tables).toEqual(
        [
          "collab_attachment_blobs",
          "collab_attachments",
          "collab_deleted_clients",
          "collab_documents",
          "collab_schema",
          "collab_trash",
          "collab_trash_versions",
          "collab_updates",
          "collab_versions",
        ].map((relname) => ({ relname, relpersistence: "p" })),
      );
    });

    it("[PERS20] a version-1 schema (before the trash) is migrated in place, its documents kept", async () => {
      const schema = `older_${++schemas}`;
      const first = await openIn(schema);
      await first.append("doc", new Typist().type("from version 1"));
      await first.close();
      // What version 1 had: no trash tables, and no attachments (version 3).
      await admin(`DROP TABLE "${schema}".collab_trash, "${schema}".collab_trash_versions,
        "${schema}".collab_deleted_clients, "${schema}".collab_attachments,
        "${schema}".collab_attachment_blobs; UPDATE "${schema}".collab_schema SET version = 1`);
      const migrated = await openIn(schema);
      onTestFinished(async () => {
        await migrated.close();
      });
      expect(textOf(docFrom((await migrated.load("doc"))?.updates ?? []))).toBe("from version 1");
      expect(await migrated.trash("doc", { id: "t1", deleted: 1, deletedBy: null })).not.toBeNull();
      expect(await migrated.attachments().owners()).toEqual([]);
      expect(await admin(`SELECT version FROM "${schema}".collab_schema`)).toEqual([
        { version: 3 },
      ]);
    });

    it("[PERS20] a role confined to its own schema, with synchronous_commit off, opens it and writes", async () => {
      // No CREATE on the database; the role's default would acknowledge before the WAL is flushed.
      await admin(`CREATE ROLE confined LOGIN;
        ALTER ROLE confined SET synchronous_commit = off;
        CREATE SCHEMA confined AUTHORIZATION confined`);
      const url = engine.url.replace("postgres@", "confined@");
      for (let open = 0; open < 2; open++) {
        const store = await PostgresStore.open({ url, schema: "confined", ...fastRetry });
        await store.append("doc", new Typist().type("x"));
        await store.probe();
        expect((await store.meta("doc"))?.logEntries).toBe(open + 1);
        await store.close();
      }
    });

    it("[PERS20] a schema newer than this server is refused with STORE_CORRUPT", async () => {
      const schema = `newer_${++schemas}`;
      await (await openIn(schema)).close();
      await admin(`UPDATE "${schema}".collab_schema SET version = 99`);
      await expect(openIn(schema)).rejects.toSatisfy((e) => isCollabError(e, "STORE_CORRUPT"));
    });

    it("[PERS19] appends go on while another instance compacts the document; compactions take turns", async () => {
      const store = await openIn(`turns_${++schemas}`);
      onTestFinished(async () => {
        await store.close();
      });
      const typist = new Typist();
      await store.append("doc", typist.type("a"));
      // Another instance in the middle of compacting "doc" holds its snapshot lock.
      const other = new pg.Client({ connectionString: engine.url });
      await other.connect();
      onTestFinished(async () => {
        await other.end();
      });
      await other.query("BEGIN");
      await other.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [LOCK.snapshot, "doc"]);
      await store.append("doc", typist.type("b"));
      let compacted = false;
      const compaction = store.compact("doc", Y.encodeStateAsUpdate(typist.doc)).then(() => {
        compacted = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(compacted).toBe(false);
      await other.query("COMMIT");
      await compaction;
      const stored = await store.load("doc");
      expect(stored?.updates).toHaveLength(1);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe("ab");
    });

    it("[PERS19] a compaction merges a long log (30,000 entries) in groups, not in quadratic time", async () => {
      const store = await openIn(`long_${++schemas}`);
      onTestFinished(async () => {
        await store.close();
      });
      const typist = new Typist();
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 30_000; i++)
        writes.push(store.append("doc", typist.type(String(i % 10))));
      await Promise.all(writes);
      const started = performance.now();
      await store.compact("doc", Y.encodeStateAsUpdate(typist.doc));
      // Merged in one Y.mergeUpdates call, this log takes about 10 s; in groups, well under 1 s.
      expect(performance.now() - started).toBeLessThan(5_000);
      const stored = await store.load("doc");
      expect(stored?.updates).toHaveLength(1);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe(typist.text);
    });

    it("[PERS20] connections the server drops (as in a restart) are replaced; no write is lost", async () => {
      const store = await openIn(`dropped_${++schemas}`);
      onTestFinished(async () => {
        await store.close();
      });
      const typist = new Typist();
      await store.append("doc", typist.type("before"));
      await admin(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'collab-server' AND pid <> pg_backend_pid()`,
      );
      await store.append("doc", typist.type(" after"));
      await store.probe();
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("before after");
    });

    it("[PERS20] a label PostgreSQL text cannot hold is stored with U+FFFD and does not stall the queue", async () => {
      const store = await openIn(`labels_${++schemas}`);
      onTestFinished(async () => {
        await store.close();
      });
      const saved = await store.saveVersion(
        "doc",
        { id: "1", label: "a\0b", kind: "named", created: 1, author: "\ud800x" },
        new Typist().type("x"),
      );
      expect(saved).toMatchObject({ label: "a\ufffdb", author: "\ufffdx" });
      expect(await store.listVersions("doc")).toEqual([saved]);
      await store.append("doc", new Typist().type("next"));
      expect(store.health().state).toBe("ok");
    });

    it("prefixEnd is the first string after every string with the prefix", () => {
      expect(prefixEnd("a/")).toBe("a0");
      expect(prefixEnd("a\u{10ffff}")).toBe("b");
      expect(prefixEnd("\ud7ff")).toBe("\ue000");
      expect(prefixEnd("\u{10ffff}\u{10ffff}")).toBeNull();
    });
  });
});
