/**
 * "Saved" confirmed by the server ([PERS22]): trackSaves asks the server,
 * over a stateless message on the document's connection, whether everything
 * sent before the question is stored, and reports `saved` only on its answer.
 * Real server, real provider, real LevelDB. The reconnect case, where the
 * provider's own count says "saved" too early, is in
 * test/reliability/crash.test.ts (it needs kill -9).
 */
import { HocuspocusProvider } from "@hocuspocus/provider";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { type SaveState, trackSaves } from "../../editor/src/saves.ts";
import { mintToken } from "../../server/src/auth/tokens.ts";
import { connect, synced } from "../helpers/clients.ts";
import { startServer } from "../helpers/server.ts";

const SECRET = "a-test-secret-that-is-long-enough-0123";
const WAIT = { timeout: 10_000, interval: 5 } as const;

/** The text stored for `name`, read straight from the server's store. */
async function storedText(
  server: Awaited<ReturnType<typeof startServer>>["server"],
  name: string,
): Promise<string> {
  const stored = await server.store.load(name);
  const doc = new Y.Doc();
  for (const update of stored?.updates ?? []) Y.applyUpdate(doc, update);
  return doc.getText("text").toString();
}

function tracked(provider: HocuspocusProvider) {
  const saves = trackSaves(provider);
  onTestFinished(() => saves.destroy());
  const seen: SaveState[] = [];
  saves.on((state) => seen.push(state));
  return { saves, seen };
}

describe("trackSaves", () => {
  it("[PERS22] says saving while a change is unconfirmed, and saved only once the store holds it", async () => {
    const { server, address } = await startServer();
    const provider = connect({ url: address.wsUrl, name: "saves" });
    const { saves, seen } = tracked(provider);
    expect(saves.state).toEqual({ kind: "saved" });
    await synced(provider);

    // Every time it says saved, the store already holds every change made so far.
    const checks: Array<Promise<void>> = [];
    saves.on((state) => {
      if (state.kind !== "saved") return;
      const expected = provider.document.getText("text").toString();
      checks.push(storedText(server, "saves").then((text) => expect(text).toBe(expected)));
    });
    const text = provider.document.getText("text");
    for (let i = 0; i < 20; i++) text.insert(text.length, `${i},`);
    expect(saves.state.kind).toBe("saving");
    await vi.waitFor(() => expect(saves.state).toEqual({ kind: "saved" }), WAIT);
    await Promise.all(checks);
    expect(checks.length).toBeGreaterThan(0);
    expect(seen[0]).toEqual({ kind: "saving", pending: 1 });
    expect(await storedText(server, "saves")).toBe(text.toString());
  });

  it("[PERS22] a document that already has content starts unconfirmed, and changes from the server are not local", async () => {
    const { address } = await startServer();
    const writer = connect({ url: address.wsUrl, name: "existing" });
    await synced(writer);
    writer.document.getText("text").insert(0, "from someone else");

    const doc = new Y.Doc();
    doc.getText("text").insert(0, "kept on this device");
    const reader = connect({ url: address.wsUrl, name: "existing", document: doc });
    const { saves } = tracked(reader);
    expect(saves.state).toEqual({ kind: "saving", pending: 1 });
    await vi.waitFor(() => expect(saves.state).toEqual({ kind: "saved" }), WAIT);
    await vi.waitFor(
      () => expect(writer.document.getText("text").toString()).toContain("kept on this device"),
      WAIT,
    );
    // Receiving the writer's later changes leaves it saved.
    const states: SaveState[] = [];
    saves.on((state) => states.push(state));
    writer.document.getText("text").insert(0, "more ");
    await vi.waitFor(() => expect(doc.getText("text").toString()).toContain("more "), WAIT);
    expect(states).toEqual([]);
    expect(saves.state).toEqual({ kind: "saved" });
  });

  it("[PERS22] while a local copy loads (IndexedDB), it says saving: the copy may hold offline edits", async () => {
    const { address } = await startServer();
    const provider = connect({ url: address.wsUrl, name: "loading" });
    let finish: () => void = () => {};
    const loading = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const saves = trackSaves(provider, { loading });
    onTestFinished(() => saves.destroy());
    await synced(provider);
    expect(saves.state).toEqual({ kind: "saving", pending: 1 });
    // The copy arrives (an edit made offline in an earlier session), then loading ends.
    provider.document.getText("text").insert(0, "from the copy");
    finish();
    await vi.waitFor(() => expect(saves.state).toEqual({ kind: "saved" }), WAIT);
  });

  it("[PERS22] a read-only connection is told its changes are refused, and never says saved", async () => {
    const { address } = await startServer({ config: { authSecret: SECRET } });
    const token = await mintToken({
      secret: SECRET,
      userId: "reader",
      docs: ["read-only"],
      perm: "read",
      ttl: "1h",
    });
    const reader = connect({ url: address.wsUrl, name: "read-only", token });
    const { saves } = tracked(reader);
    await synced(reader);
    const answers: string[] = [];
    reader.on("stateless", ({ payload }: { payload: string }) => answers.push(payload));
    reader.document.getText("text").insert(0, "refused");
    await vi.waitFor(() => expect(answers).toHaveLength(1), WAIT);
    expect(JSON.parse(answers[0] as string)).toMatchObject({ refused: "read-only" });
    expect(saves.state).toEqual({ kind: "saving", pending: 1 });
  });

  it("[PERS22] with the provider's flushDelay batching, the question follows the buffered changes", async () => {
    const { server, address } = await startServer();
    const provider = new HocuspocusProvider({
      url: address.wsUrl,
      name: "batched",
      document: new Y.Doc(),
      // Far longer than the test: only the tracker's flush sends the changes.
      flushDelay: 60_000,
    });
    onTestFinished(() => provider.destroy());
    const { saves } = tracked(provider);
    await synced(provider);
    provider.document.getText("text").insert(0, "buffered");
    await vi.waitFor(() => expect(saves.state).toEqual({ kind: "saved" }), WAIT);
    expect(await storedText(server, "batched")).toBe("buffered");
  });

  it("[PERS22] other stateless messages pass through untouched", async () => {
    const { address, server } = await startServer();
    const received: string[] = [];
    server.hocuspocus.configuration.extensions.push({
      async onStateless({ payload }: { payload: string }) {
        received.push(payload);
      },
    });
    const provider = connect({ url: address.wsUrl, name: "stateless" });
    const { saves } = tracked(provider);
    await synced(provider);
    provider.sendStateless('{"collab":"storedish"}');
    provider.sendStateless("hello");
    provider.document.getText("text").insert(0, "x");
    await vi.waitFor(() => expect(saves.state).toEqual({ kind: "saved" }), WAIT);
    await vi.waitFor(() => expect(received).toContain("hello"), WAIT);
    expect(received).toContain('{"collab":"storedish"}');
  });
});
