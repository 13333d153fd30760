/**
 * The server-side document API, transport-free: read a document's content,
 * replace or append to it, delete it, and keep its versions. The REST routes
 * are a thin layer over this.
 *
 * Every change goes through Hocuspocus (a direct connection), so it reaches
 * connected editors live and is stored by the persistence extension like any
 * client's edit; a call resolves only once its change is durable. Reads use
 * the live document when it is loaded and the store otherwise, so reading
 * never loads a document into memory.
 */
import { randomBytes } from "node:crypto";
import type {
  Extension,
  Hocuspocus,
  onConnectPayload,
  onLoadDocumentPayload,
} from "@hocuspocus/server";
import * as Y from "yjs";
import { threadsDocumentName } from "../../../editor/src/comments/model.ts";
import { Close, type CloseCode, CollabError, Refusal } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { DurablePersistence } from "../persistence/extension.ts";
import type { DocumentStore, TrashEntry, VersionMeta } from "../persistence/store.ts";
import { checkDocumentName, ownerOf } from "../protocol/names.ts";

/** Who asked for a change, for version authorship and webhook payloads. */
export interface Actor {
  readonly userId: string | null;
}

/** Events the service reports (the app sends them as webhooks). */
export interface DocumentEvents {
  readonly created?: (name: string) => void;
  readonly updated?: (name: string) => void;
  /** Moved to the trash (`purgeAt`: when it will be purged, ms since the epoch). */
  readonly deleted?: (name: string, entry: TrashEntry, purgeAt: number) => void;
  /** Brought back from the trash, to `to` (its own name or another). */
  readonly restored?: (name: string, entry: TrashEntry, to: string) => void;
  /** Removed from the trash for good. */
  readonly purged?: (name: string, entry: TrashEntry) => void;
  readonly versionCreated?: (name: string, version: VersionMeta) => void;
}

export interface DocumentServiceOptions {
  readonly hocuspocus: Hocuspocus;
  readonly persistence: DurablePersistence;
  readonly store: DocumentStore;
  readonly logger: Logger;
  /** Save an automatic version this long after the first unversioned change; 0: never. */
  readonly versionIntervalMs: number;
  /** Automatic versions kept per document. */
  readonly maxAutoVersions: number;
  /** How long a deleted document stays in the trash, in ms; 0 purges it at once. */
  readonly trashRetentionMs: number;
  readonly events?: DocumentEvents;
  /** The extension that refuses documents while this service deletes them. */
  readonly deletions: DeletionGuard;
  /** Moves a document's attachments with it to the trash and back, and deletes them on purge. */
  readonly attachments?: AttachmentLifecycle;
  /** In a cluster: makes the other instances let go of a document before it is deleted. */
  readonly cluster?: {
    prepare(name: string, purpose: LetGoPurpose): Promise<string>;
    finish(id: string, name: string): Promise<void>;
  };
}

/** What becomes of a document's attachments as it moves through the trash (attachments/service.ts). */
export interface AttachmentLifecycle {
  trashed(name: string, trashId: string): Promise<void>;
  restored(name: string, trashId: string, to: string): Promise<void>;
  purged(name: string, trashId: string): Promise<void>;
}

/**
 * Why every instance lets go of a document: it is being deleted (its clients
 * are told `document-deleted`), or a trashed document is being restored into
 * its name (its clients, of an empty document, are told `document-restored`
 * and open it again).
 */
export type LetGoPurpose = "delete" | "restore";

/** One restore request: the newest trash entry of the name unless `id` says which. */
export interface RestoreRequest {
  readonly id?: string;
  /** Restore under this name instead of the one it had. */
  readonly as?: string;
}

/**
 * Refuses to open a document while it is being deleted or restored, with
 * `document-busy`: not final, the client tries again (the editor does, and
 * y-websocket clients are closed with a code they retry).
 */
export class DeletionGuard implements Extension {
  readonly extensionName = "deletion-guard";
  readonly priority = 9_000;
  /** Names being deleted (DocumentService adds and removes them). */
  readonly deleting = new Set<string>();

  async onConnect({ documentName }: onConnectPayload): Promise<void> {
    this.refuseWhileDeleting(documentName);
  }

  /** Loads too: a connection past onConnect, or an API edit, must not bring it back meanwhile. */
  async onLoadDocument({ documentName }: onLoadDocumentPayload): Promise<void> {
    this.refuseWhileDeleting(documentName);
  }

  private refuseWhileDeleting(name: string): void {
    // A document's threads document goes with it.
    if (!this.deleting.has(ownerOf(name))) return;
    throw new CollabError("DOCUMENT_BUSY", `"${name}" is being deleted`, {
      reason: `${Refusal.documentBusy}: the document is being deleted or restored; try again shortly`,
    });
  }
}

/** How long a deletion waits for the document to unload. */
const UNLOAD_TIMEOUT_MS = 10_000;
/** Named versions one document may keep (each is a full copy of the document). */
export const MAX_NAMED_VERSIONS = 1_000;
/** How long an edit waits to be stored before answering that the store is failing. */
const DURABLE_TIMEOUT_MS = 10_000;
/** Trash entries one read of the trash takes per store page. */
const TRASH_PAGE = 500;

export class DocumentService {
  private readonly options: DocumentServiceOptions;
  /** Documents being deleted: opening or editing them is refused meanwhile. */
  private readonly deleting: Set<string>;
  /** Pending automatic versions, per document. */
  private readonly versionTimers = new Map<string, NodeJS.Timeout>();
  /** The last task queued per document (see {@link DocumentService.locked}). */
  private readonly locks = new Map<string, Promise<void>>();
  /** The last trash operation queued per name (see {@link DocumentService.trashLocked}). */
  private readonly trashLocks = new Map<string, Promise<void>>();
  private lastVersionMs = 0;
  private versionSequence = 0;
  private closed = false;

  constructor(options: DocumentServiceOptions) {
    this.options = options;
    this.deleting = options.deletions.deleting;
  }

  /**
   * Call for every stored change (the persistence extension's onChange):
   * reports created/updated and schedules the next automatic version.
   */
  changed(name: string, created: boolean): void {
    // A threads document changes through comments, which report themselves (webhooks), and
    // it has no versions of its own.
    if (ownerOf(name) !== name) return;
    const { events, versionIntervalMs } = this.options;
    if (created) events?.created?.(name);
    events?.updated?.(name);
    if (versionIntervalMs === 0 || this.closed || this.versionTimers.has(name)) return;
    const timer = setTimeout(() => {
      this.versionTimers.delete(name);
      this.autoVersion(name).catch((error: unknown) =>
        this.options.logger.error({ err: error, document: name }, "automatic version failed"),
      );
    }, versionIntervalMs);
    timer.unref();
    this.versionTimers.set(name, timer);
  }

  /** Whether the document has anything stored or any content in memory. */
  async exists(name: string): Promise<boolean> {
    const live = this.options.hocuspocus.documents.get(name);
    // An empty document's state vector is one byte (zero clients).
    if (live !== undefined && Y.encodeStateVector(live).byteLength > 1) return true;
    return (await this.options.store.meta(name)) !== null;
  }

  /** The live document `name` while it is loaded here (read it, do not change it), else null. */
  loaded(name: string): Y.Doc | null {
    const live = this.options.hocuspocus.documents.get(name);
    return live === undefined || live.isDestroyed ? null : live;
  }

  /**
   * The document's current state, or null when it does not exist: the live
   * document when it is loaded (read it at once, before any await, and do
   * not change it), or one built from the store.
   */
  async current(name: string): Promise<Y.Doc | null> {
    const live = this.options.hocuspocus.documents.get(name);
    if (live !== undefined && !live.isDestroyed && Y.encodeStateVector(live).byteLength > 1) {
      return live;
    }
    const stored = await this.options.store.load(name);
    if (stored === null) return null;
    const doc = new Y.Doc();
    Y.transact(doc, () => {
      for (const update of stored.updates) Y.applyUpdate(doc, update);
    });
    return doc;
  }

  /**
   * Applies `change` to the live document as one transaction, through
   * Hocuspocus so connected clients receive it, and resolves once it is
   * durable. Returns whether the document existed before; with `createOnly`,
   * refused with DOCUMENT_PRECONDITION when it exists. Refused with
   * STORE_UNAVAILABLE while the store is failing, rather than applied and
   * left waiting.
   */
  edit(
    name: string,
    actor: Actor,
    change: (doc: Y.Doc) => void,
    options: { readonly createOnly?: boolean } = {},
  ): Promise<{ existed: boolean }> {
    return this.locked(name, async () => {
      if (options.createOnly === true && (await this.exists(name))) {
        throw new CollabError(
          "DOCUMENT_PRECONDITION",
          `a document named ${JSON.stringify(name)} exists (If-None-Match: * asked to create it only)`,
        );
      }
      return this.editNow(name, actor, ([doc]) => change(doc as Y.Doc));
    });
  }

  /**
   * Deletes the document into the trash: connected clients (on every
   * instance) get a close message with `document-deleted`, the document
   * unloads, and its content and versions move to the trash, where they stay
   * for the retention period (see {@link purgeExpired}). From then on a
   * client holding its state is refused (documents/deleted-state.ts). Null
   * when there was nothing to delete. While it runs, opening or loading the
   * document is refused.
   */
  remove(name: string, actor: Actor = { userId: null }): Promise<TrashEntry | null> {
    return this.locked(name, async () => {
      const { hocuspocus, store, trashRetentionMs } = this.options;
      this.deleting.add(name);
      let entry: TrashEntry | null = null;
      try {
        // A load that began before the deletion finishes first, then is closed below.
        await hocuspocus.loadingDocuments.get(name)?.catch(() => {});
        await hocuspocus.loadingDocuments.get(threadsDocumentName(name))?.catch(() => {});
        if (!(await this.exists(name))) return null;
        await this.everywhere(name, "delete", async () => {
          await this.letGoWithThreads(name, Close.documentDeleted);
          clearTimeout(this.versionTimers.get(name));
          this.versionTimers.delete(name);
          entry = await store.trash(name, {
            id: this.nextTrashId(),
            deleted: Date.now(),
            deletedBy: actor.userId,
          });
          if (entry !== null) await this.options.attachments?.trashed(name, entry.id);
        });
      } finally {
        this.deleting.delete(name);
      }
      const trashed: TrashEntry | null = entry;
      if (trashed === null) return null;
      this.options.events?.deleted?.(name, trashed, this.purgeAt(trashed));
      if (trashRetentionMs === 0) await this.purgeEntry(trashed);
      return trashed;
    });
  }

  /** Trash entries in (name, id) order. */
  listTrash(options: {
    readonly prefix?: string;
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<TrashEntry[]> {
    return this.options.store.listTrash(options);
  }

  /** When a trash entry will be purged, ms since the epoch. */
  purgeAt(entry: TrashEntry): number {
    return entry.deleted + this.options.trashRetentionMs;
  }

  /**
   * Brings a trashed document back, with its versions and times: the newest
   * trash entry of `name` (or entry `request.id`), under its own name or
   * `request.as`. Refused with DOCUMENT_EXISTS when that name has content
   * now (restore under another name, or delete that document first), and
   * with DOCUMENT_NOT_FOUND when there is no such entry. Restored under its
   * own name, clients that kept a copy of it are welcome again.
   */
  async restoreFromTrash(
    name: string,
    request: RestoreRequest = {},
  ): Promise<{ readonly entry: TrashEntry; readonly to: string }> {
    const to = request.as ?? name;
    const problem = checkDocumentName(to);
    if (problem !== null) throw new CollabError("DOCUMENT_NAME_INVALID", problem);
    // One trash operation on a name at a time (a purge, the sweep, another restore), then the
    // target's own lock.
    return this.trashLocked(name, () =>
      this.locked(to, async () => {
        const { hocuspocus, store } = this.options;
        const entry = await this.trashEntry(name, request.id);
        this.deleting.add(to);
        try {
          await hocuspocus.loadingDocuments.get(to)?.catch(() => {});
          await hocuspocus.loadingDocuments.get(threadsDocumentName(to))?.catch(() => {});
          if (await this.exists(to)) {
            throw new CollabError(
              "DOCUMENT_EXISTS",
              `a document named ${JSON.stringify(to)} exists; restore under another name, or delete it first`,
            );
          }
          let found = false;
          await this.everywhere(to, "restore", async () => {
            // Anyone with the (empty) document open opens it again once it is restored.
            await this.letGoWithThreads(to, Close.documentRestored);
            found = await store.restoreTrash(name, entry.id, to);
            if (found) await this.options.attachments?.restored(name, entry.id, to);
          });
          // Another instance purged or restored it meanwhile.
          if (!found) throw missingEntry(name, entry.id);
        } finally {
          this.deleting.delete(to);
        }
        this.options.events?.restored?.(name, entry, to);
        return { entry, to };
      }),
    );
  }

  /**
   * Removes trash entries of `name` for good: entry `id`, or every entry of
   * the name. Resolves with what was purged (empty: nothing was there).
   */
  purgeTrash(name: string, id?: string): Promise<TrashEntry[]> {
    return this.trashLocked(name, async () => {
      const all = await this.allTrashOf(name);
      const entries = id === undefined ? all : all.filter((entry) => entry.id === id);
      const purged: TrashEntry[] = [];
      for (const entry of entries) if (await this.purgeEntry(entry)) purged.push(entry);
      return purged;
    });
  }

  /**
   * Purges every trash entry older than the retention period; returns how
   * many. Run now and then (app.ts does, hourly); several instances may run
   * it at once.
   */
  async purgeExpired(now = Date.now()): Promise<number> {
    let purged = 0;
    let after: { name: string; id: string } | undefined;
    for (;;) {
      const page = await this.options.store.listTrash({ after, limit: TRASH_PAGE });
      for (const entry of page) {
        if (this.purgeAt(entry) > now) continue;
        if (await this.trashLocked(entry.name, () => this.purgeEntry(entry))) purged++;
      }
      const last = page.at(-1);
      if (page.length < TRASH_PAGE || last === undefined) return purged;
      after = { name: last.name, id: last.id };
    }
  }

  /**
   * Another instance is deleting `name`, or restoring into it: refuse it
   * until {@link released}, store what is pending for it, then close its
   * clients and unload it without storing it again.
   */
  async release(name: string, purpose: LetGoPurpose = "delete"): Promise<void> {
    this.deleting.add(name);
    await this.options.hocuspocus.loadingDocuments.get(name)?.catch(() => {});
    await this.options.hocuspocus.loadingDocuments.get(threadsDocumentName(name))?.catch(() => {});
    await this.options.persistence.discard(name);
    await this.options.persistence.discard(threadsDocumentName(name));
    clearTimeout(this.versionTimers.get(name));
    this.versionTimers.delete(name);
    await this.letGoWithThreads(
      name,
      purpose === "delete" ? Close.documentDeleted : Close.documentRestored,
    );
  }

  /** The change {@link release} made way for is over. */
  released(name: string): void {
    this.deleting.delete(name);
  }

  /** Runs `change` once every other instance let go of `name` (in a cluster), then lets them have it again. */
  private async everywhere(
    name: string,
    purpose: LetGoPurpose,
    change: () => Promise<void>,
  ): Promise<void> {
    const coordination = await this.options.cluster?.prepare(name, purpose);
    try {
      await change();
    } finally {
      if (coordination !== undefined) await this.options.cluster?.finish(coordination, name);
    }
  }

  /** Purges one entry; false when it was gone already (restored or purged meanwhile). */
  private async purgeEntry(entry: TrashEntry): Promise<boolean> {
    const found = await this.options.store.purgeTrash(entry.name, entry.id);
    if (found) {
      await this.options.attachments?.purged(entry.name, entry.id);
      this.options.events?.purged?.(entry.name, entry);
    }
    return found;
  }

  /** Trash entry `id` of `name`, or its newest; DOCUMENT_NOT_FOUND when there is none. */
  private async trashEntry(name: string, id: string | undefined): Promise<TrashEntry> {
    const entries = await this.allTrashOf(name);
    const entry = id === undefined ? entries.at(-1) : entries.find((e) => e.id === id);
    if (entry === undefined) throw missingEntry(name, id);
    return entry;
  }

  /** Every trash entry of exactly `name`, oldest first. */
  private async allTrashOf(name: string): Promise<TrashEntry[]> {
    const entries: TrashEntry[] = [];
    let after: { name: string; id: string } | undefined;
    for (;;) {
      const page = await this.options.store.listTrash({ name, after, limit: TRASH_PAGE });
      entries.push(...page);
      const last = page.at(-1);
      if (page.length < TRASH_PAGE || last === undefined) return entries;
      after = { name, id: last.id };
    }
  }

  /** {@link letGo} of the document and of its threads document. */
  private async letGoWithThreads(name: string, close: CloseCode): Promise<void> {
    await Promise.all([this.letGo(name, close), this.letGo(threadsDocumentName(name), close)]);
  }

  /** Closes the document's clients with `close` and waits until it unloads. */
  private async letGo(name: string, close: CloseCode): Promise<void> {
    const { hocuspocus } = this.options;
    const live = hocuspocus.documents.get(name);
    if (live === undefined) return;
    const unloaded = new Promise<void>((resolve) => live.once("destroy", () => resolve()));
    for (const connection of live.getConnections()) connection.close(close);
    if (live.getConnectionsCount() === 0) void hocuspocus.unloadDocument(live);
    await withTimeout(unloaded, UNLOAD_TIMEOUT_MS, `"${name}" did not unload`);
  }

  /**
   * Saves the document's current state as a version; a named version's
   * label must be unused (VERSION_EXISTS). Null when the document does not exist.
   */
  createVersion(
    name: string,
    options: {
      readonly label: string | null;
      readonly kind: VersionMeta["kind"];
      readonly actor: Actor;
    },
  ): Promise<VersionMeta | null> {
    return this.locked(name, async () => {
      const { store } = this.options;
      if (options.kind === "named") {
        const named = (await store.listVersions(name)).filter((v) => v.kind === "named");
        if (named.some((version) => version.label === options.label)) {
          throw new CollabError(
            "VERSION_EXISTS",
            `"${name}" already has a version named "${options.label}"`,
          );
        }
        if (named.length >= MAX_NAMED_VERSIONS) {
          throw new CollabError(
            "VERSION_LIMIT",
            `"${name}" has ${named.length} named versions, the most it may keep; delete some first`,
          );
        }
      }
      const doc = await this.current(name);
      if (doc === null) return null;
      const meta = await store.saveVersion(
        name,
        this.versionMeta(options),
        Y.encodeStateAsUpdate(doc),
      );
      await this.saved(name, meta);
      return meta;
    });
  }

  /** Deletes one version; false when there is no such version. */
  deleteVersion(name: string, id: string): Promise<boolean> {
    return this.locked(name, async () => {
      if ((await this.options.store.loadVersion(name, id)) === null) return false;
      await this.options.store.deleteVersion(name, id);
      return true;
    });
  }

  /** The versions of a document, newest first. */
  async listVersions(name: string): Promise<VersionMeta[]> {
    return (await this.options.store.listVersions(name)).reverse();
  }

  /** A version's content as a document, or null. */
  async readVersion(name: string, id: string): Promise<{ meta: VersionMeta; doc: Y.Doc } | null> {
    const version = await this.options.store.loadVersion(name, id);
    if (version === null) return null;
    const doc = new Y.Doc();
    Y.applyUpdate(doc, version.state);
    return { meta: version.meta, doc };
  }

  /**
   * Restores a version as a new change that makes the document's content
   * equal to the version's (with `apply`); connected editors receive it
   * live and the history before it is kept. The state it replaces is saved
   * as an automatic version in the same step (queued in the store before the
   * change, so it is durable first), so a restore can itself be undone.
   */
  restore(
    name: string,
    id: string,
    actor: Actor,
    apply: (live: Y.Doc, version: Y.Doc) => void,
  ): Promise<{ restored: VersionMeta; backup: VersionMeta } | null> {
    return this.locked(name, async () => {
      const version = await this.readVersion(name, id);
      if (version === null) return null;
      const meta = this.versionMeta({
        label: `Before restoring ${version.meta.label ?? version.meta.id}`,
        kind: "auto",
        actor,
      });
      let backup: Promise<VersionMeta> | null = null;
      await this.editNow(name, actor, ([live]) => {
        if (live === undefined) return;
        backup = this.options.store.saveVersion(name, meta, Y.encodeStateAsUpdate(live));
        apply(live, version.doc);
      });
      const saved = await (backup as Promise<VersionMeta> | null);
      if (saved === null) throw new Error("the restore did not run");
      await this.saved(name, saved);
      return { restored: version.meta, backup: saved };
    });
  }

  /** Stops scheduling automatic versions. */
  close(): void {
    this.closed = true;
    for (const timer of this.versionTimers.values()) clearTimeout(timer);
    this.versionTimers.clear();
  }

  private async autoVersion(name: string): Promise<void> {
    if (this.closed || this.deleting.has(name)) return;
    await this.createVersion(name, { label: null, kind: "auto", actor: { userId: null } });
  }

  /**
   * {@link edit} of the document and its threads document together: `change`
   * runs inside a transaction on each (the text's around the threads'), so
   * connected clients of both receive it at once. Resolves once both are
   * durable; they are two writes, and a crash between them can keep the
   * threads' change without the text's (comments/threads.ts marks a thread's
   * text again when its creation is sent again).
   */
  editWithThreads(
    name: string,
    actor: Actor,
    change: (text: Y.Doc, threads: Y.Doc) => void,
  ): Promise<void> {
    return this.locked(name, () =>
      this.locked(threadsDocumentName(name), async () => {
        await this.editNow([name, threadsDocumentName(name)], actor, ([text, threads]) =>
          change(text as Y.Doc, threads as Y.Doc),
        );
      }),
    );
  }

  /** Applies `change` to the live documents `names` (nested transactions) and waits until durable. */
  private async editNow(
    names: string | readonly string[],
    actor: Actor,
    change: (docs: Y.Doc[]) => void,
  ): Promise<{ existed: boolean }> {
    const { hocuspocus, persistence, store } = this.options;
    const health = store.health();
    if (health.state !== "ok") {
      throw new CollabError("STORE_UNAVAILABLE", `the store is ${health.state}; try again later`);
    }
    const all = typeof names === "string" ? [names] : names;
    const existed = await this.exists(all[0] as string);
    const connections: Array<Awaited<ReturnType<Hocuspocus["openDirectConnection"]>>> = [];
    try {
      for (const name of all) {
        connections.push(
          await hocuspocus.openDirectConnection(name, {
            user: actor.userId === null ? null : { id: actor.userId, name: null },
            source: "api",
          }),
        );
      }
      // DirectConnection.transact runs the transaction at once and returns a promise that
      // rejects with what went wrong in it (a listener, a closed connection). What `change`
      // throws is caught inside, so the outer transactions end normally; then every promise is
      // awaited, and the first failure reaches the caller.
      const docs: Y.Doc[] = [];
      let failed: { error: unknown } | null = null;
      const transactions: Promise<void>[] = [];
      const nest = (i: number): void => {
        const connection = connections[i];
        if (connection === undefined) {
          change(docs);
          return;
        }
        transactions.push(
          connection
            .transact((document: Y.Doc) => {
              docs.push(document);
              try {
                nest(i + 1);
              } catch (error) {
                failed ??= { error };
              }
            })
            .catch((error: unknown) => {
              failed ??= { error };
            }),
        );
      };
      nest(0);
      await Promise.all(transactions);
      const failure = failed as { error: unknown } | null;
      if (failure !== null) throw failure.error;
      for (const name of all) {
        const durable = persistence.whenDurable(name);
        if (durable === null) throw new Error(`"${name}" unloaded during an edit`);
        await withTimeout(
          durable,
          DURABLE_TIMEOUT_MS,
          new CollabError(
            "STORE_UNAVAILABLE",
            `the change to "${name}" is applied but not yet stored: the store is failing; it is stored once writes succeed`,
          ),
        );
      }
    } finally {
      for (const connection of connections) await connection.disconnect();
    }
    return { existed };
  }

  /** Reports a saved version and keeps the newest MAX_AUTO_VERSIONS automatic ones (and always this one). */
  private async saved(name: string, meta: VersionMeta): Promise<void> {
    this.options.events?.versionCreated?.(name, meta);
    if (meta.kind !== "auto") return;
    const { store, maxAutoVersions } = this.options;
    const autos = (await store.listVersions(name)).filter(
      (version) => version.kind === "auto" && version.id !== meta.id,
    );
    const excess = autos.length - Math.max(0, maxAutoVersions - 1);
    for (const old of autos.slice(0, Math.max(0, excess))) await store.deleteVersion(name, old.id);
  }

  private versionMeta(options: {
    readonly label: string | null;
    readonly kind: VersionMeta["kind"];
    readonly actor: Actor;
  }): Omit<VersionMeta, "bytes"> {
    return {
      id: this.nextVersionId(),
      label: options.label,
      kind: options.kind,
      created: Date.now(),
      author: options.actor.userId,
    };
  }

  /**
   * Runs `task` after every earlier task for `name`: edits, versions,
   * restores and deletion of one document never interleave.
   */
  private locked<T>(name: string, task: () => Promise<T>): Promise<T> {
    if (this.deleting.has(ownerOf(name))) {
      return Promise.reject(new CollabError("DOCUMENT_BUSY", `"${name}" is being deleted`));
    }
    return serialized(this.locks, name, task);
  }

  /** Runs `task` after every earlier trash operation on the entries of `name`. */
  private trashLocked<T>(name: string, task: () => Promise<T>): Promise<T> {
    return serialized(this.trashLocks, name, task);
  }

  /**
   * Ids sort by creation time: 13 digits of ms, a sequence number within the
   * ms, and random digits so two instances never pick the same id.
   */
  private nextVersionId(): string {
    const now = Math.max(Date.now(), this.lastVersionMs);
    this.versionSequence = now === this.lastVersionMs ? this.versionSequence + 1 : 0;
    this.lastVersionMs = now;
    const sequence = this.versionSequence.toString(36).padStart(4, "0");
    return `${String(now).padStart(13, "0")}-${sequence}${randomBytes(3).toString("hex")}`;
  }

  /** A trash id: sortable by time, like version ids. */
  private nextTrashId(): string {
    return this.nextVersionId();
  }
}

/** Runs `task` after the last task queued under `key` in `queue`, whatever it ended with. */
function serialized<T>(
  queue: Map<string, Promise<void>>,
  key: string,
  task: () => Promise<T>,
): Promise<T> {
  const previous = queue.get(key) ?? Promise.resolve();
  const run = previous.then(task, task);
  const settled = run.then(
    () => {},
    () => {},
  );
  queue.set(key, settled);
  void settled.then(() => {
    if (queue.get(key) === settled) queue.delete(key);
  });
  return run;
}

function missingEntry(name: string, id: string | undefined): CollabError {
  return new CollabError(
    "DOCUMENT_NOT_FOUND",
    id === undefined
      ? `the trash holds no document named ${JSON.stringify(name)}`
      : `the trash holds no entry ${JSON.stringify(id)} of ${JSON.stringify(name)} (restored or purged meanwhile?)`,
  );
}

async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  failure: string | Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(typeof failure === "string" ? new Error(failure) : failure),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
