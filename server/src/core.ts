/**
 * The transport-free sync core: Hocuspocus with our extensions, the frame
 * guard on everything a client sends, and acknowledgements held until the
 * change they acknowledge is durable. It accepts any socket with `send`,
 * `close` and `readyState`, so the WebSocket transport, tests and the fuzz
 * network all drive the same code.
 */
import { type Document, type Extension, Hocuspocus, OutgoingMessage } from "@hocuspocus/server";
import type { AccessMode } from "./auth/access.ts";
import { AuthExtension } from "./auth/extension.ts";
import type { Config } from "./config.ts";
import { DocumentNameGuard } from "./documents/names.ts";
import { PresenceClocks, rewriteAwarenessFrame, withoutClients } from "./documents/presence.ts";
import type { CloseCode } from "./errors.ts";
import type { Logger } from "./observability/logger.ts";
import { StoredConfirmations } from "./persistence/confirmations.ts";
import { DurablePersistence } from "./persistence/extension.ts";
import type { DocumentStore } from "./persistence/store.ts";
import { inspectFrame } from "./protocol/guard.ts";
import { messageHead } from "./protocol/head.ts";
import { MessageType, SyncType } from "./protocol/messages.ts";
import type { FanOut } from "./scaling/fan-out.ts";
import type { AttemptTicket } from "./transport/gate.ts";
import {
  directUpdates,
  establishedConnection,
  markActive,
  skipUnusedUpdateHooks,
} from "./upstream/hocuspocus.ts";

/** WebSocket readyState values. */
const WS_OPEN = 1;
const WS_CLOSED = 3;

/** The socket the core talks to: any WebSocket-like object. */
export interface CoreSocket {
  readonly readyState: number;
  send(message: Uint8Array): void;
  close(code: number, reason: string): void;
  /**
   * Stop reading the client's messages (backpressure): called when the
   * connection's updates waiting to be stored pass `MAX_UNSTORED_BYTES`.
   * Messages already read may still arrive. A socket without it is never paused.
   */
  pause?(): void;
  /** Read the client's messages again. */
  resume?(): void;
  /**
   * Runs `sends` with the socket corked: the messages it sends leave in one
   * write (one system call) instead of one each. @default just runs it
   */
  corked?(sends: () => void): void;
}

/** What the core keeps per connection, shared with hooks through the Hocuspocus context. */
export interface ConnectionContext {
  readonly connectionId: string;
  /** Documents opened on this connection, for the close log line. */
  readonly documents: Set<string>;
  /**
   * The connection attempt's ticket with the gate's budget: told when the
   * connection opens a document, or is refused one for its credentials.
   */
  readonly attempt?: AttemptTicket;
}

/** What happened to one incoming frame. */
export type Received =
  | { readonly kind: "handled" }
  | { readonly kind: "ignored" }
  /** The frame was malformed: the socket was closed with this code. */
  | { readonly kind: "rejected"; readonly close: CloseCode };

export interface CoreConnection {
  /** Hands one binary frame from the client to the core. */
  receive(frame: Uint8Array): Received;
  /** The socket closed (or is being closed by the server). Idempotent. */
  closed(code: number, reason: string): void;
}

export interface SyncCore {
  readonly hocuspocus: Hocuspocus;
  readonly persistence: DurablePersistence;
  /** Fan-out to the other instances, when Redis connections were given; close it after the store. */
  readonly fanOut: FanOut | null;
  /** Attaches a socket; the request supplies the URL and headers hooks see. */
  connect(socket: CoreSocket, request: Request, context: ConnectionContext): CoreConnection;
}

export interface SyncCoreOptions {
  readonly config: Config;
  readonly store: DocumentStore;
  readonly logger: Logger;
  /** Who may open which document. @default anonymous */
  readonly access?: AccessMode;
  /** Called for each refused document, with the reason sent to the client. */
  readonly onRefused?: (reason: string) => void;
  /** Called for every stored change (see PersistenceOptions.onChange). */
  readonly onChange?: (name: string, created: boolean) => void;
  /** More extensions, run after ours. */
  readonly extensions?: readonly Extension[];
  /**
   * Fan-out over Redis (config.redisUrl): edits and presence go to the other
   * instances on the same Redis. Made by the caller, so a single instance never
   * loads the Redis client. Changes relayed by another instance carry the
   * origin `{ source: "redis" }`, which persistence does not store again: each
   * change is stored by the instance its client is on. @default null (one instance)
   */
  readonly fanOut?: FanOut | null;
}

export function createSyncCore({
  config,
  store,
  logger,
  access = { kind: "anonymous", loopback: true },
  onRefused,
  onChange,
  extensions = [],
  fanOut = null,
}: SyncCoreOptions): SyncCore {
  const persistence = new DurablePersistence({
    store,
    logger,
    compactMaxEntries: config.compactMaxEntries,
    compactMaxBytes: config.compactMaxBytes,
    maxDocuments: config.maxDocuments,
    onRefused,
    onChange,
  });
  /** Each open connection's backlog, by connection id (hooks get a copy of the context). */
  const backlogs = new Map<string, Backlog>();
  // Every extension Hocuspocus runs (we set no configuration-level hooks), in order.
  const configured: Extension[] = [
    new DocumentNameGuard(onRefused),
    new AuthExtension(access, onRefused, logger),
    persistence,
    new StoredConfirmations(persistence),
    ...(fanOut === null ? [] : [fanOut]),
    {
      extensionName: "connection-log",
      async connected({ context, documentName }) {
        const { connectionId, documents, attempt } = context as ConnectionContext;
        documents.add(documentName);
        attempt?.authenticated();
        logger.info({ connection: connectionId, document: documentName }, "document opened");
      },
      async onDisconnect({ context, documentName }) {
        const { connectionId } = context as ConnectionContext;
        // Whatever of it was still waiting (an update refused, a document closed by the server)
        // will not be acknowledged on this connection.
        backlogs.get(connectionId)?.forget(documentName);
        logger.info({ connection: connectionId, document: documentName }, "document closed");
      },
    },
    ...extensions,
  ];
  const hocuspocus = new Hocuspocus({
    quiet: true,
    timeout: config.idleTimeoutMs,
    maxUnauthenticatedQueueSize: config.maxUnauthenticatedQueueBytes,
    maxUnauthenticatedQueueMessages: config.maxUnauthenticatedQueueMessages,
    maxPendingDocuments: config.maxPendingDocuments,
    // 0: merge what arrives within one event-loop turn into one broadcast (Hocuspocus' own
    // default), adding no delay. Under fan-out this sends a few times fewer messages: npm run
    // bench peers measured p99 delivery 17 against 65 ms with 50 clients on one document, and
    // durable ingest 21,700 against 13,200 updates/s (docs/benchmarks.md).
    // -1 turns merging off: Yjs' mergeUpdates costs about 0.3 ms per update when one client
    // sends bursts (the trace upload in npm run bench peers: 3,200 against 11,600 updates/s).
    flushDelay: config.broadcastBatchMs === -1 ? false : config.broadcastBatchMs,
    // A merge batch ends at 4 KiB of updates (about 40-170 of them), not Hocuspocus' 1 MiB:
    // Yjs' mergeUpdatesV2 sorts all its inputs for every struct it writes, so one merge costs
    // about k^2 for k updates, and one fast writer filled batches of 18,000-45,000 updates. A
    // CPU profile of the trace upload put 86% of the server's time in those merges; capped at
    // 4 KiB the upload took 26-30 s of server CPU instead of 106 s for 100,000 of its updates
    // (docs/benchmarks.md, issue 14's profile). Typing's batches stay whole: far below 4 KiB.
    flushMaxBytes: 4096,
    // DurablePersistence stores every update as it arrives; Hocuspocus' debounced store is unused.
    unloadImmediately: true,
    // A copy: Hocuspocus sorts the list it is given and appends its own configuration hooks.
    extensions: [...configured],
  });

  guardDocumentLifecycle(hocuspocus);
  skipUnusedUpdateHooks(hocuspocus, configured);
  const direct = directUpdates(configured);

  return {
    hocuspocus,
    persistence,
    fanOut,
    connect(socket, request, context) {
      const presence = new PresenceClocks();
      /** Until the transport reports the socket closed ({@link CoreConnection.closed}). */
      let open = true;
      const adapter = {
        /**
         * Open while the socket is open or closing, until the transport reports the close.
         * Hocuspocus detaches a connection from its document the first time it sends on a
         * socket that is closing, and keeps handling the messages queued behind that send for
         * a connection the document no longer counts. A client that edits and closes at once
         * (y-websocket has no acknowledgements to wait for) has its frames and its close frame
         * read together, so the first reply detached it with its edits still queued: presence
         * that came after was kept with no connection to remove it (a ghost cursor for 30 s),
         * and the document counted no connection for the edits still to be applied, so any
         * unload that got in before them (one more await in the message path is enough) would
         * destroy the document under them. Detached only on the close, Hocuspocus handles every
         * queued message before it lets the document go; replies to a closing socket go nowhere
         * (the transport sends only on an open socket).
         */
        get readyState() {
          return open && socket.readyState !== WS_CLOSED ? WS_OPEN : WS_CLOSED;
        },
        send(data: string | ArrayBufferLike | Blob | ArrayBufferView) {
          if (!ArrayBuffer.isView(data)) return;
          const message = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          const head = messageHead(message);
          switch (head?.type) {
            case MessageType.SyncStatus:
              acknowledgeWhenDurable(head.documentName, message);
              return;
            case MessageType.Awareness:
              socket.send(
                rewriteAwarenessFrame(message, (u) => presence.outgoing(head.documentName, u)),
              );
              return;
            default:
              socket.send(message);
          }
        },
        close(code?: number, reason?: string) {
          socket.close(code ?? 1000, reason ?? "");
        },
      };
      const backlog = new Backlog(config.maxUnstoredBytes, socket, {
        // Paused, the client is not read, but it is not idle: Hocuspocus' idle check must not
        // close it while the store catches up (a stalled store could take longer than that).
        keepAlive: () => markActive(client),
        everyMs: Math.max(500, Math.floor(config.idleTimeoutMs / 4)),
      });
      backlogs.set(context.connectionId, backlog);
      // Acknowledge only once durable; an abandoned write is never acknowledged. Updates
      // that share a write batch share its promise, so their acknowledgements wait together.
      let waiting: {
        durable: Promise<void>;
        documentName: string;
        messages: Uint8Array[];
      } | null = null;
      const acknowledgeWhenDurable = (documentName: string, message: Uint8Array) => {
        const durable = persistence.whenDurable(documentName);
        if (durable === null) {
          // Never acknowledge a change to a document that is not being stored.
          logger.error(
            { document: documentName },
            "acknowledgement for an unloaded document withheld",
          );
          backlog.settled(documentName, 1);
          return;
        }
        if (waiting?.durable === durable && waiting.documentName === documentName) {
          waiting.messages.push(message);
          return;
        }
        const group = { durable, documentName, messages: [message] };
        waiting = group;
        const done = () => {
          if (waiting === group) waiting = null;
          backlog.settled(documentName, group.messages.length);
        };
        const sendAll = () => {
          for (const ack of group.messages) if (socket.readyState === WS_OPEN) socket.send(ack);
        };
        durable.then(
          () => {
            done();
            // A write batch acknowledges many updates at once (a fast writer's: hundreds).
            if (socket.corked === undefined) sendAll();
            else socket.corked(sendAll);
          },
          // Abandoned (the store gave up): never acknowledged, no longer waiting either.
          done,
        );
      };
      const client = hocuspocus.handleConnection(adapter, request, context);
      /** The acknowledgement of an update, as Hocuspocus writes it, for the last address seen. */
      let ack: { address: string; message: Uint8Array } | null = null;
      const acknowledgement = (address: string) => {
        if (ack?.address !== address) {
          ack = {
            address,
            message: new OutgoingMessage(address).writeSyncStatus(true).toUint8Array(),
          };
        }
        return ack.message;
      };
      /**
       * Whether awareness client `id` was announced on `document` by another connection to
       * this instance. A client relayed from another instance belongs to no connection here,
       * so a connection may take it over: that is a client that reconnected to this instance,
       * and the presence relay (scaling/presence.ts) then moves it here on every instance.
       */
      const ownedElsewhere = (document: Document, id: number) => {
        for (const [connection, { clients }] of document.connections) {
          if (connection.webSocket !== adapter && clients.has(id)) return true;
        }
        return false;
      };
      return {
        receive(frame) {
          if (!open) return { kind: "ignored" };
          const verdict = inspectFrame(frame);
          switch (verdict.kind) {
            case "message": {
              const document = hocuspocus.documents.get(verdict.documentName);
              const revised =
                verdict.type === MessageType.Awareness
                  ? rewriteAwarenessFrame(frame, (update) => {
                      // A connection speaks only for the clients it announced: entries for a
                      // client another connection owns (a forged cursor, say) are dropped.
                      const own =
                        document === undefined
                          ? update
                          : (withoutClients(update, (id) => ownedElsewhere(document, id)) ??
                            update);
                      return (
                        presence.incoming(own, document?.awareness) ?? (own === update ? null : own)
                      );
                    })
                  : frame;
              const { update } = verdict;
              const established = establishedConnection(
                client,
                verdict.address,
                verdict.documentName,
              );
              // Counted once the document is open: until then its messages wait in Hocuspocus'
              // queue, bounded by MAX_UNAUTHENTICATED_QUEUE_*, and a refused document's updates
              // are never acknowledged.
              if (update !== null && established !== undefined) {
                backlog.received(verdict.documentName, frame.byteLength);
              }
              if (
                update?.syncType === SyncType.Update &&
                verdict.type === MessageType.Sync &&
                established !== undefined &&
                direct?.apply(client, established, update.bytes)
              ) {
                acknowledgeWhenDurable(
                  verdict.documentName,
                  acknowledgement(established.messageAddress),
                );
                return { kind: "handled" };
              }
              client.handleMessage(revised);
              return { kind: "handled" };
            }
            case "pong":
              return { kind: "ignored" };
            case "reject":
              socket.close(verdict.close.code, verdict.close.reason);
              return { kind: "rejected", close: verdict.close };
          }
        },
        closed(code, reason) {
          if (!open) return;
          open = false;
          backlog.clear();
          backlogs.delete(context.connectionId);
          client.handleClose({ code, reason });
        },
      };
    },
  };
}

/**
 * One connection's updates that are read but not yet stored, and the
 * backpressure on them: past `limit` bytes the socket is paused (its messages
 * are no longer read, so TCP slows the client down), and it is resumed once
 * half of that is stored. Without it a client that sends faster than the
 * store writes (a script, an importer) grows the server's queues, and its
 * memory, without bound.
 *
 * Hocuspocus answers every update with one acknowledgement, in order per
 * document, and the core sends it once the update is stored (or drops it if
 * the write was abandoned): each acknowledgement settles the oldest update
 * of its document.
 */
class Backlog {
  /** Per document, the sizes of its waiting updates, oldest first from `head`. */
  private readonly pending = new Map<string, { sizes: number[]; head: number }>();
  private bytes = 0;
  private paused: ReturnType<typeof setInterval> | null = null;
  private readonly limit: number;
  private readonly socket: CoreSocket;
  private readonly alive: { readonly keepAlive: () => void; readonly everyMs: number };

  /** `alive.keepAlive` is called every `alive.everyMs` while the socket is paused. */
  constructor(
    limit: number,
    socket: CoreSocket,
    alive: { readonly keepAlive: () => void; readonly everyMs: number },
  ) {
    this.limit = limit;
    this.socket = socket;
    this.alive = alive;
  }

  /** An update of `size` bytes for `documentName` was handed to Hocuspocus. */
  received(documentName: string, size: number): void {
    let queue = this.pending.get(documentName);
    if (queue === undefined) {
      queue = { sizes: [], head: 0 };
      this.pending.set(documentName, queue);
    }
    queue.sizes.push(size);
    this.bytes += size;
    if (this.paused === null && this.bytes > this.limit && this.socket.pause !== undefined) {
      this.alive.keepAlive();
      this.paused = setInterval(this.alive.keepAlive, this.alive.everyMs);
      this.socket.pause();
    }
  }

  /** The oldest `count` updates of `documentName` were stored (or given up). */
  settled(documentName: string, count: number): void {
    const queue = this.pending.get(documentName);
    if (queue === undefined) return;
    const end = Math.min(queue.head + count, queue.sizes.length);
    for (let i = queue.head; i < end; i++) this.bytes -= queue.sizes[i] ?? 0;
    queue.head = end;
    if (queue.head === queue.sizes.length) this.pending.delete(documentName);
    else if (queue.head > 1024 && queue.head * 2 > queue.sizes.length) {
      queue.sizes = queue.sizes.slice(queue.head);
      queue.head = 0;
    }
    this.maybeResume();
  }

  /** `documentName` was closed on this connection: none of its waiting updates will be acknowledged here. */
  forget(documentName: string): void {
    const queue = this.pending.get(documentName);
    if (queue === undefined) return;
    for (let i = queue.head; i < queue.sizes.length; i++) this.bytes -= queue.sizes[i] ?? 0;
    this.pending.delete(documentName);
    this.maybeResume();
  }

  /** The connection closed: nothing is waiting any more. */
  clear(): void {
    this.pending.clear();
    this.bytes = 0;
    if (this.paused !== null) clearInterval(this.paused);
    this.paused = null;
  }

  private maybeResume(): void {
    if (this.paused === null || this.bytes > this.limit / 2) return;
    clearInterval(this.paused);
    this.paused = null;
    this.alive.keepAlive();
    this.socket.resume?.();
  }
}

/**
 * Closes two races in Hocuspocus' document lifecycle, both found by the
 * convergence fuzz.
 *
 * 1. Attaching to a document that is being unloaded: `createDocument` hands
 *    out the loaded document and the connection is added a few microtasks
 *    later; an unload whose `beforeUnloadDocument` hook (ours waits for
 *    pending writes) finishes in between destroys it, and the new client then
 *    edits a dead document. `createDocument` now never returns a destroyed
 *    document (it loads again) and holds the document, as a direct connection
 *    does, until the connection is attached.
 * 2. Unloading a stale instance: Hocuspocus calls `unloadDocument(document)`
 *    from timers and disconnect callbacks that can run after that document
 *    was unloaded and a new one of the same name loaded; it checks the name,
 *    not the instance, and so removes the new document from its map while
 *    clients are still connected to it. The next client then gets a second
 *    live copy and the two never converge. `unloadDocument` now ignores
 *    anything but the current instance.
 */
function guardDocumentLifecycle(hocuspocus: Hocuspocus): void {
  const unloadDocument = hocuspocus.unloadDocument.bind(hocuspocus);
  hocuspocus.unloadDocument = async (document: Document) => {
    if (hocuspocus.documents.get(document.name) !== document) return;
    return unloadDocument(document);
  };
  const createDocument = hocuspocus.createDocument.bind(hocuspocus);
  hocuspocus.createDocument = async (...args: Parameters<Hocuspocus["createDocument"]>) => {
    const [name] = args;
    for (;;) {
      const document = await createDocument(...args);
      if (document.isDestroyed || hocuspocus.documents.get(name) !== document) continue;
      document.addDirectConnection();
      // ClientConnection attaches its connection synchronously after this resolves.
      setImmediate(() => {
        document.removeDirectConnection();
        if (document.getConnectionsCount() === 0) void hocuspocus.unloadDocument(document);
      });
      return document;
    }
  };
}
