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
import { Close, CollabError, Refusal } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { DurablePersistence } from "../persistence/extension.ts";
import type { DocumentStore, VersionMeta } from "../persistence/store.ts";

/** Who asked for a change, for version authorship and webhook payloads. */
export interface Actor {
  readonly userId: string | null;
}

/** Events the service reports (the app sends them as webhooks). */
export interface DocumentEvents {
  readonly created?: (name: string) => void;
  readonly updated?: (name: string) => void;
  readonly deleted?: (name: string) => void;
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
  readonly events?: DocumentEvents;
  /** The extension that refuses documents while this service deletes them. */
  readonly deletions: DeletionGuard;
  /** In a cluster: makes the other instances let go of a document before it is deleted. */
  readonly cluster?: {
    prepare(name: string): Promise<string>;
    finish(id: string, name: string): Promise<void>;
  };
}

/** Refuses to open a document while it is being deleted. */
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
    if (!this.deleting.has(name)) return;
    throw new CollabError("DOCUMENT_BUSY", `"${name}" is being deleted`, {
      reason: `${Refusal.documentDeleted}: the document is being deleted`,
    });
  }
}

/** How long a deletion waits for the document to unload. */
const UNLOAD_TIMEOUT_MS = 10_000;
/** Named versions one document may keep (each is a full copy of the document). */
export const MAX_NAMED_VERSIONS = 1_000;
/** How long an edit waits to be stored before answering that the store is failing. */
const DURABLE_TIMEOUT_MS = 10_000;

export class DocumentService {
  private readonly options: DocumentServiceOptions;
  /** Documents being deleted: opening or editing them is refused meanwhile. */
  private readonly deleting: Set<string>;
  /** Pending automatic versions, per document. */
  private readonly versionTimers = new Map<string, NodeJS.Timeout>();
  /** The last task queued per document (see {@link DocumentService.locked}). */
  private readonly locks = new Map<string, Promise<void>>();
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
   * durable. Returns whether the document existed before. Refused with
   * STORE_UNAVAILABLE while the store is failing, rather than applied and
   * left waiting.
   */
  edit(name: string, actor: Actor, change: (doc: Y.Doc) => void): Promise<{ existed: boolean }> {
    return this.locked(name, () => this.editNow(name, actor, change));
  }

  /**
   * Deletes the document: connected clients get a close message with the
   * reason, the document unloads, and everything stored for it (versions
   * too) is removed. False when there was nothing to delete. While it runs,
   * opening or loading the document is refused.
   */
  remove(name: string): Promise<boolean> {
    return this.locked(name, async () => {
      const { hocuspocus, store } = this.options;
      this.deleting.add(name);
      try {
        // A load that began before the deletion finishes first, then is closed below.
        await hocuspocus.loadingDocuments.get(name)?.catch(() => {});
        if (!(await this.exists(name))) return false;
        const coordination = await this.options.cluster?.prepare(name);
        try {
          await this.letGo(name);
          clearTimeout(this.versionTimers.get(name));
          this.versionTimers.delete(name);
          await store.delete(name);
        } finally {
          if (coordination !== undefined) await this.options.cluster?.finish(coordination, name);
        }
        this.options.events?.deleted?.(name);
        return true;
      } finally {
        this.deleting.delete(name);
      }
    });
  }

  /**
   * Another instance is deleting `name`: refuse it until {@link released},
   * store what is pending for it, then close its clients and unload it
   * without storing it again.
   */
  async release(name: string): Promise<void> {
    this.deleting.add(name);
    await this.options.hocuspocus.loadingDocuments.get(name)?.catch(() => {});
    await this.options.persistence.discard(name);
    clearTimeout(this.versionTimers.get(name));
    this.versionTimers.delete(name);
    await this.letGo(name);
  }

  /** The deletion {@link release} made way for is over. */
  released(name: string): void {
    this.deleting.delete(name);
  }

  /** Closes the document's clients with `document-deleted` and waits until it unloads. */
  private async letGo(name: string): Promise<void> {
    const { hocuspocus } = this.options;
    const live = hocuspocus.documents.get(name);
    if (live === undefined) return;
    const unloaded = new Promise<void>((resolve) => live.once("destroy", () => resolve()));
    for (const connection of live.getConnections()) connection.close(Close.documentDeleted);
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
      await this.editNow(name, actor, (live) => {
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

  private async editNow(
    name: string,
    actor: Actor,
    change: (doc: Y.Doc) => void,
  ): Promise<{ existed: boolean }> {
    const { hocuspocus, persistence, store } = this.options;
    const health = store.health();
    if (health.state !== "ok") {
      throw new CollabError("STORE_UNAVAILABLE", `the store is ${health.state}; try again later`);
    }
    const existed = await this.exists(name);
    const connection = await hocuspocus.openDirectConnection(name, {
      user: actor.userId === null ? null : { id: actor.userId, name: null },
      source: "api",
    });
    try {
      await connection.transact((document) => change(document));
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
    } finally {
      await connection.disconnect();
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
    if (this.deleting.has(name)) {
      return Promise.reject(new CollabError("DOCUMENT_BUSY", `"${name}" is being deleted`));
    }
    const previous = this.locks.get(name) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.then(
      () => {},
      () => {},
    );
    this.locks.set(name, settled);
    void settled.then(() => {
      if (this.locks.get(name) === settled) this.locks.delete(name);
    });
    return run;
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
