/**
 * Starts real servers for tests: in-process (createCollabServer on port 0
 * with a real LevelDB directory) or as a child process running the CLI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { onTestFinished } from "vitest";
import { type CollabServer, createCollabServer, type ServerAddress } from "../../server/src/app.ts";
import type { Config } from "../../server/src/config.ts";
import { ALLOCATOR_ENV } from "../../server/src/observability/allocator.ts";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import type { DocumentStore } from "../../server/src/persistence/store.ts";
import { failNext } from "../contracts/store.contract.ts";

export const ROOT = resolve(import.meta.dirname, "../..");

/** A fresh temporary directory, removed when the test finishes. */
export async function tempDir(prefix = "collab-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunningServer {
  readonly server: CollabServer;
  readonly address: ServerAddress;
  readonly dataDir: string;
}

/** An in-process server on 127.0.0.1, port 0, LevelDB in a temp dir; closed when the test finishes. */
export async function startServer(
  options: { config?: Partial<Config>; store?: DocumentStore; dataDir?: string } = {},
): Promise<RunningServer> {
  const dataDir = options.dataDir ?? (await tempDir());
  const server = await createCollabServer({
    config: { host: "127.0.0.1", port: 0, dataDir, logLevel: "silent", ...options.config },
    store: options.store,
  });
  onTestFinished(async () => {
    await server.close();
  });
  const address = await server.listen();
  return { server, address, dataDir };
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly address: { url: string; wsUrl: string; port: number };
  /** Every stdout line so far (JSON log lines). */
  readonly lines: string[];
  readonly stderr: string[];
  /** Resolves with the exit code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const NODE = process.execPath;
const MAIN = join(ROOT, "server/src/main.ts");

/** Runs the CLI in a child process with `env` added; resolves once it logs that it listens. */
export async function spawnServer(
  env: Record<string, string>,
  args: string[] = [],
): Promise<ServerProcess> {
  const child = spawn(NODE, [MAIN, ...args], {
    cwd: ROOT,
    // As `npm start` and the Docker image start it (glibc's malloc settings).
    env: {
      ...process.env,
      ...ALLOCATOR_ENV,
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once("exit", (code, signal) => done({ code, signal })),
  );
  const address = await new Promise<ServerProcess["address"]>((resolveAddress, reject) => {
    let buffer = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffer += chunk;
      for (let at = buffer.indexOf("\n"); at !== -1; at = buffer.indexOf("\n")) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        lines.push(line);
        const entry = parseLine(line);
        if (typeof entry?.url === "string" && typeof entry.port === "number") {
          resolveAddress({
            url: entry.url,
            wsUrl: entry.url.replace(/^http/, "ws"),
            port: entry.port,
          });
        }
      }
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => stderr.push(chunk));
    void exited.then(({ code }) =>
      reject(new Error(`server exited (${code}) before listening: ${stderr.join("")}`)),
    );
  });
  return { child, address, lines, stderr, exited };
}

/** Runs the CLI to completion (for start-up failures); resolves with its exit code and output. */
export function runCli(env: Record<string, string>, args: string[] = []) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(NODE, [MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => {
      stdout += c;
    });
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    child.on("exit", (code) => done({ code, stdout, stderr }));
  });
}

export function parseLine(line: string): Record<string, unknown> | null {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * An in-process server over a real LevelDB store whose writes fail while
 * `faults.remaining > 0` (each failed batch is retried after `retryMs`).
 */
export async function startServerWithFaults(options: {
  retryMs: number;
  config?: Partial<Config>;
}) {
  const dataDir = await tempDir();
  const faults = failNext(0);
  const store = await LevelDbStore.open({
    dir: dataDir,
    faults,
    initialRetryMs: options.retryMs,
    maxRetryMs: options.retryMs,
  });
  const running = await startServer({ store, dataDir, config: options.config });
  return { ...running, store, faults };
}
