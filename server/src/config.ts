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
  /** permessage-deflate for clients that offer it; about 125 KB more server memory per connection. @default "off" */
  readonly wsCompression: WsCompression;
  /** With compression on, messages smaller than this many bytes are sent uncompressed. @default 1_024 */
  readonly wsCompressionMinBytes: number;
  /**
   * Bytes of one connection's updates that may wait to be stored; past this
   * the server stops reading that connection until half are stored. @default 1 MiB
   */
  readonly maxUnstoredBytes: number;
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
  /** Attempts per address per minute beyond that, for reconnect storms. @default 2_000 */
  readonly rateLimitBurst: number;
  /** Largest REST request body in bytes. @default 1 MiB */
  readonly maxBodyBytes: number;
  /** Largest attachment (image or file) in bytes. @default 25 MiB */
  readonly maxAttachmentBytes: number;
  /** Most attachments one document may have. @default 1_000 */
  readonly maxAttachmentsPerDocument: number;
  /** Most bytes of attachments one document may have. @default 1 GiB */
  readonly maxAttachmentBytesPerDocument: number;
  /** HMAC key of signed attachment links; null derives one from AUTH_SECRET or API_SECRET, else random per process. @default null */
  readonly attachmentUrlSecret: string | null;
  /** A signed attachment link works for between this and twice this many seconds. @default 3_600 */
  readonly attachmentUrlSeconds: number;
  /** An attachment nothing shows (content or versions) is deleted once older than this. @default 86_400_000 */
  readonly attachmentGraceMs: number;
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
  /** Days a deleted document stays in the trash before it is purged; 0 purges at once. @default 30 */
  readonly trashRetentionDays: number;
  /** Bearer token `/metrics` requires; null leaves metrics open. @default null */
  readonly metricsToken: string | null;
  /** PEM certificate (chain) file: with `tlsKey`, serve HTTPS and wss://. @default null */
  readonly tlsCert: string | null;
  /** PEM private key file of `tlsCert`. @default null */
  readonly tlsKey: string | null;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const WS_COMPRESSION = ["off", "on"] as const;
export type WsCompression = (typeof WS_COMPRESSION)[number];

interface SettingSpec<K extends keyof Config> {
  readonly key: K;
  readonly env: string;
  /** The flag's value placeholder for `--help`, e.g. `<n>`. */
  readonly argument: string;
  /** A secret (or a URL that may hold one): shown as `(set)` wherever settings are shown. */
  readonly secret?: boolean;
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

/** A setting as the table declares it, with its flag. */
interface Setting<K extends keyof Config> extends SettingSpec<K> {
  /**
   * `--` and the environment variable in lower case with dashes (`WEBHOOK_URL` is
   * `--webhook-url`), then the argument: derived, never written by hand, so the two cannot
   * drift apart. The CLI library names the parsed value after the flag, not after `key`;
   * {@link configFromOptions} reads it under the same derived name.
   */
  readonly flag: string;
}

function setting<K extends keyof Config>(spec: SettingSpec<K>): Setting<K> {
  return { ...spec, flag: `${flagName(spec.env)} ${spec.argument}` };
}

/** `WEBHOOK_URL` -> `--webhook-url`. */
export function flagName(env: string): string {
  return `--${env.toLowerCase().replaceAll("_", "-")}`;
}

/** Every setting, in the order `--help` and the README list them. */
export const SETTINGS = [
  setting({
    key: "host",
    env: "HOST",
    argument: "<address>",
    default: "127.0.0.1",
    description: "address to listen on (0.0.0.0 for all interfaces)",
    allowed: "a host name or IP address",
    schema: z.string().trim().min(1),
  }),
  setting({
    key: "port",
    env: "PORT",
    argument: "<n>",
    default: 1234,
    description: "TCP port for HTTP and WebSocket; 0 picks a free port",
    allowed: "an integer 0-65535",
    schema: integer(0, 65535),
  }),
  setting({
    key: "dataDir",
    env: "DATA_DIR",
    argument: "<path>",
    default: "./data",
    description: "directory of the LevelDB store (one server process per directory)",
    allowed: "a directory path",
    schema: z.string().trim().min(1),
  }),
  setting({
    key: "store",
    env: "STORE",
    argument: "<kind>",
    default: "leveldb",
    description:
      "document store: leveldb (durable, one process), postgres (durable, shared by instances) or memory (lost on exit)",
    allowed: "one of leveldb, postgres, memory",
    schema: z.enum(["leveldb", "postgres", "memory"]),
  }),
  setting({
    key: "databaseUrl",
    secret: true,
    env: "DATABASE_URL",
    argument: "<url>",
    default: null,
    description: "PostgreSQL URL for STORE=postgres (postgres://user:password@host:5432/db)",
    allowed: "a postgres:// or postgresql:// URL",
    schema: optional(z.string().regex(/^postgres(ql)?:\/\//)),
  }),
  setting({
    key: "redisUrl",
    secret: true,
    env: "REDIS_URL",
    argument: "<url>",
    default: null,
    description: "Redis URL; turns on fan-out of updates and presence between instances",
    allowed: "a redis:// or rediss:// URL",
    schema: optional(z.string().regex(/^rediss?:\/\//)),
  }),
  setting({
    key: "cluster",
    env: "CLUSTER",
    argument: "<bool>",
    default: false,
    description:
      "this instance shares documents with others: requires REDIS_URL and STORE=postgres",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "fsync",
    env: "FSYNC",
    argument: "<bool>",
    default: false,
    description: "fsync every write batch before acknowledging it (survives power loss)",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "leveldbCacheBytes",
    env: "LEVELDB_CACHE_BYTES",
    argument: "<n>",
    default: 8 * MiB,
    description: "memory LevelDB may keep read blocks in (its block cache); 0 keeps none",
    allowed: "an integer 0-4294967295",
    schema: integer(0, 2 ** 32 - 1),
  }),
  setting({
    key: "leveldbWriteBufferBytes",
    env: "LEVELDB_WRITE_BUFFER_BYTES",
    argument: "<n>",
    default: 4 * MiB,
    description:
      "writes LevelDB holds in memory before it writes a table file (up to twice this while one is written)",
    allowed: "an integer 65536-1073741824",
    schema: integer(64 * 1024, 1024 * MiB),
  }),
  setting({
    key: "logLevel",
    env: "LOG_LEVEL",
    argument: "<level>",
    default: "info",
    description: "log level",
    allowed: `one of ${LOG_LEVELS.join(", ")}`,
    schema: z.enum(LOG_LEVELS),
  }),
  setting({
    key: "maxMessageBytes",
    env: "MAX_MESSAGE_BYTES",
    argument: "<n>",
    default: 16 * MiB,
    description: "largest WebSocket message accepted; a larger one closes its connection (1009)",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxSendBufferBytes",
    env: "MAX_SEND_BUFFER_BYTES",
    argument: "<n>",
    default: 64 * MiB,
    description:
      "unsent bytes a connection may hold; a client that falls this far behind (does not read) is dropped",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "wsCompression",
    env: "WS_COMPRESSION",
    argument: "<mode>",
    default: "off",
    description:
      "on: compress WebSocket messages (permessage-deflate) for clients that offer it, as browsers do: a first sync takes about 40% of the bytes, each connection about 125 KB more server memory (docs/benchmarks.md)",
    allowed: `one of ${WS_COMPRESSION.join(", ")}`,
    schema: z.string().trim().toLowerCase().pipe(z.enum(WS_COMPRESSION)),
  }),
  setting({
    key: "wsCompressionMinBytes",
    env: "WS_COMPRESSION_MIN_BYTES",
    argument: "<n>",
    default: 1024,
    description:
      "with WS_COMPRESSION=on, messages smaller than this go uncompressed (typing and presence are; a document's initial sync is not)",
    allowed: "an integer 0-1073741824",
    schema: integer(0, 1024 * MiB),
  }),
  setting({
    key: "maxUnstoredBytes",
    env: "MAX_UNSTORED_BYTES",
    argument: "<n>",
    default: MiB,
    description:
      "bytes of one connection's updates that may wait to be stored; past this the server stops reading that connection (backpressure) until half of them are stored",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxDocuments",
    env: "MAX_DOCUMENTS",
    argument: "<n>",
    default: 10_000,
    description: "most documents in memory at once; opening another is refused until one unloads",
    allowed: "an integer 1-10000000",
    schema: integer(1, 10_000_000),
  }),
  setting({
    key: "maxUnauthenticatedQueueBytes",
    env: "MAX_UNAUTHENTICATED_QUEUE_BYTES",
    argument: "<n>",
    default: 5 * MiB,
    description: "bytes a connection may queue before it is authenticated (GHSA-xwhh-v746-pj9m)",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxUnauthenticatedQueueMessages",
    env: "MAX_UNAUTHENTICATED_QUEUE_MESSAGES",
    argument: "<n>",
    default: 1_000,
    description: "messages a connection may queue before it is authenticated",
    allowed: "an integer 1-1000000",
    schema: integer(1, 1_000_000),
  }),
  setting({
    key: "maxPendingDocuments",
    env: "MAX_PENDING_DOCUMENTS",
    argument: "<n>",
    default: 100,
    description: "documents one connection may have waiting for authentication at once",
    allowed: "an integer 1-100000",
    schema: integer(1, 100_000),
  }),
  setting({
    key: "idleTimeoutMs",
    env: "IDLE_TIMEOUT_MS",
    argument: "<ms>",
    default: 60_000,
    description:
      "close a connection that sends nothing for this long (checked every period, so within two)",
    allowed: "an integer 1000-3600000",
    schema: integer(1000, 3_600_000),
  }),
  setting({
    key: "compactMaxEntries",
    env: "COMPACT_MAX_ENTRIES",
    argument: "<n>",
    default: 10_000,
    description: "compact a document's update log once it holds this many updates",
    allowed: "an integer 1-10000000",
    schema: integer(1, 10_000_000),
  }),
  setting({
    key: "compactMaxBytes",
    env: "COMPACT_MAX_BYTES",
    argument: "<n>",
    default: 8 * MiB,
    description: "...or once its updates add up to this many bytes",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "broadcastBatchMs",
    env: "BROADCAST_BATCH_MS",
    argument: "<ms>",
    default: 0,
    description:
      "merge outgoing updates for this many ms; 0 merges within one event-loop turn, adding no delay; -1 sends each update at once",
    allowed: "an integer -1-1000",
    schema: integer(-1, 1000),
  }),
  setting({
    key: "shutdownTimeoutMs",
    env: "SHUTDOWN_TIMEOUT_MS",
    argument: "<ms>",
    default: 20_000,
    description: "on SIGTERM, how long to wait for pending writes before exiting with an error",
    allowed: "an integer 0-600000",
    schema: integer(0, 600_000),
  }),
  setting({
    key: "authSecret",
    secret: true,
    env: "AUTH_SECRET",
    argument: "<secret>",
    default: null,
    description: "HS256 key that signs access tokens (at least 32 characters)",
    allowed: "a string of at least 32 characters",
    schema: optional(z.string().min(32)),
  }),
  setting({
    key: "authPublicKey",
    env: "AUTH_PUBLIC_KEY",
    argument: "<pem-or-url>",
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
    argument: "<iss>",
    default: null,
    description:
      "accept only tokens whose iss claim is this (set it with a shared identity provider)",
    allowed: "a string",
    schema: optional(z.string().min(1)),
  }),
  setting({
    key: "authAudience",
    env: "AUTH_AUDIENCE",
    argument: "<aud>",
    default: null,
    description: "accept only tokens whose aud claim includes this",
    allowed: "a string",
    schema: optional(z.string().min(1)),
  }),
  setting({
    key: "allowAnonymous",
    env: "ALLOW_ANONYMOUS",
    argument: "<bool>",
    default: false,
    description: "without token auth, serve anyway on an address other than loopback",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "apiSecret",
    secret: true,
    env: "API_SECRET",
    argument: "<secret>",
    default: null,
    description: "bearer secret for the whole REST API (at least 32 characters)",
    allowed: "a string of at least 32 characters",
    schema: optional(z.string().min(32)),
  }),
  setting({
    key: "allowedOrigins",
    env: "ALLOWED_ORIGINS",
    argument: "<list>",
    default: [],
    description: "comma-separated browser origins allowed besides the server's own; * for any",
    allowed: "comma-separated origins like https://app.example.com, or *",
    schema: list(origin),
  }),
  setting({
    key: "trustProxy",
    env: "TRUST_PROXY",
    argument: "<bool>",
    default: false,
    description: "take the client address from X-Forwarded-For (only behind a proxy)",
    allowed: "true or false",
    schema: boolean,
  }),
  setting({
    key: "rateLimitConnections",
    env: "RATE_LIMIT_CONNECTIONS",
    argument: "<n>",
    default: 600,
    description:
      "WebSocket connection attempts per client address per minute (see RATE_LIMIT_BURST); 0 for no limit",
    allowed: "an integer 0-1000000",
    schema: integer(0, 1_000_000),
  }),
  setting({
    key: "rateLimitBurst",
    env: "RATE_LIMIT_BURST",
    argument: "<n>",
    default: 2_000,
    description:
      "attempts per client address per minute beyond RATE_LIMIT_CONNECTIONS, so everyone behind one address reconnects after a restart; attempts that open a document give their point back, refused ones cost 10 more",
    allowed: "an integer 0-1000000",
    schema: integer(0, 1_000_000),
  }),
  setting({
    key: "maxBodyBytes",
    env: "MAX_BODY_BYTES",
    argument: "<n>",
    default: 1 * MiB,
    description:
      "largest REST request body but a Word file's (8 MiB); a larger one is refused with 413 (a replace costs about 1 s of CPU per MiB)",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxAttachmentBytes",
    env: "MAX_ATTACHMENT_BYTES",
    argument: "<n>",
    default: 25 * MiB,
    description:
      "largest attachment (an image or file in a document); a larger upload is refused with 413",
    allowed: "an integer 1024-1073741824",
    schema: integer(1024, 1024 * MiB),
  }),
  setting({
    key: "maxAttachmentsPerDocument",
    env: "MAX_ATTACHMENTS_PER_DOCUMENT",
    argument: "<n>",
    default: 1_000,
    description:
      "most attachments one document may have; more are refused with 413 (quota_exceeded)",
    allowed: "an integer 1-1000000",
    schema: integer(1, 1_000_000),
  }),
  setting({
    key: "maxAttachmentBytesPerDocument",
    env: "MAX_ATTACHMENT_BYTES_PER_DOCUMENT",
    argument: "<n>",
    default: 1024 * MiB,
    description:
      "most bytes of attachments one document may have; more are refused with 413 (quota_exceeded)",
    allowed: "an integer 1024-1099511627776",
    schema: integer(1024, 1024 * 1024 * MiB),
  }),
  setting({
    key: "attachmentUrlSecret",
    env: "ATTACHMENT_URL_SECRET",
    argument: "<key>",
    secret: true,
    default: null,
    description:
      "key that signs attachment links (images cannot send a token); unset, it is derived from AUTH_SECRET or API_SECRET, else random per process (set it on every instance of a cluster)",
    allowed: "at least 32 characters",
    schema: optional(z.string().min(32)),
  }),
  setting({
    key: "attachmentUrlSeconds",
    env: "ATTACHMENT_URL_SECONDS",
    argument: "<s>",
    default: 3_600,
    description: "a signed attachment link works for between this and twice this many seconds",
    allowed: "an integer 60-604800",
    schema: integer(60, 604_800),
  }),
  setting({
    key: "attachmentGraceMs",
    env: "ATTACHMENT_GRACE_MS",
    argument: "<ms>",
    default: 86_400_000,
    description:
      "an attachment that neither a document nor any of its versions shows is deleted once it is older than this",
    allowed: "an integer 0-31536000000",
    schema: integer(0, 31_536_000_000),
  }),
  setting({
    key: "versionIntervalMs",
    env: "VERSION_INTERVAL_MS",
    argument: "<ms>",
    default: 600_000,
    description: "save an automatic version of a document being edited this often; 0 for never",
    allowed: "an integer 0 or 1000-86400000",
    schema: integer(0, 86_400_000).refine((ms) => ms === 0 || ms >= 1000),
  }),
  setting({
    key: "maxAutoVersions",
    env: "MAX_AUTO_VERSIONS",
    argument: "<n>",
    default: 50,
    description: "automatic versions kept per document, oldest removed first (named ones stay)",
    allowed: "an integer 0-100000",
    schema: integer(0, 100_000),
  }),
  setting({
    key: "webhookUrls",
    // A receiver's URL is often its credential (a Slack hook, a ?token=).
    secret: true,
    env: "WEBHOOK_URL",
    argument: "<list>",
    default: [],
    description: "comma-separated URLs that receive webhook events",
    allowed: "comma-separated http(s) URLs",
    schema: list(httpUrl),
  }),
  setting({
    key: "webhookSecret",
    secret: true,
    env: "WEBHOOK_SECRET",
    argument: "<secret>",
    default: null,
    description: "HMAC-SHA256 key that signs webhook bodies (X-Collab-Signature)",
    allowed: "a string of at least 16 characters",
    schema: optional(z.string().min(16)),
  }),
  setting({
    key: "webhookDebounceMs",
    env: "WEBHOOK_DEBOUNCE_MS",
    argument: "<ms>",
    default: 2_000,
    description: "at most one document.updated event per document per this many ms",
    allowed: "an integer 0-3600000",
    schema: integer(0, 3_600_000),
  }),
  setting({
    key: "trashRetentionDays",
    env: "TRASH_RETENTION_DAYS",
    argument: "<days>",
    default: 30,
    description:
      "days a deleted document (content, versions) stays in the trash before it is purged; 0 purges at once",
    allowed: "an integer 0-3650",
    schema: integer(0, 3650),
  }),
  setting({
    key: "metricsToken",
    secret: true,
    env: "METRICS_TOKEN",
    argument: "<token>",
    default: null,
    description:
      "bearer token GET /metrics requires (Authorization: Bearer ...); unset leaves metrics open to anyone who reaches the port",
    allowed: "a string of at least 16 characters",
    schema: optional(z.string().min(16)),
  }),
  setting({
    key: "tlsCert",
    env: "TLS_CERT",
    argument: "<file>",
    default: null,
    description:
      "PEM certificate (chain) file; with TLS_KEY the server speaks HTTPS and wss:// itself (reloaded on SIGHUP)",
    allowed: "a file path",
    schema: optional(z.string().min(1)),
  }),
  setting({
    key: "tlsKey",
    env: "TLS_KEY",
    argument: "<file>",
    default: null,
    description: "PEM private key file of TLS_CERT",
    allowed: "a file path",
    schema: optional(z.string().min(1)),
  }),
] as const;

/** How a default is shown in --help and the README. */
export function showDefault(value: Config[keyof Config]): string {
  if (value === null) return "(none)";
  if (Array.isArray(value)) return value.length === 0 ? "(none)" : value.join(",");
  return String(value);
}

/**
 * Every setting's value as the running server has it, by environment
 * variable, with secrets shown as `(set)`: the start-up log line carries it,
 * so an operator (and the settings test) sees what took effect.
 */
export function describeSettings(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    SETTINGS.map((s) => {
      const value = config[s.key];
      const set = value !== null && !(Array.isArray(value) && value.length === 0);
      return [s.env, "secret" in s && s.secret === true && set ? "(set)" : value];
    }),
  );
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
  // Under the name the CLI library gives the flag's value (its attribute name), which is the
  // flag's, not the setting's key: `--webhook-url` is `webhookUrl`, the key `webhookUrls`.
  return parseConfig(
    Object.fromEntries(SETTINGS.map((s) => [s.key, options[new Option(s.flag).attributeName()]])),
  );
}

/** The validated Config from environment variables alone (no flags). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(Object.fromEntries(SETTINGS.map((s) => [s.key, env[s.env]])));
}
