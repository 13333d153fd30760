/**
 * The Redis connections of one instance: a publisher and a subscriber for
 * the document sync (`@hocuspocus/extension-redis`) and a subscriber of our
 * own for presence. Opened once at start-up, where an unreachable Redis stops
 * the server; after that they reconnect on their own (capped backoff) and
 * report whether all three are up, so an outage is logged and survived
 * instead of crashing the process.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Redis } from "ioredis";
import { CollabError } from "../errors.ts";

export interface RedisConnections {
  /** This instance's id: in every log line and every message it publishes. */
  readonly instance: string;
  /** `host:port` of the Redis server, for logs (never the password). */
  readonly address: string;
  readonly publisher: Redis;
  readonly subscriber: Redis;
  /** Subscriber for presence channels, kept apart from the extension's. */
  readonly presence: Redis;
  /** Publishes with the publisher as it was opened (not delayed until writes are durable). */
  send(channel: string, message: Uint8Array): Promise<number>;
  /** Calls `listener` whenever all connections become ready, or one stops being. */
  onStatus(listener: (up: boolean) => void): void;
  /** The last connection error, for the outage log line. */
  lastError(): unknown;
  /** Closes every connection at once. */
  close(): void;
}

/** How long start-up waits for Redis before giving up. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Opens the connections to `url`. Rejects with `STORE_UNAVAILABLE` naming
 * the host (not the password) when Redis cannot be reached.
 *
 * @example
 * const redis = await connectRedis("redis://127.0.0.1:6379");
 */
export async function connectRedis(
  url: string,
  instance = instanceId(),
): Promise<RedisConnections> {
  const address = redisAddress(url);
  let lastError: unknown = null;
  const open = (role: string) => {
    const client = new Redis(url, {
      lazyConnect: true,
      connectionName: `collab:${role}`,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Reconnect forever, never more than a second apart: the outage is logged once, not per try.
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1_000),
    });
    // Without a listener ioredis prints every failed reconnect to stderr.
    client.on("error", (error: unknown) => {
      lastError = error;
    });
    return client;
  };
  const publisher = open("publish");
  const subscriber = open("subscribe");
  const presence = open("presence");
  const clients = [publisher, subscriber, presence];
  let timer: NodeJS.Timeout | undefined;
  try {
    // A server that accepts the connection but never answers must not hold start-up either.
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer in ${2 * CONNECT_TIMEOUT_MS} ms`)),
        2 * CONNECT_TIMEOUT_MS,
      );
    });
    await Promise.race([Promise.all(clients.map((client) => client.connect())), silent]);
  } catch (error) {
    for (const client of clients) client.disconnect();
    const reason = describe(lastError ?? error, url);
    throw new CollabError(
      "STORE_UNAVAILABLE",
      `cannot reach Redis at ${address} (REDIS_URL): ${reason}`,
      { cause: lastError ?? error },
    );
  } finally {
    clearTimeout(timer);
  }
  const send = publisher.publish.bind(publisher);
  return {
    instance,
    address,
    publisher,
    subscriber,
    presence,
    send: (channel, message) => send(channel, Buffer.from(message)),
    onStatus(listener) {
      let up = true;
      const check = () => {
        const now = clients.every((client) => client.status === "ready");
        if (now === up) return;
        up = now;
        listener(now);
      };
      for (const client of clients) {
        client.on("ready", check);
        client.on("close", check);
        client.on("end", check);
      }
    },
    lastError: () => lastError,
    close() {
      for (const client of clients) client.disconnect();
    },
  };
}

/** `host-pid-random`: unique per process, readable in logs, short enough for the extension's one-byte length. */
export function instanceId(): string {
  return `${hostname().slice(0, 40)}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** `host:port` of a Redis URL: what logs and errors may show of it. */
export function redisAddress(url: string): string {
  try {
    const { hostname: host, port } = new URL(url);
    return `${host}:${port === "" ? "6379" : port}`;
  } catch {
    return "(unparsable REDIS_URL)";
  }
}

/** An error's code or message, with the URL's password cut out should it appear. */
function describe(error: unknown, url: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  const text =
    typeof code === "string" ? code : error instanceof Error ? error.message : String(error);
  let password = "";
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {}
  return password === "" ? text : text.split(password).join("***");
}
