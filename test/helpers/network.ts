/**
 * A deterministic in-memory network between Hocuspocus-protocol clients and
 * the real sync core (no sockets, no timers). Each connection is a pair of
 * FIFO queues; the test decides which message is delivered next, so a seeded
 * PRNG can explore delivery orders, disconnects and server restarts, and a
 * failing seed replays exactly.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { vi } from "vitest";
import * as awarenessProtocol from "y-protocols/awareness";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import { type Config, DEFAULT_CONFIG } from "../../server/src/config.ts";
import { type CoreConnection, createSyncCore, type SyncCore } from "../../server/src/core.ts";
import { createLogger } from "../../server/src/observability/logger.ts";
import { MemoryStore } from "../../server/src/persistence/memory.ts";
import { AuthType, MessageType } from "../../server/src/protocol/messages.ts";

/**
 * Lets the core's work run to completion after each delivered message. The
 * fuzz runs under Vitest's fake timers, so this also advances the clock one
 * millisecond: every timer Hocuspocus sets (its unload timeouts, our
 * setImmediate hand-offs) fires at a point the seed decides, and a failing
 * seed replays exactly.
 */
export async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(1);
}

interface Channel {
  readonly toServer: Uint8Array[];
  readonly toClient: Uint8Array[];
  connection: CoreConnection;
  open: boolean;
}

/** One silent logger for every core: building a pino logger per restart costs more than the restart. */
const silent = createLogger("silent");

/** Marks updates a client applies from the server, so it does not send them back. */
const fromServer = Symbol("from-server");

/** A minimal Hocuspocus-protocol client: a Y.Doc, its awareness, and one channel at a time. */
export class NetworkClient {
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;
  channel: Channel | null = null;
  sent = 0;
  acknowledged = 0;
  refused: string | null = null;
  readonly name: string;

  constructor(name: string, clientId: number) {
    this.name = name;
    this.doc = new Y.Doc();
    // A seeded client id, so a failing seed replays exactly (Yjs picks a random one).
    this.doc.clientID = clientId;
    this.awareness = new awarenessProtocol.Awareness(this.doc);
    this.doc.on("update", (update: Uint8Array, origin: unknown) => {
      if (origin === fromServer) return;
      if (this.channel?.open) {
        this.sent++;
        this.push((e) => {
          encoding.writeVarUint(e, MessageType.Sync);
          syncProtocol.writeUpdate(e, update);
        });
      }
    });
    this.awareness.on(
      "update",
      ({ added, updated, removed }: Record<string, number[]>, origin: unknown) => {
        if (origin === fromServer || !this.channel?.open) return;
        const changed = [...(added ?? []), ...(updated ?? []), ...(removed ?? [])];
        const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed);
        this.push((e) => {
          encoding.writeVarUint(e, MessageType.Awareness);
          encoding.writeVarUint8Array(e, update);
        });
      },
    );
  }

  /** Queues a message for the server on the current channel. */
  push(body: (encoder: encoding.Encoder) => void): void {
    if (this.channel === null || !this.channel.open) return;
    const encoder = encoding.createEncoder();
    encoding.writeVarString(encoder, this.name);
    body(encoder);
    this.channel.toServer.push(encoding.toUint8Array(encoder));
  }

  /** Handles one message from the server. */
  receive(message: Uint8Array): void {
    const decoder = decoding.createDecoder(message);
    decoding.readVarString(decoder);
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case MessageType.Sync:
      case MessageType.SyncReply: {
        const reply = encoding.createEncoder();
        encoding.writeVarUint(reply, MessageType.Sync);
        const before = encoding.length(reply);
        const syncType = syncProtocol.readSyncMessage(decoder, reply, this.doc, fromServer);
        if (syncType === syncProtocol.messageYjsSyncStep1 && encoding.length(reply) > before) {
          // Our step 2 carries local changes the server lacks: it is acknowledged like an update.
          this.sent++;
          this.push((e) => encoding.writeUint8Array(e, encoding.toUint8Array(reply)));
        }
        return;
      }
      case MessageType.Awareness:
        awarenessProtocol.applyAwarenessUpdate(
          this.awareness,
          decoding.readVarUint8Array(decoder),
          fromServer,
        );
        return;
      case MessageType.SyncStatus:
        if (decoding.readVarInt(decoder) === 1) this.acknowledged++;
        return;
      case MessageType.Auth: {
        const authType = decoding.readVarUint(decoder);
        if (authType === AuthType.PermissionDenied) this.refused = decoding.readVarString(decoder);
        return;
      }
      default:
        return;
    }
  }
}

/** The server side: the real sync core over a store that outlives restarts. */
export class Network {
  core: SyncCore;
  /** The store the current core writes to; a crash moves to a copy of what was stored. */
  store: MemoryStore;
  readonly clients: NetworkClient[] = [];
  private readonly config: Config;
  private connections = 0;

  constructor(config: Partial<Config> = {}) {
    this.store = new MemoryStore();
    this.config = { ...DEFAULT_CONFIG, ...config };
    this.core = this.newCore();
  }

  private newCore(): SyncCore {
    return createSyncCore({
      config: this.config,
      store: this.store,
      logger: silent,
    });
  }

  addClient(documentName: string, clientId: number): NetworkClient {
    const client = new NetworkClient(documentName, clientId);
    this.clients.push(client);
    return client;
  }

  /** Opens a channel for `client` and starts the handshake (auth, sync step 1, awareness). */
  connect(client: NetworkClient): void {
    if (client.channel?.open) return;
    const channel: Channel = {
      toServer: [],
      toClient: [],
      open: true,
      connection: undefined as unknown as CoreConnection,
    };
    channel.connection = this.core.connect(
      {
        get readyState() {
          return channel.open ? 1 : 3;
        },
        send: (message) => {
          if (channel.open) channel.toClient.push(message);
        },
        close: () => {
          channel.open = false;
        },
      },
      new Request("http://localhost/"),
      { connectionId: `c${++this.connections}`, documents: new Set() },
    );
    client.channel = channel;
    // Acknowledgements are counted per channel; unacknowledged changes are re-sent by the handshake.
    client.sent = 0;
    client.acknowledged = 0;
    client.push((e) => {
      encoding.writeVarUint(e, MessageType.Auth);
      encoding.writeVarUint(e, AuthType.Token);
      encoding.writeVarString(e, "");
    });
    client.push((e) => {
      encoding.writeVarUint(e, MessageType.Sync);
      syncProtocol.writeSyncStep1(e, client.doc);
    });
    if (client.awareness.getLocalState() !== null) {
      const update = awarenessProtocol.encodeAwarenessUpdate(client.awareness, [
        client.doc.clientID,
      ]);
      client.push((e) => {
        encoding.writeVarUint(e, MessageType.Awareness);
        encoding.writeVarUint8Array(e, update);
      });
    }
  }

  /** Drops the client's channel; undelivered messages in both directions are lost. */
  disconnect(client: NetworkClient): void {
    const channel = client.channel;
    if (channel === null) return;
    channel.open = false;
    channel.connection.closed(1006, "dropped");
    client.channel = null;
    // As the provider does on close: everyone else is gone until the next sync.
    const others = [...client.awareness.getStates().keys()].filter(
      (id) => id !== client.doc.clientID,
    );
    awarenessProtocol.removeAwarenessStates(client.awareness, others, fromServer);
  }

  /** Channels with something to deliver, as [client, direction] pairs. */
  deliverable(): Array<[NetworkClient, "toServer" | "toClient"]> {
    const out: Array<[NetworkClient, "toServer" | "toClient"]> = [];
    for (const client of this.clients) {
      const channel = client.channel;
      if (channel === null || !channel.open) continue;
      if (channel.toServer.length > 0) out.push([client, "toServer"]);
      if (channel.toClient.length > 0) out.push([client, "toClient"]);
    }
    return out;
  }

  /**
   * Delivers the oldest message of one direction of the client's channel.
   * With `settleAfter` false only a few microtasks run before the next step,
   * so the next message can arrive while the server is still busy (hooks,
   * store writes, timers pending), as it can on a real network.
   */
  async deliver(
    client: NetworkClient,
    direction: "toServer" | "toClient",
    settleAfter = true,
  ): Promise<void> {
    const channel = client.channel;
    const message = channel?.[direction].shift();
    if (channel === null || channel === undefined || message === undefined) return;
    if (direction === "toClient") client.receive(message);
    else channel.connection.receive(message);
    if (settleAfter) await settle();
    else for (let i = 0; i < 3; i++) await Promise.resolve();
  }

  /**
   * Crash-restarts the server: every channel drops, and a new core starts on a
   * copy of what the store holds. The old core is cut off from the new store,
   * as a killed process would be: whatever it still does goes nowhere.
   */
  async crash(): Promise<void> {
    for (const client of this.clients) this.disconnect(client);
    const survivor = new MemoryStore();
    for (const { name } of await this.store.list({ limit: Number.MAX_SAFE_INTEGER })) {
      const stored = await this.store.load(name);
      if (stored !== null) await survivor.compact(name, Y.mergeUpdates([...stored.updates]));
    }
    this.store = survivor;
    // A restart takes time; presence clocks rely on the wall clock moving on.
    await vi.advanceTimersByTimeAsync(1_000);
    this.core = this.newCore();
  }

  /** Connects everyone and delivers until nothing moves (bounded). */
  async quiesce(maxRounds = 10_000): Promise<void> {
    for (const client of this.clients) this.connect(client);
    for (let round = 0; round < maxRounds; round++) {
      await this.store.flush();
      await settle();
      const pending = this.deliverable();
      if (pending.length === 0) return;
      for (const [client, direction] of pending) await this.deliver(client, direction);
    }
    throw new Error(`network did not quiesce in ${maxRounds} rounds`);
  }
}
