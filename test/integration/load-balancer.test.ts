/**
 * The `scale` profile's load balancer, run for real: deploy/nginx.conf (the
 * file docker-compose.yml mounts into the nginx container) under Debian's
 * nginx, in front of two server instances that share PostgreSQL and Redis.
 *
 * The file is used as it is except for the lines it marks for this
 * (`# @listen`, `# @upstream`, see its header) and the paths a container
 * provides (pid file, error log, temporary directories), which go to a
 * temporary directory.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { DEFAULT_CONFIG } from "../../server/src/config.ts";
import { connect, synced } from "../helpers/clients.ts";
import { expectConverged } from "../helpers/converge.ts";
import { freePort, startPostgres, startRedis } from "../helpers/engines.ts";
import { ROOT, type ServerProcess, spawnServer, tempDir } from "../helpers/server.ts";

const NGINX_CONF = join(ROOT, "deploy", "nginx.conf");
const MiB = 1024 * 1024;

/** The JSON error shape of the server's API (and of nginx's 413 page). */
interface ApiErrorBody {
  readonly error?: { readonly code?: string; readonly message?: string };
}

// ---------------------------------------------------------------------------------------
// Reading and rewriting deploy/nginx.conf
// ---------------------------------------------------------------------------------------

/** Every value of a directive in the file (`name value...;`), comments stripped. */
function directive(conf: string, name: string): string[] {
  const code = conf.replace(/#.*$/gm, "");
  return [...code.matchAll(new RegExp(`(?:^|[;{}\\s])${name}\\s+([^;{}]+);`, "g"))].map((match) =>
    (match[1] ?? "").trim(),
  );
}

/** The one value of a directive that must appear exactly once. */
function single(conf: string, name: string): string {
  const values = directive(conf, name);
  expect(values, `${name} in nginx.conf`).toHaveLength(1);
  return values[0] ?? "";
}

/** nginx time ("90", "30s", "1h", "1m30s") in ms. */
function nginxMs(value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h|d)?/g)];
  expect(parts.map((part) => part[0]).join(""), `time ${value}`).toBe(value);
  return parts.reduce((total, part) => total + Number(part[1]) * (units[part[2] ?? "s"] ?? NaN), 0);
}

/** nginx size ("512", "16k", "16m", "1g") in bytes. */
function nginxBytes(value: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(value);
  expect(match, `size ${value}`).not.toBeNull();
  const unit = { "": 1, k: 1024, m: MiB, g: 1024 * MiB }[(match?.[2] ?? "").toLowerCase()] ?? NaN;
  return Number(match?.[1]) * unit;
}

/**
 * deploy/nginx.conf made to run here:
 * - the `# @listen` line listens on 127.0.0.1:`port`;
 * - the `# @upstream` server line becomes one line per address in `upstreams`, keeping
 *   its parameters but `resolve` (nginx 1.27.3+; Debian 12 has 1.22, and the addresses
 *   here are IPs anyway);
 * - the temporary directories a container has under /var/cache/nginx go to `dir`,
 *   inserted at the top of the http block.
 * The pid file and the error log are set on the command line ({@link nginxArgs}).
 */
function rewriteNginxConf(
  conf: string,
  options: { port: number; upstreams: string[]; dir: string },
): string {
  const listen = /^(\s*)listen\s+[^;]+;\s*# @listen$/gm;
  expect(conf.match(listen), "one `# @listen` line").toHaveLength(1);
  const upstream = /^(\s*)server\s+\S+([^;]*);\s*# @upstream$/gm;
  expect(conf.match(upstream), "one `# @upstream` line").toHaveLength(1);
  const http = /^http \{$/gm;
  expect(conf.match(http), "one `http {` line").toHaveLength(1);
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `    ${kind}_temp_path ${join(options.dir, `${kind}_temp`)};`)
    .join("\n");
  return conf
    .replace(listen, (_line, indent: string) => `${indent}listen 127.0.0.1:${options.port};`)
    .replace(upstream, (_line, indent: string, params: string) => {
      const kept = params
        .trim()
        .split(/\s+/)
        .filter((param) => param !== "" && param !== "resolve")
        .join(" ");
      return options.upstreams.map((address) => `${indent}server ${address} ${kept};`).join("\n");
    })
    .replace(http, `http {\n${temp}`);
}

/** The nginx binary: on PATH, or Debian's /usr/sbin/nginx (not on a user's PATH). */
function nginxBinary(): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin"]) {
    const candidate = join(dir, "nginx");
    if (dir !== "" && existsSync(candidate)) return candidate;
  }
  throw new Error("nginx is not installed: apt-get install nginx (npm test does it)");
}

/**
 * Arguments for the rewritten file in `dir`. `-p` makes `dir` the prefix; `-e` sends the
 * log nginx opens before reading the file to stderr (the file's error_log says stderr
 * too); the pid file goes to `dir`. No `user`: as root the workers run as nobody, so
 * `dir` must let them in (see {@link writeNginxConf}).
 */
function nginxArgs(dir: string, extra = ""): string[] {
  const globals = `pid ${join(dir, "nginx.pid")};${extra}`;
  return ["-c", join(dir, "nginx.conf"), "-p", dir, "-e", "stderr", "-g", globals];
}

async function writeNginxConf(options: { port: number; upstreams: string[] }): Promise<string> {
  const dir = await tempDir("collab-nginx-");
  // mkdtemp makes it 0700; nginx's workers (nobody, when the test runs as root) must reach
  // the temporary directories the master creates in it for them.
  await chmod(dir, 0o755);
  const conf = rewriteNginxConf(readFileSync(NGINX_CONF, "utf8"), { ...options, dir });
  await writeFile(join(dir, "nginx.conf"), conf);
  return dir;
}

/**
 * nginx's stdout: a file in `dir`. The access log is `/dev/stdout`, which nginx opens by
 * name; that works on a file or a pipe (Docker's), not on the socket Node gives a child
 * for "pipe" (ENXIO).
 */
function stdoutFile(dir: string): number {
  return openSync(join(dir, "stdout.log"), "a");
}

/** `nginx -t` on the file in `dir`. */
function nginxTest(dir: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const stdout = stdoutFile(dir);
    const child = spawn(nginxBinary(), ["-t", ...nginxArgs(dir)], {
      stdio: ["ignore", stdout, "pipe"],
      timeout: 20_000,
    });
    closeSync(stdout);
    let output = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("close", (code) => done({ code, output }));
  });
}

/** nginx in the foreground on the file in `dir`; stopped (SIGTERM, then SIGKILL) after the test. */
async function runNginx(dir: string, port: number): Promise<{ url: string; output: string[] }> {
  const output: string[] = [];
  const stdout = stdoutFile(dir);
  const child: ChildProcess = spawn(nginxBinary(), nginxArgs(dir, " daemon off;"), {
    stdio: ["ignore", stdout, "pipe"],
  });
  closeSync(stdout);
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // SIGTERM: fast shutdown, the master stops its workers (SIGKILL would orphan them).
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  });
  const url = `http://127.0.0.1:${port}`;
  await vi.waitFor(
    async () => {
      expect(child.exitCode, `nginx exited:\n${output.join("")}`).toBeNull();
      const response = await fetch(`${url}/nginx-health`, { signal: AbortSignal.timeout(1000) });
      expect(response.status).toBe(200);
    },
    { timeout: 10_000, interval: 50 },
  );
  return { url, output };
}

/** The server's open WebSocket connections, read from its own /metrics (not through nginx). */
async function openConnections(instance: ServerProcess): Promise<number> {
  const metrics = await (await fetch(`${instance.address.url}/metrics`)).text();
  const line = /^collab_connections_open (\d+)$/m.exec(metrics);
  expect(line, "collab_connections_open in /metrics").not.toBeNull();
  return Number(line?.[1]);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

describe("[OPS3] deploy/nginx.conf", () => {
  const conf = readFileSync(NGINX_CONF, "utf8");

  it("[OPS3] proxies WebSockets: HTTP/1.1 with Upgrade and Connection from a map of $http_upgrade", () => {
    expect(single(conf, "proxy_http_version")).toBe("1.1");
    const headers = directive(conf, "proxy_set_header");
    expect(headers).toContain("Upgrade $http_upgrade");
    expect(headers).toContain("Connection $connection_upgrade");
    expect(conf).toMatch(/map\s+\$http_upgrade\s+\$connection_upgrade\s*\{[^}]*default\s+upgrade;/);
  });

  it("[OPS3] forwards the client's address, scheme and Host (port included)", () => {
    const headers = directive(conf, "proxy_set_header");
    // The server (TRUST_PROXY) takes the last X-Forwarded-For entry: the one nginx appends.
    expect(headers).toContain("X-Forwarded-For $proxy_add_x_forwarded_for");
    expect(headers).toContain("X-Forwarded-Proto $scheme");
    // $http_host, not $host: the Origin check compares host *and port* with Host.
    expect(headers).toContain("Host $http_host");
    expect(headers).toContain("X-Forwarded-Host $http_host");
  });

  it("[OPS3] never cuts an idle WebSocket before the server's own idle deadline", () => {
    // The server closes a silent connection within two IDLE_TIMEOUT_MS periods.
    const idleDeadline = 2 * DEFAULT_CONFIG.idleTimeoutMs;
    expect(nginxMs(single(conf, "proxy_read_timeout"))).toBeGreaterThan(idleDeadline);
    expect(nginxMs(single(conf, "proxy_send_timeout"))).toBeGreaterThan(idleDeadline);
  });

  it("[OPS3] accepts bodies up to the API's MAX_BODY_BYTES, and uploads up to MAX_ATTACHMENT_BYTES", () => {
    // Equal, not larger (why: nginx.conf's comment); nginx answers 413 in the API's shape.
    const limits = directive(conf, "client_max_body_size").map(nginxBytes);
    expect(limits).toEqual([
      DEFAULT_CONFIG.maxBodyBytes,
      // An upload's bytes plus the multipart framing the server allows (api/router.ts).
      DEFAULT_CONFIG.maxAttachmentBytes + 64 * 1024,
    ]);
    expect(single(conf, "error_page")).toBe("413 @payload_too_large");
  });

  it("[OPS3] takes failing replicas out (passive checks) and retries failed connects elsewhere", () => {
    const server = /^\s*server\s+(\S+)([^;]*);\s*# @upstream$/m.exec(conf);
    expect(server?.[2]).toMatch(/\bmax_fails=\d+\b/);
    expect(server?.[2]).toMatch(/\bfail_timeout=\d+[smh]?\b/);
    const next = single(conf, "proxy_next_upstream").split(/\s+/);
    expect(next).toEqual(expect.arrayContaining(["error", "timeout"]));
    expect(nginxMs(single(conf, "proxy_connect_timeout"))).toBeLessThanOrEqual(10_000);
    expect(directive(conf, "zone").length, "a shared zone for the upstream").toBe(1);
  });

  it("[OPS3] nginx -t accepts it, rewritten for this machine", async () => {
    const port = await freePort();
    const dir = await writeNginxConf({ port, upstreams: ["127.0.0.1:1", "127.0.0.1:2"] });
    const { code, output } = await nginxTest(dir);
    expect(output).toMatch(/syntax is ok/);
    expect(output).toMatch(/test is successful/);
    expect(code, output).toBe(0);
  });

  it("[OPS3] through nginx to two instances: clients on different instances sync both ways, REST and /readyz pass, and a dead instance's traffic moves to the other", async () => {
    const redis = await startRedis();
    onTestFinished(() => redis.stop());
    const postgres = await startPostgres();
    onTestFinished(() => postgres.stop());
    // As the compose file's replicas run, but on loopback and anonymous (no tokens needed).
    const env = {
      STORE: "postgres",
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      CLUSTER: "true",
      TRUST_PROXY: "true",
    };
    const instances = await Promise.all([spawnServer(env), spawnServer(env)]);
    const upstreams = instances.map((instance) => `127.0.0.1:${instance.address.port}`);
    const port = await freePort();
    const dir = await writeNginxConf({ port, upstreams });
    const check = await nginxTest(dir);
    expect(check.code, check.output).toBe(0);
    const lb = await runNginx(dir, port);
    const wsUrl = lb.url.replace(/^http/, "ws");

    // Two providers through nginx; least_conn sends the second where the first is not.
    const a = connect({ url: wsUrl, name: "through-lb" });
    await synced(a);
    const b = connect({ url: wsUrl, name: "through-lb" });
    await synced(b);
    await vi.waitFor(async () => {
      expect(await Promise.all(instances.map(openConnections))).toEqual([1, 1]);
    });

    a.document.getText("text").insert(0, "from a;");
    await vi.waitFor(() => expect(b.document.getText("text").toString()).toBe("from a;"), {
      timeout: 10_000,
    });
    b.document.getText("text").insert(7, " from b");
    b.document.getMap("meta").set("by", "b");
    await vi.waitFor(() => expect(a.document.getText("text").toString()).toBe("from a; from b"), {
      timeout: 10_000,
    });
    await vi.waitFor(() => expectConverged([a.document, b.document]), { timeout: 10_000 });

    // Readiness of whichever replica answers (it writes through PostgreSQL).
    const ready = await fetch(`${lb.url}/readyz`, { signal: AbortSignal.timeout(5000) });
    expect(ready.status).toBe(200);

    // REST: written through one replica, read back through both (least_conn alternates
    // between idle replicas), with a body, and with the browser Origin of the lb's own
    // address, which passes only if nginx forwards Host with its port.
    const doc = `${lb.url}/api/v1/documents/rest-through-lb`;
    const put = await fetch(doc, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: "# Through nginx\n\nHello.",
      signal: AbortSignal.timeout(5000),
    });
    expect(put.status, await put.clone().text()).toBe(201);
    for (let i = 0; i < 4; i++) {
      const get = await fetch(`${doc}?format=text`, {
        headers: { origin: lb.url },
        signal: AbortSignal.timeout(5000),
      });
      expect(get.status).toBe(200);
      expect(await get.text()).toContain("Through nginx");
    }

    // An image larger than MAX_BODY_BYTES uploads through nginx, and comes back the same.
    const picture = new Uint8Array(3 * 1024 * 1024).fill(7);
    picture.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const uploaded = await fetch(`${doc}/attachments?filename=big.png`, {
      method: "POST",
      body: picture,
      signal: AbortSignal.timeout(10_000),
    });
    expect(uploaded.status, lb.output.join("")).toBe(201);
    const { url } = (await uploaded.json()) as { url: string };
    const fetched = await fetch(`${lb.url}${url}`, { signal: AbortSignal.timeout(10_000) });
    expect(Buffer.from(await fetched.arrayBuffer()).equals(Buffer.from(picture))).toBe(true);

    // nginx and the server agree on the largest body: MAX_BODY_BYTES reaches the server
    // (whose UTF-8 check answers 400 as soon as it has read it all), one byte more is
    // refused by nginx before any replica sees it, in the server's JSON error shape.
    // (Were nginx to pass it on, the server would refuse it before reading it and close:
    // nginx would get a broken pipe, answer 502, and count the replica as failed.)
    const body = (bytes: number) => new Uint8Array(bytes).fill(0xff);
    const atLimit = await fetch(doc, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: body(DEFAULT_CONFIG.maxBodyBytes),
      signal: AbortSignal.timeout(10_000),
    });
    expect(atLimit.status, lb.output.join("")).toBe(400);
    expect(((await atLimit.json()) as ApiErrorBody).error?.code).toBe("bad_request");
    const overLimit = await fetch(doc, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: body(DEFAULT_CONFIG.maxBodyBytes + 1),
      signal: AbortSignal.timeout(10_000),
    });
    expect(overLimit.status, lb.output.join("")).toBe(413);
    expect(overLimit.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(((await overLimit.json()) as ApiErrorBody).error?.code).toBe("payload_too_large");

    // Failover: one instance dies. nginx's connects to it are refused and retried on the
    // other (proxy_next_upstream error), so no request fails; the client it served
    // reconnects through nginx to the survivor, and both clients stay in sync.
    const [dead, survivor] = instances;
    if (dead === undefined || survivor === undefined) throw new Error("two instances");
    dead.child.kill("SIGKILL");
    await dead.exited;
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${lb.url}/readyz`, { signal: AbortSignal.timeout(5000) });
      expect(response.status, lb.output.join("")).toBe(200);
    }
    a.document.getText("text").insert(0, "a again;");
    b.document.getText("text").insert(0, "b again;");
    await vi.waitFor(
      () => {
        for (const doc of [a.document, b.document]) {
          expect(doc.getText("text").toString()).toMatch(/^(?=.*a again;)(?=.*b again;)/);
        }
        expectConverged([a.document, b.document]);
      },
      { timeout: 20_000 },
    );
    await vi.waitFor(async () => expect(await openConnections(survivor)).toBe(2), {
      timeout: 10_000,
    });
  }, 60_000);
});
