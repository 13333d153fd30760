/**
 * How big the reliability suite runs, and how it reports. The test command
 * (`npm test`, `npm run test:reliability`) runs the bounded size;
 * `RELIABILITY=long npm run test:reliability` runs the long one. Every
 * figure here is a count or a duration, so a run always stops by itself.
 */
export const LONG = process.env.RELIABILITY === "long";

if (process.env.RELIABILITY !== undefined && process.env.RELIABILITY !== "long") {
  throw new Error(`RELIABILITY must be "long" or unset, got ${process.env.RELIABILITY}`);
}

/** The sizes of one run. */
export const SIZE = {
  /** Seeded rich-text convergence schedules. */
  convergenceSchedules: LONG ? 10_000 : 1_000,
  /** `kill -9` of the server during a write stream. */
  crashKills: LONG ? 100 : 20,
  /** Malformed or mutated protocol messages, over both protocols together. */
  badInputMessages: LONG ? 100_000 : 10_000,
  /** How long the soak's connect, edit and leave cycles run. */
  soakMs: LONG ? 5 * 60_000 : 30_000,
} as const;

/**
 * Test timeouts scale with the size: `boundedMs` for the test command, and
 * `longMs` for the long run.
 */
export function timeout(boundedMs: number, longMs: number): number {
  return LONG ? longMs : boundedMs;
}

/**
 * Prints what a reliability check tried and what held, as numbers, one line:
 * `reliability <check>: tried … | held …`. Printed on success too, so every
 * run leaves its figures in the log.
 */
export function report(
  check: string,
  tried: Record<string, number | string>,
  held: Record<string, number | string>,
): void {
  const list = (figures: Record<string, number | string>) =>
    Object.entries(figures)
      .map(
        ([name, value]) =>
          `${typeof value === "number" ? value.toLocaleString("en-US") : value} ${name}`,
      )
      .join(", ");
  console.log(
    `reliability ${check} (${LONG ? "long" : "bounded"}): tried ${list(tried)} | held ${list(held)}`,
  );
}
