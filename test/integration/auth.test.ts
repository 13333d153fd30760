/**
 * Access control over real sockets with the real provider: tokens (valid,
 * expired, wrong document, read-only, malformed, none), public keys and
 * JWKS, anonymous-mode refusal, Origin checks, the connection rate limit
 * and the `token` command.
 */
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { createCollabServer } from "../../server/src/app.ts";
import { accessMode } from "../../server/src/auth/access.ts";
import { createTokenVerifier, mintToken } from "../../server/src/auth/tokens.ts";
import { DEFAULT_CONFIG, parseConfig } from "../../server/src/config.ts";
import { isCollabError } from "../../server/src/errors.ts";
import { acknowledged, connect, refusal, sharedSocket, synced } from "../helpers/clients.ts";
import { parseLine, runCli, spawnServer, startServer } from "../helpers/server.ts";

const SECRET = "test-secret-that-is-at-least-32-characters-long";
const SOON = { timeout: 5_000, interval: 10 };

function token(options: { docs?: string[]; perm?: "read" | "write"; ttl?: string; name?: string }) {
  return mintToken({
    secret: SECRET,
    userId: options.name ?? "alice",
    name: options.name,
    docs: options.docs ?? ["doc"],
    perm: options.perm ?? "write",
    ttl: options.ttl ?? "1h",
  });
}

async function tokenServer(config: Record<string, unknown> = {}) {
  return startServer({ config: { authSecret: SECRET, ...config } });
}

/** An expired token: signed now, expired a minute ago. */
function expiredToken(): Promise<string> {
  return new SignJWT({ docs: ["doc"], perm: "write" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("alice")
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
    .sign(new TextEncoder().encode(SECRET));
}

describe("tokens over WebSocket", () => {
  it("[AUTH1] a valid write token syncs, and its edits reach others and the store", async () => {
    const { address, server } = await tokenServer();
    const alice = connect({ url: address.wsUrl, name: "doc", token: await token({}) });
    const bob = connect({ url: address.wsUrl, name: "doc", token: await token({ name: "bob" }) });
    await Promise.all([synced(alice), synced(bob)]);
    alice.document.getText("t").insert(0, "hello");
    await acknowledged(alice);
    await vi.waitFor(() => expect(bob.document.getText("t").toString()).toBe("hello"), SOON);
    const stored = await server.store.load("doc");
    const copy = new Y.Doc();
    for (const update of stored?.updates ?? []) Y.applyUpdate(copy, update);
    expect(copy.getText("t").toString()).toBe("hello");
  });

  it("[AUTH2] no token, a malformed one, a forged one and an expired one are refused with a reason", async () => {
    const { address } = await tokenServer();
    const forged = await mintToken({
      secret: "another-secret-of-at-least-32-characters!!",
      userId: "mallory",
      docs: ["doc"],
      perm: "write",
      ttl: "1h",
    });
    const cases: Array<[string, string]> = [
      ["", "token-missing"],
      ["not-a-jwt", "token-invalid: it is not a JWT"],
      [forged, "token-invalid: the signature does not match"],
      [await expiredToken(), "token-expired: the token expired at "],
    ];
    for (const [credential, reason] of cases) {
      const provider = connect({ url: address.wsUrl, name: "doc", token: credential });
      expect(await refusal(provider)).toContain(reason);
      expect(provider.isSynced).toBe(false);
    }
  });

  it("[AUTH2] a token without the claims we need is refused, naming the claim", async () => {
    const { address } = await tokenServer();
    const noPerm = await new SignJWT({ docs: ["doc"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    const provider = connect({ url: address.wsUrl, name: "doc", token: noPerm });
    expect(await refusal(provider)).toContain('token-invalid: claim "perm"');
  });

  it("[AUTH3] a token for another document is refused for that document only, on a shared socket", async () => {
    const { address } = await tokenServer();
    const socket = sharedSocket(address.wsUrl);
    const credential = await token({ docs: ["team/*"] });
    const allowed = connect({ url: address.wsUrl, name: "team/notes", token: credential, socket });
    const denied = connect({ url: address.wsUrl, name: "private", token: credential, socket });
    expect(await refusal(denied)).toBe("access-denied: the token does not grant this document");
    await synced(allowed);
    allowed.document.getText("t").insert(0, "still fine");
    await acknowledged(allowed);
  });

  it("[AUTH4] a read-only client receives the document and live changes and sends presence, but its edits go nowhere", async () => {
    const { address, server } = await tokenServer();
    const writer = connect({ url: address.wsUrl, name: "doc", token: await token({}) });
    await synced(writer);
    writer.document.getText("t").insert(0, "before");
    await acknowledged(writer);

    const reader = connect({
      url: address.wsUrl,
      name: "doc",
      token: await token({ perm: "read", name: "reader" }),
    });
    await synced(reader);
    expect(reader.document.getText("t").toString()).toBe("before");
    expect(reader.authorizedScope).toBe("readonly");

    writer.document.getText("t").insert(6, " live");
    await vi.waitFor(
      () => expect(reader.document.getText("t").toString()).toBe("before live"),
      SOON,
    );

    // The reader edits, then announces itself; the server handles its messages in order,
    // so once the writer sees the presence the edit has been handled (and refused).
    reader.document.getText("t").insert(0, "VANDAL ");
    reader.setAwarenessField("user", { name: "Reader" });
    await vi.waitFor(() => {
      const states = [...(writer.awareness?.getStates().values() ?? [])];
      expect(states.some((state) => (state.user as { name?: string })?.name === "Reader")).toBe(
        true,
      );
    }, SOON);
    expect(writer.document.getText("t").toString()).toBe("before live");
    expect(server.hocuspocus.documents.get("doc")?.getText("t").toString()).toBe("before live");
    await server.store.flush();
    const stored = await server.store.load("doc");
    const copy = new Y.Doc();
    for (const update of stored?.updates ?? []) Y.applyUpdate(copy, update);
    expect(copy.getText("t").toString()).toBe("before live");
  });

  it("[AUTH5] a session whose token expires is closed, and a token function supplies a fresh one on reconnect", async () => {
    const { address } = await tokenServer();
    let issued = 0;
    const provider = connect({
      url: address.wsUrl,
      name: "doc",
      token: async () => {
        issued++;
        return token({ ttl: issued === 1 ? "1s" : "1h" });
      },
    });
    await synced(provider);
    const closed = new Promise<number>((resolve) =>
      provider.on("close", ({ event }: { event: { code: number } }) => resolve(event.code)),
    );
    expect(await closed).toBe(4401);
    await vi.waitFor(() => expect(issued).toBe(2), { timeout: 10_000, interval: 20 });
    await synced(provider);
    provider.document.getText("t").insert(0, "after refresh");
    await acknowledged(provider);
  });

  it("[AUTH6] ES256 public keys (PEM) and RS256 keys from a JWKS URL verify tokens", async () => {
    const es = await generateKeyPair("ES256");
    const rs = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(rs.publicKey)), kid: "k1", alg: "RS256" };
    const jwks = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise<void>((resolve) => jwks.close(() => resolve())));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;

    const sign = (key: CryptoKey, alg: string, kid?: string) =>
      new SignJWT({ docs: ["doc"], perm: "read", name: "Key User" })
        .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
        .setSubject("u1")
        .setExpirationTime("5m")
        .sign(key);

    const fromPem = createTokenVerifier({
      secret: null,
      publicKey: await exportSPKI(es.publicKey),
    });
    await expect(fromPem?.(await sign(es.privateKey, "ES256"))).resolves.toMatchObject({
      userId: "u1",
      name: "Key User",
      perm: "read",
      docs: ["doc"],
    });
    // An HS256 token must not pass where only a public key is configured.
    await expect(fromPem?.(await token({}))).rejects.toMatchObject({ code: "TOKEN_INVALID" });

    const { address } = await startServer({ config: { authPublicKey: jwksUrl } });
    const provider = connect({
      url: address.wsUrl,
      name: "doc",
      token: await sign(rs.privateKey, "RS256", "k1"),
    });
    await synced(provider);
    expect(provider.authorizedScope).toBe("readonly");
  });
});

describe("key and claim settings", () => {
  it("[AUTH6] AUTH_ISSUER and AUTH_AUDIENCE are required of every token when set", async () => {
    const verify = createTokenVerifier({
      secret: SECRET,
      publicKey: null,
      issuer: "https://id.example.com",
      audience: "collab",
    });
    const signed = (claims: { iss?: string; aud?: string }) =>
      new SignJWT({ docs: ["doc"], perm: "write", ...claims })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("alice")
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(SECRET));
    await expect(
      verify?.(await signed({ iss: "https://id.example.com", aud: "collab" })),
    ).resolves.toMatchObject({ userId: "alice" });
    await expect(
      verify?.(await signed({ iss: "https://other.example", aud: "collab" })),
    ).rejects.toMatchObject({
      reason: 'token-invalid: claim "iss" is invalid',
    });
    await expect(verify?.(await signed({ iss: "https://id.example.com" }))).rejects.toMatchObject({
      reason: 'token-invalid: claim "aud" is missing',
    });
  });

  it("[AUTH6] a JWKS URL must be https (http only on loopback), and a bad PEM key stops start-up", async () => {
    expect(() => parseConfig({ authPublicKey: "http://id.example.com/jwks.json" })).toThrow(
      "https JWKS URL",
    );
    expect(parseConfig({ authPublicKey: "http://127.0.0.1:9/jwks.json" }).authPublicKey).toContain(
      "127.0.0.1",
    );
    const notAKey = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----";
    await expect(
      createCollabServer({ config: { authPublicKey: notAKey, store: "memory" } }),
    ).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
  });
});

describe("anonymous mode", () => {
  it("[AUTH7] is refused on a non-loopback address without ALLOW_ANONYMOUS, with a reason", async () => {
    try {
      accessMode({ ...DEFAULT_CONFIG, host: "0.0.0.0" });
      expect.unreachable();
    } catch (error) {
      expect(isCollabError(error, "AUTH_MISCONFIGURED")).toBe(true);
      expect((error as Error).message).toContain("AUTH_SECRET");
      expect((error as Error).message).toContain("ALLOW_ANONYMOUS=true");
    }
    expect(accessMode({ ...DEFAULT_CONFIG, host: "0.0.0.0", allowAnonymous: true })).toMatchObject({
      kind: "anonymous",
      loopback: false,
    });
    expect(accessMode({ ...DEFAULT_CONFIG, host: "::1" })).toMatchObject({
      kind: "anonymous",
      loopback: true,
    });
    expect(accessMode({ ...DEFAULT_CONFIG, host: "0.0.0.0", authSecret: SECRET }).kind).toBe(
      "token",
    );

    const result = await runCli({ HOST: "0.0.0.0" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("refusing to start");
  });

  it("[AUTH7] the start-up log says which mode is on", async () => {
    const anonymous = await spawnServer({ STORE: "memory" });
    const line = anonymous.lines.map(parseLine).find((entry) => typeof entry?.access === "string");
    expect(line?.access).toContain("anonymous mode");
    const secured = await spawnServer({ STORE: "memory", AUTH_SECRET: SECRET });
    const securedLine = secured.lines
      .map(parseLine)
      .find((entry) => typeof entry?.access === "string");
    expect(securedLine?.access).toContain("token auth (HS256 secret)");
    expect(secured.lines.join("\n")).not.toContain(SECRET);
  });
});

/** Opens a raw WebSocket and resolves with the HTTP status of a refusal, or 101. */
function upgradeStatus(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.on("open", () => {
      socket.close();
      resolve({ status: 101, body: "", headers: {} });
    });
    socket.on("unexpected-response", (_request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, body, headers: response.headers }),
      );
    });
    socket.on("error", (error) => {
      if (!String(error).includes("Unexpected server response")) reject(error);
    });
  });
}

describe("origins and rate limits", () => {
  it("[AUTH8] an upgrade from a foreign Origin is refused with 403 before any WebSocket traffic", async () => {
    const { address } = await startServer({
      config: { allowedOrigins: ["https://app.example.com"] },
    });
    const foreign = await upgradeStatus(address.wsUrl, { origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body)).toMatchObject({ error: { code: "origin_not_allowed" } });
    expect((await upgradeStatus(address.wsUrl, { origin: "https://app.example.com" })).status).toBe(
      101,
    );
    // The server's own origin (the editor app) and non-browser clients always pass.
    expect((await upgradeStatus(address.wsUrl, { origin: address.url })).status).toBe(101);
    expect((await upgradeStatus(address.wsUrl)).status).toBe(101);
  });

  it("[AUTH8] the REST API answers CORS the same way", async () => {
    const { address } = await startServer({
      config: { allowedOrigins: ["https://app.example.com"] },
    });
    const allowed = await fetch(`${address.url}/api/v1/documents`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "PUT" },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
    const foreign = await fetch(`${address.url}/api/v1/documents`, {
      headers: { origin: "https://evil.example" },
    });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({ error: { code: "origin_not_allowed" } });
  });

  it("[AUTH9] connection attempts per address are rate limited with 429 and Retry-After", async () => {
    const { address } = await startServer({
      config: { rateLimitConnections: 3, rateLimitBurst: 0 },
    });
    for (let i = 0; i < 3; i++) expect((await upgradeStatus(address.wsUrl)).status).toBe(101);
    const limited = await upgradeStatus(address.wsUrl);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(JSON.parse(limited.body)).toMatchObject({ error: { code: "rate_limited" } });
  });

  it("[AUTH9] behind a proxy (TRUST_PROXY) the forwarded address counts, and only the one the proxy added", async () => {
    const { address } = await startServer({
      config: { rateLimitConnections: 1, rateLimitBurst: 0, trustProxy: true },
    });
    const from = (chain: string) => upgradeStatus(address.wsUrl, { "x-forwarded-for": chain });
    expect((await from("10.0.0.1")).status).toBe(101);
    expect((await from("10.0.0.2")).status).toBe(101);
    // A client cannot dodge the limit by prepending addresses of its own.
    expect((await from("1.2.3.4, 10.0.0.1")).status).toBe(429);
  });
});

describe("connection budget", () => {
  it("[AUTH12] a burst beyond the per-minute count passes, then 429", async () => {
    const { address } = await startServer({
      config: { rateLimitConnections: 2, rateLimitBurst: 3 },
    });
    for (let i = 0; i < 5; i++) expect((await upgradeStatus(address.wsUrl)).status).toBe(101);
    expect((await upgradeStatus(address.wsUrl)).status).toBe(429);
  });

  it("[AUTH12] an attempt whose connection opens a document gives its point back, as many a minute as the budget holds", async () => {
    const { address } = await startServer({
      config: { authSecret: SECRET, rateLimitConnections: 5, rateLimitBurst: 0 },
    });
    const valid = await token({});
    // Ten clients in a row, each opening its document: none is limited. The first five give
    // their point back; then the minute's refunds (as many as the budget holds) are used up.
    for (let i = 0; i < 10; i++) {
      const provider = connect({ url: address.wsUrl, name: "doc", token: valid });
      await synced(provider);
      provider.destroy();
    }
    // So the budget is spent now: proven clients cannot open connections without limit.
    expect((await upgradeStatus(address.wsUrl)).status).toBe(429);
  });

  it("[AUTH12] a refused credential or origin costs ten attempts more", async () => {
    const { address } = await startServer({
      config: { authSecret: SECRET, rateLimitConnections: 14, rateLimitBurst: 0 },
    });
    const denied = connect({ url: address.wsUrl, name: "doc", token: "not-a-token" });
    expect(await refusal(denied)).toMatch(/^token-invalid/);
    denied.destroy();
    // 14 - 11 = 3 left.
    for (let i = 0; i < 3; i++) expect((await upgradeStatus(address.wsUrl)).status).toBe(101);
    expect((await upgradeStatus(address.wsUrl)).status).toBe(429);

    const other = await startServer({
      config: { authSecret: SECRET, rateLimitConnections: 12, rateLimitBurst: 0 },
    });
    expect(
      (await upgradeStatus(other.address.wsUrl, { origin: "https://evil.example" })).status,
    ).toBe(403);
    expect((await upgradeStatus(other.address.wsUrl)).status).toBe(101);
    expect((await upgradeStatus(other.address.wsUrl)).status).toBe(429);
  });
});

/** Status and body of a GET sent with its own Host header (fetch cannot set one). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("DNS rebinding", () => {
  it("[AUTH11] without token auth, requests addressed to a foreign host name are refused, API and WebSocket alike", async () => {
    const { address } = await startServer({
      config: { allowedOrigins: ["https://docs.example.com"] },
    });
    const rebound = `attacker.example:${address.port}`;
    const api = await getWithHost(`${address.url}/api/v1/documents`, rebound);
    expect(api.status).toBe(403);
    expect(JSON.parse(api.body)).toMatchObject({ error: { code: "host_not_allowed" } });
    const upgrade = await upgradeStatus(address.wsUrl, {
      host: rebound,
      origin: `http://${rebound}`,
    });
    expect(upgrade.status).toBe(403);
    // IP addresses, localhost and the hosts of ALLOWED_ORIGINS are fine.
    for (const host of [
      `127.0.0.1:${address.port}`,
      `localhost:${address.port}`,
      "docs.example.com",
    ]) {
      expect((await getWithHost(`${address.url}/api/v1/documents`, host)).status).toBe(200);
    }
  });

  it("[AUTH11] with token auth the Host does not matter: a rebound page has no token", async () => {
    const { address } = await tokenServer();
    const result = await getWithHost(
      `${address.url}/api/v1/documents`,
      `attacker.example:${address.port}`,
    );
    expect(result.status).toBe(401);
  });
});

describe("collab-server token", () => {
  it("[AUTH10] mints a token with the configured secret that the server accepts", async () => {
    const result = await runCli({ AUTH_SECRET: SECRET }, [
      "token",
      "--doc",
      "notes",
      "--doc",
      "team/*",
      "--perm",
      "read",
      "--name",
      "Alice",
      "--ttl",
      "1h",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const verify = createTokenVerifier({ secret: SECRET, publicKey: null });
    const grant = await verify?.(result.stdout.trim());
    expect(grant).toMatchObject({
      userId: "Alice",
      name: "Alice",
      docs: ["notes", "team/*"],
      perm: "read",
    });
    expect((grant?.expiresAt ?? 0) - Date.now()).toBeGreaterThan(59 * 60_000);
  });

  it("[AUTH10] says what is missing without a secret, and refuses a bad ttl", async () => {
    const noSecret = await runCli({ AUTH_SECRET: "" }, ["token", "--doc", "notes"]);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toContain("AUTH_SECRET");
    const badTtl = await runCli({ AUTH_SECRET: SECRET }, [
      "token",
      "--doc",
      "notes",
      "--ttl",
      "soon",
    ]);
    expect(badTtl.code).toBe(1);
    expect(badTtl.stderr).toContain("duration");
  });
});
