/**
 * Process entry: read the configuration, start the server, and shut down
 * gracefully on SIGTERM/SIGINT (stop accepting, flush every write, close the
 * store, exit 0; exit 1 if writes could not be stored in time).
 */
import { createRequire } from "node:module";
import { format } from "node:util";
import { createCollabServer } from "./app.ts";
import { isLoopback } from "./auth/access.ts";
import { buildCli } from "./cli.ts";
import { type Config, describeSettings } from "./config.ts";
import { isCollabError, RefusedSync } from "./errors.ts";
import { allocatorAdvice } from "./observability/allocator.ts";
import { createLogger } from "./observability/logger.ts";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** Prints a start-up failure for a person (stderr) and exits 1. */
function fail(message: string): never {
  process.stderr.write(`collab-server: ${message}\n`);
  process.exit(1);
}

async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  // Hocuspocus reports some problems with console.error/warn; keep every output line JSON.
  // A sync refused on purpose (deleted state, a write to threads) is logged by its hook, at info.
  console.error = (...args: unknown[]) => {
    if (args.some((arg) => arg instanceof RefusedSync)) return;
    logger.error({ source: "hocuspocus" }, format(...args));
  };
  console.warn = (...args: unknown[]) => logger.warn({ source: "hocuspocus" }, format(...args));
  let server: Awaited<ReturnType<typeof createCollabServer>>;
  try {
    server = await createCollabServer({ config, logger });
  } catch (error) {
    logger.fatal({ err: error }, "could not start");
    fail(isCollabError(error) ? error.message : `could not start: ${String(error)}`);
  }
  let address: Awaited<ReturnType<typeof server.listen>>;
  try {
    address = await server.listen();
  } catch (error) {
    await server.close();
    const code = (error as { code?: string }).code;
    fail(
      code === "EADDRINUSE"
        ? `port ${config.port} on ${config.host} is already in use; set PORT to another port (0 picks a free one)`
        : `cannot listen on ${config.host}:${config.port}: ${String(error)}`,
    );
  }
  // The server's logger: with Redis fan-out its lines name this instance.
  server.logger.info(
    {
      url: address.url,
      port: address.port,
      store: server.store.kind,
      dataDir: config.store === "leveldb" ? config.dataDir : undefined,
      version,
      access: server.access,
      settings: describeSettings(config),
    },
    `collab-server listening on ${address.url}`,
  );

  const advice = allocatorAdvice();
  if (advice !== null) server.logger.warn(advice);

  if (config.metricsToken === null && !isLoopback(config.host)) {
    server.logger.warn(
      { host: config.host },
      "METRICS_TOKEN is not set: /metrics answers anyone who can reach this port",
    );
  }

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, "shutting down: flushing writes");
    const { abandonedUpdates } = await server.close();
    process.exit(abandonedUpdates > 0 ? 1 : 0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (config.tlsCert !== null) {
    process.on("SIGHUP", () => {
      server.reloadTls().then(
        () => server.logger.info("TLS certificate reloaded; new connections use it"),
        (error: unknown) =>
          server.logger.error(
            { err: error },
            `TLS certificate not reloaded, the old one is kept: ${isCollabError(error) ? error.message : String(error)}`,
          ),
      );
    });
  }
}

try {
  await buildCli(version, {
    serve,
    print: (line) => process.stdout.write(`${line}\n`),
  }).parseAsync(process.argv.slice(2), { from: "user" });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
