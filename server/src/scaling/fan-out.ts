/**
 * Fan-out between instances over Redis (REDIS_URL): clients of one document
 * connected to different instances see each other's edits and presence.
 *
 * Document sync is `@hocuspocus/extension-redis`, wrapped rather than used
 * as is:
 * - Only its sync hooks run (load, change, stateless, unload). Its store
 *   lock (`onStoreDocument`/`afterStoreDocument`) guards Hocuspocus' own
 *   debounced full-document store, which we do not use: each instance
 *   appends only the changes its own clients made (changes applied from
 *   Redis carry the origin `{ source: "redis" }`, which persistence skips).
 * - Presence goes through our {@link PresenceRelay} instead of the
 *   extension's relay, which loses removals (see presence.ts). The
 *   extension still asks its peers for their awareness when it loads a
 *   document; those answers are emptied in `beforeHandleAwareness`.
 * - Everything the extension publishes waits until the store has made
 *   durable every write queued before it. Another instance therefore only
 *   ever receives stored changes: if this instance dies, what it loses was
 *   never acknowledged, and only its own clients have it, who send it again
 *   to the instance they reconnect to. Acknowledgements do not wait for
 *   Redis (the core holds them on the store alone).
 * - A Redis outage never stops the instance: the sync hooks are skipped
 *   while Redis is unreachable (local clients keep syncing and being
 *   acknowledged), the outage is logged once, and when Redis is back every
 *   loaded document is announced again, which makes instances exchange
 *   whatever they missed, and presence is announced and queried again.
 */
import { Redis as RedisSync } from "@hocuspocus/extension-redis";
import type {
  afterLoadDocumentPayload,
  afterUnloadDocumentPayload,
  beforeBroadcastStatelessPayload,
  beforeHandleAwarenessPayload,
  beforeUnloadDocumentPayload,
  Extension,
  Hocuspocus,
  onChangePayload,
  onConfigurePayload,
} from "@hocuspocus/server";
import { isTransactionOrigin } from "@hocuspocus/server";
import type { Redis } from "ioredis";
import type { Logger } from "../observability/logger.ts";
import type { DocumentStore } from "../persistence/store.ts";
import { PresenceRelay } from "./presence.ts";
import type { RedisConnections } from "./redis.ts";

export interface FanOutOptions {
  /** Open connections (see {@link connectRedis}); closed with the fan-out. */
  readonly redis: RedisConnections;
  /** Publishes wait until this store has made earlier writes durable. */
  readonly store: DocumentStore;
  /** Carries the instance id already. */
  readonly logger: Logger;
  /** Prefix of every Redis channel. @default "collab" */
  readonly prefix?: string;
  /**
   * How long a document that another instance has open waits, when it loads
   * here, for that instance's state (the extension's `awaitInitialSyncTimeout`).
   * @default 1_000
   */
  readonly initialSyncMs?: number;
  /**
   * How long an unloading document stays subscribed, so the last changes'
   * round trips finish (the extension's `disconnectDelay`). @default 1_000
   */
  readonly unloadDelayMs?: number;
}

/** Longest a document load waits on Redis before it is served without it (joined later). */
const JOIN_TIMEOUT_MS = 5_000;

export class FanOut implements Extension {
  readonly extensionName = "redis-fan-out";
  readonly instance: string;
  private readonly sync: RedisSync;
  private readonly presence: PresenceRelay;
  private readonly redis: RedisConnections;
  private readonly logger: Logger;
  /** Loaded documents, with what announcing them again after an outage needs. */
  private readonly joined = new Map<string, afterLoadDocumentPayload>();
  private readonly presenceChannelPrefix: string;
  private hocuspocus: Hocuspocus | null = null;
  private up = true;
  private lastPublish: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: FanOutOptions) {
    const { redis, store, logger } = options;
    const prefix = options.prefix ?? "collab";
    this.redis = redis;
    this.instance = redis.instance;
    this.logger = logger;
    // `#` cannot follow the prefix in the extension's document channels (`prefix:name`).
    this.presenceChannelPrefix = `${prefix}#presence:`;
    this.publishWhenDurable(redis.publisher, store);
    const clients = [redis.publisher, redis.subscriber];
    this.sync = new RedisSync({
      identifier: this.instance,
      prefix,
      awaitInitialSyncTimeout: options.initialSyncMs ?? 1_000,
      disconnectDelay: options.unloadDelayMs ?? 1_000,
      // The extension asks for its publisher first, then its subscriber.
      createClient: () => {
        const client = clients.shift();
        if (client === undefined) throw new Error("the Redis extension asked for a third client");
        return client;
      },
    });
    this.presence = new PresenceRelay({
      instance: this.instance,
      channel: (name) => `${this.presenceChannelPrefix}${name}`,
      publish: (channel, message) => {
        if (!this.up) return false;
        redis.send(channel, message).catch((error: unknown) => {
          logger.debug({ err: error }, "presence not published");
        });
        return true;
      },
      onError: (error, document) =>
        logger.warn({ err: error, document }, "presence from another instance not applied"),
    });
    redis.presence.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      this.presence.receive(channel.toString(), message);
    });
    redis.onStatus((up) => this.statusChanged(up));
  }

  async onConfigure(payload: onConfigurePayload): Promise<void> {
    this.hocuspocus = payload.instance;
    await this.sync.onConfigure(payload);
  }

  async afterLoadDocument(payload: afterLoadDocumentPayload): Promise<void> {
    const { document, documentName } = payload;
    this.joined.set(documentName, payload);
    this.presence.attach(document);
    // While Redis is down, the document is served at once and announced when it is back.
    if (this.up) await this.announce(payload);
  }

  async onChange(payload: onChangePayload): Promise<void> {
    if (!this.up) return;
    await this.sync.onChange(payload);
  }

  async beforeHandleAwareness({
    transactionOrigin,
    states,
  }: beforeHandleAwarenessPayload): Promise<void> {
    // Awareness arriving through the extension (answers to its load-time query): the
    // presence relay delivers the same states with their owners; these would bypass it.
    if (isTransactionOrigin(transactionOrigin) && transactionOrigin.source === "redis") {
      states.clear();
    }
  }

  async beforeBroadcastStateless(payload: beforeBroadcastStatelessPayload): Promise<void> {
    if (!this.up) return;
    await this.sync.beforeBroadcastStateless(payload).catch((error: unknown) => {
      this.logger.warn({ err: error, document: payload.documentName }, "stateless not relayed");
    });
  }

  async beforeUnloadDocument(payload: beforeUnloadDocumentPayload): Promise<void> {
    await this.sync.beforeUnloadDocument(payload);
  }

  async afterUnloadDocument(payload: afterUnloadDocumentPayload): Promise<void> {
    const { documentName } = payload;
    // A document loaded again in the meantime keeps its subscriptions.
    if (payload.instance.documents.has(documentName)) return;
    const joined = this.joined.get(documentName);
    if (joined !== undefined) this.presence.detach(joined.document);
    this.joined.delete(documentName);
    this.redis.presence.unsubscribe(`${this.presenceChannelPrefix}${documentName}`).catch(() => {});
    await this.sync.afterUnloadDocument(payload);
  }

  async onDestroy(): Promise<void> {
    await this.close();
  }

  /** Lets the last publishes go out (for at most a second) and closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.up) {
      await Promise.race([
        this.lastPublish,
        new Promise((resolve) => setTimeout(resolve, 1_000).unref()),
      ]);
    }
    this.redis.close();
  }

  /**
   * Subscribes the document's channels, announces its state and waits
   * (briefly) for a peer's, as the extension's own load hook does, then asks
   * for the other instances' presence. A Redis that does not answer does not
   * hold the load: the document is served without fan-out and announced
   * once Redis is back.
   */
  private async announce(payload: afterLoadDocumentPayload): Promise<void> {
    const { document, documentName } = payload;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), JOIN_TIMEOUT_MS);
    });
    const join = async () => {
      await this.redis.presence.subscribe(`${this.presenceChannelPrefix}${documentName}`);
      await this.sync.afterLoadDocument(payload);
      this.presence.query(document);
    };
    const joining = join();
    // Settled after a timeout, its outcome no longer matters; it must not go unhandled.
    joining.catch(() => {});
    try {
      const outcome = await Promise.race([joining, timedOut]);
      if (outcome === "timeout") throw new Error(`no answer from Redis in ${JOIN_TIMEOUT_MS} ms`);
    } catch (error) {
      this.logger.warn(
        { err: error, document: documentName },
        "document served without fan-out until Redis answers",
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private statusChanged(up: boolean): void {
    if (this.closed || up === this.up) return;
    this.up = up;
    if (!up) {
      this.logger.error(
        { redis: this.redis.address, err: this.redis.lastError() ?? undefined },
        "Redis unreachable: serving this instance's clients only until it is back",
      );
      return;
    }
    const documents = [...this.joined.values()];
    this.logger.info(
      { redis: this.redis.address, documents: documents.length },
      "Redis reachable again: resyncing documents and presence",
    );
    for (const payload of documents) {
      const live = this.hocuspocus?.documents.get(payload.documentName);
      if (live !== undefined && live !== payload.document) continue;
      void this.announce(payload);
    }
    this.presence.resync();
  }

  /**
   * Makes the extension's publisher publish in call order, each message only
   * once every store write queued before it is durable. The extension
   * computes a message from the live document when it publishes it, so the
   * content in it was queued for writing by then. Only the sending is
   * ordered, not the replies: one connection keeps its commands in order.
   */
  private publishWhenDurable(publisher: Redis, store: DocumentStore): void {
    const send = publisher.publish.bind(publisher) as (
      channel: string | Buffer,
      message: string | Buffer,
    ) => Promise<number>;
    let previous: Promise<unknown> = Promise.resolve();
    const publish = (channel: string | Buffer, message: string | Buffer): Promise<number> => {
      // A write that is given up (the store closed) rejects its turn: that message is not sent.
      const turn = Promise.all([previous, store.flush()]);
      previous = turn.catch(() => {});
      const sent = turn.then(() => send(channel, message));
      this.lastPublish = sent.catch(() => {});
      return sent;
    };
    publisher.publish = publish as Redis["publish"];
  }
}
