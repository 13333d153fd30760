/**
 * Presence (awareness) between instances, in place of the Redis extension's
 * own relay, which loses removals in two places (extension-redis 4.7):
 *
 * - The receiving instance hands the relayed awareness message to
 *   Hocuspocus' MessageReceiver, which decodes it into a scratch Awareness for
 *   the `beforeHandleAwareness` hook and re-encodes only the clients that
 *   scratch still has a state for. A removal (a `null` state) leaves no state
 *   there, so it is dropped before it reaches the document.
 * - The sending instance publishes nothing once the document has no
 *   connections left (its guard against hocuspocus#1027), and
 *   `Document.removeConnection` removes the closing connection's clients just
 *   before it forgets the connection: when the last client of a document on
 *   an instance leaves, its removal is never even sent.
 *
 * Either way a client that leaves stays visible on the other instances until
 * the 30-second awareness timeout. This relay publishes each instance's own
 * clients on a channel of its own and applies what it receives directly to
 * the document's awareness, removals included.
 *
 * Ownership and clocks. Each instance speaks only for the clients a
 * connection of its own announced (the same rule as SYNC5). A receiving
 * instance remembers which instance each relayed client belongs to, and:
 * - applies a state with a clock of its own, one past the last it knows for
 *   that client, so a client that moved (reconnected to another instance) is
 *   accepted at once although its new instance's clocks are unrelated to the
 *   old one's; a repeat from the same instance (an answer to someone's query)
 *   is recognised by that instance's own clock and ignored;
 * - applies a removal only from the instance the client currently belongs to,
 *   so the late goodbye of the instance a client left never removes it from
 *   the one it moved to;
 * - never lets another instance speak for a client a connection of its own
 *   has announced: that claim is kept aside and applied if the connection
 *   leaves first (a client that moved while its old connection here was
 *   still open), and dropped if the other instance removes it first.
 *
 * The relay does no I/O of its own: the caller subscribes the channels it
 * names and passes every message received on them to {@link receive}.
 */
import type { Document, RedisTransactionOrigin } from "@hocuspocus/server";
import { isTransactionOrigin } from "@hocuspocus/server";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import {
  type Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from "y-protocols/awareness";
import { decodeAwarenessEntries, encodeAwarenessEntries } from "../protocol/awareness.ts";

/** The origin of awareness changes the relay applies (never published again). */
export const presenceOrigin: RedisTransactionOrigin = Object.freeze({ source: "redis" as const });

/** What a relay message carries, after the sending instance's id. */
const Kind = {
  /** An awareness update for clients the sender owns (their states or removals). */
  states: 0,
  /** The sender asks every instance for the states of the clients it owns. */
  query: 1,
} as const;

export interface PresenceRelayOptions {
  /** This instance's id; messages carrying it are our own and ignored. */
  readonly instance: string;
  /** The Redis channel of one document's presence. */
  readonly channel: (documentName: string) => string;
  /** Publishes one message; returns false, sending nothing, while Redis is unreachable. */
  readonly publish: (channel: string, message: Uint8Array) => boolean;
  /** Reports a relay message that could not be applied. */
  readonly onError?: (error: unknown, documentName: string) => void;
}

/** Where a relayed client's state came from: the instance and that instance's clock. */
interface RemoteClient {
  readonly instance: string;
  readonly clock: number;
}

/** Another instance's claim on a client a connection here owns, kept until one of them lets go. */
interface ShadowedClaim extends RemoteClient {
  readonly state: string;
}

interface Tracked {
  readonly document: Document;
  readonly channel: string;
  /**
   * Clients a connection to this instance announced and has not removed. Kept
   * here rather than read from the document's connections, because a closing
   * connection may already be gone from those when its clients' removal
   * reaches us (Hocuspocus broadcasts that removal to the closing connection
   * too, which can close it again from inside the broadcast).
   */
  readonly own: Set<number>;
  /** Clients whose current state was relayed from another instance. */
  readonly remote: Map<number, RemoteClient>;
  readonly shadowed: Map<number, ShadowedClaim>;
  /** Own clients changed this turn, published together on the next one. */
  readonly outgoing: Set<number>;
  /** Own clients whose change could not be published (Redis was down): sent on {@link resync}. */
  readonly unsent: Set<number>;
  readonly stop: () => void;
}

type AwarenessChanges = { added: number[]; updated: number[]; removed: number[] };

export class PresenceRelay {
  private readonly options: PresenceRelayOptions;
  private readonly byChannel = new Map<string, Tracked>();

  constructor(options: PresenceRelayOptions) {
    this.options = options;
  }

  /** Starts relaying `document`'s own clients; {@link query} then asks for the others. */
  attach(document: Document): void {
    const channel = this.options.channel(document.name);
    this.byChannel.get(channel)?.stop();
    const tracked: Tracked = {
      document,
      channel,
      own: new Set(),
      remote: new Map(),
      shadowed: new Map(),
      outgoing: new Set(),
      unsent: new Set(),
      stop: () => document.awareness.off("update", onUpdate),
    };
    const onUpdate = (changes: AwarenessChanges, origin: unknown) =>
      this.localChange(tracked, changes, origin);
    document.awareness.on("update", onUpdate);
    this.byChannel.set(channel, tracked);
  }

  /** Asks the other instances for their clients of `document` (once its channel is subscribed). */
  query(document: Document): void {
    const tracked = this.byChannel.get(this.options.channel(document.name));
    if (tracked?.document !== document) return;
    this.options.publish(tracked.channel, message(this.options.instance, Kind.query));
  }

  /** Stops relaying `document` (only this instance of it: a reload may have replaced it). */
  detach(document: Document): void {
    const channel = this.options.channel(document.name);
    const tracked = this.byChannel.get(channel);
    if (tracked?.document !== document) return;
    tracked.stop();
    this.byChannel.delete(channel);
  }

  /**
   * After Redis was unreachable: publishes our own clients again, and the
   * removals that could not be sent, for every document.
   */
  resync(): void {
    for (const tracked of this.byChannel.values()) {
      for (const client of tracked.unsent) this.schedule(tracked, client);
      tracked.unsent.clear();
      this.announce(tracked);
    }
  }

  /** Handles one message received on a relay channel. */
  receive(channel: string, message: Uint8Array): void {
    const tracked = this.byChannel.get(channel);
    if (tracked === undefined) return;
    try {
      const decoder = decoding.createDecoder(message);
      const sender = decoding.readVarString(decoder);
      if (sender === this.options.instance) return;
      const kind = decoding.readVarUint(decoder);
      switch (kind) {
        case Kind.query:
          this.announce(tracked);
          return;
        case Kind.states:
          this.applyRemote(tracked, sender, decoding.readVarUint8Array(decoder));
          return;
        default:
          throw new RangeError(`unknown presence message kind ${kind}`);
      }
    } catch (error) {
      this.options.onError?.(error, tracked.document.name);
    }
  }

  /** A change to the document's awareness made here: publish the clients we own. */
  private localChange(tracked: Tracked, changes: AwarenessChanges, origin: unknown): void {
    if (origin === presenceOrigin) return;
    const fromConnection = isTransactionOrigin(origin) && origin.source === "connection";
    if (fromConnection) {
      // Hocuspocus records a client as its connection's only when the state is new here
      // ("added"). A client relayed from another instance has a state here already, so its
      // own connection's first announcement is an "update": record it too, or closing that
      // connection would not remove it, and another connection could speak for it (SYNC5).
      const entry = tracked.document.connections.get(origin.connection);
      for (const client of changes.updated) entry?.clients.add(client);
      for (const client of [...changes.added, ...changes.updated]) {
        tracked.own.add(client);
        tracked.remote.delete(client);
        this.schedule(tracked, client);
      }
    }
    // Removed by its connection, by Hocuspocus when that connection closed, or by a timeout.
    for (const client of changes.removed) {
      if (tracked.own.delete(client) || fromConnection) this.schedule(tracked, client);
      tracked.remote.delete(client);
      if (tracked.shadowed.has(client)) {
        // After Hocuspocus has forgotten the closing connection.
        queueMicrotask(() => this.promoteShadowed(tracked, client));
      }
    }
  }

  private applyRemote(tracked: Tracked, sender: string, update: Uint8Array): void {
    const { awareness } = tracked.document;
    const states = [];
    const removals: number[] = [];
    for (const entry of decodeAwarenessEntries(update)) {
      const { client, clock, state } = entry;
      const removal = state === "null";
      if (tracked.own.has(client)) {
        if (!removal) tracked.shadowed.set(client, { instance: sender, clock, state });
        else if (tracked.shadowed.get(client)?.instance === sender) tracked.shadowed.delete(client);
        continue;
      }
      const known = tracked.remote.get(client);
      if (removal) {
        if (tracked.shadowed.get(client)?.instance === sender) tracked.shadowed.delete(client);
        // y-protocols removes another client's state without raising its clock.
        if (known?.instance === sender && clock >= known.clock) {
          tracked.remote.delete(client);
          removals.push(client);
        }
        continue;
      }
      if (known?.instance === sender && clock <= known.clock) continue;
      tracked.remote.set(client, { instance: sender, clock });
      states.push({ client, clock: nextClock(awareness, client), state });
    }
    if (states.length > 0) {
      applyAwarenessUpdate(awareness, encodeAwarenessEntries(states), presenceOrigin);
    }
    if (removals.length > 0) removeAwarenessStates(awareness, removals, presenceOrigin);
  }

  /** The connection that kept `client` here is gone: another instance's claim on it applies now. */
  private promoteShadowed(tracked: Tracked, client: number): void {
    const claim = tracked.shadowed.get(client);
    if (claim === undefined || tracked.own.has(client)) return;
    tracked.shadowed.delete(client);
    const { awareness } = tracked.document;
    tracked.remote.set(client, { instance: claim.instance, clock: claim.clock });
    const entry = { client, clock: nextClock(awareness, client), state: claim.state };
    applyAwarenessUpdate(awareness, encodeAwarenessEntries([entry]), presenceOrigin);
  }

  /** Queues the states of every client a connection here owns. */
  private announce(tracked: Tracked): void {
    for (const client of tracked.own) this.schedule(tracked, client);
  }

  /** Publishes `client` on the next turn, with whatever else changed in this one. */
  private schedule(tracked: Tracked, client: number): void {
    tracked.outgoing.add(client);
    if (tracked.outgoing.size > 1) return;
    setImmediate(() => {
      const { awareness } = tracked.document;
      // A client that became another instance's since is that instance's to publish.
      const clients = [...tracked.outgoing].filter(
        (id) => !tracked.remote.has(id) && awareness.meta.has(id),
      );
      tracked.outgoing.clear();
      if (clients.length === 0) return;
      const update = encodeAwarenessUpdate(awareness, clients);
      const sent = this.options.publish(
        tracked.channel,
        message(this.options.instance, Kind.states, update),
      );
      if (!sent) for (const client of clients) tracked.unsent.add(client);
    });
  }
}

/** A clock this instance's awareness accepts as newer for `client`. */
function nextClock(awareness: Awareness, client: number): number {
  return (awareness.meta.get(client)?.clock ?? 0) + 1;
}

function message(instance: string, kind: number, update?: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, instance);
  encoding.writeVarUint(encoder, kind);
  if (update !== undefined) encoding.writeVarUint8Array(encoder, update);
  return encoding.toUint8Array(encoder);
}
