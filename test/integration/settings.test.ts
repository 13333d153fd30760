/**
 * Every setting takes effect in the running process ([CONF3]), given through
 * the environment and, separately, as a flag. Each setting has a probe that
 * sees what it does from outside (a webhook arrives, a limit bites, a port is
 * used, a certificate is served, a token is refused), checked against a real
 * server process started by the CLI. A few settings have no effect a test can
 * see in seconds (fsync, shutdown timing, send-buffer and merge timings):
 * for those the probe reads the start-up log line, which echoes every
 * setting as the process took it.
 *
 * `COVERAGE` is typed by the Config's keys, so a new setting without a probe
 * does not compile.
 */
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { get as httpsGet } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { LinkSigner } from "../../server/src/attachments/signing.ts";
import { type Config, flagName, SETTINGS } from "../../server/src/config.ts";
import { acknowledged, nodeSocket, refusal, synced } from "../helpers/clients.ts";
import { type Engine, freePort, startPostgres, startRedis } from "../helpers/engines.ts";
import { parseLine, type ServerProcess, spawnServer, tempDir } from "../helpers/server.ts";
import { selfSigned } from "../helpers/tls.ts";
import { rawSocket, wire } from "../helpers/wire.ts";

const SOON = { timeout: 15_000, interval: 20 } as const;
const SECRET = "settings-test-secret-0123456789abcdef";
const API_SECRET = "settings-api-secret-0123456789abcdef!";
const METRICS_TOKEN = "settings-metrics-token";
const WEBHOOK_SECRET = "settings-webhook-secret";
const DAY_MS = 24 * 60 * 60 * 1000;
const LINK_SECRET = "settings-attachment-links-0123456789abcdef";

/** Which server a setting is probed on. */
type Group = "main" | "memory" | "cluster";

/** A setting's value for the test, and the server it goes to. */
interface Coverage {
  readonly group: Group;
  /** The raw value, as an environment variable or flag takes it (a function: made at run time). */
  readonly value: string | ((run: Run) => string);
}

/** What the runs share: files, ports and receivers made once. */
interface Run {
  readonly dataDir: string;
  readonly port: number;
  readonly webhookUrl: string;
  readonly tls: { readonly cert: string; readonly key: string };
  readonly publicKey: string;
  readonly postgres: string;
  readonly redis: string;
}

const COVERAGE: Record<keyof Config, Coverage> = {
  host: { group: "main", value: "localhost" },
  port: { group: "main", value: (run) => String(run.port) },
  dataDir: { group: "main", value: (run) => run.dataDir },
  store: { group: "memory", value: "memory" },
  databaseUrl: { group: "cluster", value: (run) => run.postgres },
  redisUrl: { group: "cluster", value: (run) => run.redis },
  cluster: { group: "cluster", value: "true" },
  fsync: { group: "main", value: "true" },
  leveldbCacheBytes: { group: "main", value: "1048576" },
  leveldbWriteBufferBytes: { group: "main", value: "131072" },
  logLevel: { group: "main", value: "debug" },
  maxMessageBytes: { group: "main", value: "65536" },
  maxSendBufferBytes: { group: "main", value: "12345678" },
  wsCompression: { group: "main", value: "on" },
  wsCompressionMinBytes: { group: "main", value: "2048" },
  maxUnstoredBytes: { group: "main", value: "2345678" },
  maxDocuments: { group: "main", value: "4" },
  maxUnauthenticatedQueueBytes: { group: "memory", value: "4096" },
  maxUnauthenticatedQueueMessages: { group: "main", value: "5" },
  maxPendingDocuments: { group: "main", value: "2" },
  idleTimeoutMs: { group: "main", value: "2000" },
  compactMaxEntries: { group: "main", value: "3" },
  compactMaxBytes: { group: "memory", value: "4096" },
  broadcastBatchMs: { group: "main", value: "-1" },
  shutdownTimeoutMs: { group: "main", value: "4321" },
  authSecret: { group: "main", value: SECRET },
  authPublicKey: { group: "main", value: (run) => run.publicKey },
  authIssuer: { group: "main", value: "https://issuer.example" },
  authAudience: { group: "main", value: "collab-tests" },
  allowAnonymous: { group: "memory", value: "true" },
  apiSecret: { group: "main", value: API_SECRET },
  allowedOrigins: { group: "main", value: "https://app.example" },
  trustProxy: { group: "main", value: "true" },
  rateLimitConnections: { group: "main", value: "40" },
  rateLimitBurst: { group: "main", value: "10" },
  maxBodyBytes: { group: "main", value: "2048" },
  maxAttachmentBytes: { group: "main", value: "4096" },
  maxAttachmentsPerDocument: { group: "main", value: "2" },
  maxAttachmentBytesPerDocument: { group: "main", value: "3000" },
  attachmentUrlSecret: { group: "main", value: LINK_SECRET },
  attachmentUrlSeconds: { group: "main", value: "120" },
  attachmentGraceMs: { group: "main", value: "7200000" },
  versionIntervalMs: { group: "main", value: "1000" },
  maxAutoVersions: { group: "main", value: "1" },
  webhookUrls: { group: "main", value: (run) => run.webhookUrl },
  webhookSecret: { group: "main", value: WEBHOOK_SECRET },
  webhookDebounceMs: { group: "main", value: "50" },
  trashRetentionDays: { group: "main", value: "3" },
  metricsToken: { group: "main", value: METRICS_TOKEN },
  tlsCert: { group: "memory", value: (run) => run.tls.cert },
  tlsKey: { group: "memory", value: (run) => run.tls.key },
};

type Mode = "environment" | "flags";

/** `group`'s settings, by environment variable, with their values for `run`. */
function valuesOf(run: Run, group: Group): Array<[string, string]> {
  const values: Array<[string, string]> = [];
  for (const s of SETTINGS) {
    const coverage = COVERAGE[s.key];
    if (coverage.group !== group) continue;
    values.push([
      s.env,
      typeof coverage.value === "function" ? coverage.value(run) : coverage.value,
    ]);
  }
  return values;
}

/** Starts the CLI with `values` given the `mode` way (and no other setting of ours). */
async function start(values: Array<[string, string]>, mode: Mode): Promise<ServerProcess> {
  // The helper's own defaults (HOST, PORT 0, LOG_LEVEL info) are environment variables:
  // flags override them, and in environment mode the given values replace them.
  const env = mode === "environment" ? Object.fromEntries(values) : {};
  const args = mode === "flags" ? values.flatMap(([name, value]) => [flagName(name), value]) : [];
  const server = await spawnServer(env, ["serve", ...args]);
  onTestFinished(() => {
    if (server.child.exitCode === null) server.child.kill("SIGKILL");
  });
  return server;
}

/** The start-up log line's echo of the settings. */
function settingsOf(server: ServerProcess): Record<string, unknown> {
  for (const line of server.lines) {
    const entry = parseLine(line);
    if (entry?.settings !== undefined) return entry.settings as Record<string, unknown>;
  }
  throw new Error("no start-up line with the settings");
}

/** HS256 token with the claims the main group's issuer and audience want. */
function token(): Promise<string> {
  return new SignJWT({ docs: ["*"], perm: "write", name: "Tester" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("tester")
    .setIssuer("https://issuer.example")
    .setAudience("collab-tests")
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

let clients = 0;

/**
 * A provider whose upgrade carries an X-Forwarded-For address of its own: with TRUST_PROXY on,
 * each counts against its own connection budget, so the refusals the probes provoke do not
 * spend the budget of the others.
 */
function provider(url: string, name: string, tokenValue: string | null) {
  const n = ++clients;
  const forwarded = `10.1.${n >> 8}.${n & 255}`;
  const socket = new HocuspocusProviderWebsocket({
    url,
    WebSocketPolyfill: nodeSocket({ headers: { "x-forwarded-for": forwarded } }),
  });
  const client = new HocuspocusProvider({
    websocketProvider: socket,
    name,
    document: new Y.Doc(),
    token: tokenValue,
  });
  client.attach();
  onTestFinished(() => {
    client.destroy();
    socket.destroy();
  });
  return client;
}

/** Status of a WebSocket upgrade (101 or the refusal's). */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.on("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("error", () => {});
  });
}

/** The Sec-WebSocket-Extensions header the server answers an offer of permessage-deflate with. */
function negotiated(url: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: true });
    ws.on("upgrade", (response) => resolve(response.headers["sec-websocket-extensions"]));
    ws.on("open", () => ws.terminate());
    ws.on("error", reject);
  });
}

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

let run: Run;
let postgres: Engine;
let redis: Engine;
const webhooks: Array<{ body: string; signature: string | undefined }> = [];

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  const receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => {
      const header = request.headers["x-collab-signature"];
      webhooks.push({ body, signature: Array.isArray(header) ? header[0] : header });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  const dir = await mkdtemp(join(tmpdir(), "collab-settings-"));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const { cert, key } = selfSigned(dir, "settings");
  const pair = await generateKeyPair("ES256");
  esPrivateKey = pair.privateKey;
  run = {
    dataDir: "",
    port: 0,
    webhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    tls: { cert, key },
    publicKey: await exportSPKI(pair.publicKey),
    postgres: postgres.url,
    redis: redis.url,
  };
}, 120_000);

afterAll(async () => {
  await Promise.all([postgres?.stop(), redis?.stop()]);
});

let esPrivateKey: CryptoKey;

describe("every setting takes effect", () => {
  for (const mode of ["environment", "flags"] as const) {
    it(`[CONF3] the main group, given as ${mode}`, { timeout: 120_000 }, async () => {
      const dataDir = await tempDir("collab-settings-data-");
      const local: Run = { ...run, dataDir, port: await freePort() };
      webhooks.length = 0;
      const server = await start(valuesOf(local, "main"), mode);
      const http = `http://localhost:${local.port}`;
      const ws = `ws://localhost:${local.port}`;
      const settings = settingsOf(server);

      // HOST, PORT, DATA_DIR: the log says where, and LevelDB files are in the directory.
      expect(server.address.url).toBe(`http://localhost:${local.port}`);
      expect((await fetch(`${http}/healthz`)).status).toBe(200);
      expect(existsSync(join(dataDir, "CURRENT"))).toBe(true);

      // AUTH_SECRET, AUTH_ISSUER, AUTH_AUDIENCE: a token is needed, and only with both claims.
      const writer = provider(ws, "probe", await token());
      await synced(writer);
      expect(await refusal(provider(ws, "probe", null))).toMatch(/^token-missing/);
      const noIssuer = await new SignJWT({ docs: ["*"], perm: "write" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("tester")
        .setAudience("collab-tests")
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(SECRET));
      expect(await refusal(provider(ws, "probe", noIssuer))).toMatch(/^token-invalid/);
      const wrongAudience = await new SignJWT({ docs: ["*"], perm: "write" })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("tester")
        .setIssuer("https://issuer.example")
        .setAudience("someone-else")
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(SECRET));
      expect(await refusal(provider(ws, "probe", wrongAudience))).toMatch(/^token-invalid/);
      // AUTH_PUBLIC_KEY: an ES256 token from the matching private key opens documents too.
      const es256 = await new SignJWT({ docs: ["*"], perm: "write" })
        .setProtectedHeader({ alg: "ES256" })
        .setSubject("es-user")
        .setIssuer("https://issuer.example")
        .setAudience("collab-tests")
        .setExpirationTime("1h")
        .sign(esPrivateKey);
      await synced(provider(ws, "probe", es256));

      // COMPACT_MAX_ENTRIES=3 and LOG_LEVEL=debug: a few edits compact, logged at debug.
      const text = writer.document.getText("text");
      for (let i = 0; i < 6; i++) text.insert(0, `${i}`);
      await acknowledged(writer);
      await vi.waitFor(
        () =>
          expect(server.lines.some((l) => parseLine(l)?.msg === "document compacted")).toBe(true),
        SOON,
      );
      // METRICS_TOKEN: /metrics needs it.
      expect((await fetch(`${http}/metrics`)).status).toBe(401);
      const metrics = await (
        await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
      ).text();
      expect(metricValue(metrics, "collab_compactions_total")).toBeGreaterThan(0);

      // WEBHOOK_URL, WEBHOOK_SECRET (and WEBHOOK_DEBOUNCE_MS=50, so it comes soon): signed events arrive.
      await vi.waitFor(() => expect(webhooks.length).toBeGreaterThan(0), SOON);
      for (const hook of webhooks) {
        const expected = createHmac("sha256", WEBHOOK_SECRET).update(hook.body).digest("hex");
        expect(hook.signature).toBe(`sha256=${expected}`);
      }
      // VERSION_INTERVAL_MS=1000, MAX_AUTO_VERSIONS=1: automatic versions come, and one is kept.
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${http}/api/v1${path}`, {
          ...init,
          headers: { authorization: `Bearer ${API_SECRET}`, ...init.headers },
        });
      const versions = async () =>
        ((await (await api("/documents/probe/versions")).json()) as { versions: { id: string }[] })
          .versions;
      await vi.waitFor(async () => expect(await versions()).toHaveLength(1), SOON);
      const first = (await versions())[0]?.id;
      text.insert(0, "later ");
      await acknowledged(writer);
      await vi.waitFor(async () => expect((await versions())[0]?.id).not.toBe(first), SOON);
      expect(await versions()).toHaveLength(1);

      // API_SECRET: the list needs it.
      expect((await fetch(`${http}/api/v1/documents`)).status).toBe(401);
      expect((await api("/documents")).status).toBe(200);
      // MAX_BODY_BYTES=2048.
      const big = await api("/documents/big", {
        method: "PUT",
        headers: { "content-type": "text/markdown" },
        body: "x".repeat(3000),
      });
      expect(big.status).toBe(413);
      // MAX_ATTACHMENT_BYTES=4096, MAX_ATTACHMENT_BYTES_PER_DOCUMENT=3000,
      // MAX_ATTACHMENTS_PER_DOCUMENT=2: each limit answers 413.
      const attach = (name: string, bytes: Uint8Array<ArrayBuffer>) =>
        api(`/documents/${name}/attachments`, { method: "POST", body: bytes });
      expect((await attach("files", new Uint8Array(5000))).status).toBe(413);
      expect((await attach("files", new Uint8Array(2000).fill(1))).status).toBe(201);
      expect((await attach("files", new Uint8Array(1500).fill(2))).status).toBe(413);
      expect((await attach("files", new Uint8Array(10).fill(3))).status).toBe(201);
      expect((await attach("files", new Uint8Array(10).fill(4))).status).toBe(413);
      // ATTACHMENT_URL_SECRET, ATTACHMENT_URL_SECONDS=120: links are signed with that key and
      // live 2 to 4 minutes.
      const listed = (await (await api("/documents/files/attachments")).json()) as {
        attachments: Array<{ url: string }>;
      };
      const signedLink = (await (
        await api("/documents/files/attachments/links", { method: "POST" })
      ).json()) as { expires: string };
      const lifetime = Date.parse(signedLink.expires) - Date.now();
      expect(lifetime).toBeGreaterThan(119_000);
      expect(lifetime).toBeLessThanOrEqual(240_000);
      const mine = new LinkSigner(Buffer.from(LINK_SECRET), 120).sign("files");
      const viaLink = await fetch(
        `${http}${listed.attachments[0]?.url}?expires=${mine.expires}&signature=${mine.signature}`,
      );
      expect(viaLink.status).toBe(200);

      // TRASH_RETENTION_DAYS=3: a deleted document leaves the trash in 3 days.
      const deleted = (await (await api("/documents/probe", { method: "DELETE" })).json()) as {
        trash: { deleted: string; purgeAt: string };
      };
      expect(Date.parse(deleted.trash.purgeAt) - Date.parse(deleted.trash.deleted)).toBe(
        3 * DAY_MS,
      );

      // ALLOWED_ORIGINS: that origin may connect and frame the app.
      expect(await upgrade(ws, { origin: "https://app.example" })).toBe(101);
      expect(await upgrade(ws, { origin: "https://other.example" })).toBe(403);
      const page = await fetch(`${http}/d/x`);
      expect(page.headers.get("content-security-policy")).toContain(
        "frame-ancestors 'self' https://app.example",
      );
      // WS_COMPRESSION=on: an offer of permessage-deflate is accepted. (What
      // WS_COMPRESSION_MIN_BYTES does on the wire is checked in compression.test.ts.)
      expect(await negotiated(ws)).toMatch(/^permessage-deflate\b/);
      // TRUST_PROXY, RATE_LIMIT_CONNECTIONS=40, RATE_LIMIT_BURST=10: the forwarded address
      // counts, and it gets 50 attempts.
      const forwarded = { "x-forwarded-for": "10.9.9.9" };
      for (let i = 0; i < 50; i++) expect(await upgrade(ws, forwarded)).toBe(101);
      expect(await upgrade(ws, forwarded)).toBe(429);
      expect(await upgrade(ws, { "x-forwarded-for": "10.9.9.10" })).toBe(101);

      // MAX_MESSAGE_BYTES=65536: a larger message closes its socket with 1009.
      const big1 = rawSocket(ws);
      await big1.opened;
      big1.ws.send(new Uint8Array(70_000));
      expect((await big1.closed).code).toBe(1009);
      // MAX_UNAUTHENTICATED_QUEUE_MESSAGES=5, MAX_PENDING_DOCUMENTS=2: 4205.
      const chatty = rawSocket(ws);
      await chatty.opened;
      for (let i = 0; i < 6; i++) chatty.ws.send(wire.syncStep1("never-authenticated"));
      expect((await chatty.closed).code).toBe(4205);
      const fanout = rawSocket(ws);
      await fanout.opened;
      for (let i = 0; i < 3; i++) fanout.ws.send(wire.syncStep1(`pending-${i}`));
      expect((await fanout.closed).code).toBe(4205);
      // IDLE_TIMEOUT_MS=2000: a socket that sends nothing is closed.
      const idle = rawSocket(ws);
      await idle.opened;
      expect((await idle.closed).code).toBe(4408);
      // MAX_DOCUMENTS=4: a fifth document is refused.
      const valid = await token();
      const held = ["d1", "d2", "d3", "d4", "d5"].map((name) => provider(ws, name, valid));
      const results = await Promise.all(
        held.map(
          (p) =>
            new Promise<string>((resolve) => {
              p.on("synced", () => resolve("synced"));
              p.on("authenticationFailed", ({ reason }: { reason: string }) => resolve(reason));
            }),
        ),
      );
      expect(results.filter((r) => r === "too-many-documents").length).toBeGreaterThan(0);

      // The rest, which no probe sees in seconds, as the process took them.
      expect(settings).toMatchObject({
        FSYNC: true,
        LEVELDB_CACHE_BYTES: 1_048_576,
        LEVELDB_WRITE_BUFFER_BYTES: 131_072,
        MAX_SEND_BUFFER_BYTES: 12_345_678,
        WS_COMPRESSION: "on",
        WS_COMPRESSION_MIN_BYTES: 2048,
        // Pausing a connection that outpaces the store: test/integration/backpressure.test.ts.
        MAX_UNSTORED_BYTES: 2_345_678,
        BROADCAST_BATCH_MS: -1,
        SHUTDOWN_TIMEOUT_MS: 4321,
        WEBHOOK_DEBOUNCE_MS: 50,
        AUTH_SECRET: "(set)",
        API_SECRET: "(set)",
        WEBHOOK_SECRET: "(set)",
        WEBHOOK_URL: "(set)",
        METRICS_TOKEN: "(set)",
        ATTACHMENT_URL_SECRET: "(set)",
        // Collection runs hourly: what it keeps is checked in test/integration/attachments.test.ts.
        ATTACHMENT_GRACE_MS: 7_200_000,
      });
      expect(JSON.stringify(server.lines)).not.toContain(LINK_SECRET);
      expect(JSON.stringify(server.lines)).not.toContain(SECRET);
      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
    });

    it(`[CONF3] the memory group (STORE, TLS, queue bytes, COMPACT_MAX_BYTES, ALLOW_ANONYMOUS), given as ${mode}`, async () => {
      const server = await start(valuesOf(run, "memory"), mode);
      const ca = await readFile(run.tls.cert);
      expect(server.address.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const get = (path: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          httpsGet(`${server.address.url}${path}`, { ca }, (response) => {
            let body = "";
            response.on("data", (chunk: Buffer) => {
              body += chunk.toString();
            });
            response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
          }).on("error", reject);
        });
      expect(JSON.parse((await get("/readyz")).body)).toMatchObject({ store: "memory" });
      // MAX_UNAUTHENTICATED_QUEUE_BYTES=4096: a larger queued message closes the socket.
      const queued = new WebSocket(server.address.wsUrl, { ca });
      await new Promise((resolve) => queued.on("open", resolve));
      const closed = new Promise<number>((resolve) => queued.on("close", (code) => resolve(code)));
      queued.send(wire.update("never-authenticated", new Uint8Array(5000)));
      expect(await closed).toBe(4205);
      // COMPACT_MAX_BYTES=4096: one large edit compacts.
      const socket = new HocuspocusProviderWebsocket({
        url: server.address.wsUrl,
        WebSocketPolyfill: nodeSocket({ ca }),
      });
      const big = new HocuspocusProvider({
        websocketProvider: socket,
        name: "big",
        document: new Y.Doc(),
      });
      big.attach();
      onTestFinished(() => {
        big.destroy();
        socket.destroy();
      });
      await synced(big);
      big.document.getText("text").insert(0, "y".repeat(6000));
      await acknowledged(big);
      await vi.waitFor(async () => {
        expect(
          metricValue((await get("/metrics")).body, "collab_compactions_total"),
        ).toBeGreaterThan(0);
      }, SOON);
      expect(settingsOf(server)).toMatchObject({ ALLOW_ANONYMOUS: true });
      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
    });

    it(`[CONF3] the cluster group (STORE=postgres, DATABASE_URL, REDIS_URL, CLUSTER), given as ${mode}`, async () => {
      // STORE itself is probed on the memory group; here it is postgres, as the cluster needs.
      const server = await start([...valuesOf(run, "cluster"), ["STORE", "postgres"]], mode);
      const ready = (await (await fetch(`${server.address.url}/readyz`)).json()) as {
        store: string;
      };
      expect(ready.store).toBe("postgres");
      expect(
        server.lines.some((l) => parseLine(l)?.msg === "fan-out to other instances over Redis"),
      ).toBe(true);
      expect(settingsOf(server)).toMatchObject({
        CLUSTER: true,
        DATABASE_URL: "(set)",
        REDIS_URL: "(set)",
      });
      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
      // CLUSTER=true takes effect: without Redis and PostgreSQL the server refuses to start.
      const refused = await start(
        [
          ["CLUSTER", "true"],
          ["STORE", "memory"],
        ],
        mode,
      ).then(
        () => "started",
        (error: Error) => error.message,
      );
      expect(refused).toContain("CLUSTER=true, but REDIS_URL is not set");
    });
  }

  it("[CONF3] every setting is covered by a group above", () => {
    for (const s of SETTINGS) expect(COVERAGE[s.key], s.env).toBeDefined();
  });
});
