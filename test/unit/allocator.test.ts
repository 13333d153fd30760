/**
 * glibc's malloc settings (server/src/observability/allocator.ts): one list,
 * carried by every way the project starts the server, and a start-up warning
 * when they are missing.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ALLOCATOR_ENV, allocatorAdvice } from "../../server/src/observability/allocator.ts";

const root = new URL("../../", import.meta.url);

describe("allocator settings", () => {
  it("npm start sets each one, keeping a value the operator gave", () => {
    const manifest = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      scripts: Record<string, string>;
    };
    const start = manifest.scripts.start ?? "";
    for (const [name, value] of Object.entries(ALLOCATOR_ENV)) {
      expect(start).toContain(`${name}=\${${name}:-${value}}`);
    }
    expect(start.endsWith("node server/src/main.ts")).toBe(true);
  });

  it("the Docker image sets each one", () => {
    const dockerfile = readFileSync(new URL("Dockerfile", root), "utf8");
    for (const [name, value] of Object.entries(ALLOCATOR_ENV)) {
      expect(dockerfile).toMatch(new RegExp(`^\\s+${name}=${value} \\\\$`, "m"));
    }
  });

  it("warns on Linux when any is missing, and names what to set", () => {
    expect(allocatorAdvice({ ...ALLOCATOR_ENV }, "linux")).toBeNull();
    expect(allocatorAdvice({}, "darwin")).toBeNull();
    const advice = allocatorAdvice({ MALLOC_ARENA_MAX: "4" }, "linux");
    expect(advice).toContain("MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ not set");
    expect(advice).toContain("MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072");
  });
});
