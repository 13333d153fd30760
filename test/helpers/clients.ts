/**
 * Real clients: the stock @hocuspocus/provider over a real WebSocket, plus
 * waits on its events. Every client is destroyed when the test finishes.
 */
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { expect, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";

export interface ClientOptions {
  readonly url: string;
  readonly name: string;
  readonly document?: Y.Doc;
  /** A token, or a function the provider asks for one on every (re)connect. */
  readonly token?: string | (() => Promise<string>);
  /** Share one socket between providers. */
  readonly socket?: HocuspocusProviderWebsocket;
}

/** A provider connected to `url` for document `name` (Node 24's own WebSocket unless `socket` is given). */
export function connect(options: ClientOptions): HocuspocusProvider {
  const document = options.document ?? new Y.Doc();
  const provider = options.socket
    ? new HocuspocusProvider({
        websocketProvider: options.socket,
        name: options.name,
        document,
        token: options.token ?? null,
      })
    : new HocuspocusProvider({
        url: options.url,
        name: options.name,
        document,
        token: options.token ?? null,
      });
  if (options.socket) provider.attach();
  onTestFinished(() => provider.destroy());
  return provider;
}

/** One socket that several providers can share. */
export function sharedSocket(url: string): HocuspocusProviderWebsocket {
  const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket });
  onTestFinished(() => socket.destroy());
  return socket;
}

/** Waits until the provider has synced with the server. */
export async function synced(provider: HocuspocusProvider, timeout = 10_000): Promise<void> {
  await vi.waitFor(() => expect(provider.isSynced).toBe(true), { timeout, interval: 5 });
}

/** Waits until the server has acknowledged every change the provider sent (it is stored). */
export async function acknowledged(provider: HocuspocusProvider, timeout = 10_000): Promise<void> {
  await vi.waitFor(
    () => {
      expect(provider.isSynced).toBe(true);
      expect(provider.unsyncedChanges).toBe(0);
    },
    { timeout, interval: 5 },
  );
}

/** Resolves with the reason of the first permission-denied message for this provider. */
export function refusal(provider: HocuspocusProvider): Promise<string> {
  return new Promise((resolve) =>
    provider.on("authenticationFailed", ({ reason }: { reason: string }) => resolve(reason)),
  );
}
