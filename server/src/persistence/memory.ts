/**
 * An in-memory store with the same ordering and failure semantics as the
 * durable ones (it shares their write queue). For tests and `STORE=memory`
 * development servers: everything is gone when the process exits.
 */
import { type Head, LogStore, metaOf, nextHead, type WriteOp } from "./log-store.ts";
import type { DocumentMeta, ListOptions, StoredDocument, VersionMeta } from "./store.ts";

interface Entry {
  head: Head;
  snapshot: Uint8Array | null;
  log: Map<number, Uint8Array>;
}

interface Version {
  readonly meta: VersionMeta;
  readonly state: Uint8Array;
}

export class MemoryStore extends LogStore {
  readonly kind = "memory";
  private readonly docs = new Map<string, Entry>();
  /** Versions by document name and id; kept apart from `docs`, which holds only content. */
  private readonly versions = new Map<string, Map<string, Version>>();

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
    const log = [...entry.log.entries()].sort((a, b) => a[0] - b[0]).map(([, update]) => update);
    return { updates: entry.snapshot ? [entry.snapshot, ...log] : log, meta: metaOf(entry.head) };
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

  protected async release(): Promise<void> {}
}

/** Orders names by their UTF-8 bytes, as LevelDB does, so every store lists in the same order. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
