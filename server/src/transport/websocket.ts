/**
 * WebSocket transport: adapts `ws` sockets to the sync core. Accepts upgrades
 * on any path, refuses text frames, counts traffic and logs each
 * connection's open and close (with its documents and the close reason).
 * A connection speaks the Hocuspocus protocol, or y-websocket's on `/yjs/<name>`:
 * its frames then pass through a translator at this edge
 * (protocol/y-websocket.ts), so the core sees Hocuspocus frames either way.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { ConnectionContext, CoreConnection, SyncCore } from "../core.ts";
import { Close, type CloseCode, closeReason } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import {
  chooseDialect,
  type DialectChoice,
  type FrameTranslator,
  yWebSocketTranslator,
} from "../protocol/y-websocket.ts";
import { type CompressionOptions, perMessageDeflate } from "./compression.ts";
import { type AttemptTicket, FREE_ATTEMPT } from "./gate.ts";

/** The Hocuspocus protocol is the core's own: nothing to translate. */
const HOCUSPOCUS: FrameTranslator = {
  name: "hocuspocus",
  opening: [],
  incoming: (frame) => ({ kind: "frame", frame }),
  outgoing: (frame) => ({ kind: "send", frame }),
  closing: (close) => close,
};

export interface WebSocketTransportOptions {
  readonly core: SyncCore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxMessageBytes: number;
  /**
   * Unsent bytes a connection may hold: once more than this waits to be sent
   * when another message is due, the client is not reading and is dropped.
   */
  readonly maxSendBufferBytes: number;
  /** permessage-deflate for clients that offer it; null declines it. @default null */
  readonly compression?: CompressionOptions | null;
  /** The client's address for logs (with TRUST_PROXY, the forwarded one). @default the socket's peer */
  readonly clientAddress?: (request: IncomingMessage) => string;
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
      perMessageDeflate: perMessageDeflate(options.compression ?? null),
    });
  }

  private clientAddress(request: IncomingMessage): string {
    return this.options.clientAddress?.(request) ?? request.socket.remoteAddress ?? "unknown";
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  /** The dialect an upgrade asks for, by its path (see {@link chooseDialect}). */
  static dialectFor(request: IncomingMessage): DialectChoice {
    return chooseDialect(request.url ?? "/");
  }

  /**
   * Completes an HTTP upgrade into a sync connection speaking `dialect`, or
   * answers HTTP 400 when the dialect is invalid (a bad `/yjs/` name).
   * @default dialect { kind: "hocuspocus" }
   */
  handleUpgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    dialect: DialectChoice = { kind: "hocuspocus" },
    attempt: AttemptTicket = FREE_ATTEMPT,
  ): void {
    let translator: FrameTranslator;
    switch (dialect.kind) {
      case "hocuspocus":
        translator = HOCUSPOCUS;
        break;
      case "y-websocket":
        translator = yWebSocketTranslator(dialect.documentName, dialect.token);
        break;
      case "invalid":
        this.options.logger.warn(
          { remote: this.clientAddress(request), path: pathOf(request), reason: dialect.reason },
          "upgrade refused",
        );
        refuseUpgrade(socket, dialect.reason);
        return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) =>
      this.accept(ws, request, socket, translator, attempt),
    );
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

  private accept(
    ws: WebSocket,
    request: IncomingMessage,
    raw: Duplex,
    translator: FrameTranslator,
    attempt: AttemptTicket,
  ): void {
    const { core, logger, metrics, maxSendBufferBytes } = this.options;
    const context: ConnectionContext = {
      connectionId: randomUUID(),
      documents: new Set(),
      attempt,
    };
    const log = logger.child({ connection: context.connectionId });
    log.info(
      { remote: this.clientAddress(request), path: pathOf(request), protocol: translator.name },
      "connection opened",
    );
    // ws closes an oversized message with 1009 and no reason; say what the limit is.
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) =>
      close(
        code,
        code === Close.messageTooBig.code && !reason
          ? `${Close.messageTooBig.reason}: the limit is ${this.options.maxMessageBytes} bytes`
          : reason,
      );
    const closeSocket = ({ code, reason }: CloseCode) => {
      try {
        ws.close(code, closeReason(reason));
      } catch {
        ws.terminate();
      }
    };

    const connection = core.connect(
      {
        get readyState() {
          return ws.readyState;
        },
        send(message) {
          if (ws.readyState !== WebSocket.OPEN) return;
          // Node buffers whatever a peer does not read, without limit: a client that never reads
          // (and asks for the document again and again) would grow this process' memory until it
          // fails. It cannot read a close frame either, so the socket is dropped at once.
          if (ws.bufferedAmount > maxSendBufferBytes) {
            log.warn(
              { unsentBytes: ws.bufferedAmount, limit: maxSendBufferBytes },
              "client is not reading; connection dropped",
            );
            ws.terminate();
            return;
          }
          const outgoing = translator.outgoing(message);
          if (outgoing.kind === "drop") return;
          const frame = outgoing.kind === "send" ? outgoing.frame : outgoing.last;
          if (frame !== null) {
            metrics.messagesOut.inc();
            metrics.bytesOut.inc(frame.byteLength);
            ws.send(frame);
          }
          if (outgoing.kind === "close") closeSocket(outgoing.close);
        },
        close(code, reason) {
          closeSocket(translator.closing({ code, reason }));
        },
        pause() {
          log.debug("updates waiting to be stored; reading paused");
          metrics.pausedReads.inc();
          ws.pause();
        },
        resume() {
          ws.resume();
        },
        corked(sends) {
          // The upgraded TCP (or TLS) socket ws writes to; corks nest, so ws' own cork of
          // each frame's header and body no longer ends the write.
          raw.cork();
          try {
            sends();
          } finally {
            raw.uncork();
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
    const deliver = (frame: Uint8Array) => {
      let received: ReturnType<typeof connection.receive>;
      try {
        received = connection.receive(frame);
      } catch (error) {
        // The guard should have refused whatever made handling throw; if it did not, this
        // connection pays for it, not the process and everyone else.
        log.error({ err: error }, "handling a message failed; closing connection");
        closeSocket(Close.internalError);
        return;
      }
      if (received.kind === "rejected") reject(received.close);
    };
    for (const frame of translator.opening) deliver(frame);
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = rawToBytes(data);
      metrics.messagesIn.inc();
      metrics.bytesIn.inc(bytes.byteLength);
      if (!isBinary) {
        reject(Close.unsupportedData);
        ws.close(Close.unsupportedData.code, Close.unsupportedData.reason);
        return;
      }
      const incoming = translator.incoming(bytes);
      switch (incoming.kind) {
        case "frame":
          deliver(incoming.frame);
          return;
        case "drop":
          return;
        case "reject":
          reject(incoming.close);
          closeSocket(incoming.close);
          return;
      }
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

/** The request's path without its query, which can carry a token. */
function pathOf(request: IncomingMessage): string {
  try {
    return new URL(request.url ?? "/", "http://localhost").pathname;
  } catch {
    return "(unparsable)";
  }
}

/** Answers an upgrade with 400 and the JSON error shape of the HTTP routes, before any WebSocket traffic. */
function refuseUpgrade(socket: Duplex, message: string): void {
  const body = JSON.stringify({ error: { code: "bad_request", message } });
  socket.end(
    "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
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
