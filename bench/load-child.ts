/**
 * Loads one document from a LevelDB store directory (or a PostgreSQL store)
 * in a process of its own and prints, as one JSON line, how long that took
 * and what the loaded document costs in memory. Run by bench/store.ts and
 * bench/scale.ts:
 *
 *   node --expose-gc bench/load-child.ts <dir> <document name>
 *   node --expose-gc bench/load-child.ts --postgres <url> <schema> <document name>
 *
 * A separate process gives a really cold load (nothing cached, nothing
 * compiled) and a memory baseline that the benchmark's own data does not
 * disturb.
 */
import { createHash } from "node:crypto";
import * as Y from "yjs";
import { LevelDbStore } from "../server/src/persistence/leveldb.ts";
import { PostgresStore } from "../server/src/persistence/postgres.ts";
import type { DocumentStore } from "../server/src/persistence/store.ts";
import { collectGarbage } from "./lib.ts";

/** What the child prints. Byte counts are from process.memoryUsage(). */
export interface ChildReport {
  readonly gcExposed: boolean;
  /** Opening the store: LevelDB's directory, or PostgreSQL's connection and schema check. */
  readonly openMs: number;
  /** load() plus applying every returned update to a fresh Y.Doc in one transaction. */
  readonly loadMs: number;
  readonly updates: number;
  /** sha256 of the loaded text, hex, so the parent can check it without shipping the text. */
  readonly textSha256: string;
  readonly textLength: number;
  readonly baseline: { readonly heapUsed: number; readonly rss: number };
  /** After the load, with the loaded Y.Doc alive and everything else collected. */
  readonly loaded: {
    readonly heapUsed: number;
    readonly rss: number;
    readonly external: number;
    readonly arrayBuffers: number;
  };
}

/** The store the arguments name, and the document to load from it. */
function parseArguments(args: readonly string[]): {
  open: () => Promise<DocumentStore>;
  name: string;
} {
  if (args[0] === "--postgres") {
    const [, url, schema, name] = args;
    if (url !== undefined && schema !== undefined && name !== undefined) {
      return { open: () => PostgresStore.open({ url, schema }), name };
    }
  } else {
    const [dir, name] = args;
    if (dir !== undefined && name !== undefined)
      return { open: () => LevelDbStore.open({ dir }), name };
  }
  throw new Error(
    "usage: node --expose-gc bench/load-child.ts <dir> <document name>\n" +
      "       node --expose-gc bench/load-child.ts --postgres <url> <schema> <document name>",
  );
}

async function main(): Promise<void> {
  const { open, name } = parseArguments(process.argv.slice(2));
  const gcExposed = collectGarbage();
  const before = process.memoryUsage();
  let started = performance.now();
  const store = await open();
  const openMs = performance.now() - started;
  started = performance.now();
  const stored = await store.load(name);
  if (stored === null) throw new Error(`no document "${name}" in the ${store.kind} store`);
  const doc = new Y.Doc();
  const text = doc.getText("text");
  Y.transact(doc, () => {
    for (const update of stored.updates) Y.applyUpdate(doc, update);
  });
  const loadMs = performance.now() - started;
  const updates = stored.updates.length;
  await store.close();
  const content = text.toString();
  const textSha256 = createHash("sha256").update(content).digest("hex");
  const textLength = content.length;
  collectGarbage();
  const after = process.memoryUsage();
  const report: ChildReport = {
    gcExposed,
    openMs,
    loadMs,
    updates,
    textSha256,
    textLength,
    baseline: { heapUsed: before.heapUsed, rss: before.rss },
    loaded: {
      heapUsed: after.heapUsed,
      rss: after.rss,
      external: after.external,
      arrayBuffers: after.arrayBuffers,
    },
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  // Keep the document reachable until memory was measured.
  if (doc.getText("text").length !== textLength) throw new Error("document changed");
}

await main();
