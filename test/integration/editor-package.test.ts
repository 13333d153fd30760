/**
 * The editor as a package another project installs ([EMB4]): `npm pack`, then
 * a project outside the repository installs the tarball, type-checks against
 * its declarations and bundles it with Vite, CSS included. And the standalone
 * bundle stays lean.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it, onTestFinished } from "vitest";
import { ROOT } from "../helpers/server.ts";

const BIN = join(ROOT, "node_modules/.bin");

describe("the editor package", () => {
  it("[EMB4] packs, and a project of its own installs, type-checks and bundles it", {
    timeout: 120_000,
  }, async () => {
    // Outside the repository: the package's dependencies must come from its own package.json.
    const scratch = await mkdtemp(join(tmpdir(), "collab-editor-consumer-"));
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
    await writeFile(
      join(scratch, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    // From npm's cache (filled by the project's own install); the registry only for what is missing.
    execFileSync(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        `./${tarball}`,
      ],
      {
        cwd: scratch,
        stdio: "pipe",
      },
    );
    await writeFile(
      join(scratch, "main.ts"),
      `import { createCollabEditor, defineCollabEditorElement, type CollabEditorHandle } from "@collab-docs/editor";
import "@collab-docs/editor/style.css";
defineCollabEditorElement();
const handle: CollabEditorHandle = createCollabEditor(document.body, { url: "ws://localhost:1234", document: "scratch" });
handle.on("save", (state) => console.log(state.kind));
// Comments for a plain provider, from the subpath with no DOM or Tiptap code.
import { commentClient, readThreads, threadsDocumentName, type Thread } from "@collab-docs/editor/comments";
const threads: Thread[] = readThreads(handle.provider.document);
console.log(threads.length, threadsDocumentName("scratch"), commentClient(handle.provider).pending.length);
`,
    );
    // What a Vite project's client types provide for stylesheet imports.
    await writeFile(join(scratch, "css.d.ts"), 'declare module "*.css";\n');
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
          noUncheckedSideEffectImports: true,
          types: [],
        },
        files: ["main.ts", "css.d.ts"],
      }),
    );
    execFileSync(join(BIN, "tsc"), ["-p", scratch], { cwd: scratch, stdio: "pipe" });
    execFileSync(join(BIN, "vite"), ["build", "--logLevel", "warn", "--outDir", "out"], {
      cwd: scratch,
      stdio: "pipe",
    });
    const built = await readdir(join(scratch, "out/assets"));
    expect(built.some((f) => f.endsWith(".js"))).toBe(true);
    expect(built.some((f) => f.endsWith(".css"))).toBe(true);
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
