// [OPS1] Container packaging: Dockerfile, .dockerignore and docker-compose.yml.
//
// There is no Docker engine in CI, so nothing is built or started here. Instead:
// - docker-compose.yml is checked by dclint (compose-spec JSON schema + best-practice rules;
//   its schema is bundled in the package, so this runs offline), and the linter is shown to
//   reject broken files, so a pass means something;
// - the compose file is parsed and the semantics the deployment relies on are asserted;
// - the Dockerfile is parsed into instructions and checked the same way, including that
//   everything it COPYs from the build context exists and is not excluded by .dockerignore.

import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, matchesGlob, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { accessMode } from "../../server/src/auth/access.ts";
import { configFromEnv, DEFAULT_CONFIG } from "../../server/src/config.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DCLINT = join(ROOT, "node_modules", ".bin", "dclint");
const COMPOSE_FILE = join(ROOT, "docker-compose.yml");
const DOCKERFILE = join(ROOT, "Dockerfile");
const DOCKERIGNORE = join(ROOT, ".dockerignore");

// ---------------------------------------------------------------------------------------
// Small typed helpers (parsed YAML/JSON is `unknown` until narrowed).
// ---------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function record(value: unknown, what: string): Json {
  if (!isRecord(value)) throw new Error(`${what} is not a mapping: ${JSON.stringify(value)}`);
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list: ${JSON.stringify(value)}`);
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string") throw new Error(`${what} is not a string: ${String(value)}`);
  return value;
}

function readJson(path: string): Json {
  const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
  return record(parsed, path);
}

function readYaml(text: string, what: string): Json {
  const doc = parseDocument(text);
  expect(doc.errors.map((error) => error.message)).toEqual([]);
  const data: unknown = doc.toJS();
  return record(data, what);
}

/** Compose durations ("30s", "1m30s", "500ms") in milliseconds. */
function durationMs(value: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  expect(parts.map((part) => part[0]).join("")).toBe(value);
  return parts.reduce((total, part) => total + Number(part[1]) * (units[part[2] ?? ""] ?? NaN), 0);
}

// ---------------------------------------------------------------------------------------
// dclint
// ---------------------------------------------------------------------------------------

interface LintMessage {
  rule: string;
  type: "error" | "warning";
  message: string;
  line: number;
}

interface LintResult {
  filePath: string;
  messages: LintMessage[];
  errorCount: number;
  warningCount: number;
}

interface LintRun {
  exitCode: number | null;
  stderr: string;
  results: LintResult[];
}

let scratch = "";

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "collab-docs-docker-test-"));
});

afterAll(async () => {
  if (scratch !== "") await rm(scratch, { recursive: true, force: true });
});

/**
 * Runs `dclint <file> --formatter json --output-file <report>` and parses the report.
 * The bin script is run with this process's node (Node 24) instead of relying on its
 * `#!/usr/bin/env node` shebang and whatever `node` is first on PATH. The report goes to
 * a file rather than stdout because dclint calls process.exit() right after printing.
 */
async function runDclint(file: string): Promise<LintRun> {
  const report = join(scratch, `report-${Math.random().toString(36).slice(2)}.json`);
  const args = [DCLINT, file, "--formatter", "json", "--output-file", report];
  const { exitCode, stderr } = await new Promise<{ exitCode: number | null; stderr: string }>(
    (resolveRun) => {
      execFile(process.execPath, args, { cwd: ROOT, timeout: 20_000 }, (error, _out, err) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolveRun({ exitCode: code, stderr: err });
      });
    },
  );
  expect(existsSync(report), `dclint wrote no report; stderr:\n${stderr}`).toBe(true);
  const parsed: unknown = JSON.parse(await readFile(report, "utf8"));
  const results = list(parsed, "dclint report").map((entry) => {
    const result = record(entry, "dclint result");
    return {
      filePath: str(result.filePath, "filePath"),
      errorCount: Number(result.errorCount),
      warningCount: Number(result.warningCount),
      messages: list(result.messages, "messages").map((raw) => {
        const message = record(raw, "dclint message");
        return {
          rule: str(message.rule, "rule"),
          type: message.type === "error" ? "error" : "warning",
          message: str(message.message, "message"),
          line: Number(message.line),
        } satisfies LintMessage;
      }),
    };
  });
  return { exitCode, stderr, results };
}

async function writeFixture(name: string, yaml: string): Promise<string> {
  const file = join(scratch, name, "docker-compose.yml");
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, yaml);
  return file;
}

// A compose file that passes every default dclint rule; each broken fixture below differs
// from it by exactly one defect, so a reported error is caused by that defect.
const VALID_FIXTURE = [
  "name: fixture",
  "services:",
  "  app:",
  "    image: example/app:1.2.3",
  "    ports:",
  "      - '127.0.0.1:8080:8080'",
  "",
].join("\n");

const BROKEN_FIXTURES: { name: string; yaml: string; rule: string }[] = [
  {
    name: "a service with an unknown key",
    yaml: VALID_FIXTURE.replace("    ports:", "    not_a_compose_key: true\n    ports:"),
    rule: "invalid-schema",
  },
  {
    name: "a ports entry of the wrong type (a mapping with a non-numeric target)",
    yaml: VALID_FIXTURE.replace("      - '127.0.0.1:8080:8080'", "      - target: [8080]"),
    rule: "invalid-schema",
  },
  {
    name: "ports given as a string instead of a list",
    yaml: VALID_FIXTURE.replace(
      "    ports:\n      - '127.0.0.1:8080:8080'",
      "    ports: '8080:8080'",
    ),
    rule: "invalid-schema",
  },
  {
    name: "the obsolete top-level version key",
    yaml: `version: "3.8"\n${VALID_FIXTURE}`,
    rule: "no-version-field",
  },
  {
    name: "an image without a concrete tag",
    yaml: VALID_FIXTURE.replace("example/app:1.2.3", "example/app:latest"),
    rule: "service-image-require-explicit-tag",
  },
  {
    name: "a port published without a host interface",
    yaml: VALID_FIXTURE.replace("'127.0.0.1:8080:8080'", "'8080:8080'"),
    rule: "no-unbound-port-interfaces",
  },
];

describe("[OPS1] docker-compose.yml", () => {
  it("[OPS1] docker-compose.yml passes the compose-spec linter (dclint) with no errors or warnings", async () => {
    const run = await runDclint(COMPOSE_FILE);
    const messages = run.results.flatMap((result) => result.messages);
    expect(messages, run.stderr).toEqual([]);
    expect(run.results).toHaveLength(1);
    expect(run.results[0]?.errorCount).toBe(0);
    expect(run.results[0]?.warningCount).toBe(0);
    expect(run.exitCode).toBe(0);
  });

  it("[OPS1] the linter's clean baseline fixture passes (control for the broken fixtures)", async () => {
    const file = await writeFixture("baseline", VALID_FIXTURE);
    const run = await runDclint(file);
    expect(run.results.flatMap((result) => result.messages)).toEqual([]);
    expect(run.exitCode).toBe(0);
  });

  for (const [index, fixture] of BROKEN_FIXTURES.entries()) {
    it(`[OPS1] the linter rejects a compose file with ${fixture.name}`, async () => {
      const file = await writeFixture(`broken-${index}`, fixture.yaml);
      const run = await runDclint(file);
      const errors = run.results
        .flatMap((result) => result.messages)
        .filter((message) => message.type === "error");
      expect(errors.map((error) => error.rule)).toContain(fixture.rule);
      expect(run.results[0]?.errorCount).toBeGreaterThan(0);
      expect(run.exitCode).toBe(1);
    });
  }

  describe("[OPS1] semantics", () => {
    const compose = readYaml(readFileSync(COMPOSE_FILE, "utf8"), "docker-compose.yml");
    const services = record(compose.services, "services");
    const server = record(services.server, "services.server");

    it("[OPS1] follows the compose spec: no obsolete top-level version key", () => {
      expect(compose).not.toHaveProperty("version");
    });

    it("[OPS1] service `server` is built from the repository root and tagged with a concrete version", () => {
      const build = server.build;
      const context = typeof build === "string" ? build : record(build, "build").context;
      expect(context).toBe(".");
      const image = str(server.image, "image");
      const version = str(readJson(join(ROOT, "package.json")).version, "package.json version");
      expect(image).toBe(`collab-docs/server:${version}`);
      // With both build and image, never try to pull the locally built name from a registry.
      expect(server.pull_policy).toBe("build");
    });

    it("[OPS1] has a healthcheck that probes /healthz, identical to the Dockerfile's", () => {
      const healthcheck = record(server.healthcheck, "healthcheck");
      const test = list(healthcheck.test, "healthcheck.test").map((part) => str(part, "test"));
      expect(test[0]).toBe("CMD");
      expect(test.join(" ")).toMatch(/http:\/\/127\.0\.0\.1:.*\/healthz/);
      expect(test.slice(1)).toEqual(dockerfileHealthcheckCommand());
      for (const key of ["interval", "timeout", "start_period"]) {
        expect(durationMs(str(healthcheck[key], `healthcheck.${key}`))).toBeGreaterThan(0);
      }
      expect(healthcheck.retries).toBeTypeOf("number");
      expect(healthcheck.disable).not.toBe(true);
    });

    it("[OPS1] mounts a named volume, declared under top-level volumes, at /data", () => {
      const mounts = list(server.volumes, "services.server.volumes").map((mount) => {
        if (typeof mount === "string") {
          const [source, target] = mount.split(":");
          return { source, target };
        }
        const long = record(mount, "volume mount");
        expect(long.type).toBe("volume");
        return { source: long.source, target: long.target };
      });
      const data = mounts.find((mount) => mount.target === "/data");
      expect(data, "no mount targets /data").toBeDefined();
      const source = str(data?.source, "source of the /data mount");
      // A named volume, not a bind mount of a host path.
      expect(source).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
      expect(Object.keys(record(compose.volumes, "top-level volumes"))).toContain(source);
    });

    it("[OPS1] configures the server through its environment variables", () => {
      const raw = server.environment;
      const env: Record<string, string> = {};
      if (Array.isArray(raw)) {
        for (const entry of raw) {
          const [key = "", ...value] = str(entry, "environment entry").split("=");
          env[key] = value.join("=");
        }
      } else {
        for (const [key, value] of Object.entries(record(raw, "environment"))) {
          env[key] = String(value);
        }
      }
      expect(env.HOST).toBe("0.0.0.0");
      expect(env.PORT).toBe("1234");
      expect(env.DATA_DIR).toBe("/data");
      expect(env.LOG_LEVEL).toBe("info");
      // The settings are valid, and the server agrees to start with them (on 0.0.0.0 it
      // refuses anonymous mode unless told): with AUTH_SECRET unset, and with it set.
      const resolved = (secret: string) =>
        Object.fromEntries(
          Object.entries(env).map(([key, value]) => [
            key,
            value.replace(/^\$\{AUTH_SECRET:-\}$/, secret),
          ]),
        );
      expect(accessMode(configFromEnv(resolved(""))).kind).toBe("anonymous");
      expect(accessMode(configFromEnv(resolved("x".repeat(40)))).kind).toBe("token");
    });

    it("[OPS1] publishes container port 1234 on host port 1234", () => {
      const published = list(server.ports, "ports").map((port) => {
        if (typeof port === "string") {
          const match = /^(?:([\d.]+):)?(\d+):(\d+)(?:\/tcp)?$/.exec(port);
          return { host: match?.[2], container: match?.[3] };
        }
        const long = record(port, "port mapping");
        return { host: String(long.published), container: String(long.target) };
      });
      expect(published).toContainEqual({ host: "1234", container: "1234" });
    });

    it("[OPS1] restarts unless stopped and gives the server time to flush on SIGTERM", () => {
      expect(server.restart).toBe("unless-stopped");
      // Longer than the server's own shutdown deadline, so the flush on SIGTERM (and its
      // report of anything it could not store) is not cut short by Docker's SIGKILL.
      expect(durationMs(str(server.stop_grace_period, "stop_grace_period"))).toBeGreaterThan(
        DEFAULT_CONFIG.shutdownTimeoutMs,
      );
      expect(server.stop_signal ?? "SIGTERM").toBe("SIGTERM");
    });
  });
});

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions of the Dockerfile, with comments dropped and line continuations joined. */
function dockerfileInstructions(): Instruction[] {
  const lines = readFileSync(DOCKERFILE, "utf8")
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("#"));
  const instructions: Instruction[] = [];
  let pending = "";
  for (const line of lines) {
    pending += line;
    if (pending.endsWith("\\")) {
      pending = `${pending.slice(0, -1)} `;
      continue;
    }
    const text = pending.trim();
    pending = "";
    if (text === "") continue;
    const match = /^(\S+)\s*(.*)$/.exec(text);
    if (match === null) continue;
    instructions.push({ keyword: (match[1] ?? "").toUpperCase(), args: (match[2] ?? "").trim() });
  }
  return instructions;
}

/** The instructions of the last stage (the image that is actually run). */
function finalStage(instructions: Instruction[]): Instruction[] {
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf("FROM");
  return instructions.slice(lastFrom);
}

function execForm(args: string, what: string): string[] {
  const parsed: unknown = JSON.parse(args);
  return list(parsed, what).map((part) => str(part, what));
}

function dockerfileHealthcheckCommand(): string[] {
  const healthcheck = finalStage(dockerfileInstructions()).find((i) => i.keyword === "HEALTHCHECK");
  const match = /\bCMD\s+(\[.*\])\s*$/.exec(healthcheck?.args ?? "");
  return execForm(match?.[1] ?? "null", "HEALTHCHECK CMD");
}

/** Splits a COPY's arguments into flags, sources and destination (shell form only). */
function parseCopy(args: string): { flags: string[]; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((word) => word.startsWith("--"));
  const paths = words.filter((word) => !word.startsWith("--"));
  return { flags, sources: paths.slice(0, -1), dest: paths.at(-1) ?? "" };
}

function ignorePatterns(): string[] {
  return readFileSync(DOCKERIGNORE, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** True when `.dockerignore` excludes the path or one of its parent directories. */
function isIgnored(path: string, patterns: string[]): boolean {
  const segments = posix.normalize(path).replace(/\/$/, "").split("/");
  const candidates = segments.map((_, index) => segments.slice(0, index + 1).join("/"));
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith("!");
    const glob = (negated ? pattern.slice(1) : pattern).replace(/^\//, "").replace(/\/$/, "");
    if (candidates.some((candidate) => matchesGlob(candidate, glob))) ignored = !negated;
  }
  return ignored;
}

describe("[OPS1] Dockerfile", () => {
  const instructions = dockerfileInstructions();
  const runtime = finalStage(instructions);
  const lastArgs = (keyword: string): string | undefined =>
    runtime.filter((i) => i.keyword === keyword).at(-1)?.args;

  it("[OPS1] every stage is based on node:24-slim", () => {
    const froms = instructions.filter((i) => i.keyword === "FROM");
    expect(froms.length).toBeGreaterThan(0);
    for (const from of froms) expect(from.args.split(/\s+/)[0]).toBe("node:24-slim");
  });

  it("[OPS1] the runtime stage runs as a non-root user that owns /data", () => {
    const user = lastArgs("USER");
    expect(user, "no USER in the runtime stage").toBeDefined();
    const name = (user ?? "").split(":")[0];
    expect(["", "root", "0"]).not.toContain(name);
    const chown = runtime.findIndex((i) => i.keyword === "RUN" && /\bchown\b/.test(i.args));
    expect(chown, "no RUN chown in the runtime stage").toBeGreaterThanOrEqual(0);
    expect(runtime[chown]?.args).toMatch(
      new RegExp(`chown\\s+(?:-R\\s+)?${name}(?::\\S+)?\\s+/data\\b`),
    );
    // The directory must be prepared (as root) before USER drops privileges.
    expect(chown).toBeLessThan(runtime.findIndex((i) => i.keyword === "USER"));
  });

  it("[OPS1] declares /data as a VOLUME, exposes 1234, stops with SIGTERM", () => {
    const volume = lastArgs("VOLUME") ?? "";
    const volumes = volume.startsWith("[") ? execForm(volume, "VOLUME") : volume.split(/\s+/);
    expect(volumes).toContain("/data");
    expect(lastArgs("EXPOSE")?.split(/\s+/)).toContain("1234");
    expect(lastArgs("STOPSIGNAL")).toBe("SIGTERM");
  });

  it("[OPS1] has a HEALTHCHECK that probes /healthz with node (no curl in -slim)", () => {
    const healthcheck = lastArgs("HEALTHCHECK") ?? "";
    expect(healthcheck).toMatch(/--interval=\S+/);
    expect(healthcheck).toMatch(/--timeout=\S+/);
    const command = dockerfileHealthcheckCommand();
    expect(command[0]).toBe("node");
    expect(command.join(" ")).toMatch(/fetch\('http:\/\/127\.0\.0\.1:.*\/healthz'/);
  });

  it("[OPS1] configures the server for a container through ENV", () => {
    const env = new Map<string, string>();
    for (const i of runtime.filter((instruction) => instruction.keyword === "ENV")) {
      for (const pair of i.args.split(/\s+/)) {
        const [key = "", ...value] = pair.split("=");
        env.set(key, value.join("=").replace(/^"(.*)"$/, "$1"));
      }
    }
    expect(env.get("HOST")).toBe("0.0.0.0");
    expect(env.get("PORT")).toBe("1234");
    expect(env.get("DATA_DIR")).toBe("/data");
    expect(env.get("NODE_ENV")).toBe("production");
  });

  it("[OPS1] CMD runs the server entry point that `npm start` runs, with node directly", () => {
    const cmd = execForm(lastArgs("CMD") ?? "null", "CMD");
    expect(cmd).toEqual(["node", "server/src/main.ts"]);
    const server = readJson(join(ROOT, "server", "package.json"));
    const start = str(record(server.scripts, "scripts").start, "server start script");
    expect(start).toBe("node src/main.ts");
  });

  it("[OPS1] installs production dependencies only, from the lockfile", () => {
    const install = instructions.find(
      (i) => i.keyword === "RUN" && /\bnpm\s+install\b/.test(i.args),
    );
    expect(install?.args).toMatch(/--omit=dev\b/);
  });

  it("[OPS1] carries OCI labels (title, description, licenses=MIT)", () => {
    const labels = runtime
      .filter((i) => i.keyword === "LABEL")
      .map((i) => i.args)
      .join(" ");
    expect(labels).toMatch(/org\.opencontainers\.image\.title="[^"]+"/);
    expect(labels).toMatch(/org\.opencontainers\.image\.description="[^"]+"/);
    expect(labels).toMatch(/org\.opencontainers\.image\.licenses="MIT"/);
  });

  it("[OPS1] everything COPYed from the build context exists and is not .dockerignored", () => {
    const stageNames = instructions
      .filter((i) => i.keyword === "FROM")
      .map((i) => /\bAS\s+(\S+)/i.exec(i.args)?.[1])
      .filter((name): name is string => name !== undefined);
    const workspaces = list(readJson(join(ROOT, "package.json")).workspaces, "workspaces");
    const patterns = ignorePatterns();
    const copies = instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD");
    expect(copies.length).toBeGreaterThan(0);
    const fromContext: string[] = [];
    for (const copy of copies) {
      const { flags, sources } = parseCopy(copy.args);
      expect(sources.length, `COPY ${copy.args}`).toBeGreaterThan(0);
      const from = flags.find((flag) => flag.startsWith("--from="));
      if (from !== undefined) {
        // Copies between stages must name a stage of this Dockerfile.
        expect(stageNames).toContain(from.slice("--from=".length));
        continue;
      }
      fromContext.push(...sources);
    }
    // The manifests `npm ci` needs, and the server sources.
    expect(fromContext).toEqual(
      expect.arrayContaining([
        "package.json",
        "package-lock.json",
        ".npmrc",
        "server/package.json",
      ]),
    );
    expect(fromContext.some((source) => /^server\/(?:src\/?)?$/.test(source))).toBe(true);
    for (const source of fromContext) {
      if (/[*?[]/.test(source)) {
        // A wildcard may match nothing (BuildKit allows it): used for the editor workspace,
        // which may not have a package.json yet. Its directory must be a declared workspace,
        // so a typo cannot silently copy nothing.
        expect(workspaces, `COPY ${source}`).toContain(source.split("/")[0]);
      } else {
        expect(existsSync(join(ROOT, source)), `COPY source ${source} is missing`).toBe(true);
      }
      expect(isIgnored(source, patterns), `COPY source ${source} is .dockerignored`).toBe(false);
    }
  });
});

describe("[OPS1] .dockerignore", () => {
  const patterns = ignorePatterns();

  it("[OPS1] keeps host state out of the build context", () => {
    for (const path of [
      "node_modules",
      "server/node_modules",
      "editor/node_modules",
      "data",
      ".git",
      "test-results",
      "bench/results",
      "coverage",
      "npm-debug.log",
      "server/server.log",
    ]) {
      expect(isIgnored(path, patterns), `${path} should be ignored`).toBe(true);
    }
  });

  it("[OPS1] does not exclude the sources and manifests the image needs", () => {
    for (const path of [
      "package.json",
      "package-lock.json",
      ".npmrc",
      "server/package.json",
      "server/src/main.ts",
      "editor/package.json",
    ]) {
      expect(isIgnored(path, patterns), `${path} should not be ignored`).toBe(false);
    }
  });
});
