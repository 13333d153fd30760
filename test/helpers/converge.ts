/**
 * The one convergence check used by every multi-client test: all documents
 * have the same content, state vector and delete set, and so does a document
 * rebuilt from the given stored updates (when given).
 */
import { expect } from "vitest";
import * as Y from "yjs";

/** A comparable fingerprint of a document: its full state and its JSON content. */
function fingerprint(doc: Y.Doc): { stateVector: number[]; deleteSet: number[]; content: unknown } {
  const deleteSet = Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc));
  return {
    stateVector: [...Y.encodeStateVector(doc)],
    deleteSet: [...deleteSet],
    content: Object.fromEntries(
      [...doc.share.keys()].sort().map((key) => {
        const type = doc.share.get(key);
        return [key, type instanceof Y.AbstractType ? type.toJSON() : null];
      }),
    ),
  };
}

/**
 * Gives every root type the class some doc knows it by. A document that only
 * received updates (the server's, or one rebuilt from storage) holds untyped
 * roots until someone asks for them by type; without this its content would
 * compare as undefined.
 */
function materialise(docs: readonly Y.Doc[]): void {
  const getters = new Map<string, (doc: Y.Doc) => unknown>();
  for (const doc of docs) {
    for (const [key, type] of doc.share) {
      if (type instanceof Y.Text) getters.set(key, (d) => d.getText(key));
      else if (type instanceof Y.XmlFragment) getters.set(key, (d) => d.getXmlFragment(key));
      else if (type instanceof Y.Map) getters.set(key, (d) => d.getMap(key));
      else if (type instanceof Y.Array) getters.set(key, (d) => d.getArray(key));
    }
  }
  for (const doc of docs) for (const get of getters.values()) get(doc);
}

/** Asserts that every doc (and the doc rebuilt from `stored`, if given) has converged. */
export function expectConverged(docs: readonly Y.Doc[], stored?: readonly Uint8Array[]): void {
  const all = [...docs];
  if (stored !== undefined) {
    const rebuilt = new Y.Doc();
    Y.transact(rebuilt, () => {
      for (const update of stored) Y.applyUpdate(rebuilt, update);
    });
    all.push(rebuilt);
  }
  materialise(all);
  const [first, ...rest] = all.map(fingerprint);
  rest.forEach((other, i) => {
    const which = i + 1 === docs.length ? "the document rebuilt from storage" : `document ${i + 1}`;
    expect(other, `${which} differs from document 0`).toEqual(first);
  });
}

/** True when every doc has converged (for vi.waitFor loops). */
export function converged(docs: readonly Y.Doc[]): boolean {
  materialise(docs);
  const [first, ...rest] = docs.map((d) => JSON.stringify(fingerprint(d)));
  return rest.every((other) => other === first);
}
