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
 * The backup file is JSON lines: a header, then per document one `document`
 * line and one `version` line per version (binary states in base64). A file
 * name ending in `.gz` is gzip-compressed.
 */

import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import * as Y from "yjs";
import { CollabError } from "../errors.ts";
import { mergedState } from "./state.ts";
import type { DocumentRecord, DocumentStore, VersionMeta } from "./store.ts";

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
}

const PAGE = 1_000;
const FORMAT = "collab-docs-export";
const FORMAT_VERSION = 1;

/** Every stored document name, in order. */
export async function allNames(store: DocumentStore): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.list({ after, limit: PAGE });
    for (const { name } of page) names.push(name);
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

/** Copies every document, with its times and versions, from `source` to `target`. */
export async function copyStore(
  source: DocumentStore,
  target: DocumentStore,
  onProgress: Progress = () => {},
): Promise<TransferReport> {
  const names = await allNames(source);
  let written = 0;
  let versions = 0;
  onProgress(0, names.length);
  for (const [index, name] of names.entries()) {
    const record = await readRecord(source, name);
    if (record !== null) {
      const result = await writeDocument(target, name, record, await readVersions(source, name));
      if (result.written) written++;
      versions += result.versions;
    }
    onProgress(index + 1, names.length);
  }
  await target.flush();
  return { documents: names.length, written, versions };
}

type Line =
  | { type: "header"; format: string; version: number; created: string; documents: number }
  | { type: "document"; name: string; created: number; updated: number; state: string }
  | { type: "version"; document: string; meta: VersionMeta; state: string };

/** Writes every document of `store` to `file` (gzip when it ends in .gz). */
export async function exportStore(
  store: DocumentStore,
  file: string,
  onProgress: Progress = () => {},
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
    documents: names.length,
  });
  onProgress(0, names.length);
  for (const [index, name] of names.entries()) {
    const record = await readRecord(store, name);
    if (record !== null) {
      await write({ type: "document", name, ...record, state: base64(record.state) });
      for (const { meta, state } of await readVersions(store, name)) {
        await write({ type: "version", document: name, meta, state: base64(state) });
        versions++;
      }
    }
    onProgress(index + 1, names.length);
  }
  sink.end();
  await done;
  return { documents: names.length, written: names.length, versions };
}

/** Restores every document of a file written by {@link exportStore} into `store`. */
export async function importStore(
  store: DocumentStore,
  file: string,
  onProgress: Progress = () => {},
): Promise<TransferReport> {
  const input: Readable = file.endsWith(".gz")
    ? createReadStream(file).pipe(createGunzip())
    : createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let total = 0;
  let documents = 0;
  let written = 0;
  let versions = 0;
  let pending: {
    name: string;
    record: DocumentRecord;
    versions: Array<{ meta: VersionMeta; state: Uint8Array }>;
  } | null = null;
  const flushPending = async () => {
    if (pending === null) return;
    const result = await writeDocument(store, pending.name, pending.record, pending.versions);
    if (result.written) written++;
    versions += result.versions;
    documents++;
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
        if (line.format !== FORMAT || line.version !== FORMAT_VERSION) {
          throw invalid(number, `not a ${FORMAT} version ${FORMAT_VERSION} file`);
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
    }
  }
  await flushPending();
  await store.flush();
  return { documents, written, versions };
}

function parseLine(text: string, number: number): Line {
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch {
    throw invalid(number, "not JSON");
  }
  const type = (line as { type?: unknown } | null)?.type;
  if (type !== "header" && type !== "document" && type !== "version") {
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
