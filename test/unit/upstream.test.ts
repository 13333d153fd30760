/**
 * Upgrade guards for patches that rely on a dependency's private details
 * (docs/patches.md). Each fails when an upgrade moves what the patch reaches
 * into, so the patch is revisited instead of silently doing nothing.
 */
import { type AddressInfo, createServer, type Socket } from "node:net";
import { HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { type Extension, Hocuspocus } from "@hocuspocus/server";
import type { Node as PMNode } from "@tiptap/pm/model";
import { EditorState } from "@tiptap/pm/state";
import { tableEditing } from "@tiptap/pm/tables";
import { prosemirrorJSONToYXmlFragment, ySyncPluginKey } from "@tiptap/y-tiptap";
import { describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { commentMarkKey } from "../../editor/src/comments/model.ts";
import { repairsWhen } from "../../editor/src/extensions.ts";
import { schema } from "../../server/src/documents/schema.ts";
import { createLogger } from "../../server/src/observability/logger.ts";
import { DurablePersistence } from "../../server/src/persistence/extension.ts";
import { MemoryStore } from "../../server/src/persistence/memory.ts";
import { skipUnusedUpdateHooks } from "../../server/src/upstream/hocuspocus.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { startServer } from "../helpers/server.ts";

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

describe("@hocuspocus/provider 4.8 and ws", () => {
  it("a provider socket destroyed while connecting leaves ws' `error` event without a listener of its own (why tests use nodeSocket)", async () => {
    // A TCP server on loopback that accepts and never answers, so the handshake stays pending.
    const sockets = new Set<Socket>();
    const server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const errorsSeen: Array<{ message: string; listeners: number }> = [];
    let stateAtClose = -1;
    class Watched extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.on("error", (error) =>
          errorsSeen.push({ message: error.message, listeners: this.listenerCount("error") }),
        );
      }
      override close(code?: number, reason?: string | Buffer): void {
        if (stateAtClose === -1) stateAtClose = this.readyState;
        super.close(code, reason);
      }
    }
    const provider = new HocuspocusProviderWebsocket({
      url: `ws://127.0.0.1:${port}`,
      WebSocketPolyfill: Watched,
    });
    try {
      await vi.waitFor(() => expect(sockets.size).toBe(1), { timeout: 5000, interval: 5 });
      provider.destroy();
      expect(stateAtClose).toBe(WebSocket.CONNECTING);
      // ws reports that close as an error a tick later, when ours is the only listener
      // left: without it, the error would be uncaught.
      await vi.waitFor(() => expect(errorsSeen).toHaveLength(1), { timeout: 5000, interval: 5 });
      expect(errorsSeen[0]).toEqual({
        message: "WebSocket was closed before the connection was established",
        listeners: 1,
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("@tiptap/y-tiptap 3.0.9 keys of overlapping marks", () => {
  it("[COM1] a thread's comment mark is stored under the key the server writes (commentMarkKey)", () => {
    const doc = new Y.Doc();
    prosemirrorJSONToYXmlFragment(
      schema,
      {
        type: "doc",
        content: [
          {
            type: "paragraph",
            content: [
              {
                type: "text",
                text: "two threads",
                marks: [
                  { type: "comment", attrs: { thread: "t1" } },
                  { type: "comment", attrs: { thread: "a-much-longer-thread-id_42" } },
                ],
              },
            ],
          },
        ],
      },
      doc.getXmlFragment("default"),
    );
    const text = (doc.getXmlFragment("default").get(0) as Y.XmlElement).get(0) as Y.XmlText;
    expect(text.toDelta()).toEqual([
      {
        insert: "two threads",
        attributes: {
          [commentMarkKey("t1")]: { thread: "t1" },
          [commentMarkKey("a-much-longer-thread-id_42")]: { thread: "a-much-longer-thread-id_42" },
        },
      },
    ]);
  });
});

describe("prosemirror-tables 1.8.5 (repairsWhen, editor/src/extensions.ts)", () => {
  /** A table whose second row is one cell short, as concurrent row and column inserts leave it. */
  function brokenTable(): EditorState {
    const node = (type: string, content: PMNode[] | PMNode) => {
      const nodeType = schema.nodes[type];
      if (nodeType === undefined) throw new Error(`the schema has no ${type}`);
      return nodeType.create(null, content);
    };
    const cell = (text: string) => node("tableCell", node("paragraph", schema.text(text)));
    const table = node("table", [
      node("tableRow", [cell("a"), cell("b")]),
      node("tableRow", [cell("c")]),
    ]);
    return EditorState.create({ doc: node("doc", table) });
  }
  const cellsPerRow = (state: EditorState) => {
    const rows: number[] = [];
    state.doc.descendants((node) => {
      if (node.type.name === "tableRow") rows.push(node.childCount);
      return true;
    });
    return rows;
  };
  /** Types "x" in the first cell, as a rendered remote change (y-tiptap's key as meta) or not. */
  const edit = (state: EditorState, remote: boolean) => {
    const tr = state.tr.insertText("x", 5); // inside the first cell's paragraph
    if (remote) tr.setMeta(ySyncPluginKey, { isChangeOrigin: true });
    return state.applyTransaction(tr).state;
  };

  it("tableEditing repairs a malformed table after every transaction, rendered remote changes included (each editor at once)", () => {
    const state = brokenTable().reconfigure({ plugins: [tableEditing()] });
    expect(cellsPerRow(edit(state, true))).toEqual([2, 2]);
  });

  it("repairsWhen: never in an editor that does not repair; after its own edits in an editor that does; never in the step of a rendered change", () => {
    const wrapped = (repairs: boolean) =>
      brokenTable().reconfigure({ plugins: [repairsWhen(tableEditing(), () => repairs)] });
    expect(cellsPerRow(edit(wrapped(false), false))).toEqual([2, 1]);
    expect(cellsPerRow(edit(wrapped(true), false))).toEqual([2, 2]);
    // Appended to a rendered change, a repair would never reach Yjs: it comes after, on its own.
    expect(cellsPerRow(edit(wrapped(true), true))).toEqual([2, 1]);
  });
});

describe("@hocuspocus/server 4.7 message path (server/src/upstream/hocuspocus.ts)", () => {
  it("[SYNC1] handleDocumentUpdate is what debounces onStoreDocument per update; skipUnusedUpdateHooks turns it off only when no extension needs it", async () => {
    const edits = async (hocuspocus: Hocuspocus) => {
      const debounce = vi.spyOn(hocuspocus.debouncer, "debounce");
      const connection = await hocuspocus.openDirectConnection("doc");
      await connection.transact((doc) => doc.getText("t").insert(0, "x"));
      // Counted before the disconnect, which stores the document itself.
      const calls = debounce.mock.calls.length;
      await connection.disconnect();
      return calls;
    };
    expect(await edits(new Hocuspocus({ quiet: true }))).toBeGreaterThan(0);
    const patched = new Hocuspocus({ quiet: true });
    skipUnusedUpdateHooks(patched, []);
    expect(await edits(patched)).toBe(0);
    let changes = 0;
    const watcher: Extension = {
      async onChange() {
        changes++;
      },
    };
    const kept = new Hocuspocus({ quiet: true, extensions: [watcher] });
    skipUnusedUpdateHooks(kept, [watcher]);
    expect(await edits(kept)).toBeGreaterThan(0);
    expect(changes).toBeGreaterThan(0);
  });

  it("[SYNC1] plain updates from an established connection skip Hocuspocus' message hooks (directUpdates reads its private connection state), and are applied and acknowledged", async () => {
    const { server, address } = await startServer({ config: { store: "memory" } });
    const provider = connect({ url: address.wsUrl, name: "direct" });
    await synced(provider);
    const hooks = vi.spyOn(server.hocuspocus, "hooks");
    const text = provider.document.getText("t");
    for (let i = 0; i < 20; i++) {
      text.insert(text.length, String(i % 10));
      await acknowledged(provider);
    }
    const messageHooks = hooks.mock.calls.filter(([name]) => name === "beforeHandleMessage");
    // Only the stored-confirmation questions the test's acknowledgement waits do not send.
    expect(messageHooks.length).toBeLessThan(5);
    const document = server.hocuspocus.documents.get("direct");
    expect(document?.getText("t").toString()).toBe("01234567890123456789");
  });
});
