import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { MemoryStore } from "../../server/src/persistence/memory.ts";
import type { DocumentStore } from "../../server/src/persistence/store.ts";
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
