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

import { readFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";

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
  /**
   * How late the child's event loop ran a 10 ms timer, in ms, since the
   * previous stats request (so a benchmark reads it per run); only when the
   * child was started with BENCH_EVENT_LOOP_DELAY=1 (bench/servers/ours.ts).
   */
  readonly eventLoopDelay?: EventLoopDelay;
}

/** Percentiles of event-loop delay, in ms. */
export interface EventLoopDelay {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/**
 * Where the resident memory of a child is (Linux; absent elsewhere), in
 * bytes: from /proc/self/status, anonymous memory (malloc, V8's heap,
 * Buffers) and pages of mapped files (shared libraries, LevelDB's table
 * files, which it maps to read); from /proc/self/smaps, the part of the
 * anonymous memory in glibc's malloc arenas (the main one, `[heap]`, and one
 * per thread that allocates: LevelDB's work on the libuv thread pool and its
 * compaction thread), which is everything native code allocates, apart from
 * V8's heap pages.
 */
export interface ResidentMemory {
  readonly anonymous: number;
  readonly file: number;
  readonly shared: number;
  readonly mallocArenas: number;
}

/** A child's memory: process.memoryUsage() and, where the system tells, where the resident part is. */
export interface MemorySample extends NodeJS.MemoryUsage {
  /**
   * The part of V8's heap that is resident (its total_physical_size): heapTotal
   * is what V8 reserved, and the young generation it reserves is touched only
   * as allocation sweeps through it.
   */
  readonly heapResident: number;
  readonly resident?: ResidentMemory;
}

/** What the benchmark asks a child. */
export type ChildRequest =
  | { readonly id: number; readonly type: "memory" }
  /**
   * Memory once the server has settled: its pending writes flushed, then
   * full garbage collections, each after the event loop turned, until the heap
   * and Buffer memory stop moving (see {@link settledMemory}).
   */
  | { readonly id: number; readonly type: "settled" }
  | { readonly id: number; readonly type: "stats" };

/** What a child answers. */
export type ChildReply =
  | {
      readonly id: number;
      readonly type: "memory";
      /** Whether a full garbage collection ran first (the child needs --expose-gc). */
      readonly gc: boolean;
      readonly usage: MemorySample;
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

/** What a child's server offers the request loop. */
export interface BenchmarkServer {
  stats(): Omit<ChildStats, "cpu">;
  close(): Promise<void>;
  /** Resolves once the server's pending work (e.g. its store's writes) is done. */
  settle?(): Promise<void>;
  /** A count that moves whenever the server did background work (e.g. store writes finished). */
  activity?(): number;
}

/** How long a child may take to shut down before it exits anyway. */
const SHUTDOWN_LIMIT_MS = 10_000;

/**
 * Answers the benchmark's requests and shuts the server down (then exits)
 * on SIGTERM, SIGINT, or when the IPC channel closes because the benchmark
 * exited, so no child outlives the run.
 */
export function serveBenchmark(server: BenchmarkServer): void {
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
    answer(message, server).then((reply) => process.send?.(reply));
  });
}

/**
 * Full garbage collections (twice: the first can leave what only the second frees), when
 * exposed. `last-resort` is V8's collection for memory pressure: it also gives back the
 * pages that the collection freed and V8 would otherwise keep mapped for reuse (up to the
 * largest heap the process has had), as its memory reducer does in an idle process.
 */
function collect(flavor: "regular" | "last-resort" = "regular"): boolean {
  if (typeof globalThis.gc !== "function") return false;
  globalThis.gc({ type: "major", execution: "sync", flavor });
  globalThis.gc({ type: "major", execution: "sync", flavor });
  return true;
}

/** process.memoryUsage() plus where the resident memory is. */
function sample(): MemorySample {
  return {
    ...process.memoryUsage(),
    heapResident: getHeapStatistics().total_physical_size,
    resident: residentMemory(),
  };
}

/** RssAnon, RssFile and RssShmem of /proc/self/status, or undefined where there is none. */
export function residentMemory(): ResidentMemory | undefined {
  let status: string;
  try {
    status = readFileSync("/proc/self/status", "utf8");
  } catch {
    return undefined;
  }
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  };
  return {
    anonymous: field("RssAnon"),
    file: field("RssFile"),
    shared: field("RssShmem"),
    mallocArenas: mallocArenas(),
  };
}

/** glibc reserves each thread arena's heap at an address aligned to its 64 MiB maximum. */
const ARENA_ALIGNMENT = 64 * 1024 * 1024;

/**
 * Resident bytes of glibc's malloc arenas, from /proc/self/smaps: the main
 * arena (`[heap]`) and the thread arenas (anonymous mappings at a 64 MiB
 * boundary, above V8's pages, which it maps at random lower addresses).
 * Allocations of 128 KiB and more that malloc maps on their own are not
 * counted (NaN without /proc).
 */
function mallocArenas(): number {
  let smaps: string;
  try {
    smaps = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return Number.NaN;
  }
  let total = 0;
  let counting = false;
  for (const line of smaps.split("\n")) {
    const mapping = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping !== null) {
      const start = Number.parseInt(mapping[1] ?? "0", 16);
      const name = mapping[2] ?? "";
      counting =
        name === "[heap]" ||
        (name === "" && start % ARENA_ALIGNMENT === 0 && start >= 0x7f00_0000_0000);
    } else if (counting && line.startsWith("Rss:")) {
      total += Number(line.split(/\s+/)[1]) * 1024;
    }
  }
  return total;
}

/** Samples at most this many times while waiting for memory to stop moving. */
const SETTLE_ROUNDS = 20;
/** Two consecutive samples closer than this (heap used, Buffer memory) count as settled. */
const SETTLED_BYTES = 128 * 1024;

/**
 * Memory once the server is quiet: its pending work done (`settle`), then
 * rounds of a full GC and a few turns of the event loop (V8 frees the
 * backing stores of collected Buffers on a background thread, and
 * FinalizationRegistry callbacks run in later turns), until a round in which
 * the server did no background work (`activity`: timers such as automatic
 * versions write to the store) and heap used, external and Buffer memory
 * moved less than {@link SETTLED_BYTES} since the round before. Waits on the
 * event loop and the server's own work, never on a clock; gives the last
 * sample after {@link SETTLE_ROUNDS} rounds.
 */
export async function settledMemory(server: BenchmarkServer): Promise<MemorySample> {
  let previous: MemorySample | undefined;
  for (let round = 0; round < SETTLE_ROUNDS; round++) {
    await server.settle?.();
    const before = server.activity?.();
    collect();
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    collect("last-resort");
    const current = sample();
    if (
      previous !== undefined &&
      server.activity?.() === before &&
      Math.abs(current.heapUsed - previous.heapUsed) < SETTLED_BYTES &&
      Math.abs(current.external - previous.external) < SETTLED_BYTES &&
      Math.abs(current.arrayBuffers - previous.arrayBuffers) < SETTLED_BYTES
    ) {
      return current;
    }
    previous = current;
  }
  return previous ?? sample();
}

async function answer(request: ChildRequest, server: BenchmarkServer): Promise<ChildReply> {
  try {
    switch (request.type) {
      case "memory": {
        const gc = collect();
        return { id: request.id, type: "memory", gc, usage: sample() };
      }
      case "settled": {
        const gc = typeof globalThis.gc === "function";
        return { id: request.id, type: "memory", gc, usage: await settledMemory(server) };
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
