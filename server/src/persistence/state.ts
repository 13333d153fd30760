/**
 * Yjs states as stores handle them whole: merging a document's stored
 * updates into one state, and the client ids a state holds (what the trash
 * records as deleted for a name).
 */
import * as Y from "yjs";

/** The canonical encoding of a document's content: the same content gives the same bytes. */
export function mergedState(updates: readonly Uint8Array[]): Uint8Array {
  const doc = new Y.Doc();
  Y.transact(doc, () => {
    for (const update of updates) Y.applyUpdate(doc, update);
  });
  const state = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return state;
}

/** The Yjs client ids with content in `state`, ascending. */
export function clientsOf(state: Uint8Array): number[] {
  return [...Y.decodeStateVector(Y.encodeStateVectorFromUpdate(state)).keys()].sort(
    (a, b) => a - b,
  );
}

/**
 * Client ids as bytes, 8 per id (two little-endian 32-bit halves, low first):
 * Yjs makes 32-bit ids, but its encoding carries any safe integer.
 */
export function encodeClients(clients: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(clients.length * 8);
  const view = new DataView(bytes.buffer);
  clients.forEach((client, i) => {
    view.setUint32(i * 8, client % 2 ** 32, true);
    view.setUint32(i * 8 + 4, Math.floor(client / 2 ** 32), true);
  });
  return bytes;
}

/** The ids {@link encodeClients} wrote. */
export function decodeClients(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const clients: number[] = [];
  for (let at = 0; at + 8 <= bytes.byteLength; at += 8) {
    clients.push(view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32);
  }
  return clients;
}
