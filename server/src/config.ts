/**
 * Configuration: every setting has an environment variable, a matching CLI
 * flag, a default and a description. It is read and validated once at
 * start-up; a bad value stops the server with a message that names the
 * setting, the value and what is allowed.
 */
import { type Command, Option } from "commander";
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
  readonly store: "leveldb" | "postgres" | "memory";
  /** PostgreSQL connection URL, for STORE=postgres. @default null */
  readonly databaseUrl: string | null;
  /** Redis URL: turns on fan-out between instances. @default null */
  readonly redisUrl: string | null;
  /** This instance shares documents with others (requires Redis and PostgreSQL). @default false */
  readonly cluster: boolean;
  /** fsync every write batch (survives power loss, not just a crash). @default false */
  readonly fsync: boolean;
  /** LevelDB's block cache: uncompressed blocks kept in memory after reads. @default 8 MiB */
  readonly leveldbCacheBytes: number;
  /** LevelDB's write buffer: writes held in memory before they go to a table file. @default 4 MiB */
  readonly leveldbWriteBufferBytes: number;
  /** @default "info" */
  readonly logLevel: LogLevel;
  /** Largest WebSocket message accepted, in bytes. @default 16 MiB */
  readonly maxMessageBytes: number;
  /** Unsent bytes a connection may hold before a client that does not read is dropped. @default 64 MiB */
  readonly maxSendBufferBytes: number;
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
  /** Merge outgoing broadcasts over this many ms; 0 merges what arrives within one event-loop turn; -1 never merges. @default 0 */
  readonly broadcastBatchMs: number;
  /** How long shutdown waits for pending writes before giving up. @default 20_000 */
  readonly shutdownTimeoutMs: number;
  /** HS256 key that signs access tokens; null with no public key = anonymous mode. @default null */
  readonly authSecret: string | null;
  /** ES256/RS256 public key (PEM) or JWKS URL that verifies access tokens. @default null */
  readonly authPublicKey: string | null;
  /** Required `iss` claim of access tokens; null accepts any. @default null */
  readonly authIssuer: string | null;
  /** Required `aud` claim of access tokens; null accepts any. @default null */
  readonly authAudience: string | null;
  /** Allow anonymous mode on an address other than loopback. @default false */
  readonly allowAnonymous: boolean;
  /** Bearer secret for the whole REST API. @default null */
  readonly apiSecret: string | null;
  /** Browser origins allowed besides the server's own ("*" for any). @default [] */
  readonly allowedOrigins: readonly string[];
  /** Take the client address from X-Forwarded-For (set only behind a proxy). @default false */
  readonly trustProxy: boolean;
  /** WebSocket connection attempts allowed per client address per minute; 0 = no limit. @default 600 */
  readonly rateLimitConnections: number;
  /** Largest REST request body in bytes. @default 1 MiB */
  readonly maxBodyBytes: number;
  /** Save an automatic version of a document being edited this often; 0 = never. @default 600_000 */
  readonly versionIntervalMs: number;
  /** Automatic versions kept per document (named versions are always kept). @default 50 */
  readonly maxAutoVersions: number;
  /** Receivers of webhook events. @default [] */
  readonly webhookUrls: readonly string[];
  /** HMAC-SHA256 key that signs webhook bodies. @default null */
  readonly webhookSecret: string | null;
  /** At most one document.updated event per document per this many ms. @default 2_000 */
  readonly webhookDebounceMs: number;
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
  z
    .string()
    .trim()
    .regex(/^-?\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const boolean = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0", "yes", "no"]))
  .transform((value) => value === "true" || value === "1" || value === "yes");

/** Comma-separated values, each checked by `item`; empty gives []. */
const list = (item: z.ZodType<string, string>) =>
  z
    .string()
    .transform((value) =>
      value
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part !== ""),
    )
    .pipe(z.array(item));

/** A browser origin as the Origin header sends it: scheme://host[:port], lower case, no path. */
const origin = z
  .string()
  .transform((value) => value.toLowerCase().replace(/\/$/, ""))
  .refine((value) => value === "*" || /^https?:\/\/[^/\s?#]+$/.test(value));

const httpUrl = z.string().refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
});

/** A JWKS URL: https, or http to a loopback address (keys fetched in the clear could be swapped). */
function jwksUrl(value: string): boolean {
  try {
    const url = new URL(value);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    return (
      url.protocol === "https:" ||
      (url.protocol === "http:" &&
        (host === "localhost" || host === "::1" || host.startsWith("127.")))
    );
  } catch {
    return false;
  }
}

/** A secret or key: set, or null (empty means not set). */
const optional = (schema: z.ZodType<string, string>) =>
  z
    .string()
    .transform((value) => value.trim())
    .pipe(z.union([z.literal("").transform(() => null), schema]));

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
    description:
      "document store: leveldb (durable, one process), postgres (durable, shared by instances) or memory (lost on exit)",
    allowed: "one of leveldb, postgres, memory",
    schema: z.enum(["leveldb", "postgres", "memory"]),
  }),
  setting({
    key: "databaseUrl",
    env: "DATABASE_URL",
    flag: "--database-url <url>",
    default: null,
    description: "PostgreSQL URL for STORE=postgres (postgres://user:password@host:5432/db)",
    allowed: "a postgres:// or postgresql:// URL",
    schema: optional(z.string().regex(/^postgres(ql)?:\/\//)),
  }),
  setting({
    key: "redisUrl",
    env: "REDIS_URL",
    flag: "--redis-url <url>",
    default: null,
    description: "Redis URL; turns on fan-out of updates and presence between instances",
    allowed: "a redis:// or rediss:// URL",
    schema: optional(z.string().regex(/^rediss?:\/\//)),
  }),
  setting({
    key: "cluster",
    env: "CLUSTER",
    flag: "--cluster <bool>",
    default: false,
    description:
      "this instance shares documents with others: requires REDIS_URL and STORE=postgres",
    allowed: "true or false",
    schema: boolean,
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
    key: "leveldbCacheBytes",
    env: "LEVELDB_CACHE_BYTES",
    flag: "--leveldb-cache-bytes <n>",
    default: 8 * MiB,
    description: "memory LevelDB may keep read blocks in (its block cache); 0 keeps none",
    allowed: "an integer 0-4294967295",
    schema: integer(0, 2 ** 32 - 1),
  }),
  setting({
    key: "leveldbWriteBufferBytes",
    env: "LEVELDB_WRITE_BUFFER_BYTES",
    flag: "--leveldb-write-buffer-bytes <n>",
    default: 4 * MiB,
    description:
      "writes LevelDB holds in memory before it writes a table file (up to twice this while one is written)",
    allowed: "an integer 65536-1073741824",
    schema: integer(64 * 1024, 1024 * MiB),
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
    key: "maxSendBufferBytes",
    env: "MAX_SEND_BUFFER_BYTES",
    flag: "--max-send-buffer-bytes <n>",
    default: 64 * MiB,
    description:
      "unsent bytes a connection may hold; a client that falls this far behind (does not read) is dropped",
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
      "merge outgoing updates for this many ms; 0 merges within one event-loop turn, adding no delay; -1 sends each update at once",
    allowed: "an integer -1-1000",
    schema: integer(-1, 1000),
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
  setting({
    key: "authSecret",
    env: "AUTH_SECRET",
    flag: "--auth-secret <secret>",
    default: null,
    description: "HS256 key that signs access tokens (at least 32 characters)",
    allowed: "a string of at least 32 characters",
    schema: optional(z.string().min(32)),
  }),
  setting({
    key: "authPublicKey",
    env: "AUTH_PUBLIC_KEY",
    flag: "--auth-public-key <pem-or-url>",
    default: null,
    description: "ES256/RS256 public key (PEM) or JWKS URL that verifies access tokens",
    allowed:
      "a PEM public key (-----BEGIN PUBLIC KEY-----) or an https JWKS URL (http only on loopback)",
    schema: optional(
      z
        .string()
        .transform((value) => value.replaceAll("\\n", "\n"))
        .refine((value) => value.startsWith("-----BEGIN PUBLIC KEY-----") || jwksUrl(value)),
    ),
  }),
  setting({
    key: "authIssuer",
    env: "AUTH_ISSUER",
    flag: "--auth-issuer <iss>",
    default: null,
    description:
      "accept only tokens whose iss claim is this (set it with a shared identity provider)",
    allowed: "a string",
    schema: optional(z.string().min(1)),
  }),
  setting({
    key: "authAudience",
    env: "AUTH_AUDIENCE",
    flag: "--auth-audience <aud>",
    default: null,
    description: "accept only tokens whose aud claim includes this",
    allowed: "a string",
    schema: optional(z.string().min(1)),
  }),
  setting({
    key: "allowAnonymous",
    env: "ALLOW_ANONYMOUS",
    flag: "--allow-anonymous <bool>",
    default: false,
    description: "without token auth, serve anyway on an address other than loopback",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "apiSecret",
    env: "API_SECRET",
    flag: "--api-secret <secret>",
    default: null,
    description: "bearer secret for the whole REST API (at least 32 characters)",
    allowed: "a string of at least 32 characters",
    schema: optional(z.string().min(32)),
  }),
  setting({
    key: "allowedOrigins",
    env: "ALLOWED_ORIGINS",
    flag: "--allowed-origins <list>",
    default: [],
    description: "comma-separated browser origins allowed besides the server's own; * for any",
    allowed: "comma-separated origins like https://app.example.com, or *",
    schema: list(origin),
  }),
  setting({
    key: "trustProxy",
    env: "TRUST_PROXY",
    flag: "--trust-proxy <bool>",
    default: false,
    description: "take the client address from X-Forwarded-For (only behind a proxy)",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "rateLimitConnections",
    env: "RATE_LIMIT_CONNECTIONS",
    flag: "--rate-limit-connections <n>",
    default: 600,
    description: "WebSocket connection attempts per client address per minute; 0 for no limit",
    allowed: "an integer 0-1000000",
    schema: integer(0, 1_000_000),
  }),
  setting({
    key: "maxBodyBytes",
    env: "MAX_BODY_BYTES",
    flag: "--max-body-bytes <n>",
    default: 1 * MiB,
    description:
      "largest REST request body; a larger one is refused with 413 (a replace costs about 1 s of CPU per MiB)",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "versionIntervalMs",
    env: "VERSION_INTERVAL_MS",
    flag: "--version-interval-ms <ms>",
    default: 600_000,
    description: "save an automatic version of a document being edited this often; 0 for never",
    allowed: "an integer 0 or 1000-86400000",
    schema: integer(0, 86_400_000).refine((ms) => ms === 0 || ms >= 1000),
  }),
  setting({
    key: "maxAutoVersions",
    env: "MAX_AUTO_VERSIONS",
    flag: "--max-auto-versions <n>",
    default: 50,
    description: "automatic versions kept per document, oldest removed first (named ones stay)",
    allowed: "an integer 0-100000",
    schema: integer(0, 100_000),
  }),
  setting({
    key: "webhookUrls",
    env: "WEBHOOK_URL",
    flag: "--webhook-url <list>",
    default: [],
    description: "comma-separated URLs that receive webhook events",
    allowed: "comma-separated http(s) URLs",
    schema: list(httpUrl),
  }),
  setting({
    key: "webhookSecret",
    env: "WEBHOOK_SECRET",
    flag: "--webhook-secret <secret>",
    default: null,
    description: "HMAC-SHA256 key that signs webhook bodies (X-Collab-Signature)",
    allowed: "a string of at least 16 characters",
    schema: optional(z.string().min(16)),
  }),
  setting({
    key: "webhookDebounceMs",
    env: "WEBHOOK_DEBOUNCE_MS",
    flag: "--webhook-debounce-ms <ms>",
    default: 2_000,
    description: "at most one document.updated event per document per this many ms",
    allowed: "an integer 0-3600000",
    schema: integer(0, 3_600_000),
  }),
] as const;

/** How a default is shown in --help and the README. */
export function showDefault(value: Config[keyof Config]): string {
  if (value === null) return "(none)";
  if (Array.isArray(value)) return value.length === 0 ? "(none)" : value.join(",");
  return String(value);
}

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

/**
 * Adds every setting to `command` as a flag with its environment variable:
 * flags override the environment, which overrides the defaults.
 */
export function addSettings(command: Command): Command {
  for (const s of SETTINGS) {
    const option = new Option(s.flag, s.description).env(s.env);
    // Unset optional and list settings stay undefined, so they keep their default.
    const scalar = s.default !== null && !Array.isArray(s.default);
    command.addOption(scalar ? option.default(String(s.default)) : option);
  }
  return command.addHelpText(
    "after",
    "\nEvery flag can also be set by the environment variable shown; the flag wins.",
  );
}

/** The validated Config from a command that {@link addSettings} set up, once parsed. */
export function configFromOptions(command: Command): Config {
  const options = command.opts<Record<string, string | undefined>>();
  return parseConfig(Object.fromEntries(SETTINGS.map((s) => [s.key, options[s.key]])));
}

/** The validated Config from environment variables alone (no flags). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(Object.fromEntries(SETTINGS.map((s) => [s.key, env[s.env]])));
}
