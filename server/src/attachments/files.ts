/**
 * Attachments as files in a directory (inside DATA_DIR with the embedded
 * LevelDB store), so the default install needs no other server:
 *
 *     blobs/<id>                    the bytes, one file per distinct content
 *     owners/<sha256 of owner>/     one folder per document (or trash entry)
 *       owner.json                  whose folder it is
 *       <id>                        a hard link to blobs/<id>
 *       <id>.json                   the attachment's meta
 *
 * Bytes are written once and shared between owners by hard links: a blob
 * whose link count falls to one (only the pool's own link) is deleted with
 * its last owner. Every file is written to a temporary name, fsynced and
 * renamed, then its folder fsynced, so a crash leaves either the old state
 * or the new one; an owner's link without its meta is not an attachment and
 * is removed the next time that id is put or removed.
 *
 * One process owns the directory (the LevelDB lock beside it says which);
 * operations on one id are serialised within the process.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import {
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rmdir,
  stat,
  unlink,
} from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { SerialByKey } from "../util/serial.ts";
import { ownerKey, sortOwners } from "./memory.ts";
import {
  type AttachmentMeta,
  type AttachmentOwner,
  type AttachmentStore,
  type AttachmentUsage,
  type ByteRange,
  isAttachmentId,
} from "./store.ts";

/** Metas (and owners' folders) kept in memory, at most. */
const META_CACHE = 10_000;

export class FileAttachmentStore implements AttachmentStore {
  private readonly root: string;
  /** Operations on one attachment id, one at a time. */
  private readonly serial = new SerialByKey<string>();
  /** Metas read or written, by their file's path (dropped when the file goes). */
  private readonly metas = new Map<string, AttachmentMeta>();
  /** Owners' folders, by owner key (each a SHA-256 to compute). */
  private readonly folders = new Map<string, string>();

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens (creating) the store in `directory`. */
  static async open(directory: string): Promise<FileAttachmentStore> {
    await mkdir(join(directory, "blobs"), { recursive: true });
    await mkdir(join(directory, "owners"), { recursive: true });
    return new FileAttachmentStore(directory);
  }

  async put(
    owner: AttachmentOwner,
    meta: AttachmentMeta,
    bytes: Uint8Array,
  ): Promise<{ meta: AttachmentMeta; stored: boolean }> {
    return this.serial.run(meta.id, async () => {
      const existing = await this.meta(owner, meta.id);
      if (existing !== null) return { meta: existing, stored: false };
      const blob = this.blobPath(meta.id);
      if (!(await exists(blob))) {
        await writeDurably(join(this.root, "blobs"), meta.id, bytes);
      }
      const folder = await this.ownerFolder(owner, true);
      await unlink(join(folder, meta.id)).catch(ignoreMissing);
      await link(blob, join(folder, meta.id));
      await writeDurably(folder, `${meta.id}.json`, Buffer.from(JSON.stringify(meta)));
      this.remember(join(folder, `${meta.id}.json`), meta);
      return { meta, stored: true };
    });
  }

  async meta(owner: AttachmentOwner, id: string): Promise<AttachmentMeta | null> {
    if (!isAttachmentId(id)) return null;
    const path = join(this.folderOf(owner), `${id}.json`);
    const cached = this.metas.get(path);
    if (cached !== undefined) return cached;
    try {
      const meta = JSON.parse(await readFile(path, "utf8")) as AttachmentMeta;
      this.remember(path, meta);
      return meta;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async stream(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Readable | null> {
    if ((await this.meta(owner, id)) === null) return null;
    const path = join(this.folderOf(owner), id);
    const file = createReadStream(path, {
      ...(range === undefined ? {} : { start: range.start, end: range.end }),
      highWaterMark: 256 * 1024,
    });
    // Opened before answering, so a file removed meanwhile is a 404, not a broken response.
    return new Promise((resolve, reject) => {
      file.once("open", () => resolve(file));
      file.once("error", (error) => (isMissing(error) ? resolve(null) : reject(error)));
    });
  }

  /** Keeps `meta` (which never changes for its path) in the bounded cache. */
  private remember(path: string, meta: AttachmentMeta): void {
    if (this.metas.size >= META_CACHE) {
      const oldest = this.metas.keys().next().value;
      if (oldest !== undefined) this.metas.delete(oldest);
    }
    this.metas.set(path, meta);
  }

  async read(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Uint8Array | null> {
    const meta = await this.meta(owner, id);
    if (meta === null) return null;
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(join(this.folderOf(owner), id), constants.O_RDONLY);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    try {
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? meta.size - 1, meta.size - 1);
      const length = Math.max(0, end - start + 1);
      const buffer = Buffer.alloc(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(buffer, read, length - read, start + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return buffer.subarray(0, read);
    } finally {
      await handle.close();
    }
  }

  async list(owner: AttachmentOwner): Promise<AttachmentMeta[]> {
    let entries: string[];
    try {
      entries = await readdir(this.folderOf(owner));
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    const metas: AttachmentMeta[] = [];
    for (const entry of entries.sort()) {
      const id = entry.endsWith(".json") ? entry.slice(0, -5) : "";
      if (!isAttachmentId(id)) continue;
      const meta = await this.meta(owner, id);
      if (meta !== null) metas.push(meta);
    }
    return metas;
  }

  async usage(owner: AttachmentOwner): Promise<AttachmentUsage> {
    const all = await this.list(owner);
    return { count: all.length, bytes: all.reduce((sum, meta) => sum + meta.size, 0) };
  }

  async remove(owner: AttachmentOwner, ids: readonly string[]): Promise<number> {
    let removed = 0;
    for (const id of new Set(ids)) {
      if (!isAttachmentId(id)) continue;
      if (await this.serial.run(id, () => this.removeOne(this.folderOf(owner), id))) removed++;
    }
    await this.dropFolderIfEmpty(owner);
    return removed;
  }

  async move(from: AttachmentOwner, to: AttachmentOwner): Promise<void> {
    if (ownerKey(from) === ownerKey(to)) return;
    const source = this.folderOf(from);
    for (const meta of await this.list(from)) {
      await this.serial.run(meta.id, async () => {
        if ((await this.meta(to, meta.id)) !== null) {
          await this.removeOne(source, meta.id);
          return;
        }
        const target = await this.ownerFolder(to, true);
        this.metas.delete(join(source, `${meta.id}.json`));
        await rename(join(source, meta.id), join(target, meta.id));
        await rename(join(source, `${meta.id}.json`), join(target, `${meta.id}.json`));
        await syncFolder(target);
        await syncFolder(source);
      });
    }
    await this.dropFolderIfEmpty(from);
  }

  async removeAll(owner: AttachmentOwner): Promise<void> {
    await this.remove(
      owner,
      (await this.list(owner)).map((meta) => meta.id),
    );
  }

  async owners(): Promise<AttachmentOwner[]> {
    const owners: AttachmentOwner[] = [];
    for (const folder of await readdir(join(this.root, "owners"))) {
      try {
        const text = await readFile(join(this.root, "owners", folder, "owner.json"), "utf8");
        const owner = JSON.parse(text) as AttachmentOwner;
        if ((await this.list(owner)).length > 0) owners.push(owner);
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return sortOwners(owners);
  }

  async close(): Promise<void> {
    await this.serial.idle();
  }

  /** Removes one attachment's meta and link, then its blob when no owner links it. */
  private async removeOne(folder: string, id: string): Promise<boolean> {
    this.metas.delete(join(folder, `${id}.json`));
    let had = true;
    await unlink(join(folder, `${id}.json`)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
      had = false;
    });
    await unlink(join(folder, id)).catch(ignoreMissing);
    await syncFolder(folder).catch(ignoreMissing);
    const blob = this.blobPath(id);
    try {
      if ((await stat(blob)).nlink <= 1) await unlink(blob);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    return had;
  }

  private async dropFolderIfEmpty(owner: AttachmentOwner): Promise<void> {
    const folder = this.folderOf(owner);
    try {
      const left = await readdir(folder);
      if (left.some((entry) => entry !== "owner.json")) return;
      await unlink(join(folder, "owner.json")).catch(ignoreMissing);
      await rmdir(folder);
    } catch (error) {
      // Missing, or an attachment put meanwhile: the folder stays.
      if (!isMissing(error) && (error as NodeJS.ErrnoException).code !== "ENOTEMPTY") throw error;
    }
  }

  private blobPath(id: string): string {
    return join(this.root, "blobs", id);
  }

  private folderOf(owner: AttachmentOwner): string {
    const key = ownerKey(owner);
    let folder = this.folders.get(key);
    if (folder === undefined) {
      folder = join(this.root, "owners", createHash("sha256").update(key).digest("hex"));
      if (this.folders.size >= META_CACHE) this.folders.clear();
      this.folders.set(key, folder);
    }
    return folder;
  }

  private async ownerFolder(owner: AttachmentOwner, create: boolean): Promise<string> {
    const folder = this.folderOf(owner);
    if (create && !(await exists(join(folder, "owner.json")))) {
      await mkdir(folder, { recursive: true });
      await writeDurably(folder, "owner.json", Buffer.from(JSON.stringify(owner)));
      await syncFolder(join(this.root, "owners"));
    }
    return folder;
  }
}

/** Writes `bytes` to `folder/name` through a temporary file: fsynced, renamed, folder fsynced. */
async function writeDurably(folder: string, name: string, bytes: Uint8Array): Promise<void> {
  const temporary = join(folder, `.${name}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temporary, "w");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, join(folder, name));
  await syncFolder(folder);
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

function ignoreMissing(error: unknown): void {
  if (!isMissing(error)) throw error;
}
