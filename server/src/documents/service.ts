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
import type { Extension, Hocuspocus, onConnectPayload } from "@hocuspocus/server";
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
}

/** Refuses to open a document while it is being deleted. */
export class DeletionGuard implements Extension {
  readonly extensionName = "deletion-guard";
  readonly priority = 9_000;
  /** Names being deleted (DocumentService adds and removes them). */
  readonly deleting = new Set<string>();

  async onConnect({ documentName }: onConnectPayload): Promise<void> {
    if (!this.deleting.has(documentName)) return;
    throw new CollabError("DOCUMENT_BUSY", `"${documentName}" is being deleted`, {
      reason: `${Refusal.documentDeleted}: the document is being deleted`,
    });
  }
}

/** How long a deletion waits for the document to unload. */
const UNLOAD_TIMEOUT_MS = 10_000;

export class DocumentService {
  private readonly options: DocumentServiceOptions;
  /** Documents being deleted: opening or editing them is refused meanwhile. */
  private readonly deleting: Set<string>;
  /** Pending automatic versions, per document. */
  private readonly versionTimers = new Map<string, NodeJS.Timeout>();
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

  /** A copy of the document's current state, or null when it does not exist. */
  async snapshot(name: string): Promise<Y.Doc | null> {
    const live = this.options.hocuspocus.documents.get(name);
    if (live !== undefined && !live.isDestroyed && Y.encodeStateVector(live).byteLength > 1) {
      const copy = new Y.Doc();
      Y.applyUpdate(copy, Y.encodeStateAsUpdate(live));
      return copy;
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
   * durable. Returns whether the document existed before.
   */
  async edit(
    name: string,
    actor: Actor,
    change: (doc: Y.Doc) => void,
  ): Promise<{ existed: boolean }> {
    this.assertNotDeleting(name);
    const existed = await this.exists(name);
    const connection = await this.options.hocuspocus.openDirectConnection(name, {
      user: actor.userId === null ? null : { id: actor.userId, name: null },
      source: "api",
    });
    try {
      await connection.transact((document) => change(document));
      await this.options.persistence.whenDurable(name);
    } finally {
      await connection.disconnect();
    }
    return { existed };
  }

  /**
   * Deletes the document: connected clients get a close message with the
   * reason, the document unloads, and everything stored for it (versions
   * too) is removed. False when there was nothing to delete.
   */
  async remove(name: string): Promise<boolean> {
    this.assertNotDeleting(name);
    this.deleting.add(name);
    try {
      const { hocuspocus, store } = this.options;
      if (!(await this.exists(name))) return false;
      const live = hocuspocus.documents.get(name);
      if (live !== undefined) {
        const unloaded = new Promise<void>((resolve) => live.once("destroy", () => resolve()));
        for (const connection of live.getConnections()) {
          connection.close(Close.documentDeleted);
        }
        if (live.getConnectionsCount() === 0) void hocuspocus.unloadDocument(live);
        await withTimeout(unloaded, UNLOAD_TIMEOUT_MS, `"${name}" did not unload`);
      }
      clearTimeout(this.versionTimers.get(name));
      this.versionTimers.delete(name);
      await store.delete(name);
      this.options.events?.deleted?.(name);
      return true;
    } finally {
      this.deleting.delete(name);
    }
  }

  /** Saves the document's current state as a version. Null when the document does not exist. */
  async createVersion(
    name: string,
    options: {
      readonly label: string | null;
      readonly kind: VersionMeta["kind"];
      readonly actor: Actor;
    },
  ): Promise<VersionMeta | null> {
    const { store } = this.options;
    if (options.label !== null) {
      const versions = await store.listVersions(name);
      if (versions.some((version) => version.label === options.label)) {
        throw new CollabError(
          "VERSION_EXISTS",
          `"${name}" already has a version named "${options.label}"`,
        );
      }
    }
    const doc = await this.snapshot(name);
    if (doc === null) return null;
    const meta = await store.saveVersion(
      name,
      {
        id: this.nextVersionId(),
        label: options.label,
        kind: options.kind,
        created: Date.now(),
        author: options.actor.userId,
      },
      Y.encodeStateAsUpdate(doc),
    );
    this.options.events?.versionCreated?.(name, meta);
    if (options.kind === "auto") await this.pruneAutoVersions(name);
    return meta;
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
   * Restores a version as a new change: first the current state is saved as
   * an automatic version (so the restore itself can be undone), then the
   * document's content is made equal to the version's with `apply`. History
   * before it is kept; connected editors receive the change live.
   */
  async restore(
    name: string,
    id: string,
    actor: Actor,
    apply: (live: Y.Doc, version: Y.Doc) => void,
  ): Promise<{ restored: VersionMeta; backup: VersionMeta | null } | null> {
    const version = await this.readVersion(name, id);
    if (version === null) return null;
    const backup = await this.createVersion(name, {
      label: `Before restoring ${version.meta.label ?? version.meta.id}`,
      kind: "auto",
      actor,
    });
    await this.edit(name, actor, (live) => apply(live, version.doc));
    return { restored: version.meta, backup };
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

  private async pruneAutoVersions(name: string): Promise<void> {
    const { store, maxAutoVersions } = this.options;
    const autos = (await store.listVersions(name)).filter((version) => version.kind === "auto");
    for (const old of autos.slice(0, Math.max(0, autos.length - maxAutoVersions))) {
      await store.deleteVersion(name, old.id);
    }
  }

  private assertNotDeleting(name: string): void {
    if (this.deleting.has(name)) {
      throw new CollabError("DOCUMENT_BUSY", `"${name}" is being deleted`);
    }
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

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
