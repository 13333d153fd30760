/**
 * What the peer scenarios (bench/peers/s1-s2.ts, s3.ts, s4.ts, s5.ts) share
 * in measuring one server after another, so each does it the same way: a
 * server on a fresh place, restartable on it and always cleaned up; waiting
 * until a server has written everything; a failure kept as the first line
 * of its error; and a figure's values and notes from every server's outcome
 * (NaN and the reason for a server that failed).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchContext } from "../lib.ts";
import type { ChildServer } from "../server.ts";
import type { Peer, Place } from "./servers.ts";

// --- A server on its place -------------------------------------------------------------------

/** A peer's server running on its own place. */
export interface PeerSession {
  readonly place: Place;
  /** The server last started on the place. */
  readonly server: ChildServer;
  /**
   * Starts the server again on the same place, once the running one was
   * stopped or killed; resolves with how long that took (spawn until listening).
   */
  restart(): Promise<number>;
}

/**
 * Runs `body` with `peer` started on a fresh place, and afterwards stops
 * the server (the last one started) and disposes of the place, also when
 * `body` fails.
 */
export async function withSession<T>(
  peer: Peer,
  body: (session: PeerSession) => Promise<T>,
): Promise<T> {
  const place = await peer.place();
  let server: ChildServer | undefined;
  try {
    server = await peer.start(place);
    const session: PeerSession = {
      place,
      get server() {
        return server as ChildServer;
      },
      async restart() {
        const started = performance.now();
        server = await peer.start(place);
        return performance.now() - started;
      },
    };
    return await body(session);
  } finally {
    await server?.stop();
    await place.dispose();
  }
}

/**
 * Runs `body` as {@link withSession} does, for a scenario that records a
 * server's failure rather than ending: a failure is logged, `cleanup` runs
 * (its own failure ignored), and the reason is returned; undefined when
 * `body` succeeded.
 */
export async function attemptSession(
  context: BenchContext,
  peer: Peer,
  cleanup: () => Promise<unknown>,
  body: (session: PeerSession) => Promise<void>,
): Promise<string | undefined> {
  try {
    await withSession(peer, body);
    return undefined;
  } catch (error) {
    const reason = failureReason(error);
    context.log(`${peer.label}: failed: ${reason}`);
    await cleanup().catch(() => undefined);
    return reason;
  }
}

const UNLOAD_POLL_MS = 100;

/**
 * Waits until `server` holds no document (its clients left and it stored
 * and unloaded them), polling its statistics; false if it still holds some
 * after `timeoutMs`.
 */
export async function whenUnloaded(server: ChildServer, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await server.stats();
    if (stats.documents === 0 && stats.connections === 0) return true;
    if (performance.now() >= deadline) return false;
    await sleep(UNLOAD_POLL_MS);
  }
}

/** How long the place's size must stay unchanged to count as settled. */
const SETTLE_QUIET_MS = 1_000;
const SETTLE_POLL_MS = 250;

/**
 * Waits until `server` unloaded its documents and `place` has not changed
 * size for SETTLE_QUIET_MS (a server that writes through a queue, like
 * y-websocket's y-leveldb, may still be writing after its clients left), at
 * most `timeoutMs`; returns how long that took and whether the bound cut it
 * short, and when the size last changed (`lastChangeMs`, from the start).
 */
export async function settle(
  server: ChildServer,
  place: Place,
  timeoutMs: number,
): Promise<{ ms: number; lastChangeMs: number; timedOut: boolean }> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  let size = -1;
  let stableSince = performance.now();
  while (performance.now() < deadline) {
    const documents = (await server.stats()).documents;
    const now = await place.bytes();
    if (now !== size || documents > 0) {
      size = now;
      stableSince = performance.now();
    } else if (performance.now() - stableSince >= SETTLE_QUIET_MS) {
      return {
        ms: performance.now() - started,
        lastChangeMs: stableSince - started,
        timedOut: false,
      };
    }
    await sleep(SETTLE_POLL_MS);
  }
  return { ms: performance.now() - started, lastChangeMs: stableSince - started, timedOut: true };
}

// --- Failures and figures --------------------------------------------------------------------

/** A server's run that failed, with the reason. */
export interface Failure {
  readonly error: string;
}

/** The first line of an error's message, for a figure's note. */
export function failureReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0] ?? text;
}

const failed = (outcome: object): outcome is Failure => "error" in outcome;

/**
 * A figure's `values` and `notes` by peer id, from each server's outcome:
 * NaN and "failed: <reason>" for a failure; otherwise `pick`, with the
 * `remarks` that are not undefined joined into the note. Servers without an
 * outcome are left out.
 */
export function outcomeValues<T extends object>(
  peers: readonly Peer[],
  outcomes: ReadonlyMap<string, T | Failure>,
  pick: (outcome: T) => number,
  remarks: (outcome: T) => ReadonlyArray<string | undefined>,
): { values: Record<string, number>; notes: Record<string, string> } {
  const values: Record<string, number> = {};
  const notes: Record<string, string> = {};
  for (const peer of peers) {
    const outcome = outcomes.get(peer.id);
    if (outcome === undefined) continue;
    if (failed(outcome)) {
      values[peer.id] = Number.NaN;
      notes[peer.id] = `failed: ${outcome.error}`;
      continue;
    }
    values[peer.id] = pick(outcome);
    const said = remarks(outcome).filter((n): n is string => n !== undefined);
    if (said.length > 0) notes[peer.id] = said.join("; ");
  }
  return { values, notes };
}
