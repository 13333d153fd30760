/**
 * One client of any server under comparison, through that server's own
 * client library: the Hocuspocus provider for ours and stock Hocuspocus,
 * y-websocket's `WebsocketProvider` for the y-websocket server. Both use
 * Node 24's built-in WebSocket, so the transport costs the same.
 *
 * y-websocket reports `synced` once the server answered its sync step 1,
 * which with `@y/websocket-server` and persistence can come before the
 * stored content has been loaded; benchmarks that time a load therefore
 * wait for the content itself ({@link PeerClient.until}), not for `synced`.
 */
import { HocuspocusProvider } from "@hocuspocus/provider";
import { Awareness } from "y-protocols/awareness";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { until, whenAcknowledged, whenSynced } from "../provider.ts";
import type { Protocol } from "./servers.ts";

export interface PeerClient {
  readonly doc: Y.Doc;
  readonly protocol: Protocol;
  /** Resolves once the client reports it is synced with the server. */
  synced(): Promise<void>;
  /**
   * Updates sent and not yet acknowledged by the server (always 0 for
   * y-websocket, which has no acknowledgement).
   */
  unacknowledged(): number;
  /**
   * Resolves with `performance.now()` once nothing sent is unacknowledged;
   * y-websocket: at once.
   */
  acknowledged(): Promise<number>;
  /** Registers `listener` for every acknowledgement count change (Hocuspocus only). */
  onUnacknowledged(listener: (count: number) => void): void;
  /** Resolves once `predicate(doc)` holds, checked after every transaction. */
  until(predicate: (doc: Y.Doc) => boolean): Promise<void>;
  /** Closes the connection and frees the client (not the document). */
  destroy(): void;
}

/** How a client behaves beyond its library's defaults. */
export interface ClientOptions {
  /**
   * Whether the client shares presence (awareness), as both libraries do by
   * default. Without it the client announces no state, so nothing is
   * broadcast on its behalf; both libraries then reconnect after 30 s
   * without any message from the server.
   * @default true
   */
  readonly presence?: boolean;
}

/**
 * Opens a client for document `name` on `wsUrl` (`ws://127.0.0.1:port`)
 * speaking `protocol`.
 */
export function openClient(
  protocol: Protocol,
  wsUrl: string,
  name: string,
  doc: Y.Doc = new Y.Doc(),
  options: ClientOptions = {},
): PeerClient {
  const presence = options.presence ?? true;
  const holds = (predicate: (doc: Y.Doc) => boolean) => until(doc, predicate);
  if (protocol === "hocuspocus") {
    const provider = new HocuspocusProvider({
      url: wsUrl,
      name,
      document: doc,
      ...(presence ? {} : { awareness: null }),
    });
    return {
      doc,
      protocol,
      synced: () => whenSynced(provider),
      unacknowledged: () => provider.unsyncedChanges,
      acknowledged: () => whenAcknowledged(provider),
      onUnacknowledged(listener) {
        provider.on("unsyncedChanges", ({ number }: { number: number }) => listener(number));
      },
      until: holds,
      destroy: () => provider.destroy(),
    };
  }
  let awareness: Awareness | undefined;
  if (!presence) {
    awareness = new Awareness(doc);
    awareness.setLocalState(null);
  }
  const provider = new WebsocketProvider(wsUrl, name, doc, {
    disableBc: true,
    ...(awareness === undefined ? {} : { awareness }),
  });
  return {
    doc,
    protocol,
    synced: () =>
      new Promise<void>((resolve) => {
        if (provider.synced) resolve();
        else provider.once("sync", () => resolve());
      }),
    unacknowledged: () => 0,
    acknowledged: () => Promise.resolve(performance.now()),
    onUnacknowledged() {},
    until: holds,
    destroy: () => provider.destroy(),
  };
}
