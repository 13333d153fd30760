import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe } from "vitest";
import { FileAttachmentStore } from "../../server/src/attachments/files.ts";
import { MemoryAttachmentStore } from "../../server/src/attachments/memory.ts";
import type { AttachmentStore } from "../../server/src/attachments/store.ts";
import { PostgresStore } from "../../server/src/persistence/postgres.ts";
import { type Engine, startPostgres } from "../helpers/engines.ts";
import { describeAttachmentContract } from "./attachments.contract.ts";

describeAttachmentContract("memory", { create: async () => new MemoryAttachmentStore() });

const dirs: string[] = [];
const dirOf = new WeakMap<AttachmentStore, string>();
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describeAttachmentContract("files", {
  async create() {
    const dir = await mkdtemp(join(tmpdir(), "collab-attachments-"));
    dirs.push(dir);
    const store = await FileAttachmentStore.open(dir);
    dirOf.set(store, dir);
    return store;
  },
  async reopen(store) {
    const dir = dirOf.get(store);
    if (dir === undefined) throw new Error("unknown store");
    await store.close();
    const reopened = await FileAttachmentStore.open(dir);
    dirOf.set(reopened, dir);
    return reopened;
  },
});

describe("postgres", () => {
  let engine: Engine;
  let schemas = 0;
  const documents = new WeakMap<AttachmentStore, { store: PostgresStore; schema: string }>();
  beforeAll(async () => {
    engine = await startPostgres();
  });
  afterAll(async () => {
    await engine.stop();
  });

  async function openIn(schema: string): Promise<AttachmentStore> {
    const store = await PostgresStore.open({ url: engine.url, schema });
    const attachments = store.attachments();
    // Closing the attachments closes the document store whose connections they use.
    const closing: AttachmentStore = Object.assign(Object.create(attachments) as AttachmentStore, {
      close: async () => {
        await attachments.close();
        await store.close();
      },
    });
    documents.set(closing, { store, schema });
    return closing;
  }

  describeAttachmentContract("postgres", {
    create: () => openIn(`attachments_${++schemas}`),
    async reopen(store) {
      const held = documents.get(store);
      if (held === undefined) throw new Error("unknown store");
      await store.close();
      return openIn(held.schema);
    },
  });
});
