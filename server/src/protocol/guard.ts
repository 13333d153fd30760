/**
 * The frame guard: checks every incoming frame before Hocuspocus sees it.
 *
 * Hocuspocus and y-protocols are lenient with bad input: y-protocols catches
 * the error of a truncated Yjs update and Hocuspocus then acknowledges it, and
 * a frame whose address does not decode closes the socket as "unauthorized".
 * We parse the whole frame here, so a malformed message closes its own socket
 * with a protocol-error code and a reason that says what was wrong, and never
 * reaches the document.
 */
import * as decoding from "lib0/decoding";
import * as Y from "yjs";
import { Close, type CloseCode } from "../errors.ts";
import { AuthType, MessageType, SyncType, splitAddress } from "./messages.ts";

/** What the guard decided about one frame. */
export type FrameVerdict =
  | {
      readonly kind: "message";
      /** The document name and, after a NUL, the provider's session id. */
      readonly address: string;
      readonly documentName: string;
      readonly type: number;
      /**
       * The Yjs update a sync message carries (sync step 2 or update), with
       * its y-protocols sync type; null for any other message. Hocuspocus
       * answers each update with one acknowledgement (a SyncStatus message),
       * in order.
       */
      readonly update: SyncUpdate | null;
    }
  /** A connection-level Pong (a single byte, no address): dropped, never forwarded. */
  | { readonly kind: "pong" }
  | { readonly kind: "reject"; readonly close: CloseCode };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Longest address accepted: a 255-byte name plus a separator and a session id. */
const MAX_ADDRESS_BYTES = 1024;

class Malformed extends Error {
  readonly close: CloseCode;

  constructor(close: CloseCode, detail: string) {
    super(detail);
    this.close = close;
  }
}

function protocolError(detail: string): never {
  throw new Malformed(
    { code: Close.protocolError.code, reason: `protocol error: ${detail}` },
    detail,
  );
}

function invalidPayload(detail: string): never {
  throw new Malformed(
    { code: Close.invalidPayload.code, reason: `invalid payload: ${detail}` },
    detail,
  );
}

function readString(
  decoder: decoding.Decoder,
  what: string,
  maxBytes = Number.POSITIVE_INFINITY,
): string {
  const bytes = readBytes(decoder, what);
  if (bytes.length > maxBytes) protocolError(`${what} is longer than ${maxBytes} bytes`);
  try {
    return utf8.decode(bytes);
  } catch {
    return invalidPayload(`${what} is not valid UTF-8`);
  }
}

function readBytes(decoder: decoding.Decoder, what: string): Uint8Array {
  const length = readUint(decoder, `${what} length`);
  if (length > decoder.arr.length - decoder.pos) protocolError(`${what} is truncated`);
  return decoding.readUint8Array(decoder, length);
}

function readUint(decoder: decoding.Decoder, what: string): number {
  if (!decoding.hasContent(decoder)) protocolError(`${what} is missing`);
  try {
    return decoding.readVarUint(decoder);
  } catch {
    return protocolError(`${what} is not a valid integer`);
  }
}

function checkUpdate(update: Uint8Array): void {
  try {
    Y.decodeUpdate(update);
  } catch {
    protocolError("Yjs update does not decode (truncated or corrupt)");
  }
}

/** A Yjs update carried by a sync message. */
export interface SyncUpdate {
  /** `SyncType.Step2` or `SyncType.Update`. */
  readonly syncType: number;
  readonly bytes: Uint8Array;
}

/** Checks a sync message; returns the update it carries, if any. */
function checkSync(decoder: decoding.Decoder): SyncUpdate | null {
  const syncType = readUint(decoder, "sync type");
  switch (syncType) {
    case SyncType.Step1: {
      const stateVector = readBytes(decoder, "state vector");
      try {
        Y.decodeStateVector(stateVector);
      } catch {
        protocolError("state vector does not decode");
      }
      return null;
    }
    case SyncType.Step2:
    case SyncType.Update: {
      const bytes = readBytes(decoder, "Yjs update");
      checkUpdate(bytes);
      return { syncType, bytes };
    }
    default:
      protocolError(`unknown sync message type ${syncType}`);
  }
}

function checkAwareness(decoder: decoding.Decoder): void {
  const update = decoding.createDecoder(readBytes(decoder, "awareness update"));
  const count = readUint(update, "awareness client count");
  for (let i = 0; i < count; i++) {
    readUint(update, "awareness client id");
    readUint(update, "awareness clock");
    const state = readString(update, "awareness state");
    try {
      JSON.parse(state);
    } catch {
      invalidPayload("awareness state is not JSON");
    }
  }
  // The presence code decodes the update again and throws on leftovers (protocol/awareness.ts).
  if (decoding.hasContent(update)) protocolError("awareness update has trailing bytes");
}

/** Checks a message's body; returns the Yjs update it carries, if any. */
function checkBody(type: number, decoder: decoding.Decoder): SyncUpdate | null {
  switch (type) {
    case MessageType.Sync:
    case MessageType.SyncReply:
      return checkSync(decoder);
    case MessageType.Awareness:
      checkAwareness(decoder);
      return null;
    case MessageType.Auth: {
      const authType = readUint(decoder, "auth type");
      if (authType !== AuthType.Token)
        protocolError(`clients may only send auth tokens, got auth type ${authType}`);
      readString(decoder, "token");
      if (decoding.hasContent(decoder)) readString(decoder, "provider version");
      return null;
    }
    case MessageType.Stateless:
      readString(decoder, "stateless payload");
      return null;
    case MessageType.QueryAwareness:
    case MessageType.Close:
      return null;
    default:
      protocolError(`message type ${type} is not accepted from clients`);
  }
}

/**
 * Parses one binary frame completely and says whether to forward it.
 * Never throws: a frame that does not parse comes back as a `reject` verdict
 * carrying the close code and reason to send.
 */
export function inspectFrame(frame: Uint8Array): FrameVerdict {
  if (frame.length === 1 && frame[0] === MessageType.Pong) return { kind: "pong" };
  const decoder = decoding.createDecoder(frame);
  try {
    const address = readString(decoder, "document address", MAX_ADDRESS_BYTES);
    const type = readUint(decoder, "message type");
    const update = checkBody(type, decoder);
    return {
      kind: "message",
      address,
      documentName: splitAddress(address).documentName,
      type,
      update,
    };
  } catch (error) {
    if (error instanceof Malformed) return { kind: "reject", close: error.close };
    return {
      kind: "reject",
      close: { code: Close.protocolError.code, reason: "protocol error: unreadable message" },
    };
  }
}
