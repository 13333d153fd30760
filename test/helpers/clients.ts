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

/** Reconnect options for tests that restart the server: back within a few hundred milliseconds. */
export const QUICK_RECONNECT = { delay: 100, minDelay: 50, maxDelay: 500, factor: 1.5 } as const;

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

/** A ws client constructor, the shape the provider's `WebSocketPolyfill` takes. */
export type NodeSocketClass = new (url: string | URL, protocols?: string | string[]) => WebSocket;

/**
 * ws' WebSocket, with `options` (headers, a trusted CA), and a listener for its `error`
 * event of its own. @hocuspocus/provider 4.8 removes its listeners from a socket before it
 * closes it, and ws reports closing one that is still connecting (a provider destroyed or
 * reconnected while a connection is being made) as an `error` event on the next tick; with
 * no listener left, that event is an uncaught exception that fails the whole test run.
 * docs/patches.md lists it; the provider's listeners still see every error while attached.
 */
export function nodeSocket(options: WebSocket.ClientOptions = {}): NodeSocketClass {
  return class NodeSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, options);
      this.on("error", () => {});
    }
  };
}

/** One socket that several providers can share. */
export function sharedSocket(url: string): HocuspocusProviderWebsocket {
  const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: nodeSocket() });
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
