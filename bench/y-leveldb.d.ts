/**
 * Types for the part of y-leveldb 0.2.0 the benchmark uses. The package ships
 * declarations (dist/src/y-leveldb.d.ts) but its package.json "exports" does
 * not point at them, so TypeScript with NodeNext resolution cannot find them.
 */
declare module "y-leveldb" {
  import type { Doc } from "yjs";

  export class LeveldbPersistence {
    constructor(location: string, options?: { levelOptions?: Record<string, unknown> });
    /** Appends one update; queued behind every earlier call on this instance. Resolves with its clock. */
    storeUpdate(docName: string, update: Uint8Array): Promise<number>;
    /** Loads the document; merges its updates into one when there are more than 500. */
    getYDoc(docName: string): Promise<Doc>;
    getMeta(docName: string, metaKey: string): Promise<unknown>;
    flushDocument(docName: string): Promise<void>;
    /** Closes the database. */
    destroy(): Promise<void>;
  }
}
