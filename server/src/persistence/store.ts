/**
 * The persistence contract. Every store (memory, LevelDB, later PostgreSQL)
 * implements {@link DocumentStore} and passes the one contract suite in
 * `test/contracts/store.contract.ts`.
 *
 * A document is stored as an optional snapshot (the merged state written by
 * the last compaction) followed by a log of the Yjs updates appended since.
 * Loading applies the snapshot and then the log; applying an update twice is
 * harmless in Yjs, which is what lets compaction run while edits continue.
 *
 * Besides its content a document may have saved versions: full states kept
 * apart from the snapshot and log, listed by id without reading the states.
 */
import type { Emitter } from "../util/emitter.ts";

/** What a store knows about one document, kept for the document API. */
export interface DocumentMeta {
  /** When the first update was stored, in ms since the epoch. */
  readonly created: number;
  /** When the last update was stored, in ms since the epoch. */
  readonly updated: number;
  /** Bytes stored for the document: snapshot plus log. */
  readonly bytes: number;
  /** Updates appended since the last compaction. */
  readonly logEntries: number;
  /** Bytes of those updates. */
  readonly logBytes: number;
}

/** A whole document as migration and backups carry it. */
export interface DocumentRecord {
  /** The merged Yjs state. */
  readonly state: Uint8Array;
  /** ms since the epoch, as in {@link DocumentMeta}. */
  readonly created: number;
  readonly updated: number;
}

/** A document as read from a store. */
export interface StoredDocument {
  /** The snapshot (when there is one) and then the log, in append order. */
  readonly updates: readonly Uint8Array[];
  readonly meta: DocumentMeta;
}

/** One page of {@link DocumentStore.list}. */
export interface ListOptions {
  /** Only names starting with this. */
  readonly prefix?: string;
  /** Only names sorting after this one (exclusive), for pagination. */
  readonly after?: string;
  /** At most this many entries. */
  readonly limit: number;
}

/** A saved version of a document: its full Yjs state at one moment. */
export interface VersionMeta {
  /** Unique within the document and sortable: listing returns versions in id order. Assigned by the caller. */
  readonly id: string;
  /** The name a person gave it ("Before launch"); null for automatic versions. */
  readonly label: string | null;
  readonly kind: "named" | "auto";
  /** When it was saved, ms since the epoch. */
  readonly created: number;
  /** Size of the stored state in bytes (computed by the store). */
  readonly bytes: number;
  /** Who saved it (a token subject), when known. */
  readonly author: string | null;
}

/**
 * A deleted document in the trash: its content and versions, kept apart
 * from live documents until it is restored or purged.
 */
export interface TrashEntry {
  /** The name the document had. */
  readonly name: string;
  /** Unique among the entries of one name, and sortable: entries list in id order. Assigned by the caller. */
  readonly id: string;
  /** When it was deleted, ms since the epoch. */
  readonly deleted: number;
  /** Who deleted it (a token subject), when known. */
  readonly deletedBy: string | null;
  /** The document's creation and last update times when it was deleted. */
  readonly created: number;
  readonly updated: number;
  /** Size of its content in bytes (computed by the store). */
  readonly bytes: number;
  /** How many saved versions went with it (computed by the store). */
  readonly versions: number;
}

/** One page of {@link DocumentStore.listTrash}, in (name, id) order. */
export interface TrashListOptions {
  /** Only entries of exactly this name. */
  readonly name?: string;
  /** Only entries whose name starts with this. */
  readonly prefix?: string;
  /** Only entries after this one (exclusive), for pagination. */
  readonly after?: { readonly name: string; readonly id: string };
  readonly limit: number;
}

/** The clients of one deleted content of a name (see {@link DocumentStore.deletedClients}). */
export interface DeletedClientsRecord {
  readonly name: string;
  /** The trash entry the content went to (which may be purged since). */
  readonly id: string;
  /** Ascending. */
  readonly clients: readonly number[];
}

/** Health as the readiness probe reports it. */
export type StoreHealth =
  | { readonly state: "ok" }
  | { readonly state: "failing"; readonly since: number; readonly error: string }
  | { readonly state: "closed" };

/** Events a store emits for metrics and logs. */
export type StoreEvents = {
  /** A batch of writes became durable. */
  written: (info: {
    readonly operations: number;
    readonly bytes: number;
    readonly seconds: number;
  }) => void;
  /** A batch failed; it is retried after `retryInMs`. */
  writeFailed: (info: {
    readonly error: unknown;
    readonly attempt: number;
    readonly retryInMs: number;
  }) => void;
  /** The store could not recover (e.g. reopen its database) before a retry. */
  recoveryFailed: (info: { readonly error: unknown }) => void;
  /** A document's log was replaced by a snapshot. */
  compacted: (info: { readonly name: string; readonly bytes: number }) => void;
};

/**
 * Durable storage of Yjs documents as an update log plus snapshot.
 *
 * Writes (`append`, `compact`, `delete`, `saveVersion`, `deleteVersion`,
 * and the trash operations) are applied in the order they are called, and each promise resolves only
 * once that write is durable (with `fsync` when the store was opened so). A
 * failed write is retried until it succeeds or the store is closed; it is
 * never dropped.
 *
 * Versions are kept beside a document's content, not in it: they do not
 * count in {@link DocumentMeta}, and a document with versions but no content
 * has no metadata and is not listed. A version id is 1 to 255 bytes of UTF-8
 * with no control characters (saving another id throws a `RangeError`: ids
 * come from the server, not from users); ids compare as UTF-8 bytes, like
 * names, and an id that cannot exist simply is not found.
 */
export interface DocumentStore {
  /** A short name for logs and metrics: `memory`, `leveldb`. */
  readonly kind: string;
  readonly events: Emitter<StoreEvents>;

  /** The stored document, or null when nothing is stored under `name`. Sees every write called before it. */
  load(name: string): Promise<StoredDocument | null>;

  /** Appends one Yjs update to the log of `name`. */
  append(name: string, update: Uint8Array): Promise<void>;

  /**
   * Replaces everything stored for `name` before this call with `state`, in
   * one atomic write. `state` must contain every update appended to `name`
   * before this call (for example `Y.encodeStateAsUpdate` of the live
   * document); updates appended after the call are kept in the log.
   */
  compact(name: string, state: Uint8Array): Promise<void>;

  /**
   * Stores `state` as the whole of `name`, merged with anything already
   * stored for it (so nothing is lost), with the given creation and update
   * times: for migration and restoring backups, not for documents being
   * edited. Versions are not touched. When nothing was stored, a later load
   * returns `state` byte for byte.
   */
  put(name: string, record: DocumentRecord): Promise<void>;

  /** Removes everything stored for `name`, its versions included. */
  delete(name: string): Promise<void>;

  /**
   * Moves `name` into the trash as one atomic write: its content (merged
   * into one state) and versions become trash entry `entry.id`, and the
   * Yjs client ids of its content are recorded as deleted for `name` (see
   * {@link deletedClients}); `name` is then free, with nothing stored. Sees
   * every write called before it. Resolves with the entry, or null when
   * nothing was stored under `name` (then nothing is written).
   */
  trash(
    name: string,
    entry: { readonly id: string; readonly deleted: number; readonly deletedBy: string | null },
  ): Promise<TrashEntry | null>;

  /** Trash entries in (name, id) order, as {@link TrashListOptions} filters them. */
  listTrash(options: TrashListOptions): Promise<TrashEntry[]>;

  /** One trash entry with its content, or null. */
  loadTrash(
    name: string,
    id: string,
  ): Promise<{ readonly entry: TrashEntry; readonly state: Uint8Array } | null>;

  /**
   * Moves trash entry (`name`, `id`) back to the live document `to` as one
   * atomic write: its content is merged with anything `to` holds (nothing,
   * when the caller checked), its versions join `to`'s, its times are kept,
   * and the entry leaves the trash. Restored to its own name, its clients
   * are no longer deleted there. Resolves with whether the entry was there
   * (a missing entry is a no-op).
   */
  restoreTrash(name: string, id: string, to: string): Promise<boolean>;

  /**
   * Removes trash entry (`name`, `id`) and its versions for good. Its
   * clients stay deleted for `name`. Resolves with whether the entry was
   * there (a missing entry is a no-op).
   */
  purgeTrash(name: string, id: string): Promise<boolean>;

  /**
   * The Yjs client ids of every trashed (or purged) content of `name` that
   * was not restored to it: state holding any of them comes from a deleted
   * document, and must never be merged into a new one. Empty for most names.
   */
  deletedClients(name: string): Promise<ReadonlySet<number>>;

  /** The versions trash entry (`name`, `id`) kept, with their states, in id order. */
  trashVersions(
    name: string,
    id: string,
  ): Promise<Array<{ readonly meta: VersionMeta; readonly state: Uint8Array }>>;

  /**
   * Writes a trash entry as given, for migration and backups: its content,
   * times and versions, and its content's clients as deleted for the name
   * (as {@link trash} records them). Replaces an entry with the same name and
   * id. `bytes` and `versions` of the entry are computed by the store.
   */
  putTrash(
    entry: Omit<TrashEntry, "bytes" | "versions">,
    state: Uint8Array,
    versions: ReadonlyArray<{ readonly meta: VersionMeta; readonly state: Uint8Array }>,
  ): Promise<void>;

  /**
   * Every record of deleted clients (one per trash entry ever made, purged
   * ones included), in (name, id) order, a page at a time: for migration and
   * backups.
   */
  listDeletedClients(options: {
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<DeletedClientsRecord[]>;

  /** Records `record.clients` as deleted for its name under its trash id, replacing what was there. */
  putDeletedClients(record: DeletedClientsRecord): Promise<void>;

  /** The metadata of `name`, or null when nothing is stored. */
  meta(name: string): Promise<DocumentMeta | null>;

  /** Stored documents in name order; a document that only has versions is not one. */
  list(
    options: ListOptions,
  ): Promise<Array<{ readonly name: string; readonly meta: DocumentMeta }>>;

  /** Saves a version of `name`; overwrites a version with the same id. Resolves once durable. */
  saveVersion(
    name: string,
    version: Omit<VersionMeta, "bytes">,
    state: Uint8Array,
  ): Promise<VersionMeta>;

  /** The versions of `name`, in id order (oldest first when ids are time-ordered). */
  listVersions(name: string): Promise<VersionMeta[]>;

  /** One version with its state, or null. */
  loadVersion(
    name: string,
    id: string,
  ): Promise<{ readonly meta: VersionMeta; readonly state: Uint8Array } | null>;

  /** Removes one version (a no-op when absent). */
  deleteVersion(name: string, id: string): Promise<void>;

  /** Resolves once every write called so far is durable. */
  flush(): Promise<void>;

  /** Updates accepted but not yet durable. */
  pendingUpdates(): number;

  /** Whether writes currently succeed. */
  health(): StoreHealth;

  /** A real write through the same path as updates; rejects when the store cannot write. */
  probe(): Promise<void>;

  /**
   * Flushes pending writes and releases the store; writes after close reject
   * with `STORE_CLOSED`. With `abortAfterMs`, writes still failing after that
   * long are given up (rejected with `STORE_CLOSED`) and counted in `abandoned`.
   */
  close(options?: { readonly abortAfterMs?: number }): Promise<{ readonly abandoned: number }>;
}
