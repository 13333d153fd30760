/**
 * Attachments benchmark (`npm run bench attachments`): upload and serve
 * throughput for 1 MiB images, and what serving them does to typing.
 *
 * - Server: ours (bench/servers/ours.ts) in a child process, as
 *   bench/server.ts starts it: the default stores (LevelDB for documents,
 *   files with hard links for attachments) in a fresh DATA_DIR,
 *   LOG_LEVEL=warn, and RATE_LIMIT_CONNECTIONS=0 (startServer's default):
 *   every client comes from 127.0.0.1, so the per-address connection limit
 *   would otherwise count all of them as one visitor. Attachment limits are
 *   the defaults (25 MiB per file; 1,000 files and 1 GiB per document: each
 *   run uploads into documents of its own).
 * - Images: real PNG files of exactly 1 MiB (bench/png.ts: 512×681 pixels
 *   of noise stored uncompressed, a tEXt chunk padding to the byte); every
 *   upload carries a different label in that chunk, so every one is new
 *   bytes to the server (content-addressed: the same bytes again would only
 *   be answered from what is stored).
 * - HTTP clients: node:http with keep-alive agents in this process, one
 *   connection per request in flight, as browsers keep theirs.
 * - Typing clients: @hocuspocus/provider clients in a load-generator process
 *   of their own (bench/scale-load.ts, the scale-out benchmark's), so this
 *   process's HTTP work does not delay them: 20 writers on one document, the
 *   realistic case of a team in one document, each typing one character per
 *   update at 10 updates/s (a fast typist), for 10 s. Latency is from a
 *   writer's insert until the update is integrated in each of the 19 other
 *   clients' documents (one clock, the load generator's); p99 per run.
 *
 * Per round (5 rounds, medians reported; a warm-up round first):
 * 1. Upload: 64 distinct 1 MiB PNGs into a fresh document, 8 requests in
 *    flight, each answered 201 with type image/png → MB/s (10^6 bytes per
 *    second) from the first request sent to the last answer.
 * 2. Serve: GET those 64, 4 times over, 8 in flight, every body read to
 *    its end and its length checked → MB/s; also time to first byte.
 * 3. Typing alone, and typing while image loads and uploads run, in two
 *    ways (the order of the three turning from round to round):
 *    - the issue's figure: 50 loads in flight all the time (GETs of the
 *      round's 64 images, each picked at random; a closed loop, so as many
 *      as the server and this process can do: a saturating load);
 *    - for comparison, paced: 50 loads started together once a second
 *      (an open loop: a wave starts on time whatever the last one did);
 *    both with 2 uploads in flight (fresh images into a document of the
 *    run's own). Time to first byte is from the request sent to the
 *    response's headers arriving (Node's 'response' event; the server writes
 *    headers and body together, after reading the file), for the loads
 *    started while the typists type. The server also reports how late its
 *    event loop ran a 10 ms timer over each typing run
 *    (BENCH_EVENT_LOOP_DELAY, bench/servers/ours.ts), and every process's
 *    CPU is recorded, to tell the server's own delays from the machine's.
 *
 * Every loop is bounded in count and in time, every request has a timeout,
 * and any failed request fails the benchmark.
 *
 * Everything shares the machine's cores: the server, the load generator and
 * this process (the image clients, which read every byte the server sends).
 * On 2 cores the loads compete with the typists for CPU, which is part of
 * what the typing ratio shows. Set BENCH_SERVER_NODE_FLAGS (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof") to profile the server child.
 */
import { Agent, request as httpRequest } from "node:http";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { startLoadProcess, type WithoutId } from "./child-process.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchmarkResult,
  type Latency,
  machineTimes,
  median,
  type Row,
  round,
  row,
  spread,
  summarizeLatency,
  withTempDir,
  withTimeout,
} from "./lib.ts";
import { PngMaker } from "./png.ts";
import type { LoadReply, LoadReport, LoadRequest } from "./scale-load.ts";
import { type ChildServer, cpuMs, OURS, startServer } from "./server.ts";
import type { EventLoopDelay } from "./servers/child.ts";

const MIB = 1024 * 1024;
/** The size of every image. */
const IMAGE_BYTES = MIB;
/** Measured rounds; the medians of their figures are reported. */
const ROUNDS = 5;
/** Distinct images uploaded per round, and requests in flight while uploading. */
const UPLOADS = 64;
const UPLOAD_CONCURRENCY = 8;
/** Times each of the round's images is fetched in the serve measurement, and requests in flight. */
const SERVE_PASSES = 4;
const SERVE_CONCURRENCY = 8;
/** Typists, their pace and how long they type. */
const TYPISTS = 20;
const TYPING_RATE = 10;
const TYPING_MS = 10_000;
/** Image loads and uploads in flight while the typists type. */
const LOADS_IN_FLIGHT = 50;
const UPLOADS_IN_FLIGHT = 2;
/** In the paced variant, the 50 loads start together once every this many ms. */
const WAVE_MS = 1_000;
/** Bounds on the requests of one loaded run, besides its time. */
const MAX_LOADS_PER_RUN = 20_000;
const MAX_WAVES_PER_RUN = 60;
const MAX_UPLOADS_PER_RUN = 500;
/** The warm-up: a few uploads and fetches, and a short typing run under load. */
const WARM_UP_UPLOADS = 16;
const WARM_UP_TYPING_MS = 3_000;
/** After the clients connected, before typing; the load before typing (it reaches full speed). */
const SETTLE_MS = 500;
const RAMP_MS = 500;
/** After the clients left, before the next run: the server stores and unloads the document. */
const GAP_MS = 1_500;
/** After the last update was sent, the longest to wait for every delivery. */
const DRAIN_MS = 20_000;
const HTTP_TIMEOUT_MS = 30_000;
/** The longest one phase (all uploads of a round, all fetches) may take. */
const PHASE_TIMEOUT_MS = 120_000;
const LOAD_REQUEST_TIMEOUT_MS = 90_000;
const TARGET_RATIO = 1.5;

const LOAD = fileURLToPath(new URL("./scale-load.ts", import.meta.url));

// --- HTTP ------------------------------------------------------------------------------------

/** One request as the client saw it, times in ms from performance.now(). */
interface Exchange {
  readonly started: number;
  /** Until the response's status line and headers arrived. */
  readonly firstByteMs: number;
  /** Until the body was read to its end. */
  readonly totalMs: number;
  readonly status: number;
  /** Bytes of the body. */
  readonly size: number;
  /** Its first {@link KEPT_BYTES} as text: an upload's JSON answer or an error's message. */
  readonly text: string;
}

/** How much of a body is kept; the rest is only counted, as a browser's decoder would consume it. */
const KEPT_BYTES = 64 * 1024;

/** Sends one request and reads the whole answer; rejects on a network error or after the timeout. */
function exchange(
  agent: Agent,
  url: string,
  method: "GET" | "POST",
  body?: Buffer,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const headers: Record<string, string> =
      body === undefined
        ? {}
        : { "content-type": "image/png", "content-length": String(body.byteLength) };
    const request = httpRequest(url, { agent, method, headers }, (response) => {
      const firstByteMs = performance.now() - started;
      const kept: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        if (size < KEPT_BYTES) kept.push(chunk);
        size += chunk.byteLength;
      });
      response.on("error", reject);
      response.on("end", () =>
        resolve({
          started,
          firstByteMs,
          totalMs: performance.now() - started,
          status: response.statusCode ?? 0,
          size,
          text: Buffer.concat(kept).subarray(0, KEPT_BYTES).toString(),
        }),
      );
    });
    request.setTimeout(HTTP_TIMEOUT_MS, () =>
      request.destroy(new Error(`${method} ${url}: no answer in ${HTTP_TIMEOUT_MS} ms`)),
    );
    request.on("error", reject);
    request.end(body);
  });
}

/** An uploaded attachment as the API answers it. */
interface Uploaded {
  readonly id: string;
  readonly url: string;
  readonly type: string;
  readonly size: number;
}

/** Uploads `bytes` as a new attachment of `document`; anything but a 201 image/png fails. */
async function upload(
  agent: Agent,
  base: string,
  document: string,
  bytes: Buffer,
): Promise<{ exchange: Exchange; attachment: Uploaded }> {
  const url = `${base}/api/v1/documents/${encodeURIComponent(document)}/attachments`;
  const answer = await exchange(agent, url, "POST", bytes);
  if (answer.status !== 201) {
    throw new Error(`upload answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  }
  const attachment = JSON.parse(answer.text) as Uploaded;
  if (attachment.type !== "image/png" || attachment.size !== bytes.byteLength) {
    throw new Error(`upload stored ${attachment.type}, ${attachment.size} bytes`);
  }
  return { exchange: answer, attachment };
}

/** Fetches attachment `path`; anything but a 200 with the whole image fails. */
async function download(agent: Agent, base: string, path: string): Promise<Exchange> {
  const answer = await exchange(agent, `${base}${path}`, "GET");
  if (answer.status !== 200 || answer.size !== IMAGE_BYTES) {
    throw new Error(`GET ${path} answered ${answer.status} with ${answer.size} bytes`);
  }
  return answer;
}

/**
 * Runs `task` for i = 0, 1, ... with `concurrency` in flight, until `count`
 * were started or `until()` says stop; the first failure stops the others
 * from starting more and rejects once the ones in flight have ended.
 */
async function inPool(
  concurrency: number,
  count: number,
  until: () => boolean,
  task: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < count && !until()) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) throw failure;
  return next;
}

/** MB/s (10^6 bytes per second) of `bytes` in `ms`. */
const mbPerSecond = (bytes: number, ms: number) => bytes / 1000 / ms;

function summarize(values: readonly number[]): Latency {
  return summarizeLatency(Float64Array.from(values).sort());
}

// --- Phases ----------------------------------------------------------------------------------

/** What the HTTP side needs. */
interface Http {
  readonly server: ChildServer;
  readonly base: string;
  readonly maker: PngMaker;
  /** Keep-alive agents: one for bulk uploads and fetches, one for the 50 loads, one for uploads under load. */
  readonly bulk: Agent;
  readonly loads: Agent;
  readonly uploads: Agent;
  /** Labels of the images made so far, so no two uploads carry the same bytes. */
  made: number;
}

/** The server's user + system CPU so far, in ms. */
async function serverCpu(http: Http): Promise<number> {
  return cpuMs((await http.server.stats()).cpu);
}

function nextImage(http: Http, what: string): Buffer {
  return http.maker.make(`collab-docs bench ${what} ${http.made++} ${Math.random()}`);
}

interface UploadPhase {
  readonly document: string;
  readonly attachments: readonly Uploaded[];
  readonly ms: number;
  readonly mbPerSecond: number;
  /** Per upload: request sent to the answer read. */
  readonly latency: Latency;
  /** The server's CPU per MiB uploaded, in ms. */
  readonly serverCpuPerMib: number;
}

async function uploadPhase(http: Http, document: string, count: number): Promise<UploadPhase> {
  const files = Array.from({ length: count }, () => nextImage(http, document));
  const attachments: Uploaded[] = new Array(count);
  const times: number[] = [];
  const cpuBefore = await serverCpu(http);
  const started = performance.now();
  await withTimeout(
    inPool(
      UPLOAD_CONCURRENCY,
      count,
      () => false,
      async (i) => {
        const { exchange: answer, attachment } = await upload(
          http.bulk,
          http.base,
          document,
          files[i] as Buffer,
        );
        attachments[i] = attachment;
        times.push(answer.totalMs);
      },
    ),
    PHASE_TIMEOUT_MS,
    `${count} uploads`,
  );
  const ms = performance.now() - started;
  return {
    document,
    attachments,
    ms,
    mbPerSecond: mbPerSecond(count * IMAGE_BYTES, ms),
    latency: summarize(times),
    serverCpuPerMib: ((await serverCpu(http)) - cpuBefore) / ((count * IMAGE_BYTES) / MIB),
  };
}

interface ServePhase {
  readonly requests: number;
  readonly ms: number;
  readonly mbPerSecond: number;
  readonly firstByte: Latency;
  readonly total: Latency;
  /** The server's CPU per MiB served, in ms. */
  readonly serverCpuPerMib: number;
}

async function servePhase(http: Http, attachments: readonly Uploaded[]): Promise<ServePhase> {
  const count = attachments.length * SERVE_PASSES;
  const firstBytes: number[] = [];
  const totals: number[] = [];
  const cpuBefore = await serverCpu(http);
  const started = performance.now();
  await withTimeout(
    inPool(
      SERVE_CONCURRENCY,
      count,
      () => false,
      async (i) => {
        const answer = await download(
          http.bulk,
          http.base,
          (attachments[i % attachments.length] as Uploaded).url,
        );
        firstBytes.push(answer.firstByteMs);
        totals.push(answer.totalMs);
      },
    ),
    PHASE_TIMEOUT_MS,
    `${count} fetches`,
  );
  const ms = performance.now() - started;
  return {
    requests: count,
    ms,
    mbPerSecond: mbPerSecond(count * IMAGE_BYTES, ms),
    firstByte: summarize(firstBytes),
    total: summarize(totals),
    serverCpuPerMib: ((await serverCpu(http)) - cpuBefore) / ((count * IMAGE_BYTES) / MIB),
  };
}

/** The HTTP load beside the typists: loads and uploads, until told to stop. */
interface Background {
  /** Ends the loops and resolves once every request in flight has ended. */
  stop(): Promise<BackgroundReport>;
}

interface BackgroundReport {
  readonly loads: number;
  readonly uploads: number;
  /** Time to first byte of every load, with the time it was sent. */
  readonly firstBytes: ReadonlyArray<{ readonly started: number; readonly ms: number }>;
  readonly ms: number;
  readonly loadMbPerSecond: number;
  readonly uploadMbPerSecond: number;
}

/**
 * Starts `size` tasks together every `everyMs`, whether or not the previous
 * ones ended (open loop), until `waves` were started or `until()` says stop;
 * resolves with the tasks started once all have ended, or rejects with the
 * first failure.
 */
async function inWaves(
  size: number,
  everyMs: number,
  waves: number,
  until: () => boolean,
  task: () => Promise<void>,
): Promise<number> {
  const started = performance.now();
  const tasks: Array<Promise<void>> = [];
  let failure: unknown;
  for (let wave = 0; wave < waves && failure === undefined; wave++) {
    const wait = started + wave * everyMs - performance.now();
    if (wait > 0) await sleep(wait);
    if (until()) break;
    for (let i = 0; i < size; i++) {
      tasks.push(
        task().catch((error: unknown) => {
          failure ??= error;
        }),
      );
    }
  }
  await Promise.all(tasks);
  if (failure !== undefined) throw failure;
  return tasks.length;
}

/** How the image loads beside the typists come: always 50 in flight, or 50 at once every second. */
type Pace = "closed" | "waves";

function startBackground(
  http: Http,
  images: readonly Uploaded[],
  document: string,
  pace: Pace,
): Background {
  let stopped = false;
  const until = () => stopped;
  const firstBytes: Array<{ started: number; ms: number }> = [];
  const started = performance.now();
  const load = async () => {
    const image = images[Math.floor(Math.random() * images.length)] as Uploaded;
    const answer = await download(http.loads, http.base, image.url);
    firstBytes.push({ started: answer.started, ms: answer.firstByteMs });
  };
  const loads =
    pace === "closed"
      ? inPool(LOADS_IN_FLIGHT, MAX_LOADS_PER_RUN, until, load)
      : inWaves(LOADS_IN_FLIGHT, WAVE_MS, MAX_WAVES_PER_RUN, until, load);
  const uploads = inPool(UPLOADS_IN_FLIGHT, MAX_UPLOADS_PER_RUN, until, async () => {
    await upload(http.uploads, http.base, document, nextImage(http, document));
  });
  // Caught here, so a failure waits for stop() instead of going unhandled meanwhile.
  const all = Promise.allSettled([loads, uploads]);
  return {
    async stop() {
      stopped = true;
      const [loaded, uploaded] = await withTimeout(
        all,
        HTTP_TIMEOUT_MS * 2,
        "the image load to end",
      );
      const ms = performance.now() - started;
      if (loaded.status === "rejected") throw loaded.reason;
      if (uploaded.status === "rejected") throw uploaded.reason;
      return {
        loads: loaded.value,
        uploads: uploaded.value,
        firstBytes,
        ms,
        loadMbPerSecond: mbPerSecond(loaded.value * IMAGE_BYTES, ms),
        uploadMbPerSecond: mbPerSecond(uploaded.value * IMAGE_BYTES, ms),
      };
    },
  };
}

// --- Typing ----------------------------------------------------------------------------------

interface LoadGenerator {
  request(command: WithoutId<LoadRequest>): Promise<LoadReply>;
  stop(): Promise<void>;
}

/** One typing run, alone or beside the image load. */
interface TypingRun {
  /** Typing alone; beside the closed-loop image load (the figure); beside waves of loads. */
  readonly kind: "alone" | "loaded" | "waves";
  readonly document: string;
  readonly report: LoadReport;
  /** Only for a loaded run: the image load and its first bytes while the typists typed. */
  readonly background: Omit<BackgroundReport, "firstBytes"> | null;
  readonly firstByte: Latency | null;
  /** User + system CPU over the run, in ms: the server, this process (the image clients). */
  readonly serverCpuMs: number;
  readonly benchCpuMs: number;
  /** How late the server's event loop ran its timer over the run. */
  readonly serverEventLoopDelay: EventLoopDelay | null;
  /** CPU cores busy on average over the run (all processes, the kernel included). */
  readonly machineCores: number;
  readonly wallMs: number;
}

async function typingRun(
  load: LoadGenerator,
  server: ChildServer,
  http: Http,
  kind: TypingRun["kind"],
  document: string,
  images: readonly Uploaded[],
  durationMs: number,
): Promise<TypingRun> {
  const connected = await load.request({
    type: "connect",
    urls: [server.wsUrl],
    document,
    writers: TYPISTS,
    readers: 0,
  });
  if (connected.type !== "connected") throw new Error(`unexpected reply ${connected.type}`);
  try {
    await sleep(SETTLE_MS);
    const background =
      kind === "alone"
        ? null
        : startBackground(
            http,
            images,
            `${document}-uploads`,
            kind === "loaded" ? "closed" : "waves",
          );
    // The server's stats also end its event-loop delay interval: `after` holds the run's.
    const sample = async () => {
      const stats = await server.stats();
      return {
        server: cpuMs(stats.cpu),
        eventLoopDelay: stats.eventLoopDelay ?? null,
        bench: cpuMs(process.cpuUsage()),
        machine: machineTimes(),
      };
    };
    let before: Awaited<ReturnType<typeof sample>>;
    let after: typeof before;
    let reply: LoadReply;
    let from: number;
    let to: number;
    try {
      if (background !== null) await sleep(RAMP_MS);
      before = await sample();
      from = performance.now();
      reply = await load.request({
        type: "run",
        pace: { kind: "rate", rate: TYPING_RATE },
        durationMs,
        drainMs: DRAIN_MS,
      });
      to = performance.now();
      after = await sample();
    } catch (error) {
      await background?.stop().catch(() => {});
      throw error;
    }
    const loaded = await background?.stop();
    if (reply.type !== "report") throw new Error(`unexpected reply ${reply.type}`);
    let firstByte: Latency | null = null;
    let backgroundReport: TypingRun["background"] = null;
    if (loaded !== undefined) {
      const { firstBytes, ...rest } = loaded;
      backgroundReport = rest;
      // The loads sent while the typists typed (the ramp before and the drain after left out).
      firstByte = summarize(
        firstBytes.filter(({ started }) => started >= from && started <= to).map(({ ms }) => ms),
      );
    }
    return {
      kind,
      document,
      report: reply.report,
      background: backgroundReport,
      firstByte,
      serverCpuMs: after.server - before.server,
      serverEventLoopDelay: after.eventLoopDelay,
      benchCpuMs: after.bench - before.bench,
      machineCores:
        ((after.machine.busy - before.machine.busy) /
          (after.machine.total - before.machine.total)) *
        cpus().length,
      wallMs: to - from,
    };
  } finally {
    await load.request({ type: "close" });
    await sleep(GAP_MS);
  }
}

function describeDelay(delay: EventLoopDelay | null): string {
  if (delay === null) return "not sampled";
  return `p50 ${round(delay.p50)} / p99 ${round(delay.p99)} / max ${round(delay.max)} ms`;
}

function describeTyping(run: TypingRun): string {
  const r = run.report;
  const background =
    run.background === null || run.firstByte === null
      ? ""
      : `; beside ${run.background.loads} loads (${round(run.background.loadMbPerSecond)} MB/s), first byte p50 ${round(run.firstByte.p50)} / p99 ${round(run.firstByte.p99)} ms over ${run.firstByte.count}, ${run.background.uploads} uploads (${round(run.background.uploadMbPerSecond)} MB/s)`;
  return `typing p50 ${round(r.latency.p50)} / p99 ${round(r.latency.p99)} / max ${round(r.latency.max)} ms (${r.delivered}/${r.expectedDeliveries}${r.complete ? "" : ", INCOMPLETE"}, sent at most ${round(r.maxSendLagMs)} ms late)${background}; CPU server ${Math.round(run.serverCpuMs)} ms, load generator ${Math.round(r.cpuMs)} ms, image clients ${Math.round(run.benchCpuMs)} ms, machine ${round(run.machineCores)} cores; server event-loop delay ${describeDelay(run.serverEventLoopDelay)}`;
}

// --- The benchmark ---------------------------------------------------------------------------

interface Round {
  readonly upload: UploadPhase;
  readonly serve: ServePhase;
  readonly alone: TypingRun;
  readonly loaded: TypingRun;
  readonly waves: TypingRun;
}

async function measure(
  context: BenchContext,
  server: ChildServer,
  load: LoadGenerator,
): Promise<{ rounds: Round[]; warmUp: unknown }> {
  const agent = (maxSockets: number) => new Agent({ keepAlive: true, maxSockets });
  const http: Http = {
    server,
    base: server.wsUrl.replace(/^ws:/, "http:"),
    maker: new PngMaker(IMAGE_BYTES),
    bulk: agent(Math.max(UPLOAD_CONCURRENCY, SERVE_CONCURRENCY)),
    loads: agent(LOADS_IN_FLIGHT),
    uploads: agent(UPLOADS_IN_FLIGHT),
    made: 0,
  };
  try {
    context.log("warm-up: uploads, fetches, typing beside the image load");
    const warmUpload = await uploadPhase(http, "warm-up-images", WARM_UP_UPLOADS);
    const warmServe = await servePhase(http, warmUpload.attachments);
    const warmTyping = await typingRun(
      load,
      server,
      http,
      "loaded",
      "warm-up-typing",
      warmUpload.attachments,
      WARM_UP_TYPING_MS,
    );
    context.log(
      `warm-up: upload ${round(warmUpload.mbPerSecond)} MB/s, serve ${round(warmServe.mbPerSecond)} MB/s, ${describeTyping(warmTyping)}`,
    );
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const step = `round ${r + 1}/${ROUNDS}`;
      const uploaded = await uploadPhase(http, `images-${r}`, UPLOADS);
      context.log(
        `${step}: upload ${round(uploaded.mbPerSecond)} MB/s (${UPLOADS} × 1 MiB in ${Math.round(uploaded.ms)} ms; per upload p50 ${round(uploaded.latency.p50)} / p99 ${round(uploaded.latency.p99)} ms; server CPU ${round(uploaded.serverCpuPerMib)} ms per MiB)`,
      );
      const served = await servePhase(http, uploaded.attachments);
      context.log(
        `${step}: serve ${round(served.mbPerSecond)} MB/s (${served.requests} fetches in ${Math.round(served.ms)} ms; first byte p50 ${round(served.firstByte.p50)} / p99 ${round(served.firstByte.p99)} ms; server CPU ${round(served.serverCpuPerMib)} ms per MiB)`,
      );
      // The order turns round by round, so no kind always runs first or last.
      const kinds: Array<TypingRun["kind"]> = ["alone", "loaded", "waves"];
      const order = [...kinds.slice(r % 3), ...kinds.slice(0, r % 3)];
      const runs: Partial<Record<TypingRun["kind"], TypingRun>> = {};
      for (const kind of order) {
        const run = await typingRun(
          load,
          server,
          http,
          kind,
          `typing-${r}-${kind}`,
          uploaded.attachments,
          TYPING_MS,
        );
        runs[kind] = run;
        context.log(`${step}, typing ${kind}: ${describeTyping(run)}`);
      }
      rounds.push({
        upload: uploaded,
        serve: served,
        alone: runs.alone as TypingRun,
        loaded: runs.loaded as TypingRun,
        waves: runs.waves as TypingRun,
      });
    }
    return {
      rounds,
      warmUp: {
        uploadMbPerSecond: warmUpload.mbPerSecond,
        serveMbPerSecond: warmServe.mbPerSecond,
        typing: warmTyping,
      },
    };
  } finally {
    http.bulk.destroy();
    http.loads.destroy();
    http.uploads.destroy();
  }
}

function buildRows(rounds: readonly Round[]): Row[] {
  const values = (pick: (r: Round) => number) => rounds.map(pick);
  const med = (pick: (r: Round) => number) => median(values(pick));
  const runsOf = (kind: TypingRun["kind"]) => (r: Round) => r[kind];
  const typingP99 = (run: TypingRun) => run.report.latency.p99;
  const p99Of = (kind: TypingRun["kind"]) => med((r) => typingP99(runsOf(kind)(r)));
  const alone = p99Of("alone");
  const incomplete = rounds
    .flatMap((r) => [r.alone, r.loaded, r.waves])
    .filter((t) => !t.report.complete);
  const delivered =
    incomplete.length === 0
      ? "every update reached every client"
      : `${incomplete.length} runs INCOMPLETE`;
  const background = (
    kind: TypingRun["kind"],
    pick: (b: NonNullable<TypingRun["background"]>) => number,
  ) =>
    med((r) => {
      const run = runsOf(kind)(r);
      return run.background === null ? Number.NaN : pick(run.background);
    });
  const firstByte = (kind: TypingRun["kind"], pick: (l: Latency) => number) =>
    med((r) => {
      const run = runsOf(kind)(r);
      return run.firstByte === null ? Number.NaN : pick(run.firstByte);
    });
  const delay = (kind: TypingRun["kind"], pick: (d: EventLoopDelay) => number) =>
    med((r) => {
      const run = runsOf(kind)(r);
      return run.serverEventLoopDelay === null ? Number.NaN : pick(run.serverEventLoopDelay);
    });
  const cpu = (kind: TypingRun["kind"]) =>
    `machine busy ${round(med((r) => runsOf(kind)(r).machineCores))} of ${cpus().length} cores (server ${round(med((r) => runsOf(kind)(r).serverCpuMs / runsOf(kind)(r).wallMs))}, image clients ${round(med((r) => runsOf(kind)(r).benchCpuMs / runsOf(kind)(r).wallMs))}, typists ${round(med((r) => runsOf(kind)(r).report.cpuMs / runsOf(kind)(r).wallMs))})`;
  const ratios = (kind: TypingRun["kind"]) =>
    rounds.map((r) => round(typingP99(runsOf(kind)(r)) / typingP99(r.alone))).join(", ");
  const uploadsBeside = (kind: TypingRun["kind"]) =>
    `plus ${UPLOADS_IN_FLIGHT} uploads in flight (${round(background(kind, (b) => b.uploadMbPerSecond))} MB/s)`;
  return [
    row({
      name: `upload: ${UPLOADS} distinct 1 MiB PNGs, ${UPLOAD_CONCURRENCY} in flight, one document`,
      value: med((r) => r.upload.mbPerSecond),
      unit: "MB/s",
      better: "higher",
      note: `10^6 bytes/s, first request to last answer; each upload stored durably (fsynced) before its 201; server CPU ${round(med((r) => r.upload.serverCpuPerMib))} ms per MiB; per upload p50 ${round(med((r) => r.upload.latency.p50))} / p99 ${round(med((r) => r.upload.latency.p99))} ms; ${spread(values((r) => r.upload.mbPerSecond))}`,
    }),
    row({
      name: `serve: those ${UPLOADS} fetched ${SERVE_PASSES} times, ${SERVE_CONCURRENCY} in flight`,
      value: med((r) => r.serve.mbPerSecond),
      unit: "MB/s",
      better: "higher",
      note: `whole bodies read; server CPU ${round(med((r) => r.serve.serverCpuPerMib))} ms per MiB; first byte p50 ${round(med((r) => r.serve.firstByte.p50))} / p99 ${round(med((r) => r.serve.firstByte.p99))} ms; ${spread(values((r) => r.serve.mbPerSecond))}`,
    }),
    row({
      name: `typing latency p99 without uploads: ${TYPISTS} clients on one document, ${TYPING_RATE} updates/s each`,
      value: alone,
      unit: "ms",
      better: "lower",
      note: `${TYPING_MS / 1000} s; insert → integrated in each of the ${TYPISTS - 1} others; p50 ${round(med((r) => r.alone.report.latency.p50))} ms; median of the runs' p99s, ${spread(values((r) => typingP99(r.alone)))}; server event-loop delay p99 ${round(delay("alone", (d) => d.p99))} ms; ${cpu("alone")}`,
    }),
    row({
      name: `${LOADS_IN_FLIGHT} image loads in flight all the time (closed loop) while they type: time to first byte p99`,
      value: firstByte("loaded", (l) => l.p99),
      unit: "ms",
      better: "lower",
      note: `request sent → headers in; loads of the round's ${UPLOADS} images, ${round(background("loaded", (b) => b.loadMbPerSecond))} MB/s served, ${uploadsBeside("loaded")}; p50 ${round(firstByte("loaded", (l) => l.p50))} ms, ${Math.round(firstByte("loaded", (l) => l.count))} loads per run; ${spread(values((r) => r.loaded.firstByte?.p99 ?? Number.NaN))}`,
    }),
    row({
      name: "  typing latency p99 beside them",
      value: p99Of("loaded"),
      unit: "ms",
      better: "lower",
      note: `p50 ${round(med((r) => r.loaded.report.latency.p50))} ms; ${spread(values((r) => typingP99(r.loaded)))}; ${delivered}`,
    }),
    row({
      name: "  typing p99 with ÷ without uploads",
      value: p99Of("loaded") / alone,
      unit: "×",
      better: "lower",
      target: { op: "<=", value: TARGET_RATIO },
      note: `ratio of the two medians; per round ${ratios("loaded")}; server event-loop delay p99 ${round(delay("loaded", (d) => d.p99))} ms, max ${round(delay("loaded", (d) => d.max))} ms; ${cpu("loaded")}; load average ${round(loadavg()[0] ?? Number.NaN)} at the end`,
    }),
    row({
      name: `${LOADS_IN_FLIGHT} image loads started together once a second while they type: time to first byte p99`,
      value: firstByte("waves", (l) => l.p99),
      unit: "ms",
      better: "lower",
      note: `paced (open loop), ${round(background("waves", (b) => b.loadMbPerSecond))} MB/s served, ${uploadsBeside("waves")}; p50 ${round(firstByte("waves", (l) => l.p50))} ms; ${spread(values((r) => r.waves.firstByte?.p99 ?? Number.NaN))}`,
    }),
    row({
      name: "  typing latency p99 beside them",
      value: p99Of("waves"),
      unit: "ms",
      better: "lower",
      note: `p50 ${round(med((r) => r.waves.report.latency.p50))} ms; ${spread(values((r) => typingP99(r.waves)))}`,
    }),
    row({
      name: "  typing p99 with ÷ without uploads",
      value: p99Of("waves") / alone,
      unit: "×",
      better: "lower",
      note: `not the issue's figure (its loads never pause), for comparison: the same loads paced; per round ${ratios("waves")}; server event-loop delay p99 ${round(delay("waves", (d) => d.p99))} ms, max ${round(delay("waves", (d) => d.max))} ms; ${cpu("waves")}`,
    }),
  ];
}

async function runAttachments(context: BenchContext): Promise<BenchmarkResult> {
  const loadBefore = loadavg();
  if (loadBefore[0] !== undefined && loadBefore[0] > 0.5 * cpus().length) {
    context.log(
      `warning: load average ${round(loadBefore[0])} on ${cpus().length} cores; other work skews these timings`,
    );
  }
  return withTempDir("attachments", async (dir) => {
    context.log("starting our server and the load generator");
    const server = await startServer("our server", OURS, {
      DATA_DIR: dir,
      LOG_LEVEL: "warn",
      BENCH_EVENT_LOOP_DELAY: "1",
    });
    let load: LoadGenerator | undefined;
    try {
      const child = await startLoadProcess<LoadRequest, LoadReply>(LOAD);
      load = {
        request: (command) => child.request(command, LOAD_REQUEST_TIMEOUT_MS),
        stop: child.stop,
      };
      const { rounds, warmUp } = await measure(context, server, load);
      return {
        rows: buildRows(rounds),
        details: {
          imageBytes: IMAGE_BYTES,
          uploads: UPLOADS,
          uploadConcurrency: UPLOAD_CONCURRENCY,
          servePasses: SERVE_PASSES,
          serveConcurrency: SERVE_CONCURRENCY,
          typists: TYPISTS,
          typingRate: TYPING_RATE,
          typingMs: TYPING_MS,
          loadsInFlight: LOADS_IN_FLIGHT,
          uploadsInFlight: UPLOADS_IN_FLIGHT,
          clients:
            "images: node:http keep-alive agents in the benchmark process; typists: one load-generator process (bench/scale-load.ts), @hocuspocus/provider",
          loadAverageBefore: loadBefore.map(round),
          loadAverageAfter: loadavg().map(round),
          rounds: rounds.map((r) => ({
            upload: { ...r.upload, attachments: r.upload.attachments.length },
            serve: r.serve,
            alone: r.alone,
            loaded: r.loaded,
            waves: r.waves,
          })),
          warmUp,
        },
      };
    } finally {
      await load?.stop();
      await server.stop();
    }
  });
}

/** `npm run bench attachments`. */
export const attachmentsBenchmark: Benchmark = {
  id: "attachments",
  title: "Attachments: 1 MiB images uploaded and served, and typing beside them",
  run: runAttachments,
};
