/**
 * [EDIT11] Who repairs malformed tables (editor/src/table-repairer.ts): of the
 * editors present that may edit, the one with the lowest awareness client id;
 * decided again on every awareness change, so a departure hands the repairs
 * over at once. On real y-protocols awareness, exchanging updates by hand.
 */
import { describe, expect, it } from "vitest";
import {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from "y-protocols/awareness";
import * as Y from "yjs";
import { EDITING_FIELD, isRepairer, watchRepairer } from "../../editor/src/table-repairer.ts";

describe("[EDIT11] isRepairer", () => {
  const states = (entries: Array<[number, Record<string, unknown>]>) => new Map(entries);

  it("alone, an editor that may edit repairs, and one that may not never does", () => {
    expect(isRepairer(states([]), 5, true)).toBe(true);
    expect(isRepairer(states([[5, { [EDITING_FIELD]: true }]]), 5, true)).toBe(true);
    expect(isRepairer(states([]), 5, false)).toBe(false);
  });

  it("the lowest id among those that may edit repairs; readers and higher ids do not count", () => {
    const present = states([
      [3, { [EDITING_FIELD]: false }],
      [5, { [EDITING_FIELD]: true }],
      [7, { [EDITING_FIELD]: true }],
      [9, {}],
    ]);
    expect(isRepairer(present, 5, true)).toBe(true);
    expect(isRepairer(present, 7, true)).toBe(false);
    expect(isRepairer(present, 1, true)).toBe(true);
    // Only a strict `true` says an editor may edit.
    expect(isRepairer(states([[2, { [EDITING_FIELD]: "true" }]]), 5, true)).toBe(true);
  });
});

/** An editor's awareness, with client id `id`, saying whether it may edit. */
function presence(id: number, editing: boolean): Awareness {
  const doc = new Y.Doc();
  doc.clientID = id;
  const awareness = new Awareness(doc);
  awareness.setLocalStateField(EDITING_FIELD, editing);
  return awareness;
}

/** Sends `from`'s own state to `to`, as the provider does. */
function send(from: Awareness, to: Awareness): void {
  applyAwarenessUpdate(to, encodeAwarenessUpdate(from, [from.clientID]), "remote");
}

describe("[EDIT11] watchRepairer", () => {
  it("hands the repairs over at once when the editor that repaired leaves, or may no longer edit", () => {
    const ann = presence(1, true);
    const bob = presence(2, true);
    send(ann, bob);
    let takeovers = 0;
    const decide = () => isRepairer(bob.getStates(), bob.clientID, true);
    const stop = watchRepairer(bob, decide, () => takeovers++);
    expect(decide()).toBe(false);

    // Ann leaves (her state is removed, as on a disconnect or a timeout): Bob takes over.
    removeAwarenessStates(bob, [ann.clientID], "timeout");
    expect(takeovers).toBe(1);
    expect(decide()).toBe(true);

    // Ann is back (her state, renewed, reaches Bob again): she repairs. When she may no
    // longer edit, Bob takes over again.
    ann.setLocalStateField(EDITING_FIELD, true);
    send(ann, bob);
    expect(decide()).toBe(false);
    ann.setLocalStateField(EDITING_FIELD, false);
    send(ann, bob);
    expect(takeovers).toBe(2);

    // Changes that keep Bob the one that repairs report nothing more.
    bob.setLocalStateField("user", { name: "Bob" });
    expect(takeovers).toBe(2);

    stop();
    ann.setLocalStateField(EDITING_FIELD, true);
    send(ann, bob);
    ann.setLocalStateField(EDITING_FIELD, false);
    send(ann, bob);
    removeAwarenessStates(bob, [ann.clientID], "timeout");
    expect(takeovers).toBe(2);
    for (const a of [ann, bob]) a.destroy();
  });

  it("compares the awareness's own id, not the document's (which Yjs may change)", () => {
    const ann = presence(10, true);
    const bob = presence(20, true);
    send(bob, ann);
    // Yjs gives Ann's document a new id above Bob's; her awareness keeps 10.
    ann.doc.clientID = 30;
    expect(isRepairer(ann.getStates(), ann.clientID, true)).toBe(true);
    expect(isRepairer(bob.getStates(), bob.clientID, true)).toBe(true);
    send(ann, bob);
    expect(isRepairer(bob.getStates(), bob.clientID, true)).toBe(false);
    for (const a of [ann, bob]) a.destroy();
  });
});
