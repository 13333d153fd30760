/**
 * Presence clocks that survive reconnects.
 *
 * y-protocols' awareness accepts a client's state only with a clock newer than
 * the last one it saw for that client, and removing a state keeps that clock.
 * Two removals therefore go unrepaired in stock Hocuspocus and y-websocket:
 * when a connection closes the server removes its client's state, and the
 * provider, once reconnected, re-announces the same state with the same clock,
 * which the server and every peer ignore as not newer; and a provider that
 * loses its connection removes every peer's state locally, after which the
 * server's resend of the current states carries the same clocks and is
 * ignored too. Presence comes back only with the provider's 15-second renewal.
 *
 * We repair both at the server:
 * - Incoming: a state for a client whose clock the server has already seen
 *   is raised just past it (the connection is live, so its message is the
 *   newest).
 * - Outgoing: each connection gets awareness clocks in a sequence of its own.
 *   The first state it receives for a client carries the current time in ms,
 *   past anything an earlier connection of the same provider can have been
 *   sent (awareness changes far less often than once a millisecond); every
 *   later one is one more than the last. A provider applies the echo of its
 *   own state, so its own clock follows along.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import type { Awareness } from "y-protocols/awareness";
import { decodeAwarenessEntries, encodeAwarenessEntries } from "../protocol/awareness.ts";

/** One connection's awareness clock bookkeeping. */
export class PresenceClocks {
  /** Per document: the last clock sent to this connection for each client. */
  private readonly sent = new Map<string, Map<number, number>>();
  private readonly now: () => number;

  /** @param now the wall clock in ms (simulations pass their own). @default Date.now */
  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /**
   * An incoming awareness update with clocks the server has already passed
   * raised past them, or null when nothing changes. `awareness` is the
   * document's, or undefined while it is not loaded.
   */
  incoming(update: Uint8Array, awareness: Awareness | undefined): Uint8Array | null {
    if (awareness === undefined) return null;
    const entries = decodeAwarenessEntries(update);
    let changed = false;
    for (const entry of entries) {
      const known = awareness.meta.get(entry.client)?.clock;
      if (known !== undefined && known >= entry.clock) {
        entry.clock = known + 1;
        changed = true;
      }
    }
    return changed ? encodeAwarenessEntries(entries) : null;
  }

  /** An outgoing awareness update re-clocked in this connection's own sequence. */
  outgoing(documentName: string, update: Uint8Array): Uint8Array {
    let sent = this.sent.get(documentName);
    if (sent === undefined) {
      sent = new Map();
      this.sent.set(documentName, sent);
    }
    const entries = decodeAwarenessEntries(update);
    for (const entry of entries) {
      const last = sent.get(entry.client);
      entry.clock = last === undefined ? Math.max(entry.clock, this.now()) + 2 : last + 1;
      sent.set(entry.client, entry.clock);
    }
    return encodeAwarenessEntries(entries);
  }
}

/** The update without the entries of clients `drop` names, or null when it drops none. */
export function withoutClients(
  update: Uint8Array,
  drop: (client: number) => boolean,
): Uint8Array | null {
  const entries = decodeAwarenessEntries(update);
  const kept = entries.filter((entry) => !drop(entry.client));
  return kept.length === entries.length ? null : encodeAwarenessEntries(kept);
}

/**
 * Rewrites the awareness update inside a message frame
 * (`varString address, varUint type, varUint8Array update`); returns the
 * frame itself when `rewrite` returns null.
 */
export function rewriteAwarenessFrame(
  frame: Uint8Array,
  rewrite: (update: Uint8Array) => Uint8Array | null,
): Uint8Array {
  const decoder = decoding.createDecoder(frame);
  const address = decoding.readVarString(decoder);
  const type = decoding.readVarUint(decoder);
  const rewritten = rewrite(decoding.readVarUint8Array(decoder));
  if (rewritten === null) return frame;
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, address);
  encoding.writeVarUint(encoder, type);
  encoding.writeVarUint8Array(encoder, rewritten);
  return encoding.toUint8Array(encoder);
}
