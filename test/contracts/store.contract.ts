/**
 * The DocumentStore contract, run against every store (PERS rules in SPEC.md).
 * A store passes it by behaving identically to the others, including under
 * failing writes and concurrent compaction.
 */
import { describe, expect, it, onTestFinished, vi } from "vitest";
import * as Y from "yjs";
import { isCollabError } from "../../server/src/errors.ts";
import type { FaultInjector } from "../../server/src/persistence/log-store.ts";
import type { DocumentStore, VersionMeta } from "../../server/src/persistence/store.ts";
import { docFrom, Typist, textOf } from "../helpers/ydoc.ts";

export interface StoreFactory {
  /** Opens a fresh, empty store. */
  create(options?: { faults?: FaultInjector }): Promise<DocumentStore>;
  /** Closes `store` and opens it again on the same data, for durable stores. */
  reopen?(store: DocumentStore): Promise<DocumentStore>;
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

/** A plain copy, so a stored state compares equal whatever Uint8Array subclass a store returns. */
const bytes = (array: Uint8Array | undefined) => (array ? new Uint8Array(array) : undefined);

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
    }
  });
}
