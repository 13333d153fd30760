/**
 * trackSaves: whether the server has stored every local change of a
 * Hocuspocus provider's document, confirmed by the server rather than
 * counted on the client.
 *
 * Why not the provider's `unsyncedChanges`: after a reconnect,
 * @hocuspocus/provider 4.8 resets that count to 1 for the sync handshake and
 * re-sends the updates it queued while offline ahead of the handshake's
 * answer, so their acknowledgements bring the count to 0 before the server
 * has stored what the handshake carries (edits typed while the socket was
 * already dead, say). A server killed in that window loses edits the user
 * was told are saved.
 *
 * How: each local change raises a counter. Once the provider has synced on
 * its current connection (so the handshake's answer, carrying everything the
 * server lacked, is on the wire), the tracker asks the server "is everything
 * I sent before this stored?" (see save-protocol.ts). The server answers
 * once it is durable; the changes counted before the question are then
 * saved. One question is in flight at a time, so a typist costs at most one
 * small round trip per acknowledgement. A connection that closes forgets its
 * question: the next connection's handshake carries whatever was lost, and a
 * new question follows it.
 *
 * It needs a collab-docs server (stock Hocuspocus never answers, so the
 * state stays `saving`). It has no DOM or Tiptap dependency: plain provider
 * users import it from `@collab-docs/editor/saves`, with the editor's
 * reconnect policy ({@link RECONNECT}).
 */
import type { HocuspocusProvider } from "@hocuspocus/provider";
import { ObservableV2 } from "lib0/observable";
import { encodeStoredQuestion, parseStoredAnswer } from "./save-protocol.ts";
import type { SaveState } from "./status.ts";

export { RECONNECT } from "./reconnect.ts";
export type { SaveState } from "./status.ts";

/** What {@link trackSaves} returns. */
export interface SaveTracker {
  /** `saved` only once the server confirmed that it stored every local change so far. */
  readonly state: SaveState;
  /** Called whenever {@link state} changes; returns the function that unsubscribes. */
  on(listener: (state: SaveState) => void): () => void;
  /** Stops tracking and removes every listener it added. */
  destroy(): void;
}

type Events = { change: (state: SaveState) => void };

/** Options of {@link trackSaves}. */
export interface TrackSavesOptions {
  /**
   * Resolves once a local copy of the document (IndexedDB, say) is loaded into it: until
   * then the state is `saving`, since the copy may hold edits of an offline session that the
   * server has never seen. @default nothing to wait for
   */
  readonly loading?: Promise<unknown>;
}

/**
 * Tracks `provider`'s local changes until the server confirms they are stored.
 * A document that already holds content when tracking starts counts as one
 * unconfirmed change (it may hold edits from an earlier, offline session).
 *
 * @example
 * const saves = trackSaves(provider);
 * saves.on((state) => (status.textContent = state.kind === "saved" ? "All changes saved" : "Saving…"));
 */
export function trackSaves(
  provider: HocuspocusProvider,
  options: TrackSavesOptions = {},
): SaveTracker {
  const doc = provider.document;
  const events = new ObservableV2<Events>();
  /** Local changes made, and how many of them the server confirmed stored. */
  let made = doc.store.clients.size > 0 ? 1 : 0;
  let confirmed = 0;
  /** Synced on the current connection: the handshake's answer has been sent. */
  let synced = provider.isSynced;
  /** The one question in flight, and how many changes it covers. */
  let asking: { readonly id: number; readonly covers: number } | null = null;
  /** The server answered "read-only" on this connection: nothing sent will be stored. */
  let refused = false;
  let nextId = 0;
  /** A local copy is still loading (see TrackSavesOptions.loading): one more change unconfirmed. */
  let loading = options.loading !== undefined;
  const stateNow = () => stateOf(made + (loading ? 1 : 0), confirmed);
  let current = stateNow();

  const update = () => {
    const next = stateNow();
    if (next.kind === current.kind && pending(next) === pending(current)) return;
    current = next;
    events.emit("change", [next]);
  };
  const ask = () => {
    if (!synced || refused || asking !== null || confirmed === made) return;
    // With the provider's `flushDelay` batching, changes may wait in its buffer: send them
    // first, so the question comes after them on the wire.
    provider.flushPendingUpdates();
    asking = { id: nextId++, covers: made };
    provider.sendStateless(encodeStoredQuestion({ id: asking.id }));
  };
  const onUpdate = (_update: Uint8Array, origin: unknown) => {
    if (origin === provider) return; // from the server
    made++;
    update();
    ask();
  };
  const onSynced = ({ state }: { state: boolean }) => {
    synced = state;
    ask();
  };
  // A closed connection (socket closed, document closed by the server, or refused) never
  // answers; whatever it did not store, the next connection's handshake carries.
  const onGone = () => {
    synced = false;
    refused = false;
    asking = null;
  };
  const onStateless = ({ payload }: { payload: string }) => {
    const answer = parseStoredAnswer(payload);
    if (answer === null || asking === null || answer.id !== asking.id) return;
    const covers = asking.covers;
    asking = null;
    if (answer.refused !== null) {
      refused = true;
      return;
    }
    confirmed = Math.max(confirmed, covers);
    update();
    ask();
  };

  let destroyed = false;
  // Loaded, or failed to load (then there is no copy to wait for).
  const loaded = () => {
    if (destroyed) return;
    loading = false;
    update();
  };
  void options.loading?.then(loaded, loaded);
  doc.on("update", onUpdate);
  provider.on("synced", onSynced);
  provider.on("close", onGone);
  provider.on("authenticationFailed", onGone);
  provider.on("stateless", onStateless);
  ask();

  return {
    get state() {
      return current;
    },
    on(listener) {
      events.on("change", listener);
      return () => events.off("change", listener);
    },
    destroy() {
      destroyed = true;
      doc.off("update", onUpdate);
      provider.off("synced", onSynced);
      provider.off("close", onGone);
      provider.off("authenticationFailed", onGone);
      provider.off("stateless", onStateless);
      events.destroy();
    },
  };
}

function stateOf(made: number, confirmed: number): SaveState {
  return made === confirmed ? { kind: "saved" } : { kind: "saving", pending: made - confirmed };
}

function pending(state: SaveState): number {
  return state.kind === "saving" ? state.pending : 0;
}
