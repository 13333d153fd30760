/**
 * Configuration: every setting has an environment variable, a matching CLI
 * flag, a default and a description. It is read and validated once at
 * start-up; a bad value stops the server with a message that names the
 * setting, the value and what is allowed.
 */
import { Command, Option } from "commander";
import { z } from "zod";
import { CollabError } from "./errors.ts";

const MiB = 1024 * 1024;

/** The validated configuration the server runs with. */
export interface Config {
  /** Address to listen on. @default "127.0.0.1" */
  readonly host: string;
  /** TCP port; 0 picks a free one. @default 1234 */
  readonly port: number;
  /** Where LevelDB keeps its files. @default "./data" */
  readonly dataDir: string;
  /** Which store keeps documents. @default "leveldb" */
  readonly store: "leveldb" | "memory";
  /** fsync every write batch (survives power loss, not just a crash). @default false */
  readonly fsync: boolean;
  /** @default "info" */
  readonly logLevel: LogLevel;
  /** Largest WebSocket message accepted, in bytes. @default 16 MiB */
  readonly maxMessageBytes: number;
  /** Most documents held in memory at once; more are refused until some unload. @default 10_000 */
  readonly maxDocuments: number;
  /** Bytes a connection may queue before its first document is authenticated. @default 5 MiB */
  readonly maxUnauthenticatedQueueBytes: number;
  /** Messages a connection may queue before authentication. @default 1_000 */
  readonly maxUnauthenticatedQueueMessages: number;
  /** Documents a connection may have waiting for authentication at once. @default 100 */
  readonly maxPendingDocuments: number;
  /** A connection that sends nothing for this long is closed. @default 60_000 */
  readonly idleTimeoutMs: number;
  /** Compact a document's log once it holds this many updates. @default 10_000 */
  readonly compactMaxEntries: number;
  /** ...or this many bytes. @default 8 MiB */
  readonly compactMaxBytes: number;
  /** Merge outgoing broadcasts over this many ms; 0 sends each update at once. @default 0 */
  readonly broadcastBatchMs: number;
  /** How long shutdown waits for pending writes before giving up. @default 20_000 */
  readonly shutdownTimeoutMs: number;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

interface Setting<K extends keyof Config> {
  readonly key: K;
  readonly env: string;
  readonly flag: string;
  readonly default: Config[K];
  readonly description: string;
  /** What is allowed, completing "must be ...". */
  readonly allowed: string;
  readonly schema: z.ZodType<Config[K]>;
}

const integer = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));

const boolean = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0", "yes", "no"]))
  .transform((value) => value === "true" || value === "1" || value === "yes");

function setting<K extends keyof Config>(s: Setting<K>): Setting<K> {
  return s;
}

/** Every setting, in the order `--help` and the README list them. */
export const SETTINGS = [
  setting({
    key: "host",
    env: "HOST",
    flag: "--host <address>",
    default: "127.0.0.1",
    description: "address to listen on (0.0.0.0 for all interfaces)",
    allowed: "a host name or IP address",
    schema: z.string().trim().min(1),
  }),
  setting({
    key: "port",
    env: "PORT",
    flag: "--port <n>",
    default: 1234,
    description: "TCP port for HTTP and WebSocket; 0 picks a free port",
    allowed: "an integer 0-65535",
    schema: integer(0, 65535),
  }),
  setting({
    key: "dataDir",
    env: "DATA_DIR",
    flag: "--data-dir <path>",
    default: "./data",
    description: "directory of the LevelDB store (one server process per directory)",
    allowed: "a directory path",
    schema: z.string().trim().min(1),
  }),
  setting({
    key: "store",
    env: "STORE",
    flag: "--store <kind>",
    default: "leveldb",
    description: "document store: leveldb (durable) or memory (lost on exit, for development)",
    allowed: "one of leveldb, memory",
    schema: z.enum(["leveldb", "memory"]),
  }),
  setting({
    key: "fsync",
    env: "FSYNC",
    flag: "--fsync <bool>",
    default: false,
    description: "fsync every write batch before acknowledging it (survives power loss)",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "logLevel",
    env: "LOG_LEVEL",
    flag: "--log-level <level>",
    default: "info",
    description: "log level",
    allowed: `one of ${LOG_LEVELS.join(", ")}`,
    schema: z.enum(LOG_LEVELS),
  }),
  setting({
    key: "maxMessageBytes",
    env: "MAX_MESSAGE_BYTES",
    flag: "--max-message-bytes <n>",
    default: 16 * MiB,
    description: "largest WebSocket message accepted; a larger one closes its connection (1009)",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxDocuments",
    env: "MAX_DOCUMENTS",
    flag: "--max-documents <n>",
    default: 10_000,
    description: "most documents in memory at once; opening another is refused until one unloads",
    allowed: "an integer 1-10000000",
    schema: integer(1, 10_000_000),
  }),
  setting({
    key: "maxUnauthenticatedQueueBytes",
    env: "MAX_UNAUTHENTICATED_QUEUE_BYTES",
    flag: "--max-unauthenticated-queue-bytes <n>",
    default: 5 * MiB,
    description: "bytes a connection may queue before it is authenticated (GHSA-xwhh-v746-pj9m)",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxUnauthenticatedQueueMessages",
    env: "MAX_UNAUTHENTICATED_QUEUE_MESSAGES",
    flag: "--max-unauthenticated-queue-messages <n>",
    default: 1_000,
    description: "messages a connection may queue before it is authenticated",
    allowed: "an integer 1-1000000",
    schema: integer(1, 1_000_000),
  }),
  setting({
    key: "maxPendingDocuments",
    env: "MAX_PENDING_DOCUMENTS",
    flag: "--max-pending-documents <n>",
    default: 100,
    description: "documents one connection may have waiting for authentication at once",
    allowed: "an integer 1-100000",
    schema: integer(1, 100_000),
  }),
  setting({
    key: "idleTimeoutMs",
    env: "IDLE_TIMEOUT_MS",
    flag: "--idle-timeout-ms <ms>",
    default: 60_000,
    description:
      "close a connection that sends nothing for this long (checked every period, so within two)",
    allowed: "an integer 1000-3600000",
    schema: integer(1000, 3_600_000),
  }),
  setting({
    key: "compactMaxEntries",
    env: "COMPACT_MAX_ENTRIES",
    flag: "--compact-max-entries <n>",
    default: 10_000,
    description: "compact a document's update log once it holds this many updates",
    allowed: "an integer 1-10000000",
    schema: integer(1, 10_000_000),
  }),
  setting({
    key: "compactMaxBytes",
    env: "COMPACT_MAX_BYTES",
    flag: "--compact-max-bytes <n>",
    default: 8 * MiB,
    description: "...or once its updates add up to this many bytes",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "broadcastBatchMs",
    env: "BROADCAST_BATCH_MS",
    flag: "--broadcast-batch-ms <ms>",
    default: 0,
    description:
      "merge outgoing updates for this many ms; 0 merges within one event-loop turn, adding no delay",
    allowed: "an integer 0-1000",
    schema: integer(0, 1000),
  }),
  setting({
    key: "shutdownTimeoutMs",
    env: "SHUTDOWN_TIMEOUT_MS",
    flag: "--shutdown-timeout-ms <ms>",
    default: 20_000,
    description: "on SIGTERM, how long to wait for pending writes before exiting with an error",
    allowed: "an integer 0-600000",
    schema: integer(0, 600_000),
  }),
] as const;

/** The defaults of every setting. */
export const DEFAULT_CONFIG: Config = Object.fromEntries(
  SETTINGS.map((s) => [s.key, s.default]),
) as unknown as Config;

/**
 * Validates raw strings (from flags or the environment) into a Config.
 * Throws CONFIG_INVALID naming the first bad setting.
 */
export function parseConfig(raw: Partial<Record<keyof Config, string>>): Config {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const s of SETTINGS) {
    const value = raw[s.key];
    if (value === undefined) continue;
    const result = (s.schema as z.ZodType<unknown>).safeParse(value);
    if (!result.success) {
      throw new CollabError(
        "CONFIG_INVALID",
        `${s.env} must be ${s.allowed}, got ${JSON.stringify(value)}`,
      );
    }
    config[s.key] = result.data;
  }
  return config as unknown as Config;
}

/** The CLI: flags override the environment, which overrides the defaults. */
export function buildCli(version: string): Command {
  const program = new Command("collab-server")
    .description(
      "Self-hosted collaborative document server: Hocuspocus protocol, durable LevelDB store.",
    )
    .version(version)
    .allowExcessArguments(false)
    .showHelpAfterError()
    .addHelpText(
      "after",
      "\nEvery flag can also be set by the environment variable shown; the flag wins.",
    );
  for (const s of SETTINGS) {
    program.addOption(new Option(s.flag, s.description).env(s.env).default(String(s.default)));
  }
  return program;
}

/**
 * Reads flags and environment variables (`process.env`, as commander does)
 * into a validated Config. `--help` and `--version` print and exit.
 */
export function configFromArgs(argv: readonly string[], version: string): Config {
  const program = buildCli(version);
  program.parse([...argv], { from: "user" });
  const options = program.opts<Record<string, string>>();
  return parseConfig(Object.fromEntries(SETTINGS.map((s) => [s.key, options[s.key]])));
}
