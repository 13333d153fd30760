/**
 * The Hocuspocus extension that makes documents durable.
 *
 * - Load before sync: `onLoadDocument` reads the whole stored state before
 *   Hocuspocus lets any client sync; if reading fails the document is refused
 *   and nothing is ever written over the stored data.
 * - Incremental: every change is appended to the store as it is applied (a
 *   synchronous `update` listener, so the append is queued before Hocuspocus
 *   sends the client its acknowledgement; the transport holds that
 *   acknowledgement until {@link DurablePersistence.whenDurable} resolves).
 * - Online compaction: when a document's log passes a threshold, the live
 *   document's state replaces the log, off the message path (setImmediate).
 * - Unload only when flushed: `beforeUnloadDocument` waits for the document's
 *   writes (and compacts what is left), and keeps it in memory if that fails.
 */
import type {
  beforeUnloadDocumentPayload,
  Document,
  Extension,
  onLoadDocumentPayload,
} from "@hocuspocus/server";
import * as Y from "yjs";
import { isAlreadyStored, loadOrigin } from "../documents/origins.ts";
import { CollabError, type ErrorCode, Refusal } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { DocumentStore } from "./store.ts";

export interface PersistenceOptions {
  readonly store: DocumentStore;
  readonly logger: Logger;
  /** Compact once the log holds this many updates. */
  readonly compactMaxEntries: number;
  /** ...or this many bytes. */
  readonly compactMaxBytes: number;
  /** Most documents in memory at once. */
  readonly maxDocuments: number;
  /** Called when a document is refused, with the reason sent to the client. */
  readonly onRefused?: (reason: string) => void;
  /**
   * Called for every change that is stored (not for state read back from the
   * store); `created` is true for the first change of a document that had
   * nothing stored. Runs inside Yjs' update event: keep it cheap.
   */
  readonly onChange?: (name: string, created: boolean) => void;
}

/** The persistence state of one loaded document. */
interface Tracked {
  readonly name: string;
  readonly document: Document;
  /** Log entries and bytes since the last compaction. */
  entries: number;
  bytes: number;
  /** Resolves when every write queued so far for this document is durable. */
  lastWrite: Promise<void>;
  compactionScheduled: boolean;
  /** Nothing was stored for the document when it loaded and nothing has changed since. */
  pristine: boolean;
  /** Being deleted by another instance: store nothing more for it. */
  discarded: boolean;
}

export class DurablePersistence implements Extension {
  readonly extensionName = "durable-persistence";
  /** Runs before other extensions' load hooks, so they see the stored state. */
  readonly priority = 1000;
  private readonly tracked = new Map<string, Tracked>();
  private readonly options: PersistenceOptions;

  constructor(options: PersistenceOptions) {
    this.options = options;
  }

  /**
   * Resolves once every change applied so far to `name` is durable. The core
   * holds acknowledgements on this. Null when `name` is not a loaded document:
   * nothing applied to it is being stored, so nothing may be acknowledged.
   */
  whenDurable(name: string): Promise<void> | null {
    return this.tracked.get(name)?.lastWrite ?? null;
  }

  /**
   * Like {@link whenDurable}, for confirming to a client that its changes are
   * stored: null also while the document is being deleted by another instance
   * (its changes are then no longer stored).
   */
  whenStored(name: string): Promise<void> | null {
    const tracked = this.tracked.get(name);
    return tracked === undefined || tracked.discarded ? null : tracked.lastWrite;
  }

  async onLoadDocument({ document, documentName, instance }: onLoadDocumentPayload): Promise<void> {
    const { store, logger, maxDocuments } = this.options;
    // The document being loaded is in `loadingDocuments` already.
    if (instance.documents.size + instance.loadingDocuments.size > maxDocuments) {
      throw this.refuse(
        "TOO_MANY_DOCUMENTS",
        Refusal.tooManyDocuments,
        `MAX_DOCUMENTS (${maxDocuments}) documents are loaded`,
      );
    }
    let stored: Awaited<ReturnType<DocumentStore["load"]>>;
    try {
      stored = await store.load(documentName);
      if (stored !== null) applyQuietly(document, stored.updates);
    } catch (error) {
      logger.error({ err: error, document: documentName }, "document failed to load; refusing it");
      throw this.refuse(
        "DOCUMENT_LOAD_FAILED",
        Refusal.loadFailed,
        `document "${documentName}" could not be loaded`,
        error,
      );
    }
    const tracked: Tracked = {
      name: documentName,
      document,
      entries: stored?.meta.logEntries ?? 0,
      bytes: stored?.meta.logBytes ?? 0,
      lastWrite: Promise.resolve(),
      compactionScheduled: false,
      pristine: stored === null,
      discarded: false,
    };
    const onUpdate = (update: Uint8Array, origin: unknown) => this.record(tracked, update, origin);
    document.on("update", onUpdate);
    // Forget the document when it is destroyed (unloaded), and only this one:
    // by then a new document of the same name may already be loading.
    document.once("destroy", () => {
      document.off("update", onUpdate);
      if (this.tracked.get(documentName) === tracked) this.tracked.delete(documentName);
    });
    this.tracked.set(documentName, tracked);
    // A log left long by a crash is compacted right away, so the next load is short.
    this.maybeCompact(tracked);
  }

  /**
   * Stores nothing more for `name` (another instance is deleting it): later
   * changes are not appended and unloading does not compact. Resolves once
   * what was already queued is durable, so it lands before the deletion.
   */
  async discard(name: string): Promise<void> {
    const tracked = this.tracked.get(name);
    if (tracked === undefined) return;
    tracked.discarded = true;
    await tracked.lastWrite.catch(() => {});
  }

  async beforeUnloadDocument({
    documentName,
    document,
  }: beforeUnloadDocumentPayload): Promise<void> {
    const tracked = this.tracked.get(documentName);
    if (tracked?.document !== document) return;
    if (tracked.entries > 0 && !tracked.discarded) this.compact(tracked);
    // Throwing keeps the document in memory: Hocuspocus aborts the unload.
    await tracked.lastWrite;
  }

  private record(tracked: Tracked, update: Uint8Array, origin: unknown): void {
    if (isAlreadyStored(origin) || tracked.discarded) return;
    tracked.lastWrite = this.watch(tracked, this.options.store.append(tracked.name, update));
    tracked.entries++;
    tracked.bytes += update.byteLength;
    this.maybeCompact(tracked);
    const created = tracked.pristine;
    tracked.pristine = false;
    this.options.onChange?.(tracked.name, created);
  }

  private maybeCompact(tracked: Tracked): void {
    const { compactMaxEntries, compactMaxBytes } = this.options;
    if (tracked.compactionScheduled) return;
    if (tracked.entries < compactMaxEntries && tracked.bytes < compactMaxBytes) return;
    tracked.compactionScheduled = true;
    // Off the message path: the current burst of messages is handled first.
    setImmediate(() => {
      tracked.compactionScheduled = false;
      if (this.tracked.get(tracked.name) === tracked) this.compact(tracked);
    });
  }

  /** Queues a compaction with the live state, which holds every update queued before it. */
  private compact(tracked: Tracked): void {
    const state = Y.encodeStateAsUpdate(tracked.document);
    tracked.entries = 0;
    tracked.bytes = 0;
    tracked.lastWrite = this.watch(tracked, this.options.store.compact(tracked.name, state));
  }

  /**
   * Logs a write that was abandoned (the store closed while it kept failing),
   * once per document rather than once per update of the failed batch.
   */
  private watch(tracked: Tracked, write: Promise<void>): Promise<void> {
    // Updates that share a batch share its promise; watch it once.
    if (tracked.lastWrite === write) return write;
    write.catch((error: unknown) => {
      if (tracked.lastWrite !== write) return;
      this.options.logger.error(
        { err: error, document: tracked.name },
        "writes abandoned: not stored",
      );
    });
    return write;
  }

  private refuse(code: ErrorCode, reason: string, message: string, cause?: unknown): CollabError {
    this.options.onRefused?.(reason);
    return new CollabError(code, message, { reason, cause });
  }
}

/**
 * Applies the stored state without emitting it as an `update` event. Nothing
 * needs that event while a document loads (Hocuspocus' own listener only
 * broadcasts to connections, and there are none yet), yet Yjs encodes the
 * whole state once more to emit it: about a third of a cold load. The update
 * listeners (lib0's observer map) are set aside for the one transaction.
 */
function applyQuietly(document: Document, updates: readonly Uint8Array[]): void {
  const observers = (document as unknown as { _observers?: unknown })._observers;
  const listeners = observers instanceof Map ? observers.get("update") : undefined;
  if (listeners !== undefined) (observers as Map<string, unknown>).delete("update");
  try {
    Y.transact(
      document,
      () => {
        for (const update of updates) Y.applyUpdate(document, update);
      },
      loadOrigin,
    );
  } finally {
    if (listeners !== undefined) (observers as Map<string, unknown>).set("update", listeners);
  }
}
