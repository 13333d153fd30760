/**
 * y-websocket compatibility: the plain y-websocket protocol (y-protocols sync
 * and awareness, one document per socket, no document address in messages)
 * spoken at `/yjs/<URL-encoded name>?token=...`, by translation at the edge.
 * The core only ever sees Hocuspocus frames, so the frame guard, durable
 * acknowledgements, presence re-clocking, the name guard and authentication
 * (Hocuspocus' `onAuthenticate`) apply to y-websocket clients unchanged.
 *
 * Client to core:
 *
 * | y-websocket client sends              | the core receives                                    |
 * | ------------------------------------- | ---------------------------------------------------- |
 * | (the socket opens)                    | Auth 2 / Token 0 with `?token=` ("" when absent)     |
 * | Sync 0, QueryAwareness 3              | the same frame after the document address            |
 * | Awareness 1                           | the same, without echoes (see below)                 |
 * | Auth 2 or any other type, empty frame | nothing: the socket closes with 1002                 |
 *
 * Core to client (the document address is stripped first):
 *
 * | Hocuspocus sends                             | y-websocket client gets                                |
 * | -------------------------------------------- | ------------------------------------------------------ |
 * | Sync 0, Awareness 1, QueryAwareness 3        | the same message                                       |
 * | SyncReply 4 (the server's own SyncStep1)     | Sync 0                                                 |
 * | Auth 2 / PermissionDenied 1 + reason         | Auth 2 / permissionDenied 0 + reason, then close 4403  |
 * |   ... with reason `document-deleted: ...`    | the same, then close 4410                              |
 * |   ... with reason `document-busy: ...`       | the same, then close 4503 (retried)                    |
 * | Auth 2 / Authenticated 2, Auth 2 / Token 0   | dropped                                                |
 * | Stateless 5, BroadcastStateless 6            | dropped                                                |
 * | SyncStatus 8 (the durable acknowledgement)   | dropped                                                |
 * | Close 7 + reason (the document was closed)   | close 4500 + reason                                    |
 * | Close 7 + `document-deleted` (deleted)       | close 4410 + reason                                    |
 * | Close 7 + `Connection Timeout` (idle)        | close 4508 + reason                                    |
 * | Ping 9, Pong 10, anything else               | dropped                                                |
 * | socket close 4408 (Hocuspocus' idle timeout) | close 4508, same reason                                |
 *
 * y-websocket 3 stops reconnecting after a close in 4400-4499 and retries on
 * every other code, so a refusal (4403) and a deleted document (4410) are final,
 * and a client holding a deleted document does not come back at once and
 * re-create it, while a closed document and an idle timeout are retried
 * (4500, 4508). Every close reason is cut to the 123
 * bytes a close frame allows.
 *
 * Awareness echoes: the y-websocket client re-sends every awareness change it
 * applies, whoever made it. A stock y-websocket server relays clocks unchanged,
 * so the echo is never newer than what the server has and dies there. This
 * server gives each connection clocks of its own (documents/presence.ts), so an
 * echo would come back newer every time: it would circle forever, and a state
 * echoed after its client left would bring that client back. So only the
 * client's own states go in ({@link AwarenessEchoFilter}).
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { Close, type CloseCode, closeReason, Refusal } from "../errors.ts";
import {
  type AwarenessEntry,
  decodeAwarenessEntries,
  encodeAwarenessEntries,
} from "./awareness.ts";
import { AuthType, MessageType } from "./messages.ts";

/** Where y-websocket clients connect: `/yjs/<URL-encoded document name>`. */
export const Y_WEBSOCKET_PATH = "/yjs/";

/** Top-level message types of y-websocket (the `messageSync`... constants of its client). */
export const YMessageType = { Sync: 0, Awareness: 1, Auth: 2, QueryAwareness: 3 } as const;

/** Sub-types of a y-protocols auth message. */
export const YAuthType = { PermissionDenied: 0 } as const;

/** Close codes only y-websocket clients see. */
export const YWebSocketClose = {
  /** The document was refused (Hocuspocus' permission-denied); y-websocket does not retry. */
  permissionDenied: { code: 4403, reason: "permission-denied" },
  /** The server closed the document (Hocuspocus' Close message); y-websocket retries. */
  documentClosed: { code: 4500, reason: "document closed by the server" },
  /** Hocuspocus' idle timeout (its 4408), moved out of the range y-websocket treats as final. */
  timeout: { code: 4508, reason: "connection timeout" },
  /** The document is being deleted or restored this moment; y-websocket retries. */
  busy: { code: 4503, reason: "document-busy" },
} as const satisfies Record<string, CloseCode>;

/** Hocuspocus' ConnectionTimeout close code. */
const HOCUSPOCUS_TIMEOUT = 4408;
/**
 * The reason of Hocuspocus' ConnectionTimeout. A timed-out connection first
 * gets a Close message with it for each open document, then the socket close.
 */
const HOCUSPOCUS_TIMEOUT_REASON = "Connection Timeout";

/** The protocol an upgrade asked for, by its path. */
export type DialectChoice =
  | { readonly kind: "hocuspocus" }
  | { readonly kind: "y-websocket"; readonly documentName: string; readonly token: string }
  /** A `/yjs/` path whose name is empty or does not decode: answered with HTTP 400. */
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * Picks the dialect from a request target (`request.url`: path and query).
 * `/yjs/<name>` is y-websocket, with the name URL-decoded and the token taken
 * from `?token=`; every other path is the Hocuspocus protocol. The raw target
 * is read, not a normalised URL, so a name arrives exactly as encoded.
 *
 * @example chooseDialect("/yjs/my%20doc?token=t") // { kind: "y-websocket", documentName: "my doc", token: "t" }
 */
export function chooseDialect(target: string): DialectChoice {
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  if (!path.startsWith(Y_WEBSOCKET_PATH)) return { kind: "hocuspocus" };
  let documentName: string;
  try {
    documentName = decodeURIComponent(path.slice(Y_WEBSOCKET_PATH.length));
  } catch {
    return { kind: "invalid", reason: "the document name in the path is not valid URL encoding" };
  }
  if (documentName === "") return { kind: "invalid", reason: "the document name is empty" };
  // NUL separates the name from a session id in a Hocuspocus address; it would open another document.
  if (documentName.includes("\0"))
    return { kind: "invalid", reason: "the document name contains NUL" };
  const token =
    query === -1 ? "" : (new URLSearchParams(target.slice(query + 1)).get("token") ?? "");
  return { kind: "y-websocket", documentName, token };
}

/** A client frame translated for the core, or the close for a frame the dialect refuses. */
export type Incoming =
  | { readonly kind: "frame"; readonly frame: Uint8Array }
  /** Nothing for the core (an awareness message that only echoed the server). */
  | { readonly kind: "drop" }
  | { readonly kind: "reject"; readonly close: CloseCode };

/** What to do with one message the core sends. */
export type Outgoing =
  | { readonly kind: "send"; readonly frame: Uint8Array }
  | { readonly kind: "drop" }
  /** Send `last` (when not null), then close the socket. */
  | { readonly kind: "close"; readonly last: Uint8Array | null; readonly close: CloseCode };

/** How one connection's frames are translated between its client and the core. */
export interface FrameTranslator {
  /** The protocol's name, for the connection log. */
  readonly name: string;
  /** Frames the core receives when the socket opens, before any of the client's. */
  readonly opening: readonly Uint8Array[];
  /** One binary frame from the client. */
  incoming(frame: Uint8Array): Incoming;
  /** One message from the core. */
  outgoing(message: Uint8Array): Outgoing;
  /** The close the client sees when the core closes the socket with `close`. */
  closing(close: CloseCode): CloseCode;
}

/** The translator for a y-websocket client of `documentName` that presented `token`. */
export function yWebSocketTranslator(documentName: string, token: string): FrameTranslator {
  const address = encodeAddress(documentName);
  const echoes = new AwarenessEchoFilter();
  return {
    name: "y-websocket",
    opening: [authFrame(address, token)],
    incoming(frame) {
      const own = echoes.incoming(frame);
      return own === null ? { kind: "drop" } : toHocuspocus(address, own);
    },
    outgoing(message) {
      const outgoing = fromHocuspocus(message);
      if (outgoing.kind === "send") echoes.outgoing(outgoing.frame);
      return outgoing;
    },
    closing: yWebSocketClose,
  };
}

/** A document name as the `varString` address that starts every Hocuspocus message. */
export function encodeAddress(documentName: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, documentName);
  return encoding.toUint8Array(encoder);
}

/** The Hocuspocus Auth message a provider sends first (`writeAuthentication` of @hocuspocus/common). */
export function authFrame(address: Uint8Array, token: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeUint8Array(encoder, address);
  encoding.writeVarUint(encoder, MessageType.Auth);
  encoding.writeVarUint(encoder, AuthType.Token);
  encoding.writeVarString(encoder, token);
  return encoding.toUint8Array(encoder);
}

/**
 * A y-websocket client frame as the Hocuspocus message for `address`. Only
 * the type is checked here; the frame guard parses the rest.
 */
export function toHocuspocus(address: Uint8Array, frame: Uint8Array): Incoming {
  let type: number;
  try {
    type = decoding.readVarUint(decoding.createDecoder(frame));
  } catch {
    return reject("message type is missing or not a valid integer");
  }
  if (
    type !== YMessageType.Sync &&
    type !== YMessageType.Awareness &&
    type !== YMessageType.QueryAwareness
  )
    return reject(`y-websocket message type ${type} is not accepted from clients`);
  const prefixed = new Uint8Array(address.length + frame.length);
  prefixed.set(address);
  prefixed.set(frame, address.length);
  return { kind: "frame", frame: prefixed };
}

/** A Hocuspocus message (for the connection's one document) as what its y-websocket client gets. */
export function fromHocuspocus(message: Uint8Array): Outgoing {
  try {
    const decoder = decoding.createDecoder(message);
    const addressLength = decoding.readVarUint(decoder);
    decoder.pos += addressLength;
    const start = decoder.pos;
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case MessageType.Sync:
      case MessageType.Awareness:
      case MessageType.QueryAwareness:
        // The numbers are y-websocket's too: the message passes unchanged.
        return { kind: "send", frame: message.subarray(start) };
      case MessageType.SyncReply: {
        const body = message.subarray(decoder.pos);
        const frame = new Uint8Array(1 + body.length);
        frame[0] = YMessageType.Sync;
        frame.set(body, 1);
        return { kind: "send", frame };
      }
      case MessageType.Auth: {
        if (decoding.readVarUint(decoder) !== AuthType.PermissionDenied) return { kind: "drop" };
        const reason = decoding.readVarString(decoder) || YWebSocketClose.permissionDenied.reason;
        // The state of a deleted document (documents/deleted-state.ts): as final as a deletion.
        // Busy (a deletion or restore this moment): a close the client retries.
        const code = reason.startsWith(Close.documentDeleted.reason)
          ? Close.documentDeleted.code
          : reason.startsWith(Refusal.documentBusy)
            ? YWebSocketClose.busy.code
            : YWebSocketClose.permissionDenied.code;
        return {
          kind: "close",
          last: permissionDeniedFrame(reason),
          close: { code, reason: closeReason(reason) },
        };
      }
      case MessageType.Close: {
        const reason = decoding.readVarString(decoder) || YWebSocketClose.documentClosed.reason;
        const code =
          reason === Close.documentDeleted.reason
            ? Close.documentDeleted.code
            : reason === HOCUSPOCUS_TIMEOUT_REASON
              ? YWebSocketClose.timeout.code
              : YWebSocketClose.documentClosed.code;
        return { kind: "close", last: null, close: { code, reason: closeReason(reason) } };
      }
      default:
        return { kind: "drop" };
    }
  } catch {
    // The core only sends messages it encoded itself; one that does not parse has no reader here.
    return { kind: "drop" };
  }
}

/** The close a y-websocket client sees for a close the core makes. */
export function yWebSocketClose(close: CloseCode): CloseCode {
  return close.code === HOCUSPOCUS_TIMEOUT
    ? { ...close, code: YWebSocketClose.timeout.code }
    : close;
}

/** y-protocols' auth message: `messageAuth, permissionDenied, reason`. */
function permissionDeniedFrame(reason: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, YMessageType.Auth);
  encoding.writeVarUint(encoder, YAuthType.PermissionDenied);
  encoding.writeVarString(encoder, reason);
  return encoding.toUint8Array(encoder);
}

function reject(detail: string): Incoming {
  return {
    kind: "reject",
    close: { code: Close.protocolError.code, reason: `protocol error: ${detail}` },
  };
}

/**
 * Keeps a y-websocket client's awareness messages to its own states. Its own
 * clients are those it announces before the server has sent them; every other
 * entry is a relay of a state the server sent it, and so is an entry equal
 * (clock and state) to the last one the server sent for that client: the echo
 * of its own state. Works on y-websocket frames; anything that is not a
 * well-formed awareness message passes unchanged (the frame guard judges it).
 */
export class AwarenessEchoFilter {
  private readonly own = new Set<number>();
  /** The last entry sent to the client for each client id. */
  private readonly sent = new Map<number, { clock: number; state: string }>();

  /** Notes the states in a frame sent to the client. */
  outgoing(frame: Uint8Array): void {
    for (const entry of awarenessEntries(frame) ?? []) {
      this.sent.set(entry.client, { clock: entry.clock, state: entry.state });
    }
  }

  /** A frame from the client without echoes: the frame itself when nothing was removed, null when nothing is left. */
  incoming(frame: Uint8Array): Uint8Array | null {
    const entries = awarenessEntries(frame);
    if (entries === null) return frame;
    const kept = entries.filter((entry) => {
      const sent = this.sent.get(entry.client);
      if (!this.own.has(entry.client)) {
        if (sent !== undefined) return false;
        this.own.add(entry.client);
        return true;
      }
      return sent?.clock !== entry.clock || sent.state !== entry.state;
    });
    if (kept.length === entries.length) return frame;
    return kept.length === 0 ? null : awarenessFrame(kept);
  }
}

/** The entries of a y-websocket awareness frame, or null when it is not a well-formed one. */
function awarenessEntries(frame: Uint8Array): AwarenessEntry[] | null {
  if (frame[0] !== YMessageType.Awareness) return null;
  try {
    const outer = decoding.createDecoder(frame);
    decoding.readVarUint(outer);
    const update = decoding.readVarUint8Array(outer);
    return decoding.hasContent(outer) ? null : decodeAwarenessEntries(update);
  } catch {
    return null;
  }
}

function awarenessFrame(entries: readonly AwarenessEntry[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, YMessageType.Awareness);
  encoding.writeVarUint8Array(encoder, encodeAwarenessEntries(entries));
  return encoding.toUint8Array(encoder);
}
