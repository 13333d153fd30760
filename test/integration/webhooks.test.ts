/**
 * Outgoing webhooks against real HTTP receivers on 127.0.0.1 ([HOOK1] to
 * [HOOK8]): signed delivery of every event, retries and their limits, the
 * per-document debounce of `document.updated`, a hanging receiver that slows
 * nothing down, the bounded queue, and close.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { createLogger } from "../../server/src/observability/logger.ts";
import { createMetrics } from "../../server/src/observability/metrics.ts";
import { parseRetryAfter, retryDelayMs } from "../../server/src/webhooks/policy.ts";
import { signature, verifySignature, WebhookHeader } from "../../server/src/webhooks/signature.ts";
import {
  type DeliveryOutcome,
  type WebhookBody,
  type WebhookEventType,
  Webhooks,
  type WebhooksOptions,
} from "../../server/src/webhooks/webhooks.ts";

const SECRET = "webhook-test-secret";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Received {
  readonly method: string;
  /** Path and query string as requested. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The raw body, exactly as received. */
  readonly raw: Buffer;
  readonly body: WebhookBody;
  /** performance.now() when the whole request had arrived. */
  readonly at: number;
}

/** What a receiver does with a request: answer it, or hold it until `release()`. */
type Reply = { status: number; headers?: Record<string, string> } | "hold";

/** A real HTTP receiver on 127.0.0.1, port 0; `reply` decides each answer (200 by default). */
async function receiver(reply: (index: number) => Reply = () => ({ status: 200 })) {
  const requests: Received[] = [];
  const held: ServerResponse[] = [];
  const state = { reply };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        raw,
        body: JSON.parse(raw.toString("utf8")) as WebhookBody,
        at: performance.now(),
      });
      const answer = state.reply(requests.length - 1);
      if (answer === "hold") held.push(res);
      else res.writeHead(answer.status, answer.headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    requests,
    /** Answers every held request with `status`, and every later one too. */
    release(status = 200) {
      state.reply = () => ({ status });
      for (const res of held.splice(0)) res.writeHead(status).end();
    },
  };
}

/** A port nothing listens on (a receiver that is down). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function header(received: Received, name: string): string | undefined {
  const value = received.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Webhooks with a capturing logger and recorded outcomes; closed when the test finishes. */
function webhooks(options: Partial<WebhooksOptions> & Pick<WebhooksOptions, "urls">) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("debug", {
    write(line: string) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const outcomes: [DeliveryOutcome, WebhookEventType][] = [];
  const hooks = new Webhooks({
    secret: SECRET,
    logger,
    backoffBaseMs: 20,
    onDelivery: (outcome, event) => outcomes.push([outcome, event]),
    ...options,
  });
  onTestFinished(() => hooks.close({ timeoutMs: 100 }));
  const count = (outcome: DeliveryOutcome) => outcomes.filter(([o]) => o === outcome).length;
  const logged = (msg: string) => lines.filter((line) => line.msg === msg);
  return { hooks, lines, outcomes, count, logged };
}

describe("signed events", () => {
  it("[HOOK1] every event type reaches every URL as signed JSON that the receiver verifies", async () => {
    const first = await receiver();
    const second = await receiver();
    const { hooks } = webhooks({ urls: [first.url, second.url], debounceMs: 20 });
    hooks.send("document.created", { document: "notes" });
    hooks.send("version.created", { document: "notes", version: "v1" });
    hooks.documentUpdated("notes");
    hooks.send("document.deleted", { document: "old" });
    await expect.poll(() => [first.requests.length, second.requests.length]).toEqual([4, 4]);

    for (const { requests } of [first, second]) {
      expect(requests.map((r) => r.body.type).sort()).toEqual([
        "document.created",
        "document.deleted",
        "document.updated",
        "version.created",
      ]);
      for (const request of requests) {
        expect(request.method).toBe("POST");
        expect(request.url).toBe("/hook");
        expect(header(request, "content-type")).toBe("application/json");
        expect(header(request, "user-agent")).toBe("collab-docs-webhooks");
        expect(header(request, WebhookHeader.event)).toBe(request.body.type);
        expect(header(request, WebhookHeader.delivery)).toBe(request.body.id);
        expect(request.body.id).toMatch(UUID);
        expect(new Date(request.body.created).toISOString()).toBe(request.body.created);
        expect(verifySignature(request.raw, header(request, WebhookHeader.signature), SECRET)).toBe(
          true,
        );
      }
    }
    const byType = (type: WebhookEventType) => first.requests.find((r) => r.body.type === type);
    expect(byType("version.created")?.body.data).toEqual({ document: "notes", version: "v1" });
    expect(byType("document.deleted")?.body.data).toEqual({ document: "old" });
    expect(byType("document.updated")?.body.data.document).toBe("notes");
    // One event, one id: the same at every URL.
    expect(first.requests.map((r) => r.body.id).sort()).toEqual(
      second.requests.map((r) => r.body.id).sort(),
    );
  });

  it("[HOOK1] a tampered body, another secret, or a missing or malformed header fails verification", async () => {
    const target = await receiver();
    const { hooks } = webhooks({ urls: [target.url] });
    hooks.send("document.created", { document: "notes" });
    await expect.poll(() => target.requests.length).toBe(1);
    const [request] = target.requests as [Received];
    const body = request.raw.toString("utf8");
    const sent = header(request, WebhookHeader.signature);

    expect(sent).toBe(signature(body, SECRET));
    expect(sent).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(body, sent, SECRET)).toBe(true);
    expect(verifySignature(body.replace("notes", "notez"), sent, SECRET)).toBe(false);
    expect(verifySignature(`${body} `, sent, SECRET)).toBe(false);
    expect(verifySignature(body, sent, "another-secret")).toBe(false);
    expect(verifySignature(body, undefined, SECRET)).toBe(false);
    expect(verifySignature(body, "sha256=00", SECRET)).toBe(false);
    expect(verifySignature(body, "", SECRET)).toBe(false);
  });

  it("[HOOK1] without a secret events are unsigned, and a warning says so once", async () => {
    const target = await receiver();
    const { hooks, lines } = webhooks({ urls: [target.url], secret: null });
    hooks.send("document.created", { document: "a" });
    hooks.send("document.created", { document: "b" });
    await expect.poll(() => target.requests.length).toBe(2);
    for (const request of target.requests) {
      expect(header(request, WebhookHeader.signature)).toBeUndefined();
    }
    const warnings = lines.filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.msg)).toContain("not signed");
  });
});

describe("retries", () => {
  it("[HOOK2] a 500 is retried, with the same delivery id and body, until a 2xx", async () => {
    const target = await receiver((index) => ({ status: index < 2 ? 500 : 200 }));
    const { hooks, outcomes } = webhooks({ urls: [target.url] });
    hooks.send("document.created", { document: "notes" });
    await expect
      .poll(() => outcomes.map(([outcome]) => outcome))
      .toEqual(["retried", "retried", "delivered"]);
    expect(target.requests).toHaveLength(3);
    const [first, ...retries] = target.requests as [Received, ...Received[]];
    for (const retry of retries) {
      expect(retry.body.id).toBe(first.body.id);
      expect(header(retry, WebhookHeader.delivery)).toBe(first.body.id);
      expect(retry.raw.equals(first.raw)).toBe(true);
      expect(verifySignature(retry.raw, header(retry, WebhookHeader.signature), SECRET)).toBe(true);
    }
    expect(hooks.pending).toBe(0);
  });

  it("[HOOK2] a network error is retried, and after maxAttempts the delivery fails with the error logged", async () => {
    const port = await closedPort();
    const { hooks, count, logged } = webhooks({
      urls: [`http://127.0.0.1:${port}/hook`],
      maxAttempts: 3,
    });
    hooks.send("document.deleted", { document: "gone" });
    await expect.poll(() => count("failed")).toBe(1);
    expect(count("retried")).toBe(2);
    const [failure] = logged("webhook delivery failed; giving up");
    expect(failure).toMatchObject({
      level: "error",
      event: "document.deleted",
      document: "gone",
      url: `http://127.0.0.1:${port}/hook`,
      attempts: 3,
    });
    expect(String(failure?.error)).toContain("ECONNREFUSED");
    expect(hooks.pending).toBe(0);
  });

  it("[HOOK2] after maxAttempts 5xx answers the delivery fails, logged with its event, URL and last status", async () => {
    const target = await receiver(() => ({ status: 503 }));
    const { hooks, count, logged } = webhooks({ urls: [target.url], maxAttempts: 4 });
    hooks.send("version.created", { document: "notes", version: "v2" });
    await expect.poll(() => count("failed")).toBe(1);
    expect(target.requests).toHaveLength(4);
    expect(count("retried")).toBe(3);
    expect(new Set(target.requests.map((r) => r.body.id)).size).toBe(1);
    expect(logged("webhook delivery failed; giving up")).toEqual([
      expect.objectContaining({
        level: "error",
        event: "version.created",
        url: target.url,
        status: 503,
        attempts: 4,
      }),
    ]);
  });

  it("[HOOK2] Retry-After is honoured: the retry waits as long as the receiver asked", async () => {
    const target = await receiver((index) =>
      index === 0 ? { status: 429, headers: { "retry-after": "1" } } : { status: 200 },
    );
    const { hooks, count } = webhooks({ urls: [target.url] });
    hooks.send("document.created", { document: "notes" });
    await expect.poll(() => count("delivered"), { timeout: 5_000 }).toBe(1);
    const [first, second] = target.requests as [Received, Received];
    // backoffBaseMs is 20: without Retry-After the retry would come within 20 ms.
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
  });

  it("[HOOK2] Retry-After is capped by maxBackoffMs", async () => {
    const target = await receiver((index) =>
      index === 0 ? { status: 503, headers: { "retry-after": "3600" } } : { status: 200 },
    );
    const { hooks, count } = webhooks({ urls: [target.url], maxBackoffMs: 200 });
    hooks.send("document.created", { document: "notes" });
    await expect.poll(() => count("delivered")).toBe(1);
    const [first, second] = target.requests as [Received, Received];
    expect(second.at - first.at).toBeGreaterThanOrEqual(190);
    expect(second.at - first.at).toBeLessThan(5_000);
  });

  it("[HOOK2] retry delays double with jitter up to the cap; Retry-After is read as seconds or an HTTP date", () => {
    const delay = (attempts: number, random: number, retryAfterMs: number | null = null) =>
      retryDelayMs({ attempts, baseMs: 1_000, maxMs: 300_000, retryAfterMs, random: () => random });
    expect([1, 2, 3, 4].map((attempts) => delay(attempts, 0))).toEqual([500, 1_000, 2_000, 4_000]);
    expect([1, 2, 3, 4].map((attempts) => delay(attempts, 1))).toEqual([
      1_000, 2_000, 4_000, 8_000,
    ]);
    expect(delay(40, 1)).toBe(300_000);
    expect(delay(1, 0, 30_000)).toBe(30_000);
    expect(delay(1, 0, 3_600_000)).toBe(300_000);

    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it.each([400, 401, 404, 410, 302])(
    "[HOOK2] a %i fails at once: not retried, not followed, logged",
    async (status) => {
      const target = await receiver(() => ({ status, headers: { location: "/elsewhere" } }));
      const { hooks, outcomes, logged } = webhooks({ urls: [target.url] });
      hooks.send("document.created", { document: "notes" });
      await expect.poll(() => outcomes).toEqual([["failed", "document.created"]]);
      expect(target.requests.map((r) => r.url)).toEqual(["/hook"]);
      expect(hooks.pending).toBe(0);
      expect(logged("webhook refused by its receiver; not retried")).toEqual([
        expect.objectContaining({ level: "error", status, url: target.url, attempts: 1 }),
      ]);
    },
  );
});

describe("debounced document.updated", () => {
  it("[HOOK3] many changes to a document in one window send one event carrying the last change's time; documents are debounced separately", async () => {
    const target = await receiver();
    const { hooks } = webhooks({ urls: [target.url], debounceMs: 150 });
    const before = Date.now();
    for (let i = 0; i < 100; i++) hooks.documentUpdated("a");
    hooks.documentUpdated("b");
    hooks.documentUpdated("b");
    const lastChange = Date.now();
    await expect.poll(() => target.requests.length).toBe(2);
    const first = target.requests.map((r) => r.body);
    expect(first.map((body) => body.data.document).sort()).toEqual(["a", "b"]);
    for (const body of first) {
      expect(body.type).toBe("document.updated");
      const updated = Date.parse(String(body.data.updated));
      expect(updated).toBeGreaterThanOrEqual(before);
      expect(updated).toBeLessThanOrEqual(lastChange);
      // Sent at the window's end (trailing edge), not on the first change.
      expect(Date.parse(body.created) - before).toBeGreaterThanOrEqual(145);
    }

    // A later change opens a new window: one more event for "a", none for "b".
    hooks.documentUpdated("a");
    await expect.poll(() => target.requests.length).toBe(3);
    expect(target.requests.map((r) => r.body.data.document).sort()).toEqual(["a", "a", "b"]);
  });

  it("[HOOK3] continuous editing sends one event per window, never more and never none", async () => {
    const target = await receiver();
    const { hooks } = webhooks({ urls: [target.url], debounceMs: 100 });
    const typing = setInterval(() => hooks.documentUpdated("busy"), 5);
    onTestFinished(() => clearInterval(typing));
    await expect.poll(() => target.requests.length).toBeGreaterThanOrEqual(3);
    clearInterval(typing);
    const created = target.requests.map((r) => Date.parse(r.body.created)).sort((x, y) => x - y);
    for (let i = 1; i < created.length; i++) {
      expect((created[i] ?? 0) - (created[i - 1] ?? 0)).toBeGreaterThanOrEqual(95);
    }
  });
});

describe("a slow receiver slows nothing", () => {
  it("[HOOK4] a receiver that never answers does not block send, holds at most 4 requests, and other URLs get every event", async () => {
    const silent = await receiver(() => "hold");
    const healthy = await receiver();
    const { hooks } = webhooks({ urls: [silent.url, healthy.url] });
    for (let i = 0; i < 20; i++) {
      expect(hooks.send("document.created", { document: `doc-${i}` })).toBeUndefined();
    }
    // Queuing only: no request is even started on the caller's stack.
    expect(silent.requests).toHaveLength(0);

    await expect.poll(() => healthy.requests.length).toBe(20);
    await expect.poll(() => silent.requests.length).toBe(4);
    // The healthy URL's last answers may still be on their way back: wait for them, not a clock.
    await expect.poll(() => hooks.pending).toBe(20);
  });

  it("[HOOK4] an attempt that times out is retried with the same delivery id", async () => {
    const silent = await receiver(() => "hold");
    const { hooks, count, logged } = webhooks({
      urls: [silent.url],
      timeoutMs: 100,
      maxAttempts: 3,
    });
    hooks.send("document.created", { document: "notes" });
    await expect.poll(() => count("failed")).toBe(1);
    expect(silent.requests).toHaveLength(3);
    expect(new Set(silent.requests.map((r) => r.body.id)).size).toBe(1);
    expect(count("retried")).toBe(2);
    expect(logged("webhook delivery failed; giving up")[0]?.error).toBe("timed out");
  });
});

describe("bounded queue", () => {
  it("[HOOK5] beyond maxQueued the oldest waiting deliveries are dropped, logged and counted; those in flight are kept", async () => {
    const target = await receiver(() => "hold");
    const { hooks, count, logged } = webhooks({
      urls: [target.url],
      concurrency: 1,
      maxQueued: 2,
    });
    hooks.send("document.created", { document: "doc", seq: 0 });
    await expect.poll(() => target.requests.length).toBe(1);

    for (let seq = 1; seq <= 5; seq++) hooks.send("document.created", { document: "doc", seq });
    // Dropped at once, on send: the queue never holds more than maxQueued.
    expect(count("dropped")).toBe(3);
    expect(hooks.pending).toBe(3);
    expect(logged("webhook queue full; dropped the oldest delivery")).toHaveLength(3);

    target.release();
    await expect.poll(() => count("delivered")).toBe(3);
    expect(target.requests.map((r) => r.body.data.seq)).toEqual([0, 4, 5]);
  });

  it("[HOOK5] deliveries waiting to be retried count towards maxQueued", async () => {
    const target = await receiver(() => "hold");
    const { hooks, count } = webhooks({
      urls: [target.url],
      maxQueued: 2,
      backoffBaseMs: 60_000,
    });
    hooks.send("document.created", { document: "doc", seq: 0 });
    hooks.send("document.created", { document: "doc", seq: 1 });
    await expect.poll(() => target.requests.length).toBe(2);
    hooks.send("document.created", { document: "doc", seq: 2 });
    hooks.send("document.created", { document: "doc", seq: 3 });
    await expect.poll(() => target.requests.length).toBe(4);
    expect(count("dropped")).toBe(0); // in flight: not counted

    target.release(500);
    await expect.poll(() => count("retried")).toBe(4);
    expect(count("dropped")).toBe(2);
    expect(hooks.pending).toBe(2);
  });
});

describe("close", () => {
  it("[HOOK6] close sends the debounced events still in their window and waits for their delivery", async () => {
    const target = await receiver();
    const { hooks, count, logged } = webhooks({ urls: [target.url], debounceMs: 60_000 });
    hooks.documentUpdated("a");
    hooks.documentUpdated("b");
    hooks.send("document.deleted", { document: "c" });
    await hooks.close();
    expect(target.requests.map((r) => `${r.body.type} ${r.body.data.document}`).sort()).toEqual([
      "document.deleted c",
      "document.updated a",
      "document.updated b",
    ]);
    expect(count("delivered")).toBe(3);

    // Closed: later events are logged, not sent.
    hooks.send("document.created", { document: "late" });
    hooks.documentUpdated("late");
    expect(hooks.pending).toBe(0);
    expect(logged("webhook event after close; not sent")).toHaveLength(1);
  });

  it("[HOOK6] close waits at most timeoutMs for a receiver that never answers, then drops what is left", async () => {
    const silent = await receiver(() => "hold");
    const { hooks, count, logged } = webhooks({ urls: [silent.url] });
    for (let i = 0; i < 6; i++) hooks.send("document.created", { document: `doc-${i}` });
    await expect.poll(() => silent.requests.length).toBe(4);
    const started = performance.now();
    await hooks.close({ timeoutMs: 200 });
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(3_000);
    expect(count("dropped")).toBe(6);
    expect(hooks.pending).toBe(0);
    expect(logged("webhooks closed with deliveries not delivered")).toEqual([
      expect.objectContaining({ level: "error", abandoned: 6 }),
    ]);
  });
});

describe("logs and metrics", () => {
  it("[HOOK7] logs show a receiver URL without its query string or credentials, which are still sent", async () => {
    const target = await receiver((index) => ({ status: index === 0 ? 500 : 200 }));
    const url = `http://hook-user:pa55word@127.0.0.1:${target.port}/hook?key=hush`;
    const { hooks, count, lines } = webhooks({ urls: [url], secret: null });
    hooks.send("document.created", { document: "notes" });
    await expect.poll(() => count("delivered")).toBe(1);

    for (const request of target.requests) {
      expect(request.url).toBe("/hook?key=hush");
      expect(header(request, "authorization")).toBe(
        `Basic ${Buffer.from("hook-user:pa55word").toString("base64")}`,
      );
    }
    const logs = lines.map((line) => JSON.stringify(line)).join("\n");
    expect(lines.filter((line) => line.url === target.url)).toHaveLength(2); // retrying, delivered
    expect(logs).toContain(target.url);
    expect(logs).not.toContain("hush");
    expect(logs).not.toContain("pa55word");
    expect(logs).not.toContain("hook-user");
  });

  it("[HOOK8] every outcome is counted in collab_webhook_deliveries_total by event and outcome", async () => {
    const metrics = createMetrics({
      openConnections: () => 0,
      loadedDocuments: () => 0,
      pendingUpdates: () => 0,
      storeHealthy: () => true,
    });
    const target = await receiver((index) => ({ status: index === 0 ? 500 : 200 }));
    const { hooks } = webhooks({
      urls: [target.url],
      onDelivery: (outcome, event) => metrics.webhookDeliveries.inc({ event, outcome }),
    });
    hooks.send("version.created", { document: "notes", version: "v1" });
    await vi.waitFor(async () => {
      const text = await metrics.registry.metrics();
      expect(text).toContain(
        'collab_webhook_deliveries_total{event="version.created",outcome="retried"} 1',
      );
      expect(text).toContain(
        'collab_webhook_deliveries_total{event="version.created",outcome="delivered"} 1',
      );
    });
  });
});
