/**
 * Restart storm ([REL5] in SPEC.md): 2,000 real Hocuspocus providers, all
 * from one address (127.0.0.1, as users behind one NAT or a proxy without
 * TRUST_PROXY), edit 100 documents; the server is stopped with SIGTERM and
 * started again on the same directory and port while each client types an
 * edit offline. Every client must be back, synced and shown as saved (by
 * the server's own confirmation, trackSaves) within 30 s of the restart, and
 * no edit may be missing afterwards.
 *
 * The server runs with the default connection budget on purpose
 * (RATE_LIMIT_CONNECTIONS=600 a minute and RATE_LIMIT_BURST=2000): this is
 * the storm the defaults must let through. The providers reconnect as the
 * editor's do (editor/src/reconnect.ts: doubling from 1 s with jitter, at
 * most 8 s apart).
 */
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { RECONNECT } from "../../editor/src/reconnect.ts";
import { type SaveTracker, trackSaves } from "../../editor/src/saves.ts";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { nodeSocket } from "../helpers/clients.ts";
import { freePort } from "../helpers/engines.ts";
import { parseLine, type ServerProcess, spawnServer, tempDir } from "../helpers/server.ts";
import { report, timeout } from "./size.ts";

const CLIENTS = 2_000;
const DOCUMENTS = 100;
/** How long every client may take to be back, synced and saved after the restart. */
const BACK_WITHIN_MS = 30_000;
/** How long the first connections may take (2,000 sockets on a 2-core machine). */
const CONNECT_WITHIN_MS = 120_000;

interface Client {
  readonly index: number;
  readonly name: string;
  readonly doc: Y.Doc;
  readonly provider: HocuspocusProvider;
  readonly saves: SaveTracker;
  readonly tokens: string[];
}

function client(index: number, url: string): Client {
  const doc = new Y.Doc();
  const socket = new HocuspocusProviderWebsocket({
    url,
    WebSocketPolyfill: nodeSocket(),
    ...RECONNECT,
  });
  const name = `storm-${index % DOCUMENTS}`;
  const provider = new HocuspocusProvider({ websocketProvider: socket, name, document: doc });
  provider.attach();
  const saves = trackSaves(provider);
  onTestFinished(() => {
    saves.destroy();
    provider.destroy();
    socket.destroy();
  });
  return { index, name, doc, provider, saves, tokens: [] };
}

function type(c: Client): void {
  const token = `[${c.index}:${c.tokens.length}]`;
  c.doc.getText("text").insert(0, token);
  c.tokens.push(token);
}

const everyone = (clients: readonly Client[], ok: (c: Client) => boolean) =>
  clients.filter((c) => !ok(c)).length;

describe("restart storm", () => {
  it(
    `[REL5] ${CLIENTS.toLocaleString("en-US")} clients behind one address are back, synced and saved within 30 s of a restart, and lose no edit`,
    async () => {
      const dataDir = await tempDir("collab-storm-");
      const port = await freePort();
      // Default limits, on purpose (see the module comment).
      const env = { DATA_DIR: dataDir, PORT: String(port) };
      let server: ServerProcess = await spawnServer(env);
      const url = `ws://127.0.0.1:${port}`;
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(i, url));
      await vi.waitFor(
        () =>
          expect(
            everyone(clients, (c) => c.provider.isSynced),
            "not yet synced",
          ).toBe(0),
        { timeout: CONNECT_WITHIN_MS, interval: 100 },
      );
      for (const c of clients) type(c);
      await vi.waitFor(
        () => expect(everyone(clients, (c) => c.saves.state.kind === "saved")).toBe(0),
        { timeout: CONNECT_WITHIN_MS, interval: 100 },
      );

      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
      // Typed while the server is down: each client's offline edit.
      for (const c of clients) type(c);
      const restarted = performance.now();
      server = await spawnServer(env);
      let backMs = 0;
      await vi.waitFor(
        () => {
          expect(
            everyone(clients, (c) => c.provider.isSynced),
            "not synced",
          ).toBe(0);
          expect(
            everyone(clients, (c) => c.saves.state.kind === "saved"),
            "not saved",
          ).toBe(0);
          backMs = performance.now() - restarted;
        },
        { timeout: BACK_WITHIN_MS, interval: 50 },
      );
      const limited = server.lines.filter(
        (line) => parseLine(line)?.code === "rate_limited",
      ).length;

      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
      const store = await LevelDbStore.open({ dir: dataDir });
      let missing = 0;
      try {
        for (let d = 0; d < DOCUMENTS; d++) {
          const doc = new Y.Doc();
          for (const update of (await store.load(`storm-${d}`))?.updates ?? [])
            Y.applyUpdate(doc, update);
          const text = doc.getText("text").toString();
          for (const c of clients.filter((c) => c.name === `storm-${d}`)) {
            missing += c.tokens.filter((token) => !text.includes(token)).length;
          }
        }
      } finally {
        await store.close();
      }
      expect(missing, "edits missing after the restart").toBe(0);
      expect(backMs).toBeLessThanOrEqual(BACK_WITHIN_MS);
      report(
        "restart storm",
        {
          clients: CLIENTS,
          documents: DOCUMENTS,
          "edits, half typed offline": CLIENTS * 2,
        },
        {
          "s until every client was back, synced and saved": (backMs / 1000).toFixed(1),
          "answered 429": limited,
          "edits missing": missing,
        },
      );
    },
    timeout(300_000, 300_000),
  );
});
