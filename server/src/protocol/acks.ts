/**
 * Recognises Hocuspocus' sync-status acknowledgement among outgoing messages
 * without decoding the rest: `varString address, varUint type` is enough.
 */
import * as decoding from "lib0/decoding";
import { MessageType, splitAddress } from "./messages.ts";

const utf8 = new TextDecoder();

/** The document an outgoing message acknowledges, or null when it is not an acknowledgement. */
export function acknowledgedDocument(message: Uint8Array): string | null {
  try {
    const decoder = decoding.createDecoder(message);
    const length = decoding.readVarUint(decoder);
    const start = decoder.pos;
    decoder.pos += length;
    if (decoding.readVarUint(decoder) !== MessageType.SyncStatus) return null;
    return splitAddress(utf8.decode(message.subarray(start, start + length))).documentName;
  } catch {
    return null;
  }
}
