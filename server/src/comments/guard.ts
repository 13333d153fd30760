/**
 * Threads are written by the server alone (threads.ts applies what clients
 * ask for, after checking who asks). So every update a client sends is checked
 * before Hocuspocus applies it: one that inserts into, or deletes from, the
 * root map of threads is refused, its connection told
 * `threads-read-only` and closed, and nothing it sent applied, stored or
 * relayed. That is what keeps authors from being forged and others' comments
 * from being changed, whatever the client (the editor, a provider of one's
 * own, a y-websocket client) sends.
 *
 * Where a struct belongs is found from the update itself and the document:
 * its parent is named (a root type), or is an item the document or the same
 * update has, or follows from its left or right neighbour. A struct whose
 * neighbours the server does not have yet waits in Yjs until they come, and
 * those would be checked as they come; deletions are checked against what
 * the document holds. What the document already has (structs it integrated,
 * deletions it made) is not a write: a client's sync carries its whole delete
 * set, the server's own deletions in the threads map included.
 */
import {
  type beforeSyncPayload,
  type Document,
  type Extension,
  OutgoingMessage,
} from "@hocuspocus/server";
import * as Y from "yjs";
import { THREADS } from "../../../editor/src/comments/model.ts";
import { Close, RefusedSync } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import { SyncType } from "../protocol/messages.ts";

/** What a refused connection is told. */
export const THREADS_REFUSAL = "threads-read-only";
const REASON = `${THREADS_REFUSAL}: threads change only through comment requests`;

export interface ThreadsGuardOptions {
  readonly logger: Logger;
  readonly onRefused?: (reason: string) => void;
}

export class ThreadsGuard implements Extension {
  readonly extensionName = "threads-guard";
  readonly priority = 890;
  private readonly options: ThreadsGuardOptions;

  constructor(options: ThreadsGuardOptions) {
    this.options = options;
  }

  async beforeSync({ connection, document, type, payload }: beforeSyncPayload): Promise<void> {
    if (type === SyncType.Step1 || !writesThreads(document, payload)) return;
    this.options.onRefused?.(THREADS_REFUSAL);
    this.options.logger.info(
      {
        connection: (connection.context as { connectionId?: string } | undefined)?.connectionId,
        document: document.name,
      },
      "update that writes threads refused",
    );
    connection.send(
      new OutgoingMessage(connection.messageAddress).writePermissionDenied(REASON).toUint8Array(),
    );
    throw new RefusedSync(Close.threadsReadOnly.code, THREADS_REFUSAL);
  }
}

const THREADS_BYTES = new TextEncoder().encode(THREADS);

/** Whether update `update` inserts into or deletes from `doc`'s threads. */
export function writesThreads(doc: Y.Doc | Document, update: Uint8Array): boolean {
  // Nearly every document has no thread, and nearly every update is typing: an update can
  // reach the threads map only through an item it already has, or by naming the root.
  const threads = doc.share.get(THREADS);
  const hasThreads = threads !== undefined && threads._map.size + threads._length > 0;
  if (!hasThreads && !contains(update, THREADS_BYTES)) return false;
  const { structs, ds } = Y.decodeUpdate(update);
  const store = (doc as Y.Doc).store;
  // The update's new items per client, in clock order. Structs the document has already
  // change nothing (a client's sync may carry them).
  const fresh = new Map<number, Y.Item[]>();
  for (const struct of structs) {
    if (!(struct instanceof Y.Item)) continue;
    if (struct.id.clock + struct.length <= Y.getState(store, struct.id.client)) continue;
    const list = fresh.get(struct.id.client) ?? [];
    list.push(struct);
    fresh.set(struct.id.client, list);
  }
  const ownItem = (id: Y.ID): Y.Item | null => {
    const list = fresh.get(id.client);
    if (list === undefined) return null;
    let low = 0;
    let high = list.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const item = list[middle] as Y.Item;
      if (id.clock < item.id.clock) high = middle - 1;
      else if (id.clock >= item.id.clock + item.length) low = middle + 1;
      else return item;
    }
    return null;
  };
  // Roots found so far, by the id of the item they are for (an item may follow another).
  const seen = new Map<Y.Item, string | null>();
  const rootOfNew = (item: Y.Item, depth: number): string | null => {
    const known = seen.get(item);
    if (known !== undefined) return known;
    let root: string | null = null;
    if (depth <= 10_000) {
      const parent = item.parent as unknown;
      if (typeof parent === "string") root = parent;
      else {
        const via = parent instanceof Y.ID ? parent : (item.origin ?? item.rightOrigin);
        if (via !== null) {
          const own = ownItem(via);
          root = own !== null ? rootOfNew(own, depth + 1) : rootOfStored(doc, via);
        }
      }
    }
    seen.set(item, root);
    return root;
  };
  for (const list of fresh.values()) {
    for (const item of list) if (rootOfNew(item, 0) === THREADS) return true;
  }
  for (const [client, ranges] of ds.clients) {
    for (const range of ranges) {
      for (let clock = range.clock; clock < range.clock + range.len; ) {
        const id = Y.createID(client, clock);
        const own = ownItem(id);
        if (own !== null) {
          if (rootOfNew(own, 0) === THREADS) return true;
          clock = own.id.clock + own.length;
          continue;
        }
        const item = storedItem(doc, id);
        if (item === null) {
          // Beyond what the document has of this client: only the update's own items can be
          // there, and none of them is (ownItem found none at this clock); jump to the next.
          const next = fresh.get(client)?.find((candidate) => candidate.id.clock > clock)?.id.clock;
          if (next === undefined) break;
          clock = next;
          continue;
        }
        // A deletion the document has already made changes nothing: a client's sync carries its
        // whole delete set, the server's own deletions in the threads map among them.
        if (item instanceof Y.Item && !item.deleted && rootOfType(item.parent) === THREADS) {
          return true;
        }
        clock = item.id.clock + item.length;
      }
    }
  }
  return false;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return (
    Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle) !== -1
  );
}

/** The struct of `doc` holding `id`, or null when the document has not got it. */
function storedItem(doc: Y.Doc, id: Y.ID): Y.AbstractStruct | null {
  const structs = doc.store.clients.get(id.client);
  const last = structs?.at(-1);
  if (structs === undefined || last === undefined || id.clock >= last.id.clock + last.length) {
    return null;
  }
  return structs[Y.findIndexSS(structs, id.clock)] ?? null;
}

function rootOfStored(doc: Y.Doc, id: Y.ID): string | null {
  const struct = storedItem(doc, id);
  return struct instanceof Y.Item ? rootOfType(struct.parent) : null;
}

/** The name of the root type `parent` is in (null for a collected item's missing parent). */
function rootOfType(parent: Y.AbstractType<unknown> | Y.ID | null | unknown): string | null {
  let type = parent;
  while (type instanceof Y.AbstractType) {
    const item = type._item;
    if (item === null) {
      try {
        return Y.findRootTypeKey(type);
      } catch {
        return null;
      }
    }
    type = item.parent;
  }
  return null;
}
