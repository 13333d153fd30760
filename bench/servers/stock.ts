/**
 * The reference server for bench/server.ts: stock Hocuspocus
 * (`new Server(...)` from @hocuspocus/server) in a child process, with the
 * benchmark's IPC (bench/servers/child.ts).
 *
 * Environment:
 * - DATA_DIR: when set, documents load from y-leveldb 0.2.0 in that
 *   directory (`getYDoc`, applied in onLoadDocument, the usual pattern);
 *   nothing is written back. When unset, there is no persistence at all.
 * - STORE_DIR: when set, Hocuspocus' own database extension
 *   (@hocuspocus/extension-database) persists documents in a LevelDB
 *   directory (classic-level), the whole state under the document's name:
 *   `fetch` on load, `store` on Hocuspocus' debounced save (2 s after the
 *   last change, at most every 10 s) and when the last client leaves. This
 *   stands in for the SQLite extension, whose better-sqlite3 12 aborts the
 *   process under garbage collection on Node 24. DATA_DIR and STORE_DIR
 *   exclude each other.
 * - FLUSH_DELAY: Hocuspocus' broadcast batching: unset for its default
 *   (0: coalesce within one event loop turn), `false` to send each update at
 *   once, or a number of ms.
 *
 *   node --expose-gc bench/servers/stock.ts     (with an IPC channel)
 */
import { Database } from "@hocuspocus/extension-database";
import { type Extension, Server } from "@hocuspocus/server";
import { ClassicLevel } from "classic-level";
import { LeveldbPersistence } from "y-leveldb";
import * as Y from "yjs";
import { announce, type LoadTiming, serveBenchmark } from "./child.ts";

function flushDelay(raw: string | undefined): { flushDelay?: false | number } {
  if (raw === undefined || raw === "") return {};
  if (raw === "false") return { flushDelay: false };
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0)
    throw new Error(`FLUSH_DELAY must be false or ms, got ${raw}`);
  return { flushDelay: ms };
}

const dataDir = process.env.DATA_DIR;
const storeDir = process.env.STORE_DIR;
if (dataDir && storeDir) throw new Error("set DATA_DIR or STORE_DIR, not both");
const persistence = dataDir ? new LeveldbPersistence(dataDir) : null;
const database = storeDir
  ? new ClassicLevel<string, Uint8Array>(storeDir, { valueEncoding: "view" })
  : null;
const loads: LoadTiming[] = [];

const extensions: Extension[] = [];
if (database !== null) {
  const level = database;
  extensions.push(
    new Database({
      async fetch({ documentName }) {
        const started = performance.now();
        // classic-level 1 rejects a missing key (LEVEL_NOT_FOUND) rather than resolving undefined.
        const state = await level.get(documentName).catch((error: { code?: string }) => {
          if (error.code === "LEVEL_NOT_FOUND") return null;
          throw error;
        });
        loads.push({ name: documentName, ms: performance.now() - started });
        return state;
      },
      async store({ documentName, state }) {
        await level.put(documentName, state);
      },
    }),
  );
}
if (persistence !== null) {
  extensions.push({
    extensionName: "y-leveldb",
    async onLoadDocument({ document, documentName }) {
      const started = performance.now();
      const stored = await persistence.getYDoc(documentName);
      Y.applyUpdate(document, Y.encodeStateAsUpdate(stored));
      stored.destroy();
      loads.push({ name: documentName, ms: performance.now() - started });
    },
  });
}

const server = new Server({
  port: 0,
  address: "127.0.0.1",
  quiet: true,
  stopOnSignals: false,
  extensions,
  ...flushDelay(process.env.FLUSH_DELAY),
});
await server.listen();
serveBenchmark({
  stats: () => ({
    loads,
    documents: server.hocuspocus.getDocumentsCount(),
    connections: server.hocuspocus.getConnectionsCount(),
  }),
  close: async () => {
    await server.destroy();
    await persistence?.destroy();
    await database?.close();
  },
});
announce(server.address.port);
