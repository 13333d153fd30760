/**
 * The DocumentStore contract, run against every store (PERS rules in SPEC.md).
 * A store passes it by behaving identically to the others, including under
 * failing writes and concurrent compaction.
 */
import { describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { threadsDocumentName } from "../../editor/src/comments/model.ts";
import { isCollabError } from "../../server/src/errors.ts";
import type { FaultInjector } from "../../server/src/persistence/log-store.ts";
import type { DocumentStore, VersionMeta } from "../../server/src/persistence/store.ts";
import { type Rng, random, rng, runSeed, withSeed } from "../helpers/prng.ts";
import { docFrom, Typist, textOf } from "../helpers/ydoc.ts";

export interface StoreFactory {
  /** Opens a fresh, empty store. */
  create(options?: { faults?: FaultInjector }): Promise<DocumentStore>;
  /** Closes `store` and opens it again on the same data, for durable stores. */
  reopen?(store: DocumentStore): Promise<DocumentStore>;
  /**
   * Opens a second instance on the same data while `store` stays open, as
   * another server process would: only for stores several processes share.
   */
  createSibling?(store: DocumentStore): Promise<DocumentStore>;
}

/** A fault injector that fails the next `count` batches. */
export function failNext(count: number): FaultInjector & { remaining: number } {
  return {
    remaining: count,
    beforeWrite() {
      if (this.remaining > 0) {
        this.remaining--;
        throw new Error("injected write failure");
      }
    },
  };
}

/** A version's fields as a caller passes them; an automatic one unless `fields` say otherwise. */
function version(
  id: string,
  fields: Partial<Omit<VersionMeta, "id" | "bytes">> = {},
): Omit<VersionMeta, "bytes"> {
  return { id, label: null, kind: "auto", created: 1_700_000_000_000, author: null, ...fields };
}

/** The full state of a document holding `text`, as a version stores it. */
function stateOf(text: string): Uint8Array {
  const typist = new Typist();
  typist.type(text);
  return Y.encodeStateAsUpdate(typist.doc);
}

/** Orders strings by their UTF-8 bytes, as every store lists names. */
const compareBytes = (x: string, y: string) => Buffer.compare(Buffer.from(x), Buffer.from(y));

/** A plain copy, so a stored state compares equal whatever Uint8Array subclass a store returns. */
const bytes = (array: Uint8Array | undefined) => (array ? new Uint8Array(array) : undefined);

/** Appends `value` to the Y.Array "numbers" of `doc` and returns the update, as a client edit. */
function pushNumber(doc: Y.Doc, value: number): Uint8Array {
  let update: Uint8Array | undefined;
  const take = (u: Uint8Array) => {
    update = u;
  };
  doc.on("update", take);
  doc.getArray<number>("numbers").push([value]);
  doc.off("update", take);
  if (update === undefined) throw new Error("the edit produced no update");
  return update;
}

/** The Y.Array "numbers" of the document the stored updates rebuild. */
const numbersOf = (updates: readonly Uint8Array[]) =>
  docFrom(updates).getArray<number>("numbers").toJSON();

/**
 * One server instance in a multi-writer race: its store, the live document
 * it serves, and the other instance's edits it has not received yet (in
 * production they travel by Redis, and only the instance that received an
 * edit from a client stores it).
 */
interface Instance {
  readonly store: DocumentStore;
  readonly doc: Y.Doc;
  readonly inbox: Uint8Array[];
}

/**
 * Two instances edit `name` at random, receive each other's edits late, and
 * compact (often both at once) with states missing the other's latest
 * edits; then every write settles and both must load exactly all the edits.
 */
async function raceOnce(r: Rng, stores: readonly DocumentStore[], name: string): Promise<void> {
  const instances: Instance[] = stores.map((store) => ({ store, doc: new Y.Doc(), inbox: [] }));
  const all: Uint8Array[] = [];
  const writes: Promise<void>[] = [];
  let next = 0;
  const edit = (self: Instance, other: Instance) => {
    const update = pushNumber(self.doc, next++);
    all.push(update);
    other.inbox.push(update);
    writes.push(self.store.append(name, update));
  };
  const compact = (self: Instance) =>
    writes.push(self.store.compact(name, Y.encodeStateAsUpdate(self.doc)));
  const steps = random.int(r, 20, 60);
  for (let step = 0; step < steps; step++) {
    const i = random.int(r, 0, 1);
    const self = instances[i] as Instance;
    const other = instances[1 - i] as Instance;
    const roll = random.int(r, 0, 99);
    if (roll < 60) edit(self, other);
    else if (roll < 75) {
      for (const update of self.inbox.splice(0, random.int(r, 0, self.inbox.length)))
        Y.applyUpdate(self.doc, update);
    } else if (roll < 85) for (const instance of instances) compact(instance);
    else if (roll < 92) compact(self);
    else await new Promise((resolve) => setTimeout(resolve, random.int(r, 0, 2)));
  }
  // Always end in the worst case: both compact at once, each missing the other's latest edits,
  // while both keep appending.
  for (const [i, instance] of instances.entries()) edit(instance, instances[1 - i] as Instance);
  for (const instance of instances) compact(instance);
  for (const [i, instance] of instances.entries()) edit(instance, instances[1 - i] as Instance);
  await Promise.all(writes);
  const expected = numbersOf(all);
  expect(expected).toHaveLength(next);
  for (const { store } of instances) {
    const stored = await store.load(name);
    expect(numbersOf(stored?.updates ?? [])).toEqual(expected);
  }
}

export function describeStoreContract(kind: string, factory: StoreFactory): void {
  async function open(options?: { faults?: FaultInjector }): Promise<DocumentStore> {
    const store = await factory.create(options);
    onTestFinished(async () => {
      await store.close().catch(() => {});
    });
    return store;
  }

  describe(`DocumentStore contract: ${kind}`, () => {
    it("[PERS1] append then load returns every update in order", async () => {
      const store = await open();
      const typist = new Typist();
      const updates = ["Hello", ", ", "world"].map((t) => typist.type(t));
      for (const update of updates) await store.append("doc", update);
      const stored = await store.load("doc");
      expect(stored?.updates).toHaveLength(3);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe("Hello, world");
      expect(stored?.meta.logEntries).toBe(3);
    });

    it("[PERS1] a log of 150,000 updates loads whole", async () => {
      const store = await open();
      const typist = new Typist();
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 150_000; i++)
        writes.push(store.append("long", typist.type(String(i % 10))));
      await Promise.all(writes);
      const stored = await store.load("long");
      expect(stored?.updates).toHaveLength(150_000);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe(typist.text);
    });

    it("[PERS1] a missing document loads as null and has no metadata", async () => {
      const store = await open();
      expect(await store.load("nothing-here")).toBeNull();
      expect(await store.meta("nothing-here")).toBeNull();
    });

    it("[PERS2] writes called in the same tick are committed together (group commit)", async () => {
      const store = await open();
      const batches: number[] = [];
      store.events.on("written", ({ operations }) => batches.push(operations));
      const typist = new Typist();
      await Promise.all(
        Array.from({ length: 500 }, (_, i) => store.append("burst", typist.type(String(i % 10)))),
      );
      expect(batches.reduce((a, b) => a + b, 0)).toBe(500);
      expect(batches.length).toBeLessThan(10);
      expect(textOf(docFrom((await store.load("burst"))?.updates ?? []))).toBe(typist.text);
    });

    it("[PERS3] compaction replaces the log with one snapshot", async () => {
      const store = await open();
      const typist = new Typist();
      for (let i = 0; i < 50; i++) await store.append("doc", typist.type("x"));
      const compacted: Array<{ name: string; bytes: number }> = [];
      store.events.on("compacted", (info) => compacted.push(info));
      const state = Y.encodeStateAsUpdate(typist.doc);
      await store.compact("doc", state);
      expect(compacted).toEqual([{ name: "doc", bytes: state.byteLength }]);
      const stored = await store.load("doc");
      expect(stored?.updates).toHaveLength(1);
      expect(stored?.meta.logEntries).toBe(0);
      expect(stored?.meta.bytes).toBe(stored?.updates[0]?.byteLength);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe("x".repeat(50));
    });

    it("[PERS3] appends made while a compaction is in flight are kept", async () => {
      const store = await open();
      const typist = new Typist();
      for (let i = 0; i < 20; i++) store.append("doc", typist.type("a"));
      const snapshot = Y.encodeStateAsUpdate(typist.doc);
      const compaction = store.compact("doc", snapshot);
      const later = Array.from({ length: 20 }, () => store.append("doc", typist.type("b")));
      await Promise.all([compaction, ...later]);
      const stored = await store.load("doc");
      expect(stored?.meta.logEntries).toBe(20);
      expect(stored?.updates).toHaveLength(21);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe(`${"a".repeat(20)}${"b".repeat(20)}`);
    });

    it("[PERS3] repeated compactions interleaved with appends never lose an update", async () => {
      const store = await open();
      const typist = new Typist();
      const writes: Promise<void>[] = [];
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 15; i++) writes.push(store.append("doc", typist.type(String(round))));
        writes.push(store.compact("doc", Y.encodeStateAsUpdate(typist.doc)));
      }
      writes.push(store.append("doc", typist.type("!")));
      await Promise.all(writes);
      const stored = await store.load("doc");
      expect(stored?.updates).toHaveLength(2);
      expect(textOf(docFrom(stored?.updates ?? []))).toBe(typist.text);
    });

    it("[PERS21] put stores a whole document with its times, byte for byte when nothing was stored", async () => {
      const store = await open();
      const typist = new Typist();
      typist.type("imported");
      const state = Y.encodeStateAsUpdate(typist.doc);
      await store.put("doc", { state, created: 1_600_000_000_000, updated: 1_650_000_000_000 });
      const stored = await store.load("doc");
      expect(stored?.updates).toHaveLength(1);
      expect(Buffer.from(stored?.updates[0] ?? []).equals(state)).toBe(true);
      expect(stored?.meta).toMatchObject({
        created: 1_600_000_000_000,
        updated: 1_650_000_000_000,
      });
    });

    it("[PERS21] put merges with what is stored: nothing already there is lost", async () => {
      const store = await open();
      const mine = new Typist();
      await store.append("doc", mine.type("kept "));
      const theirs = new Typist();
      await store.put("doc", {
        state: Y.encodeStateAsUpdate(theirs.doc),
        created: 1,
        updated: 2,
      });
      theirs.type("imported");
      await store.put("doc", { state: Y.encodeStateAsUpdate(theirs.doc), created: 1, updated: 3 });
      const text = textOf(docFrom((await store.load("doc"))?.updates ?? []));
      expect(text).toContain("kept ");
      expect(text).toContain("imported");
      expect((await store.meta("doc"))?.updated).toBe(3);
    });

    it("[PERS4] delete removes everything and the name can be reused", async () => {
      const store = await open();
      const first = new Typist();
      await store.append("doc", first.type("old"));
      await store.compact("doc", Y.encodeStateAsUpdate(first.doc));
      await store.append("doc", first.type(" more"));
      await store.delete("doc");
      expect(await store.load("doc")).toBeNull();
      expect(await store.meta("doc")).toBeNull();
      expect(await store.list({ limit: 10 })).toEqual([]);
      const second = new Typist();
      await store.append("doc", second.type("new"));
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("new");
    });

    it("[PERS5] metadata tracks created, updated and sizes", async () => {
      const store = await open();
      const before = Date.now();
      const typist = new Typist();
      const a = typist.type("abc");
      const b = typist.type("def");
      await store.append("doc", a);
      await store.append("doc", b);
      const meta = await store.meta("doc");
      expect(meta?.created).toBeGreaterThanOrEqual(before);
      expect(meta?.updated).toBeGreaterThanOrEqual(meta?.created ?? Number.POSITIVE_INFINITY);
      expect(meta?.logEntries).toBe(2);
      expect(meta?.logBytes).toBe(a.byteLength + b.byteLength);
      expect(meta?.bytes).toBe(a.byteLength + b.byteLength);
      const state = Y.encodeStateAsUpdate(typist.doc);
      await store.compact("doc", state);
      const compacted = await store.meta("doc");
      expect(compacted?.created).toBe(meta?.created);
      expect(compacted?.bytes).toBe(state.byteLength);
    });

    it("[PERS5] list pages through names in byte order, filtered by prefix", async () => {
      const store = await open();
      const names = ["b", "a", "a/2", "a/1", "ä", "c", "ab"];
      for (const name of names) await store.append(name, new Typist().type(name));
      const all = await store.list({ limit: 100 });
      expect(all.map((e) => e.name)).toEqual(["a", "a/1", "a/2", "ab", "b", "c", "ä"]);
      expect((await store.list({ prefix: "a/", limit: 100 })).map((e) => e.name)).toEqual([
        "a/1",
        "a/2",
      ]);
      const page1 = await store.list({ limit: 3 });
      const page2 = await store.list({ limit: 3, after: page1.at(-1)?.name });
      expect([...page1, ...page2].map((e) => e.name)).toEqual(["a", "a/1", "a/2", "ab", "b", "c"]);
      // `after` before the prefix range starts at the range; the name equal to the prefix is kept.
      expect((await store.list({ prefix: "a", after: "0", limit: 2 })).map((e) => e.name)).toEqual([
        "a",
        "a/1",
      ]);
      expect((await store.list({ prefix: "a", after: "a", limit: 5 })).map((e) => e.name)).toEqual([
        "a/1",
        "a/2",
        "ab",
      ]);
      expect(await store.list({ prefix: "a", after: "b", limit: 5 })).toEqual([]);
    });

    it("[PERS5] prefixes ending in the highest code points, or holding NUL, list exactly their names", async () => {
      const store = await open();
      const names = [
        "a\u{10ffff}",
        "a\u{10ffff}b",
        "b",
        "\ud7ffx",
        "\ue000",
        "\u{10ffff}",
        "\u{10ffff}z",
      ];
      for (const name of names) await store.append(name, new Typist().type("x"));
      const listed = async (options: { prefix?: string; after?: string }) =>
        (await store.list({ ...options, limit: 100 })).map((e) => e.name);
      expect(await listed({ prefix: "a\u{10ffff}" })).toEqual(["a\u{10ffff}", "a\u{10ffff}b"]);
      expect(await listed({ prefix: "a" })).toEqual(["a\u{10ffff}", "a\u{10ffff}b"]);
      expect(await listed({ prefix: "\ud7ff" })).toEqual(["\ud7ffx"]);
      expect(await listed({ prefix: "\u{10ffff}" })).toEqual(["\u{10ffff}", "\u{10ffff}z"]);
      // No name holds a control character: a prefix with NUL matches none, and a cursor with
      // NUL sorts between the names around it.
      expect(await listed({ prefix: "a\0" })).toEqual([]);
      expect(await listed({ after: "a\u{10ffff}\0z" })).toEqual(names.slice(1).sort(compareBytes));
    });

    it("[PERS6] documents whose names share a prefix stay separate", async () => {
      const store = await open();
      await store.append("a", new Typist().type("one"));
      await store.append("ab", new Typist().type("two"));
      await store.delete("a");
      expect(await store.load("a")).toBeNull();
      expect(textOf(docFrom((await store.load("ab"))?.updates ?? []))).toBe("two");
    });

    it("[PERS6] invalid names are refused, any other string is an ordinary key", async () => {
      const store = await open();
      for (const bad of ["", "a\0b", "line\nbreak", "x".repeat(256)]) {
        await expect(store.append(bad, new Typist().type("x"))).rejects.toSatisfy((e) =>
          isCollabError(e, "DOCUMENT_NAME_INVALID"),
        );
      }
      for (const good of [
        "../../etc/passwd",
        "C:\\temp",
        "名前 with spaces",
        "x".repeat(255),
        "😀",
      ]) {
        await store.append(good, new Typist().type("ok"));
        expect(textOf(docFrom((await store.load(good))?.updates ?? []))).toBe("ok");
      }
    });

    it("[PERS7] a failing write is retried until it succeeds, in order, and health says so", async () => {
      const faults = failNext(3);
      const store = await open({ faults });
      const failures: Array<{ attempt: number; health: string; pending: number }> = [];
      const typist = new Typist();
      let second: Promise<void> | undefined;
      store.events.on("writeFailed", ({ attempt }) => {
        // A write made while the first one fails queues behind it.
        second ??= store.append("doc", typist.type("2"));
        failures.push({ attempt, health: store.health().state, pending: store.pendingUpdates() });
      });
      const first = store.append("doc", typist.type("1"));
      await vi.waitFor(() => expect(second).toBeDefined());
      await Promise.all([first, second]);
      expect(failures).toEqual([
        { attempt: 1, health: "failing", pending: 2 },
        { attempt: 2, health: "failing", pending: 2 },
        { attempt: 3, health: "failing", pending: 2 },
      ]);
      expect(store.health().state).toBe("ok");
      expect(store.pendingUpdates()).toBe(0);
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("12");
    });

    it("[PERS7] close gives up on writes that keep failing, rejecting them with STORE_CLOSED", async () => {
      const store = await factory.create({ faults: failNext(Number.POSITIVE_INFINITY) });
      const write = store.append("doc", new Typist().type("lost"));
      await vi.waitFor(() => expect(store.health().state).toBe("failing"));
      expect(await store.close({ abortAfterMs: 50 })).toEqual({ abandoned: 1 });
      await expect(write).rejects.toSatisfy((e) => isCollabError(e, "STORE_CLOSED"));
    });

    it("[PERS8] close flushes pending writes; writes after close are refused", async () => {
      const store = await factory.create();
      const typist = new Typist();
      const writes = Array.from({ length: 100 }, () => store.append("doc", typist.type("z")));
      await store.close();
      await Promise.all(writes);
      expect(store.health().state).toBe("closed");
      await expect(store.append("doc", typist.type("late"))).rejects.toSatisfy((e) =>
        isCollabError(e, "STORE_CLOSED"),
      );
      await expect(store.probe()).rejects.toSatisfy((e) => isCollabError(e, "STORE_CLOSED"));
    });

    it("[PERS9] the probe writes through the same queue", async () => {
      const store = await open();
      await expect(store.probe()).resolves.toBeUndefined();
      const faults = failNext(1);
      const failing = await open({ faults });
      await failing.probe();
      expect(faults.remaining).toBe(0);
    });

    it("[PERS15] a saved version lists without its state and loads back byte for byte", async () => {
      const store = await open();
      const state = stateOf("before launch");
      const saved = await store.saveVersion(
        "doc",
        version("0001", { label: "Before launch", kind: "named", author: "ada" }),
        state,
      );
      expect(saved).toEqual({
        id: "0001",
        label: "Before launch",
        kind: "named",
        created: 1_700_000_000_000,
        bytes: state.byteLength,
        author: "ada",
      });
      expect(await store.listVersions("doc")).toEqual([saved]);
      const loaded = await store.loadVersion("doc", "0001");
      expect(loaded?.meta).toEqual(saved);
      expect(bytes(loaded?.state)).toEqual(state);
      expect(textOf(docFrom([loaded?.state ?? new Uint8Array()]))).toBe("before launch");
      expect(await store.loadVersion("doc", "0002")).toBeNull();
      expect(await store.loadVersion("other", "0001")).toBeNull();
      expect(await store.listVersions("other")).toEqual([]);
    });

    it("[PERS15] versions list in id order, comparing UTF-8 bytes", async () => {
      const store = await open();
      // "😀" sorts after "｡" in UTF-8 (F0 > EF) but before it in UTF-16 (D83D < FF61).
      for (const id of ["0003", "｡", "0010", "😀", "0001", "0002"])
        await store.saveVersion("doc", version(id), stateOf(id));
      expect((await store.listVersions("doc")).map((v) => v.id)).toEqual([
        "0001",
        "0002",
        "0003",
        "0010",
        "｡",
        "😀",
      ]);
    });

    it("[PERS15] saving an id again overwrites that version", async () => {
      const store = await open();
      await store.saveVersion(
        "doc",
        version("v1", { label: "first", kind: "named" }),
        stateOf("one"),
      );
      const second = stateOf("the second state");
      await store.saveVersion("doc", version("v1", { label: "second", kind: "named" }), second);
      const listed = await store.listVersions("doc");
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ id: "v1", label: "second", bytes: second.byteLength });
      expect(bytes((await store.loadVersion("doc", "v1"))?.state)).toEqual(second);
    });

    it("[PERS15] deleteVersion removes one version; deleting an absent one is a no-op", async () => {
      const store = await open();
      const c = stateOf("c");
      for (const id of ["a", "b"]) await store.saveVersion("doc", version(id), stateOf(id));
      await store.saveVersion("doc", version("c"), c);
      await store.deleteVersion("doc", "b");
      await store.deleteVersion("doc", "b");
      await store.deleteVersion("doc", "never-saved");
      await store.deleteVersion("doc", "");
      await store.deleteVersion("nothing-here", "a");
      expect((await store.listVersions("doc")).map((v) => v.id)).toEqual(["a", "c"]);
      expect(await store.loadVersion("doc", "b")).toBeNull();
      expect(bytes((await store.loadVersion("doc", "c"))?.state)).toEqual(c);
    });

    it("[PERS15] invalid version ids are refused when saving and never found", async () => {
      const store = await open();
      for (const bad of ["", "a\0b", "line\nbreak", "x".repeat(256), "\ud800"]) {
        await expect(store.saveVersion("doc", version(bad), stateOf("x"))).rejects.toThrow(
          RangeError,
        );
        expect(await store.loadVersion("doc", bad)).toBeNull();
      }
      // A lone surrogate must not reach a version whose id its UTF-8 replacement spells.
      await store.saveVersion("doc", version("\ufffd"), stateOf("kept"));
      await store.deleteVersion("doc", "\ud800");
      expect((await store.listVersions("doc")).map((v) => v.id)).toEqual(["\ufffd"]);
      await store.saveVersion("doc", version("x".repeat(255)), stateOf("long"));
      expect(await store.listVersions("doc")).toHaveLength(2);
      await expect(store.saveVersion("a\0b", version("1"), stateOf("x"))).rejects.toSatisfy((e) =>
        isCollabError(e, "DOCUMENT_NAME_INVALID"),
      );
    });

    it("[PERS16] deleting a document deletes its versions, also within one batch", async () => {
      const store = await open();
      await store.append("doc", new Typist().type("content"));
      await store.saveVersion("doc", version("1"), stateOf("one"));
      await store.saveVersion("doc", version("2"), stateOf("two"));
      await store.delete("doc");
      expect(await store.listVersions("doc")).toEqual([]);
      expect(await store.loadVersion("doc", "1")).toBeNull();
      // Called in one tick, these share a batch: a version saved before the delete goes with it,
      // one saved after it stays.
      const writes = [
        store.saveVersion("doc", version("3"), stateOf("three")),
        store.delete("doc"),
        store.saveVersion("doc", version("4"), stateOf("four")),
      ];
      await Promise.all(writes);
      expect((await store.listVersions("doc")).map((v) => v.id)).toEqual(["4"]);
      await store.delete("doc");
      expect(await store.listVersions("doc")).toEqual([]);
    });

    it("[PERS16] versions of names sharing a prefix stay separate", async () => {
      const store = await open();
      for (const name of ["a", "ab", "a/b", "a b"]) {
        await store.saveVersion(name, version("1"), stateOf(`${name} one`));
        await store.saveVersion(name, version("2"), stateOf(`${name} two`));
      }
      await store.saveVersion("ab", version("3"), stateOf("ab three"));
      expect((await store.listVersions("a")).map((v) => v.id)).toEqual(["1", "2"]);
      expect((await store.listVersions("ab")).map((v) => v.id)).toEqual(["1", "2", "3"]);
      await store.deleteVersion("a", "2");
      await store.delete("ab");
      expect((await store.listVersions("a")).map((v) => v.id)).toEqual(["1"]);
      expect(await store.listVersions("ab")).toEqual([]);
      for (const name of ["a/b", "a b"]) {
        expect((await store.listVersions(name)).map((v) => v.id)).toEqual(["1", "2"]);
        const loaded = await store.loadVersion(name, "2");
        expect(textOf(docFrom([loaded?.state ?? new Uint8Array()]))).toBe(`${name} two`);
      }
      await store.delete("a");
      expect((await store.listVersions("a/b")).map((v) => v.id)).toEqual(["1", "2"]);
    });

    it("[PERS16] versions do not count in metadata, and a document with only versions is not listed", async () => {
      const store = await open();
      const update = new Typist().type("content");
      await store.append("doc", update);
      await store.saveVersion("doc", version("1"), stateOf("a much longer version state"));
      await store.saveVersion("only-versions", version("1"), stateOf("x"));
      expect((await store.meta("doc"))?.bytes).toBe(update.byteLength);
      expect(await store.meta("only-versions")).toBeNull();
      expect(await store.load("only-versions")).toBeNull();
      expect((await store.list({ limit: 10 })).map((e) => e.name)).toEqual(["doc"]);
      expect((await store.list({ prefix: "only", limit: 10 })).map((e) => e.name)).toEqual([]);
      expect(await store.listVersions("only-versions")).toHaveLength(1);
    });

    it("[PERS17] versions go through the ordered, retried write queue", async () => {
      const faults = failNext(2);
      const store = await open({ faults });
      const typist = new Typist();
      const durable: string[] = [];
      const append = store.append("doc", typist.type("edit")).then(() => durable.push("append"));
      const state = Y.encodeStateAsUpdate(typist.doc);
      const save = store
        .saveVersion("doc", version("1"), state)
        .then(() => durable.push("version"));
      await Promise.all([append, save]);
      expect(faults.remaining).toBe(0);
      expect(durable).toEqual(["append", "version"]);
      expect(store.health().state).toBe("ok");
      expect(bytes((await store.loadVersion("doc", "1"))?.state)).toEqual(state);
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("edit");
    });

    it("[PERS17] close flushes pending versions; version writes after close are refused", async () => {
      const store = await factory.create();
      const saved = store.saveVersion("doc", version("1"), stateOf("one"));
      await store.close();
      await expect(saved).resolves.toMatchObject({ id: "1" });
      for (const write of [
        store.saveVersion("doc", version("2"), stateOf("two")),
        store.deleteVersion("doc", "1"),
        store.deleteVersion("doc", ""),
        store.listVersions("doc"),
        store.loadVersion("doc", "1"),
      ]) {
        await expect(write).rejects.toSatisfy((e) => isCollabError(e, "STORE_CLOSED"));
      }
    });

    /** Trash entry fields as a caller passes them. */
    const trashed = (id: string, deletedBy: string | null = null) => ({
      id,
      deleted: 1_700_000_000_000,
      deletedBy,
    });

    it("[PERS23] trash moves a document's content and versions out of the live store, with its times and sizes", async () => {
      const store = await open();
      const typist = new Typist();
      await store.append("doc", typist.type("hello"));
      await store.append("doc", typist.type(" world"));
      await store.saveVersion(
        "doc",
        version("v1", { label: "first", kind: "named" }),
        stateOf("v"),
      );
      const meta = await store.meta("doc");
      const entry = await store.trash("doc", trashed("t1", "alice"));
      expect(entry).toMatchObject({
        name: "doc",
        id: "t1",
        deleted: 1_700_000_000_000,
        deletedBy: "alice",
        created: meta?.created,
        updated: meta?.updated,
        versions: 1,
      });
      expect(entry?.bytes).toBeGreaterThan(0);
      expect(await store.load("doc")).toBeNull();
      expect(await store.meta("doc")).toBeNull();
      expect(await store.listVersions("doc")).toEqual([]);
      expect(await store.list({ limit: 10 })).toEqual([]);
      expect(await store.listTrash({ limit: 10 })).toEqual([entry]);
      const loaded = await store.loadTrash("doc", "t1");
      expect(loaded?.entry).toEqual(entry);
      expect(textOf(docFrom([loaded?.state ?? new Uint8Array()]))).toBe("hello world");
      expect(loaded?.state.byteLength).toBe(entry?.bytes);
      // Nothing stored: nothing to trash, nothing written.
      expect(await store.trash("missing", trashed("t2"))).toBeNull();
      expect(await store.listTrash({ limit: 10 })).toHaveLength(1);
      expect(await store.loadTrash("doc", "nope")).toBeNull();
      expect(await store.loadTrash("doc", "")).toBeNull();
    });

    it("[PERS23] the clients of trashed content are deleted for that name only; the name starts empty again", async () => {
      const store = await open();
      const first = new Typist();
      const second = new Typist();
      await store.append("doc", first.type("one"));
      await store.append("doc", second.type("two"));
      await store.append("doc-2", new Typist().type("other"));
      expect(await store.deletedClients("doc")).toEqual(new Set());
      await store.trash("doc", trashed("t1"));
      expect(await store.deletedClients("doc")).toEqual(
        new Set([first.doc.clientID, second.doc.clientID]),
      );
      expect(await store.deletedClients("doc-2")).toEqual(new Set());
      expect(await store.deletedClients("do")).toEqual(new Set());
      // A new document of the same name: its own content, nothing of the trash.
      const fresh = new Typist();
      await store.append("doc", fresh.type("new"));
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("new");
      const inTrash = textOf(
        docFrom([(await store.loadTrash("doc", "t1"))?.state ?? new Uint8Array()]),
      );
      expect([...inTrash].sort().join("")).toBe([..."onetwo"].sort().join(""));
      // Deleted again: the clients of both incarnations are deleted.
      await store.trash("doc", trashed("t2"));
      expect(await store.deletedClients("doc")).toEqual(
        new Set([first.doc.clientID, second.doc.clientID, fresh.doc.clientID]),
      );
    });

    it("[PERS23] trash sees the writes called before it, and writes called after it make a new document", async () => {
      const store = await open();
      const typist = new Typist();
      const before = [store.append("doc", typist.type("a")), store.append("doc", typist.type("b"))];
      const moved = store.trash("doc", trashed("t1"));
      const after = new Typist();
      const later = store.append("doc", after.type("after"));
      await Promise.all([...before, moved, later]);
      const entry = await store.loadTrash("doc", "t1");
      expect(textOf(docFrom([entry?.state ?? new Uint8Array()]))).toBe("ab");
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("after");
    });

    it("[PERS23] restoring to the document's own name brings back content, versions and times, and un-deletes its clients", async () => {
      const store = await open();
      const typist = new Typist();
      const old = stateOf("old");
      await store.append("doc", typist.type("kept"));
      await store.saveVersion("doc", version("v1"), old);
      const meta = await store.meta("doc");
      await store.trash("doc", trashed("t1"));
      const other = new Typist();
      await store.append("doc", other.type("x"));
      await store.trash("doc", trashed("t2"));
      await store.restoreTrash("doc", "t1", "doc");
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("kept");
      expect(await store.meta("doc")).toMatchObject({
        created: meta?.created,
        updated: meta?.updated,
      });
      expect((await store.listVersions("doc")).map((v) => v.id)).toEqual(["v1"]);
      expect(bytes((await store.loadVersion("doc", "v1"))?.state)).toEqual(old);
      expect((await store.listTrash({ limit: 10 })).map((e) => e.id)).toEqual(["t2"]);
      // The restored incarnation's client is welcome again; the other one's is not.
      expect(await store.deletedClients("doc")).toEqual(new Set([other.doc.clientID]));
      // A missing entry: nothing happens.
      await store.restoreTrash("doc", "t1", "doc");
      await store.restoreTrash("doc", "", "doc");
      expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("kept");
    });

    it("[PERS23] restoring under another name, or onto content, merges and loses nothing", async () => {
      const store = await open();
      const typist = new Typist();
      await store.append("doc", typist.type("trashed"));
      await store.saveVersion("doc", version("v1"), stateOf("old"));
      await store.trash("doc", trashed("t1"));
      const existing = new Typist();
      await store.append("copy", existing.type("here "));
      await store.restoreTrash("doc", "t1", "copy");
      const text = textOf(docFrom((await store.load("copy"))?.updates ?? []));
      expect(text).toContain("trashed");
      expect(text).toContain("here ");
      expect((await store.listVersions("copy")).map((v) => v.id)).toEqual(["v1"]);
      expect(await store.listTrash({ limit: 10 })).toEqual([]);
      // Restored elsewhere: the clients stay deleted for the original name.
      expect(await store.deletedClients("doc")).toEqual(new Set([typist.doc.clientID]));
      expect(await store.deletedClients("copy")).toEqual(new Set());
    });

    it("[PERS23] purge removes an entry and its versions for good; its clients stay deleted", async () => {
      const store = await open();
      const typist = new Typist();
      await store.append("doc", typist.type("gone"));
      await store.saveVersion("doc", version("v1"), stateOf("old"));
      await store.trash("doc", trashed("t1"));
      await store.purgeTrash("doc", "t1");
      await store.purgeTrash("doc", "t1");
      await store.purgeTrash("doc", "");
      expect(await store.listTrash({ limit: 10 })).toEqual([]);
      expect(await store.loadTrash("doc", "t1")).toBeNull();
      await store.restoreTrash("doc", "t1", "doc");
      expect(await store.load("doc")).toBeNull();
      expect(await store.listVersions("doc")).toEqual([]);
      expect(await store.deletedClients("doc")).toEqual(new Set([typist.doc.clientID]));
    });

    it("[PERS23] a trash entry and the record of deleted clients can be read whole and written as given (migration, backups)", async () => {
      const source = await open();
      const typist = new Typist();
      await source.append("doc", typist.type("moved"));
      const v1 = stateOf("v1");
      await source.saveVersion("doc", version("v1", { label: "one", kind: "named" }), v1);
      const entry = await source.trash("doc", trashed("t1", "ada"));
      await source.append("gone", new Typist().type("purged"));
      await source.trash("gone", trashed("t2"));
      await source.purgeTrash("gone", "t2");
      const versions = await source.trashVersions("doc", "t1");
      expect(versions.map((v) => v.meta.id)).toEqual(["v1"]);
      expect(bytes(versions[0]?.state)).toEqual(v1);
      expect(await source.trashVersions("doc", "nope")).toEqual([]);
      const records = await source.listDeletedClients({ limit: 10 });
      expect(records.map((r) => `${r.name}:${r.id}`)).toEqual(["doc:t1", "gone:t2"]);
      expect(
        (await source.listDeletedClients({ after: { name: "doc", id: "t1" }, limit: 10 })).map(
          (r) => r.id,
        ),
      ).toEqual(["t2"]);

      const target = await open();
      const loaded = await source.loadTrash("doc", "t1");
      if (entry === null || loaded === null) throw new Error("no trash entry");
      await target.putTrash(entry, loaded.state, versions);
      await target.putTrash(entry, loaded.state, versions);
      for (const record of records) await target.putDeletedClients(record);
      expect(await target.listTrash({ limit: 10 })).toEqual([entry]);
      expect(await target.listDeletedClients({ limit: 10 })).toEqual(records);
      expect(await target.deletedClients("gone")).toEqual(await source.deletedClients("gone"));
      expect(await target.deletedClients("doc")).toEqual(new Set([typist.doc.clientID]));
      await target.restoreTrash("doc", "t1", "doc");
      expect(textOf(docFrom((await target.load("doc"))?.updates ?? []))).toBe("moved");
      expect((await target.listVersions("doc")).map((v) => v.label)).toEqual(["one"]);
      await expect(target.putTrash({ ...entry, id: "" }, loaded.state, [])).rejects.toThrow(
        RangeError,
      );
    });

    it("[PERS23] the trash lists in (name, id) order, by exact name or prefix, a page at a time", async () => {
      const store = await open();
      const names = ["b", "a/x", "a", "ab", "é"];
      let id = 0;
      for (const name of names) {
        for (let round = 0; round < 2; round++) {
          await store.append(name, new Typist().type(name));
          await store.trash(name, trashed(`t${id++}`));
        }
      }
      const all = await store.listTrash({ limit: 100 });
      const keys = all.map((e) => `${e.name}:${e.id}`);
      const sorted = [...all]
        .sort((x, y) => compareBytes(x.name, y.name) || compareBytes(x.id, y.id))
        .map((e) => `${e.name}:${e.id}`);
      expect(keys).toEqual(sorted);
      expect(all).toHaveLength(10);
      expect((await store.listTrash({ name: "a", limit: 100 })).map((e) => e.name)).toEqual([
        "a",
        "a",
      ]);
      expect((await store.listTrash({ prefix: "a", limit: 100 })).map((e) => e.name)).toEqual([
        "a",
        "a",
        "a/x",
        "a/x",
        "ab",
        "ab",
      ]);
      const pages: string[] = [];
      let after: { name: string; id: string } | undefined;
      for (;;) {
        const page = await store.listTrash({ after, limit: 3 });
        pages.push(...page.map((e) => `${e.name}:${e.id}`));
        if (page.length < 3) break;
        const last = page.at(-1) as { name: string; id: string };
        after = { name: last.name, id: last.id };
      }
      expect(pages).toEqual(keys);
    });

    it("[PERS24] a document's threads document is stored beside it, never listed, and goes to the trash, comes back and is purged with it in the same write", async () => {
      const store = await open();
      const threads = threadsDocumentName("doc");
      await store.append("doc", new Typist().type("text"));
      await store.append(threads, new Typist().type("threads"));
      await store.append("plain", new Typist().type("no threads"));
      expect(textOf(docFrom((await store.load(threads))?.updates ?? []))).toBe("threads");
      // Threads documents are part of their document: neither listed nor counted in a page.
      expect((await store.list({ limit: 1 })).map((d) => d.name)).toEqual(["doc"]);
      expect((await store.list({ limit: 10 })).map((d) => d.name)).toEqual(["doc", "plain"]);
      // A name ending like one that is no more than the suffix, or with another control
      // character, is still refused.
      for (const bad of [threadsDocumentName(""), "doc\u001fother"]) {
        await expect(store.append(bad, new Typist().type("x"))).rejects.toSatisfy((e) =>
          isCollabError(e, "DOCUMENT_NAME_INVALID"),
        );
      }

      // Trashed together: the entry of the threads document has the document's id, unlisted.
      await Promise.all([store.trash("doc", trashed("t1")), store.trash("plain", trashed("t2"))]);
      expect(await store.load(threads)).toBeNull();
      expect((await store.listTrash({ limit: 1 })).map((e) => e.name)).toEqual(["doc"]);
      expect((await store.listTrash({ limit: 10 })).map((e) => `${e.name}:${e.id}`)).toEqual([
        "doc:t1",
        "plain:t2",
      ]);
      expect((await store.loadTrash(threads, "t1"))?.state).toBeDefined();
      // Restored together, under another name too.
      await store.restoreTrash("doc", "t1", "copy");
      expect(textOf(docFrom((await store.load(threadsDocumentName("copy")))?.updates ?? []))).toBe(
        "threads",
      );
      expect(await store.loadTrash(threads, "t1")).toBeNull();
      // Purged together.
      await store.trash("copy", trashed("t3"));
      await store.purgeTrash("copy", "t3");
      expect(await store.loadTrash(threadsDocumentName("copy"), "t3")).toBeNull();
      // Deleted together.
      await store.append("gone", new Typist().type("text"));
      await store.append(threadsDocumentName("gone"), new Typist().type("threads"));
      await store.delete("gone");
      expect(await store.load(threadsDocumentName("gone"))).toBeNull();
    });

    it("[PERS24] a document and its threads document are trashed in one atomic batch", async () => {
      const store = await open();
      await store.append("doc", new Typist().type("text"));
      await store.append(threadsDocumentName("doc"), new Typist().type("threads"));
      await store.flush();
      const batches: number[] = [];
      const off = store.events.on("written", ({ operations }) => batches.push(operations));
      await store.trash("doc", trashed("t1"));
      off();
      expect(batches).toEqual([2]);
      expect(await store.load(threadsDocumentName("doc"))).toBeNull();
    });

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen;
      it("[PERS10] everything acknowledged is there after reopening", async () => {
        let store = await factory.create();
        const typist = new Typist();
        for (let i = 0; i < 30; i++) await store.append("doc", typist.type(String(i % 10)));
        await store.compact("doc", Y.encodeStateAsUpdate(typist.doc));
        await store.append("doc", typist.type("tail"));
        await store.append("other", new Typist().type("second doc"));
        store = await reopen(store);
        onTestFinished(async () => {
          await store.close();
        });
        expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe(typist.text);
        expect((await store.load("doc"))?.meta.logEntries).toBe(1);
        expect((await store.list({ limit: 10 })).map((e) => e.name)).toEqual(["doc", "other"]);
        // Sequence numbers continue after a reopen instead of overwriting the log.
        await store.append("doc", typist.type("!"));
        expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe(typist.text);
      });

      it("[PERS17] versions are there after reopening, and deleting the document then removes them", async () => {
        let store = await factory.create();
        await store.append("doc", new Typist().type("content"));
        const states = new Map(["1", "2", "3"].map((id) => [id, stateOf(`version ${id}`)]));
        for (const [id, state] of states)
          await store.saveVersion("doc", version(id, { label: `v${id}`, kind: "named" }), state);
        await store.deleteVersion("doc", "2");
        await store.saveVersion("only-versions", version("1"), stateOf("x"));
        const listed = await store.listVersions("doc");
        store = await reopen(store);
        onTestFinished(async () => {
          await store.close();
        });
        expect(await store.listVersions("doc")).toEqual(listed);
        expect(listed.map((v) => v.id)).toEqual(["1", "3"]);
        for (const id of ["1", "3"])
          expect(bytes((await store.loadVersion("doc", id))?.state)).toEqual(states.get(id));
        expect((await store.list({ limit: 10 })).map((e) => e.name)).toEqual(["doc"]);
        // After a reopen nothing is cached: the delete finds the versions in the store itself.
        await store.delete("doc");
        await store.delete("only-versions");
        expect(await store.listVersions("doc")).toEqual([]);
        expect(await store.listVersions("only-versions")).toEqual([]);
      });
      it("[PERS23] trash entries and deleted clients are there after reopening", async () => {
        let store = await factory.create();
        const typist = new Typist();
        await store.append("doc", typist.type("kept in the trash"));
        await store.saveVersion("doc", version("v1"), stateOf("old"));
        const entry = await store.trash("doc", trashed("t1"));
        store = await reopen(store);
        onTestFinished(async () => {
          await store.close();
        });
        expect(await store.listTrash({ limit: 10 })).toEqual([entry]);
        expect(await store.deletedClients("doc")).toEqual(new Set([typist.doc.clientID]));
        expect(await store.load("doc")).toBeNull();
        await store.restoreTrash("doc", "t1", "doc");
        expect(textOf(docFrom((await store.load("doc"))?.updates ?? []))).toBe("kept in the trash");
        expect((await store.listVersions("doc")).map((v) => v.id)).toEqual(["v1"]);
      });
    }

    if (factory.createSibling !== undefined) {
      const createSibling = factory.createSibling;
      /** Two instances on the same data; any write that fails (a deadlock, a conflict) fails the test. */
      async function openPair(): Promise<[DocumentStore, DocumentStore]> {
        const first = await open();
        const second = await createSibling(first);
        onTestFinished(async () => {
          await second.close().catch(() => {});
        });
        const failures: unknown[] = [];
        for (const store of [first, second])
          store.events.on("writeFailed", ({ error }) => failures.push(error));
        onTestFinished(() => {
          expect(failures).toEqual([]);
        });
        return [first, second];
      }

      it("[PERS18] each instance sees what the other wrote: content, metadata, list, versions, deletes", async () => {
        const [a, b] = await openPair();
        const typist = new Typist();
        await a.append("doc", typist.type("from a"));
        expect(textOf(docFrom((await b.load("doc"))?.updates ?? []))).toBe("from a");
        expect((await b.meta("doc"))?.logEntries).toBe(1);
        await b.append("doc", typist.type(", from b"));
        expect(textOf(docFrom((await a.load("doc"))?.updates ?? []))).toBe("from a, from b");
        expect((await a.list({ limit: 10 })).map((e) => e.name)).toEqual(["doc"]);
        const saved = await a.saveVersion(
          "doc",
          version("1", { label: "one", kind: "named" }),
          stateOf("one"),
        );
        await a.saveVersion("doc", version("2"), stateOf("two"));
        expect(await b.listVersions("doc")).toEqual([saved, expect.objectContaining({ id: "2" })]);
        await b.deleteVersion("doc", "2");
        expect((await a.listVersions("doc")).map((v) => v.id)).toEqual(["1"]);
        await b.delete("doc");
        expect(await a.load("doc")).toBeNull();
        expect(await a.meta("doc")).toBeNull();
        expect(await a.list({ limit: 10 })).toEqual([]);
        expect(await a.listVersions("doc")).toEqual([]);
        // The name is reused from the other instance.
        await a.append("doc", new Typist().type("again"));
        expect(textOf(docFrom((await b.load("doc"))?.updates ?? []))).toBe("again");
      });

      it("[PERS23] a document one instance trashed is gone for the other, with its deleted clients", async () => {
        const [a, b] = await openPair();
        const typist = new Typist();
        await a.append("doc", typist.type("shared"));
        await b.saveVersion("doc", version("v1"), stateOf("old"));
        const entry = await b.trash("doc", trashed("t1"));
        expect(entry?.versions).toBe(1);
        expect(await a.load("doc")).toBeNull();
        expect(await a.listVersions("doc")).toEqual([]);
        expect(await a.listTrash({ limit: 10 })).toEqual([entry]);
        expect(await a.deletedClients("doc")).toEqual(new Set([typist.doc.clientID]));
        await a.restoreTrash("doc", "t1", "doc");
        expect(textOf(docFrom((await b.load("doc"))?.updates ?? []))).toBe("shared");
        expect(await b.deletedClients("doc")).toEqual(new Set());
      });

      it("[PERS18] appends of two instances to one document, interleaved, are all kept", async () => {
        const [a, b] = await openPair();
        const docs = [new Y.Doc(), new Y.Doc()];
        const all: Uint8Array[] = [];
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 200; i++) {
          const side = i % 2;
          const update = pushNumber(docs[side] as Y.Doc, i);
          all.push(update);
          writes.push((side === 0 ? a : b).append("doc", update));
          if (i % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        await Promise.all(writes);
        for (const store of [a, b]) {
          const stored = await store.load("doc");
          expect(stored?.meta.logEntries).toBe(200);
          expect(numbersOf(stored?.updates ?? [])).toEqual(numbersOf(all));
        }
      });

      it("[PERS18] a delete racing the other instance's appends leaves one consistent document", async () => {
        const [a, b] = await openPair();
        const typist = new Typist();
        await a.append("doc", typist.type("old"));
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 30; i++) {
          writes.push(a.append("doc", typist.type(String(i % 10))));
          if (i === 10) writes.push(b.delete("doc"));
          if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        await Promise.all(writes);
        const [fromA, fromB] = [await a.load("doc"), await b.load("doc")];
        expect(fromB?.updates.length).toBe(fromA?.updates.length);
        expect(fromA?.meta.logEntries).toBe(fromA?.updates.length);
        expect(await b.meta("doc")).toEqual(fromA?.meta ?? null);
        expect((await b.list({ limit: 10 })).map((e) => e.name)).toEqual(fromA ? ["doc"] : []);
      });

      it("[PERS19] a compaction keeps what another instance appended and its state lacks", async () => {
        const [a, b] = await openPair();
        const [docA, docB] = [new Y.Doc(), new Y.Doc()];
        await a.append("doc", pushNumber(docA, 1));
        await b.append("doc", pushNumber(docB, 2));
        // Each compacts with only its own edit: neither state holds the other's.
        await a.compact("doc", Y.encodeStateAsUpdate(docA));
        expect(numbersOf((await b.load("doc"))?.updates ?? []).sort()).toEqual([1, 2]);
        await b.append("doc", pushNumber(docB, 3));
        await Promise.all([
          a.compact("doc", Y.encodeStateAsUpdate(docA)),
          b.compact("doc", Y.encodeStateAsUpdate(docB)),
        ]);
        for (const store of [a, b]) {
          const stored = await store.load("doc");
          expect(stored?.meta.logEntries).toBe(0);
          expect(stored?.updates).toHaveLength(1);
          expect(numbersOf(stored?.updates ?? []).sort()).toEqual([1, 2, 3]);
        }
      });

      it("[PERS19] two instances appending and compacting one document at once lose nothing (seeded race)", async () => {
        const [a, b] = await openPair();
        const seed = runSeed();
        await withSeed("multi-writer compaction race", seed, async () => {
          const r = rng(seed);
          for (let round = 0; round < 16; round++) await raceOnce(r, [a, b], `race-${round}`);
        });
      });
    }
  });
}
