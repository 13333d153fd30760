/**
 * Real PostgreSQL and Redis for the tests: Debian's binaries, started on a
 * free loopback port in a temporary directory, stopped (and the directory
 * removed) by the returned `stop`. PostgreSQL refuses to run as root, so as
 * root the server runs as the `postgres` user the Debian package creates.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Directory of Debian's PostgreSQL binaries (the newest installed), or of `pg_ctl` on PATH. */
function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((entry) => existsSync(join(root, entry, "bin", "postgres")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], "bin");
  }
  const found = execFileSync("sh", ["-c", "command -v pg_ctl || true"]).toString().trim();
  if (found !== "") return join(found, "..");
  throw new Error("PostgreSQL is not installed: apt-get install postgresql (npm test does it)");
}

export interface Engine {
  /** Connection URL: postgres://... or redis://... */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Spawn options that run a command as the PostgreSQL owner: ourselves, or the
 * `postgres` user when we are root. (Not through runuser: signals must reach
 * the postmaster itself.)
 */
function ownerOptions(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = postgresIds();
  return { uid, gid };
}

async function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start in 30 s:\n${output}`)),
      30_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) while starting:\n${output}`));
    });
  });
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * A fresh PostgreSQL cluster (trust auth, loopback only). Durability
 * settings stay at their defaults: acknowledged means committed, as in
 * production.
 */
export async function startPostgres(): Promise<Engine> {
  const bin = postgresBin();
  const dir = await mkdtemp(join(tmpdir(), "collab-pg-"));
  if (process.getuid?.() === 0) await chown(dir, ...postgresIds());
  const data = join(dir, "data");
  execFileSync(
    join(bin, "initdb"),
    ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
    { stdio: "ignore", cwd: dir, ...ownerOptions() },
  );
  const port = await freePort();
  const child = spawn(
    join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "max_connections=200"],
    { stdio: ["ignore", "pipe", "pipe"], cwd: dir, ...ownerOptions() },
  );
  await waitForLine(child, /ready to accept connections/, "PostgreSQL");
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      // SIGQUIT: immediate shutdown; the data is thrown away anyway.
      await stopChild(child, "SIGQUIT");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function postgresIds(): [number, number] {
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return [uid, gid];
}

/**
 * A Redis server with no persistence, loopback only: on a free port, or on
 * `port` (to bring Redis back where running instances look for it).
 */
export async function startRedis(port?: number): Promise<Engine> {
  const dir = await mkdtemp(join(tmpdir(), "collab-redis-"));
  port ??= await freePort();
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await waitForLine(child, /Ready to accept connections/, "Redis");
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await stopChild(child, "SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
