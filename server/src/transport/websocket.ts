/**
 * WebSocket transport: accepts upgrades on any path, checks every frame with
 * the guard before Hocuspocus sees it, counts traffic, and holds each
 * sync-status acknowledgement until the update it acknowledges is durable.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Hocuspocus, WebSocketLike } from "@hocuspocus/server";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { Close, type CloseCode, closeReason } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { inspectFrame } from "../protocol/guard.ts";
import { acknowledgedDocument } from "./acks.ts";

/** What the transport keeps per socket, shared with hooks through the Hocuspocus context. */
export interface SocketContext {
  readonly connectionId: string;
  /** Documents opened on this socket, for the close log line. */
  readonly documents: Set<string>;
}

export interface WebSocketTransportOptions {
  readonly hocuspocus: Hocuspocus;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxMessageBytes: number;
  /** Resolves once the changes applied so far to a document are durable, or null when none are pending. */
  readonly whenDurable: (documentName: string) => Promise<void> | null;
}

export class WebSocketTransport {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<WebSocket, () => void>();
  private readonly options: WebSocketTransportOptions;

  constructor(options: WebSocketTransportOptions) {
    this.options = options;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: false,
    });
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  /** Completes an HTTP upgrade into a Hocuspocus connection. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request));
  }

  /**
   * Closes every socket with `close`, telling Hocuspocus right away rather
   * than after each client answers the close handshake.
   */
  closeAll(close: CloseCode): void {
    for (const [ws, release] of this.sockets) {
      ws.close(close.code, close.reason);
      release();
    }
  }

  private accept(ws: WebSocket, request: IncomingMessage): void {
    const { hocuspocus, logger, metrics } = this.options;
    const context: SocketContext = { connectionId: randomUUID(), documents: new Set() };
    const log = logger.child({ connection: context.connectionId });
    log.info({ remote: request.socket.remoteAddress, path: request.url }, "connection opened");

    const send = (data: Uint8Array) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      metrics.messagesOut.inc();
      metrics.bytesOut.inc(data.byteLength);
      ws.send(data);
    };
    const adapter: WebSocketLike = {
      get readyState() {
        return ws.readyState;
      },
      send: (data) => {
        const bytes = toBytes(data);
        if (bytes === null) return;
        const pending = this.pendingWrite(bytes);
        if (pending === null) send(bytes);
        // Acknowledge only once durable; a write that is abandoned is never acknowledged.
        else
          pending.then(
            () => send(bytes),
            () => {},
          );
      },
      close: (code, reason) => {
        try {
          ws.close(code, reason === undefined ? undefined : closeReason(reason));
        } catch {
          ws.terminate();
        }
      },
    };

    const client = hocuspocus.handleConnection(adapter, toFetchRequest(request), context);
    let released = false;
    const release = (code = 1006, reason = "") => {
      if (released) return;
      released = true;
      this.sockets.delete(ws);
      client.handleClose({ code, reason });
      log.info({ code, reason, documents: [...context.documents] }, "connection closed");
    };
    this.sockets.set(ws, () => release(Close.goingAway.code, Close.goingAway.reason));

    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = rawToBytes(data);
      metrics.messagesIn.inc();
      metrics.bytesIn.inc(bytes.byteLength);
      if (!isBinary) return this.reject(ws, log, Close.unsupportedData);
      const verdict = inspectFrame(bytes);
      switch (verdict.kind) {
        case "message":
          client.handleMessage(bytes);
          return;
        case "pong":
          return;
        case "reject":
          return this.reject(ws, log, verdict.close);
      }
    });
    ws.on("close", (code: number, reason: Buffer) => release(code, reason.toString()));
    ws.on("error", (error: Error & { code?: string }) => {
      // ws reports an oversized frame here, then closes the socket with 1009.
      const tooBig = error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH";
      if (tooBig) metrics.protocolErrors.inc({ code: Close.messageTooBig.code });
      log.warn({ err: error }, tooBig ? "message too big; connection closed" : "socket error");
    });
  }

  private reject(ws: WebSocket, log: Logger, close: CloseCode): void {
    this.options.metrics.protocolErrors.inc({ code: close.code });
    log.warn({ code: close.code, reason: close.reason }, "malformed message; closing connection");
    ws.close(close.code, closeReason(close.reason));
  }

  private pendingWrite(message: Uint8Array): Promise<void> | null {
    const documentName = acknowledgedDocument(message);
    return documentName === null ? null : this.options.whenDurable(documentName);
  }
}

function toBytes(data: string | ArrayBufferLike | Blob | ArrayBufferView): Uint8Array | null {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return null;
}

function rawToBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** Hocuspocus wants a Fetch API Request; it only reads the URL and headers. */
function toFetchRequest(request: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return new Request(new URL(request.url ?? "/", "http://localhost"), { headers });
}
