/**
 * Builds a server from a Config: store, Hocuspocus with its extensions, HTTP
 * routes and the WebSocket transport. Nothing happens at import time, so
 * tests start as many servers in one process as they like.
 */

import { createHmac, randomBytes } from "node:crypto";
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer, Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import type { Hocuspocus } from "@hocuspocus/server";
import { lazyApi } from "./api/lazy.ts";
import { FileAttachmentStore } from "./attachments/files.ts";
import { MemoryAttachmentStore } from "./attachments/memory.ts";
import { AttachmentService } from "./attachments/service.ts";
import { LinkSigner } from "./attachments/signing.ts";
import type { AttachmentStore } from "./attachments/store.ts";
import { accessMode, describeAccess } from "./auth/access.ts";
import { checkPublicKey } from "./auth/tokens.ts";
import { Comments, eventPayload } from "./comments/comments.ts";
import { CommentRequests } from "./comments/extension.ts";
import { type Config, DEFAULT_CONFIG } from "./config.ts";
import { createSyncCore } from "./core.ts";
import { DeletedStateGuard } from "./documents/deleted-state.ts";
import { ContentParser } from "./documents/parser.ts";
import { DeletionGuard, DocumentService } from "./documents/service.ts";
import { Close, CollabError } from "./errors.ts";
import { createLogger, type Logger } from "./observability/logger.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { LevelDbStore } from "./persistence/leveldb.ts";
import type { DocumentStore } from "./persistence/store.ts";
import { Gate, type Refused } from "./transport/gate.ts";
import { createHttpHandler } from "./transport/http.ts";
import { loadTlsFiles, type TlsFiles } from "./transport/tls.ts";
import { WebSocketTransport } from "./transport/websocket.ts";

// What only some settings use is imported when they are set: the PostgreSQL store and
// client (STORE=postgres), Redis fan-out (REDIS_URL), webhooks (WEBHOOK_URLS). Loaded at
// start, they added 8 MB to the idle memory of a server that uses none of them
// (docs/benchmarks.md, "Profile: idle memory at start-up").

const DAY_MS = 24 * 60 * 60 * 1000;
/** How often the trash is swept for entries past TRASH_RETENTION_DAYS. */
const TRASH_SWEEP_MS = 60 * 60 * 1000;

export interface CollabServerOptions {
  /** Settings; anything left out takes its default. */
  readonly config?: Partial<Config>;
  /** A logger to use instead of one made from `config.logLevel`. */
  readonly logger?: Logger;
  /** A store to use instead of the one `config.store` names (it is closed with the server). */
  readonly store?: DocumentStore;
  /** An attachment store to use instead of the one beside the document store (closed with the server). */
  readonly attachments?: AttachmentStore;
}

/** Where a listening server can be reached. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, or `https://` with TLS */
  readonly url: string;
  /** `ws://host:port`, or `wss://` with TLS */
  readonly wsUrl: string;
}

/** What closing a server left behind. */
export interface CloseReport {
  /** Updates that were accepted but could not be stored before the shutdown deadline. */
  readonly abandonedUpdates: number;
}

export interface CollabServer {
  readonly config: Config;
  readonly hocuspocus: Hocuspocus;
  readonly store: DocumentStore;
  /** The document service: what the REST API does, without HTTP. */
  readonly documents: DocumentService;
  /** Documents' attachments: uploads, reads, and collection of unused ones. */
  readonly attachments: AttachmentService;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The access mode in one line, for the start-up log. */
  readonly access: string;
  /**
   * Reads TLS_CERT and TLS_KEY again (on SIGHUP): new connections get the new
   * certificate, open ones keep theirs. Rejects with CONFIG_INVALID, keeping
   * the old certificate, when the files are bad or TLS is not configured.
   */
  reloadTls(): Promise<void>;
  /** Starts listening on `config.host`:`config.port`. */
  listen(): Promise<ServerAddress>;
  /**
   * Graceful shutdown: refuse new connections, close every socket, wait for
   * every pending write (up to `config.shutdownTimeoutMs`), close the store.
   */
  close(): Promise<CloseReport>;
}

/** Opens the configured store; fails with DATA_DIR_LOCKED when another process has the directory. */
export async function openStore(config: Config): Promise<DocumentStore> {
  switch (config.store) {
    case "memory": {
      const { MemoryStore } = await import("./persistence/memory.ts");
      return new MemoryStore();
    }
    case "leveldb":
      return LevelDbStore.open({
        dir: config.dataDir,
        fsync: config.fsync,
        cacheBytes: config.leveldbCacheBytes,
        writeBufferBytes: config.leveldbWriteBufferBytes,
      });
    case "postgres": {
      if (config.databaseUrl === null) {
        throw new CollabError("CONFIG_INVALID", "STORE=postgres needs DATABASE_URL");
      }
      const { PostgresStore } = await import("./persistence/postgres.ts");
      return PostgresStore.open({ url: config.databaseUrl });
    }
  }
}

/**
 * The attachment store beside `store`: files in DATA_DIR beside LevelDB,
 * PostgreSQL's own tables, or memory.
 */
export async function openAttachments(
  config: Config,
  store: DocumentStore,
): Promise<AttachmentStore> {
  if (store.kind === "postgres") {
    const { PostgresStore } = await import("./persistence/postgres.ts");
    if (store instanceof PostgresStore) return store.attachments();
  }
  if (store instanceof LevelDbStore) {
    return FileAttachmentStore.open(join(config.dataDir, "attachments"));
  }
  return new MemoryAttachmentStore();
}

/**
 * The key that signs attachment links: ATTACHMENT_URL_SECRET, else one
 * derived from AUTH_SECRET or API_SECRET (so every instance of a cluster
 * derives the same), else random for this process.
 */
function linkKey(config: Config, logger: Logger): Uint8Array {
  if (config.attachmentUrlSecret !== null) return Buffer.from(config.attachmentUrlSecret);
  const base = config.authSecret ?? config.apiSecret;
  if (base !== null) return createHmac("sha256", base).update("collab attachment links").digest();
  if (config.cluster) {
    logger.warn(
      "attachment links are signed with a key of this instance only; set ATTACHMENT_URL_SECRET on every instance",
    );
  }
  return randomBytes(32);
}

/**
 * Refuses configurations that cannot share documents safely: an instance
 * meant to share documents with others (CLUSTER=true) needs Redis for
 * fan-out and PostgreSQL as the one store; LevelDB serves one process only.
 */
export function checkTopology(config: Config): void {
  if (!config.cluster) return;
  const problems = [
    config.redisUrl === null
      ? "REDIS_URL is not set (instances would not see each other's edits)"
      : null,
    config.store !== "postgres"
      ? `STORE=${config.store} keeps documents in this process only; set STORE=postgres and DATABASE_URL`
      : null,
  ].filter((problem) => problem !== null);
  if (problems.length > 0) {
    throw new CollabError(
      "CONFIG_INVALID",
      `CLUSTER=true, but ${problems.join("; and ")}. Several instances must share Redis and PostgreSQL.`,
    );
  }
}

export async function createCollabServer(options: CollabServerOptions = {}): Promise<CollabServer> {
  const config: Config = { ...DEFAULT_CONFIG, ...options.config };
  // Before the store opens: a refusal to run anonymously must not lock the data directory.
  const access = accessMode(config);
  checkTopology(config);
  await checkPublicKey(config.authPublicKey);
  const tlsPaths = tlsPathsOf(config);
  const tlsFiles: TlsFiles | null = tlsPaths === null ? null : await loadTlsFiles(tlsPaths);
  // -- Redis fan-out (scaling/): connect before the store opens; every log line names the instance.
  const scaling = config.redisUrl === null ? null : await connectScaling(config.redisUrl);
  const redis = scaling?.redis ?? null;
  const baseLogger = options.logger ?? createLogger(config.logLevel);
  const logger = redis === null ? baseLogger : baseLogger.child({ instance: redis.instance });
  const store =
    options.store ??
    (await openStore(config).catch((error: unknown) => {
      redis?.close();
      throw error;
    }));
  if (redis !== null)
    logger.info({ redis: redis.address }, "fan-out to other instances over Redis");
  // -- end Redis fan-out
  let shuttingDown = false;

  // The gauges read the core and transport below only when scraped.
  const metrics = createMetrics({
    openConnections: () => ws.openConnections,
    loadedDocuments: () => hp.getDocumentsCount(),
    pendingUpdates: () => store.pendingUpdates(),
    storeHealthy: () => store.health().state === "ok",
  });
  const onRefused = (reason: string) => metrics.refusals.inc({ reason });
  wireStoreEvents(store, logger, metrics);

  const attachmentStore = options.attachments ?? (await openAttachments(config, store));

  const webhooks =
    config.webhookUrls.length === 0
      ? null
      : new (await import("./webhooks/webhooks.ts")).Webhooks({
          urls: config.webhookUrls,
          secret: config.webhookSecret,
          logger,
          debounceMs: config.webhookDebounceMs,
          onDelivery: (outcome, event) => metrics.webhookDeliveries.inc({ event, outcome }),
        });
  // The service needs the core, and the core reports changes to the service: it is
  // assigned right after the core, before any document can load.
  let documents: DocumentService | null = null;
  // Read by the comment-request extension, which the core is built with before the service.
  let comments: Comments | null = null;
  const deletions = new DeletionGuard();
  // In a cluster, a deletion first makes the other instances let go of the document.
  const coordinator =
    scaling === null ? null : new scaling.DeletionCoordinator({ redis: scaling.redis, logger });
  const core = createSyncCore({
    config,
    store,
    logger,
    access,
    onRefused,
    onChange: (name, created) => documents?.changed(name, created),
    extensions: [
      deletions,
      new DeletedStateGuard({ store, logger, onRefused }),
      new CommentRequests(() => comments, logger),
    ],
    // Redis fan-out
    fanOut: scaling === null ? null : new scaling.FanOut({ redis: scaling.redis, store, logger }),
  });
  const service: DocumentService = new DocumentService({
    hocuspocus: core.hocuspocus,
    persistence: core.persistence,
    store,
    logger,
    versionIntervalMs: config.versionIntervalMs,
    maxAutoVersions: config.maxAutoVersions,
    trashRetentionMs: config.trashRetentionDays * DAY_MS,
    deletions,
    attachments: {
      trashed: (name, id) => attachments.trashed(name, id),
      restored: (name, id, to) => attachments.restored(name, id, to),
      purged: (name, id) => attachments.purged(name, id),
    },
    ...(coordinator === null ? {} : { cluster: coordinator }),
    events: {
      created: (name) => webhooks?.send("document.created", { document: name }),
      updated: (name) => webhooks?.documentUpdated(name),
      deleted: (name, entry, purgeAt) =>
        webhooks?.send("document.deleted", {
          document: name,
          trash: { id: entry.id, purgeAt: new Date(purgeAt).toISOString() },
        }),
      restored: (name, entry, to) =>
        webhooks?.send("document.restored", { document: to, from: name, trash: { id: entry.id } }),
      purged: (name, entry) =>
        webhooks?.send("document.purged", { document: name, trash: { id: entry.id } }),
      versionCreated: (name, version) =>
        webhooks?.send("version.created", {
          document: name,
          version: {
            id: version.id,
            name: version.label,
            kind: version.kind,
            created: new Date(version.created).toISOString(),
          },
        }),
    },
  });
  documents = service;
  const attachments: AttachmentService = new AttachmentService({
    store: attachmentStore,
    limits: {
      maxBytes: config.maxAttachmentBytes,
      maxPerDocument: config.maxAttachmentsPerDocument,
      maxBytesPerDocument: config.maxAttachmentBytesPerDocument,
    },
    graceMs: config.attachmentGraceMs,
    logger,
    references: {
      current: (name) => service.current(name),
      async *versions(name) {
        for (const version of await service.listVersions(name)) {
          const read = await service.readVersion(name, version.id);
          if (read !== null) yield read.doc;
        }
      },
      inTrash: async (name, trashId) =>
        (await store.listTrash({ name, limit: 10_000 })).some((entry) => entry.id === trashId),
    },
  });
  const links = new LinkSigner(linkKey(config, logger), config.attachmentUrlSeconds);
  const threads = new Comments({
    documents: service,
    onEvent: (name, event, text) => webhooks?.send(event.type, eventPayload(name, event, text)),
  });
  comments = threads;
  // The trash is swept at start and hourly; several instances sweeping at once purge each entry once.
  const sweep = () => {
    if (shuttingDown) return;
    service
      .purgeExpired()
      .then((purged) => {
        if (purged > 0) logger.info({ purged }, "trash entries past TRASH_RETENTION_DAYS purged");
      })
      .catch((error: unknown) => logger.error({ err: error }, "sweeping the trash failed"))
      .then(() => (shuttingDown ? 0 : attachments.collectAll()))
      .catch((error: unknown) => logger.error({ err: error }, "collecting attachments failed"));
  };
  const sweeper = setInterval(sweep, TRASH_SWEEP_MS);
  sweeper.unref();
  setImmediate(sweep);
  await coordinator?.start({
    release: (name, purpose) => service.release(name, purpose),
    released: (name) => service.released(name),
  });
  const gate = new Gate({ ...config, checkHost: access.kind === "anonymous" });
  const hp = core.hocuspocus;
  const ws = new WebSocketTransport({
    core,
    logger,
    metrics,
    maxMessageBytes: config.maxMessageBytes,
    maxSendBufferBytes: config.maxSendBufferBytes,
    compression: config.wsCompression === "on" ? { minBytes: config.wsCompressionMinBytes } : null,
    clientAddress: (request) => gate.clientAddress(request),
  });

  const parser = new ContentParser({ maxBytes: { json: config.maxBodyBytes } });
  const api = lazyApi({
    access,
    apiSecret: config.apiSecret,
    service,
    comments: threads,
    store,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    parser,
    attachments,
    links,
  });
  const handle = createHttpHandler({
    store,
    metrics,
    isShuttingDown: () => shuttingDown,
    api,
    gate,
    logger,
    allowedOrigins: config.allowedOrigins,
    metricsToken: config.metricsToken,
  });
  const serve = (request: IncomingMessage, response: ServerResponse) => {
    Promise.resolve(handle(request, response)).catch((cause: unknown) => {
      logger.error({ err: cause }, "HTTP request failed");
      if (!response.headersSent) response.writeHead(500).end();
      else response.destroy();
    });
  };
  // HTTPS and wss:// when TLS_CERT and TLS_KEY are set (transport/tls.ts); HTTP and ws:// otherwise.
  const http: HttpServer | HttpsServer =
    tlsFiles === null ? createServer(serve) : createHttpsServer(tlsFiles, serve);
  http.on("upgrade", (request, socket, head) => {
    if (shuttingDown) {
      socket.end(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
      );
      return;
    }
    // The socket may fail while the gate decides; ws adds its own handler once it takes over.
    const ignore = () => {};
    socket.on("error", ignore);
    gate.admitUpgrade(request).then(
      (admission) => {
        socket.off("error", ignore);
        if (admission.kind === "refused") {
          const { refused } = admission;
          metrics.refusals.inc({ reason: refused.code });
          logger.warn(
            {
              remote: gate.clientAddress(request),
              origin: request.headers.origin,
              code: refused.code,
            },
            "connection refused",
          );
          return refuseUpgrade(socket, refused);
        }
        ws.handleUpgrade(
          request,
          socket,
          head,
          WebSocketTransport.dialectFor(request),
          admission.ticket,
        );
      },
      (cause: unknown) => {
        logger.error({ err: cause }, "upgrade check failed");
        socket.destroy();
      },
    );
  });
  http.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  });

  let closing: Promise<CloseReport> | undefined;

  return {
    config,
    hocuspocus: hp,
    store,
    documents: service,
    attachments,
    metrics,
    logger,
    access: describeAccess(access, config),
    async reloadTls() {
      if (tlsPaths === null || !(http instanceof HttpsServer)) {
        throw new CollabError("CONFIG_INVALID", "TLS is not configured (TLS_CERT and TLS_KEY)");
      }
      // Open connections keep their session; new ones get the new certificate.
      http.setSecureContext(await loadTlsFiles(tlsPaths));
    },
    listen() {
      return new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(config.port, config.host, () => {
          http.off("error", reject);
          const { port } = http.address() as AddressInfo;
          const host = config.host.includes(":") ? `[${config.host}]` : config.host;
          const secure = tlsFiles !== null;
          resolve({
            host: config.host,
            port,
            url: `${secure ? "https" : "http"}://${host}:${port}`,
            wsUrl: `${secure ? "wss" : "ws"}://${host}:${port}`,
          });
        });
      });
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        clearInterval(sweeper);
        service.close();
        void parser.close();
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        ws.closeAll(Close.goingAway);
        http.closeAllConnections();
        const started = Date.now();
        await waitForUnload(hp, config.shutdownTimeoutMs);
        const remainingMs = Math.max(0, config.shutdownTimeoutMs - (Date.now() - started));
        await attachmentStore.close();
        const { abandoned } = await store.close({ abortAfterMs: remainingMs });
        await core.fanOut?.close(); // Redis fan-out: after the store, so the last publishes go out
        for (const document of hp.documents.values()) document.destroy();
        // Everything is stored or given up; do not wait on peers that ignore the close handshake.
        ws.terminateAll();
        await stopped;
        await webhooks?.close({ timeoutMs: Math.min(5_000, config.shutdownTimeoutMs) });
        if (abandoned > 0)
          logger.error({ abandonedUpdates: abandoned }, "server closed with writes not stored");
        else logger.info("server closed; every accepted write is stored");
        return { abandonedUpdates: abandoned };
      })();
      return closing;
    },
  };
}

/** Redis fan-out's modules, loaded only when REDIS_URL is set, with its open connections. */
async function connectScaling(url: string) {
  const [{ connectRedis }, { FanOut }, { DeletionCoordinator }] = await Promise.all([
    import("./scaling/redis.ts"),
    import("./scaling/fan-out.ts"),
    import("./scaling/deletions.ts"),
  ]);
  return { redis: await connectRedis(url), FanOut, DeletionCoordinator };
}

/** The TLS files to serve with, or null for plain HTTP; both settings or neither. */
function tlsPathsOf(config: Config): { cert: string; key: string } | null {
  const { tlsCert: cert, tlsKey: key } = config;
  if (cert === null && key === null) return null;
  if (cert === null || key === null) {
    throw new CollabError(
      "CONFIG_INVALID",
      `${cert === null ? "TLS_KEY" : "TLS_CERT"} is set but ${cert === null ? "TLS_CERT" : "TLS_KEY"} is not; set both to serve HTTPS and wss://`,
    );
  }
  return { cert, key };
}

/** Answers a refused upgrade with a plain HTTP error before any WebSocket traffic. */
function refuseUpgrade(socket: Duplex, refused: Refused): void {
  const body = JSON.stringify({ error: { code: refused.code, message: refused.message } });
  const reason = refused.status === 403 ? "Forbidden" : "Too Many Requests";
  const headers = Object.entries(refused.headers ?? {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${refused.status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${headers}connection: close\r\n\r\n${body}`,
  );
}

/** Waits until Hocuspocus has unloaded every document (each flushed its writes first), or the deadline. */
async function waitForUnload(hocuspocus: Hocuspocus, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (hocuspocus.getDocumentsCount() > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function wireStoreEvents(store: DocumentStore, logger: Logger, metrics: Metrics): void {
  store.events.on("written", ({ operations, seconds }) => {
    metrics.storeWriteSeconds.observe(seconds);
    metrics.storeWriteBatchUpdates.observe(operations);
  });
  store.events.on("writeFailed", ({ error, attempt, retryInMs }) => {
    metrics.storeErrors.inc();
    logger.error({ err: error, attempt, retryInMs }, "store write failed; retrying");
  });
  store.events.on("recoveryFailed", ({ error }) => {
    logger.error({ err: error }, "store could not recover before retrying");
  });
  store.events.on("compacted", ({ name, bytes }) => {
    metrics.compactions.inc();
    logger.debug({ document: name, bytes }, "document compacted");
  });
}
