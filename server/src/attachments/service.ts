/**
 * Attachments of documents, transport-free: upload with limits and type
 * sniffing, reads, the lifecycle that follows the document (trash, restore,
 * purge), and collection of attachments nothing shows any more. The REST
 * routes (api/attachment-routes.ts) are a thin layer over this.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import type * as Y from "yjs";
import { CollabError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import { SerialByKey, Slots } from "../util/serial.ts";
import { attachmentsIn } from "./references.ts";
import { sniffType } from "./sniff.ts";
import type { AttachmentMeta, AttachmentOwner, AttachmentStore, ByteRange } from "./store.ts";

/** The per-attachment and per-document limits (each a setting, see config.ts). */
export interface AttachmentLimits {
  /** Largest attachment, in bytes. */
  readonly maxBytes: number;
  /** Most attachments one document may have. */
  readonly maxPerDocument: number;
  /** Most bytes of attachments one document may have. */
  readonly maxBytesPerDocument: number;
}

/** What collection needs to know of the documents. */
export interface AttachmentReferences {
  /** The document's current content, or null when it has none. */
  current(name: string): Promise<Y.Doc | null>;
  /** Every saved version's state, one at a time. */
  versions(name: string): AsyncIterable<Y.Doc>;
  /** Whether trash entry `trashId` of `name` still exists (attachments of a purged one are orphans). */
  inTrash(name: string, trashId: string): Promise<boolean>;
}

export interface AttachmentServiceOptions {
  readonly store: AttachmentStore;
  readonly limits: AttachmentLimits;
  readonly references: AttachmentReferences;
  /** An attachment nothing shows is collected once it is older than this, in ms. */
  readonly graceMs: number;
  readonly logger: Logger;
}

/** Attachments read for serving at once, per process. */
export const SERVING_AT_ONCE = 4;

export class AttachmentService {
  private readonly options: AttachmentServiceOptions;
  /** Attachment reads being served. */
  private readonly serving = new Slots(SERVING_AT_ONCE);
  /** Uploads and collections of one document, one at a time, so limits hold under concurrency. */
  private readonly serial = new SerialByKey<string>();
  /** Trash owners without a trash entry that the last {@link collectAll} saw. */
  private orphans = new Set<string>();

  constructor(options: AttachmentServiceOptions) {
    this.options = options;
  }

  get limits(): AttachmentLimits {
    return this.options.limits;
  }

  /**
   * Stores `bytes` as an attachment of document `name`; the same bytes
   * again answer the stored attachment. The type is sniffed from the bytes.
   * Refused with ATTACHMENT_TOO_LARGE past the size limit and with
   * ATTACHMENT_LIMIT when the document would exceed its count or bytes.
   */
  upload(name: string, bytes: Uint8Array, filename: string): Promise<AttachmentMeta> {
    const { limits, store } = this.options;
    if (bytes.byteLength > limits.maxBytes) throw tooLarge(limits.maxBytes);
    if (bytes.byteLength === 0) throw new CollabError("CONTENT_INVALID", "the attachment is empty");
    return this.serial.run(name, async () => {
      const id = createHash("sha256").update(bytes).digest("hex");
      const owner = { name };
      const existing = await store.meta(owner, id);
      if (existing !== null) return existing;
      const usage = await store.usage(owner);
      if (usage.count + 1 > limits.maxPerDocument) {
        throw new CollabError(
          "ATTACHMENT_LIMIT",
          `the document has ${usage.count} attachments, the most MAX_ATTACHMENTS_PER_DOCUMENT allows`,
        );
      }
      if (usage.bytes + bytes.byteLength > limits.maxBytesPerDocument) {
        throw new CollabError(
          "ATTACHMENT_LIMIT",
          `the document's attachments would take ${usage.bytes + bytes.byteLength} bytes, more than MAX_ATTACHMENT_BYTES_PER_DOCUMENT (${limits.maxBytesPerDocument})`,
        );
      }
      const meta: AttachmentMeta = {
        id,
        type: await sniffType(bytes),
        size: bytes.byteLength,
        filename: cleanFilename(filename),
        created: Date.now(),
      };
      return (await store.put(owner, meta, bytes)).meta;
    });
  }

  /** The meta of attachment `id` of live document `name`; ATTACHMENT_NOT_FOUND when it has none. */
  async meta(name: string, id: string): Promise<AttachmentMeta> {
    const meta = await this.options.store.meta({ name }, id);
    if (meta === null) throw missing(name, id);
    return meta;
  }

  /** The bytes (or a range) of attachment `id` of live document `name`. */
  async read(name: string, id: string, range?: ByteRange): Promise<Uint8Array> {
    const bytes = await this.options.store.read({ name }, id, range);
    if (bytes === null) throw missing(name, id);
    return bytes;
  }

  /**
   * The bytes (or a range, clamped by the caller) of attachment `id` of live
   * document `name`, streamed. At most {@link SERVING_AT_ONCE} are read at a
   * time, the rest wait their turn: serving files never takes the CPU that
   * syncing needs (the attachments benchmark's typing beside 50 image loads).
   */
  async stream(name: string, id: string, range?: ByteRange): Promise<Readable> {
    const release = await this.serving.acquire();
    let stream: Readable | null;
    try {
      stream = await this.options.store.stream({ name }, id, range);
    } catch (error) {
      release();
      throw error;
    }
    if (stream === null) {
      release();
      throw missing(name, id);
    }
    stream.once("close", release);
    return stream;
  }

  /** Every attachment of live document `name`. */
  list(name: string): Promise<AttachmentMeta[]> {
    return this.options.store.list({ name });
  }

  /** The document went to the trash as entry `trashId`: its attachments go with it, unserved. */
  trashed(name: string, trashId: string): Promise<void> {
    return this.serial.run(name, () => this.options.store.move({ name }, { name, trashId }));
  }

  /** Trash entry `trashId` of `name` came back as document `to`. */
  restored(name: string, trashId: string, to: string): Promise<void> {
    return this.serial.run(to, () => this.options.store.move({ name, trashId }, { name: to }));
  }

  /** Trash entry `trashId` of `name` was purged: its attachments are deleted. */
  purged(name: string, trashId: string): Promise<void> {
    return this.options.store.removeAll({ name, trashId });
  }

  /**
   * Deletes the attachments of `name` that neither its content nor any of
   * its saved versions shows and that are older than the grace period (an
   * upload is in no content until the editor that made it inserts it).
   * Resolves with the ids removed.
   */
  collect(name: string, now = Date.now()): Promise<string[]> {
    return this.serial.run(name, async () => {
      const { store, references, graceMs } = this.options;
      const candidates = (await store.list({ name })).filter(
        (meta) => meta.created + graceMs <= now,
      );
      if (candidates.length === 0) return [];
      const shown = new Set<string>();
      const current = await references.current(name);
      if (current !== null) attachmentsIn(current, shown);
      for await (const version of references.versions(name)) attachmentsIn(version, shown);
      const unused = candidates.filter((meta) => !shown.has(meta.id)).map((meta) => meta.id);
      if (unused.length > 0) {
        await store.remove({ name }, unused);
        this.options.logger.info(
          { document: name, attachments: unused.length },
          "unused attachments collected",
        );
      }
      return unused;
    });
  }

  /**
   * {@link collect} for every live document with attachments, and removal
   * of trash entries' attachments whose entry is gone (a purge that stopped
   * between the two stores); resolves with how many were removed. An
   * orphan is removed only when the previous run saw it too, so a restore
   * between its two stores is never taken for one.
   */
  async collectAll(now = Date.now()): Promise<number> {
    const { store, references } = this.options;
    let removed = 0;
    const orphans = new Set<string>();
    for (const owner of await store.owners()) {
      if (owner.trashId === undefined) {
        removed += (await this.collect(owner.name, now)).length;
      } else if (!(await references.inTrash(owner.name, owner.trashId))) {
        const key = JSON.stringify([owner.name, owner.trashId]);
        orphans.add(key);
        if (!this.orphans.has(key)) continue;
        removed += (await store.usage(owner)).count;
        await store.removeAll(owner);
      }
    }
    this.orphans = orphans;
    return removed;
  }

  /** Every owner with attachments, for export and migration. */
  owners(): Promise<AttachmentOwner[]> {
    return this.options.store.owners();
  }
}

function tooLarge(maxBytes: number): CollabError {
  return new CollabError(
    "ATTACHMENT_TOO_LARGE",
    `the file is larger than MAX_ATTACHMENT_BYTES (${maxBytes} bytes)`,
  );
}

function missing(name: string, id: string): CollabError {
  return new CollabError(
    "ATTACHMENT_NOT_FOUND",
    `document ${JSON.stringify(name)} has no attachment ${id}`,
  );
}

/** A file name as downloads carry it: its last path segment, no controls, at most 255 characters. */
export function cleanFilename(filename: string): string {
  const base = filename.split(/[/\\]/).at(-1) ?? "";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const clean = base.replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
  return clean.trim().slice(0, 255);
}
