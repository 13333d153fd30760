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
// docker-compose.yml, `scale` profile
// ---------------------------------------------------------------------------------------

const NGINX_CONF = join(ROOT, "deploy", "nginx.conf");

/** A service's environment as a mapping, from either the list or the mapping form. */
function serviceEnv(service: Json, what: string): Record<string, string> {
  const raw = service.environment;
  const env: Record<string, string> = {};
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const [key = "", ...value] = str(entry, `${what} environment entry`).split("=");
      env[key] = value.join("=");
    }
  } else {
    for (const [key, value] of Object.entries(record(raw, `${what}.environment`))) {
      env[key] = String(value);
    }
  }
  return env;
}

/**
 * Compose's interpolation of `${NAME}`, `${NAME:-default}` and `${NAME-default}` (and `$$`)
 * against `vars`. Required forms (`${NAME:?message}`, `${NAME?message}`) throw, as Compose
 * stops with their message when the variable is missing.
 */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (match, name: string | undefined, operator: string | undefined, operand: string) => {
      if (match === "$$") return "$";
      const found = name === undefined ? undefined : vars[name];
      const missing = operator?.startsWith(":") ? (found ?? "") === "" : found === undefined;
      if (operator?.endsWith("?") && missing) throw new Error(`${name}: ${operand}`);
      if (operator?.endsWith("-") && missing) return operand;
      return found ?? "";
    },
  );
}

function healthcheckCommand(service: Json, what: string): string[] {
  const healthcheck = record(service.healthcheck, `${what}.healthcheck`);
  expect(healthcheck.disable, `${what} healthcheck disabled`).not.toBe(true);
  const test = healthcheck.test;
  const parts = typeof test === "string" ? ["CMD-SHELL", test] : list(test, `${what} test`);
  const command = parts.map((part) => str(part, `${what} healthcheck.test`));
  expect(["CMD", "CMD-SHELL"], `${what} healthcheck.test[0]`).toContain(command[0]);
  for (const key of ["interval", "timeout"]) {
    expect(durationMs(str(healthcheck[key], `${what} healthcheck.${key}`))).toBeGreaterThan(0);
  }
  expect(healthcheck.retries, `${what} healthcheck.retries`).toBeTypeOf("number");
  return command.slice(1);
}

/** Mounts as { type, source, target, readOnly }, from the short or the long syntax. */
function mounts(service: Json, what: string) {
  return list(service.volumes ?? [], `${what}.volumes`).map((mount) => {
    if (typeof mount === "string") {
      const [source = "", target = "", mode = ""] = mount.split(":");
      const type = /^[./~]/.test(source) ? "bind" : "volume";
      return { type, source, target, readOnly: mode.split(",").includes("ro") };
    }
    const long = record(mount, `${what} volume mount`);
    return {
      type: str(long.type, "mount type"),
      source: str(long.source, "mount source"),
      target: str(long.target, "mount target"),
      readOnly: long.read_only === true,
    };
  });
}

function dependsOn(service: Json, what: string): Record<string, string> {
  const raw = record(service.depends_on, `${what}.depends_on`);
  return Object.fromEntries(
    Object.entries(raw).map(([name, spec]) => [
      name,
      str(record(spec, `${what}.depends_on.${name}`).condition, "condition"),
    ]),
  );
}

/** Every string in parsed YAML (values and keys, as Compose interpolates; not comments). */
function strings(data: unknown): string[] {
  if (typeof data === "string") return [data];
  if (Array.isArray(data)) return data.flatMap(strings);
  if (isRecord(data))
    return Object.entries(data).flatMap(([key, value]) => [key, ...strings(value)]);
  return [];
}

/** The `${VAR...}` names the strings refer to. */
function variables(values: string[]): string[] {
  return values.flatMap((value) =>
    [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1] ?? ""),
  );
}

describe("[OPS2] docker-compose.yml: the scale profile", () => {
  const compose = readYaml(readFileSync(COMPOSE_FILE, "utf8"), "docker-compose.yml");
  const services = record(compose.services, "services");
  const service = (name: string) => record(services[name], `services.${name}`);
  const profiles = (name: string) =>
    list(service(name).profiles ?? [], `${name}.profiles`).map((p) => str(p, "profile"));
  const scaleServices = Object.keys(services).filter((name) => profiles(name).includes("scale"));
  const lb = service("lb");
  const replica = service("replica");
  const postgres = service("postgres");
  const redis = service("redis");
  const nginxConf = existsSync(NGINX_CONF) ? readFileSync(NGINX_CONF, "utf8") : "";
  /** Values for the variables the cluster needs, as an operator would set them. */
  const secrets = { POSTGRES_PASSWORD: "a".repeat(64), AUTH_SECRET: "s".repeat(64) };
  const replicaEnv = (vars: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(serviceEnv(replica, "replica")).map(([key, value]) => [
        key,
        interpolate(value, vars),
      ]),
    );

  it("[OPS2] the profile holds lb, replica, redis and postgres; `server` alone has no profile", () => {
    expect(scaleServices.sort()).toEqual(["lb", "postgres", "redis", "replica"]);
    const always = Object.keys(services).filter((name) => profiles(name).length === 0);
    expect(always).toEqual(["server"]);
  });

  it("[OPS2] no variable is required at interpolation: the default `docker compose up` needs none of the cluster's", () => {
    // Compose interpolates every service, those of inactive profiles too, and a missing
    // `${VAR:?}` stops it: one in the scale services would break the default deployment.
    const values = strings(compose);
    for (const value of values) expect(() => interpolate(value, {}), value).not.toThrow();
    expect(new Set(variables(values))).toEqual(new Set(["AUTH_SECRET", "POSTGRES_PASSWORD"]));
  });

  it("[OPS2] every scale service has a pinned image, a healthcheck and restarts unless stopped", () => {
    for (const name of scaleServices) {
      const image = str(service(name).image, `${name}.image`);
      // A concrete version (with a dot), not a moving tag such as `alpine` or `17`.
      expect(image, `${name}.image`).toMatch(/:\d+\.\d+(?:\.\d+)?(?:-[a-z0-9.]+)?$/);
      expect(healthcheckCommand(service(name), name).length, name).toBeGreaterThan(0);
      expect(service(name).restart, `${name}.restart`).toBe("unless-stopped");
    }
  });

  it("[OPS2] only lb publishes a port, on the host's loopback interface", () => {
    for (const name of scaleServices.filter((n) => n !== "lb")) {
      expect(service(name).ports, `${name}.ports`).toBeUndefined();
    }
    const ports = list(lb.ports, "lb.ports").map((port) => record(port, "lb port"));
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) expect(port.host_ip).toBe("127.0.0.1");
    // Not the single server's host port: both can run at once.
    const published = ports.map((port) => String(port.published));
    expect(published).not.toContain("1234");
  });

  it("[OPS2] lb mounts deploy/nginx.conf read-only and publishes the port it listens on", () => {
    const conf = mounts(lb, "lb").find((m) => m.target === "/etc/nginx/nginx.conf");
    expect(conf, "no mount at /etc/nginx/nginx.conf").toBeDefined();
    expect(conf?.type).toBe("bind");
    expect(conf?.readOnly).toBe(true);
    expect(resolve(ROOT, conf?.source ?? "")).toBe(NGINX_CONF);
    expect(existsSync(NGINX_CONF), "deploy/nginx.conf is missing").toBe(true);
    const listen = /^\s*listen\s+(\d+)\s*;\s*# @listen$/m.exec(nginxConf);
    expect(listen, "no `listen <port>; # @listen` line").not.toBeNull();
    const targets = list(lb.ports, "lb.ports").map((port) => record(port, "lb port").target);
    expect(targets).toContain(Number(listen?.[1]));
  });

  it("[OPS2] lb's healthcheck probes nginx's own /nginx-health, and lb waits for healthy replicas", () => {
    const command = healthcheckCommand(lb, "lb").join(" ");
    expect(command).toMatch(/http:\/\/127\.0\.0\.1(?::\d+)?\/nginx-health\b/);
    expect(nginxConf).toMatch(/location\s+=\s+\/nginx-health\s*\{[^}]*return\s+200\b/);
    expect(dependsOn(lb, "lb")).toEqual({ replica: "service_healthy" });
  });

  it("[OPS2] nginx's upstream is the replica service on the port the replicas listen on", () => {
    const upstream = /^\s*server\s+([^\s:]+):(\d+)\b[^;]*;\s*# @upstream$/m.exec(nginxConf);
    expect(upstream, "no `server host:port ...; # @upstream` line").not.toBeNull();
    expect(upstream?.[1]).toBe("replica");
    expect(upstream?.[2]).toBe(replicaEnv(secrets).PORT);
  });

  it("[OPS2] replica: the server's image, two or more instances, started after healthy PostgreSQL and Redis", () => {
    for (const key of ["image", "build", "pull_policy"]) {
      expect(replica[key], `replica.${key}`).toEqual(service("server")[key]);
    }
    const deploy = record(replica.deploy, "replica.deploy");
    expect(deploy.replicas).toBeTypeOf("number");
    expect(Number(deploy.replicas)).toBeGreaterThanOrEqual(2);
    // Several containers of one service: no fixed container name, no fixed host port.
    expect(replica.container_name).toBeUndefined();
    expect(replica.ports).toBeUndefined();
    expect(dependsOn(replica, "replica")).toEqual({
      postgres: "service_healthy",
      redis: "service_healthy",
    });
    expect(healthcheckCommand(replica, "replica").join(" ")).toMatch(
      /fetch\('http:\/\/127\.0\.0\.1:.*\/readyz'/,
    );
  });

  it("[OPS2] replica's environment passes the server's config validation and cluster topology check", async () => {
    // Imported here, not at the top: app.ts loads the whole server (Hocuspocus, stores).
    const { checkTopology } = await import("../../server/src/app.ts");
    const config = configFromEnv(replicaEnv(secrets));
    expect(config.host).toBe("0.0.0.0");
    expect(config.store).toBe("postgres");
    expect(config.cluster).toBe(true);
    expect(config.trustProxy).toBe(true);
    expect(config.allowAnonymous).toBe(false);
    expect(() => checkTopology(config)).not.toThrow();
    expect(accessMode(config).kind).toBe("token");
  });

  it("[OPS2] replica's URLs name the postgres and redis services with their user, database and password", () => {
    const env = replicaEnv(secrets);
    const database = new URL(env.DATABASE_URL ?? "");
    const pg = serviceEnv(postgres, "postgres");
    expect(database.hostname).toBe("postgres");
    expect(database.port).toBe("5432");
    expect(database.username).toBe(pg.POSTGRES_USER);
    expect(database.pathname).toBe(`/${pg.POSTGRES_DB}`);
    expect(decodeURIComponent(database.password)).toBe(
      interpolate(pg.POSTGRES_PASSWORD ?? "", secrets),
    );
    expect(decodeURIComponent(database.password)).toBe(secrets.POSTGRES_PASSWORD);
    const redisUrl = new URL(env.REDIS_URL ?? "");
    expect(redisUrl.hostname).toBe("redis");
    expect(redisUrl.port).toBe("6379");
  });

  it("[OPS2] without AUTH_SECRET a replica refuses to start, naming it, instead of serving anonymously", () => {
    const config = configFromEnv(replicaEnv({ POSTGRES_PASSWORD: secrets.POSTGRES_PASSWORD }));
    expect(() => accessMode(config)).toThrow(/AUTH_SECRET/);
  });

  it("[OPS2] replicas have longer than the server's shutdown deadline to flush on SIGTERM", () => {
    const shutdown = Number(
      replicaEnv(secrets).SHUTDOWN_TIMEOUT_MS ?? DEFAULT_CONFIG.shutdownTimeoutMs,
    );
    expect(durationMs(str(replica.stop_grace_period, "stop_grace_period"))).toBeGreaterThan(
      shutdown,
    );
    expect(replica.stop_signal ?? "SIGTERM").toBe("SIGTERM");
    // PostgreSQL outlives them (Compose stops dependants first) and has time to checkpoint.
    expect(
      durationMs(str(postgres.stop_grace_period, "postgres stop_grace_period")),
    ).toBeGreaterThan(10_000);
    // nginx closes open WebSockets itself before Compose's SIGKILL.
    const shutdownTimeout = /^\s*worker_shutdown_timeout\s+(\S+);/m.exec(nginxConf)?.[1];
    expect(shutdownTimeout, "nginx.conf sets no worker_shutdown_timeout").toBeDefined();
    expect(durationMs(str(lb.stop_grace_period, "lb stop_grace_period"))).toBeGreaterThan(
      durationMs(shutdownTimeout ?? ""),
    );
  });

  it("[OPS2] postgres keeps its data in a named volume and is probed with pg_isready over TCP", () => {
    const data = mounts(postgres, "postgres").find((m) => m.target === "/var/lib/postgresql/data");
    expect(data?.type).toBe("volume");
    expect(Object.keys(record(compose.volumes, "top-level volumes"))).toContain(data?.source);
    const probe = healthcheckCommand(postgres, "postgres");
    expect(probe[0]).toBe("pg_isready");
    expect(probe.join(" ")).toMatch(/-h 127\.0\.0\.1\b/);
    const pg = serviceEnv(postgres, "postgres");
    expect(probe.join(" ")).toContain(`-U ${pg.POSTGRES_USER}`);
  });

  it("[OPS2] redis carries pub/sub only: persistence off, no volume, probed with redis-cli ping", () => {
    const command = list(redis.command, "redis.command").map((part) => str(part, "command"));
    expect(command.slice(command.indexOf("--save"), command.indexOf("--save") + 2)).toEqual([
      "--save",
      "",
    ]);
    expect(
      command.slice(command.indexOf("--appendonly"), command.indexOf("--appendonly") + 2),
    ).toEqual(["--appendonly", "no"]);
    expect(redis.volumes).toBeUndefined();
    expect(healthcheckCommand(redis, "redis")).toEqual(["redis-cli", "ping"]);
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
