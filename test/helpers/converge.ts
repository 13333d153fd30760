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

/** Asserts that every doc (and the doc rebuilt from `stored`, if given) has converged. */
export function expectConverged(docs: readonly Y.Doc[], stored?: readonly Uint8Array[]): void {
  const all = [...docs];
  if (stored !== undefined) {
    const rebuilt = new Y.Doc();
    Y.transact(rebuilt, () => {
      for (const update of stored) Y.applyUpdate(rebuilt, update);
    });
    // Materialise every root type the live docs use, so content compares equal.
    for (const [key, type] of docs[0]?.share ?? []) {
      if (type instanceof Y.Text) rebuilt.getText(key);
      else if (type instanceof Y.XmlFragment) rebuilt.getXmlFragment(key);
      else if (type instanceof Y.Map) rebuilt.getMap(key);
      else if (type instanceof Y.Array) rebuilt.getArray(key);
    }
    all.push(rebuilt);
  }
  const [first, ...rest] = all.map(fingerprint);
  for (const other of rest) expect(other).toEqual(first);
}

/** True when every doc has converged (for vi.waitFor loops). */
export function converged(docs: readonly Y.Doc[]): boolean {
  const [first, ...rest] = docs.map((d) => JSON.stringify(fingerprint(d)));
  return rest.every((other) => other === first);
}
