/**
 * Attachments in PostgreSQL, so every instance of a cluster serves them:
 * `collab_attachment_blobs` holds each distinct content once and
 * `collab_attachments` one row per document (or trash entry, `trash_id`
 * non-empty) holding it. A blob no row references is deleted in the same
 * transaction that removes its last row. The tables are created by the
 * document store's schema migration (persistence/postgres.ts), whose
 * connections this store uses.
 */

import { Readable } from "node:stream";
import type { Pool, PoolClient } from "pg";
import { sortOwners } from "./memory.ts";
import type {
  AttachmentMeta,
  AttachmentOwner,
  AttachmentStore,
  AttachmentUsage,
  ByteRange,
} from "./store.ts";

export interface PostgresAttachmentOptions {
  readonly pool: Pool;
  readonly tables: { readonly attachments: string; readonly blobs: string };
  /** Runs `body` in a durable (synchronously committed) transaction. */
  readonly transaction: <T>(body: (client: PoolClient) => Promise<T>) => Promise<T>;
}

interface Row {
  id: string;
  type: string;
  size: string;
  filename: string;
  created: string;
}

const COLUMNS = "id, type, size, filename, created";

function metaOf(row: Row): AttachmentMeta {
  return {
    id: row.id,
    type: row.type,
    size: Number(row.size),
    filename: row.filename,
    created: Number(row.created),
  };
}

export class PostgresAttachmentStore implements AttachmentStore {
  private readonly options: PostgresAttachmentOptions;

  constructor(options: PostgresAttachmentOptions) {
    this.options = options;
  }

  async put(
    owner: AttachmentOwner,
    meta: AttachmentMeta,
    bytes: Uint8Array,
  ): Promise<{ meta: AttachmentMeta; stored: boolean }> {
    const { attachments, blobs } = this.options.tables;
    return this.options.transaction(async (client) => {
      await client.query(
        `INSERT INTO ${blobs} (id, bytes) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
        [meta.id, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)],
      );
      const inserted = await client.query<Row>(
        `INSERT INTO ${attachments} (name, trash_id, ${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name, trash_id, id) DO NOTHING RETURNING ${COLUMNS}`,
        [
          owner.name,
          owner.trashId ?? "",
          meta.id,
          meta.type,
          meta.size,
          meta.filename,
          meta.created,
        ],
      );
      const row = inserted.rows[0];
      if (row !== undefined) return { meta: metaOf(row), stored: true };
      const existing = await client.query<Row>(
        `SELECT ${COLUMNS} FROM ${attachments} WHERE name = $1 AND trash_id = $2 AND id = $3`,
        [owner.name, owner.trashId ?? "", meta.id],
      );
      const found = existing.rows[0];
      return { meta: found === undefined ? meta : metaOf(found), stored: false };
    });
  }

  async meta(owner: AttachmentOwner, id: string): Promise<AttachmentMeta | null> {
    const result = await this.options.pool.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.options.tables.attachments}
       WHERE name = $1 AND trash_id = $2 AND id = $3`,
      [owner.name, owner.trashId ?? "", id],
    );
    const row = result.rows[0];
    return row === undefined ? null : metaOf(row);
  }

  async read(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Uint8Array | null> {
    const { attachments, blobs } = this.options.tables;
    // substring() counts from 1; without a range, the whole value.
    const start = (range?.start ?? 0) + 1;
    const length = range === undefined ? null : Math.max(0, range.end - range.start + 1);
    const result = await this.options.pool.query<{ bytes: Buffer }>(
      `SELECT CASE WHEN $4::int IS NULL THEN b.bytes ELSE substring(b.bytes FROM $3::int FOR $4::int) END AS bytes
       FROM ${attachments} AS a JOIN ${blobs} AS b ON b.id = a.id
       WHERE a.name = $1 AND a.trash_id = $2 AND a.id = $5`,
      [owner.name, owner.trashId ?? "", start, length, id],
    );
    const row = result.rows[0];
    return row === undefined ? null : new Uint8Array(row.bytes);
  }

  async stream(owner: AttachmentOwner, id: string, range?: ByteRange): Promise<Readable | null> {
    const bytes = await this.read(owner, id, range);
    return bytes === null ? null : Readable.from([bytes]);
  }

  async list(owner: AttachmentOwner): Promise<AttachmentMeta[]> {
    const result = await this.options.pool.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.options.tables.attachments}
       WHERE name = $1 AND trash_id = $2 ORDER BY id`,
      [owner.name, owner.trashId ?? ""],
    );
    return result.rows.map(metaOf);
  }

  async usage(owner: AttachmentOwner): Promise<AttachmentUsage> {
    const result = await this.options.pool.query<{ count: string; bytes: string }>(
      `SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM ${this.options.tables.attachments}
       WHERE name = $1 AND trash_id = $2`,
      [owner.name, owner.trashId ?? ""],
    );
    const row = result.rows[0];
    return { count: Number(row?.count ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  async remove(owner: AttachmentOwner, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const { attachments } = this.options.tables;
    return this.options.transaction(async (client) => {
      const removed = await client.query<{ id: string }>(
        `DELETE FROM ${attachments} WHERE name = $1 AND trash_id = $2 AND id = ANY($3::text[]) RETURNING id`,
        [owner.name, owner.trashId ?? "", [...new Set(ids)]],
      );
      await this.dropUnreferenced(
        client,
        removed.rows.map((row) => row.id),
      );
      return removed.rows.length;
    });
  }

  async move(from: AttachmentOwner, to: AttachmentOwner): Promise<void> {
    if (from.name === to.name && (from.trashId ?? "") === (to.trashId ?? "")) return;
    const { attachments } = this.options.tables;
    await this.options.transaction(async (client) => {
      await client.query(
        `INSERT INTO ${attachments} (name, trash_id, ${COLUMNS})
         SELECT $3, $4, ${COLUMNS} FROM ${attachments} WHERE name = $1 AND trash_id = $2
         ON CONFLICT (name, trash_id, id) DO NOTHING`,
        [from.name, from.trashId ?? "", to.name, to.trashId ?? ""],
      );
      await client.query(`DELETE FROM ${attachments} WHERE name = $1 AND trash_id = $2`, [
        from.name,
        from.trashId ?? "",
      ]);
    });
  }

  async removeAll(owner: AttachmentOwner): Promise<void> {
    const { attachments } = this.options.tables;
    await this.options.transaction(async (client) => {
      const removed = await client.query<{ id: string }>(
        `DELETE FROM ${attachments} WHERE name = $1 AND trash_id = $2 RETURNING id`,
        [owner.name, owner.trashId ?? ""],
      );
      await this.dropUnreferenced(
        client,
        removed.rows.map((row) => row.id),
      );
    });
  }

  async owners(): Promise<AttachmentOwner[]> {
    const result = await this.options.pool.query<{ name: string; trash_id: string }>(
      `SELECT DISTINCT name, trash_id FROM ${this.options.tables.attachments}`,
    );
    return sortOwners(
      result.rows.map((row) =>
        row.trash_id === "" ? { name: row.name } : { name: row.name, trashId: row.trash_id },
      ),
    );
  }

  /** The pool belongs to the document store, which closes it. */
  async close(): Promise<void> {}

  /** Deletes those blobs of `ids` no row references any more. */
  private async dropUnreferenced(client: PoolClient, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { attachments, blobs } = this.options.tables;
    await client.query(
      `DELETE FROM ${blobs} AS b WHERE b.id = ANY($1::text[])
       AND NOT EXISTS (SELECT 1 FROM ${attachments} AS a WHERE a.id = b.id)`,
      [[...new Set(ids)]],
    );
  }
}
