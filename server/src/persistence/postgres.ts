/**
 * The shared store: documents in PostgreSQL, so several server instances
 * (processes, hosts) can serve the same documents at once. It shares the
 * write queue, checks and lifecycle of {@link LogStore}; unlike LevelDB it
 * keeps no per-document state in memory, because other instances write to
 * the same rows: the database is the only truth, and `load`, `meta` and
 * `list` always read it.
 *
 * Schema (in `options.schema` when given, else the connection's search path),
 * created or migrated at open in one transaction:
 *
 *   collab_schema     (singleton, version, probed)   the schema version; the probe writes here
 *   collab_documents  (name PK, created, updated, snapshot bytea, snapshot_bytes)
 *   collab_updates    (id bigserial PK, name -> collab_documents, "update" bytea, created)
 *                     index (name, id): one document's log, in append order
 *   collab_versions   (name, id, label, kind, created, bytes, author, state bytea), PK (name, id)
 *   collab_trash      (name, id, deleted, deleted_by, created, updated, bytes, versions, state), PK (name, id)
 *   collab_trash_versions  (name, trash_id, id, label, kind, created, bytes, author, state)
 *   collab_deleted_clients (name, trash_id, clients bytea): kept after a purge, PK (name, trash_id)
 *
 * Names and version ids are `text COLLATE "C"`, so they sort by UTF-8 bytes
 * as in the other stores, and a prefix listing is a range scan of the
 * primary key. Times are milliseconds since the epoch from the database's
 * clock (one clock for every instance); a version's `created` is the
 * caller's and is kept as given.
 *
 * Concurrency between instances, per document (advisory transaction locks
 * on a hash of the name, taken at the start of a batch in one global order,
 * so two batches never deadlock):
 * - content lock: appends and compactions take it shared, so they never wait
 *   for each other; a delete takes it exclusive, so no append or compaction
 *   of another instance straddles it (no log row outlives its document).
 * - snapshot lock: a compaction takes it exclusive, so two compactions of one
 *   document run one after the other and the second merges the first's result.
 * A compaction reads the snapshot and the committed log rows, merges them
 * with its state (`Y.mergeUpdates`), deletes exactly the rows it read (by id)
 * and writes the merged snapshot, all in one transaction. A row another
 * instance commits meanwhile is not read and so not deleted; a row is
 * deleted only in the transaction that put its content into the snapshot.
 *
 * Durability: a write resolves after COMMIT, with `synchronous_commit` on
 * (forced per transaction when the server's default is `off`) and logged
 * tables only. A commit whose reply is lost (the connection drops) is retried:
 * an append may then be stored twice and a compaction merged twice, both
 * harmless in Yjs.
 */
import { DatabaseError, escapeIdentifier, Pool, type PoolClient } from "pg";
import * as Y from "yjs";
import { PostgresAttachmentStore } from "../attachments/postgres.ts";
import { CollabError, isCollabError } from "../errors.ts";
import { LogStore, type LogStoreOptions, type WriteOp } from "./log-store.ts";
import { clientsOf, decodeClients, encodeClients, mergedState } from "./state.ts";
import type {
  DeletedClientsRecord,
  DocumentMeta,
  ListOptions,
  StoredDocument,
  TrashEntry,
  TrashListOptions,
  VersionMeta,
} from "./store.ts";

export interface PostgresStoreOptions extends LogStoreOptions {
  /** A `postgres://user:password@host:port/database` URL. */
  readonly url: string;
  /**
   * PostgreSQL schema holding the tables, created if missing. Without it the
   * tables go where the connection's search path puts them (`public`).
   */
  readonly schema?: string;
  /** Connections in the pool: one writes at a time, the rest serve reads. @default 10 */
  readonly maxConnections?: number;
  /** Longest a statement (or a wait for a document's lock) may run, in ms. @default 30_000 */
  readonly statementTimeoutMs?: number;
  /** Longest to wait for a connection, in ms. @default 10_000 */
  readonly connectionTimeoutMs?: number;
  /** Shown in `pg_stat_activity`. @default "collab-server" */
  readonly applicationName?: string;
}

/** The schema this code reads and writes; {@link MIGRATIONS} brings older ones up to it. */
const SCHEMA_VERSION = 3;

/**
 * Advisory lock class ids ("COL" and a number): the first key of
 * `pg_advisory_xact_lock(int, int)`, the second being `hashtext(name)`.
 * Exported for operators (what a `pg_locks` row means) and tests.
 */
export const LOCK = {
  /** Per document: appends and compactions shared, deletes exclusive. */
  content: 0x434f4c01,
  /** Per document: compactions exclusive. */
  snapshot: 0x434f4c02,
  /** One per database: schema creation and migrations. */
  migration: 0x434f4c03,
} as const;

/** Now, in ms since the epoch, by the database's clock. */
const NOW_MS = "floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

interface Tables {
  readonly schema: string;
  readonly documents: string;
  readonly updates: string;
  readonly versions: string;
  readonly trash: string;
  readonly trashVersions: string;
  readonly deletedClients: string;
  readonly attachments: string;
  readonly attachmentBlobs: string;
}

function tablesIn(schema: string | undefined): Tables {
  const table = (name: string) =>
    schema === undefined ? name : `${escapeIdentifier(schema)}.${name}`;
  return {
    schema: table("collab_schema"),
    documents: table("collab_documents"),
    updates: table("collab_updates"),
    versions: table("collab_versions"),
    trash: table("collab_trash"),
    trashVersions: table("collab_trash_versions"),
    deletedClients: table("collab_deleted_clients"),
    attachments: table("collab_attachments"),
    attachmentBlobs: table("collab_attachment_blobs"),
  };
}

/**
 * Statements that bring the schema from version `i` to `i + 1`, run in
 * order at open, in the same transaction as the version bump.
 */
const MIGRATIONS: ReadonlyArray<(t: Tables) => readonly string[]> = [
  (t) => [
    `CREATE TABLE ${t.documents} (
      name text COLLATE "C" PRIMARY KEY,
      created bigint NOT NULL,
      updated bigint NOT NULL,
      snapshot bytea,
      snapshot_bytes integer NOT NULL DEFAULT 0
    )`,
    `CREATE TABLE ${t.updates} (
      id bigserial PRIMARY KEY,
      name text COLLATE "C" NOT NULL REFERENCES ${t.documents} (name),
      "update" bytea NOT NULL,
      created bigint NOT NULL
    )`,
    `CREATE INDEX collab_updates_name_id ON ${t.updates} (name, id)`,
    `CREATE TABLE ${t.versions} (
      name text COLLATE "C" NOT NULL,
      id text COLLATE "C" NOT NULL,
      label text,
      kind text NOT NULL CHECK (kind IN ('named', 'auto')),
      created double precision NOT NULL,
      bytes integer NOT NULL,
      author text,
      state bytea NOT NULL,
      PRIMARY KEY (name, id)
    )`,
  ],
  (t) => [
    `CREATE TABLE ${t.trash} (
      name text COLLATE "C" NOT NULL,
      id text COLLATE "C" NOT NULL,
      deleted double precision NOT NULL,
      deleted_by text,
      created double precision NOT NULL,
      updated double precision NOT NULL,
      bytes integer NOT NULL,
      versions integer NOT NULL,
      state bytea NOT NULL,
      PRIMARY KEY (name, id)
    )`,
    `CREATE TABLE ${t.trashVersions} (
      name text COLLATE "C" NOT NULL,
      trash_id text COLLATE "C" NOT NULL,
      id text COLLATE "C" NOT NULL,
      label text,
      kind text NOT NULL CHECK (kind IN ('named', 'auto')),
      created double precision NOT NULL,
      bytes integer NOT NULL,
      author text,
      state bytea NOT NULL,
      PRIMARY KEY (name, trash_id, id)
    )`,
    `CREATE TABLE ${t.deletedClients} (
      name text COLLATE "C" NOT NULL,
      trash_id text COLLATE "C" NOT NULL,
      clients bytea NOT NULL,
      PRIMARY KEY (name, trash_id)
    )`,
  ],
  // Attachments (attachments/postgres.ts): bytes once per content, one row per document holding them.
  (t) => [
    `CREATE TABLE ${t.attachmentBlobs} (
      id text COLLATE "C" PRIMARY KEY,
      bytes bytea NOT NULL
    )`,
    `CREATE TABLE ${t.attachments} (
      name text COLLATE "C" NOT NULL,
      trash_id text COLLATE "C" NOT NULL,
      id text COLLATE "C" NOT NULL REFERENCES ${t.attachmentBlobs} (id),
      type text NOT NULL,
      size bigint NOT NULL,
      filename text NOT NULL,
      created bigint NOT NULL,
      PRIMARY KEY (name, trash_id, id)
    )`,
    `CREATE INDEX ON ${t.attachments} (id)`,
  ],
];

/** A document's metadata as one row: the document joined with a summary of its log. */
function metaQuery(t: Tables, where: string): string {
  return `SELECT d.name, d.created::float8 AS created,
      greatest(d.updated, l.last)::float8 AS updated,
      d.snapshot_bytes, l.entries, l.bytes
    FROM ${t.documents} AS d
    CROSS JOIN LATERAL (
      SELECT count(*)::float8 AS entries,
        coalesce(sum(octet_length(u."update")), 0)::float8 AS bytes,
        max(u.created) AS last
      FROM ${t.updates} AS u WHERE u.name = d.name
    ) AS l
    WHERE ${where}`;
}

interface MetaRow {
  name: string;
  created: number;
  updated: number;
  snapshot_bytes: number;
  entries: number;
  bytes: number;
}

function metaOfRow(row: MetaRow): DocumentMeta {
  return {
    created: row.created,
    updated: row.updated,
    bytes: row.snapshot_bytes + row.bytes,
    logEntries: row.entries,
    logBytes: row.bytes,
  };
}

interface VersionRow {
  id: string;
  label: string | null;
  kind: "named" | "auto";
  created: number;
  bytes: number;
  author: string | null;
}

const VERSION_COLUMNS = "id, label, kind, created, bytes, author";

function versionOfRow(row: VersionRow): VersionMeta {
  const { id, label, kind, created, bytes, author } = row;
  return { id, label, kind, created, bytes, author };
}

interface TrashRow {
  name: string;
  id: string;
  deleted: number;
  deleted_by: string | null;
  created: number;
  updated: number;
  bytes: number;
  versions: number;
}

const TRASH_COLUMNS = "name, id, deleted, deleted_by, created, updated, bytes, versions";

function trashOfRow(row: TrashRow): TrashEntry {
  const { name, id, deleted, created, updated, bytes, versions } = row;
  return { name, id, deleted, deletedBy: row.deleted_by, created, updated, bytes, versions };
}

export class PostgresStore extends LogStore {
  readonly kind = "postgres";
  private readonly pool: Pool;
  private readonly t: Tables;
  /** Opens a write transaction; also forces `synchronous_commit` on when the server turned it off. */
  private readonly begin: string;

  private constructor(pool: Pool, tables: Tables, begin: string, options: PostgresStoreOptions) {
    super(options);
    this.pool = pool;
    this.t = tables;
    this.begin = begin;
  }

  /**
   * The attachments kept in the same database, over this store's connections
   * (so the store must stay open while they are used).
   */
  attachments(): PostgresAttachmentStore {
    const { attachments, attachmentBlobs } = this.t;
    return new PostgresAttachmentStore({
      pool: this.pool,
      tables: { attachments, blobs: attachmentBlobs },
      transaction: (body) => transaction(this.pool, this.begin, body),
    });
  }

  /**
   * Connects, then creates or migrates the schema. Fails with
   * STORE_UNAVAILABLE (naming the server, never the password) when the
   * database cannot be reached or refuses the login, and with STORE_CORRUPT
   * when it holds a newer schema than this version knows.
   *
   * @example
   * const store = await PostgresStore.open({ url: "postgres://collab:secret@db:5432/collab" });
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const target = describeTarget(options.url);
    const statementTimeout = options.statementTimeoutMs ?? 30_000;
    const pool = new Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
      statement_timeout: statementTimeout,
      // Client side too: a connection that stops answering must not hold the write queue forever.
      query_timeout: statementTimeout + 5_000,
      // A process frozen mid-transaction must not hold a document's locks forever.
      idle_in_transaction_session_timeout: 120_000,
      application_name: options.applicationName ?? "collab-server",
      keepAlive: true,
    });
    // An idle connection the server closed (a restart, a failover) is dropped by the pool and
    // replaced on the next query; without a listener the error would end the process.
    pool.on("error", () => {});
    const tables = tablesIn(options.schema);
    try {
      const synchronousCommit = await migrate(pool, tables, options.schema);
      const begin =
        synchronousCommit === "off" ? "BEGIN; SET LOCAL synchronous_commit TO on" : "BEGIN";
      return new PostgresStore(pool, tables, begin, options);
    } catch (error) {
      await pool.end().catch(() => {});
      if (isCollabError(error)) throw error;
      throw new CollabError(
        "STORE_UNAVAILABLE",
        `cannot open PostgreSQL at ${target.where}: ${target.redact(messageOf(error))}`,
        safeCause(error),
      );
    }
  }

  protected async writeBatch(batch: readonly WriteOp[]): Promise<void> {
    await transaction(this.pool, this.begin, async (client) => {
      await this.lockDocuments(client, batch);
      // Every document row the batch writes to exists from here on: a new row is inserted now,
      // in name order like the locks, so two instances creating the same documents at once
      // wait for each other in one order and never in a cycle.
      const written = batch.flatMap((op) =>
        op.kind === "append" || op.kind === "compact" ? [op.name] : [],
      );
      await this.ensureDocuments(client, written);
      /** Documents this batch deleted: a later append must create their row again. */
      const deleted = new Set<string>();
      let probed = false;
      for (let i = 0; i < batch.length; ) {
        const op = batch[i] as WriteOp;
        if (op.kind === "append") {
          // A run of appends (any documents) is one statement, keeping their order.
          let end = i + 1;
          while (batch[end]?.kind === "append") end++;
          const run = batch.slice(i, end) as AppendOp[];
          const recreated = run.flatMap((append) =>
            deleted.has(append.name) ? [append.name] : [],
          );
          if (recreated.length > 0) {
            await this.ensureDocuments(client, recreated);
            for (const name of recreated) deleted.delete(name);
          }
          await this.appendAll(client, run);
          i = end;
          continue;
        }
        switch (op.kind) {
          case "compact":
            await this.compactIn(client, op.name, op.state, op.times);
            deleted.delete(op.name);
            break;
          case "delete":
            await client.query(`DELETE FROM ${this.t.updates} WHERE name = $1`, [op.name]);
            await client.query(`DELETE FROM ${this.t.documents} WHERE name = $1`, [op.name]);
            await client.query(`DELETE FROM ${this.t.versions} WHERE name = $1`, [op.name]);
            deleted.add(op.name);
            break;
          case "saveVersion": {
            const { id, label, kind, created, bytes, author } = op.version;
            await client.query(
              `INSERT INTO ${this.t.versions} (name, id, label, kind, created, bytes, author, state)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (name, id) DO UPDATE SET label = EXCLUDED.label, kind = EXCLUDED.kind,
                 created = EXCLUDED.created, bytes = EXCLUDED.bytes, author = EXCLUDED.author,
                 state = EXCLUDED.state`,
              [op.name, id, label, kind, created, bytes, author, op.state],
            );
            break;
          }
          case "deleteVersion":
            await client.query(`DELETE FROM ${this.t.versions} WHERE name = $1 AND id = $2`, [
              op.name,
              op.id,
            ]);
            break;
          // Each of these is alone in its batch (isAlone).
          case "trash":
            op.outcome.entry = await this.trashIn(client, op.name, op.entry);
            if (op.outcome.entry !== null) deleted.add(op.name);
            break;
          case "restoreTrash":
            op.outcome.found = await this.restoreIn(client, op.from, op.id, op.name);
            break;
          case "putTrash":
            await this.putTrashIn(client, op);
            break;
          case "putDeletedClients":
            await client.query(
              `INSERT INTO ${this.t.deletedClients} (name, trash_id, clients) VALUES ($1, $2, $3)
               ON CONFLICT (name, trash_id) DO UPDATE SET clients = EXCLUDED.clients`,
              [op.name, op.record.id, encodeClients(op.record.clients)],
            );
            break;
          case "purgeTrash":
            await client.query(
              `DELETE FROM ${this.t.trashVersions} WHERE name = $1 AND trash_id = $2`,
              [op.name, op.id],
            );
            op.outcome.found =
              ((
                await client.query(`DELETE FROM ${this.t.trash} WHERE name = $1 AND id = $2`, [
                  op.name,
                  op.id,
                ])
              ).rowCount ?? 0) > 0;
            break;
          case "probe":
            probed = true;
            break;
        }
        i++;
      }
      // Last, so the one row every instance's probe updates stays locked only until COMMIT.
      if (probed) await client.query(`UPDATE ${this.t.schema} SET probed = ${NOW_MS}`);
    });
  }

  /**
   * Inserts the rows of the documents in `names` that have none, in name
   * order. A row that exists is only read, not locked, so this never waits
   * on a compaction rewriting it.
   */
  private async ensureDocuments(client: PoolClient, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await client.query(
      `INSERT INTO ${this.t.documents} (name, created, updated)
       SELECT n.name, ${NOW_MS}, ${NOW_MS}
       FROM (SELECT DISTINCT unnest($1::text[]) COLLATE "C" AS name) AS n
       WHERE NOT EXISTS (SELECT 1 FROM ${this.t.documents} AS d WHERE d.name = n.name)
       ORDER BY n.name
       ON CONFLICT (name) DO NOTHING`,
      [[...new Set(names)]],
    );
  }

  /**
   * Takes the batch's document locks (see the module comment), each once in
   * its strongest mode, in (class, key) order: every batch of every
   * instance locks in the same order, so none waits on another in a cycle.
   */
  private async lockDocuments(client: PoolClient, batch: readonly WriteOp[]): Promise<void> {
    const locks = new Map<string, { space: number; name: string; exclusive: boolean }>();
    const need = (space: number, name: string, exclusive: boolean) => {
      const key = `${space}:${name}`;
      const held = locks.get(key);
      if (held === undefined) locks.set(key, { space, name, exclusive });
      else held.exclusive ||= exclusive;
    };
    for (const op of batch) {
      if (op.kind === "append") need(LOCK.content, op.name, false);
      else if (op.kind === "delete" || op.kind === "trash" || op.kind === "restoreTrash") {
        // Exclusive: no append or compaction of another instance straddles the move.
        need(LOCK.content, op.name, true);
        need(LOCK.snapshot, op.name, true);
      } else if (op.kind === "compact") {
        need(LOCK.content, op.name, false);
        need(LOCK.snapshot, op.name, true);
      }
    }
    if (locks.size === 0) return;
    const list = [...locks.values()];
    // The subquery sorts (OFFSET 0 keeps it a subquery), and the outer query locks row by row in that order.
    await client.query(
      `SELECT CASE WHEN l.exclusive THEN pg_advisory_xact_lock(l.space, l.key)
                   ELSE pg_advisory_xact_lock_shared(l.space, l.key) END
       FROM (
         SELECT t.space, hashtext(t.name) AS key, bool_or(t.exclusive) AS exclusive
         FROM unnest($1::int[], $2::text[], $3::bool[]) AS t(space, name, exclusive)
         GROUP BY 1, 2 ORDER BY 1, 2 OFFSET 0
       ) AS l`,
      [list.map((l) => l.space), list.map((l) => l.name), list.map((l) => l.exclusive)],
    );
  }

  /**
   * Appends updates in order, to documents whose rows exist: the updates
   * travel as one binary parameter, cut by offsets.
   */
  private async appendAll(client: PoolClient, ops: readonly AppendOp[]): Promise<void> {
    const names = ops.map((op) => op.name);
    const starts: number[] = [];
    const lengths: number[] = [];
    let offset = 1;
    for (const op of ops) {
      starts.push(offset);
      lengths.push(op.update.byteLength);
      offset += op.update.byteLength;
    }
    await client.query(
      `INSERT INTO ${this.t.updates} (name, "update", created)
       SELECT t.name, substring($2::bytea FROM t.start FOR t.length), ${NOW_MS}
       FROM unnest($1::text[], $3::int[], $4::int[]) WITH ORDINALITY AS t(name, start, length, ord)
       ORDER BY t.ord`,
      [names, Buffer.concat(ops.map((op) => op.update)), starts, lengths],
    );
  }

  /**
   * Replaces the snapshot and the log rows committed so far with one merged
   * snapshot. Runs under the document's snapshot lock, so no other
   * compaction reads or writes the snapshot meanwhile; appends of other
   * instances go on, and their rows, not read here, are kept.
   */
  private async compactIn(
    client: PoolClient,
    name: string,
    state: Uint8Array,
    times: { readonly created: number; readonly updated: number } | undefined,
  ): Promise<void> {
    const stored = await client.query<{ snapshot: Buffer | null }>(
      `SELECT snapshot FROM ${this.t.documents} WHERE name = $1`,
      [name],
    );
    const log = await client.query<{ id: string; update: Buffer }>(
      `SELECT id, "update" FROM ${this.t.updates} WHERE name = $1 ORDER BY id`,
      [name],
    );
    const snapshot = stored.rows[0]?.snapshot ?? null;
    const parts: Uint8Array[] = [state];
    if (snapshot !== null) parts.push(snapshot);
    if (log.rows.length > 0) parts.push(mergeMany(log.rows.map((row) => row.update)));
    // `state` first: where it already holds what the others hold (the usual case), its
    // encoding wins, so deleted content it has garbage-collected is not brought back.
    const merged = parts.length === 1 ? state : Y.mergeUpdates(parts);
    if (log.rows.length > 0) {
      await client.query(`DELETE FROM ${this.t.updates} WHERE id = ANY($1::bigint[])`, [
        log.rows.map((row) => row.id),
      ]);
    }
    // Times come with a document being put (a restore, a migration); a compaction keeps `created`.
    await client.query(
      `INSERT INTO ${this.t.documents} AS d (name, created, updated, snapshot, snapshot_bytes)
       VALUES ($1, coalesce($4::float8::bigint, ${NOW_MS}),
         coalesce($5::float8::bigint, ${NOW_MS}), $2, $3)
       ON CONFLICT (name) DO UPDATE SET created = coalesce($4::float8::bigint, d.created),
         updated = EXCLUDED.updated, snapshot = EXCLUDED.snapshot,
         snapshot_bytes = EXCLUDED.snapshot_bytes`,
      [name, merged, merged.byteLength, times?.created ?? null, times?.updated ?? null],
    );
  }

  /** Moves `name` into the trash (see DocumentStore.trash), under its exclusive locks. */
  private async trashIn(
    client: PoolClient,
    name: string,
    fields: { readonly id: string; readonly deleted: number; readonly deletedBy: string | null },
  ): Promise<TrashEntry | null> {
    const stored = await this.readIn(client, name);
    if (stored === null) return null;
    const state = mergedState(stored.updates);
    const moved = await client.query(
      `INSERT INTO ${this.t.trashVersions}
         (name, trash_id, id, label, kind, created, bytes, author, state)
       SELECT name, $2, id, label, kind, created, bytes, author, state
       FROM ${this.t.versions} WHERE name = $1`,
      [name, fields.id],
    );
    const entry: TrashEntry = {
      name,
      id: fields.id,
      deleted: fields.deleted,
      deletedBy: storable(fields.deletedBy),
      created: stored.meta.created,
      updated: stored.meta.updated,
      bytes: state.byteLength,
      versions: moved.rowCount ?? 0,
    };
    await client.query(
      `INSERT INTO ${this.t.trash}
         (name, id, deleted, deleted_by, created, updated, bytes, versions, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        name,
        entry.id,
        entry.deleted,
        entry.deletedBy,
        entry.created,
        entry.updated,
        entry.bytes,
        entry.versions,
        state,
      ],
    );
    await client.query(
      `INSERT INTO ${this.t.deletedClients} (name, trash_id, clients) VALUES ($1, $2, $3)
       ON CONFLICT (name, trash_id) DO UPDATE SET clients = EXCLUDED.clients`,
      [name, entry.id, encodeClients(clientsOf(state))],
    );
    await client.query(`DELETE FROM ${this.t.updates} WHERE name = $1`, [name]);
    await client.query(`DELETE FROM ${this.t.documents} WHERE name = $1`, [name]);
    await client.query(`DELETE FROM ${this.t.versions} WHERE name = $1`, [name]);
    return entry;
  }

  /** Moves trash entry (`from`, `id`) back into `to`, under `to`'s exclusive locks. */
  private async restoreIn(
    client: PoolClient,
    from: string,
    id: string,
    to: string,
  ): Promise<boolean> {
    const found = await client.query<{ created: number; updated: number; state: Buffer }>(
      `SELECT created, updated, state FROM ${this.t.trash} WHERE name = $1 AND id = $2 FOR UPDATE`,
      [from, id],
    );
    const trashed = found.rows[0];
    if (trashed === undefined) return false;
    const existing = await this.readIn(client, to);
    const state =
      existing === null ? trashed.state : mergedState([...existing.updates, trashed.state]);
    await client.query(`DELETE FROM ${this.t.updates} WHERE name = $1`, [to]);
    await client.query(
      `INSERT INTO ${this.t.documents} AS d (name, created, updated, snapshot, snapshot_bytes)
       VALUES ($1, $3::float8::bigint, $4::float8::bigint, $2::bytea, octet_length($2::bytea))
       ON CONFLICT (name) DO UPDATE SET updated = ${NOW_MS}, snapshot = EXCLUDED.snapshot,
         snapshot_bytes = EXCLUDED.snapshot_bytes`,
      [to, state, trashed.created, trashed.updated],
    );
    await client.query(
      `INSERT INTO ${this.t.versions} (name, id, label, kind, created, bytes, author, state)
       SELECT $3, id, label, kind, created, bytes, author, state
       FROM ${this.t.trashVersions} WHERE name = $1 AND trash_id = $2
       ON CONFLICT (name, id) DO UPDATE SET label = EXCLUDED.label, kind = EXCLUDED.kind,
         created = EXCLUDED.created, bytes = EXCLUDED.bytes, author = EXCLUDED.author,
         state = EXCLUDED.state`,
      [from, id, to],
    );
    await client.query(`DELETE FROM ${this.t.trashVersions} WHERE name = $1 AND trash_id = $2`, [
      from,
      id,
    ]);
    await client.query(`DELETE FROM ${this.t.trash} WHERE name = $1 AND id = $2`, [from, id]);
    if (to === from) {
      await client.query(`DELETE FROM ${this.t.deletedClients} WHERE name = $1 AND trash_id = $2`, [
        from,
        id,
      ]);
    }
    return true;
  }

  protected async readTrash(options: TrashListOptions): Promise<TrashEntry[]> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const bind = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (options.name !== undefined) {
      conditions.push(`name = ${bind(options.name)}`);
    } else {
      const prefix = (options.prefix ?? "").toWellFormed();
      if (prefix.includes("\0")) return [];
      if (prefix !== "") {
        conditions.push(`name >= ${bind(prefix)}`);
        const end = prefixEnd(prefix);
        if (end !== null) conditions.push(`name < ${bind(end)}`);
      }
    }
    if (options.after !== undefined) {
      const name = options.after.name.toWellFormed().split("\0")[0] ?? "";
      conditions.push(
        `(name, id) > (${bind(name)}, ${bind(options.after.id.toWellFormed().split("\0")[0] ?? "")})`,
      );
    }
    const where = conditions.length > 0 ? conditions.join(" AND ") : "true";
    const result = await this.pool.query<TrashRow>(
      `SELECT ${TRASH_COLUMNS} FROM ${this.t.trash} WHERE ${where}
       ORDER BY name, id LIMIT ${bind(options.limit)}`,
      values,
    );
    return result.rows.map(trashOfRow);
  }

  protected async readTrashEntry(
    name: string,
    id: string,
  ): Promise<{ entry: TrashEntry; state: Uint8Array } | null> {
    const result = await this.pool.query<TrashRow & { state: Buffer }>(
      `SELECT ${TRASH_COLUMNS}, state FROM ${this.t.trash} WHERE name = $1 AND id = $2`,
      [name, id],
    );
    const row = result.rows[0];
    return row === undefined ? null : { entry: trashOfRow(row), state: row.state };
  }

  /** Writes a trash entry as given (migration, backups), replacing one of the same name and id. */
  private async putTrashIn(
    client: PoolClient,
    op: Extract<WriteOp, { kind: "putTrash" }>,
  ): Promise<void> {
    const { entry, state, versions } = op;
    await client.query(`DELETE FROM ${this.t.trashVersions} WHERE name = $1 AND trash_id = $2`, [
      op.name,
      entry.id,
    ]);
    await client.query(
      `INSERT INTO ${this.t.trash}
         (name, id, deleted, deleted_by, created, updated, bytes, versions, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (name, id) DO UPDATE SET deleted = EXCLUDED.deleted,
         deleted_by = EXCLUDED.deleted_by, created = EXCLUDED.created, updated = EXCLUDED.updated,
         bytes = EXCLUDED.bytes, versions = EXCLUDED.versions, state = EXCLUDED.state`,
      [
        op.name,
        entry.id,
        entry.deleted,
        storable(entry.deletedBy),
        entry.created,
        entry.updated,
        state.byteLength,
        versions.length,
        state,
      ],
    );
    for (const { meta, state: versionState } of versions) {
      await client.query(
        `INSERT INTO ${this.t.trashVersions}
           (name, trash_id, id, label, kind, created, bytes, author, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          op.name,
          entry.id,
          meta.id,
          storable(meta.label),
          meta.kind,
          meta.created,
          versionState.byteLength,
          storable(meta.author),
          versionState,
        ],
      );
    }
    await client.query(
      `INSERT INTO ${this.t.deletedClients} (name, trash_id, clients) VALUES ($1, $2, $3)
       ON CONFLICT (name, trash_id) DO UPDATE SET clients = EXCLUDED.clients`,
      [op.name, entry.id, encodeClients(clientsOf(state))],
    );
  }

  protected async readTrashVersions(
    name: string,
    id: string,
  ): Promise<Array<{ meta: VersionMeta; state: Uint8Array }>> {
    const result = await this.pool.query<VersionRow & { state: Buffer }>(
      `SELECT ${VERSION_COLUMNS}, state FROM ${this.t.trashVersions}
       WHERE name = $1 AND trash_id = $2 ORDER BY id`,
      [name, id],
    );
    return result.rows.map((row) => ({ meta: versionOfRow(row), state: row.state }));
  }

  protected async readDeletedClientRecords(options: {
    readonly after?: { readonly name: string; readonly id: string };
    readonly limit: number;
  }): Promise<DeletedClientsRecord[]> {
    const after = options.after;
    const result = await this.pool.query<{ name: string; trash_id: string; clients: Buffer }>(
      after === undefined
        ? `SELECT name, trash_id, clients FROM ${this.t.deletedClients}
           ORDER BY name, trash_id LIMIT $1`
        : `SELECT name, trash_id, clients FROM ${this.t.deletedClients}
           WHERE (name, trash_id) > ($2, $3) ORDER BY name, trash_id LIMIT $1`,
      after === undefined
        ? [options.limit]
        : [
            options.limit,
            after.name.toWellFormed().split("\0")[0] ?? "",
            after.id.toWellFormed().split("\0")[0] ?? "",
          ],
    );
    return result.rows.map((row) => ({
      name: row.name,
      id: row.trash_id,
      clients: decodeClients(row.clients),
    }));
  }

  protected async readDeletedClients(name: string): Promise<ReadonlySet<number>> {
    const result = await this.pool.query<{ clients: Buffer }>(
      `SELECT clients FROM ${this.t.deletedClients} WHERE name = $1`,
      [name],
    );
    return new Set(result.rows.flatMap((row) => decodeClients(row.clients)));
  }

  protected read(name: string): Promise<StoredDocument | null> {
    // One snapshot for both reads: a compaction committing between them would otherwise
    // pair the old snapshot with the new, shorter log.
    return transaction(this.pool, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", (client) =>
      this.readIn(client, name),
    );
  }

  private async readIn(client: PoolClient, name: string): Promise<StoredDocument | null> {
    const stored = await client.query<{
      created: number;
      updated: number;
      snapshot: Buffer | null;
    }>(
      `SELECT created::float8 AS created, updated::float8 AS updated, snapshot
       FROM ${this.t.documents} WHERE name = $1`,
      [name],
    );
    const doc = stored.rows[0];
    if (doc === undefined) return null;
    const log = await client.query<{ update: Buffer; created: number }>(
      `SELECT "update", created::float8 AS created FROM ${this.t.updates}
       WHERE name = $1 ORDER BY id`,
      [name],
    );
    const updates: Uint8Array[] = [];
    if (doc.snapshot !== null) updates.push(doc.snapshot);
    let logBytes = 0;
    let updated = doc.updated;
    for (const row of log.rows) {
      updates.push(row.update);
      logBytes += row.update.byteLength;
      if (row.created > updated) updated = row.created;
    }
    const meta: DocumentMeta = {
      created: doc.created,
      updated,
      bytes: (doc.snapshot?.byteLength ?? 0) + logBytes,
      logEntries: log.rows.length,
      logBytes,
    };
    return { updates, meta };
  }

  protected async readMeta(name: string): Promise<DocumentMeta | null> {
    const result = await this.pool.query<MetaRow>(metaQuery(this.t, "d.name = $1"), [name]);
    const row = result.rows[0];
    return row === undefined ? null : metaOfRow(row);
  }

  protected async readList(
    options: ListOptions,
  ): Promise<Array<{ name: string; meta: DocumentMeta }>> {
    const prefix = (options.prefix ?? "").toWellFormed();
    // No name holds a control character, so no name starts with a prefix holding NUL (which
    // PostgreSQL text cannot carry), and names after "a\0b" are those after "a".
    if (prefix.includes("\0")) return [];
    const conditions: string[] = [];
    const values: unknown[] = [];
    const bound = (condition: string, value: string) => {
      values.push(value);
      conditions.push(`d.name ${condition} $${values.length}`);
    };
    if (prefix !== "") {
      bound(">=", prefix);
      const end = prefixEnd(prefix);
      if (end !== null) bound("<", end);
    }
    if (options.after !== undefined) bound(">", options.after.toWellFormed().split("\0")[0] ?? "");
    values.push(options.limit);
    const where = conditions.length > 0 ? conditions.join(" AND ") : "true";
    const result = await this.pool.query<MetaRow>(
      `${metaQuery(this.t, where)} ORDER BY d.name LIMIT $${values.length}`,
      values,
    );
    return result.rows.map((row) => ({ name: row.name, meta: metaOfRow(row) }));
  }

  protected async readVersions(name: string): Promise<VersionMeta[]> {
    const result = await this.pool.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM ${this.t.versions} WHERE name = $1 ORDER BY id`,
      [name],
    );
    return result.rows.map(versionOfRow);
  }

  protected async readVersion(
    name: string,
    id: string,
  ): Promise<{ meta: VersionMeta; state: Uint8Array } | null> {
    const result = await this.pool.query<VersionRow & { state: Buffer }>(
      `SELECT ${VERSION_COLUMNS}, state FROM ${this.t.versions} WHERE name = $1 AND id = $2`,
      [name, id],
    );
    const row = result.rows[0];
    return row === undefined ? null : { meta: versionOfRow(row), state: row.state };
  }

  /**
   * Labels and authors as PostgreSQL text can hold them: it has no NUL, so
   * U+0000 (and a lone surrogate, which UTF-8 cannot encode) becomes U+FFFD.
   * Done here, so the returned metadata is what is stored.
   */
  override saveVersion(
    name: string,
    version: Omit<VersionMeta, "bytes">,
    state: Uint8Array,
  ): Promise<VersionMeta> {
    return super.saveVersion(
      name,
      { ...version, label: storable(version.label), author: storable(version.author) },
      state,
    );
  }

  protected async release(): Promise<void> {
    // The pool ends once its connections are returned; one stuck on a dead network (until its
    // query times out) must not hold a shutdown that already gave up on its writes.
    await Promise.race([
      this.pool.end(),
      new Promise((resolve) => setTimeout(resolve, 2_000).unref()),
    ]);
  }
}

type AppendOp = Extract<WriteOp, { kind: "append" }>;

/**
 * Runs `body` in a transaction on one pooled connection. On any failure the
 * connection is discarded, not returned to the pool: its state (an aborted
 * transaction, a half-read reply, a server gone away) is unknown.
 */
async function transaction<T>(
  pool: Pool,
  begin: string,
  body: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  // A checked-out connection reports a dropped socket as an event too; its query rejects already.
  const ignore = () => {};
  client.on("error", ignore);
  try {
    await client.query(begin);
    const result = await body(client);
    await client.query("COMMIT");
    client.removeListener("error", ignore);
    client.release();
    return result;
  } catch (error) {
    client.removeListener("error", ignore);
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/**
 * Creates the schema, or migrates an older one, in one transaction under a
 * database-wide advisory lock, so instances starting together do it once.
 * Returns the session's `synchronous_commit`.
 */
async function migrate(pool: Pool, t: Tables, schema: string | undefined): Promise<string> {
  return transaction(pool, "BEGIN", async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1, 0)", [LOCK.migration]);
    // Create only what is missing: CREATE ... IF NOT EXISTS needs the CREATE privilege even when
    // the object exists, which a role allowed only to use a prepared schema lacks.
    if (schema !== undefined) {
      const found = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      if (found.rows.length === 0) await client.query(`CREATE SCHEMA ${escapeIdentifier(schema)}`);
    }
    const table = await client.query<{ oid: string | null }>("SELECT to_regclass($1) AS oid", [
      t.schema,
    ]);
    if (!table.rows[0]?.oid) {
      await client.query(
        `CREATE TABLE ${t.schema} (
          singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
          version integer NOT NULL,
          probed bigint
        )`,
      );
    }
    const found = await client.query<{ version: number }>(`SELECT version FROM ${t.schema}`);
    const version = found.rows[0]?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new CollabError(
        "STORE_CORRUPT",
        `the PostgreSQL schema is at version ${version}; this server reads version ${SCHEMA_VERSION} (upgrade the server)`,
      );
    }
    for (let next = version; next < SCHEMA_VERSION; next++) {
      for (const statement of (MIGRATIONS[next] as (t: Tables) => readonly string[])(t)) {
        await client.query(statement);
      }
    }
    if (version === 0) {
      await client.query(`INSERT INTO ${t.schema} (version) VALUES ($1)`, [SCHEMA_VERSION]);
    } else if (version < SCHEMA_VERSION) {
      await client.query(`UPDATE ${t.schema} SET version = $1`, [SCHEMA_VERSION]);
    }
    // Acknowledged means committed: refuse tables someone made UNLOGGED (lost in a crash).
    const unlogged = await client.query<{ relname: string }>(
      `SELECT relname FROM pg_class
       WHERE oid IN (to_regclass($1), to_regclass($2), to_regclass($3), to_regclass($4),
         to_regclass($5), to_regclass($6), to_regclass($7), to_regclass($8))
         AND relpersistence <> 'p'`,
      [
        t.documents,
        t.updates,
        t.versions,
        t.trash,
        t.trashVersions,
        t.deletedClients,
        t.attachments,
        t.attachmentBlobs,
      ],
    );
    if (unlogged.rows.length > 0) {
      throw new CollabError(
        "STORE_UNAVAILABLE",
        `PostgreSQL table ${unlogged.rows.map((row) => row.relname).join(", ")} is not logged; acknowledged writes would not survive a crash (ALTER TABLE ... SET LOGGED)`,
      );
    }
    const setting = await client.query<{ value: string }>(
      "SELECT current_setting('synchronous_commit') AS value",
    );
    return setting.rows[0]?.value ?? "on";
  });
}

/**
 * How many updates one `Y.mergeUpdates` call takes. It merges n updates in
 * about n² time (20,000 small ones: seconds), so a long log is merged in
 * groups, and the groups' results in turn: about n log n.
 */
const MERGE_GROUP = 16;

/** `Y.mergeUpdates(updates)`, in groups of {@link MERGE_GROUP}. */
function mergeMany(updates: readonly Uint8Array[]): Uint8Array {
  let level = updates;
  while (level.length > MERGE_GROUP) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += MERGE_GROUP)
      next.push(Y.mergeUpdates(level.slice(i, i + MERGE_GROUP)));
    level = next;
  }
  return level.length === 1 ? (level[0] as Uint8Array) : Y.mergeUpdates([...level]);
}

/**
 * The first string after every string starting with `prefix`, in UTF-8
 * byte order (code point order): the prefix with its last code point
 * incremented, or null when every string from `prefix` on qualifies.
 */
export function prefixEnd(prefix: string): string | null {
  const points = Array.from(prefix, (char) => char.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() ?? 0;
    if (last < 0x10ffff) {
      // Surrogates are not characters: after U+D7FF comes U+E000.
      points.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  return null;
}

/** `value` as PostgreSQL text can hold it (see {@link PostgresStore.saveVersion}). */
function storable(value: string | null): string | null {
  return value === null ? null : value.toWellFormed().replaceAll("\0", "\ufffd");
}

/** Where a URL points, for messages, and a way to blank its password out of any text. */
function describeTarget(url: string): { where: string; redact: (text: string) => string } {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
    const database = decodeURIComponent(parsed.pathname.slice(1)) || "(default database)";
    const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : "";
    const password = decodeURIComponent(parsed.password);
    return {
      where: `${user}${host}:${parsed.port || "5432"}/${database}`,
      redact: (text) =>
        password === ""
          ? text
          : text.replaceAll(password, "***").replaceAll(parsed.password, "***"),
    };
  } catch {
    // Never echo an unparseable URL: it may hold a password.
    return { where: "DATABASE_URL (not a valid URL)", redact: () => "the URL does not parse" };
  }
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError) {
    const inner = error.errors.map(messageOf).filter((message) => message !== "");
    if (inner.length > 0) return inner.join("; ");
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return error.message || (typeof code === "string" ? code : error.name);
  }
  return String(error);
}

/**
 * The cause to keep on an open failure: server errors and socket errors
 * carry no credentials; anything else (a URL parser's error holds the URL
 * it refused) is left out, its message already redacted into ours.
 */
function safeCause(error: unknown): { cause?: unknown } {
  const system =
    error instanceof Error && typeof (error as { syscall?: unknown }).syscall === "string";
  return error instanceof DatabaseError || system ? { cause: error } : {};
}
