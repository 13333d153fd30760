/**
 * [REL3] Bad input at volume against a live server process. Seeded malformed
 * and mutated protocol messages (SIZE.badInputMessages, over the Hocuspocus
 * protocol on `/` and the y-websocket protocol on `/yjs/<name>`), slow and
 * half-open connections, while three real clients (two Hocuspocus providers
 * and a y-websocket client) keep editing one document. The server runs as a
 * child process, so "it never exits" and its memory are observed from
 * outside: the process stays up, the real clients stay in sync, every junk
 * message either is taken or closes only its own socket, memory ends near
 * where it started, and open connections and loaded documents return to the
 * baseline once the junk is gone. Each run prints what it tried and what held.
 *
 * A failure prints its seed; replay it with FUZZ_SEED=<seed> and pin it in
 * REGRESSION_SEEDS.
 */
import { connect as tcpConnect } from "node:net";
import type { HocuspocusProvider } from "@hocuspocus/provider";
import * as decoding from "lib0/decoding";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { MessageType } from "../../server/src/protocol/messages.ts";
import { connect, synced } from "../helpers/clients.ts";
import { type Rng, random, rng, runSeed, withSeed } from "../helpers/prng.ts";
import { parseLine, type ServerProcess, spawnServer, tempDir } from "../helpers/server.ts";
import { clientFrame, Opcode, TcpWebSocket, wire } from "../helpers/wire.ts";
import { LONG, report, SIZE, timeout } from "./size.ts";

/** Seeds pinned as regression tests (add failing seeds here, with a note and their message count). */
const REGRESSION_SEEDS: ReadonlyArray<{ seed: number; note: string; messages: number }> = [
  { seed: 1, note: "baseline: first seed ever run", messages: 1_000 },
  {
    seed: 15,
    note: "crashed the server: an awareness update with trailing bytes passed the guard, then presence decoding threw",
    messages: 1_500,
  },
];

const MiB = 1024 * 1024;
/** Short, so that half-open and stalled connections are dropped within the run. */
const IDLE_TIMEOUT_MS = 3_000;
/** Small, so that a client that does not read is dropped after a few MiB rather than 64. */
const MAX_SEND_BUFFER_BYTES = 8 * MiB;
/** Junk sessions at once. */
const CONCURRENCY = 8;
/** Longest junk session, in junk messages. */
const SESSION_MESSAGES = 30;
/** Sync checks of the real clients, spread over the junk. */
const SYNC_CHECKS = 20;
/** How long a probe may go unanswered on a socket the server kept open: generous, the machine is busy. */
const PROBE_TIMEOUT_MS = 20_000;
/** How long an edit may take to reach every real client. */
const SYNC_TIMEOUT_MS = 20_000;
/** ws' close timeout: a peer that never answers the close handshake is dropped this long after. */
const WS_CLOSE_TIMEOUT_MS = 30_000;
/**
 * How much more heap may stay in use, after a full garbage collection, at the
 * end than at the start: a fixed part (compiled code, the shared document's
 * growth) and a little per junk session, for the automatic-version timer a
 * document that was changed keeps for VERSION_INTERVAL_MS (about 600 bytes;
 * measured 5 MiB over 21,000 sessions and 10 MiB over 71,000, all included).
 * A junk session that stayed in memory would keep its socket, Hocuspocus
 * connection and document: about 29 KiB of heap (1,000 held sessions
 * measured 29 MiB), so keeping even one session in twenty would exceed this.
 */
const RETAINED_HEAP_BOUND = { fixed: 8 * MiB, perSession: 1024 };
/**
 * How far resident memory may end above where it started, both measured
 * after a full garbage collection (which hands back the heap V8 grew to,
 * about 230 MiB under this load). Retaining the junk sessions of a run
 * (57 KiB of resident memory each, measured; about 7,000 for 10,000
 * messages) would add about 400 MiB, and a client whose unread replies were
 * buffered without a bound as much as it asked for (up to 400 MiB here).
 */
const RSS_GROWTH_BOUND = 128 * MiB;
/** The document the real clients edit; a tenth of the junk sessions aim at it too. */
const SHARED = "shared";

type Protocol = "hocuspocus" | "y-websocket";

/** How a junk message is made: a mutation of a valid message, or crafted whole. */
const KINDS = [
  "valid",
  "flip",
  "set",
  "insert",
  "delete",
  "truncate",
  "extend",
  "overlong-varint",
  "varint-overflow",
  "huge-length",
  "wrong-type",
  "empty",
  "random",
  "text",
  "missing-structs",
] as const;
type Kind = (typeof KINDS)[number];

/** Kinds that are valid messages: the server must take every one (or close that document). */
const VALID_KINDS: ReadonlySet<Kind> = new Set(["valid", "missing-structs"]);

/**
 * Close codes a junk message may end its socket with: malformed (1002),
 * text frame (1003), invalid payload (1007), and 4205, Hocuspocus' limit on
 * messages and documents waiting for authentication (junk with a mutated
 * address opens documents that never authenticate).
 */
const JUNK_CLOSE_CODES: ReadonlySet<number> = new Set([1002, 1003, 1007, 4205]);

/** One junk message: its bytes, sent as a binary frame or (kind "text") a text frame. */
interface Junk {
  readonly bytes: Uint8Array;
  readonly text: boolean;
}

/** How each junk message ended. */
type Outcome = "accepted" | "document closed" | "unanswered" | `closed ${number}`;

/** Counts by key, for the report. */
class Tally {
  private readonly counts = new Map<string, number>();

  add(key: string, by = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + by);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  entries(filter: (key: string) => boolean = () => true): [string, number][] {
    return [...this.counts].filter(([key]) => filter(key)).sort(([a], [b]) => a.localeCompare(b));
  }
}

/** A per-session generator, so a session's messages depend on the seed and its number only. */
function sessionRng(seed: number, session: number): Rng {
  return rng((seed + Math.imul(session + 1, 0x9e3779b1)) >>> 0);
}

/** An update inserting a word into "text" from a fresh seeded client. */
function wordUpdate(r: Rng): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = random.int(r, 1, 2 ** 31);
  doc.getText("text").insert(0, random.word(r, 2, 8));
  return Y.encodeStateAsUpdate(doc);
}

/** A valid update whose insert sits next to an item the server has never seen: Yjs keeps it pending. */
function missingStructs(r: Rng): Uint8Array {
  const base = new Y.Doc();
  base.clientID = random.int(r, 1, 2 ** 31);
  base.getText("text").insert(0, random.word(r, 3, 8));
  const next = new Y.Doc();
  next.clientID = random.int(r, 1, 2 ** 31);
  Y.applyUpdate(next, Y.encodeStateAsUpdate(base));
  next.getText("text").insert(1, random.word(r, 1, 4));
  return Y.encodeStateAsUpdate(next, Y.encodeStateVector(base));
}

/** The valid messages a session mutates, for document `name` in `protocol`. */
function baseMessages(r: Rng, protocol: Protocol, name: string): Uint8Array[] {
  const known = new Y.Doc();
  Y.applyUpdate(known, wordUpdate(r));
  const state = JSON.stringify({ user: { name: random.word(r), color: "#ff0000" } });
  const shared = [
    wire.syncStep1(name, known),
    wire.syncStep2(name, wordUpdate(r)),
    wire.update(name, wordUpdate(r)),
    wire.awareness(name, random.int(r, 1, 2 ** 31), state),
    wire.queryAwareness(name),
  ];
  if (protocol === "y-websocket") return shared.map(wire.plain);
  return [...shared, wire.auth(name), wire.stateless(name, random.word(r)), wire.close(name)];
}

/** Where the message type sits: after the address (Hocuspocus) or first (y-websocket). */
function typeOffset(protocol: Protocol, frame: Uint8Array): number {
  if (protocol === "y-websocket") return 0;
  const decoder = decoding.createDecoder(frame);
  decoding.readVarString(decoder);
  return decoder.pos;
}

function varUint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

function splice(frame: Uint8Array, at: number, remove: number, insert: ArrayLike<number>) {
  const out = new Uint8Array(frame.length - remove + insert.length);
  out.set(frame.subarray(0, at));
  out.set(insert, at);
  out.set(frame.subarray(at + remove), at + insert.length);
  return out;
}

const validUtf8 = new TextDecoder("utf-8", { fatal: true });

/** True when `bytes` are valid UTF-8 (ws closes a text frame that is not with 1007 itself). */
function isUtf8(bytes: Uint8Array): boolean {
  try {
    validUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** One seeded junk message of `kind`, made from the session's valid messages. */
function makeJunk(r: Rng, kind: Kind, protocol: Protocol, name: string, bases: Uint8Array[]): Junk {
  const base = random.pick(r, bases);
  const at = () => random.int(r, 0, base.length - 1);
  const binary = (bytes: Uint8Array): Junk => ({ bytes, text: false });
  switch (kind) {
    case "valid":
      return binary(base);
    case "flip": {
      const out = base.slice();
      for (let n = random.int(r, 1, 4); n > 0; n--) {
        const i = at();
        out[i] = (out[i] ?? 0) ^ (1 << random.int(r, 0, 7));
      }
      return binary(out);
    }
    case "set": {
      const out = base.slice();
      for (let n = random.int(r, 1, 4); n > 0; n--) out[at()] = random.int(r, 0, 255);
      return binary(out);
    }
    case "insert":
      return binary(
        splice(base, random.int(r, 0, base.length), 0, random.bytes(r, random.int(r, 1, 16))),
      );
    case "delete": {
      const from = at();
      return binary(splice(base, from, random.int(r, 1, Math.min(16, base.length - from)), []));
    }
    case "truncate":
      return binary(base.slice(0, random.int(r, 1, Math.max(1, base.length - 1))));
    case "extend":
      return binary(splice(base, base.length, 0, random.bytes(r, random.int(r, 1, 64))));
    case "overlong-varint": {
      // The same value in more bytes than needed, where a varint starts (the address length or the type).
      const i = random.bool(r) ? 0 : typeOffset(protocol, base);
      const value = base[i] ?? 0;
      const padding = Array.from({ length: random.int(r, 1, 9) }, () => 0x80);
      return binary(splice(base, i, 1, [(value & 0x7f) | 0x80, ...padding.slice(1), 0]));
    }
    case "varint-overflow":
      // More than 53 bits of varint: lib0 cannot represent it.
      return binary(splice(base, random.bool(r) ? 0 : at(), 1, [...Array(10).fill(0xff), 0x01]));
    case "huge-length":
      // A length prefix (or any varint) claiming gigabytes that never come.
      return binary(
        splice(base, at(), 1, varUint(random.pick(r, [2 ** 31, 2 ** 32 - 1, 2 ** 53 - 1]))),
      );
    case "wrong-type": {
      const out = base.slice();
      out[typeOffset(protocol, base)] = random.int(r, 0, 255);
      return binary(out);
    }
    case "empty":
      return binary(new Uint8Array(0));
    case "random":
      return binary(random.bytes(r, random.int(r, 1, 256)));
    case "text":
      return {
        bytes: random.bool(r) ? new TextEncoder().encode(random.word(r, 1, 40)) : base,
        text: true,
      };
    case "missing-structs": {
      const update = wire.update(name, missingStructs(r));
      return binary(protocol === "y-websocket" ? wire.plain(update) : update);
    }
  }
}

/** The probe: an awareness state carrying `tag`, which the server echoes to every connection of the document. */
function probe(protocol: Protocol, name: string, client: number, tag: string): Uint8Array {
  const frame = wire.awareness(name, client, JSON.stringify({ probe: tag }));
  return protocol === "y-websocket" ? wire.plain(frame) : frame;
}

/** True when `data` is a Hocuspocus Close message for document `name` (the server closed it). */
function closesDocument(data: Uint8Array, name: string): boolean {
  try {
    const decoder = decoding.createDecoder(data);
    return (
      decoding.readVarString(decoder) === name &&
      decoding.readVarUint(decoder) === MessageType.Close
    );
  } catch {
    return false;
  }
}

/** Resolves with `value` after `ms` unless cancelled: a deadline for a race, never a wait for an outcome. */
function deadline<T>(ms: number, value: T): { promise: Promise<T>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(value), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** Samples of the server's /metrics: name (with labels) to value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

interface MemorySample {
  readonly rssMiB: number;
  readonly heapMiB: number;
  readonly connections: number;
  readonly documents: number;
}

/** The server's memory and gauges from /metrics (failing with the exit, if the process is gone). */
async function memory(server: ServerProcess): Promise<MemorySample> {
  expectAlive(server);
  const values = await scrape(server.address.url).catch(async (error: unknown) => {
    // The process may be gone before its exit event came: give it a moment to say why.
    const exit = deadline(2_000, null);
    await Promise.race([server.exited, exit.promise]);
    exit.cancel();
    expectAlive(server);
    throw error;
  });
  const read = (name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`/metrics has no ${name}`);
    return value;
  };
  return {
    rssMiB: read("collab_process_process_resident_memory_bytes") / MiB,
    heapMiB: read("collab_process_nodejs_heap_size_used_bytes") / MiB,
    connections: read("collab_connections_open"),
    documents: read("collab_documents_loaded"),
  };
}

/**
 * The server's JSON log, read as it comes: counts by message and level, and
 * the lines about the documents the test watches. Scanned lines are dropped
 * so the log of a long run does not pile up in the test process.
 */
class ServerLog {
  readonly messages = new Tally();
  readonly errors = new Tally();
  private readonly watched = new Map<string, Record<string, unknown>[]>();
  private readonly lines: string[];

  constructor(server: ServerProcess) {
    this.lines = server.lines;
  }

  watch(document: string): void {
    this.watched.set(document, []);
  }

  /** The first line `msg` about watched `document` (its own, or a connection's that had it open). */
  find(document: string, msg: string): Record<string, unknown> | undefined {
    this.scan();
    return this.watched.get(document)?.find((entry) => entry.msg === msg);
  }

  scan(): void {
    for (const line of this.lines.splice(0)) {
      const entry = parseLine(line);
      if (entry === null) continue;
      const msg = String(entry.msg);
      this.messages.add(msg);
      if (entry.level === "error" || entry.level === "fatal") this.errors.add(msg.slice(0, 80));
      const documents = Array.isArray(entry.documents) ? entry.documents : [entry.document];
      for (const document of documents) {
        if (typeof document === "string") this.watched.get(document)?.push(entry);
      }
    }
  }
}

/** One of the real clients: its name, its document and how often it lost its connection. */
interface RealClient {
  readonly name: string;
  readonly doc: Y.Doc;
  reconnects: number;
}

/** Two Hocuspocus providers and a y-websocket client on the shared document, synced. */
async function realClients(wsUrl: string): Promise<RealClient[]> {
  const hocuspocus: HocuspocusProvider[] = [
    connect({ url: wsUrl, name: SHARED }),
    connect({ url: wsUrl, name: SHARED }),
  ];
  const yws = new WebsocketProvider(`${wsUrl}/yjs`, SHARED, new Y.Doc(), {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  onTestFinished(() => yws.destroy());
  await Promise.all(hocuspocus.map((provider) => synced(provider)));
  await vi.waitFor(() => expect(yws.synced).toBe(true), { timeout: 10_000, interval: 10 });
  const clients: RealClient[] = hocuspocus.map((provider, i) => {
    const client = { name: `hocuspocus ${i + 1}`, doc: provider.document, reconnects: 0 };
    provider.on("disconnect", () => {
      client.reconnects++;
    });
    return client;
  });
  const yClient = { name: "y-websocket", doc: yws.doc, reconnects: 0 };
  yws.on("connection-close", () => {
    yClient.reconnects++;
  });
  return [...clients, yClient];
}

/** Everything a run counts. */
interface Run {
  readonly seed: number;
  readonly wsUrl: string;
  /** Junk messages left to send. */
  remaining: number;
  sent: number;
  sessions: number;
  openFailures: number;
  /** protocol / kind, and protocol / kind / outcome. */
  readonly tried: Tally;
  readonly outcomes: Tally;
  /** Text frames that are not UTF-8: ws closes them with 1007 itself, before the server counts. */
  readonly wsLevel1007: { count: number };
  /** Outcomes the server must never give, described. */
  readonly unexpected: string[];
}

/**
 * One junk session: a socket on one document (the session's own, or the
 * shared one), then up to SESSION_MESSAGES rounds of one junk message and a
 * probe. The probe's echo means the server took the junk message and kept the
 * socket; a close means the junk message closed it.
 */
async function junkSession(run: Run, session: number): Promise<void> {
  const r = sessionRng(run.seed, session);
  const protocol: Protocol = random.bool(r) ? "hocuspocus" : "y-websocket";
  const name = random.int(r, 0, 9) === 0 ? SHARED : `junk-${run.seed}-${session}`;
  const bases = baseMessages(r, protocol, name);
  const probeClient = 1_000_000_000 + session;
  const ws = new WebSocket(
    protocol === "hocuspocus" ? run.wsUrl : `${run.wsUrl}/yjs/${encodeURIComponent(name)}`,
  );
  ws.on("error", () => {});
  const closed = new Promise<Outcome>((resolve) =>
    ws.once("close", (code: number) => resolve(`closed ${code}`)),
  );
  let documentClosed: () => void = () => {};
  const documentGone = new Promise<Outcome>((resolve) => {
    documentClosed = () => resolve("document closed");
  });
  let waiting: { marker: Buffer; echoed: () => void } | null = null;
  ws.on("message", (data: Buffer) => {
    if (waiting !== null && data.includes(waiting.marker)) waiting.echoed();
    if (protocol === "hocuspocus" && closesDocument(data, name)) documentClosed();
  });
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => ws.once("open", () => resolve(true))),
    closed.then(() => false),
  ]);
  if (!opened) {
    run.openFailures++;
    return;
  }
  run.sessions++;
  /** Sends `junk` (if any) and a probe; resolves with how the round ended. */
  const round = async (index: number, junk: Junk | null): Promise<Outcome> => {
    const tag = `${run.seed}.${session}.${index}`;
    const echo = new Promise<Outcome>((resolve) => {
      waiting = { marker: Buffer.from(`"probe":"${tag}"`), echoed: () => resolve("accepted") };
    });
    if (junk !== null) ws.send(junk.bytes, { binary: !junk.text });
    ws.send(probe(protocol, name, probeClient, tag));
    const late = deadline<Outcome>(PROBE_TIMEOUT_MS, "unanswered");
    const outcome = await Promise.race([echo, closed, documentGone, late.promise]);
    late.cancel();
    waiting = null;
    return outcome;
  };
  try {
    if (protocol === "hocuspocus") ws.send(wire.auth(name));
    const first = await round(0, null);
    if (first !== "accepted") {
      run.unexpected.push(`${protocol} session ${session}: opening probe ${first}`);
      return;
    }
    const length = random.int(r, 1, SESSION_MESSAGES);
    for (let index = 1; index <= length && run.remaining > 0; index++) {
      run.remaining--;
      run.sent++;
      const kind = random.pick(r, KINDS);
      const junk = makeJunk(r, kind, protocol, name, bases);
      run.tried.add(`${protocol}/${kind}`);
      const outcome = await round(index, junk);
      run.outcomes.add(`${protocol}/${kind}/${outcome}`);
      if (kind === "text" && !isUtf8(junk.bytes)) run.wsLevel1007.count++;
      const code = outcome.startsWith("closed ") ? Number(outcome.slice(7)) : null;
      if (
        outcome === "unanswered" ||
        (code !== null && !JUNK_CLOSE_CODES.has(code)) ||
        (VALID_KINDS.has(kind) && outcome !== "accepted" && outcome !== "document closed")
      ) {
        run.unexpected.push(
          `${protocol} ${kind} message ${index} of session ${session}: ${outcome}`,
        );
      }
      if (outcome !== "accepted") break;
    }
  } finally {
    ws.close();
    const gone = deadline<Outcome>(5_000, "unanswered");
    await Promise.race([closed, gone.promise]);
    gone.cancel();
    ws.terminate();
  }
}

/** The real clients' edit stream: each inserts a word every 250 ms until stopped (bounded by count). */
function editStream(
  r: Rng,
  clients: readonly RealClient[],
): { stop: () => void; edits: () => number } {
  let edits = 0;
  const timer = setInterval(() => {
    if (edits > 100_000) return;
    for (const client of clients) {
      const text = client.doc.getText("text");
      text.insert(random.int(r, 0, text.length), `${random.word(r, 1, 5)} `);
      edits++;
    }
  }, 250);
  return { stop: () => clearInterval(timer), edits: () => edits };
}

/**
 * One sync check: an edit by one real client reaches the other two. The mark
 * goes in a map of its own: in the text, the edit stream could split it.
 */
async function syncCheck(clients: readonly RealClient[], check: number): Promise<void> {
  const writer = clients[check % clients.length];
  if (writer === undefined) throw new Error("no real clients");
  const mark = `check ${check}`;
  writer.doc.getMap("checks").set(mark, writer.name);
  await vi.waitFor(
    () => {
      for (const client of clients) {
        expect(client.doc.getMap("checks").get(mark), `${client.name} misses ${mark}`).toBe(
          writer.name,
        );
      }
    },
    { timeout: SYNC_TIMEOUT_MS, interval: 20 },
  );
}

/** The results of the slow and half-open connections, for the report. */
interface SlowResults {
  readonly tried: Record<string, number>;
  readonly held: Record<string, number | string>;
}

/** The reply of a slow client's sync step 1: a sync step 2 (after the address, for Hocuspocus). */
function isSyncStep2(protocol: Protocol, payload: Uint8Array): boolean {
  const at = protocol === "hocuspocus" ? typeOffset("hocuspocus", payload) : 0;
  return payload[at] === MessageType.Sync && payload[at + 1] === 1;
}

/** The first messages a raw client sends to open `name`: auth (Hocuspocus only) and sync step 1. */
function opening(protocol: Protocol, name: string): Uint8Array[] {
  return protocol === "hocuspocus"
    ? [wire.auth(name), wire.syncStep1(name)]
    : [wire.plain(wire.syncStep1(name))];
}

function pathFor(protocol: Protocol, name: string): string {
  return protocol === "hocuspocus" ? "/" : `/yjs/${encodeURIComponent(name)}`;
}

const PROTOCOLS: readonly Protocol[] = ["hocuspocus", "y-websocket"];

/**
 * Slowloris: the upgrade request three bytes every 20 ms, then each opening
 * message as WebSocket fragments of one to three bytes, each frame written a
 * byte every 10 ms. The server must wait it out and answer.
 */
async function slowUpgrade(port: number, protocol: Protocol, name: string): Promise<number> {
  const client = await TcpWebSocket.open(port, pathFor(protocol, name), {
    trickle: { bytes: 3, everyMs: 20 },
  });
  let fragments = 0;
  for (const message of opening(protocol, name)) {
    for (let at = 0; at < message.length; ) {
      const size = Math.min(1 + (fragments % 3), message.length - at);
      const fin = at + size === message.length;
      const frame = clientFrame(message.subarray(at, at + size), {
        opcode: at === 0 ? Opcode.binary : Opcode.continuation,
        fin,
      });
      await client.trickle(frame, 1, 10);
      fragments++;
      at += size;
    }
  }
  await vi.waitFor(
    () => expect(client.frames.some((frame) => isSyncStep2(protocol, frame.payload))).toBe(true),
    { timeout: 15_000, interval: 20 },
  );
  client.destroy();
  return fragments;
}

/**
 * A message that never ends: continuation fragments of one byte every 50 ms
 * without FIN. ws keeps them (up to MAX_MESSAGE_BYTES); the core never sees a
 * message, so the idle timeout closes the socket (4408; 4508 for y-websocket).
 */
async function endlessFragments(port: number, protocol: Protocol, name: string): Promise<number> {
  const client = await TcpWebSocket.open(port, pathFor(protocol, name));
  const [first] = opening(protocol, name);
  await client.write(clientFrame((first ?? new Uint8Array(1)).subarray(0, 1), { fin: false }));
  let ended = false;
  void client.ended.then(() => {
    ended = true;
  });
  // Bounded: 600 fragments, 30 s; the server closes it within two idle periods.
  for (let i = 0; i < 600 && client.closeCode === null && !ended; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await client
      .write(clientFrame(Uint8Array.of(0), { opcode: Opcode.continuation, fin: false }))
      .catch(() => {});
  }
  expect(client.closeCode, `${protocol}: an endless message is closed by the idle timeout`).toBe(
    protocol === "hocuspocus" ? 4408 : 4508,
  );
  client.destroy();
  return 1;
}

/**
 * A half-open peer: it opens a document, then never reads, never writes and
 * never closes. The idle timeout releases its document; ws drops the socket
 * when the close handshake goes unanswered.
 */
async function halfOpen(
  port: number,
  log: ServerLog,
  protocol: Protocol,
  name: string,
): Promise<{ documentReleasedMs: number; socketReleasedMs: number }> {
  log.watch(name);
  const client = await TcpWebSocket.open(port, pathFor(protocol, name));
  for (const message of opening(protocol, name)) await client.write(clientFrame(message));
  await vi.waitFor(
    () => expect(client.frames.some((frame) => isSyncStep2(protocol, frame.payload))).toBe(true),
    { timeout: 15_000, interval: 20 },
  );
  client.pause();
  const since = Date.now();
  await vi.waitFor(() => expect(log.find(name, "document closed")).toBeDefined(), {
    timeout: 2 * IDLE_TIMEOUT_MS + 30_000,
    interval: 100,
  });
  const documentReleasedMs = Date.now() - since;
  await vi.waitFor(() => expect(log.find(name, "connection closed")).toBeDefined(), {
    timeout: 2 * IDLE_TIMEOUT_MS + WS_CLOSE_TIMEOUT_MS + 30_000,
    interval: 100,
  });
  client.destroy();
  return { documentReleasedMs, socketReleasedMs: Date.now() - since };
}

/**
 * A client that never reads its socket while asking, every 25 ms, for the
 * whole of a busy 1 MiB document another client keeps appending to. Without
 * a bound the server would buffer every answer; it must drop the client
 * once MAX_SEND_BUFFER_BYTES are waiting.
 */
async function slowReader(port: number, protocol: Protocol, name: string): Promise<number> {
  const client = await TcpWebSocket.open(port, pathFor(protocol, name));
  const [first, step1] = opening(protocol, name);
  if (first !== undefined) await client.write(clientFrame(first));
  client.pause();
  const request = clientFrame(step1 ?? first ?? new Uint8Array(0));
  let ended = false;
  void client.ended.then(() => {
    ended = true;
  });
  let requests = 0;
  // Bounded: 400 requests (400 MiB asked for), about 10 s.
  for (; requests < 400 && !ended; requests++) {
    const wrote = await client.write(request).then(
      () => true,
      () => false,
    );
    if (!wrote) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const gone = deadline(10_000, "still open");
  const end = await Promise.race([client.ended.then(() => "dropped"), gone.promise]);
  gone.cancel();
  expect(end, `${protocol}: a client that does not read is dropped`).toBe("dropped");
  expect(requests, `${protocol}: dropped before 400 MiB were asked for`).toBeLessThan(400);
  return requests;
}

/** The busy document: 1 MiB of text, then 8 KiB more every 50 ms while the slow readers run. */
async function busyDocument(wsUrl: string, name: string): Promise<{ stop: () => Promise<void> }> {
  const writer = new WebSocket(wsUrl);
  writer.on("error", () => {});
  await new Promise((resolve) => writer.once("open", resolve));
  const doc = new Y.Doc();
  doc.getText("text").insert(0, "x".repeat(MiB));
  writer.send(wire.auth(name));
  writer.send(wire.update(name, Y.encodeStateAsUpdate(doc)));
  let appends = 0;
  const timer = setInterval(() => {
    // Bounded: at most 1,200 appends (60 s).
    if (appends++ > 1_200 || writer.readyState !== WebSocket.OPEN) return;
    const before = Y.encodeStateVector(doc);
    doc.getText("text").insert(0, "y".repeat(8 * 1024));
    writer.send(wire.update(name, Y.encodeStateAsUpdate(doc, before)));
  }, 50);
  return {
    async stop() {
      clearInterval(timer);
      writer.close();
      await new Promise((resolve) => writer.once("close", resolve));
    },
  };
}

/** A connection that sends half an upgrade request and stops: Node's headersTimeout must end it. */
async function stalledUpgrade(port: number): Promise<number> {
  const socket = tcpConnect(port, "127.0.0.1");
  onTestFinished(() => {
    socket.destroy();
  });
  socket.on("error", () => {});
  socket.resume();
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n`);
  const since = Date.now();
  // Node answers an incomplete request after headersTimeout (60 s), checked every 30 s.
  const gone = deadline(150_000, false);
  const closed = await Promise.race([
    new Promise<boolean>((resolve) => socket.once("close", () => resolve(true))),
    gone.promise,
  ]);
  gone.cancel();
  expect(closed, "a stalled upgrade request is closed").toBe(true);
  return Date.now() - since;
}

/** Every slow and half-open connection, alongside the junk. */
async function slowConnections(run: Run, log: ServerLog, port: number): Promise<SlowResults> {
  const { seed } = run;
  const busy = `busy-${seed}`;
  const writer = await busyDocument(run.wsUrl, busy);
  const notReading = "client is not reading; connection dropped";
  log.scan();
  const droppedBefore = log.messages.get(notReading);
  let readerRequests = 0;
  try {
    for (const protocol of PROTOCOLS) readerRequests += await slowReader(port, protocol, busy);
  } finally {
    await writer.stop();
  }
  // Dropped for its send buffer, not for anything else (an idle timeout, a message too big).
  await vi.waitFor(
    () => {
      log.scan();
      expect(log.messages.get(notReading) - droppedBefore, "dropped for their send buffer").toBe(
        PROTOCOLS.length,
      );
    },
    { timeout: 10_000, interval: 50 },
  );
  const [halfOpenH, halfOpenY, slowH, slowY, endlessH, endlessY, stalled] = await Promise.all([
    halfOpen(port, log, "hocuspocus", `half-open-h-${seed}`),
    halfOpen(port, log, "y-websocket", `half-open-y-${seed}`),
    slowUpgrade(port, "hocuspocus", `slow-h-${seed}`),
    slowUpgrade(port, "y-websocket", `slow-y-${seed}`),
    endlessFragments(port, "hocuspocus", `endless-h-${seed}`),
    endlessFragments(port, "y-websocket", `endless-y-${seed}`),
    LONG ? stalledUpgrade(port) : Promise.resolve(null),
  ]);
  return {
    tried: {
      "slow readers": PROTOCOLS.length,
      "unread requests (1 MiB each)": readerRequests,
      "slow upgrades": 2,
      "slow fragments": slowH + slowY,
      "endless messages": endlessH + endlessY,
      "half-open": 2,
      "stalled upgrades": stalled === null ? 0 : 1,
    },
    held: {
      "slow readers dropped": PROTOCOLS.length,
      "slow upgrades answered": 2,
      "endless messages timed out": 2,
      "half-open released": 2,
      "half-open document released s":
        Math.max(halfOpenH.documentReleasedMs, halfOpenY.documentReleasedMs) / 1000,
      "half-open socket released s":
        Math.max(halfOpenH.socketReleasedMs, halfOpenY.socketReleasedMs) / 1000,
      ...(stalled === null ? {} : { "stalled upgrade closed s": stalled / 1000 }),
    },
  };
}

/**
 * Runs a full garbage collection in the server process, through the
 * inspector it was started with (`--inspect=127.0.0.1:0`, its address on
 * stderr), so that heap figures compare what is retained, not garbage.
 */
async function collectGarbage(server: ServerProcess): Promise<void> {
  const address = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(server.stderr.join(""))?.[0];
  if (address === undefined) throw new Error("the server's inspector address is not on its stderr");
  const inspector = new WebSocket(address);
  inspector.on("error", () => {});
  try {
    await new Promise((resolve, reject) => {
      inspector.once("open", resolve);
      inspector.once("close", () => reject(new Error("the inspector closed")));
    });
    const collected = new Promise<string>((resolve) =>
      inspector.on("message", (data: Buffer) => {
        if ((JSON.parse(data.toString()) as { id?: number }).id === 1) resolve("collected");
      }),
    );
    inspector.send(JSON.stringify({ id: 1, method: "HeapProfiler.collectGarbage" }));
    const late = deadline(30_000, "no answer");
    const outcome = await Promise.race([collected, late.promise]);
    late.cancel();
    expect(outcome, "garbage collection in the server").toBe("collected");
  } finally {
    inspector.close();
  }
}

function alive(server: ServerProcess): boolean {
  return server.child.exitCode === null && server.child.signalCode === null;
}

/** Fails with the exit code and the end of stderr if the server process has exited. */
function expectAlive(server: ServerProcess): void {
  const { exitCode, signalCode } = server.child;
  const stderr = server.stderr.join("").slice(-2_000);
  expect(
    alive(server),
    `the server process exited (code ${exitCode}, signal ${signalCode}): ${stderr}`,
  ).toBe(true);
}

/** The whole check with `messages` junk messages; `slow` adds the slow and half-open connections. */
async function runBadInput(seed: number, messages: number, slow: boolean): Promise<void> {
  const server = await spawnServer({
    DATA_DIR: await tempDir(),
    RATE_LIMIT_CONNECTIONS: "0",
    IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
    MAX_SEND_BUFFER_BYTES: String(MAX_SEND_BUFFER_BYTES),
    // For collectGarbage: the inspector on a free loopback port.
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --inspect=127.0.0.1:0`,
  });
  let exited = false;
  void server.exited.then(() => {
    exited = true;
  });
  const { url, wsUrl, port } = server.address;
  const log = new ServerLog(server);
  const clients = await realClients(wsUrl);
  await collectGarbage(server);
  const baseline = await memory(server);
  const startErrors = await scrape(url);
  const r = rng(seed);
  const edits = editStream(r, clients);
  const run: Run = {
    seed,
    wsUrl,
    remaining: messages,
    sent: 0,
    sessions: 0,
    openFailures: 0,
    tried: new Tally(),
    outcomes: new Tally(),
    wsLevel1007: { count: 0 },
    unexpected: [],
  };
  let peakRssMiB = baseline.rssMiB;
  let checksPassed = 0;
  let nextSession = 0;
  let junkDone = false;
  try {
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      // Bounded by the message count; a server that stopped answering ends it too.
      while (run.remaining > 0 && !exited && run.openFailures < 100) {
        await junkSession(run, nextSession++);
      }
    });
    const junk = Promise.all(workers).finally(() => {
      junkDone = true;
    });
    const checks = (async () => {
      for (let check = 0; check < SYNC_CHECKS; check++) {
        const due = ((check + 1) * messages) / (SYNC_CHECKS + 1);
        await vi.waitFor(() => expect(run.sent >= due || junkDone).toBe(true), {
          timeout: timeout(120_000, 1_200_000),
          interval: 50,
        });
        expectAlive(server);
        await syncCheck(clients, check);
        checksPassed++;
        peakRssMiB = Math.max(peakRssMiB, (await memory(server)).rssMiB);
      }
    })();
    const slowResults = slow ? slowConnections(run, log, port) : Promise.resolve(null);
    const [, , slowReport] = await Promise.all([junk, checks, slowResults]);
    expect(run.unexpected.slice(0, 20), "junk outcomes the server must never give").toEqual([]);
    expect(run.openFailures, "junk sockets the server refused to open").toBe(0);
    expect(run.sent).toBe(messages);

    // Everyone else kept syncing: one more check, then the real clients agree.
    await syncCheck(clients, SYNC_CHECKS);
    checksPassed++;
    edits.stop();
    await vi.waitFor(
      () => {
        const [first, ...rest] = clients.map((client) => ({
          text: client.doc.getText("text").toString(),
          stateVector: [...Y.encodeStateVector(client.doc)],
        }));
        for (const other of rest) expect(other).toEqual(first);
      },
      { timeout: SYNC_TIMEOUT_MS, interval: 50 },
    );

    // The junk is gone: connections and documents back to the baseline, memory near it.
    await vi.waitFor(
      async () => {
        const now = await memory(server);
        expect(now.connections, "open connections").toBe(baseline.connections);
        expect(now.documents, "loaded documents").toBe(baseline.documents);
      },
      { timeout: 2 * IDLE_TIMEOUT_MS + WS_CLOSE_TIMEOUT_MS + 30_000, interval: 250 },
    );
    await collectGarbage(server);
    const end = await memory(server);
    peakRssMiB = Math.max(peakRssMiB, end.rssMiB);
    expect(end.heapMiB - baseline.heapMiB, "heap retained after the junk, MiB").toBeLessThan(
      (RETAINED_HEAP_BOUND.fixed + run.sessions * RETAINED_HEAP_BOUND.perSession) / MiB,
    );
    expect(end.rssMiB - baseline.rssMiB, "resident memory growth, MiB").toBeLessThan(
      RSS_GROWTH_BOUND / MiB,
    );

    // Every message the guard refused was counted by the server; ws' own 1007s (text frames
    // that are not UTF-8) close the socket before our code sees them and are not counted.
    const counted = await scrape(url);
    const protocolErrors = (code: number) => {
      const key = `collab_protocol_errors_total{code="${code}"}`;
      return (counted.get(key) ?? 0) - (startErrors.get(key) ?? 0);
    };
    const observed = (code: number) =>
      run.outcomes.entries((key) => key.endsWith(`/closed ${code}`)).reduce((n, [, c]) => n + c, 0);
    expect(protocolErrors(1002)).toBe(observed(1002));
    expect(protocolErrors(1003)).toBe(observed(1003));
    expect(protocolErrors(1007)).toBe(observed(1007) - run.wsLevel1007.count);
    log.scan();

    const byOutcome = new Tally();
    for (const [key, count] of run.outcomes.entries())
      byOutcome.add(key.split("/")[2] ?? key, count);
    for (const protocol of PROTOCOLS) {
      const lines = KINDS.map((kind) => {
        const ends = run.outcomes
          .entries((key) => key.startsWith(`${protocol}/${kind}/`))
          .map(([key, count]) => `${count} ${key.split("/")[2]}`);
        return `${kind}: ${ends.join(", ")}`;
      });
      console.log(`  ${protocol} messages by kind: ${lines.join("; ")}`);
    }
    report(
      "bad input",
      {
        seed: String(seed),
        "hocuspocus messages": run.tried
          .entries((k) => k.startsWith("hocuspocus/"))
          .reduce((n, [, c]) => n + c, 0),
        "y-websocket messages": run.tried
          .entries((k) => k.startsWith("y-websocket/"))
          .reduce((n, [, c]) => n + c, 0),
        ...Object.fromEntries(
          KINDS.map((kind) => [
            kind,
            run.tried.get(`hocuspocus/${kind}`) + run.tried.get(`y-websocket/${kind}`),
          ]),
        ),
        "junk sessions": run.sessions,
        "real-client edits": edits.edits(),
        ...(slowReport?.tried ?? {}),
      },
      {
        "process alive": alive(server) ? "yes" : "no",
        "sync checks passed": checksPassed,
        ...Object.fromEntries(byOutcome.entries()),
        "real-client reconnects": clients.reduce((n, client) => n + client.reconnects, 0),
        ...(slowReport?.held ?? {}),
        "connections open start/end": `${baseline.connections}/${end.connections}`,
        "documents loaded start/end": `${baseline.documents}/${end.documents}`,
        "rss start MiB": Math.round(baseline.rssMiB),
        "rss peak MiB": Math.round(peakRssMiB),
        "rss end MiB": Math.round(end.rssMiB),
        "heap after GC start MiB": Math.round(baseline.heapMiB),
        "heap after GC end MiB": Math.round(end.heapMiB),
        "server error lines": log.errors.entries().reduce((n, [, c]) => n + c, 0),
      },
    );
    if (log.errors.entries().length > 0) console.log("  server error lines:", log.errors.entries());
  } finally {
    edits.stop();
    run.remaining = 0;
  }
}

describe("[REL3] bad input against a live server", () => {
  for (const { seed, note, messages } of REGRESSION_SEEDS) {
    it(
      `[REL3] seed ${seed} (${note}): ${messages} junk messages, others keep syncing`,
      () => withSeed("bad input", seed, () => runBadInput(seed, messages, false)),
      timeout(90_000, 300_000),
    );
  }

  it(
    `[REL3] ${SIZE.badInputMessages} seeded malformed messages over both protocols, slow and half-open connections: the process stays up, others keep syncing, memory stays bounded`,
    () => {
      const seed = runSeed();
      return withSeed("bad input", seed, () => runBadInput(seed, SIZE.badInputMessages, true));
    },
    timeout(180_000, 1_800_000),
  );
});
