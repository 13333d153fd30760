/**
 * WebSocket transport: adapts `ws` sockets to the sync core. Accepts upgrades
 * on any path, refuses text frames, counts traffic and logs each
 * connection's open and close (with its documents and the close reason).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { ConnectionContext, CoreConnection, SyncCore } from "../core.ts";
import { Close, type CloseCode, closeReason } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";

export interface WebSocketTransportOptions {
  readonly core: SyncCore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxMessageBytes: number;
}

export class WebSocketTransport {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<WebSocket, CoreConnection>();
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

  /** Completes an HTTP upgrade into a sync connection. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request));
  }

  /** Closes every socket with `close`, telling the core at once rather than after each close handshake. */
  closeAll(close: CloseCode): void {
    for (const [ws, connection] of this.sockets) {
      ws.close(close.code, close.reason);
      connection.closed(close.code, close.reason);
    }
  }

  /** Drops sockets whose peers have not answered the close handshake. */
  terminateAll(): void {
    for (const ws of this.sockets.keys()) ws.terminate();
  }

  private accept(ws: WebSocket, request: IncomingMessage): void {
    const { core, logger, metrics } = this.options;
    const context: ConnectionContext = { connectionId: randomUUID(), documents: new Set() };
    const log = logger.child({ connection: context.connectionId });
    // The path only: a query string can carry a token.
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    log.info({ remote: request.socket.remoteAddress, path }, "connection opened");
    // ws closes an oversized message with 1009 and no reason; say what the limit is.
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) =>
      close(
        code,
        code === Close.messageTooBig.code && !reason
          ? `${Close.messageTooBig.reason}: the limit is ${this.options.maxMessageBytes} bytes`
          : reason,
      );

    const connection = core.connect(
      {
        get readyState() {
          return ws.readyState;
        },
        send(message) {
          if (ws.readyState !== WebSocket.OPEN) return;
          metrics.messagesOut.inc();
          metrics.bytesOut.inc(message.byteLength);
          ws.send(message);
        },
        close(code, reason) {
          try {
            ws.close(code, closeReason(reason));
          } catch {
            ws.terminate();
          }
        },
      },
      toFetchRequest(request),
      context,
    );
    this.sockets.set(ws, connection);

    const reject = (close: CloseCode) => {
      metrics.protocolErrors.inc({ code: close.code });
      log.warn({ code: close.code, reason: close.reason }, "malformed message; closing connection");
    };
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = rawToBytes(data);
      metrics.messagesIn.inc();
      metrics.bytesIn.inc(bytes.byteLength);
      if (!isBinary) {
        reject(Close.unsupportedData);
        ws.close(Close.unsupportedData.code, Close.unsupportedData.reason);
        return;
      }
      const received = connection.receive(bytes);
      if (received.kind === "rejected") reject(received.close);
    });
    ws.on("close", (code: number, reason: Buffer) => {
      this.sockets.delete(ws);
      connection.closed(code, reason.toString());
      log.info(
        { code, reason: reason.toString(), documents: [...context.documents] },
        "connection closed",
      );
    });
    ws.on("error", (error: Error & { code?: string }) => {
      // ws reports an oversized frame here, then closes the socket with 1009.
      const tooBig = error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH";
      if (tooBig) metrics.protocolErrors.inc({ code: Close.messageTooBig.code });
      log.warn({ err: error }, tooBig ? "message too big; connection closed" : "socket error");
    });
  }
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
