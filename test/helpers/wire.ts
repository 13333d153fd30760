/**
 * Raw protocol access for tests that must send what no provider would:
 * message builders (lib0 encoding, the Hocuspocus wire format), a bare
 * WebSocket whose close code and reason can be awaited, and a WebSocket
 * client written by hand over TCP for what `ws` will not do (trickle the
 * upgrade, fragment a message, stop reading, see each frame's RSV1 bit).
 */
import { randomBytes } from "node:crypto";
import { type Socket, connect as tcpConnect } from "node:net";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { onTestFinished } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { AuthType, MessageType, SyncType } from "../../server/src/protocol/messages.ts";

function message(
  documentName: string,
  type: number,
  body: (encoder: encoding.Encoder) => void,
): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, documentName);
  encoding.writeVarUint(encoder, type);
  body(encoder);
  return encoding.toUint8Array(encoder);
}

export const wire = {
  auth: (documentName: string, token = "") =>
    message(documentName, MessageType.Auth, (e) => {
      encoding.writeVarUint(e, AuthType.Token);
      encoding.writeVarString(e, token);
    }),
  syncStep1: (documentName: string, doc: Y.Doc = new Y.Doc()) =>
    message(documentName, MessageType.Sync, (e) => {
      encoding.writeVarUint(e, SyncType.Step1);
      encoding.writeVarUint8Array(e, Y.encodeStateVector(doc));
    }),
  update: (documentName: string, update: Uint8Array) =>
    message(documentName, MessageType.Sync, (e) => {
      encoding.writeVarUint(e, SyncType.Update);
      encoding.writeVarUint8Array(e, update);
    }),
  awareness: (documentName: string, clientId: number, state: string) =>
    message(documentName, MessageType.Awareness, (e) => {
      const inner = encoding.createEncoder();
      encoding.writeVarUint(inner, 1);
      encoding.writeVarUint(inner, clientId);
      encoding.writeVarUint(inner, 1);
      encoding.writeVarString(inner, state);
      encoding.writeVarUint8Array(e, encoding.toUint8Array(inner));
    }),
  /** A message whose address bytes are not valid UTF-8. */
  badUtf8Address: () => Uint8Array.from([2, 0xc3, 0x28, MessageType.QueryAwareness]),
  syncStep2: (documentName: string, update: Uint8Array) =>
    message(documentName, MessageType.Sync, (e) => {
      encoding.writeVarUint(e, SyncType.Step2);
      encoding.writeVarUint8Array(e, update);
    }),
  queryAwareness: (documentName: string) =>
    message(documentName, MessageType.QueryAwareness, () => {}),
  stateless: (documentName: string, payload: string) =>
    message(documentName, MessageType.Stateless, (e) => encoding.writeVarString(e, payload)),
  /** A provider closing its document (the socket stays open). */
  close: (documentName: string) => message(documentName, MessageType.Close, () => {}),
  /**
   * The y-websocket form of a Hocuspocus message: the same bytes without the
   * document address (a y-websocket socket serves one document).
   */
  plain: (frame: Uint8Array) => {
    const decoder = decoding.createDecoder(frame);
    decoding.readVarString(decoder);
    return frame.subarray(decoder.pos);
  },
};

export interface RawSocket {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  /** Resolves with the close code and reason the server sent. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Every binary message received. */
  readonly received: Uint8Array[];
}

/** A bare WebSocket to the server, closed when the test finishes. */
export function rawSocket(url: string): RawSocket {
  const ws = new WebSocket(url);
  const received: Uint8Array[] = [];
  ws.on("message", (data: Buffer) => received.push(new Uint8Array(data)));
  ws.on("error", () => {});
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code: number, reason: Buffer) =>
      resolve({ code, reason: reason.toString() }),
    ),
  );
  onTestFinished(() => ws.terminate());
  return { ws, opened, closed, received };
}

/** WebSocket opcodes (RFC 6455, 5.2). */
export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8 } as const;

/** One WebSocket frame as a client must send it: masked, with FIN and the opcode as given. */
export function clientFrame(
  payload: Uint8Array,
  options: { opcode?: number; fin?: boolean } = {},
): Uint8Array {
  const { opcode = Opcode.binary, fin = true } = options;
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const frame = new Uint8Array(2 + extra + 4 + length);
  const view = new DataView(frame.buffer);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  frame[1] = 0x80 | (extra === 0 ? length : extra === 2 ? 126 : 127);
  if (extra === 2) view.setUint16(2, length);
  if (extra === 8) view.setBigUint64(2, BigInt(length));
  const mask = randomBytes(4);
  frame.set(mask, 2 + extra);
  for (let i = 0; i < length; i++) frame[6 + extra + i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
  return frame;
}

/** A frame the server sent (servers never mask). */
export interface ServerFrame {
  readonly opcode: number;
  readonly fin: boolean;
  /** RSV1: with permessage-deflate negotiated, the message is compressed (RFC 7692, 6). */
  readonly rsv1: boolean;
  /** As it came over the wire (still compressed when `rsv1` is set). */
  readonly payload: Uint8Array;
}

/** How {@link TcpWebSocket.open} upgrades. */
export interface TcpUpgradeOptions {
  /** Send the request `bytes` at a time every `everyMs` (a slow client). */
  readonly trickle?: { readonly bytes: number; readonly everyMs: number };
  /** Extra request headers, e.g. `sec-websocket-extensions`. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A WebSocket client over a bare TCP socket. It can send its upgrade request
 * a few bytes at a time, send any bytes (fragments, slowly), and stop reading
 * its socket; it records the frames the server sends. Destroyed when the test
 * finishes.
 */
export class TcpWebSocket {
  /** Every frame received, in order. */
  readonly frames: ServerFrame[] = [];
  /** Resolves when the TCP connection is gone (closed, reset or failed), with the error if any. */
  readonly ended: Promise<Error | null>;
  private readonly socket: Socket;
  private buffer: Uint8Array = new Uint8Array(0);
  private status: string | null = null;
  private readonly headers = new Map<string, string>();

  private constructor(socket: Socket) {
    this.socket = socket;
    let failure: Error | null = null;
    socket.on("error", (error) => {
      failure = error;
    });
    this.ended = new Promise((resolve) => socket.once("close", () => resolve(failure)));
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    onTestFinished(() => {
      socket.destroy();
    });
  }

  /**
   * Connects to `port` on 127.0.0.1 and upgrades to a WebSocket on `path`,
   * with `options.headers` added, sending the request `trickle.bytes` at a
   * time every `trickle.everyMs` (a slow client) when given. Resolves once
   * the server answered 101; rejects with the status line otherwise.
   */
  static async open(
    port: number,
    path: string,
    options: TcpUpgradeOptions = {},
  ): Promise<TcpWebSocket> {
    const { trickle, headers = {} } = options;
    const socket = tcpConnect(port, "127.0.0.1");
    const client = new TcpWebSocket(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const request = new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n` +
        "Sec-WebSocket-Version: 13\r\n" +
        Object.entries(headers)
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join("") +
        "\r\n",
    );
    if (trickle === undefined) await client.write(request);
    else await client.trickle(request, trickle.bytes, trickle.everyMs);
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (client.status === null) return;
        socket.off("data", check);
        if (client.status.startsWith("HTTP/1.1 101")) resolve();
        else reject(new Error(`upgrade refused: ${client.status}`));
      };
      socket.on("data", check);
      void client.ended.then(() => reject(new Error("connection closed during the upgrade")));
      check();
    });
    return client;
  }

  /** Writes `bytes`; resolves once they are handed to the kernel, rejects if the socket failed. */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Writes `bytes` in pieces of `size`, one every `everyMs` (pacing, not waiting on an outcome). */
  async trickle(bytes: Uint8Array, size: number, everyMs: number): Promise<void> {
    for (let at = 0; at < bytes.length; at += size) {
      if (at > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
      await this.write(bytes.subarray(at, at + size));
    }
  }

  /** Stops reading the socket: what the server sends piles up in the kernel, then in the server. */
  pause(): void {
    this.socket.pause();
  }

  /** A header of the server's upgrade response (by its name in lower case), once it arrived. */
  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }

  /** The close code of the server's close frame, once one arrived. */
  get closeCode(): number | null {
    const close = this.frames.find((frame) => frame.opcode === Opcode.close);
    if (close === undefined) return null;
    return close.payload.length >= 2
      ? ((close.payload[0] ?? 0) << 8) | (close.payload[1] ?? 0)
      : 1005;
  }

  /** Drops the TCP connection without a close handshake. */
  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    this.buffer = joined;
    if (this.status === null) {
      const text = new TextDecoder().decode(this.buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      const [status = "", ...fields] = text.slice(0, end).split("\r\n");
      for (const field of fields) {
        const colon = field.indexOf(":");
        if (colon > 0) {
          this.headers.set(
            field.slice(0, colon).trim().toLowerCase(),
            field.slice(colon + 1).trim(),
          );
        }
      }
      this.status = status;
      this.buffer = this.buffer.subarray(new TextEncoder().encode(text.slice(0, end + 4)).length);
    }
    for (;;) {
      const frame = readServerFrame(this.buffer);
      if (frame === null) return;
      this.frames.push(frame.frame);
      this.buffer = this.buffer.subarray(frame.size);
    }
  }
}

/** The first whole frame in `bytes` and its size, or null while it is incomplete. */
function readServerFrame(bytes: Uint8Array): { frame: ServerFrame; size: number } | null {
  if (bytes.length < 2) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const short = (bytes[1] ?? 0) & 0x7f;
  const extra = short === 126 ? 2 : short === 127 ? 8 : 0;
  if (bytes.length < 2 + extra) return null;
  const length =
    extra === 0 ? short : extra === 2 ? view.getUint16(2) : Number(view.getBigUint64(2));
  const size = 2 + extra + length;
  if (bytes.length < size) return null;
  const first = bytes[0] ?? 0;
  return {
    frame: {
      opcode: first & 0x0f,
      fin: (first & 0x80) !== 0,
      rsv1: (first & 0x40) !== 0,
      payload: bytes.slice(2 + extra, size),
    },
    size,
  };
}
