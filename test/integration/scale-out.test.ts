import type { HocuspocusProvider } from "@hocuspocus/provider";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { commentClient } from "../../editor/src/comments/client.ts";
import { readThreads, threadsDocumentName } from "../../editor/src/comments/model.ts";
import { createCollabServer } from "../../server/src/app.ts";
import { anchoredTexts } from "../../server/src/comments/text.ts";
import type { Config } from "../../server/src/config.ts";
import { createLogger, type Logger } from "../../server/src/observability/logger.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { converged, expectConverged } from "../helpers/converge.ts";
import { type Engine, freePort, startRedis } from "../helpers/engines.ts";
import { random, randomTextEdit, rng, runSeed, withSeed } from "../helpers/prng.ts";
import { type RunningServer, runCli, startServer, tempDir } from "../helpers/server.ts";

/** Far below the 30-second awareness timeout that hides a lost removal. */
const SOON = { timeout: 5_000, interval: 10 };

let redis: Engine;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function instances(count: number, url = redis.url): Promise<RunningServer[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      startServer({ config: { redisUrl: url, store: "memory" } }),
    ),
  );
}

function names(provider: HocuspocusProvider): string[] {
  return [...(provider.awareness?.getStates().values() ?? [])]
    .map((state) => (state.user as { name?: string } | undefined)?.name ?? "?")
    .sort();
}

/** A provider for `name` on `server` with its user name set, once synced. */
async function user(server: RunningServer, name: string, document = "presence") {
  const provider = connect({ url: server.address.wsUrl, name: document });
  await synced(provider);
  provider.setAwarenessField("user", { name });
  return provider;
}

/** Moves a provider's socket to another instance, as a load balancer would on reconnect. */
async function moveTo(provider: HocuspocusProvider, server: RunningServer): Promise<void> {
  const socket = provider.configuration.websocketProvider;
  socket.setConfiguration({ url: server.address.wsUrl });
  socket.disconnect();
  await vi.waitFor(() => expect(provider.isSynced).toBe(false), SOON);
  await socket.connect();
  await synced(provider);
}

/** The client ids whose inserts a store holds for `name`. */
async function storedClients(server: RunningServer, name: string): Promise<number[]> {
  const stored = await server.server.store.load(name);
  if (stored === null) return [];
  const vector = Y.decodeStateVector(
    Y.encodeStateVectorFromUpdate(Y.mergeUpdates([...stored.updates])),
  );
  return [...vector.keys()].sort();
}

describe("fan-out over Redis, one memory store per instance", () => {
  it("[SCALE1] clients on three instances edit one document concurrently and converge; each change is stored only by the instance its client is on", async () => {
    const seed = runSeed();
    await withSeed("scale-out convergence", seed, async () => {
      const r = rng(seed);
      const servers = await instances(3);
      const clients = servers.flatMap((server) =>
        [0, 1].map(() => connect({ url: server.address.wsUrl, name: "shared" })),
      );
      await Promise.all(clients.map((client) => synced(client)));
      for (let round = 0; round < 40; round++) {
        for (const client of clients) randomTextEdit(r, client.document.getText("text"));
        // Let some messages through between rounds, so edits interleave with what arrives.
        if (random.bool(r)) await new Promise((resolve) => setImmediate(resolve));
      }
      const docs = clients.map((client) => client.document);
      await vi.waitFor(() => expect(converged(docs)).toBe(true), { timeout: 15_000, interval: 20 });
      await Promise.all(clients.map((client) => acknowledged(client)));

      const all: Uint8Array[] = [];
      for (const [i, server] of servers.entries()) {
        const own = clients
          .slice(2 * i, 2 * i + 2)
          .map((client) => client.document.clientID)
          .sort();
        // Another instance's changes reach this one with the origin "redis" and are not stored.
        expect(await storedClients(server, "shared")).toEqual(own);
        all.push(...((await server.server.store.load("shared"))?.updates ?? []));
      }
      // ...and between them the stores hold everything.
      expectConverged(docs, all);
    });
  });

  it("[SCALE4] a document loaded later on another instance serves its current state from the first sync", async () => {
    const [a, b] = await instances(2);
    if (a === undefined || b === undefined) throw new Error("two instances");
    const alice = connect({ url: a.address.wsUrl, name: "late" });
    await synced(alice);
    alice.document.getText("text").insert(0, "written on A");
    await acknowledged(alice);

    // B's store has nothing: the state comes from A through Redis, before Bob's first sync.
    const bob = connect({ url: b.address.wsUrl, name: "late" });
    await synced(bob);
    expect(bob.document.getText("text").toString()).toBe("written on A");
  });
});

describe("presence over Redis", () => {
  it("[SCALE2] awareness crosses instances and a client that leaves is removed on every instance", async () => {
    const [a, b, c] = await instances(3);
    if (a === undefined || b === undefined || c === undefined) throw new Error("three instances");
    const alice = await user(a, "Alice");
    const dave = await user(a, "Dave");
    const bob = await user(b, "Bob");
    const carol = await user(c, "Carol");
    const everyone = ["Alice", "Bob", "Carol", "Dave"];
    for (const provider of [alice, bob, carol, dave]) {
      await vi.waitFor(() => expect(names(provider)).toEqual(everyone), SOON);
    }
    bob.setAwarenessField("user", { name: "Bob 2" });
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob 2", "Carol", "Dave"]), SOON);
    await vi.waitFor(() => expect(names(carol)).toEqual(["Alice", "Bob 2", "Carol", "Dave"]), SOON);

    // Dave leaves A while Alice stays there.
    dave.destroy();
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice", "Bob 2", "Carol"]), SOON);
    await vi.waitFor(() => expect(names(carol)).toEqual(["Alice", "Bob 2", "Carol"]), SOON);
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob 2", "Carol"]), SOON);

    // Alice leaves A, the last client of the document there.
    alice.destroy();
    await vi.waitFor(() => expect(names(bob)).toEqual(["Bob 2", "Carol"]), SOON);
    await vi.waitFor(() => expect(names(carol)).toEqual(["Bob 2", "Carol"]), SOON);
  });

  it("[SCALE2] a client that reconnects to another instance is visible everywhere at once, the instance it left included", async () => {
    const [a, b] = await instances(2);
    if (a === undefined || b === undefined) throw new Error("two instances");
    const alice = await user(a, "Alice");
    const dave = await user(a, "Dave");
    const bob = await user(b, "Bob");
    for (const provider of [alice, bob, dave]) {
      await vi.waitFor(() => expect(names(provider)).toEqual(["Alice", "Bob", "Dave"]), SOON);
    }

    // B knew Alice as A's client: her own connection to B takes her over (not a forgery),
    // and A, which removed her when she left, takes her back from B.
    await moveTo(alice, b);
    for (const provider of [alice, bob, dave]) {
      await vi.waitFor(() => expect(names(provider)).toEqual(["Alice", "Bob", "Dave"]), SOON);
    }
    alice.setAwarenessField("user", { name: "Alice 2" });
    await vi.waitFor(() => expect(names(dave)).toEqual(["Alice 2", "Bob", "Dave"]), SOON);
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice 2", "Bob", "Dave"]), SOON);

    // And back to A, where she was removed.
    await moveTo(alice, a);
    alice.setAwarenessField("user", { name: "Alice 3" });
    await vi.waitFor(() => expect(names(dave)).toEqual(["Alice 3", "Bob", "Dave"]), SOON);
    await vi.waitFor(() => expect(names(bob)).toEqual(["Alice 3", "Bob", "Dave"]), SOON);
    alice.destroy();
    await vi.waitFor(() => expect(names(bob)).toEqual(["Bob", "Dave"]), SOON);
    await vi.waitFor(() => expect(names(dave)).toEqual(["Bob", "Dave"]), SOON);
  });

  it("[SCALE2] [SYNC5] the instance a client is connected to keeps its presence: another instance's state for it is dropped there", async () => {
    const [a, b] = await instances(2);
    if (a === undefined || b === undefined) throw new Error("two instances");
    const alice = await user(a, "Alice");
    const dave = await user(a, "Dave");
    const bob = await user(b, "Bob");
    await vi.waitFor(() => expect(names(dave)).toEqual(["Alice", "Bob", "Dave"]), SOON);

    // Mallory, on B, announces a state for Alice's client id.
    const forged = new Y.Doc();
    forged.clientID = alice.document.clientID;
    const mallory = connect({ url: b.address.wsUrl, name: "presence", document: forged });
    await synced(mallory);
    mallory.setAwarenessField("user", { name: "Alice (forged)" });
    // B publishes in order: once Bob's later change is on A, so is Mallory's claim.
    bob.setAwarenessField("user", { name: "Bob 2" });
    await vi.waitFor(() => expect(names(dave)).toEqual(["Alice", "Bob 2", "Dave"]), SOON);
    expect(names(alice)).toEqual(["Alice", "Bob 2", "Dave"]);
  });
});

describe("Redis outages", () => {
  it("[SCALE3] while Redis is down, edits are still acknowledged and local clients sync; once it is back the instances catch up", async () => {
    const first = await startRedis();
    const log = capturingLogger();
    const a = await startLogged({ redisUrl: first.url, store: "memory" }, log.logger);
    const [b] = await instances(1, first.url);
    if (b === undefined) throw new Error("two instances");
    const alice = await user(a, "Alice", "outage");
    const dave = await user(a, "Dave", "outage");
    const bob = await user(b, "Bob", "outage");
    const text = (provider: HocuspocusProvider) => provider.document.getText("text").toString();
    alice.document.getText("text").insert(0, "before ");
    await vi.waitFor(() => expect(text(bob)).toBe("before "), SOON);

    await first.stop();
    alice.document.getText("text").insert(7, "alice ");
    bob.document.getText("text").insert(0, "bob ");
    // Acknowledged means stored on the client's instance: Redis plays no part.
    await Promise.all([acknowledged(alice), acknowledged(bob)]);
    await vi.waitFor(() => expect(text(dave)).toBe("before alice "), SOON);
    expect(text(bob)).toBe("bob before ");
    bob.setAwarenessField("user", { name: "Bob 2" });
    // A document opened during the outage is served.
    const other = connect({ url: a.address.wsUrl, name: "opened-in-outage" });
    await synced(other);

    const again = await startRedis(first.port);
    onTestFinished(() => again.stop());
    const docs = [alice, bob, dave].map((provider) => provider.document);
    await vi.waitFor(() => expect(converged(docs)).toBe(true), { timeout: 15_000, interval: 20 });
    expect(text(alice)).toContain("alice");
    expect(text(alice)).toContain("bob");
    await vi.waitFor(() => expect(names(alice)).toEqual(["Alice", "Bob 2", "Dave"]), SOON);
    // And fan-out works as before.
    dave.document.getText("text").insert(0, "after ");
    await vi.waitFor(() => expect(text(bob)).toMatch(/^after /), SOON);
    // The outage was logged once, and the recovery, each with the instance's id.
    const outage = log.lines.filter((line) => String(line.msg).startsWith("Redis unreachable"));
    const recovery = log.lines.filter((line) => String(line.msg).startsWith("Redis reachable"));
    expect(outage).toHaveLength(1);
    expect(recovery).toHaveLength(1);
    expect(outage[0]?.level).toBe("error");
    expect(typeof outage[0]?.instance).toBe("string");
  });
});

describe("start-up", () => {
  it("[SCALE5] an unreachable Redis stops the server with a message naming the host, never the password", async () => {
    const port = await freePort();
    const { code, stderr } = await runCli({
      REDIS_URL: `redis://collab:s3cret-pass@127.0.0.1:${port}`,
      STORE: "memory",
    });
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot reach Redis at 127.0.0.1:${port}`);
    expect(stderr).not.toContain("s3cret-pass");
  });

  it("[SCALE6] CLUSTER=true refuses LevelDB or a missing REDIS_URL with a clear message", async () => {
    const dataDir = await tempDir();
    const leveldb = await runCli({
      CLUSTER: "true",
      STORE: "leveldb",
      DATA_DIR: dataDir,
      REDIS_URL: redis.url,
    });
    expect(leveldb.code).toBe(1);
    expect(leveldb.stderr).toMatch(/CLUSTER=true, but STORE=leveldb .*set STORE=postgres/);

    const noRedis = await runCli({
      CLUSTER: "true",
      STORE: "postgres",
      DATABASE_URL: "postgres://collab@127.0.0.1:1/collab",
    });
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr).toContain("CLUSTER=true, but REDIS_URL is not set");
    // Two processes on one LevelDB directory: refused by LIFE1 (lifecycle.test.ts).
  });
});

/** A logger that keeps every line it writes. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("info", {
    write: (line: string) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { logger, lines };
}

/** An in-process server with its own logger (startServer's is silent). */
async function startLogged(config: Partial<Config>, logger: Logger): Promise<RunningServer> {
  const dataDir = await tempDir();
  const server = await createCollabServer({
    config: { host: "127.0.0.1", port: 0, dataDir, ...config },
    logger,
  });
  onTestFinished(async () => {
    await server.close();
  });
  return { server, address: await server.listen(), dataDir };
}

describe("comments across instances", () => {
  it("[COM1] a thread made through one instance reaches an editor on another live, with its mark", async () => {
    const [a, b] = await instances(2);
    if (a === undefined || b === undefined) throw new Error("two instances expected");
    const writer = connect({ url: a.address.wsUrl, name: "commented" });
    await synced(writer);
    const paragraph = new Y.XmlElement("paragraph");
    paragraph.insert(0, [new Y.XmlText("shared across instances")]);
    writer.document.getXmlFragment("default").insert(0, [paragraph]);
    await acknowledged(writer);
    const reader = connect({ url: b.address.wsUrl, name: "commented" });
    await synced(reader);
    await vi.waitFor(
      () => expect(reader.document.getXmlFragment("default").toString()).toContain("across"),
      SOON,
    );
    const client = commentClient(reader);
    onTestFinished(() => client.destroy());
    const text = (reader.document.getXmlFragment("default").get(0) as Y.XmlElement).get(
      0,
    ) as Y.XmlText;
    await client.send({
      op: "create",
      thread: "x1",
      comment: "x1c",
      anchor: {
        start: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, 7)),
        end: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, 13)),
      },
      body: "Which ones?",
      mentions: [],
    });
    // The writer's threads document, open on instance a like the editor opens it.
    const threads = connect({ url: a.address.wsUrl, name: threadsDocumentName("commented") });
    await vi.waitFor(() => {
      expect(readThreads(threads.document).map((t) => t.quote)).toEqual(["across"]);
      expect(anchoredTexts(writer.document).get("x1")).toBe("across");
    }, SOON);
    // A reply through b reaches the threads document open on a live.
    await client.send({ op: "reply", thread: "x1", comment: "x1r", body: "Both.", mentions: [] });
    await vi.waitFor(
      () =>
        expect(readThreads(threads.document)[0]?.comments.map((c) => c.body)).toEqual([
          "Which ones?",
          "Both.",
        ]),
      SOON,
    );
  });
});
