/**
 * Outgoing webhooks: document and version events POSTed as signed JSON to
 * every configured URL, retried with capped exponential backoff.
 *
 * Nothing here may slow syncing down. `send` and `documentUpdated` only queue
 * and return; requests start off the caller's stack, each URL has at most
 * `concurrency` requests in flight, every timer is unref'ed, and at most
 * `maxQueued` deliveries wait (beyond that the oldest is dropped, logged and
 * counted). Delivery is at least once and unordered: a receiver dedupes by
 * the delivery id and orders by `created`.
 */
import { randomUUID } from "node:crypto";
import { CollabError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import {
  describeFetchError,
  type Endpoint,
  parseEndpoint,
  parseRetryAfter,
  retryDelayMs,
  verdictFor,
} from "./policy.ts";
import { signature, WebhookHeader } from "./signature.ts";

export const WEBHOOK_EVENT_TYPES = [
  "document.created",
  "document.updated",
  "document.deleted",
  "document.restored",
  "document.purged",
  "version.created",
  "comment.created",
  "comment.updated",
  "comment.deleted",
  "thread.resolved",
  "thread.reopened",
  "thread.deleted",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** How one delivery (one event to one URL) went; `retried` is reported once per retry scheduled. */
export type DeliveryOutcome = "delivered" | "retried" | "failed" | "dropped";

/** An event's `data`: always names its document. */
export type WebhookData = { readonly document: string } & Record<string, unknown>;

/** The JSON body of every delivery. */
export interface WebhookBody {
  /** The delivery id (a UUID): the same on every retry and for every URL the event goes to. */
  readonly id: string;
  readonly type: WebhookEventType;
  /** ISO time the event was created (for `document.updated`, when the window closed). */
  readonly created: string;
  readonly data: WebhookData;
}

export interface WebhooksOptions {
  /** Receiver URLs; each gets every event. Credentials in a URL are sent as Basic auth. */
  readonly urls: readonly string[];
  /** HMAC-SHA256 key for `x-collab-signature`; null sends unsigned events (warned once). */
  readonly secret: string | null;
  readonly logger: Logger;
  /** Per document, at most one `document.updated` per window (sent at its end). @default 2_000 */
  readonly debounceMs?: number;
  /** Attempts per delivery, the first included, before it fails. @default 8 */
  readonly maxAttempts?: number;
  /** Delay before the first retry, doubling (with jitter) for each later one. @default 1_000 */
  readonly backoffBaseMs?: number;
  /** Upper bound on a retry delay, `Retry-After` included. @default 300_000 (5 minutes) */
  readonly maxBackoffMs?: number;
  /** Time allowed for one attempt (connect, send, response head). @default 10_000 */
  readonly timeoutMs?: number;
  /** Requests in flight per URL: a slow receiver holds at most this many sockets. @default 4 */
  readonly concurrency?: number;
  /**
   * Deliveries waiting to be sent or retried (not counting those in flight),
   * over all URLs; beyond it the oldest is dropped. Bounds memory while a
   * receiver is down. @default 10_000
   */
  readonly maxQueued?: number;
  /** Called for every outcome, e.g. to count `collab_webhook_deliveries_total`. */
  readonly onDelivery?: (outcome: DeliveryOutcome, event: WebhookEventType) => void;
}

interface PreparedEvent {
  readonly id: string;
  readonly type: WebhookEventType;
  readonly document: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

interface Target {
  readonly endpoint: Endpoint;
  /** Deliveries ready to be sent, oldest first. */
  readonly queued: Set<Delivery>;
  sending: number;
}

type DeliveryState =
  | { readonly kind: "queued" }
  | { readonly kind: "sending"; readonly abort: AbortController }
  | { readonly kind: "waiting"; readonly timer: NodeJS.Timeout };

interface Delivery {
  readonly event: PreparedEvent;
  readonly target: Target;
  attempts: number;
  state: DeliveryState;
}

type AttemptResult =
  | { readonly kind: "response"; readonly status: number; readonly retryAfter: string | null }
  | { readonly kind: "error"; readonly error: unknown };

export class Webhooks {
  private readonly options: WebhooksOptions;
  private readonly logger: Logger;
  private readonly targets: readonly Target[];
  private readonly debounceMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  /** Every delivery not yet settled, oldest first (a Set keeps insertion order). */
  private readonly deliveries = new Set<Delivery>();
  /** Documents changed in the current debounce window, with the time of their last change. */
  private readonly updates = new Map<string, { last: number; timer: NodeJS.Timeout }>();
  private sending = 0;
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;

  /** @throws {CollabError} `CONFIG_INVALID` when a URL is not an absolute http(s) URL. */
  constructor(options: WebhooksOptions) {
    this.options = options;
    this.logger = options.logger;
    this.debounceMs = options.debounceMs ?? 2_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 8);
    this.backoffBaseMs = options.backoffBaseMs ?? 1_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 300_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.maxQueued = Math.max(0, options.maxQueued ?? 10_000);
    this.targets = options.urls.map((raw, index) => {
      const endpoint = parseEndpoint(raw);
      if (endpoint === null) {
        // The URL itself is not quoted: it may hold credentials.
        throw new CollabError(
          "CONFIG_INVALID",
          `webhook URL #${index + 1} is not an absolute http(s) URL`,
        );
      }
      return { endpoint, queued: new Set<Delivery>(), sending: 0 };
    });
    if (options.secret === null && this.targets.length > 0) {
      this.logger.warn(
        { urls: this.targets.map((target) => target.endpoint.label) },
        "webhooks are not signed (no secret set): receivers cannot tell them from forgeries",
      );
    }
  }

  /** Deliveries not yet settled: queued, in flight or waiting to be retried. */
  get pending(): number {
    return this.deliveries.size;
  }

  /**
   * Queues `type` for every URL and returns at once; never throws. After
   * `close` the event is logged and not sent.
   *
   * @example
   * webhooks.send("version.created", { document: "notes", version: "v1" });
   */
  send(type: WebhookEventType, data: WebhookData): void {
    if (this.closing !== null) {
      this.logger.warn(
        { event: type, document: data.document },
        "webhook event after close; not sent",
      );
      return;
    }
    this.enqueue(type, data);
  }

  /**
   * Notes a change to `document`. The first change opens a window of
   * `debounceMs`; when it ends one `document.updated` goes out carrying the
   * time of the window's last change (`data.updated`). Continuous editing
   * therefore sends one event per window, never none. Never throws.
   */
  documentUpdated(document: string): void {
    if (this.closing !== null) return;
    const now = Date.now();
    const open = this.updates.get(document);
    if (open !== undefined) {
      open.last = now;
      return;
    }
    const timer = setTimeout(() => this.flushUpdate(document), this.debounceMs);
    timer.unref();
    this.updates.set(document, { last: now, timer });
  }

  /**
   * Sends the `document.updated` events still in their window, waits up to
   * `timeoutMs` for every queued and in-flight delivery to finish, then
   * abandons the rest (in-flight requests are aborted, retries cancelled),
   * reporting them as `dropped`. Later events are not sent. Idempotent.
   *
   * @param options.timeoutMs @default the per-attempt timeout
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutDown(options.timeoutMs ?? this.timeoutMs);
    return this.closing;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    for (const document of [...this.updates.keys()]) this.flushUpdate(document);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.idle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    const abandoned = [...this.deliveries];
    for (const delivery of abandoned) this.settle(delivery, "dropped");
    if (abandoned.length > 0) {
      this.logger.error(
        { abandoned: abandoned.length, timeoutMs },
        "webhooks closed with deliveries not delivered",
      );
    }
  }

  private flushUpdate(document: string): void {
    const open = this.updates.get(document);
    if (open === undefined) return;
    this.updates.delete(document);
    clearTimeout(open.timer);
    this.enqueue("document.updated", { document, updated: new Date(open.last).toISOString() });
  }

  private enqueue(type: WebhookEventType, data: WebhookData): void {
    if (this.targets.length === 0) return;
    let event: PreparedEvent;
    try {
      event = this.prepare(type, data);
    } catch (error) {
      // E.g. data that JSON cannot encode (a BigInt, a cycle): a caller's bug, but send never throws.
      this.logger.error({ err: error, event: type }, "webhook event could not be encoded");
      for (const _ of this.targets) this.report("failed", type);
      return;
    }
    for (const target of this.targets) {
      const delivery: Delivery = { event, target, attempts: 0, state: { kind: "queued" } };
      this.deliveries.add(delivery);
      target.queued.add(delivery);
    }
    this.enforceBound();
    this.schedulePump();
  }

  private prepare(type: WebhookEventType, data: WebhookData): PreparedEvent {
    const id = randomUUID();
    const body = JSON.stringify({
      id,
      type,
      created: new Date().toISOString(),
      data,
    } satisfies WebhookBody);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "collab-docs-webhooks",
      [WebhookHeader.event]: type,
      [WebhookHeader.delivery]: id,
    };
    if (this.options.secret !== null) {
      headers[WebhookHeader.signature] = signature(body, this.options.secret);
    }
    return { id, type, document: data.document, body, headers };
  }

  /** Starts requests on a microtask: never on the stack of the caller of `send`. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      for (const target of this.targets) this.pump(target);
    });
  }

  private pump(target: Target): void {
    while (target.sending < this.concurrency) {
      const next = target.queued.values().next();
      if (next.done) break;
      target.queued.delete(next.value);
      void this.attempt(next.value);
    }
    this.checkIdle();
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const { target, event } = delivery;
    const abort = new AbortController();
    delivery.state = { kind: "sending", abort };
    delivery.attempts++;
    target.sending++;
    this.sending++;
    let result: AttemptResult;
    try {
      const response = await fetch(target.endpoint.url, {
        method: "POST",
        headers:
          target.endpoint.authorization === null
            ? event.headers
            : { ...event.headers, authorization: target.endpoint.authorization },
        body: event.body,
        redirect: "manual",
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      // The body is not needed; cancelling it frees the connection without reading an unbounded reply.
      await response.body?.cancel().catch(() => {});
      result = {
        kind: "response",
        status: response.status,
        retryAfter: response.headers.get("retry-after"),
      };
    } catch (error) {
      result = { kind: "error", error };
    } finally {
      target.sending--;
      this.sending--;
    }
    // Abandoned by close while in flight: already reported as dropped.
    if (this.deliveries.has(delivery)) this.conclude(delivery, result);
    this.pump(target);
  }

  private conclude(delivery: Delivery, result: AttemptResult): void {
    const { event, target } = delivery;
    const context = {
      event: event.type,
      delivery: event.id,
      document: event.document,
      url: target.endpoint.label,
      attempts: delivery.attempts,
    };
    if (result.kind === "response") {
      const verdict = verdictFor(result.status);
      switch (verdict) {
        case "delivered":
          this.logger.debug({ ...context, status: result.status }, "webhook delivered");
          this.settle(delivery, "delivered");
          return;
        case "fail":
          this.logger.error(
            { ...context, status: result.status },
            "webhook refused by its receiver; not retried",
          );
          this.settle(delivery, "failed");
          return;
        case "retry":
          this.retryOrFail(delivery, { ...context, status: result.status }, result.retryAfter);
          return;
        default:
          throw new Error(`unhandled verdict ${verdict satisfies never}`);
      }
    }
    this.retryOrFail(delivery, { ...context, error: describeFetchError(result.error) }, null);
  }

  private retryOrFail(
    delivery: Delivery,
    context: Record<string, unknown>,
    retryAfter: string | null,
  ): void {
    if (delivery.attempts >= this.maxAttempts) {
      this.logger.error(context, "webhook delivery failed; giving up");
      this.settle(delivery, "failed");
      return;
    }
    const retryInMs = retryDelayMs({
      attempts: delivery.attempts,
      baseMs: this.backoffBaseMs,
      maxMs: this.maxBackoffMs,
      retryAfterMs: parseRetryAfter(retryAfter),
    });
    const timer = setTimeout(() => {
      delivery.state = { kind: "queued" };
      delivery.target.queued.add(delivery);
      this.pump(delivery.target);
    }, retryInMs);
    timer.unref();
    delivery.state = { kind: "waiting", timer };
    this.logger.warn({ ...context, retryInMs }, "webhook delivery failed; retrying");
    this.report("retried", delivery.event.type);
    this.enforceBound();
  }

  /** Drops the oldest deliveries not in flight while more than `maxQueued` wait. */
  private enforceBound(): void {
    while (this.deliveries.size - this.sending > this.maxQueued) {
      let oldest: Delivery | undefined;
      for (const delivery of this.deliveries) {
        if (delivery.state.kind !== "sending") {
          oldest = delivery;
          break;
        }
      }
      if (oldest === undefined) return;
      this.logger.error(
        {
          event: oldest.event.type,
          delivery: oldest.event.id,
          document: oldest.event.document,
          url: oldest.target.endpoint.label,
          attempts: oldest.attempts,
          maxQueued: this.maxQueued,
        },
        "webhook queue full; dropped the oldest delivery",
      );
      this.settle(oldest, "dropped");
    }
  }

  /** Removes `delivery` wherever it is and reports its outcome. */
  private settle(delivery: Delivery, outcome: Exclude<DeliveryOutcome, "retried">): void {
    if (!this.deliveries.delete(delivery)) return;
    const state = delivery.state;
    switch (state.kind) {
      case "queued":
        delivery.target.queued.delete(delivery);
        break;
      case "sending":
        // Only close settles a delivery in flight; its attempt sees it gone and reports nothing.
        state.abort.abort();
        break;
      case "waiting":
        clearTimeout(state.timer);
        break;
      default:
        throw new Error(`unhandled delivery state ${state satisfies never}`);
    }
    this.report(outcome, delivery.event.type);
    this.checkIdle();
  }

  private report(outcome: DeliveryOutcome, type: WebhookEventType): void {
    try {
      this.options.onDelivery?.(outcome, type);
    } catch (error) {
      this.logger.error({ err: error }, "webhook onDelivery callback threw");
    }
  }

  /** Resolves once nothing is queued or in flight (deliveries waiting to retry do not count). */
  private idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.sending === 0 && this.targets.every((target) => target.queued.size === 0);
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
