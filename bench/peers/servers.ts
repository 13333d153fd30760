/**
 * The servers the peer benchmarks (`npm run bench peers`) compare, each run
 * as its own child process on 127.0.0.1 (bench/server.ts `startServer`, with
 * the IPC of bench/servers/child.ts for memory after GC and statistics):
 *
 * - ours on LevelDB (the default) and, when PostgreSQL is available, ours on
 *   PostgreSQL (a fresh database per place);
 * - stock Hocuspocus 4 in memory, and with its database extension storing
 *   the whole state in LevelDB (bench/servers/stock.ts; the SQLite extension
 *   cannot run here, see there);
 * - the y-websocket reference server `@y/websocket-server@0.1.1` with its
 *   LevelDB persistence (bench/servers/y-websocket.ts).
 *
 * Each is driven by its own official client: the Hocuspocus provider, or
 * y-websocket's `WebsocketProvider`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg, { escapeIdentifier } from "pg";
import { ALLOCATOR_ENV } from "../../server/src/observability/allocator.ts";
import { type Engine, startPostgres } from "../../test/helpers/engines.ts";
import { dirSize } from "../lib.ts";
import { type ChildServer, OURS, startServer } from "../server.ts";

const STOCK = fileURLToPath(new URL("../servers/stock.ts", import.meta.url));
const Y_WEBSOCKET = fileURLToPath(new URL("../servers/y-websocket.ts", import.meta.url));

/** The client library a server is driven with. */
export type Protocol = "hocuspocus" | "y-websocket";

/**
 * Where a server keeps its documents for one scenario: a directory, or a
 * PostgreSQL database. Starting a server again on the same place is a
 * restart on the same data.
 */
export interface Place {
  /** Bytes the documents take on disk (directory files, or PostgreSQL tables with TOAST and indexes). */
  bytes(): Promise<number>;
  dispose(): Promise<void>;
}

/** One server under test. */
export interface Peer {
  /** Short id for JSON and charts, e.g. "ours-leveldb". */
  readonly id: string;
  /** Column heading, e.g. "ours (LevelDB)". */
  readonly label: string;
  readonly protocol: Protocol;
  /** True for this project's server. */
  readonly ours: boolean;
  /** Whether documents survive a restart. */
  readonly durable: boolean;
  /**
   * What the server's acknowledgement of an update means: "stored" (ours:
   * sent once the update is durable), "received" (stock Hocuspocus: sent on
   * receipt, stored later if at all), "none" (y-websocket has no
   * acknowledgement).
   */
  readonly acknowledges: "stored" | "received" | "none";
  /** What the column means, for the report's notes. */
  readonly description: string;
  /** A fresh place for this server's documents. */
  place(): Promise<Place>;
  /** Starts the server on `place`; stop it with the returned server's `stop()`. */
  start(place: Place): Promise<ChildServer>;
}

/**
 * The peers `BENCH_PEERS` names (comma-separated ids, e.g.
 * `ours-leveldb,y-websocket`), for a quicker run while working on one
 * figure; null (every peer) when it is unset. Published figures come from
 * runs with every peer.
 */
function chosenPeers(): ReadonlySet<string> | null {
  const raw = process.env.BENCH_PEERS?.trim();
  if (!raw) return null;
  return new Set(raw.split(",").map((id) => id.trim()));
}

/** A temporary directory place. */
class DirectoryPlace implements Place {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  bytes(): Promise<number> {
    return dirSize(this.dir);
  }
  dispose(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function directory(id: string): Promise<DirectoryPlace> {
  return new DirectoryPlace(await mkdtemp(join(tmpdir(), `collab-bench-${id}-`)));
}

function dirOf(place: Place): string {
  if (!(place instanceof DirectoryPlace)) throw new Error("expected a directory place");
  return place.dir;
}

/** A database of its own in the benchmark's PostgreSQL cluster. */
class DatabasePlace implements Place {
  readonly url: string;
  private readonly admin: pg.Pool;
  private readonly database: string;
  constructor(url: string, admin: pg.Pool, database: string) {
    this.url = url;
    this.admin = admin;
    this.database = database;
  }
  async bytes(): Promise<number> {
    const pool = new pg.Pool({ connectionString: this.url, max: 1 });
    try {
      const result = await pool.query<{ bytes: number }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::float8 AS bytes
         FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r'`,
      );
      return result.rows[0]?.bytes ?? Number.NaN;
    } finally {
      await pool.end();
    }
  }
  async dispose(): Promise<void> {
    await this.admin.query(
      `DROP DATABASE IF EXISTS ${escapeIdentifier(this.database)} WITH (FORCE)`,
    );
  }
}

/** The servers to compare, and how to release what they share (PostgreSQL). */
export interface PeerSet {
  readonly peers: readonly Peer[];
  /** Why a server is missing (PostgreSQL not installed), if one is. */
  readonly skipped: readonly string[];
  close(): Promise<void>;
}

/**
 * Every server of the comparison. PostgreSQL is started when it is
 * installed (`npm test` installs it); without it, ours on PostgreSQL is
 * skipped and said so.
 */
export async function peerSet(): Promise<PeerSet> {
  const wanted = chosenPeers();
  const peers: Peer[] = [
    {
      id: "ours-leveldb",
      label: "ours (LevelDB)",
      protocol: "hocuspocus",
      ours: true,
      durable: true,
      acknowledges: "stored",
      description:
        "this server, STORE=leveldb (the default), FSYNC off (the default), glibc's malloc settings as npm start and the Docker image set them",
      place: () => directory("ours"),
      start: (place) =>
        startServer("ours (LevelDB)", OURS, { ...ALLOCATOR_ENV, DATA_DIR: dirOf(place) }),
    },
  ];
  const skipped: string[] = [];
  let postgres: Engine | undefined;
  let admin: pg.Pool | undefined;
  try {
    if (wanted === null || wanted.has("ours-postgres")) postgres = await startPostgres();
  } catch (error) {
    skipped.push(`ours (PostgreSQL): ${error instanceof Error ? error.message : String(error)}`);
  }
  if (postgres !== undefined) {
    const cluster = postgres;
    const pool = new pg.Pool({ connectionString: cluster.url, max: 1 });
    admin = pool;
    let next = 0;
    peers.push({
      id: "ours-postgres",
      label: "ours (PostgreSQL)",
      protocol: "hocuspocus",
      ours: true,
      durable: true,
      acknowledges: "stored",
      description:
        "this server, STORE=postgres, PostgreSQL on loopback with fsync and synchronous_commit on, glibc's malloc settings as npm start sets them",
      async place() {
        const database = `bench_${next++}`;
        await pool.query(`CREATE DATABASE ${escapeIdentifier(database)}`);
        const url = new URL(cluster.url);
        url.pathname = `/${database}`;
        return new DatabasePlace(url.toString(), pool, database);
      },
      start(place) {
        if (!(place instanceof DatabasePlace)) throw new Error("expected a database place");
        return startServer("ours (PostgreSQL)", OURS, {
          ...ALLOCATOR_ENV,
          STORE: "postgres",
          DATABASE_URL: place.url,
        });
      },
    });
  }
  peers.push(
    {
      id: "hocuspocus-memory",
      label: "Hocuspocus (memory)",
      protocol: "hocuspocus",
      ours: false,
      durable: false,
      acknowledges: "received",
      description: "stock @hocuspocus/server 4.7, no persistence, default broadcast batching",
      place: () => directory("hocuspocus-memory"),
      start: () => startServer("Hocuspocus (memory)", STOCK, {}),
    },
    {
      id: "hocuspocus-leveldb",
      label: "Hocuspocus (database ext., LevelDB)",
      protocol: "hocuspocus",
      ours: false,
      durable: true,
      acknowledges: "received",
      description:
        "stock @hocuspocus/server 4.7 with @hocuspocus/extension-database storing the whole state in LevelDB (debounced 2 s, at most 10 s)",
      place: () => directory("hocuspocus-leveldb"),
      start: (place) =>
        startServer("Hocuspocus (database ext., LevelDB)", STOCK, { STORE_DIR: dirOf(place) }),
    },
    {
      id: "y-websocket",
      label: "y-websocket (LevelDB)",
      protocol: "y-websocket",
      ours: false,
      durable: true,
      acknowledges: "none",
      description: "@y/websocket-server 0.1.1 with YPERSISTENCE (y-leveldb 0.1)",
      place: () => directory("y-websocket"),
      start: (place) =>
        startServer("y-websocket (LevelDB)", Y_WEBSOCKET, { DATA_DIR: dirOf(place) }),
    },
  );
  return {
    peers: wanted === null ? peers : peers.filter(({ id }) => wanted.has(id)),
    skipped,
    async close() {
      await admin?.end();
      await postgres?.stop();
    },
  };
}
