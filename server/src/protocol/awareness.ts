/**
 * The y-protocols awareness update: a count, then per client its id, clock
 * and state as a JSON string. Read and written here without parsing the
 * JSON, for code that rewrites clocks or filters clients on the way through.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";

/** One client's entry; decoded entries are fresh objects, free to change before re-encoding. */
export interface AwarenessEntry {
  client: number;
  clock: number;
  /** The state as sent: JSON text, `null` for a removed client. */
  state: string;
}

/** The entries of an awareness update; throws when it is malformed or has bytes left over. */
export function decodeAwarenessEntries(update: Uint8Array): AwarenessEntry[] {
  const decoder = decoding.createDecoder(update);
  const entries: AwarenessEntry[] = [];
  for (let count = decoding.readVarUint(decoder); count > 0; count--) {
    const client = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    entries.push({ client, clock, state: decoding.readVarString(decoder) });
  }
  if (decoding.hasContent(decoder)) throw new RangeError("awareness update has trailing bytes");
  return entries;
}

export function encodeAwarenessEntries(entries: readonly AwarenessEntry[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const { client, clock, state } of entries) {
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, state);
  }
  return encoding.toUint8Array(encoder);
}
