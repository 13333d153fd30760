/**
 * glibc's malloc settings the server is started with (`npm start`, the
 * Dockerfile): environment variables glibc reads when the process starts, so
 * they are set by whatever launches Node, never by the server itself.
 *
 * Why: with glibc's defaults a long-running server's resident memory keeps
 * rising although nothing leaks. Measured in the long soak (5 minutes, about
 * 85 cycles of 200 clients; memory sampled settled, after V8 gave its free
 * pages back): the malloc arenas grew 38 to 66 MiB, 0.21 MiB a cycle over the
 * second half, while V8's heap, Buffers and files stood still. glibc gives a
 * thread one of up to 8 arenas per core and keeps what is freed in each for
 * reuse, and it raises its mmap threshold to the largest block freed, so the
 * ever larger reads of growing documents then come from the arenas, which
 * fragment instead of giving the pages back. With these settings the same run
 * measured a flat line (see test/reliability/soak.test.ts, RSS_SLOPE_BOUND).
 *
 * Other allocators (musl, macOS) ignore them.
 */
export const ALLOCATOR_ENV = {
  /** Two arenas: threads share them rather than each keeping freed memory of its own. */
  MALLOC_ARENA_MAX: "2",
  /**
   * Blocks of 128 KiB and more (document states and LevelDB values) get their own
   * mapping, returned when freed; fixed, so glibc does not raise it as it otherwise does.
   */
  MALLOC_MMAP_THRESHOLD_: "131072",
  /** An arena gives back free memory at its top once there is 128 KiB of it. */
  MALLOC_TRIM_THRESHOLD_: "131072",
} as const satisfies Record<string, string>;

/**
 * A line for the start-up log when the process runs on Linux without those settings
 * (started with `node` directly, say); null otherwise.
 */
export function allocatorAdvice(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | null {
  if (platform !== "linux") return null;
  const missing = Object.keys(ALLOCATOR_ENV).filter((name) => env[name] === undefined);
  if (missing.length === 0) return null;
  const settings = Object.entries(ALLOCATOR_ENV)
    .map(([name, value]) => `${name}=${value}`)
    .join(" ");
  return `${missing.join(", ")} not set: with glibc's defaults resident memory creeps up over days; start the server with ${settings} (npm start and the Docker image do)`;
}
