/**
 * Reads just the head of an outgoing message (`varString address, varUint
 * type`), which is all the core needs to hold acknowledgements and re-clock
 * awareness, without decoding the body.
 */
import * as decoding from "lib0/decoding";
import { MessageType, splitAddress } from "./messages.ts";

const utf8 = new TextDecoder();

export interface MessageHead {
  readonly documentName: string;
  readonly type: number;
}

/** The document and type of an outgoing message, or null when it has no such head (a bare Ping). */
export function messageHead(message: Uint8Array): MessageHead | null {
  try {
    const decoder = decoding.createDecoder(message);
    const length = decoding.readVarUint(decoder);
    const start = decoder.pos;
    decoder.pos += length;
    const type = decoding.readVarUint(decoder);
    if (type !== MessageType.SyncStatus && type !== MessageType.Awareness)
      return { documentName: "", type };
    return {
      documentName: splitAddress(utf8.decode(message.subarray(start, start + length))).documentName,
      type,
    };
  } catch {
    return null;
  }
}
