/**
 * Builds the editor: the app the server serves, the npm package (ES module and
 * type declarations) and the standalone embed bundle, into editor/dist.
 * With --if-stale it does nothing when the build is newer than every source,
 * so `npm start` and `npm test` can call it every time.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { build } from "vite";

const root = resolve(import.meta.dirname, "..");
const editor = join(root, "editor");
const stamp = join(editor, "dist", ".built");

async function newest(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let latest = info.mtimeMs;
  for (const entry of await readdir(path))
    latest = Math.max(latest, await newest(join(path, entry)));
  return latest;
}

async function isStale(): Promise<boolean> {
  const built = await stat(stamp).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const sources = ["src", "app", "vite.config.ts", "package.json", "tsconfig.build.json"].map((p) =>
    join(editor, p),
  );
  for (const source of sources) if ((await newest(source)) > built) return true;
  return false;
}

async function rewriteDeclarations(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await rewriteDeclarations(path);
    else if (entry.name.endsWith(".d.ts")) {
      // Sources import with .ts (Node runs them directly); published declarations point at .js.
      // The stylesheet import is Vite's business (the CSS ships as style.css), not the types'.
      const text = await readFile(path, "utf8");
      await writeFile(
        path,
        text
          .replace(/(from\s+["']\.{1,2}\/[^"']*)\.ts(["'])/g, "$1.js$2")
          .replace(/^import\s+["'][^"']+\.css["'];\n/gm, ""),
      );
    }
  }
}

if (process.argv.includes("--if-stale") && !(await isStale())) process.exit(0);
const started = performance.now();
for (const mode of ["app", "lib", "standalone"]) {
  await build({ configFile: join(editor, "vite.config.ts"), mode, logLevel: "warn" });
}
execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", join(editor, "tsconfig.build.json")], {
  stdio: "inherit",
});
await rewriteDeclarations(join(editor, "dist", "types"));
await writeFile(stamp, new Date().toISOString());
console.error(`editor built in ${Math.round(performance.now() - started)} ms`);
