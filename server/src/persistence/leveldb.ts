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
import type { DocumentMeta, ListOptions, StoredDocument, VersionMeta } from "./store.ts";

/** Bumped when the key layout changes; a store refuses to open a newer format. */
const FORMAT = "2";
/**
 * Older formats this version upgrades in place on open. Format 1 had no
 * versions and is read the same way; the bump keeps a format-1 server, which
 * would delete a document but not its versions, from opening the directory.
 */
const UPGRADES_FROM: ReadonlySet<string> = new Set(["1"]);

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

/** `<tag>\0<name>\0`, after which come a document's version ids. */
function versionPrefix(tag: VersionTag, name: string): Uint8Array {
  const nameBytes = encoder.encode(name);
  const key = new Uint8Array(3 + nameBytes.length);
  key[0] = tag.charCodeAt(0);
  key.set(nameBytes, 2);
  return key;
}

function versionKey(tag: VersionTag, name: string, id: string): Uint8Array {
  const prefix = versionPrefix(tag, name);
  const idBytes = encoder.encode(id);
  const key = new Uint8Array(prefix.length + idBytes.length);
  key.set(prefix);
  key.set(idBytes, prefix.length);
  return key;
}

/** Every key of one document's versions in family `tag`: `<tag>\0<name>\0` up to `<tag>\0<name>\x01`. */
function versionRange(tag: VersionTag, name: string): { gte: Uint8Array; lt: Uint8Array } {
  const gte = versionPrefix(tag, name);
  const lt = gte.slice();
  lt[lt.length - 1] = 0x01;
  return { gte, lt };
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
    for (const [name, head] of staged) this.heads.set(name, head);
    if (this.heads.size > 10_000) this.heads.clear();
    for (const [name, bytes] of superseded) this.reclaimLater(name, bytes);
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

function parseHead(name: string, bytes: Uint8Array): Head {
  try {
    return JSON.parse(decoder.decode(bytes)) as Head;
  } catch (error) {
    throw new CollabError("STORE_CORRUPT", `document "${name}": metadata is not readable`, {
      cause: error,
    });
  }
}
