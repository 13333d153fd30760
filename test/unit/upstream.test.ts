/**
 * Upgrade guards for patches that rely on a dependency's private details
 * (docs/patches.md). Each fails when an upgrade moves what the patch reaches
 * into, so the patch is revisited instead of silently doing nothing.
 */
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { createLogger } from "../../server/src/observability/logger.ts";
import { DurablePersistence } from "../../server/src/persistence/extension.ts";
import { MemoryStore } from "../../server/src/persistence/memory.ts";

describe("upstream guards", () => {
  it("[PERS10] yjs 13.6 keeps a document's update listeners in the Map `_observers` (applyQuietly sets them aside)", () => {
    const doc = new Y.Doc();
    const listener = () => {};
    doc.on("update", listener);
    const observers = (doc as unknown as { _observers?: unknown })._observers;
    expect(observers).toBeInstanceOf(Map);
    expect((observers as Map<string, Set<unknown>>).get("update")?.has(listener)).toBe(true);
  });

  it("[PERS10] a document loads its stored state without emitting update events, yet holds it all", async () => {
    const store = new MemoryStore();
    const source = new Y.Doc();
    source.getText("t").insert(0, "stored text");
    await store.append("doc", Y.encodeStateAsUpdate(source));
    const persistence = new DurablePersistence({
      store,
      logger: createLogger("silent"),
      compactMaxEntries: 1000,
      compactMaxBytes: 1 << 20,
      maxDocuments: 10,
    });
    const document = new Y.Doc() as Y.Doc & { name: string };
    let emitted = 0;
    document.on("update", () => emitted++);
    const instance = { documents: new Map(), loadingDocuments: new Map() };
    await persistence.onLoadDocument({
      document,
      documentName: "doc",
      instance,
    } as unknown as Parameters<DurablePersistence["onLoadDocument"]>[0]);
    expect(document.getText("t").toString()).toBe("stored text");
    expect(emitted).toBe(0);
    document.getText("t").insert(0, "new ");
    expect(emitted).toBe(1);
  });
});
