/**
 * What the memory and LevelDB stores share: the write operations, the group
 * commit queue that orders them, per-document bookkeeping (sequence numbers
 * and metadata), name and version id checks, health and the probe. A
 * concrete store only says how to write one batch atomically and how to read.
 */

import * as Y from "yjs";
import { threadsDocumentName } from "../../../editor/src/comments/model.ts";
import { CollabError } from "../errors.ts";
import { checkStoredName, MAX_NAME_BYTES, ownerOf } from "../protocol/names.ts";
import { Emitter } from "../util/emitter.ts";
import { GroupCommitQueue } from "./group-commit.ts";
import type {
  DeletedClientsRecord,
  DocumentMeta,
  DocumentRecord,
  DocumentStore,
  ListOptions,
  StoredDocument,
  StoreEvents,
  StoreHealth,
  TrashEntry,
  TrashListOptions,
  VersionMeta,
} from "./store.ts";

/** One write, in the order the store received it. */
export type WriteOp =
  | { readonly kind: "append"; readonly name: string; readonly update: Uint8Array }
  | {
      readonly kind: "compact";
      readonly name: string;
      readonly state: Uint8Array;
      /** Times to keep (from {@link DocumentStore.put}); otherwise `updated` is now. */
      readonly times?: { readonly created: number; readonly updated: number };
    }
  | { readonly kind: "delete"; readonly name: string }
  | {
      readonly kind: "saveVersion";
      readonly name: string;
      readonly version: VersionMeta;
      readonly state: Uint8Array;
    }
  | { readonly kind: "deleteVersion"; readonly name: string; readonly id: string }
  /** Written alone in its batch (it reads what earlier batches stored); fills in `outcome`. */
  | {
      readonly kind: "trash";
      readonly name: string;
      readonly entry: {
        readonly id: string;
        readonly deleted: number;
        readonly deletedBy: string | null;
      };
      readonly outcome: { entry: TrashEntry | null };
    }
  /** Written alone in its batch. `name` is the live document it restores into. */
  | {
      readonly kind: "restoreTrash";
      readonly name: string;
      readonly from: string;
      readonly id: string;
      readonly outcome: { found: boolean };
    }
  /** Written alone in its batch. */
  | {
      readonly kind: "purgeTrash";
      readonly name: string;
      readonly id: string;
      readonly outcome: { found: boolean };
    }
  /** Written alone in its batch. */
  | {
      readonly kind: "putTrash";
      readonly name: string;
      readonly entry: Omit<TrashEntry, "bytes" | "versions">;
      readonly state: Uint8Array;
      readonly versions: ReadonlyArray<{ readonly meta: VersionMeta; readonly state: Uint8Array }>;
    }
  | {
      readonly kind: "putDeletedClients";
      readonly name: string;
      readonly record: DeletedClientsRecord;
    }
  | { readonly kind: "probe" };

/** Operations that read what the store holds: each is written in a batch of its own. */
export function isAlone(op: WriteOp): boolean {
  return (
    op.kind === "trash" ||
    op.kind === "restoreTrash" ||
    op.kind === "purgeTrash" ||
    op.kind === "putTrash" ||
    op.kind === "putDeletedClients"
  );
}

/**
 * Per-document bookkeeping, persisted with every write that touches the
 * document. Log entries have sequence numbers `firstSeq <= seq < nextSeq`.
 */
export interface Head extends DocumentMeta {
  readonly firstSeq: number;
  readonly nextSeq: number;
}

/**
 * The head after applying `op` to `head` (null: nothing stored). Pure, so a
 * store can stage a batch's heads and keep them only once the batch is durable.
 */
export function nextHead(head: Head | null, op: WriteOp, now: number): Head | null {
  switch (op.kind) {
    case "append": {
      const base = head ?? emptyHead(now);
      const size = op.update.byteLength;
      return {
        ...base,
        updated: now,
        bytes: base.bytes + size,
        logEntries: base.logEntries + 1,
        logBytes: base.logBytes + size,
        nextSeq: base.nextSeq + 1,
      };
    }
    case "compact": {
      const base = head ?? emptyHead(now);
      return {
        ...base,
        ...op.times,
        updated: op.times?.updated ?? now,
        bytes: op.state.byteLength,
        logEntries: 0,
        logBytes: 0,
        firstSeq: base.nextSeq,
      };
    }
    case "delete":
    case "trash":
      return null;
    // Versions are kept beside the content, not in it; a restore's head depends on what it
    // merges, which the store computes.
    case "saveVersion":
    case "deleteVersion":
    case "restoreTrash":
    case "purgeTrash":
    case "putTrash":
    case "putDeletedClients":
    case "probe":
      return head;
  }
}

function emptyHead(now: number): Head {
  return {
    created: now,
    updated: now,
    bytes: 0,
    logEntries: 0,
    logBytes: 0,
    firstSeq: 0,
    nextSeq: 0,
  };
}

/** The public part of a head. */
export function metaOf(head: Head): DocumentMeta {
  const { created, updated, bytes, logEntries, logBytes } = head;
  return { created, updated, bytes, logEntries, logBytes };
}

/** Longest allowed version id, in UTF-8 bytes (as for names, so it fits any key or column). */
export const MAX_VERSION_ID_BYTES = MAX_NAME_BYTES;

// C0 controls, DEL and C1 controls, as in document names.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/** Whether `id` can name a version: 1 to 255 bytes of well-formed UTF-8 with no control characters. */
export function isVersionId(id: string): boolean {
  return isKeyPart(id);
}

/** Whether `id` can name a trash entry: as for versions. */
export function isTrashId(id: string): boolean {
  return isKeyPart(id);
}

function isKeyPart(id: string): boolean {
  return (
    id.length > 0 &&
    Buffer.byteLength(id, "utf8") <= MAX_VERSION_ID_BYTES &&
    !CONTROL.test(id) &&
    id.isWellFormed()
  );
}

/** Test seam for failure paths: a store calls `beforeWrite` before each batch; throwing fails the batch. */
export interface FaultInjector {
  beforeWrite(): void;
}

export interface LogStoreOptions {
  /** Retry timing for failed batches. */
  readonly initialRetryMs?: number;
  readonly maxRetryMs?: number;
  /** Failure injection for tests. */
  readonly faults?: FaultInjector;
}

export abstract class LogStore implements DocumentStore {
  abstract readonly kind: string;
  readonly events = new Emitter<StoreEvents>();
  protected readonly queue: GroupCommitQueue<WriteOp>;
  private readonly lastWrite = new Map<string, Promise<void>>();
  private state: "open" | "closing" | "closed" = "open";
  /** The recovery in progress, which reads wait for, and how many have started. */
  private recovering: Promise<void> | null = null;
  private recoveries = 0;

  protected readonly options: LogStoreOptions;

  constructor(options: LogStoreOptions = {}) {
    this.options = options;
    this.queue = new GroupCommitQueue<WriteOp>({
      write: async (batch) => {
        this.options.faults?.beforeWrite();
        await this.writeBatch(batch);
        for (const op of batch) {
          if (op.kind === "compact")
            this.events.emit("compacted", { name: op.name, bytes: op.state.byteLength });
        }
      },
      sizeOf: (op) =>
        op.kind === "append"
          ? op.update.byteLength
          : op.kind === "compact" || op.kind === "saveVersion"
            ? op.state.byteLength
            : 0,
      alone: isAlone,
      initialRetryMs: options.initialRetryMs,
      maxRetryMs: options.maxRetryMs,
      beforeRetry: () => {
        this.recoveries++;
        const recovering = this.recover().finally(() => {
          if (this.recovering === recovering) this.recovering = null;
        });
        this.recovering = recovering;
        return recovering;
      },
      onWritten: (info) => this.events.emit("written", info),
      onFailed: (info) => this.events.emit("writeFailed", info),
      onRecoveryFailed: (error) => this.events.emit("recoveryFailed", { error }),
    });
  }

  /** Writes `batch` atomically: all of it or nothing. */
  protected abstract writeBatch(batch: readonly WriteOp[]): Promise<void>;
  /** Reads a document; called once every earlier write to it is durable. */
  protected abstract read(name: string): Promise<StoredDocument | null>;
  protected abstract readMeta(name: string): Promise<DocumentMeta | null>;
  protected abstract readList(
    options: ListOptions,
  ): Promise<Array<{ name: string; meta: DocumentMeta }>>;
  /** The versions of a document in id order (UTF-8 bytes), without their states. */
  protected abstract readVersions(name: string): Promise<VersionMeta[]>;
  /** One version with its state; `id` is a valid version id. */
  protected abstract readVersion(
    name: string,
    id: string,
  ): Promise<{ meta: VersionMeta; state: Uint8Array } | null>;
  /** Trash entries in (name, id) order. */
  protected abstract readTrash(options: TrashListOptions): Promise<TrashEntry[]>;
  /** One trash entry with its content; `id` is a valid trash id. */
  protected abstract readTrashEntry(
    name: string,
    id: string,
  ): Promise<{ entry: TrashEntry; state: Uint8Array } | null>;
  /** The deleted client ids of `name`. */
  protected abstract readDeletedClients(name: string): Promise<ReadonlySet<number>>;
  /** The versions of a trash entry with their states, in id order; `id` is a valid trash id. */
  protected abstract readTrashVersions(
    name: string,
    id: string,
  ): Promise<Array<{ meta: VersionMeta; state: Uint8Array }>>;
  /** Deleted-client records in (name, id) order. */
  protected abstract readDeletedClientRecords(options: {
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<DeletedClientsRecord[]>;
  /** Called before a failed batch is retried. */
  protected async recover(): Promise<void> {}
  /** Releases the underlying resources once the queue is drained. */
  protected abstract release(): Promise<void>;

  async load(name: string): Promise<StoredDocument | null> {
    this.assertReadable(name);
    await this.lastWrite.get(name);
    return this.reading(() => this.read(name));
  }

  append(name: string, update: Uint8Array): Promise<void> {
    return this.write({ kind: "append", name, update });
  }

  compact(name: string, state: Uint8Array): Promise<void> {
    return this.write({ kind: "compact", name, state });
  }

  async put(name: string, record: DocumentRecord): Promise<void> {
    const existing = await this.load(name);
    const state =
      existing === null ? record.state : Y.mergeUpdates([...existing.updates, record.state]);
    const { created, updated } = record;
    return this.write({ kind: "compact", name, state, times: { created, updated } });
  }

  delete(name: string): Promise<void> {
    return this.writeWithThreads(name, (each) => ({ kind: "delete", name: each }));
  }

  async trash(
    name: string,
    entry: { readonly id: string; readonly deleted: number; readonly deletedBy: string | null },
  ): Promise<TrashEntry | null> {
    if (!isTrashId(entry.id)) throw new RangeError(`invalid trash id ${JSON.stringify(entry.id)}`);
    const outcome: { entry: TrashEntry | null } = { entry: null };
    const { id, deleted, deletedBy } = entry;
    await this.writeWithThreads(name, (each) => ({
      kind: "trash",
      name: each,
      entry: { id, deleted, deletedBy },
      outcome: each === name ? outcome : { entry: null },
    }));
    return outcome.entry;
  }

  async listTrash(options: TrashListOptions): Promise<TrashEntry[]> {
    this.assertReadable(options.name);
    if (options.name !== undefined && ownerOf(options.name) !== options.name) {
      return this.reading(() => this.readTrash(options));
    }
    return documentsOnly(
      options,
      (page) => this.reading(() => this.readTrash({ ...options, ...page })),
      (entry) => ({ name: entry.name, id: entry.id }),
    );
  }

  async loadTrash(
    name: string,
    id: string,
  ): Promise<{ entry: TrashEntry; state: Uint8Array } | null> {
    this.assertReadable(name);
    if (!isTrashId(id)) return null;
    await this.lastWrite.get(name);
    return this.reading(() => this.readTrashEntry(name, id));
  }

  async restoreTrash(name: string, id: string, to: string): Promise<boolean> {
    const problem = checkStoredName(name);
    if (problem !== null) throw new CollabError("DOCUMENT_NAME_INVALID", problem);
    if (!isTrashId(id)) {
      await this.nothingToWrite(to);
      return false;
    }
    const outcome = { found: false };
    const problemTo = checkStoredName(to);
    if (problemTo !== null) throw new CollabError("DOCUMENT_NAME_INVALID", problemTo);
    const ops: WriteOp[] = [{ kind: "restoreTrash", name: to, from: name, id, outcome }];
    if (ownerOf(name) === name && ownerOf(to) === to) {
      ops.push({
        kind: "restoreTrash",
        name: threadsDocumentName(to),
        from: threadsDocumentName(name),
        id,
        outcome: { found: false },
      });
    }
    await this.writeGroup(ops);
    return outcome.found;
  }

  async purgeTrash(name: string, id: string): Promise<boolean> {
    if (!isTrashId(id)) {
      await this.nothingToWrite(name);
      return false;
    }
    const outcome = { found: false };
    await this.writeWithThreads(name, (each) => ({
      kind: "purgeTrash",
      name: each,
      id,
      outcome: each === name ? outcome : { found: false },
    }));
    return outcome.found;
  }

  async deletedClients(name: string): Promise<ReadonlySet<number>> {
    this.assertReadable(name);
    await this.lastWrite.get(name);
    return this.reading(() => this.readDeletedClients(name));
  }

  async trashVersions(
    name: string,
    id: string,
  ): Promise<Array<{ meta: VersionMeta; state: Uint8Array }>> {
    this.assertReadable(name);
    if (!isTrashId(id)) return [];
    await this.lastWrite.get(name);
    return this.reading(() => this.readTrashVersions(name, id));
  }

  putTrash(
    entry: Omit<TrashEntry, "bytes" | "versions">,
    state: Uint8Array,
    versions: ReadonlyArray<{ readonly meta: VersionMeta; readonly state: Uint8Array }>,
  ): Promise<void> {
    if (!isTrashId(entry.id))
      return Promise.reject(new RangeError(`invalid trash id ${JSON.stringify(entry.id)}`));
    for (const { meta } of versions) {
      if (!isVersionId(meta.id))
        return Promise.reject(new RangeError(`invalid version id ${JSON.stringify(meta.id)}`));
    }
    const { name, id, deleted, deletedBy, created, updated } = entry;
    const fields = { name, id, deleted, deletedBy, created, updated };
    return this.write({ kind: "putTrash", name, entry: fields, state, versions });
  }

  async listDeletedClients(options: {
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<DeletedClientsRecord[]> {
    this.assertReadable();
    return this.reading(() => this.readDeletedClientRecords(options));
  }

  putDeletedClients(record: DeletedClientsRecord): Promise<void> {
    if (!isTrashId(record.id))
      return Promise.reject(new RangeError(`invalid trash id ${JSON.stringify(record.id)}`));
    const clients = [...new Set(record.clients)].sort((a, b) => a - b);
    return this.write({
      kind: "putDeletedClients",
      name: record.name,
      record: { name: record.name, id: record.id, clients },
    });
  }

  async saveVersion(
    name: string,
    version: Omit<VersionMeta, "bytes">,
    state: Uint8Array,
  ): Promise<VersionMeta> {
    if (!isVersionId(version.id))
      throw new RangeError(`invalid version id ${JSON.stringify(version.id)}`);
    // Only the known fields: the caller's object may carry more, and a store persists what it gets.
    const meta: VersionMeta = {
      id: version.id,
      label: version.label,
      kind: version.kind,
      created: version.created,
      bytes: state.byteLength,
      author: version.author,
    };
    await this.write({ kind: "saveVersion", name, version: meta, state });
    return meta;
  }

  async listVersions(name: string): Promise<VersionMeta[]> {
    this.assertReadable(name);
    await this.lastWrite.get(name);
    return this.reading(() => this.readVersions(name));
  }

  async loadVersion(
    name: string,
    id: string,
  ): Promise<{ meta: VersionMeta; state: Uint8Array } | null> {
    this.assertReadable(name);
    if (!isVersionId(id)) return null;
    await this.lastWrite.get(name);
    return this.reading(() => this.readVersion(name, id));
  }

  deleteVersion(name: string, id: string): Promise<void> {
    if (isVersionId(id)) return this.write({ kind: "deleteVersion", name, id });
    return this.nothingToWrite(name);
  }

  /** For an id that cannot exist: nothing to write, but refuse what a write would refuse. */
  private nothingToWrite(name: string): Promise<void> {
    const problem = checkStoredName(name);
    if (problem !== null) return Promise.reject(new CollabError("DOCUMENT_NAME_INVALID", problem));
    if (this.state !== "open")
      return Promise.reject(new CollabError("STORE_CLOSED", "the store is closed"));
    return Promise.resolve();
  }

  async meta(name: string): Promise<DocumentMeta | null> {
    this.assertReadable(name);
    await this.lastWrite.get(name);
    return this.reading(() => this.readMeta(name));
  }

  async list(options: ListOptions): Promise<Array<{ name: string; meta: DocumentMeta }>> {
    this.assertReadable();
    // Threads documents are part of their documents, not documents of their own.
    return documentsOnly(options, (page) => this.reading(() => this.readList(page)));
  }

  flush(): Promise<void> {
    return this.queue.flush();
  }

  pendingUpdates(): number {
    return this.queue.pending;
  }

  health(): StoreHealth {
    if (this.state !== "open") return { state: "closed" };
    const failing = this.queue.failing;
    if (failing === null) return { state: "ok" };
    return { state: "failing", since: failing.since, error: describe(failing.error) };
  }

  probe(): Promise<void> {
    if (this.state !== "open")
      return Promise.reject(new CollabError("STORE_CLOSED", "the store is closed"));
    return this.queue.push({ kind: "probe" });
  }

  /**
   * Waits for pending writes, then releases the store. Pass `abortAfterMs` to
   * give up on writes that keep failing: they are rejected with STORE_CLOSED.
   */
  async close(options: { abortAfterMs?: number } = {}): Promise<{ abandoned: number }> {
    if (this.state !== "open") return { abandoned: 0 };
    this.state = "closing";
    const drained = this.queue.close().catch(() => {
      // Abandoned writes: their callers saw the rejection, and `abandoned` counts them.
    });
    if (options.abortAfterMs === undefined) {
      await drained;
    } else {
      const deadline = options.abortAfterMs;
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        drained.then(() => "drained" as const),
        new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), deadline);
        }),
      ]);
      clearTimeout(timer);
      if (outcome === "late") {
        this.queue.abort(
          new CollabError("STORE_CLOSED", "the store closed with writes still failing"),
        );
        // A write already in flight may still finish; do not wait on one that never settles.
        await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      }
    }
    this.state = "closed";
    await this.release();
    return { abandoned: this.queue.abandoned };
  }

  /**
   * Runs a read, waiting out a recovery (a database being reopened) and
   * retrying once if one started while the read was running, so a read
   * during a write-failure episode does not fail a healthy document.
   */
  private async reading<T>(read: () => Promise<T>): Promise<T> {
    await this.recovering;
    const epoch = this.recoveries;
    try {
      return await read();
    } catch (error) {
      if (this.recoveries === epoch && this.recovering === null) throw error;
      await this.recovering;
      return read();
    }
  }

  private write(op: WriteOp & { name: string }): Promise<void> {
    const problem = checkStoredName(op.name);
    if (problem !== null) return Promise.reject(new CollabError("DOCUMENT_NAME_INVALID", problem));
    const done = this.queue.push(op);
    // Reads of a name wait for the writes to it; a restore writes to its trash name too.
    this.track(op.name, done);
    if (op.kind === "restoreTrash") this.track(op.from, done);
    return done;
  }

  /**
   * Writes the operation `of(name)` and, for a document (not a threads
   * document), the same operation on its threads document, in one atomic
   * batch: a document and its threads go to the trash, come back and are
   * purged together.
   */
  private writeWithThreads(
    name: string,
    of: (name: string) => WriteOp & { name: string },
  ): Promise<void> {
    if (ownerOf(name) !== name) return this.write(of(name));
    return this.writeGroup([of(name), of(threadsDocumentName(name))]);
  }

  /** Writes `ops` in one batch of their own (see GroupCommitQueue.pushGroup). */
  private writeGroup(ops: readonly WriteOp[]): Promise<void> {
    for (const op of ops) {
      const problem = "name" in op ? checkStoredName(op.name) : null;
      if (problem !== null)
        return Promise.reject(new CollabError("DOCUMENT_NAME_INVALID", problem));
    }
    const done = this.queue.pushGroup(ops);
    for (const op of ops) {
      if (!("name" in op)) continue;
      this.track(op.name, done);
      if (op.kind === "restoreTrash") this.track(op.from, done);
    }
    return done;
  }

  /** Makes reads of `name` wait for `done`. */
  private track(name: string, done: Promise<void>): void {
    // Operations of one batch share its promise: register the clean-up once per batch and name.
    if (this.lastWrite.get(name) === done) return;
    this.lastWrite.set(name, done);
    const forget = () => {
      if (this.lastWrite.get(name) === done) this.lastWrite.delete(name);
    };
    done.then(forget, forget);
  }

  private assertReadable(name?: string): void {
    if (this.state === "closed") throw new CollabError("STORE_CLOSED", "the store is closed");
    if (name === undefined) return;
    const problem = checkStoredName(name);
    if (problem !== null) throw new CollabError("DOCUMENT_NAME_INVALID", problem);
  }
}

/**
 * A page of a listing without threads documents: reads pages of `limit`
 * from `read` until `limit` entries that are not threads documents are
 * found, or the listing ends.
 */
async function documentsOnly<T extends { readonly name: string }, After>(
  options: { readonly after?: After; readonly limit: number },
  read: (page: { after?: After; limit: number }) => Promise<T[]>,
  cursor: (entry: T) => After = (entry) => entry.name as After,
): Promise<T[]> {
  const out: T[] = [];
  let after = options.after;
  for (;;) {
    const page = await read({ ...options, after, limit: options.limit });
    for (const entry of page) {
      if (ownerOf(entry.name) !== entry.name) continue;
      out.push(entry);
      if (out.length === options.limit) return out;
    }
    const last = page.at(-1);
    if (page.length < options.limit || last === undefined) return out;
    after = cursor(last);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
