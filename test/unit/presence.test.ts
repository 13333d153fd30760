import { describe, expect, it } from "vitest";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from "y-protocols/awareness";
import * as Y from "yjs";
import { PresenceClocks } from "../../server/src/documents/presence.ts";

function peer(clientID: number): Awareness {
  const doc = new Y.Doc();
  doc.clientID = clientID;
  return new Awareness(doc);
}

describe("presence clocks", () => {
  it("[SYNC4] a re-announced state the server has seen is raised past it", () => {
    const server = peer(0);
    server.setLocalState(null);
    const alice = peer(7);
    alice.setLocalState({ user: "Alice" });
    const announce = encodeAwarenessUpdate(alice, [7]);
    applyAwarenessUpdate(server, announce, null);
    server.states.delete(7); // the server removed Alice when her connection closed
    // Unchanged, the same announcement is ignored as not newer.
    const clocks = new PresenceClocks(() => 0);
    const raised = clocks.incoming(announce, server);
    expect(raised).not.toBeNull();
    applyAwarenessUpdate(server, raised ?? announce, null);
    expect(server.states.get(7)).toEqual({ user: "Alice" });
    // A state the server has not seen yet passes unchanged.
    const bob = peer(8);
    bob.setLocalState({ user: "Bob" });
    expect(clocks.incoming(encodeAwarenessUpdate(bob, [8]), server)).toBeNull();
  });

  it("[SYNC4] each connection gets clocks in its own increasing sequence starting at the wall clock", () => {
    const alice = peer(7);
    alice.setLocalState({ user: "Alice" });
    const update = encodeAwarenessUpdate(alice, [7]);
    const firstConnection = new PresenceClocks(() => 1_000);
    const viewer = peer(9);
    applyAwarenessUpdate(viewer, firstConnection.outgoing("doc", update), null);
    applyAwarenessUpdate(viewer, firstConnection.outgoing("doc", update), null);
    expect(viewer.meta.get(7)?.clock).toBe(1_003);
    // The viewer drops its connection and removes Alice locally (the clock stays).
    viewer.states.delete(7);
    const secondConnection = new PresenceClocks(() => 2_000);
    applyAwarenessUpdate(viewer, secondConnection.outgoing("doc", update), null);
    expect(viewer.states.get(7)).toEqual({ user: "Alice" });
  });
});
