/**
 * The embedded default store: an update log plus snapshot per document in
 * LevelDB (classic-level). Every batch is one atomic LevelDB write, so a
 * compaction (snapshot put + log deletes + metadata) is all or nothing.
 *
 * Key layout (binary; a document name never contains a control character, so
 * `\0` separates it from what follows):
 *   `\0format`                  -> store format version
 *   `m\0<name>`                 -> metadata and log sequence numbers (JSON)
 *   `s\0<name>`                 -> snapshot: the merged state of the last compaction
 *   `u\0<name>\0<seq: 8 bytes>` -> one Yjs update of the log, in append order
 *   `v\0<name>\0<id>`           -> metadata of one saved version (JSON)
 *   `w\0<name>\0<id>`           -> the state of that version
 *   `t\0<name>\0<tid>`          -> a trash entry of a deleted document (JSON)
 *   `c\0<name>\0<tid>`          -> its content, merged into one state
 *   `x\0<name>\0<tid>\0<id>`    -> metadata of a version that went to the trash with it
 *   `y\0<name>\0<tid>\0<id>`    -> the state of that version
 *   `d\0<name>\0<tid>`          -> the client ids of that content, deleted for the name
 *                                 (kept after a purge, removed by a restore to the name)
 *
 * Versions keep metadata and state apart so listing them reads no state. The
 * `\0` after the name ends it, so the range `<tag>\0<name>\0` to
 * `<tag>\0<name>\x01` holds one document's keys and never those of a longer
 * name starting with the same characters.
 */
import { ClassicLevel } from "classic-level";
import { CollabError } from "../errors.ts";
import {
  type Head,
  LogStore,
  type LogStoreOptions,
  metaOf,
  nextHead,
  type WriteOp,
} from "./log-store.ts";
import { clientsOf, decodeClients, encodeClients, mergedState } from "./state.ts";
import type {
  DeletedClientsRecord,
  DocumentMeta,
  ListOptions,
  StoredDocument,
  TrashEntry,
  TrashListOptions,
  VersionMeta,
} from "./store.ts";

/** Bumped when the key layout changes; a store refuses to open a newer format. */
const FORMAT = "3";
/**
 * Older formats this version upgrades in place on open. Format 1 had no
 * versions and format 2 no trash; both are read the same way. Each bump keeps
 * an older server, which would ignore what it does not know (versions, the
 * trash and its deleted clients), from opening the directory.
 */
const UPGRADES_FROM: ReadonlySet<string> = new Set(["1", "2"]);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const FORMAT_KEY = encoder.encode("\0format");
const PROBE_KEY = encoder.encode("\0probe");

function prefixed(tag: string, name: string): Uint8Array {
  const nameBytes = encoder.encode(name);
  const key = new Uint8Array(2 + nameBytes.length);
  key[0] = tag.charCodeAt(0);
  key.set(nameBytes, 2);
  return key;
}

const metaKey = (name: string) => prefixed("m", name);
const snapshotKey = (name: string) => prefixed("s", name);

/** `u\0<name>\0` followed by room for the sequence number; fill with {@link updateKeyAt}. */
function updateKeyPrefix(name: string): Uint8Array {
  const nameBytes = encoder.encode(name);
  const key = new Uint8Array(3 + nameBytes.length + 8);
  key[0] = 0x75; // "u"
  key.set(nameBytes, 2);
  return key;
}

/** The key of log entry `seq` (big-endian, so keys sort by sequence), from a prefix made once per name. */
function updateKeyAt(prefix: Uint8Array, seq: number): Uint8Array {
  const key = prefix.slice();
  const view = new DataView(key.buffer, key.length - 8, 8);
  view.setUint32(0, Math.floor(seq / 2 ** 32));
  view.setUint32(4, seq >>> 0);
  return key;
}

const updateKey = (name: string, seq: number) => updateKeyAt(updateKeyPrefix(name), seq);

/** Version metadata (`v`) or state (`w`). */
type VersionTag = "v" | "w";
/** A trash entry (`t`), its content (`c`), its deleted clients (`d`), its versions (`x`, `y`). */
type TrashTag = "t" | "c" | "d" | "x" | "y";

/** `<tag>\0<name>\0`, after which come a document's version or trash ids. */
function versionPrefix(tag: VersionTag | TrashTag, name: string): Uint8Array {
  const nameBytes = encoder.encode(name);
  const key = new Uint8Array(3 + nameBytes.length);
  key[0] = tag.charCodeAt(0);
  key.set(nameBytes, 2);
  return key;
}

function versionKey(tag: VersionTag | TrashTag, name: string, id: string): Uint8Array {
  const prefix = versionPrefix(tag, name);
  const idBytes = encoder.encode(id);
  const key = new Uint8Array(prefix.length + idBytes.length);
  key.set(prefix);
  key.set(idBytes, prefix.length);
  return key;
}

/** Every key of one document's versions in family `tag`: `<tag>\0<name>\0` up to `<tag>\0<name>\x01`. */
function versionRange(
  tag: VersionTag | TrashTag,
  name: string,
): { gte: Uint8Array; lt: Uint8Array } {
  const gte = versionPrefix(tag, name);
  const lt = gte.slice();
  lt[lt.length - 1] = 0x01;
  return { gte, lt };
}

/** A key of a trash entry: `<tag>\0<name>\0<trash id>`. */
const trashKey = (tag: "t" | "c" | "d", name: string, id: string) => versionKey(tag, name, id);

/** `<tag>\0<name>\0<trash id>\0`, after which come the ids of the entry's versions. */
function trashedVersionPrefix(tag: "x" | "y", name: string, id: string): Uint8Array {
  const base = versionKey(tag, name, id);
  const key = new Uint8Array(base.length + 1);
  key.set(base);
  return key;
}

/** Every key in `<prefix>` followed by anything: `<prefix>` up to (not including) `<prefix>\xff`. */
function rangeAfter(prefix: Uint8Array): { gte: Uint8Array; lt: Uint8Array } {
  const lt = new Uint8Array(prefix.length + 1);
  lt.set(prefix);
  lt[prefix.length] = 0xff;
  return { gte: prefix, lt };
}

type Db = ClassicLevel<Uint8Array, Uint8Array>;
type BatchOp =
  | { type: "put"; key: Uint8Array; value: Uint8Array }
  | { type: "del"; key: Uint8Array };

export interface LevelDbStoreOptions extends LogStoreOptions {
  /** The LevelDB directory. Only one process may open it at a time. */
  readonly dir: string;
  /**
   * fsync each batch before acknowledging it: survives power loss, not just
   * a process crash. @default false
   */
  readonly fsync?: boolean;
  /** LevelDB's block cache (LEVELDB_CACHE_BYTES). @default 8 MiB */
  readonly cacheBytes?: number;
  /** LevelDB's write buffer (LEVELDB_WRITE_BUFFER_BYTES). @default 4 MiB */
  readonly writeBufferBytes?: number;
}

/** classic-level's own defaults, named. */
const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
const DEFAULT_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Superseded bytes (deleted log entries, replaced snapshots) a document may
 * leave in LevelDB's files before we ask LevelDB to compact its key range.
 * LevelDB reclaims space only when a level grows past its size (10 MB at
 * level 1), so one busy document's garbage would otherwise stay on disk.
 */
const RECLAIM_AFTER_BYTES = 1024 * 1024;

/** Reads of a document tried without a snapshot before one is taken (see LevelDbStore.read). */
const OPTIMISTIC_READS = 3;

/** The snapshot key of `name`, then the keys of its log entries, in order. */
function documentKeys(name: string, head: Head): Uint8Array[] {
  const keys = [snapshotKey(name)];
  const prefix = updateKeyPrefix(name);
  for (let seq = head.firstSeq; seq < head.nextSeq; seq++) keys.push(updateKeyAt(prefix, seq));
  return keys;
}

/** The stored document from the values of {@link documentKeys}: the snapshot, if any, then the log. */
function documentOf(
  name: string,
  head: Head,
  values: ReadonlyArray<Uint8Array | undefined>,
): StoredDocument {
  const [state, ...log] = values;
  const updates: Uint8Array[] = state === undefined ? [] : [state];
  let found = 0;
  for (const update of log) {
    if (update === undefined) continue;
    updates.push(update);
    found++;
  }
  if (found !== head.nextSeq - head.firstSeq) {
    throw new CollabError(
      "STORE_CORRUPT",
      `document "${name}": metadata lists ${head.nextSeq - head.firstSeq} log entries, found ${found}`,
    );
  }
  return { updates, meta: metaOf(head) };
}

export class LevelDbStore extends LogStore {
  readonly kind = "leveldb";
  private readonly heads = new Map<string, Head | null>();
  /** Superseded bytes per document since its range was last compacted. */
  private readonly garbage = new Map<string, number>();
  /** Background compactRange calls, one at a time. */
  private reclaiming: Promise<void> = Promise.resolve();
  /**
   * Names with any record of deleted clients (a superset: a restore may remove the last one),
   * read once on first use and kept up to date by the writes that add records.
   */
  private namesWithDeleted: Set<string> | null = null;

  private readonly db: Db;
  private readonly fsync: boolean;

  private constructor(db: Db, options: LevelDbStoreOptions) {
    super(options);
    this.db = db;
    this.fsync = options.fsync ?? false;
  }

  /**
   * Opens (creating if needed) the store in `options.dir`. Fails with
   * DATA_DIR_LOCKED when another process holds the directory, and with
   * STORE_CORRUPT when it holds a format this version does not know.
   */
  static async open(options: LevelDbStoreOptions): Promise<LevelDbStore> {
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(options.dir, {
      keyEncoding: "view",
      valueEncoding: "view",
      cacheSize: options.cacheBytes ?? DEFAULT_CACHE_BYTES,
      writeBufferSize: options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES,
    });
    try {
      await db.open();
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      if (cause?.code === "LEVEL_LOCKED") {
        throw new CollabError(
          "DATA_DIR_LOCKED",
          `DATA_DIR ${options.dir} is in use by another server process (its LevelDB lock is held); stop that process or choose another DATA_DIR`,
          { cause: error },
        );
      }
      throw new CollabError(
        "STORE_UNAVAILABLE",
        `cannot open LevelDB in ${options.dir}: ${String(cause ?? error)}`,
        {
          cause: error,
        },
      );
    }
    const format = await db.get(FORMAT_KEY);
    if (format === undefined || UPGRADES_FROM.has(decoder.decode(format))) {
      await db.put(FORMAT_KEY, encoder.encode(FORMAT), { sync: true });
    } else if (decoder.decode(format) !== FORMAT) {
      await db.close();
      throw new CollabError(
        "STORE_CORRUPT",
        `DATA_DIR ${options.dir} holds store format ${decoder.decode(format)}; this server reads format ${FORMAT}`,
      );
    }
    return new LevelDbStore(db, options);
  }

  protected async writeBatch(batch: readonly WriteOp[]): Promise<void> {
    const now = Date.now();
    const staged = new Map<string, Head | null>();
    const superseded = new Map<string, number>();
    const prefixes = new Map<string, Uint8Array>();
    const keyOf = (name: string, seq: number) => {
      let prefix = prefixes.get(name);
      if (prefix === undefined) {
        prefix = updateKeyPrefix(name);
        prefixes.set(name, prefix);
      }
      return updateKeyAt(prefix, seq);
    };
    const addGarbage = (name: string, bytes: number) =>
      superseded.set(name, (superseded.get(name) ?? 0) + bytes);
    const ops: BatchOp[] = [];
    const versions = new VersionWrites(this.db, ops, addGarbage);
    for (const op of batch) {
      if (op.kind === "probe") {
        ops.push({ type: "put", key: PROBE_KEY, value: encoder.encode(String(now)) });
        continue;
      }
      // Versions are kept beside the content: they leave the head alone.
      if (op.kind === "saveVersion") {
        await versions.save(op.name, op.version, op.state);
        continue;
      }
      if (op.kind === "deleteVersion") {
        await versions.remove(op.name, op.id);
        continue;
      }
      // Each of these is alone in its batch (isAlone), so the database holds everything before it.
      if (op.kind === "trash") {
        const head = await this.head(op.name);
        op.outcome.entry = await this.moveToTrash(op.name, head, op.entry, ops, addGarbage);
        if (op.outcome.entry !== null) staged.set(op.name, null);
        continue;
      }
      if (op.kind === "restoreTrash") {
        const head = await this.restoreFromTrash(op.from, op.id, op.name, ops, now, addGarbage);
        op.outcome.found = head !== undefined;
        if (head !== undefined) staged.set(op.name, head);
        continue;
      }
      if (op.kind === "purgeTrash") {
        op.outcome.found = await this.purgeEntry(op.name, op.id, ops, addGarbage);
        continue;
      }
      if (op.kind === "putTrash") {
        await this.dropEntry(op.name, op.entry.id, ops);
        const entry: TrashEntry = {
          ...op.entry,
          bytes: op.state.byteLength,
          versions: op.versions.length,
        };
        const id = entry.id;
        ops.push({
          type: "put",
          key: trashKey("t", op.name, id),
          value: encoder.encode(JSON.stringify(entry)),
        });
        ops.push({ type: "put", key: trashKey("c", op.name, id), value: op.state });
        for (const { meta, state } of op.versions) {
          const stored: VersionMeta = { ...meta, bytes: state.byteLength };
          ops.push({
            type: "put",
            key: trashedVersionKey("x", op.name, id, meta.id),
            value: encoder.encode(JSON.stringify(stored)),
          });
          ops.push({
            type: "put",
            key: trashedVersionKey("y", op.name, id, meta.id),
            value: state,
          });
        }
        ops.push({
          type: "put",
          key: trashKey("d", op.name, id),
          value: encodeClients(clientsOf(op.state)),
        });
        continue;
      }
      if (op.kind === "putDeletedClients") {
        ops.push({
          type: "put",
          key: trashKey("d", op.name, op.record.id),
          value: encodeClients(op.record.clients),
        });
        continue;
      }
      // The cache and this batch's staged heads first: most operations need no read.
      const cached = staged.has(op.name) ? staged.get(op.name) : this.heads.get(op.name);
      const head = cached !== undefined ? cached : await this.head(op.name);
      const next = nextHead(head, op, now);
      switch (op.kind) {
        case "append":
          ops.push({
            type: "put",
            key: keyOf(op.name, (next as Head).nextSeq - 1),
            value: op.update,
          });
          break;
        case "compact":
          for (let seq = head?.firstSeq ?? 0; seq < (head?.nextSeq ?? 0); seq++) {
            ops.push({ type: "del", key: keyOf(op.name, seq) });
          }
          ops.push({ type: "put", key: snapshotKey(op.name), value: op.state });
          addGarbage(op.name, head?.bytes ?? 0);
          break;
        case "delete":
          for (let seq = head?.firstSeq ?? 0; seq < (head?.nextSeq ?? 0); seq++) {
            ops.push({ type: "del", key: keyOf(op.name, seq) });
          }
          ops.push({ type: "del", key: snapshotKey(op.name) });
          addGarbage(op.name, head?.bytes ?? 0);
          await versions.removeAll(op.name);
          break;
      }
      staged.set(op.name, next);
    }
    for (const [name, head] of staged) {
      ops.push(
        head === null
          ? { type: "del", key: metaKey(name) }
          : { type: "put", key: metaKey(name), value: encoder.encode(JSON.stringify(head)) },
      );
    }
    await this.db.batch(ops, { sync: this.fsync });
    for (const op of batch) {
      const recorded =
        (op.kind === "trash" && op.outcome.entry !== null) ||
        op.kind === "putTrash" ||
        op.kind === "putDeletedClients";
      if (recorded) this.namesWithDeleted?.add(op.name);
    }
    for (const [name, head] of staged) this.heads.set(name, head);
    if (this.heads.size > 10_000) this.heads.clear();
    for (const [name, bytes] of superseded) this.reclaimLater(name, bytes);
  }

  /** Moves `name` into the trash (see DocumentStore.trash); null when nothing is stored. */
  private async moveToTrash(
    name: string,
    head: Head | null,
    fields: { readonly id: string; readonly deleted: number; readonly deletedBy: string | null },
    ops: BatchOp[],
    addGarbage: (name: string, bytes: number) => void,
  ): Promise<TrashEntry | null> {
    const stored = head === null ? null : await this.read(name);
    if (head === null || stored === null) return null;
    const state = mergedState(stored.updates);
    let versionCount = 0;
    const metaPrefix = versionPrefix("v", name).length;
    for (const [key, value] of await this.db.iterator(versionRange("v", name)).all()) {
      const versionId = decoder.decode(key.subarray(metaPrefix));
      const versionState = await this.db.get(versionKey("w", name, versionId));
      ops.push({ type: "put", key: trashedVersionKey("x", name, fields.id, versionId), value });
      if (versionState !== undefined) {
        ops.push({
          type: "put",
          key: trashedVersionKey("y", name, fields.id, versionId),
          value: versionState,
        });
      }
      ops.push({ type: "del", key: versionKey("v", name, versionId) });
      ops.push({ type: "del", key: versionKey("w", name, versionId) });
      versionCount++;
    }
    const entry: TrashEntry = {
      name,
      ...fields,
      created: head.created,
      updated: head.updated,
      bytes: state.byteLength,
      versions: versionCount,
    };
    for (let seq = head.firstSeq; seq < head.nextSeq; seq++) {
      ops.push({ type: "del", key: updateKey(name, seq) });
    }
    ops.push({ type: "del", key: snapshotKey(name) });
    addGarbage(name, head.bytes);
    ops.push({
      type: "put",
      key: trashKey("t", name, fields.id),
      value: encoder.encode(JSON.stringify(entry)),
    });
    ops.push({ type: "put", key: trashKey("c", name, fields.id), value: state });
    ops.push({
      type: "put",
      key: trashKey("d", name, fields.id),
      value: encodeClients(clientsOf(state)),
    });
    return entry;
  }

  /**
   * Moves trash entry (`from`, `id`) back into `to`, merged with what `to`
   * holds. Returns `to`'s new head, or undefined when there is no such entry.
   */
  private async restoreFromTrash(
    from: string,
    id: string,
    to: string,
    ops: BatchOp[],
    now: number,
    addGarbage: (name: string, bytes: number) => void,
  ): Promise<Head | undefined> {
    const trashed = await this.readTrashEntry(from, id);
    if (trashed === null) return undefined;
    const head = await this.head(to);
    const existing = head === null ? null : await this.read(to);
    const state =
      existing === null ? trashed.state : mergedState([...existing.updates, trashed.state]);
    const times =
      head === null
        ? { created: trashed.entry.created, updated: trashed.entry.updated }
        : { created: head.created, updated: now };
    for (let seq = head?.firstSeq ?? 0; seq < (head?.nextSeq ?? 0); seq++) {
      ops.push({ type: "del", key: updateKey(to, seq) });
    }
    addGarbage(to, head?.bytes ?? 0);
    ops.push({ type: "put", key: snapshotKey(to), value: state });
    const prefixLength = trashedVersionPrefix("x", from, id).length;
    for (const [key, value] of await this.db
      .iterator(rangeAfter(trashedVersionPrefix("x", from, id)))
      .all()) {
      const versionId = decoder.decode(key.subarray(prefixLength));
      const versionState = await this.db.get(trashedVersionKey("y", from, id, versionId));
      ops.push({ type: "put", key: versionKey("v", to, versionId), value });
      if (versionState !== undefined) {
        ops.push({ type: "put", key: versionKey("w", to, versionId), value: versionState });
      }
    }
    await this.dropEntry(from, id, ops);
    if (to === from) ops.push({ type: "del", key: trashKey("d", from, id) });
    return nextHead(head, { kind: "compact", name: to, state, times }, now) ?? undefined;
  }

  /** Removes a trash entry and its versions; its deleted clients stay. False: there was none. */
  private async purgeEntry(
    name: string,
    id: string,
    ops: BatchOp[],
    addGarbage: (name: string, bytes: number) => void,
  ): Promise<boolean> {
    const stored = await this.db.get(trashKey("t", name, id));
    if (stored === undefined) return false;
    addGarbage(name, parseTrashEntry(name, stored).bytes);
    await this.dropEntry(name, id, ops);
    return true;
  }

  private async dropEntry(name: string, id: string, ops: BatchOp[]): Promise<void> {
    ops.push({ type: "del", key: trashKey("t", name, id) });
    ops.push({ type: "del", key: trashKey("c", name, id) });
    for (const tag of ["x", "y"] as const) {
      for (const key of await this.db.keys(rangeAfter(trashedVersionPrefix(tag, name, id))).all()) {
        ops.push({ type: "del", key });
      }
    }
  }

  /**
   * Counts superseded bytes and, past RECLAIM_AFTER_BYTES, compacts the
   * document's key range in the background. This only frees disk space: a
   * failure leaves every byte of data intact (LevelDB reclaims it later on
   * its own), so it is not a write failure and is not retried.
   */
  private reclaimLater(name: string, bytes: number): void {
    const total = (this.garbage.get(name) ?? 0) + bytes;
    if (total < RECLAIM_AFTER_BYTES) {
      this.garbage.set(name, total);
      return;
    }
    this.garbage.delete(name);
    this.reclaiming = this.reclaiming.then(async () => {
      try {
        await this.db.compactRange(updateKey(name, 0), updateKey(name, Number.MAX_SAFE_INTEGER));
        await this.db.compactRange(snapshotKey(name), snapshotKey(name));
        const states = versionRange("w", name);
        await this.db.compactRange(states.gte, states.lt);
      } catch {
        // See above: only disk space is at stake.
      }
    });
  }

  /** The head of `name`, from the cache or the database. */
  private async head(name: string): Promise<Head | null> {
    const cached = this.heads.get(name);
    if (cached !== undefined) return cached;
    const stored = await this.db.get(metaKey(name));
    const head = stored === undefined ? null : parseHead(name, stored);
    this.heads.set(name, head);
    return head;
  }

  /**
   * Reads a document without an iterator or an explicit snapshot. classic-level
   * 3.0.0 keeps native memory for every iterator it closes (about 6 KiB each,
   * measured over 50,000 iterators with glibc, one glibc arena and jemalloc
   * alike; never given back) and for every multi-key read under an explicit
   * snapshot; one such read per document load grew the server by about 1 MiB
   * per soak cycle (REL4). The log's keys are known from the metadata, so
   * they are read by key; the metadata is read again afterwards, and since
   * every write to the document rewrites it, an unchanged one shows that no
   * write landed in between. Otherwise the read is tried again, and after
   * {@link OPTIMISTIC_READS} tries it is made under a snapshot.
   */
  protected async read(name: string): Promise<StoredDocument | null> {
    for (let attempt = 0; attempt < OPTIMISTIC_READS; attempt++) {
      const stored = await this.db.get(metaKey(name));
      if (stored === undefined) return null;
      const head = parseHead(name, stored);
      const values = await this.db.getMany(documentKeys(name, head));
      const after = await this.db.get(metaKey(name));
      if (after !== undefined && Buffer.compare(after, stored) === 0) {
        return documentOf(name, head, values);
      }
    }
    const snapshot = this.db.snapshot();
    try {
      const stored = await this.db.get(metaKey(name), { snapshot });
      if (stored === undefined) return null;
      const head = parseHead(name, stored);
      return documentOf(name, head, await this.db.getMany(documentKeys(name, head), { snapshot }));
    } finally {
      await snapshot.close();
    }
  }

  protected async readMeta(name: string): Promise<DocumentMeta | null> {
    const stored = await this.db.get(metaKey(name));
    return stored === undefined ? null : metaOf(parseHead(name, stored));
  }

  protected async readList(
    options: ListOptions,
  ): Promise<Array<{ name: string; meta: DocumentMeta }>> {
    const start = metaKey(options.prefix ?? "");
    const end = new Uint8Array(start.length + 1);
    end.set(start);
    end[start.length] = 0xff;
    const after = options.after === undefined ? undefined : metaKey(options.after);
    // Start after `after` only when it sorts inside the prefix range; before it, the range start wins.
    const range =
      after !== undefined && Buffer.compare(after, start) >= 0
        ? { gt: after, lt: end, limit: options.limit }
        : { gte: start, lt: end, limit: options.limit };
    const entries = await this.db.iterator(range).all();
    return entries.map(([key, value]) => {
      const name = decoder.decode(key.subarray(2));
      return { name, meta: metaOf(parseHead(name, value)) };
    });
  }

  protected async readVersions(name: string): Promise<VersionMeta[]> {
    const values = await this.db.values(versionRange("v", name)).all();
    return values.map((value) => parseVersion(name, value));
  }

  protected async readVersion(
    name: string,
    id: string,
  ): Promise<{ meta: VersionMeta; state: Uint8Array } | null> {
    // One snapshot, so an overwrite landing between the two reads cannot mix two versions.
    const snapshot = this.db.snapshot();
    try {
      const stored = await this.db.get(versionKey("v", name, id), { snapshot });
      if (stored === undefined) return null;
      const meta = parseVersion(name, stored);
      const state = await this.db.get(versionKey("w", name, id), { snapshot });
      if (state === undefined) {
        throw new CollabError(
          "STORE_CORRUPT",
          `document "${name}": version ${JSON.stringify(id)} has metadata but no state`,
        );
      }
      return { meta, state };
    } finally {
      await snapshot.close();
    }
  }

  protected async readTrash(options: TrashListOptions): Promise<TrashEntry[]> {
    const range =
      options.name !== undefined
        ? versionRange("t", options.name)
        : rangeAfter(prefixed("t", options.prefix ?? ""));
    const after =
      options.after === undefined ? undefined : trashKey("t", options.after.name, options.after.id);
    const bounds =
      after !== undefined && Buffer.compare(after, range.gte) >= 0
        ? { gt: after, lt: range.lt }
        : { gte: range.gte, lt: range.lt };
    const entries = await this.db.iterator({ ...bounds, limit: options.limit }).all();
    return entries.map(([key, value]) =>
      parseTrashEntry(decoder.decode(key.subarray(2)).split("\0")[0] ?? "", value),
    );
  }

  protected async readTrashEntry(
    name: string,
    id: string,
  ): Promise<{ entry: TrashEntry; state: Uint8Array } | null> {
    const snapshot = this.db.snapshot();
    try {
      const stored = await this.db.get(trashKey("t", name, id), { snapshot });
      if (stored === undefined) return null;
      const state = await this.db.get(trashKey("c", name, id), { snapshot });
      if (state === undefined) {
        throw new CollabError(
          "STORE_CORRUPT",
          `trash entry ${JSON.stringify(id)} of "${name}" has metadata but no content`,
        );
      }
      return { entry: parseTrashEntry(name, stored), state };
    } finally {
      await snapshot.close();
    }
  }

  protected async readTrashVersions(
    name: string,
    id: string,
  ): Promise<Array<{ meta: VersionMeta; state: Uint8Array }>> {
    const snapshot = this.db.snapshot();
    try {
      const versions: Array<{ meta: VersionMeta; state: Uint8Array }> = [];
      const prefix = trashedVersionPrefix("x", name, id);
      for (const [key, value] of await this.db
        .iterator({ ...rangeAfter(prefix), snapshot })
        .all()) {
        const versionId = decoder.decode(key.subarray(prefix.length));
        const state = await this.db.get(trashedVersionKey("y", name, id, versionId), { snapshot });
        if (state !== undefined) versions.push({ meta: parseVersion(name, value), state });
      }
      return versions;
    } finally {
      await snapshot.close();
    }
  }

  protected async readDeletedClientRecords(options: {
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<DeletedClientsRecord[]> {
    const range = rangeAfter(prefixed("d", ""));
    const after =
      options.after === undefined ? undefined : trashKey("d", options.after.name, options.after.id);
    const bounds = after === undefined ? range : { gt: after, lt: range.lt };
    const entries = await this.db.iterator({ ...bounds, limit: options.limit }).all();
    return entries.map(([key, value]) => {
      const [name = "", id = ""] = decoder.decode(key.subarray(2)).split("\0");
      return { name, id, clients: decodeClients(value) };
    });
  }

  /** The names that have a record of deleted clients, from their keys alone. */
  private async scanNamesWithDeleted(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const key of await this.db.keys(rangeAfter(prefixed("d", ""))).all()) {
      names.add(decoder.decode(key.subarray(2)).split("\0")[0] ?? "");
    }
    return names;
  }

  protected async readDeletedClients(name: string): Promise<ReadonlySet<number>> {
    // Every document load asks; nearly every name has nothing, and that answer needs no
    // LevelDB iterator (each one costs native memory and time on the load path).
    this.namesWithDeleted ??= await this.scanNamesWithDeleted();
    if (!this.namesWithDeleted.has(name)) return new Set();
    const clients = new Set<number>();
    for (const value of await this.db.values(versionRange("d", name)).all()) {
      for (const client of decodeClients(value)) clients.add(client);
    }
    return clients;
  }

  /**
   * LevelDB stops accepting writes after an I/O error (for example a full
   * disk) until it is reopened; reopen before retrying so the retry can
   * succeed once the cause is gone.
   */
  protected override async recover(): Promise<void> {
    this.heads.clear();
    await this.db.close();
    await this.db.open();
  }

  protected async release(): Promise<void> {
    await this.reclaiming;
    await this.db.close();
  }
}

/**
 * The version keys of one batch. A batch is written as one LevelDB write, so
 * what it saved or deleted earlier shadows what the database holds: a batch
 * that saves a version and then deletes its document removes that version too.
 */
class VersionWrites {
  /** Versions this batch wrote, by name and id: their bytes, or null once deleted. */
  private readonly staged = new Map<string, Map<string, number | null>>();
  private readonly db: Db;
  private readonly ops: BatchOp[];
  private readonly addGarbage: (name: string, bytes: number) => void;

  constructor(db: Db, ops: BatchOp[], addGarbage: (name: string, bytes: number) => void) {
    this.db = db;
    this.ops = ops;
    this.addGarbage = addGarbage;
  }

  async save(name: string, meta: VersionMeta, state: Uint8Array): Promise<void> {
    this.addGarbage(name, await this.bytesOf(name, meta.id));
    this.ops.push({
      type: "put",
      key: versionKey("v", name, meta.id),
      value: encoder.encode(JSON.stringify(meta)),
    });
    this.ops.push({ type: "put", key: versionKey("w", name, meta.id), value: state });
    this.stage(name, meta.id, meta.bytes);
  }

  async remove(name: string, id: string): Promise<void> {
    this.drop(name, id, await this.bytesOf(name, id));
  }

  /** Removes every version of `name`, finding them by their metadata keys (no state is read). */
  async removeAll(name: string): Promise<void> {
    const prefixLength = versionPrefix("v", name).length;
    const present = new Map<string, number>();
    for (const [key, value] of await this.db.iterator(versionRange("v", name)).all()) {
      present.set(decoder.decode(key.subarray(prefixLength)), garbageBytes(value));
    }
    for (const [id, bytes] of this.staged.get(name) ?? []) {
      if (bytes === null) present.delete(id);
      else present.set(id, bytes);
    }
    for (const [id, bytes] of present) this.drop(name, id, bytes);
  }

  private drop(name: string, id: string, bytes: number): void {
    this.addGarbage(name, bytes);
    this.ops.push({ type: "del", key: versionKey("v", name, id) });
    this.ops.push({ type: "del", key: versionKey("w", name, id) });
    this.stage(name, id, null);
  }

  /** The bytes of a version as this batch left it so far, 0 when absent (only to count garbage). */
  private async bytesOf(name: string, id: string): Promise<number> {
    const staged = this.staged.get(name)?.get(id);
    if (staged !== undefined) return staged ?? 0;
    const stored = await this.db.get(versionKey("v", name, id));
    return stored === undefined ? 0 : garbageBytes(stored);
  }

  private stage(name: string, id: string, bytes: number | null): void {
    let ids = this.staged.get(name);
    if (ids === undefined) {
      ids = new Map();
      this.staged.set(name, ids);
    }
    ids.set(id, bytes);
  }
}

function parseVersion(name: string, bytes: Uint8Array): VersionMeta {
  try {
    return JSON.parse(decoder.decode(bytes)) as VersionMeta;
  } catch (error) {
    throw new CollabError("STORE_CORRUPT", `document "${name}": version metadata is not readable`, {
      cause: error,
    });
  }
}

/**
 * The `bytes` of stored version metadata, or 0 when unreadable: it only
 * counts garbage, and an unreadable entry must not stop its own deletion.
 */
function garbageBytes(bytes: Uint8Array): number {
  try {
    const size = (JSON.parse(decoder.decode(bytes)) as Partial<VersionMeta>).bytes;
    return typeof size === "number" ? size : 0;
  } catch {
    return 0;
  }
}

/** `<tag>\0<name>\0<trash id>\0<version id>`: a version in the trash. */
function trashedVersionKey(
  tag: "x" | "y",
  name: string,
  id: string,
  versionId: string,
): Uint8Array {
  const prefix = trashedVersionPrefix(tag, name, id);
  const idBytes = encoder.encode(versionId);
  const key = new Uint8Array(prefix.length + idBytes.length);
  key.set(prefix);
  key.set(idBytes, prefix.length);
  return key;
}

function parseTrashEntry(where: string, bytes: Uint8Array): TrashEntry {
  try {
    return JSON.parse(decoder.decode(bytes)) as TrashEntry;
  } catch (error) {
    throw new CollabError("STORE_CORRUPT", `a trash entry of "${where}" is not readable`, {
      cause: error,
    });
  }
}

function parseHead(name: string, bytes: Uint8Array): Head {
  try {
    return JSON.parse(decoder.decode(bytes)) as Head;
  } catch (error) {
    throw new CollabError("STORE_CORRUPT", `document "${name}": metadata is not readable`, {
      cause: error,
    });
  }
}
