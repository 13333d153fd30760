/**
 * The attachment storage contract. Every attachment store (memory, a
 * directory beside LevelDB, PostgreSQL) implements {@link AttachmentStore}
 * and passes the one contract suite in `test/contracts/attachments.contract.ts`.
 *
 * An attachment belongs to a document and is addressed by the SHA-256 of its
 * bytes: putting the same bytes twice stores them once. A document's
 * attachments move with it to the trash and back, under its name or
 * another, and are deleted when its trash entry is purged. The bytes of an
 * attachment that several documents hold are stored once where the store
 * can share them (files by hard links, PostgreSQL by one row).
 *
 * Which attachments a document still shows, and which may be collected, is
 * the service's business (attachments/service.ts): a store only keeps, moves
 * and removes what it is told.
 */
import type { Readable } from "node:stream";

/** What a store keeps about one attachment of one document. */
export interface AttachmentMeta {
  /** The SHA-256 of the bytes, 64 lower-case hex digits. */
  readonly id: string;
  /** The media type sniffed from the bytes when it was uploaded (never the client's). */
  readonly type: string;
  /** Size in bytes. */
  readonly size: number;
  /** The file name the first upload gave, for downloads ("" when none was given). */
  readonly filename: string;
  /** When it was first stored for this document, ms since the epoch. */
  readonly created: number;
}

/** A byte range, both ends included, within an attachment. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** How many attachments a document has and their bytes, for the per-document limits. */
export interface AttachmentUsage {
  readonly count: number;
  readonly bytes: number;
}

/** Whose attachments: a live document, or one trash entry of a name (`trashId`). */
export interface AttachmentOwner {
  readonly name: string;
  readonly trashId?: string;
}

/**
 * Durable storage of document attachments.
 *
 * Every write resolves only once it is durable, and a read after it sees it.
 * `put` of bytes the owner has already is a no-op that answers the existing
 * meta (its type, file name and time stay those of the first put).
 */
export interface AttachmentStore {
  /**
   * Stores `bytes` for `owner` under `meta.id`, which the caller computed
   * (the SHA-256 of `bytes`; stores trust it). Resolves with the stored meta
   * and whether this call stored it (false: the owner had it already).
   */
  put(
    owner: AttachmentOwner,
    meta: AttachmentMeta,
    bytes: Uint8Array,
  ): Promise<{ readonly meta: AttachmentMeta; readonly stored: boolean }>;
  /** The meta of one attachment, or null. */
  meta(owner: AttachmentOwner, id: string): Promise<AttachmentMeta | null>;
  /** Its bytes, or bytes `range` of them (clamped to the size), or null when there is no such attachment. */
  read(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Uint8Array | null>;
  /**
   * Its bytes (or bytes `range` of them, which the caller has clamped to the
   * size) as a stream, for serving without holding the whole file; null when
   * there is no such attachment.
   */
  stream(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Readable | null>;
  /** Every attachment of `owner`, in id order. */
  list(owner: AttachmentOwner): Promise<AttachmentMeta[]>;
  /** Count and bytes of `owner`'s attachments. */
  usage(owner: AttachmentOwner): Promise<AttachmentUsage>;
  /** Removes those of `ids` the owner has; resolves with how many it removed. */
  remove(owner: AttachmentOwner, ids: readonly string[]): Promise<number>;
  /**
   * Moves every attachment of `from` to `to`, keeping their meta; what `to`
   * has already stays as it is. Afterwards `from` has none.
   */
  move(from: AttachmentOwner, to: AttachmentOwner): Promise<void>;
  /** Removes every attachment of `owner`. */
  removeAll(owner: AttachmentOwner): Promise<void>;
  /**
   * Every owner that has attachments, live documents first then trash
   * entries, each in name order: what export and migration carry.
   */
  owners(): Promise<AttachmentOwner[]>;
  close(): Promise<void>;
}

/** True for an attachment id: 64 lower-case hex digits. */
export function isAttachmentId(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}
