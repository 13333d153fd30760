/**
 * The real y-websocket client against a test server's `/yjs/` endpoint,
 * destroyed when the test finishes, and waits on its events.
 */
import { expect, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import type { RunningServer } from "./server.ts";

const SOON = { timeout: 10_000, interval: 10 };

/**
 * A y-websocket client for `room` (put in the URL as given: encode it).
 * BroadcastChannel is off: Node has one, and two providers in this process
 * would otherwise sync through it instead of through the server.
 */
export function yws(
  server: RunningServer,
  room: string,
  options: { doc?: Y.Doc; token?: string } = {},
): WebsocketProvider {
  const provider = new WebsocketProvider(
    `${server.address.wsUrl}/yjs`,
    room,
    options.doc ?? new Y.Doc(),
    {
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
      params: options.token === undefined ? {} : { token: options.token },
    },
  );
  onTestFinished(() => provider.destroy());
  return provider;
}

export async function ywsSynced(provider: WebsocketProvider): Promise<void> {
  await vi.waitFor(() => expect(provider.synced).toBe(true), SOON);
}

/** The close the server sent a y-websocket client when it stopped reconnecting. */
export function finalClose(provider: WebsocketProvider): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => provider.on("closed", (event) => resolve(event)));
}
