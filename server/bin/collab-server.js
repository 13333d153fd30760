#!/usr/bin/env node
// Node 24 runs the TypeScript sources directly (type stripping); there is no
// build step. Run under an older Node (the system one, when this file is run
// directly rather than through npm), it hands over to the Node 24 that
// `npm install` fetched as the `node` package.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));

if (Number(process.versions.node.split(".")[0]) >= 24) {
  await import(main);
} else {
  let node;
  try {
    node = createRequire(import.meta.url).resolve("node/bin/node");
  } catch {
    process.stderr.write(
      "collab-server: needs Node.js 24; run `npm install`, which fetches it, or install it\n",
    );
    process.exit(1);
  }
  const child = spawn(node, [main, ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)));
}
