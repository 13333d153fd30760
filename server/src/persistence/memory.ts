/**
 * An in-memory store with the same ordering and failure semantics as the
 * durable ones (it shares their write queue). For tests and `STORE=memory`
 * development servers: everything is gone when the process exits.
 */
import { type Head, LogStore, metaOf, nextHead, type WriteOp } from "./log-store.ts";
import { clientsOf, mergedState } from "./state.ts";
import type {
  DeletedClientsRecord,
  DocumentMeta,
  ListOptions,
  StoredDocument,
  TrashEntry,
  TrashListOptions,
  VersionMeta,
} from "./store.ts";

interface Entry {
  head: Head;
  snapshot: Uint8Array | null;
  log: Map<number, Uint8Array>;
}

interface Version {
  readonly meta: VersionMeta;
  readonly state: Uint8Array;
}

interface Trashed {
  readonly entry: TrashEntry;
  readonly state: Uint8Array;
  readonly versions: Map<string, Version>;
}

export class MemoryStore extends LogStore {
  readonly kind = "memory";
  private readonly docs = new Map<string, Entry>();
  /** Versions by document name and id; kept apart from `docs`, which holds only content. */
  private readonly versions = new Map<string, Map<string, Version>>();
  /** Trash entries by name and id. */
  private readonly trashed = new Map<string, Map<string, Trashed>>();
  /** Deleted client ids by name and trash id (kept after a purge). */
  private readonly deleted = new Map<string, Map<string, readonly number[]>>();

  protected async writeBatch(batch: readonly WriteOp[]): Promise<void> {
    const now = Date.now();
    // All or nothing: nothing in this loop can fail, so apply directly.
    for (const op of batch) {
      if (op.kind === "probe") continue;
      if (op.kind === "saveVersion") {
        let versions = this.versions.get(op.name);
        if (versions === undefined) {
          versions = new Map();
          this.versions.set(op.name, versions);
        }
        versions.set(op.version.id, { meta: op.version, state: op.state.slice() });
        continue;
      }
      if (op.kind === "deleteVersion") {
        const versions = this.versions.get(op.name);
        versions?.delete(op.id);
        if (versions?.size === 0) this.versions.delete(op.name);
        continue;
      }
      if (op.kind === "trash") {
        op.outcome.entry = this.moveToTrash(op.name, op.entry);
        continue;
      }
      if (op.kind === "restoreTrash") {
        op.outcome.found = this.restore(op.from, op.id, op.name, now);
        continue;
      }
      if (op.kind === "putTrash") {
        const versions = new Map<string, Version>();
        for (const { meta, state } of op.versions) {
          versions.set(meta.id, {
            meta: { ...meta, bytes: state.byteLength },
            state: state.slice(),
          });
        }
        const entry: TrashEntry = {
          ...op.entry,
          bytes: op.state.byteLength,
          versions: versions.size,
        };
        mapOf(this.trashed, op.name).set(entry.id, { entry, state: op.state.slice(), versions });
        mapOf(this.deleted, op.name).set(entry.id, clientsOf(op.state));
        continue;
      }
      if (op.kind === "putDeletedClients") {
        mapOf(this.deleted, op.name).set(op.record.id, [...op.record.clients]);
        continue;
      }
      if (op.kind === "purgeTrash") {
        op.outcome.found = this.trashed.get(op.name)?.delete(op.id) ?? false;
        if (this.trashed.get(op.name)?.size === 0) this.trashed.delete(op.name);
        continue;
      }
      const entry = this.docs.get(op.name);
      const head = nextHead(entry?.head ?? null, op, now);
      if (head === null) {
        this.docs.delete(op.name);
        this.versions.delete(op.name);
        continue;
      }
      const next: Entry = entry ?? { head, snapshot: null, log: new Map() };
      if (op.kind === "append") next.log.set(head.nextSeq - 1, op.update.slice());
      if (op.kind === "compact") {
        next.snapshot = op.state.slice();
        next.log.clear();
      }
      next.head = head;
      this.docs.set(op.name, next);
    }
  }

  protected async read(name: string): Promise<StoredDocument | null> {
    const entry = this.docs.get(name);
    if (entry === undefined) return null;
    return { updates: this.updatesOf(entry), meta: metaOf(entry.head) };
  }

  protected async readMeta(name: string): Promise<DocumentMeta | null> {
    const entry = this.docs.get(name);
    return entry ? metaOf(entry.head) : null;
  }

  protected async readList(
    options: ListOptions,
  ): Promise<Array<{ name: string; meta: DocumentMeta }>> {
    return [...this.docs.keys()]
      .filter(
        (name) =>
          name.startsWith(options.prefix ?? "") &&
          (options.after === undefined || compareUtf8(name, options.after) > 0),
      )
      .sort(compareUtf8)
      .slice(0, options.limit)
      .map((name) => ({ name, meta: metaOf((this.docs.get(name) as Entry).head) }));
  }

  protected async readVersions(name: string): Promise<VersionMeta[]> {
    const versions = this.versions.get(name);
    if (versions === undefined) return [];
    return [...versions.keys()].sort(compareUtf8).map((id) => (versions.get(id) as Version).meta);
  }

  protected async readVersion(name: string, id: string): Promise<Version | null> {
    const version = this.versions.get(name)?.get(id);
    // A copy, so a caller that modifies the state it gets cannot change the stored version.
    return version ? { meta: version.meta, state: version.state.slice() } : null;
  }

  protected async readTrash(options: TrashListOptions): Promise<TrashEntry[]> {
    const entries: TrashEntry[] = [];
    for (const [name, byId] of this.trashed) {
      if (options.name !== undefined && name !== options.name) continue;
      if (!name.startsWith(options.prefix ?? "")) continue;
      for (const { entry } of byId.values()) entries.push(entry);
    }
    const { after } = options;
    return entries
      .sort(compareEntries)
      .filter((entry) => after === undefined || compareEntries(entry, after) > 0)
      .slice(0, options.limit);
  }

  protected async readTrashEntry(
    name: string,
    id: string,
  ): Promise<{ entry: TrashEntry; state: Uint8Array } | null> {
    const trashed = this.trashed.get(name)?.get(id);
    return trashed === undefined ? null : { entry: trashed.entry, state: trashed.state.slice() };
  }

  protected async readDeletedClients(name: string): Promise<ReadonlySet<number>> {
    return new Set([...(this.deleted.get(name)?.values() ?? [])].flat());
  }

  protected async readTrashVersions(
    name: string,
    id: string,
  ): Promise<Array<{ meta: VersionMeta; state: Uint8Array }>> {
    const versions = this.trashed.get(name)?.get(id)?.versions;
    if (versions === undefined) return [];
    return [...versions.keys()]
      .sort(compareUtf8)
      .map((versionId) => versions.get(versionId) as Version)
      .map(({ meta, state }) => ({ meta, state: state.slice() }));
  }

  protected async readDeletedClientRecords(options: {
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<DeletedClientsRecord[]> {
    const records: DeletedClientsRecord[] = [];
    for (const [name, byId] of this.deleted) {
      for (const [id, clients] of byId) records.push({ name, id, clients: [...clients] });
    }
    const { after } = options;
    return records
      .sort(compareEntries)
      .filter((record) => after === undefined || compareEntries(record, after) > 0)
      .slice(0, options.limit);
  }

  protected async release(): Promise<void> {}

  private moveToTrash(
    name: string,
    fields: { readonly id: string; readonly deleted: number; readonly deletedBy: string | null },
  ): TrashEntry | null {
    const stored = this.docs.get(name);
    if (stored === undefined) return null;
    const state = mergedState(this.updatesOf(stored));
    const versions = this.versions.get(name) ?? new Map<string, Version>();
    const entry: TrashEntry = {
      name,
      ...fields,
      created: stored.head.created,
      updated: stored.head.updated,
      bytes: state.byteLength,
      versions: versions.size,
    };
    mapOf(this.trashed, name).set(fields.id, { entry, state, versions });
    mapOf(this.deleted, name).set(fields.id, clientsOf(state));
    this.docs.delete(name);
    this.versions.delete(name);
    return entry;
  }

  private restore(from: string, id: string, to: string, now: number): boolean {
    const trashed = this.trashed.get(from)?.get(id);
    if (trashed === undefined) return false;
    const existing = this.docs.get(to);
    const state =
      existing === undefined
        ? trashed.state.slice()
        : mergedState([...this.updatesOf(existing), trashed.state]);
    const times =
      existing === undefined
        ? { created: trashed.entry.created, updated: trashed.entry.updated }
        : { created: existing.head.created, updated: now };
    const head = nextHead(existing?.head ?? null, { kind: "compact", name: to, state, times }, now);
    if (head !== null) this.docs.set(to, { head, snapshot: state, log: new Map() });
    const versions = mapOf(this.versions, to);
    for (const [versionId, version] of trashed.versions) versions.set(versionId, version);
    if (versions.size === 0) this.versions.delete(to);
    this.trashed.get(from)?.delete(id);
    if (this.trashed.get(from)?.size === 0) this.trashed.delete(from);
    if (to === from) {
      this.deleted.get(from)?.delete(id);
      if (this.deleted.get(from)?.size === 0) this.deleted.delete(from);
    }
    return true;
  }

  private updatesOf(entry: Entry): Uint8Array[] {
    const log = [...entry.log.entries()].sort((a, b) => a[0] - b[0]).map(([, update]) => update);
    return entry.snapshot ? [entry.snapshot, ...log] : log;
  }
}

function mapOf<K, V>(outer: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let inner = outer.get(key);
  if (inner === undefined) {
    inner = new Map();
    outer.set(key, inner);
  }
  return inner;
}

/** Trash entries in (name, id) order, comparing UTF-8 bytes. */
function compareEntries(
  a: { readonly name: string; readonly id: string },
  b: { readonly name: string; readonly id: string },
): number {
  return compareUtf8(a.name, b.name) || compareUtf8(a.id, b.id);
}

/** Orders names by their UTF-8 bytes, as LevelDB does, so every store lists in the same order. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
