/**
 * Comments survive `kill -9` ([COM1], [REL2] in SPEC.md): a real server
 * process with a real LevelDB directory is killed with SIGKILL while an
 * editor's comment client has comment operations in flight, at a seeded
 * point, several times. Every operation the server had answered (it answers
 * once the change is durable) is in the store when it is read while the
 * server is down: the threads in the threads document and their marks in
 * the text. After the restart the client sends again what was not answered
 * (ids make that harmless), and at the end every operation is there exactly
 * once, through the REST API of the restarted server.
 *
 * Replay with FUZZ_SEED=<seed>.
 */
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { commentClient } from "../../editor/src/comments/client.ts";
import { readThreads, threadsDocumentName } from "../../editor/src/comments/model.ts";
import type { CommentOperation } from "../../editor/src/comments/protocol.ts";
import { anchoredTexts } from "../../server/src/comments/text.ts";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { acknowledged, nodeSocket, QUICK_RECONNECT, synced } from "../helpers/clients.ts";
import { freePort } from "../helpers/engines.ts";
import { random, rng, runSeed, withSeed } from "../helpers/prng.ts";
import { spawnServer, tempDir } from "../helpers/server.ts";
import { LONG, report, timeout } from "./size.ts";

const DOCUMENT = "comments-crash";
/** Kills per run, and comment operations in flight around each. */
const KILLS = LONG ? 30 : 4;
const OPS_PER_ROUND = 12;
const WAIT = { timeout: 30_000, interval: 5 } as const;
const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];

/** The document and its threads document as the server stored them, read while it is down. */
async function stored(dir: string): Promise<{ text: Y.Doc; threads: Y.Doc }> {
  const store = await LevelDbStore.open({ dir });
  try {
    const read = async (name: string) => {
      const doc = new Y.Doc();
      for (const update of (await store.load(name))?.updates ?? []) Y.applyUpdate(doc, update);
      return doc;
    };
    return { text: await read(DOCUMENT), threads: await read(threadsDocumentName(DOCUMENT)) };
  } finally {
    await store.close();
  }
}

/** The comment ids of every thread (the thread's id for its first comment). */
function commentIds(threads: Y.Doc): Set<string> {
  return new Set(readThreads(threads).flatMap((t) => t.comments.map((c) => c.id)));
}

async function run(seed: number): Promise<void> {
  const r = rng(seed);
  const dataDir = await tempDir("collab-comments-crash-");
  const port = await freePort();
  const env = { DATA_DIR: dataDir, PORT: String(port), RATE_LIMIT_CONNECTIONS: "0" };
  let server = await spawnServer(env);
  const socket = new HocuspocusProviderWebsocket({
    url: `ws://127.0.0.1:${port}`,
    WebSocketPolyfill: nodeSocket(),
    ...QUICK_RECONNECT,
  });
  const provider = new HocuspocusProvider({
    websocketProvider: socket,
    name: DOCUMENT,
    document: new Y.Doc(),
  });
  provider.attach();
  const client = commentClient(provider);
  onTestFinished(() => {
    client.destroy();
    provider.destroy();
    socket.destroy();
  });
  await synced(provider, WAIT.timeout);
  const paragraph = new Y.XmlElement("paragraph");
  const text = new Y.XmlText(WORDS.join(" "));
  paragraph.insert(0, [text]);
  provider.document.getXmlFragment("default").insert(0, [paragraph]);
  await acknowledged(provider);

  /** Operations sent, and the ids of those the server answered (stored). */
  const sent: CommentOperation[] = [];
  const answered = new Set<string>();
  const threadIds: string[] = [];
  let next = 0;
  const send = (op: CommentOperation, id: string) => {
    sent.push(op);
    client.send(op).then(
      () => answered.add(id),
      (error: unknown) => {
        throw new Error(`operation ${id} refused: ${String(error)}`);
      },
    );
  };
  const newOp = (): { op: CommentOperation; id: string } => {
    const n = next++;
    if (threadIds.length === 0 || random.int(r, 0, 2) === 0) {
      const word = random.pick(r, WORDS);
      // The plain text: XmlText's toString() writes its marks as tags.
      const plain = (text.toDelta() as Array<{ insert: string }>).map((d) => d.insert).join("");
      const at = plain.indexOf(word);
      const thread = `t${n}`;
      threadIds.push(thread);
      return {
        id: `${thread}c`,
        op: {
          op: "create",
          thread,
          comment: `${thread}c`,
          anchor: {
            start: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, at)),
            end: Y.relativePositionToJSON(
              Y.createRelativePositionFromTypeIndex(text, at + word.length),
            ),
          },
          body: `About ${word}?`,
          mentions: [],
        },
      };
    }
    const thread = random.pick(r, threadIds);
    return {
      id: `r${n}`,
      op: { op: "reply", thread, comment: `r${n}`, body: `Reply ${n}`, mentions: [] },
    };
  };

  let checked = 0;
  for (let kill = 0; kill < KILLS; kill++) {
    // Some operations in flight; the kill comes once a seeded number of them was answered.
    const killAfter = answered.size + random.int(r, 0, OPS_PER_ROUND - 1);
    for (let i = 0; i < OPS_PER_ROUND; i++) {
      const { op, id } = newOp();
      send(op, id);
    }
    await vi.waitFor(() => expect(answered.size).toBeGreaterThanOrEqual(killAfter), WAIT);
    const acknowledgedNow = new Set(answered);
    server.child.kill("SIGKILL");
    await server.exited;
    const { text: storedText, threads } = await stored(dataDir);
    const ids = commentIds(threads);
    const missing = [...acknowledgedNow].filter((id) => !ids.has(id));
    expect(missing, `kill ${kill}: answered comment operations not stored`).toEqual([]);
    // Every thread whose creation was answered has its mark on its text (one stored in the
    // instant between the two documents may lack it: its creation, sent again, marks it).
    const texts = anchoredTexts(storedText);
    for (const thread of readThreads(threads)) {
      if (!acknowledgedNow.has(`${thread.id}c`)) continue;
      expect(texts.get(thread.id), `kill ${kill}: thread ${thread.id} lost its mark`).toBe(
        thread.quote,
      );
    }
    checked += acknowledgedNow.size;
    server = await spawnServer(env);
  }

  // Everything sent is answered once the client is back, and stored once.
  await vi.waitFor(() => expect(answered.size).toBe(sent.length), WAIT);
  const api = `http://127.0.0.1:${port}/api/v1/documents/${DOCUMENT}/threads?status=all`;
  const listed = (await (await fetch(api)).json()) as {
    threads: Array<{ id: string; comments: Array<{ id: string }>; anchor: { text: string } }>;
  };
  const listedIds = listed.threads.flatMap((t) => t.comments.map((c) => c.id));
  expect(listedIds.length).toBe(sent.length);
  expect(new Set(listedIds).size).toBe(sent.length);
  expect(listed.threads.map((t) => t.id).sort()).toEqual([...threadIds].sort());
  for (const thread of listed.threads) {
    expect(thread.anchor.text, `thread ${thread.id} has no mark`).not.toBe("");
  }
  report(
    "comments kill -9",
    { kills: KILLS, operations: sent.length, threads: threadIds.length },
    { "answered operations missing after a kill": 0, "answered operations checked": checked },
  );
}

describe("comments and kill -9", () => {
  it(
    `[COM1] ${KILLS} kill -9s with comment operations in flight lose no answered operation`,
    () => {
      const seed = runSeed();
      return withSeed("comments-crash", seed, () => run(seed));
    },
    timeout(120_000, 600_000),
  );
});
