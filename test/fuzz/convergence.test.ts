/**
 * Seeded convergence fuzz over the in-memory network: several clients make
 * random edits while the test delivers messages in random order, drops
 * connections and crash-restarts the server. At the end every client, the
 * server and the stored state agree ([FUZZ1] in SPEC.md). A failure prints
 * its seed; replay it with FUZZ_SEED=<seed> and pin it in REGRESSION_SEEDS.
 */
import { describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { expectConverged } from "../helpers/converge.ts";
import { Network, type NetworkClient } from "../helpers/network.ts";
import { type Rng, random, rng, runSeed, withSeed } from "../helpers/prng.ts";

/** Seeds pinned as regression tests (add failing seeds here, with a note). */
const REGRESSION_SEEDS: ReadonlyArray<{ seed: number; note: string }> = [
  { seed: 1, note: "baseline: first seed ever run" },
  { seed: 424242, note: "baseline: restarts during compaction with a tiny threshold" },
];

const STEPS = 250;
const RANDOM_RUNS = Number(process.env.FUZZ_RUNS ?? 12);

function edit(r: Rng, client: NetworkClient): void {
  const doc = client.doc;
  const text = doc.getText("text");
  const fragment = doc.getXmlFragment("prosemirror");
  switch (random.int(r, 0, 5)) {
    case 0:
    case 1:
      text.insert(random.int(r, 0, text.length), random.word(r));
      return;
    case 2:
      if (text.length > 0) {
        const at = random.int(r, 0, text.length - 1);
        text.delete(at, random.int(r, 1, Math.min(5, text.length - at)));
      }
      return;
    case 3: {
      const paragraph = new Y.XmlElement("paragraph");
      paragraph.insert(0, [new Y.XmlText(random.word(r))]);
      fragment.insert(random.int(r, 0, fragment.length), [paragraph]);
      return;
    }
    case 4:
      if (fragment.length > 0) fragment.delete(random.int(r, 0, fragment.length - 1), 1);
      return;
    default:
      doc.getMap("meta").set(random.word(r, 1, 2), random.int(r, 0, 100));
  }
}

async function run(seed: number): Promise<void> {
  vi.useFakeTimers({ now: 1_800_000_000_000 });
  try {
    await simulate(seed);
  } finally {
    vi.useRealTimers();
  }
}

async function simulate(seed: number): Promise<void> {
  const r = rng(seed);
  // A tiny compaction threshold, so compaction races with everything else.
  const network = new Network({ compactMaxEntries: random.int(r, 3, 20) });
  const documents = ["fuzz-a", "fuzz-b"];
  const clients = Array.from({ length: random.int(r, 2, 5) }, (_, i) =>
    network.addClient(documents[i % documents.length] as string, random.int(r, 1, 2 ** 30)),
  );
  for (const client of clients) {
    client.awareness.setLocalStateField("user", { name: `user-${client.doc.clientID}` });
    network.connect(client);
  }

  for (let step = 0; step < STEPS; step++) {
    const action = random.int(r, 0, 99);
    const client = random.pick(r, clients);
    if (action < 55) {
      const pending = network.deliverable();
      if (pending.length > 0) {
        const [target, direction] = random.pick(r, pending);
        await network.deliver(target, direction, random.int(r, 0, 3) > 0);
      }
    } else if (action < 85) {
      edit(r, client);
    } else if (action < 93) {
      if (client.channel === null) network.connect(client);
      else network.disconnect(client);
    } else if (action < 95) {
      await network.crash();
    } else {
      client.awareness.setLocalStateField("cursor", random.int(r, 0, 50));
    }
  }

  await network.quiesce();
  await network.store.flush();
  for (const client of clients) {
    expect(client.refused).toBeNull();
    // Everything sent on the final connection was acknowledged, hence stored.
    expect(client.acknowledged).toBe(client.sent);
  }

  for (const name of documents) {
    const docs = clients.filter((c) => c.name === name).map((c) => c.doc);
    const server = network.core.hocuspocus.documents.get(name);
    if (server !== undefined) docs.push(server);
    const stored = await network.store.load(name);
    expectConverged(docs, stored?.updates ?? []);
  }
  // Presence converges too: every connected client sees every other client of its document.
  for (const client of clients) {
    const peers = clients.filter((c) => c.name === client.name).map((c) => c.doc.clientID);
    expect([...client.awareness.getStates().keys()].sort()).toEqual(peers.sort());
  }
}

describe("convergence fuzz", () => {
  for (const { seed, note } of REGRESSION_SEEDS) {
    it(`[FUZZ1] pinned seed ${seed} (${note})`, () =>
      withSeed("convergence fuzz", seed, () => run(seed)));
  }

  it(`[FUZZ1] ${RANDOM_RUNS} random seeds converge`, async () => {
    const first = runSeed();
    for (let i = 0; i < RANDOM_RUNS; i++) {
      const seed = (first + i) % 2 ** 31;
      await withSeed("convergence fuzz", seed, () => run(seed));
    }
  });
});
