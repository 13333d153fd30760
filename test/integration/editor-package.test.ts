/**
 * The editor as a package another project installs ([EMB4]): `npm pack`, then
 * a scratch project imports it, type-checks against its declarations and
 * bundles it with Vite, CSS included. And the standalone bundle stays lean.
 */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it, onTestFinished } from "vitest";
import { ROOT } from "../helpers/server.ts";

const BIN = join(ROOT, "node_modules/.bin");

describe("the editor package", () => {
  it("[EMB4] packs, and a scratch project imports, type-checks and bundles it", {
    timeout: 120_000,
  }, async () => {
    // Inside the repository so the packed package's own dependencies resolve from its node_modules.
    const scratch = join(ROOT, "test-results", `pack-${process.pid}`);
    await rm(scratch, { recursive: true, force: true });
    await mkdir(join(scratch, "node_modules/@collab-docs/editor"), { recursive: true });
    onTestFinished(() => rm(scratch, { recursive: true, force: true }));
    const tarball = execFileSync(
      "npm",
      ["pack", "--workspace", "editor", "--pack-destination", scratch, "--silent"],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    )
      .trim()
      .split("\n")
      .at(-1) as string;
    execFileSync("tar", [
      "-xzf",
      join(scratch, tarball),
      "-C",
      join(scratch, "node_modules/@collab-docs/editor"),
      "--strip-components=1",
    ]);

    await writeFile(
      join(scratch, "main.ts"),
      `import { createCollabEditor, defineCollabEditorElement, type CollabEditorHandle } from "@collab-docs/editor";
import "@collab-docs/editor/style.css";
defineCollabEditorElement();
const handle: CollabEditorHandle = createCollabEditor(document.body, { url: "ws://localhost:1234", document: "scratch" });
handle.on("save", (state) => console.log(state.kind));
`,
    );
    await writeFile(
      join(scratch, "index.html"),
      `<!doctype html><script type="module" src="./main.ts"></script>`,
    );
    await writeFile(
      join(scratch, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "ESNext",
          moduleResolution: "bundler",
          strict: true,
          noEmit: true,
          lib: ["ES2022", "DOM"],
          skipLibCheck: false,
          types: [],
        },
        files: ["main.ts"],
      }),
    );
    await writeFile(join(scratch, "css.d.ts"), 'declare module "*.css";\n');
    const tsconfig = JSON.parse(await readFile(join(scratch, "tsconfig.json"), "utf8"));
    tsconfig.files.push("css.d.ts");
    await writeFile(join(scratch, "tsconfig.json"), JSON.stringify(tsconfig));

    execFileSync(join(BIN, "tsc"), ["-p", scratch], { cwd: scratch, stdio: "pipe" });
    execFileSync(join(BIN, "vite"), ["build", "--logLevel", "warn", "--outDir", "out"], {
      cwd: scratch,
      stdio: "pipe",
    });
    const built = execFileSync("ls", [join(scratch, "out/assets")], { encoding: "utf8" });
    expect(built).toMatch(/\.js/);
    expect(built).toMatch(/\.css/);
  });

  it("[EMB5] the standalone embed bundle, Yjs and ProseMirror included, is at most 250 KB gzip", async () => {
    const bundle = await readFile(join(ROOT, "editor/dist/standalone/collab-editor.js"));
    const gzip = gzipSync(bundle).byteLength;
    expect(gzip).toBeLessThanOrEqual(250 * 1024);
    // The README reports the size; keep it within 10% of the truth.
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Embed the editor"));
    const stated = Number(/(\d+) KB gzip/.exec(section)?.[1]);
    expect(Math.abs(stated * 1000 - gzip) / gzip).toBeLessThan(0.1);
  });
});
