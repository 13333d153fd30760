import { describe, expect, it } from "vitest";
import { lazily } from "../../server/src/util/lazy.ts";

describe("lazily (modules loaded on first use)", () => {
  it("[LIFE5] loads once for every caller, and tries again after a failed load", async () => {
    let calls = 0;
    const load = lazily(async () => {
      calls++;
      if (calls === 1) throw new Error("EMFILE: too many open files");
      return { loaded: calls };
    });
    await expect(load()).rejects.toThrow("EMFILE");
    const [a, b] = await Promise.all([load(), load()]);
    expect(a).toEqual({ loaded: 2 });
    expect(b).toBe(a);
    expect(await load()).toBe(a);
    expect(calls).toBe(2);
  });
});
