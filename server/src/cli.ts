/**
 * The `collab-server` command line: `serve` (the default: run the server),
 * `token` (mint an access token with the configured AUTH_SECRET, for trying
 * things out), and `migrate`, `export` and `import` (move every document
 * between stores or to and from a backup file).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { addSettings, type Config, configFromOptions } from "./config.ts";

// The other commands' modules load when they run: `serve` would otherwise carry the
// transfers (with every store and the PostgreSQL client) and the token signer in its idle
// memory (docs/benchmarks.md, "Profile: idle memory at start-up").
const transfers = () => import("./commands/transfer.ts");

export interface CliActions {
  /** Runs the server with the validated configuration. */
  readonly serve: (config: Config) => Promise<void>;
  /** Where `token` prints. */
  readonly print: (line: string) => void;
}

/** A lifetime jose accepts: a number of seconds or 30s, 15m, 1h, 7d, 2w. */
function parseTtl(value: string): string {
  if (!/^\d+\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|week|weeks)?$/i.test(value.trim()))
    throw new InvalidArgumentError("must be a duration such as 30m, 1h, 7d or a number of seconds");
  return /^\d+$/.test(value.trim()) ? `${value.trim()}s` : value.trim();
}

export function buildCli(version: string, actions: CliActions): Command {
  const program = new Command("collab-server")
    .description(
      "Self-hosted collaborative document server: Hocuspocus protocol, durable LevelDB store.",
    )
    .version(version)
    .showHelpAfterError()
    .addHelpText("after", "\n`collab-server serve --help` lists every setting.");

  const serve = addSettings(
    program
      .command("serve", { isDefault: true })
      .description("run the server (the default command)")
      .allowExcessArguments(false),
  );
  serve.action(async () => {
    await actions.serve(configFromOptions(serve));
  });

  program
    .command("token")
    .description("mint an access token signed with AUTH_SECRET (HS256), for trying things out")
    .requiredOption(
      "--doc <name>",
      "a document name, or a prefix ending in * (repeat for several)",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .addOption(
      new Option("--perm <perm>", "what the token allows")
        .choices(["read", "comment", "write"])
        .default("write"),
    )
    .option("--name <name>", "display name shown to other users")
    .option("--sub <id>", "user id (default: the name, or cli-user)")
    .option("--ttl <duration>", "lifetime: 30m, 1h, 7d or seconds", parseTtl, "1h")
    .addOption(
      new Option("--auth-secret <secret>", "the HS256 key (at least 32 characters)").env(
        "AUTH_SECRET",
      ),
    )
    .allowExcessArguments(false)
    .action(
      async (
        options: {
          doc: string[];
          perm: "read" | "comment" | "write";
          name?: string;
          sub?: string;
          ttl: string;
          authSecret?: string;
        },
        command: Command,
      ) => {
        const secret = options.authSecret?.trim() ?? "";
        if (secret.length < 32) {
          command.error(
            secret === ""
              ? "error: token needs AUTH_SECRET (or --auth-secret), the HS256 key the server verifies with; tokens for AUTH_PUBLIC_KEY come from your identity provider"
              : "error: AUTH_SECRET must be at least 32 characters",
          );
        }
        const { mintToken } = await import("./auth/tokens.ts");
        actions.print(
          await mintToken({
            secret,
            userId: options.sub ?? options.name ?? "cli-user",
            name: options.name,
            docs: options.doc,
            perm: options.perm,
            ttl: options.ttl,
          }),
        );
      },
    );
  const storeHelp =
    "leveldb:<directory> or postgres://user:password@host/db (default: the store STORE, DATA_DIR and DATABASE_URL configure)";
  program
    .command("migrate")
    .description(
      "copy every document, with its times and versions, from one store to another (safe to run again)",
    )
    .requiredOption("--from <store>", "source: leveldb:<directory> or postgres://...")
    .requiredOption("--to <store>", "target: leveldb:<directory> or postgres://...")
    .allowExcessArguments(false)
    .action(async (options: { from: string; to: string }) => {
      const { migrate } = await transfers();
      await migrate(options.from, options.to, actions.print);
    });
  program
    .command("export")
    .description(
      "write every document and its versions to a backup file (gzip when it ends in .gz)",
    )
    .requiredOption("--out <file>", "the backup file to write")
    .option("--from <store>", storeHelp)
    .allowExcessArguments(false)
    .action(async (options: { out: string; from?: string }) => {
      const { exportTo } = await transfers();
      await exportTo(options.out, options.from, actions.print);
    });
  program
    .command("import")
    .description("restore every document of a backup file, merged with what the store holds")
    .argument("<file>", "a file written by export")
    .option("--to <store>", storeHelp)
    .allowExcessArguments(false)
    .action(async (file: string, options: { to?: string }) => {
      const { importFrom } = await transfers();
      await importFrom(file, options.to, actions.print);
    });
  return program;
}
