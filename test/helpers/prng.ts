/**
 * Seeded randomness for fuzz and bad-input tests. The seed comes from
 * FUZZ_SEED when set (to replay a failure), otherwise from the clock, and is
 * printed by `describeSeed` when a test fails.
 */
import * as prng from "lib0/prng";
import type * as Y from "yjs";

export type Rng = prng.PRNG;

/** The seed for this run: FUZZ_SEED if set, else a fresh one. */
export function runSeed(): number {
  const fromEnv = process.env.FUZZ_SEED;
  return fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
}

export function rng(seed: number): Rng {
  return prng.create(seed);
}

export const random = {
  int: (r: Rng, min: number, max: number) => prng.int32(r, min, max),
  bool: (r: Rng) => prng.bool(r),
  bytes: (r: Rng, length: number) => prng.uint8Array(r, length),
  pick: <T>(r: Rng, items: readonly T[]): T => prng.oneOf(r, items as T[]),
  word: (r: Rng, min = 1, max = 6) => prng.word(r, min, max),
};

/** One seeded random edit of `text`: a short insert, or (one time in four) a short delete. */
export function randomTextEdit(r: Rng, text: Y.Text): void {
  if (text.length > 4 && random.int(r, 0, 3) === 0) {
    const at = random.int(r, 0, text.length - 2);
    text.delete(at, random.int(r, 1, Math.min(3, text.length - at)));
  } else {
    text.insert(random.int(r, 0, text.length), random.word(r, 1, 4));
  }
}

/** Runs `body` and, if it throws, rethrows with the seed and how to replay it. */
export async function withSeed(
  name: string,
  seed: number,
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    const message = `${name} failed with seed ${seed}; replay with FUZZ_SEED=${seed} (and pin it as a regression test)`;
    console.error(message);
    throw new Error(message, { cause: error });
  }
}
