/**
 * Attachments in memory, for STORE=memory and tests: gone when the process
 * ends. Bytes several owners hold are one buffer.
 */
import { Readable } from "node:stream";
import type {
  AttachmentMeta,
  AttachmentOwner,
  AttachmentStore,
  AttachmentUsage,
  ByteRange,
} from "./store.ts";

/** The key of an owner: a live name, or a name and a trash id. */
export function ownerKey(owner: AttachmentOwner): string {
  return owner.trashId === undefined
    ? JSON.stringify([owner.name])
    : JSON.stringify([owner.name, owner.trashId]);
}

function ownerOfKey(key: string): AttachmentOwner {
  const [name, trashId] = JSON.parse(key) as [string, string?];
  return trashId === undefined ? { name } : { name, trashId };
}

export class MemoryAttachmentStore implements AttachmentStore {
  private readonly owners_ = new Map<string, Map<string, AttachmentMeta>>();
  private readonly blobs = new Map<string, Uint8Array>();

  async put(
    owner: AttachmentOwner,
    meta: AttachmentMeta,
    bytes: Uint8Array,
  ): Promise<{ meta: AttachmentMeta; stored: boolean }> {
    const key = ownerKey(owner);
    const held = this.owners_.get(key) ?? new Map<string, AttachmentMeta>();
    const existing = held.get(meta.id);
    if (existing !== undefined) return { meta: existing, stored: false };
    if (!this.blobs.has(meta.id)) this.blobs.set(meta.id, bytes.slice());
    held.set(meta.id, meta);
    this.owners_.set(key, held);
    return { meta, stored: true };
  }

  async meta(owner: AttachmentOwner, id: string): Promise<AttachmentMeta | null> {
    return this.owners_.get(ownerKey(owner))?.get(id) ?? null;
  }

  async read(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Uint8Array | null> {
    if ((await this.meta(owner, id)) === null) return null;
    const bytes = this.blobs.get(id);
    if (bytes === undefined) return null;
    return range === undefined ? bytes.slice() : bytes.slice(range.start, range.end + 1);
  }

  async stream(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Readable | null> {
    const bytes = await this.read(owner, id, range);
    return bytes === null ? null : Readable.from([bytes]);
  }

  async list(owner: AttachmentOwner): Promise<AttachmentMeta[]> {
    const held = this.owners_.get(ownerKey(owner));
    return held === undefined ? [] : [...held.values()].sort((a, b) => compare(a.id, b.id));
  }

  async usage(owner: AttachmentOwner): Promise<AttachmentUsage> {
    const all = await this.list(owner);
    return { count: all.length, bytes: all.reduce((sum, meta) => sum + meta.size, 0) };
  }

  async remove(owner: AttachmentOwner, ids: readonly string[]): Promise<number> {
    const key = ownerKey(owner);
    const held = this.owners_.get(key);
    if (held === undefined) return 0;
    let removed = 0;
    for (const id of new Set(ids)) if (held.delete(id)) removed++;
    if (held.size === 0) this.owners_.delete(key);
    this.sweep();
    return removed;
  }

  async move(from: AttachmentOwner, to: AttachmentOwner): Promise<void> {
    const source = this.owners_.get(ownerKey(from));
    if (source === undefined || ownerKey(from) === ownerKey(to)) return;
    const target = this.owners_.get(ownerKey(to)) ?? new Map<string, AttachmentMeta>();
    for (const [id, meta] of source) if (!target.has(id)) target.set(id, meta);
    this.owners_.set(ownerKey(to), target);
    this.owners_.delete(ownerKey(from));
  }

  async removeAll(owner: AttachmentOwner): Promise<void> {
    this.owners_.delete(ownerKey(owner));
    this.sweep();
  }

  async owners(): Promise<AttachmentOwner[]> {
    return sortOwners([...this.owners_.keys()].map(ownerOfKey));
  }

  async close(): Promise<void> {}

  /** Drops bytes no owner holds any more. */
  private sweep(): void {
    const held = new Set<string>();
    for (const owner of this.owners_.values()) for (const id of owner.keys()) held.add(id);
    for (const id of this.blobs.keys()) if (!held.has(id)) this.blobs.delete(id);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Live owners first, then trash entries; each by name, then trash id. */
export function sortOwners(owners: AttachmentOwner[]): AttachmentOwner[] {
  return owners.sort(
    (a, b) =>
      Number(a.trashId !== undefined) - Number(b.trashId !== undefined) ||
      compare(a.name, b.name) ||
      compare(a.trashId ?? "", b.trashId ?? ""),
  );
}
