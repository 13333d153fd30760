/**
 * Builds a server from a Config: store, Hocuspocus with its extensions, HTTP
 * routes and the WebSocket transport. Nothing happens at import time, so
 * tests start as many servers in one process as they like.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Hocuspocus } from "@hocuspocus/server";
import { type Config, DEFAULT_CONFIG } from "./config.ts";
import { createSyncCore } from "./core.ts";
import { Close } from "./errors.ts";
import { createLogger, type Logger } from "./observability/logger.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { LevelDbStore } from "./persistence/leveldb.ts";
import { MemoryStore } from "./persistence/memory.ts";
import type { DocumentStore } from "./persistence/store.ts";
import { createHttpHandler } from "./transport/http.ts";
import { WebSocketTransport } from "./transport/websocket.ts";

export interface CollabServerOptions {
  /** Settings; anything left out takes its default. */
  readonly config?: Partial<Config>;
  /** A logger to use instead of one made from `config.logLevel`. */
  readonly logger?: Logger;
  /** A store to use instead of the one `config.store` names (it is closed with the server). */
  readonly store?: DocumentStore;
}

/** Where a listening server can be reached. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  /** `ws://host:port` */
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
  readonly metrics: Metrics;
  readonly logger: Logger;
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
    case "memory":
      return new MemoryStore();
    case "leveldb":
      return LevelDbStore.open({ dir: config.dataDir, fsync: config.fsync });
  }
}

export async function createCollabServer(options: CollabServerOptions = {}): Promise<CollabServer> {
  const config: Config = { ...DEFAULT_CONFIG, ...options.config };
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? (await openStore(config));
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

  const core = createSyncCore({ config, store, logger, onRefused });
  const hp = core.hocuspocus;
  const ws = new WebSocketTransport({
    core,
    logger,
    metrics,
    maxMessageBytes: config.maxMessageBytes,
  });

  const handle = createHttpHandler({ store, metrics, isShuttingDown: () => shuttingDown });
  const http: Server = createServer((request, response) => {
    Promise.resolve(handle(request, response)).catch((cause: unknown) => {
      logger.error({ err: cause }, "HTTP request failed");
      if (!response.headersSent) response.writeHead(500).end();
      else response.destroy();
    });
  });
  http.on("upgrade", (request, socket, head) => {
    if (shuttingDown) {
      socket.end(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
      );
      return;
    }
    ws.handleUpgrade(request, socket, head);
  });
  http.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  });

  let closing: Promise<CloseReport> | undefined;

  return {
    config,
    hocuspocus: hp,
    store,
    metrics,
    logger,
    listen() {
      return new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(config.port, config.host, () => {
          http.off("error", reject);
          const { port } = http.address() as AddressInfo;
          const host = config.host.includes(":") ? `[${config.host}]` : config.host;
          resolve({
            host: config.host,
            port,
            url: `http://${host}:${port}`,
            wsUrl: `ws://${host}:${port}`,
          });
        });
      });
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        ws.closeAll(Close.goingAway);
        http.closeAllConnections();
        const started = Date.now();
        await waitForUnload(hp, config.shutdownTimeoutMs);
        const remainingMs = Math.max(0, config.shutdownTimeoutMs - (Date.now() - started));
        const { abandoned } = await store.close({ abortAfterMs: remainingMs });
        for (const document of hp.documents.values()) document.destroy();
        // Everything is stored or given up; do not wait on peers that ignore the close handshake.
        ws.terminateAll();
        await stopped;
        if (abandoned > 0)
          logger.error({ abandonedUpdates: abandoned }, "server closed with writes not stored");
        else logger.info("server closed; every accepted write is stored");
        return { abandonedUpdates: abandoned };
      })();
      return closing;
    },
  };
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
