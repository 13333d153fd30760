/**
 * The process: configuration errors, the DATA_DIR lock, graceful shutdown,
 * health, readiness, metrics and logs (CONF, LIFE, OBS rules).
 */
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { SETTINGS } from "../../server/src/config.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { parseLine, ROOT, runCli, spawnServer, startServer, tempDir } from "../helpers/server.ts";

describe("start-up", () => {
  it.each([
    [{ PORT: "abc" }, 'PORT must be an integer 0-65535, got "abc"'],
    [{ PORT: "70000" }, 'PORT must be an integer 0-65535, got "70000"'],
    [
      { LOG_LEVEL: "loud" },
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [{ STORE: "mongo" }, 'STORE must be one of leveldb, postgres, memory, got "mongo"'],
    [{ FSYNC: "maybe" }, 'FSYNC must be true or false, got "maybe"'],
    [{ MAX_MESSAGE_BYTES: "12" }, 'MAX_MESSAGE_BYTES must be an integer 1024-1073741824, got "12"'],
  ])("[CONF1] a bad setting %o stops start-up with exit 1 and says why", async (env, message) => {
    const result = await runCli(env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });

  it("[CONF1] flags win over the environment and are validated the same way", async () => {
    const result = await runCli({ PORT: "1" }, ["--port", "-5"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PORT must be an integer 0-65535, got "-5"');
  });

  it("[CONF2] serve --help lists every setting with its environment variable", async () => {
    const result = await runCli({}, ["serve", "--help"]);
    expect(result.code).toBe(0);
    for (const { env } of SETTINGS) expect(result.stdout).toContain(`env: ${env}`);
    const root = await runCli({}, ["--help"]);
    expect(root.stdout).toContain("serve --help");
  });

  it("[LIFE1] a second server on the same DATA_DIR exits 1 with a clear message", async () => {
    const dataDir = await tempDir();
    const first = await spawnServer({ DATA_DIR: dataDir });
    const second = await runCli({ DATA_DIR: dataDir });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`DATA_DIR ${dataDir} is in use by another server process`);
    expect(second.stderr).not.toMatch(/\n\s+at /);
    expect(first.child.exitCode).toBeNull();
  });

  it("[LIFE2] PORT=0 picks a free port and the log says which", async () => {
    const server = await spawnServer({ DATA_DIR: await tempDir() });
    expect(server.address.port).toBeGreaterThan(0);
    expect((await fetch(`${server.address.url}/healthz`)).status).toBe(200);
  });

  it("[LIFE5] starting and syncing load neither the REST API, conversion, its worker nor JWT verification; the first conversion loads them and succeeds", async () => {
    // Every module the process loads, on its own thread or a worker, is written to stderr in order.
    const { address, stderr } = await spawnServer({
      DATA_DIR: await tempDir(),
      NODE_OPTIONS: `--import ${join(ROOT, "test/helpers/slow-import.ts")}`,
      SLOW_IMPORT: "file://",
      SLOW_IMPORT_MS: "0",
    });
    const loads = () => stderr.join("").match(/^slow-import \w+ \S+$/gm) ?? [];
    const loaded = (lines: readonly string[], ...modules: string[]) =>
      lines.filter((line) => modules.some((module) => line.includes(module)));
    const lazy = [
      "/server/src/api/router.ts",
      "/server/src/api/routes.ts",
      "/server/src/api/schemas.ts",
      "/server/src/api/openapi.ts",
      "/server/src/documents/convert.ts",
      "/server/src/documents/parse-worker.ts",
      "/server/src/webhooks/",
      "/server/src/scaling/",
      "/server/src/persistence/postgres.ts",
      "/node_modules/jose/",
      "/node_modules/pg/",
      "/node_modules/ioredis/",
      "/node_modules/@tiptap/",
      "/node_modules/happy-dom/",
    ];
    const provider = connect({ url: address.wsUrl, name: "synced-first" });
    await synced(provider);
    provider.destroy();
    // Written before the listening line; read by now, after the sync's round trips.
    const started = loads();
    expect(loaded(started, "/server/src/app.ts", "/server/src/core.ts")).toHaveLength(2);
    expect(loaded(started, ...lazy)).toEqual([]);

    // A Markdown body: read in the parse worker, then written through the conversion module.
    const api = `${address.url}/api/v1/documents`;
    const put = await fetch(`${api}/first`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: "# Plan\n\nShip it.",
    });
    expect(put.status, await put.clone().text()).toBe(201);
    expect(await (await fetch(`${api}/first?format=markdown`)).text()).toContain("# Plan");
    await vi.waitFor(() =>
      expect(loaded(loads(), "/server/src/api/router.ts", "/parse-worker.ts")).toEqual([
        expect.stringMatching(/^slow-import main .*\/api\/router\.ts$/),
        expect.stringMatching(/^slow-import worker .*\/documents\/parse-worker\.ts$/),
      ]),
    );
    // No token was verified: the JWT library never loaded.
    expect(loaded(loads(), "/node_modules/jose/")).toEqual([]);
  });
});

describe("shutdown", () => {
  it("[LIFE3] SIGTERM closes connections, flushes writes, exits 0, and the data is there after restart", async () => {
    const dataDir = await tempDir();
    const first = await spawnServer({ DATA_DIR: dataDir });
    const writer = connect({ url: first.address.wsUrl, name: "graceful" });
    await synced(writer);
    for (let i = 0; i < 200; i++) writer.document.getText("text").insert(0, "x");
    await vi.waitFor(() => expect(writer.unsyncedChanges).toBe(0));
    first.child.kill("SIGTERM");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    const messages = first.lines.map(parseLine).map((l) => l?.msg);
    expect(messages).toContain("server closed; every accepted write is stored");
    writer.destroy();

    const second = await spawnServer({ DATA_DIR: dataDir });
    const reader = connect({ url: second.address.wsUrl, name: "graceful" });
    await synced(reader);
    expect(reader.document.getText("text").toString()).toBe("x".repeat(200));
  });
});

describe("observability", () => {
  it("[OBS1] /healthz, /readyz and /metrics answer; unknown routes are JSON 404s", async () => {
    const { address } = await startServer();
    const writer = connect({ url: address.wsUrl, name: "observed" });
    await synced(writer);
    writer.document.getText("text").insert(0, "count me");
    await acknowledged(writer);
    expect(await (await fetch(`${address.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${address.url}/readyz`)).json()).toEqual({
      status: "ready",
      store: "leveldb",
    });
    const metrics = await (await fetch(`${address.url}/metrics`)).text();
    for (const name of [
      "collab_connections_open 1",
      "collab_documents_loaded 1",
      "collab_messages_received_total",
      "collab_messages_sent_total",
      "collab_bytes_received_total",
      "collab_bytes_sent_total",
      "collab_store_write_seconds_bucket",
      "collab_store_errors_total 0",
      "collab_compactions_total",
      "collab_store_pending_updates 0",
    ]) {
      expect(metrics).toContain(name);
    }
    const missing = await fetch(`${address.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { code: "not_found", message: "no route for /nope" },
    });
    const post = await fetch(`${address.url}/healthz`, { method: "POST" });
    expect(post.status).toBe(405);
  });

  it("[OBS2] logs are JSON lines with connection open and close, the document and the close reason, and no content or tokens", async () => {
    const server = await spawnServer({ DATA_DIR: await tempDir() });
    const writer = connect({
      url: `${server.address.wsUrl}/collab?token=secret-in-query`,
      name: "logged-doc",
      token: "secret-token-value",
    });
    await synced(writer);
    writer.document.getText("text").insert(0, "private words");
    await acknowledged(writer);
    writer.destroy();
    await vi.waitFor(() =>
      expect(server.lines.some((l) => parseLine(l)?.msg === "connection closed")).toBe(true),
    );
    const entries = server.lines.map(parseLine);
    expect(entries.every((e) => e !== null)).toBe(true);
    const opened = entries.find((e) => e?.msg === "connection opened");
    const closed = entries.find((e) => e?.msg === "connection closed");
    expect(opened).toMatchObject({ level: "info", connection: expect.any(String) });
    expect(closed).toMatchObject({
      documents: ["logged-doc"],
      code: expect.any(Number),
      reason: expect.any(String),
    });
    const all = server.lines.join("\n");
    expect(all).not.toContain("secret-token-value");
    expect(all).not.toContain("secret-in-query");
    expect(entries.find((e) => e?.msg === "document opened")).toMatchObject({
      document: "logged-doc",
    });
    expect(all).not.toContain("private words");
  });
});

describe("stores", () => {
  it("[CONF1] STORE=memory runs without a data directory", async () => {
    const server = await spawnServer({ STORE: "memory", DATA_DIR: "/nonexistent/never-created" });
    expect(await (await fetch(`${server.address.url}/readyz`)).json()).toEqual({
      status: "ready",
      store: "memory",
    });
  });
});

describe("malformed HTTP", () => {
  it("[OBS1] a request URL that does not parse gets 400 and the server keeps running", async () => {
    const { address } = await startServer();
    const { connect: tcp } = await import("node:net");
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tcp(address.port, "127.0.0.1", () =>
        socket.write("GET //[ HTTP/1.1\r\nHost: x\r\n\r\n"),
      );
      let data = "";
      socket.on("data", (chunk) => {
        data += chunk;
        if (data.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(data);
        }
      });
      socket.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1.1 400/);
    expect((await fetch(`${address.url}/healthz`)).status).toBe(200);
  });
});
