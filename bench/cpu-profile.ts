/**
 * A page's CPU profile while it does something (Chrome DevTools Protocol
 * `Profiler`), and a summary of it in source terms: the app is one minified
 * bundle, so every sampled position is mapped through the bundle's source map
 * (Node's `SourceMap`) to the file and function it came from.
 *
 * Used by the editor benchmark when `BENCH_EDITOR_PROFILE` names a file
 * (`BENCH_EDITOR_PROFILE=/tmp/typing.cpuprofile npm run bench editor`): it
 * profiles the typing into the large document, writes the raw profile there
 * (DevTools opens it) and the summary beside it (`.txt`).
 */
import { writeFile } from "node:fs/promises";
import { SourceMap, type SourceMapPayload } from "node:module";
import type { CDPSession, Page } from "playwright-core";

/** The parts of a CDP `Profiler.Profile` used here. */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber: number;
  };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** Chromium's own counters of the renderer's main thread (CDP `Performance.getMetrics`), in ms. */
export type RendererTimes = Record<"task" | "script" | "style" | "layout", number>;

async function rendererTimes(cdp: CDPSession): Promise<RendererTimes> {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (name: string) => (metrics.find((m) => m.name === name)?.value ?? 0) * 1000;
  return {
    task: get("TaskDuration"),
    script: get("ScriptDuration"),
    style: get("RecalcStyleDuration"),
    layout: get("LayoutDuration"),
  };
}

/**
 * Profiles `page` (1 sample every `intervalUs`) while `body` runs; returns the profile and
 * how long the renderer's main thread spent in tasks, script, style and layout meanwhile.
 */
export async function profileWhile(
  page: Page,
  body: () => Promise<void>,
  intervalUs = 200,
): Promise<{ profile: Profile; times: RendererTimes }> {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send("Performance.enable");
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: intervalUs });
    const before = await rendererTimes(cdp);
    await cdp.send("Profiler.start");
    await body();
    const { profile } = await cdp.send("Profiler.stop");
    const after = await rendererTimes(cdp);
    return {
      profile: profile as Profile,
      times: {
        task: after.task - before.task,
        script: after.script - before.script,
        style: after.style - before.style,
        layout: after.layout - before.layout,
      },
    };
  } finally {
    await cdp.detach();
  }
}

/** Where a sampled position came from: source file (shortened) and function. */
interface Origin {
  readonly file: string;
  readonly fn: string;
}

/** "prosemirror-view" for a dependency's file, the path under the repository for ours. */
function shortFile(source: string): string {
  const modules = source.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = source.slice(modules + "node_modules/".length).split("/");
    const name = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
    return `${name ?? source}: ${rest.at(-1)}`;
  }
  // Ours: the map names them relative to the app's root (editor/app), e.g. ../../../src/x.ts.
  const ours = /(?:^|\/)src\/(.*)$/.exec(source);
  return ours === null ? source : `editor/src/${ours[1]}`;
}

/**
 * Summarises `profile` per keystroke (`keystrokes` of them): self time by
 * package or file, self time by function, and inclusive time of our own
 * (editor/src) functions; the bundle's source maps are fetched from `origin`.
 */
export async function summarizeProfile(
  profile: Profile,
  times: RendererTimes,
  keystrokes: number,
  origin: string,
): Promise<string> {
  const maps = new Map<string, SourceMap | null>();
  for (const node of profile.nodes) {
    const url = node.callFrame.url;
    if (!url.startsWith(origin) || maps.has(url)) continue;
    maps.set(url, null);
    try {
      const response = await fetch(`${url}.map`);
      if (response.ok) maps.set(url, new SourceMap((await response.json()) as SourceMapPayload));
    } catch {
      // No map: positions stay in the bundle.
    }
  }
  const origins = new Map<number, Origin>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
    const { url, functionName, lineNumber, columnNumber } = node.callFrame;
    const map = maps.get(url);
    const entry = map?.findEntry(lineNumber, columnNumber);
    if (entry !== undefined && "originalSource" in entry) {
      const file = shortFile(entry.originalSource);
      const name =
        ("name" in entry && typeof entry.name === "string" ? entry.name : null) ?? functionName;
      origins.set(node.id, {
        file,
        fn: `${name === "" ? "(anonymous)" : name} (${file}:${entry.originalLine + 1})`,
      });
    } else {
      const name = functionName === "" ? "(anonymous)" : functionName;
      origins.set(node.id, { file: url === "" ? name : url, fn: name });
    }
  }
  const selfByFile = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  const totalOurs = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  let idle = 0;
  for (let i = 0; i < samples.length; i++) {
    // A sample's time is the delta to the next one.
    const dt = (deltas[i + 1] ?? 0) / 1000;
    const id = samples[i] as number;
    const leaf = origins.get(id);
    if (leaf === undefined) continue;
    total += dt;
    if (leaf.fn === "(idle)") {
      idle += dt;
      continue;
    }
    selfByFile.set(leaf.file, (selfByFile.get(leaf.file) ?? 0) + dt);
    selfByFn.set(leaf.fn, (selfByFn.get(leaf.fn) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const o = origins.get(at);
      if (o === undefined || !o.file.startsWith("editor/src/") || seen.has(o.fn)) continue;
      seen.add(o.fn);
      totalOurs.set(o.fn, (totalOurs.get(o.fn) ?? 0) + dt);
    }
  }
  const per = (ms: number) => (ms / keystrokes).toFixed(3).padStart(8);
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${per(v)}  ${k}`)
      .join("\n");
  return [
    `CPU profile over ${keystrokes} keystrokes: ${(total / 1000).toFixed(2)} s sampled, ${((total - idle) / keystrokes).toFixed(2)} ms busy per keystroke (idle ${(idle / keystrokes).toFixed(2)} ms)`,
    `renderer main thread per keystroke (Performance.getMetrics): tasks ${per(times.task)}, script ${per(times.script)}, style ${per(times.style)}, layout ${per(times.layout)} ms`,
    "",
    "self time, ms per keystroke, by package or file:",
    top(selfByFile, 25),
    "",
    "self time, ms per keystroke, by function:",
    top(selfByFn, 40),
    "",
    "inclusive time of our own functions (editor/src), ms per keystroke:",
    top(totalOurs, 25),
    "",
  ].join("\n");
}

/** Writes `profile` to `file` and its summary to `file` with `.txt` appended; returns the summary. */
export async function saveProfile(
  { profile, times }: { profile: Profile; times: RendererTimes },
  file: string,
  keystrokes: number,
  origin: string,
): Promise<string> {
  const summary = await summarizeProfile(profile, times, keystrokes, origin);
  await writeFile(file, JSON.stringify(profile));
  await writeFile(`${file}.txt`, summary);
  return summary;
}
