/**
 * The transport-free sync core: Hocuspocus with our extensions, the frame
 * guard on everything a client sends, and acknowledgements held until the
 * change they acknowledge is durable. It accepts any socket with `send`,
 * `close` and `readyState`, so the WebSocket transport, tests and the fuzz
 * network all drive the same code.
 */
import { Hocuspocus } from "@hocuspocus/server";
import type { Config } from "./config.ts";
import { DocumentNameGuard } from "./documents/names.ts";
import type { CloseCode } from "./errors.ts";
import type { Logger } from "./observability/logger.ts";
import { DurablePersistence } from "./persistence/extension.ts";
import type { DocumentStore } from "./persistence/store.ts";
import { acknowledgedDocument } from "./protocol/acks.ts";
import { inspectFrame } from "./protocol/guard.ts";

/** The socket the core talks to: any WebSocket-like object. */
export interface CoreSocket {
  readonly readyState: number;
  send(message: Uint8Array): void;
  close(code: number, reason: string): void;
}

/** What the core keeps per connection, shared with hooks through the Hocuspocus context. */
export interface ConnectionContext {
  readonly connectionId: string;
  /** Documents opened on this connection, for the close log line. */
  readonly documents: Set<string>;
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
  /** Attaches a socket; the request supplies the URL and headers hooks see. */
  connect(socket: CoreSocket, request: Request, context: ConnectionContext): CoreConnection;
}

export interface SyncCoreOptions {
  readonly config: Config;
  readonly store: DocumentStore;
  readonly logger: Logger;
  /** Called for each refused document, with the reason sent to the client. */
  readonly onRefused?: (reason: string) => void;
}

export function createSyncCore({ config, store, logger, onRefused }: SyncCoreOptions): SyncCore {
  const persistence = new DurablePersistence({
    store,
    logger,
    compactMaxEntries: config.compactMaxEntries,
    compactMaxBytes: config.compactMaxBytes,
    maxDocuments: config.maxDocuments,
    onRefused,
  });
  const hocuspocus = new Hocuspocus({
    quiet: true,
    timeout: config.idleTimeoutMs,
    maxUnauthenticatedQueueSize: config.maxUnauthenticatedQueueBytes,
    maxUnauthenticatedQueueMessages: config.maxUnauthenticatedQueueMessages,
    maxPendingDocuments: config.maxPendingDocuments,
    flushDelay: config.broadcastBatchMs === 0 ? false : config.broadcastBatchMs,
    // DurablePersistence stores every update as it arrives; Hocuspocus' debounced store is unused.
    unloadImmediately: true,
    extensions: [
      new DocumentNameGuard(onRefused),
      persistence,
      {
        extensionName: "connection-log",
        async connected({ context, documentName }) {
          const { connectionId, documents } = context as ConnectionContext;
          documents.add(documentName);
          logger.debug({ connection: connectionId, document: documentName }, "document opened");
        },
        async onDisconnect({ context, documentName }) {
          logger.debug(
            { connection: (context as ConnectionContext).connectionId, document: documentName },
            "document closed",
          );
        },
      },
    ],
  });

  return {
    hocuspocus,
    persistence,
    connect(socket, request, context) {
      const adapter = {
        get readyState() {
          return socket.readyState;
        },
        send(data: string | ArrayBufferLike | Blob | ArrayBufferView) {
          if (!ArrayBuffer.isView(data)) return;
          const message = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          const documentName = acknowledgedDocument(message);
          const pending = documentName === null ? null : persistence.whenDurable(documentName);
          if (pending === null) socket.send(message);
          // Acknowledge only once durable; an abandoned write is never acknowledged.
          else
            pending.then(
              () => socket.readyState === 1 && socket.send(message),
              () => {},
            );
        },
        close(code?: number, reason?: string) {
          socket.close(code ?? 1000, reason ?? "");
        },
      };
      const client = hocuspocus.handleConnection(adapter, request, context);
      let open = true;
      return {
        receive(frame) {
          if (!open) return { kind: "ignored" };
          const verdict = inspectFrame(frame);
          switch (verdict.kind) {
            case "message":
              client.handleMessage(frame);
              return { kind: "handled" };
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
          client.handleClose({ code, reason });
        },
      };
    },
  };
}
