/**
 * Where the sync core changes how `@hocuspocus/server` 4.7.0 handles an
 * update, for speed; docs/patches.md lists both, and
 * test/unit/upstream.test.ts fails when an upgrade changes what they rely on.
 *
 * A CPU profile of one client sending the 259,778-edit trace, one update per
 * edit (`npm run bench peers-s3`, docs/benchmarks.md "Profile: Hocuspocus'
 * message path"), put about a fifth of the server's time in Hocuspocus'
 * plumbing around each update rather than in Yjs or the store:
 *
 * 1. Per update, `handleDocumentUpdate` builds an `onChange` payload (parsing
 *    the connection's URL for its parameters), runs the `onChange` hook chain,
 *    and re-arms the debounced `onStoreDocument` (a clearTimeout and a
 *    setTimeout). With no extension that has those hooks (ours store every
 *    update themselves; only the Redis fan-out has `onChange`), that is all
 *    work for nothing: {@link skipUnusedUpdateHooks}.
 * 2. Per message, the connection's queue, three async hook chains
 *    (`beforeHandleMessage`, `beforeSync`, `afterHandleMessage`, each a chain of
 *    promises over every extension), and new decoders and encoders, before Yjs
 *    applies the update. {@link directUpdate} applies a plain update itself
 *    when nothing can tell the difference: the connection is established and
 *    idle, may write, and no extension has those hooks except sync guards,
 *    which it asks synchronously.
 */
import type { Connection, Document, Extension, Hocuspocus } from "@hocuspocus/server";
import * as Y from "yjs";

/** The hooks Hocuspocus runs around every update from a client (see 2 above). */
const MESSAGE_HOOKS = ["beforeHandleMessage", "beforeSync", "afterHandleMessage"] as const;

/**
 * An extension whose `beforeSync` hook is also available synchronously: the
 * direct path asks it, and leaves to Hocuspocus (which runs the hook) any
 * update it refuses.
 */
export interface SyncGuard extends Extension {
  /** Whether `beforeSync` would refuse this sync message (`type` is its y-protocols sync type). */
  refusesSync(document: Document, type: number, payload: Uint8Array): boolean;
}

function isSyncGuard(extension: Extension): extension is SyncGuard {
  return typeof (extension as Partial<SyncGuard>).refusesSync === "function";
}

/**
 * Turns off Hocuspocus' per-update `onChange` and `onStoreDocument` hooks
 * when none of `extensions` (every extension the server was configured
 * with) has them. Without a debounced store pending, the last client's
 * disconnect unloads the document at once, as it does after the store ran.
 */
export function skipUnusedUpdateHooks(
  hocuspocus: Hocuspocus,
  extensions: readonly Extension[],
): void {
  const used = extensions.some(
    (extension) =>
      extension.onChange !== undefined ||
      extension.onStoreDocument !== undefined ||
      extension.afterStoreDocument !== undefined,
  );
  if (used) return;
  (hocuspocus as unknown as { handleDocumentUpdate: () => void }).handleDocumentUpdate = () => {};
}

/** What the direct path reads of Hocuspocus' private connection state (4.7.0). */
interface ClientInternals {
  readonly documentConnections: Record<string, Connection | undefined>;
  readonly terminated: boolean;
  lastMessageReceivedAt: number;
}
interface ConnectionInternals {
  readonly messageQueue: readonly Uint8Array[];
}

/** Hocuspocus' per-socket connection, as `handleConnection` returns it. */
export type ClientConnection = ReturnType<Hocuspocus["handleConnection"]>;

/**
 * The connection Hocuspocus has established on `client` for a message to
 * `address` (a document name, optionally with `\0sessionId`), looked up as
 * Hocuspocus does; undefined while the document is not open on it (its
 * messages then wait in Hocuspocus' queue for authentication).
 */
export function establishedConnection(
  client: ClientConnection,
  address: string,
  documentName: string,
): Connection | undefined {
  const { documentConnections } = client as unknown as ClientInternals;
  return documentConnections[address] ?? documentConnections[documentName];
}

/**
 * Tells Hocuspocus' idle check that `client` is active. The core calls it
 * while it has stopped reading the client (backpressure): the client is
 * sending, the server is not reading.
 */
export function markActive(client: ClientConnection): void {
  (client as unknown as ClientInternals).lastMessageReceivedAt = Date.now();
}

/** Applies plain updates without Hocuspocus' message path, where that changes nothing observable. */
export interface DirectUpdates {
  /**
   * Applies `update`, sent on `client` as a sync Update message for
   * `connection` (see {@link establishedConnection}), the way Hocuspocus
   * would, and returns true; or returns false without doing anything, and
   * Hocuspocus must handle the message. After a true, the caller sends the
   * acknowledgement Hocuspocus would have sent, to `connection.messageAddress`.
   */
  apply(client: ClientConnection, connection: Connection, update: Uint8Array): boolean;
}

/** y-protocols' sync message type of an update. */
const SYNC_UPDATE = 2;

/**
 * The direct path for a server configured with `extensions`; null when one
 * of them has a per-message hook it cannot run (then every message takes
 * Hocuspocus' path).
 */
export function directUpdates(extensions: readonly Extension[]): DirectUpdates | null {
  const guards: SyncGuard[] = [];
  for (const extension of extensions) {
    for (const hook of MESSAGE_HOOKS) {
      if (extension[hook] === undefined) continue;
      if (hook === "beforeSync" && isSyncGuard(extension)) guards.push(extension);
      else return null;
    }
  }
  return {
    apply(client, connection, update) {
      const internals = client as unknown as ClientInternals;
      if (internals.terminated || connection.readOnly) return false;
      // Anything queued before this message is handled first, in order, by Hocuspocus.
      if ((connection as unknown as ConnectionInternals).messageQueue.length > 0) return false;
      const { document } = connection;
      if (document.isDestroyed) return false;
      for (const guard of guards)
        if (guard.refusesSync(document, SYNC_UPDATE, update)) return false;
      internals.lastMessageReceivedAt = Date.now();
      Y.applyUpdate(document, update, { source: "connection", connection });
      return true;
    },
  };
}
