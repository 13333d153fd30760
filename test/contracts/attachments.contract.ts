/**
 * The AttachmentStore contract (ATT rules in SPEC.md), run against every
 * attachment store: memory, files beside LevelDB, PostgreSQL.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type {
  AttachmentMeta,
  AttachmentOwner,
  AttachmentStore,
} from "../../server/src/attachments/store.ts";

export interface AttachmentStoreFactory {
  /** Opens a fresh, empty store. */
  create(): Promise<AttachmentStore>;
  /** Closes `store` and opens it again on the same data, for durable stores. */
  reopen?(store: AttachmentStore): Promise<AttachmentStore>;
}

/** Bytes and the meta a service would give them. */
export function attachment(
  text: string,
  fields: Partial<AttachmentMeta> = {},
): { meta: AttachmentMeta; bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(text);
  const id = createHash("sha256").update(bytes).digest("hex");
  return {
    bytes,
    meta: {
      id,
      type: "application/octet-stream",
      size: bytes.byteLength,
      filename: "",
      created: 1_000,
      ...fields,
    },
  };
}

const doc: AttachmentOwner = { name: "doc" };

/** A stream's bytes as text (null stays null). */
async function text(stream: Readable | null): Promise<string | null> {
  if (stream === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString();
}
const other: AttachmentOwner = { name: "other/doc ✓" };

export function describeAttachmentContract(kind: string, factory: AttachmentStoreFactory): void {
  describe(`AttachmentStore contract: ${kind}`, () => {
    async function open(): Promise<AttachmentStore> {
      return factory.create();
    }

    it("[ATT1] stores bytes under their id and reads them back, whole or a range", async () => {
      const store = await open();
      const a = attachment("hello attachments", { type: "image/png", filename: "a.png" });
      const put = await store.put(doc, a.meta, a.bytes);
      expect(put).toEqual({ meta: a.meta, stored: true });
      expect(await store.meta(doc, a.meta.id)).toEqual(a.meta);
      expect(new TextDecoder().decode((await store.read(doc, a.meta.id)) ?? undefined)).toBe(
        "hello attachments",
      );
      const range = await store.read(doc, a.meta.id, { start: 6, end: 16 });
      expect(new TextDecoder().decode(range ?? undefined)).toBe("attachments");
      // A range past the end is clamped to the bytes there are.
      const tail = await store.read(doc, a.meta.id, { start: 12, end: 1_000 });
      expect(new TextDecoder().decode(tail ?? undefined)).toBe("ments");
      expect(await store.read(other, a.meta.id)).toBeNull();
      expect(await store.meta(other, a.meta.id)).toBeNull();
      // Streamed, whole or a range, as the server serves them.
      expect(await text(await store.stream(doc, a.meta.id))).toBe("hello attachments");
      expect(await text(await store.stream(doc, a.meta.id, { start: 6, end: 16 }))).toBe(
        "attachments",
      );
      expect(await store.stream(other, a.meta.id)).toBeNull();
      expect(await store.meta(doc, "0".repeat(64))).toBeNull();
      await store.close();
    });

    it("[ATT1] the same bytes put twice are stored once and keep their first meta", async () => {
      const store = await open();
      const first = attachment("same", { filename: "first.txt" });
      await store.put(doc, first.meta, first.bytes);
      const again = await store.put(
        doc,
        { ...first.meta, filename: "second.txt", created: 9 },
        first.bytes,
      );
      expect(again).toEqual({ meta: first.meta, stored: false });
      expect(await store.list(doc)).toEqual([first.meta]);
      expect(await store.usage(doc)).toEqual({ count: 1, bytes: 4 });
      await store.close();
    });

    it("[ATT1] lists in id order and counts usage per owner", async () => {
      const store = await open();
      const items = ["one", "two", "three", "four"].map((text) => attachment(text));
      for (const item of items) await store.put(doc, item.meta, item.bytes);
      await store.put(other, items[0]?.meta as AttachmentMeta, items[0]?.bytes as Uint8Array);
      expect((await store.list(doc)).map((m) => m.id)).toEqual(items.map((i) => i.meta.id).sort());
      expect(await store.usage(doc)).toEqual({ count: 4, bytes: 3 + 3 + 5 + 4 });
      expect(await store.usage(other)).toEqual({ count: 1, bytes: 3 });
      expect(await store.usage({ name: "nobody" })).toEqual({ count: 0, bytes: 0 });
      await store.close();
    });

    it("[ATT1] removing from one owner leaves another's copy of the same bytes", async () => {
      const store = await open();
      const shared = attachment("shared bytes");
      await store.put(doc, shared.meta, shared.bytes);
      await store.put(other, shared.meta, shared.bytes);
      expect(await store.remove(doc, [shared.meta.id, "f".repeat(64)])).toBe(1);
      expect(await store.meta(doc, shared.meta.id)).toBeNull();
      expect(await store.read(doc, shared.meta.id)).toBeNull();
      expect(await store.stream(doc, shared.meta.id)).toBeNull();
      expect(new TextDecoder().decode((await store.read(other, shared.meta.id)) ?? undefined)).toBe(
        "shared bytes",
      );
      expect(await store.remove(other, [shared.meta.id])).toBe(1);
      expect(await store.read(other, shared.meta.id)).toBeNull();
      // Put again after every copy went: stored anew.
      expect((await store.put(doc, shared.meta, shared.bytes)).stored).toBe(true);
      expect(await store.read(doc, shared.meta.id)).not.toBeNull();
      await store.close();
    });

    it("[ATT4] moves a document's attachments to a trash entry and back under another name", async () => {
      const store = await open();
      const a = attachment("in the trash");
      const b = attachment("kept too");
      await store.put(doc, a.meta, a.bytes);
      await store.put(doc, b.meta, b.bytes);
      const trash: AttachmentOwner = { name: "doc", trashId: "t1" };
      await store.move(doc, trash);
      expect(await store.list(doc)).toEqual([]);
      expect(await store.read(doc, a.meta.id)).toBeNull();
      expect((await store.list(trash)).length).toBe(2);
      expect(await store.owners()).toEqual([trash]);
      await store.move(trash, { name: "renamed" });
      expect(await store.list(trash)).toEqual([]);
      expect(
        new TextDecoder().decode((await store.read({ name: "renamed" }, a.meta.id)) ?? undefined),
      ).toBe("in the trash");
      expect(await store.owners()).toEqual([{ name: "renamed" }]);
      await store.close();
    });

    it("[ATT4] a move onto an owner that has some of them keeps the target's meta", async () => {
      const store = await open();
      const a = attachment("both have it", { filename: "source.txt" });
      const b = attachment("only the source");
      await store.put(doc, a.meta, a.bytes);
      await store.put(doc, b.meta, b.bytes);
      await store.put(other, { ...a.meta, filename: "target.txt" }, a.bytes);
      await store.move(doc, other);
      expect((await store.meta(other, a.meta.id))?.filename).toBe("target.txt");
      expect(await store.meta(other, b.meta.id)).toEqual(b.meta);
      expect(await store.list(doc)).toEqual([]);
      await store.close();
    });

    it("[ATT4] removeAll empties an owner and leaves the others", async () => {
      const store = await open();
      const a = attachment("purged");
      const trash: AttachmentOwner = { name: "doc", trashId: "t9" };
      await store.put(trash, a.meta, a.bytes);
      await store.put(other, a.meta, a.bytes);
      await store.removeAll(trash);
      expect(await store.list(trash)).toEqual([]);
      expect(await store.read(other, a.meta.id)).not.toBeNull();
      expect(await store.owners()).toEqual([other]);
      await store.close();
    });

    it("[ATT1] concurrent puts and removes of the same bytes leave a consistent store", async () => {
      const store = await open();
      const a = attachment("contended");
      const owners = Array.from({ length: 6 }, (_, i) => ({ name: `doc-${i}` }));
      await Promise.all(owners.map((owner) => store.put(owner, a.meta, a.bytes)));
      await Promise.all(
        owners.map((owner, i) =>
          i % 2 === 0 ? store.remove(owner, [a.meta.id]) : store.put(owner, a.meta, a.bytes),
        ),
      );
      for (const [i, owner] of owners.entries()) {
        const bytes = await store.read(owner, a.meta.id);
        if (i % 2 === 0) expect(bytes).toBeNull();
        else expect(new TextDecoder().decode(bytes ?? undefined)).toBe("contended");
      }
      await store.close();
    });

    if (factory.reopen !== undefined) {
      const reopen = factory.reopen;
      it("[ATT1] what was stored is there after the store is reopened", async () => {
        let store = await open();
        const a = attachment("durable", { type: "image/gif", filename: "d.gif", created: 42 });
        await store.put({ name: "doc", trashId: "t2" }, a.meta, a.bytes);
        await store.put(doc, a.meta, a.bytes);
        store = await reopen(store);
        expect(await store.meta(doc, a.meta.id)).toEqual(a.meta);
        expect(new TextDecoder().decode((await store.read(doc, a.meta.id)) ?? undefined)).toBe(
          "durable",
        );
        expect(await store.owners()).toEqual([doc, { name: "doc", trashId: "t2" }]);
        await store.close();
      });
    }
  });
}
