/**
 * What the server child processes of bench/server.ts share: the messages
 * they exchange with the benchmark over Node's IPC channel, the listening
 * line they print, and the request loop (memory on request, server-side
 * statistics, shutdown on SIGTERM or when the benchmark goes away).
 *
 * A child is started with `stdio: ["ignore", "pipe", "pipe", "ipc"]` and
 * prints one JSON line `{"bench":"listening","url":...,"port":...}` on stdout
 * once it accepts connections.
 */

/** One document load as the server saw it: the onLoadDocument hook, start to end. */
export interface LoadTiming {
  readonly name: string;
  readonly ms: number;
}

/** What a child reports about itself besides memory. */
export interface ChildStats {
  readonly loads: readonly LoadTiming[];
  readonly documents: number;
  readonly connections: number;
  /** Our store's write batches so far (absent for stock Hocuspocus, which stores nothing as it goes). */
  readonly writes?: {
    readonly batches: number;
    readonly operations: number;
    readonly seconds: number;
  };
  /** process.cpuUsage() of the child: user and system CPU time, in µs. */
  readonly cpu: NodeJS.CpuUsage;
}

/** What the benchmark asks a child. */
export type ChildRequest =
  | { readonly id: number; readonly type: "memory" }
  | { readonly id: number; readonly type: "stats" };

/** What a child answers. */
export type ChildReply =
  | {
      readonly id: number;
      readonly type: "memory";
      /** Whether a full garbage collection ran first (the child needs --expose-gc). */
      readonly gc: boolean;
      readonly usage: NodeJS.MemoryUsage;
    }
  | { readonly id: number; readonly type: "stats"; readonly stats: ChildStats }
  | { readonly id: number; readonly type: "error"; readonly message: string };

/** The line the benchmark waits for on stdout. */
export interface ListeningLine {
  readonly bench: "listening";
  readonly url: string;
  readonly port: number;
}

/** Prints the listening line. */
export function announce(port: number): void {
  const line: ListeningLine = { bench: "listening", url: `http://127.0.0.1:${port}`, port };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** How long a child may take to shut down before it exits anyway. */
const SHUTDOWN_LIMIT_MS = 10_000;

/**
 * Answers the benchmark's requests and shuts the server down (then exits)
 * on SIGTERM, SIGINT, or when the IPC channel closes because the benchmark
 * exited, so no child outlives the run.
 */
export function serveBenchmark(server: {
  stats(): Omit<ChildStats, "cpu">;
  close(): Promise<void>;
}): void {
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), SHUTDOWN_LIMIT_MS).unref();
    server.close().then(
      () => process.exit(code),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  process.on("disconnect", () => stop(0));
  process.on("message", (message: ChildRequest) => {
    const reply = answer(message, server);
    process.send?.(reply);
  });
}

function answer(request: ChildRequest, server: { stats(): Omit<ChildStats, "cpu"> }): ChildReply {
  try {
    switch (request.type) {
      case "memory": {
        const gc = typeof globalThis.gc === "function";
        if (gc) {
          globalThis.gc?.();
          globalThis.gc?.();
        }
        return { id: request.id, type: "memory", gc, usage: process.memoryUsage() };
      }
      case "stats":
        return {
          id: request.id,
          type: "stats",
          stats: { ...server.stats(), cpu: process.cpuUsage() },
        };
    }
  } catch (error) {
    return { id: request.id, type: "error", message: String(error) };
  }
}
