/**
 * Moving every document between stores, and to and from a backup file:
 * `collab-server migrate`, `export` and `import`.
 *
 * A document travels as its merged Yjs state with its creation and update
 * times, followed by its versions. Copying is idempotent: a document whose
 * state and times the target already has, and a version it already has with
 * the same bytes, are skipped, so running a migration twice changes nothing
 * the second time.
 *
 * The trash travels too, so that deleted documents stay deleted: every
 * trash entry with its content and versions, and every record of deleted
 * clients (purged entries' included), which is what refuses a client that
 * comes back with a copy of a deleted document (documents/deleted-state.ts).
 * An entry or record the target has already, the same, is skipped.
 *
 * The backup file is JSON lines: a header, then per document one `document`
 * line and one `version` line per version, then one `trash` line per trash
 * entry followed by its `trashVersion` lines, then one `deletedClients` line
 * per record (binary states in base64), then one `attachment` line per
 * attachment of a document or trash entry (its meta and bytes in base64,
 * checked against its SHA-256 on import). A file name ending in `.gz` is
 * gzip-compressed. Files of versions 1 to 3 (before the trash, threads,
 * attachments) are read as well.
 */

import { createHash } from "node:crypto";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { threadsDocumentName } from "../../../editor/src/comments/model.ts";
import {
  type AttachmentMeta,
  type AttachmentOwner,
  type AttachmentStore,
  isAttachmentId,
} from "../attachments/store.ts";
import { CollabError } from "../errors.ts";
import { ownerOf } from "../protocol/names.ts";
import { mergedState } from "./state.ts";
import type {
  DeletedClientsRecord,
  DocumentRecord,
  DocumentStore,
  TrashEntry,
  VersionMeta,
} from "./store.ts";

export { mergedState } from "./state.ts";

/** Called after each document: how many are done, of how many. */
export type Progress = (done: number, total: number) => void;

export interface TransferReport {
  /** Documents read from the source. */
  readonly documents: number;
  /** Documents written to the target (the rest it had already). */
  readonly written: number;
  /** Versions written to the target. */
  readonly versions: number;
  /** Trash entries (with their versions) written to the target. */
  readonly trash: number;
  /** Attachments written to the target (or, exporting, to the file). */
  readonly attachments: number;
}

const PAGE = 1_000;
const FORMAT = "collab-docs-export";
/**
 * 3: files may hold threads documents (`<name>\u001fthreads`, SPEC.md PERS24), which a server
 * reading version 2 would refuse partway through; it refuses a version 3 file up front.
 */
/** 4: files may hold `attachment` lines, which a server reading version 3 would refuse partway. */
const FORMAT_VERSION = 4;
/** Versions of the backup file this code reads. */
const READS: ReadonlySet<number> = new Set([1, 2, 3, 4]);

/** Every stored document name, in order, each followed by its threads document's when it has one. */
export async function allNames(store: DocumentStore): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.list({ after, limit: PAGE });
    for (const { name } of page) {
      names.push(name);
      const threads = threadsDocumentName(name);
      if ((await store.meta(threads)) !== null) names.push(threads);
    }
    if (page.length < PAGE) return names;
    after = page.at(-1)?.name;
  }
}

/** A document's merged state and times, or null when it is gone. */
export async function readRecord(
  store: DocumentStore,
  name: string,
): Promise<DocumentRecord | null> {
  const stored = await store.load(name);
  if (stored === null) return null;
  return {
    state: mergedState(stored.updates),
    created: stored.meta.created,
    updated: stored.meta.updated,
  };
}

/** Writes one document and its versions to `target` unless it has them already. */
async function writeDocument(
  target: DocumentStore,
  name: string,
  record: DocumentRecord,
  versions: ReadonlyArray<{ readonly meta: VersionMeta; readonly state: Uint8Array }>,
): Promise<{ written: boolean; versions: number }> {
  const existing = await readRecord(target, name);
  const same =
    existing !== null &&
    existing.created === record.created &&
    existing.updated === record.updated &&
    Buffer.from(existing.state).equals(record.state);
  if (!same) await target.put(name, record);
  let written = 0;
  const have = new Map((await target.listVersions(name)).map((meta) => [meta.id, meta]));
  for (const { meta, state } of versions) {
    const old = have.get(meta.id);
    if (old !== undefined && old.bytes === state.byteLength) {
      const stored = await target.loadVersion(name, meta.id);
      if (stored !== null && Buffer.from(stored.state).equals(state)) continue;
    }
    const { bytes: _bytes, ...fields } = meta;
    await target.saveVersion(name, fields, state);
    written++;
  }
  return { written: !same, versions: written };
}

async function readVersions(store: DocumentStore, name: string) {
  const versions: Array<{ meta: VersionMeta; state: Uint8Array }> = [];
  for (const meta of await store.listVersions(name)) {
    const version = await store.loadVersion(name, meta.id);
    if (version !== null) versions.push(version);
  }
  return versions;
}

type TrashItem = {
  readonly entry: TrashEntry;
  readonly state: Uint8Array;
  readonly versions: Array<{ readonly meta: VersionMeta; readonly state: Uint8Array }>;
};

/** Every trash entry of `store` with its content and versions, a page at a time. */
async function* allTrash(store: DocumentStore): AsyncGenerator<TrashItem> {
  let after: { name: string; id: string } | undefined;
  for (;;) {
    const page = await store.listTrash({ after, limit: PAGE });
    for (const entry of page) {
      // The entry, then its threads document's entry of the same id (trashed with it).
      for (const name of [entry.name, threadsDocumentName(entry.name)]) {
        const loaded = await store.loadTrash(name, entry.id);
        if (loaded === null) continue;
        yield {
          entry: loaded.entry,
          state: loaded.state,
          versions: await store.trashVersions(name, entry.id),
        };
      }
    }
    const last = page.at(-1);
    if (page.length < PAGE || last === undefined) return;
    after = { name: last.name, id: last.id };
  }
}

/** Every record of deleted clients of `store`, a page at a time. */
async function* allDeletedClients(store: DocumentStore): AsyncGenerator<DeletedClientsRecord> {
  let after: { name: string; id: string } | undefined;
  for (;;) {
    const page = await store.listDeletedClients({ after, limit: PAGE });
    yield* page;
    const last = page.at(-1);
    if (page.length < PAGE || last === undefined) return;
    after = { name: last.name, id: last.id };
  }
}

/** Writes a trash entry to `target` unless it has it already, the same; true when written. */
async function writeTrash(target: DocumentStore, item: TrashItem): Promise<boolean> {
  const have = await target.loadTrash(item.entry.name, item.entry.id);
  if (have !== null && Buffer.from(have.state).equals(item.state)) {
    const versions = await target.trashVersions(item.entry.name, item.entry.id);
    const same =
      versions.length === item.versions.length &&
      versions.every(
        (version, i) =>
          version.meta.id === item.versions[i]?.meta.id &&
          Buffer.from(version.state).equals(item.versions[i]?.state ?? new Uint8Array()),
      );
    if (same) return false;
  }
  await target.putTrash(item.entry, item.state, item.versions);
  return true;
}

/**
 * Writes the records of deleted clients the target lacks (or holds otherwise);
 * returns how many it wrote.
 */
async function writeDeletedClients(
  target: DocumentStore,
  records: AsyncIterable<DeletedClientsRecord> | Iterable<DeletedClientsRecord>,
): Promise<number> {
  const key = (record: DeletedClientsRecord) => `${record.name}\0${record.id}`;
  const have = new Map<string, string>();
  for await (const record of allDeletedClients(target)) {
    have.set(key(record), record.clients.join(","));
  }
  let written = 0;
  for await (const record of records) {
    if (have.get(key(record)) === [...record.clients].sort((a, b) => a - b).join(",")) continue;
    await target.putDeletedClients(record);
    written++;
  }
  return written;
}

/** Every attachment of `store`, owner by owner, with its bytes. */
async function* allAttachments(
  store: AttachmentStore,
): AsyncGenerator<{ owner: AttachmentOwner; meta: AttachmentMeta; bytes: Uint8Array }> {
  for (const owner of await store.owners()) {
    for (const meta of await store.list(owner)) {
      const bytes = await store.read(owner, meta.id);
      if (bytes !== null) yield { owner, meta, bytes };
    }
  }
}

/** Copies every document, with its times and versions, from `source` to `target`, and their attachments. */
export async function copyStore(
  source: DocumentStore,
  target: DocumentStore,
  onProgress: Progress = () => {},
  attachments?: { readonly source: AttachmentStore; readonly target: AttachmentStore },
): Promise<TransferReport> {
  const names = await allNames(source);
  let written = 0;
  let versions = 0;
  const total = documentsIn(names);
  let done = 0;
  onProgress(0, total);
  for (const name of names) {
    const record = await readRecord(source, name);
    if (record !== null) {
      const result = await writeDocument(target, name, record, await readVersions(source, name));
      if (result.written && ownerOf(name) === name) written++;
      versions += result.versions;
    }
    // A threads document is part of the document before it.
    if (ownerOf(name) === name) onProgress(++done, total);
  }
  let trash = 0;
  for await (const item of allTrash(source)) {
    if ((await writeTrash(target, item)) && ownerOf(item.entry.name) === item.entry.name) trash++;
  }
  await writeDeletedClients(target, allDeletedClients(source));
  await target.flush();
  let copied = 0;
  if (attachments !== undefined) {
    for await (const { owner, meta, bytes } of allAttachments(attachments.source)) {
      if ((await attachments.target.put(owner, meta, bytes)).stored) copied++;
    }
  }
  return { documents: documentsIn(names), written, versions, trash, attachments: copied };
}

/** How many of `names` are documents: a threads document is part of its document. */
function documentsIn(names: readonly string[]): number {
  return names.filter((name) => ownerOf(name) === name).length;
}

type Line =
  | { type: "header"; format: string; version: number; created: string; documents: number }
  | { type: "document"; name: string; created: number; updated: number; state: string }
  | { type: "version"; document: string; meta: VersionMeta; state: string }
  | { type: "trash"; entry: TrashEntry; state: string }
  | { type: "trashVersion"; name: string; trash: string; meta: VersionMeta; state: string }
  | { type: "deletedClients"; name: string; trash: string; clients: number[] }
  | { type: "attachment"; owner: AttachmentOwner; meta: AttachmentMeta; bytes: string };

const LINE_TYPES: ReadonlySet<string> = new Set([
  "header",
  "document",
  "version",
  "trash",
  "trashVersion",
  "deletedClients",
  "attachment",
]);

/** Writes every document of `store` to `file` (gzip when it ends in .gz), and their attachments. */
export async function exportStore(
  store: DocumentStore,
  file: string,
  onProgress: Progress = () => {},
  attachments?: AttachmentStore,
): Promise<TransferReport> {
  const names = await allNames(store);
  const output = createWriteStream(file);
  const gzip = file.endsWith(".gz") ? createGzip() : null;
  const sink: Writable = gzip ?? output;
  const done = gzip === null ? once(output, "finish") : pipeline(gzip, output);
  const write = async (line: Line) => {
    if (!sink.write(`${JSON.stringify(line)}\n`)) await once(sink, "drain");
  };
  let versions = 0;
  await write({
    type: "header",
    format: FORMAT,
    version: FORMAT_VERSION,
    created: new Date().toISOString(),
    documents: documentsIn(names),
  });
  const total = documentsIn(names);
  let exported = 0;
  onProgress(0, total);
  for (const name of names) {
    const record = await readRecord(store, name);
    if (record !== null) {
      await write({ type: "document", name, ...record, state: base64(record.state) });
      for (const { meta, state } of await readVersions(store, name)) {
        await write({ type: "version", document: name, meta, state: base64(state) });
        versions++;
      }
    }
    if (ownerOf(name) === name) onProgress(++exported, total);
  }
  let trash = 0;
  for await (const { entry, state, versions: kept } of allTrash(store)) {
    await write({ type: "trash", entry, state: base64(state) });
    for (const version of kept) {
      await write({
        type: "trashVersion",
        name: entry.name,
        trash: entry.id,
        meta: version.meta,
        state: base64(version.state),
      });
    }
    if (ownerOf(entry.name) === entry.name) trash++;
  }
  for await (const record of allDeletedClients(store)) {
    await write({
      type: "deletedClients",
      name: record.name,
      trash: record.id,
      clients: [...record.clients],
    });
  }
  let exportedAttachments = 0;
  if (attachments !== undefined) {
    for await (const { owner, meta, bytes } of allAttachments(attachments)) {
      await write({ type: "attachment", owner, meta, bytes: base64(bytes) });
      exportedAttachments++;
    }
  }
  sink.end();
  await done;
  const documents = documentsIn(names);
  return { documents, written: documents, versions, trash, attachments: exportedAttachments };
}

/**
 * Restores every document of a file written by {@link exportStore} into
 * `store`, and its attachments into `attachments` (without one, a file with
 * attachments is refused rather than half imported).
 */
export async function importStore(
  store: DocumentStore,
  file: string,
  onProgress: Progress = () => {},
  attachments?: AttachmentStore,
): Promise<TransferReport> {
  const input: Readable = file.endsWith(".gz")
    ? createReadStream(file).pipe(createGunzip())
    : createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let total = 0;
  let documents = 0;
  let written = 0;
  let versions = 0;
  let trash = 0;
  let importedAttachments = 0;
  let pending: {
    name: string;
    record: DocumentRecord;
    versions: Array<{ meta: VersionMeta; state: Uint8Array }>;
  } | null = null;
  let pendingTrash: TrashItem | null = null;
  const deletedClients: DeletedClientsRecord[] = [];
  const flushTrash = async () => {
    if (pendingTrash === null) return;
    const own = ownerOf(pendingTrash.entry.name) === pendingTrash.entry.name;
    if ((await writeTrash(store, pendingTrash)) && own) trash++;
    pendingTrash = null;
  };
  const flushPending = async () => {
    await flushTrash();
    if (pending === null) return;
    const result = await writeDocument(store, pending.name, pending.record, pending.versions);
    // A threads document is part of the document before it.
    const own = ownerOf(pending.name) === pending.name;
    if (result.written && own) written++;
    versions += result.versions;
    if (own) documents++;
    onProgress(documents, total);
    pending = null;
  };
  let number = 0;
  let sawHeader = false;
  for await (const text of lines) {
    number++;
    if (text.trim() === "") continue;
    const line = parseLine(text, number);
    if ((line.type === "header") === sawHeader) {
      throw invalid(
        number,
        sawHeader ? "a second header" : "the file does not start with a header",
      );
    }
    switch (line.type) {
      case "header":
        if (line.format !== FORMAT || !READS.has(line.version)) {
          throw invalid(number, `not a ${FORMAT} file of version ${[...READS].join(" or ")}`);
        }
        sawHeader = true;
        total = line.documents;
        onProgress(0, total);
        break;
      case "document":
        await flushPending();
        pending = {
          name: line.name,
          record: { state: fromBase64(line.state), created: line.created, updated: line.updated },
          versions: [],
        };
        break;
      case "version":
        if (pending?.name !== line.document)
          throw invalid(number, "a version outside its document");
        pending.versions.push({ meta: line.meta, state: fromBase64(line.state) });
        break;
      case "trash":
        await flushPending();
        pendingTrash = { entry: line.entry, state: fromBase64(line.state), versions: [] };
        break;
      case "trashVersion": {
        const open: TrashItem | null = pendingTrash;
        if (open === null || open.entry.name !== line.name || open.entry.id !== line.trash)
          throw invalid(number, "a trash version outside its trash entry");
        open.versions.push({ meta: line.meta, state: fromBase64(line.state) });
        break;
      }
      case "deletedClients":
        await flushPending();
        deletedClients.push({ name: line.name, id: line.trash, clients: line.clients });
        break;
      case "attachment": {
        await flushPending();
        if (attachments === undefined)
          throw invalid(number, "an attachment, and no attachment store");
        const bytes = fromBase64(line.bytes);
        const id = createHash("sha256").update(bytes).digest("hex");
        if (
          !isAttachmentId(line.meta?.id ?? "") ||
          id !== line.meta.id ||
          bytes.byteLength !== line.meta.size
        ) {
          throw invalid(number, "an attachment whose bytes do not match its id and size");
        }
        if ((await attachments.put(line.owner, line.meta, bytes)).stored) importedAttachments++;
        break;
      }
    }
  }
  await flushPending();
  await writeDeletedClients(store, deletedClients);
  await store.flush();
  return { documents, written, versions, trash, attachments: importedAttachments };
}

function parseLine(text: string, number: number): Line {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch {
    throw invalid(number, "not JSON");
  }
  const type = (line as { type?: unknown } | null)?.type;
  if (typeof type !== "string" || !LINE_TYPES.has(type)) {
    throw invalid(number, `unknown line type ${JSON.stringify(type)}`);
  }
  return line as Line;
}

function invalid(line: number, why: string): CollabError {
  return new CollabError("BACKUP_INVALID", `the backup file is not valid at line ${line}: ${why}`);
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}
