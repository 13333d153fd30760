/**
 * Deleted documents stay deleted. A client that still holds a deleted
 * document (it was open when the document was deleted, or it comes back
 * from days offline, or its browser kept a copy) would otherwise send that
 * state when it connects, and re-create the document, or merge the old
 * content into a new document made under the same name since.
 *
 * The trash records, per name, the Yjs client ids of every deleted content
 * (DocumentStore.deletedClients; Yjs picks client ids at random, so a new
 * document's clients never share them). When a document loads, its deleted
 * clients load with it; every sync message a connection sends is then
 * checked before Hocuspocus applies it: a state vector (SyncStep1) that
 * knows any deleted client, or an update (SyncStep2, Update) with structs
 * of, references to, or deletions of a deleted client's content, comes from
 * the deleted document. The connection is told `document-deleted` and its
 * document is closed; nothing it sent is applied, stored or relayed.
 * Documents that were never deleted (nearly all) cost one store read at
 * load and nothing per message.
 */
import {
  type beforeSyncPayload,
  type Document,
  OutgoingMessage,
  type onLoadDocumentPayload,
} from "@hocuspocus/server";
import * as Y from "yjs";
import { Close, Refusal, RefusedSync } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { DocumentStore } from "../persistence/store.ts";
import { SyncType } from "../protocol/messages.ts";
import type { SyncGuard } from "../upstream/hocuspocus.ts";

/** What a refused connection is told (the editor explains `document-deleted` to its user). */
export const DELETED_STATE_REASON = `${Refusal.documentDeleted}: this copy belongs to a document that was deleted`;

export interface DeletedStateGuardOptions {
  readonly store: DocumentStore;
  readonly logger: Logger;
  /** Called for each refusal, with the reason (for metrics). */
  readonly onRefused?: (reason: string) => void;
}

export class DeletedStateGuard implements SyncGuard {
  readonly extensionName = "deleted-state-guard";
  /** After persistence (1000) has loaded the state; the state itself is never the client's. */
  readonly priority = 900;
  private readonly deleted = new WeakMap<Document, ReadonlySet<number>>();
  private readonly options: DeletedStateGuardOptions;

  constructor(options: DeletedStateGuardOptions) {
    this.options = options;
  }

  async onLoadDocument({ document, documentName }: onLoadDocumentPayload): Promise<void> {
    const recorded = await this.options.store.deletedClients(documentName);
    if (recorded.size === 0) return;
    // Clients whose content the document holds now are its own: a trashed document restored
    // into this name (under another name first, say), or a backup imported into it. Their
    // copies are this document's, not a deleted one's.
    const live = document.store.clients;
    const clients = new Set([...recorded].filter((client) => !live.has(client)));
    if (clients.size > 0) this.deleted.set(document, clients);
  }

  /** Whether a sync message of `type` on `document` carries state of a deleted content. */
  refusesSync(document: Document, type: number, payload: Uint8Array): boolean {
    const clients = this.deleted.get(document);
    return clients !== undefined && fromDeleted(clients, type, payload);
  }

  async beforeSync({ connection, document, type, payload }: beforeSyncPayload): Promise<void> {
    if (!this.refusesSync(document, type, payload)) return;
    this.options.onRefused?.(Refusal.documentDeleted);
    this.options.logger.info(
      {
        connection: (connection.context as { connectionId?: string } | undefined)?.connectionId,
        document: document.name,
      },
      "state of a deleted document refused",
    );
    connection.send(
      new OutgoingMessage(connection.messageAddress)
        .writePermissionDenied(DELETED_STATE_REASON)
        .toUint8Array(),
    );
    throw new RefusedSync(Close.documentDeleted.code, Refusal.documentDeleted);
  }
}

/** Whether a sync message of `type` carries state from a content whose clients are `deleted`. */
export function fromDeleted(
  deleted: ReadonlySet<number>,
  type: number,
  payload: Uint8Array,
): boolean {
  if (type === SyncType.Step1) {
    for (const [client, clock] of Y.decodeStateVector(payload)) {
      if (clock > 0 && deleted.has(client)) return true;
    }
    return false;
  }
  const { structs, ds } = Y.decodeUpdate(payload);
  for (const client of ds.clients.keys()) if (deleted.has(client)) return true;
  for (const struct of structs) {
    if (deleted.has(struct.id.client)) return true;
    if (struct instanceof Y.Item) {
      for (const id of [struct.origin, struct.rightOrigin, struct.parent]) {
        if (id instanceof Y.ID && deleted.has(id.client)) return true;
      }
    }
  }
  return false;
}
