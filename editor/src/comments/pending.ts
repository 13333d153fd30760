/**
 * Comment requests made offline survive a reload: the client's pending
 * operations are kept in the page's storage under one key per server and
 * document, and sent again when an editor for that document starts (their
 * ids make a second send harmless: the server applies an operation once).
 */
import type { CommentClient } from "./client.ts";
import type { Person } from "./model.ts";
import type { CommentOperation } from "./protocol.ts";

/** Keeps `client`'s pending operations in `storage` under `key`; returns the function that stops. */
export function keepPending(
  client: CommentClient,
  storage: Storage | undefined,
  key: string,
  me: () => Person,
  onRefused: (error: Error) => void = () => {},
): () => void {
  if (storage === undefined) return () => {};
  let saved: CommentOperation[] = [];
  try {
    const raw = storage.getItem(key);
    const parsed: unknown = raw === null ? [] : JSON.parse(raw);
    if (Array.isArray(parsed)) saved = parsed as CommentOperation[];
  } catch {
    // Unreadable or refused storage: nothing to send again.
  }
  const write = (pending: readonly CommentOperation[]) => {
    try {
      if (pending.length === 0) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(pending));
    } catch {
      // Full or refused storage: the requests still wait in memory.
    }
  };
  const stop = client.onPending(write);
  for (const op of saved) client.send(op, me()).catch(onRefused);
  return stop;
}
