/**
 * Three builds of the editor, chosen by `--mode`:
 * - `lib`: the npm package, ES module with dependencies external (dist/lib);
 * - `standalone`: one self-contained ES module with every dependency, for plain
 *   HTML pages (the server serves it at /embed/collab-editor.js; dist/standalone);
 * - `app` (default): the app the server serves at / and /d/<name> (dist/app).
 */
import { resolve } from "node:path";
import { defineConfig } from "vite";

const here = import.meta.dirname;

export default defineConfig(({ mode }) => {
  if (mode === "lib" || mode === "standalone") {
    const lib = mode === "lib";
    return {
      build: {
        outDir: resolve(here, lib ? "dist/lib" : "dist/standalone"),
        emptyOutDir: true,
        sourcemap: true,
        minify: !lib,
        lib: {
          // The package has two more entries, `saves` and `comments`, with no DOM or Tiptap
          // code, for plain provider users (in Node too, where the main entry's stylesheet
          // import cannot load).
          entry: lib
            ? {
                index: resolve(here, "src/index.ts"),
                saves: resolve(here, "src/saves.ts"),
                comments: resolve(here, "src/comments/index.ts"),
              }
            : resolve(here, "src/index.ts"),
          formats: ["es"],
          fileName: (_format, name) => (lib ? `${name}.js` : "collab-editor.js"),
          cssFileName: "collab-editor",
        },
        // Vite leaves whitespace in ES library builds; the standalone bundle ships to browsers as is.
        rolldownOptions: lib
          ? { external: [/^@tiptap\//, /^@hocuspocus\//, /^yjs/, /^y-/, /^lib0/] }
          : { output: { minify: true } },
      },
    };
  }
  return {
    root: resolve(here, "app"),
    // The app bundles Yjs, ProseMirror and Tiptap (about 170 kB gzip); one chunk is fine.
    build: {
      outDir: resolve(here, "dist/app"),
      emptyOutDir: true,
      sourcemap: true,
      chunkSizeWarningLimit: 1024,
    },
  };
});
