/**
 * WebSocket compression ([PROT4]): with `WS_COMPRESSION=on` a client that
 * offers permessage-deflate gets it and one that does not is served plain,
 * on the same documents; messages of `WS_COMPRESSION_MIN_BYTES` or more go
 * out compressed (seen on the wire: the RSV1 bit and the bytes), smaller ones
 * plain; with it off, an offer is declined. Real servers on port 0, real
 * sockets.
 */
import { constants, inflateRawSync } from "node:zlib";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import * as decoding from "lib0/decoding";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import type WebSocket from "ws";
import * as Y from "yjs";
import type { Config } from "../../server/src/config.ts";
import { MessageType, SyncType } from "../../server/src/protocol/messages.ts";
import { acknowledged, type NodeSocketClass, nodeSocket, synced } from "../helpers/clients.ts";
import { expectConverged } from "../helpers/converge.ts";
import { runCli, startServer } from "../helpers/server.ts";
import { clientFrame, type ServerFrame, TcpWebSocket, wire } from "../helpers/wire.ts";

const SOON = { timeout: 10_000, interval: 10 } as const;
const ON: Partial<Config> = { wsCompression: "on", wsCompressionMinBytes: 1024 };

/** A client's socket, and what the server answered to its upgrade. */
interface Opened {
  readonly ws: WebSocket;
  /** The upgrade response's Sec-WebSocket-Extensions header. */
  extensions: string | undefined;
}

/** A provider on its own `ws` socket, offering permessage-deflate or not. */
function client(url: string, name: string, offer: boolean) {
  const opened: Opened[] = [];
  const Base: NodeSocketClass = nodeSocket({ perMessageDeflate: offer });
  class Recorded extends Base {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols);
      const entry: Opened = { ws: this, extensions: undefined };
      opened.push(entry);
      this.once("upgrade", (response) => {
        entry.extensions = response.headers["sec-websocket-extensions"];
      });
    }
  }
  const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: Recorded });
  const provider = new HocuspocusProvider({
    websocketProvider: socket,
    name,
    document: new Y.Doc(),
  });
  provider.attach();
  onTestFinished(() => {
    provider.destroy();
    socket.destroy();
  });
  /** The socket the provider is connected over now. */
  const current = (): Opened => {
    const last = opened.at(-1);
    if (last === undefined) throw new Error("the provider has not opened a socket");
    return last;
  };
  return { provider, current };
}

/** Text that compresses like prose: words from a small vocabulary, in an order that varies. */
function prose(characters: number, seed: number): string {
  const words = ["the", "server", "sends", "each", "client", "its", "document", "state", "once"];
  let text = "";
  for (let i = 0; text.length < characters; i++) {
    text += `${words[(i * 7 + seed + (i >> 3)) % words.length]} `;
  }
  return text.slice(0, characters);
}

/** The update inside a Hocuspocus sync step 2 message, or null for any other message. */
function syncStep2Update(message: Uint8Array): Uint8Array | null {
  const decoder = decoding.createDecoder(message);
  decoding.readVarString(decoder);
  if (decoding.readVarUint(decoder) !== MessageType.Sync) return null;
  if (decoding.readVarUint(decoder) !== SyncType.Step2) return null;
  return decoding.readVarUint8Array(decoder);
}

/**
 * A compressed message's payload inflated: the tail the sender stripped put back
 * (RFC 7692, 7.2.2), read up to that sync point rather than to an end of stream.
 */
function inflate(frame: ServerFrame): Uint8Array {
  const tail = Uint8Array.from([0x00, 0x00, 0xff, 0xff]);
  return inflateRawSync(Buffer.concat([frame.payload, tail]), {
    finishFlush: constants.Z_SYNC_FLUSH,
  });
}

describe("WebSocket compression", () => {
  it("[PROT4] with WS_COMPRESSION=on, a compressing and a plain client edit one document and converge", async () => {
    const { address, server } = await startServer({ config: ON });
    const compressing = client(address.wsUrl, "shared", true);
    const plain = client(address.wsUrl, "shared", false);
    await Promise.all([synced(compressing.provider), synced(plain.provider)]);

    // Negotiated for the one that offered it (the server's choices in the answer), not the other.
    expect(compressing.current().ws.extensions).toBe("permessage-deflate");
    expect(compressing.current().extensions).toMatch(/^permessage-deflate\b/);
    expect(compressing.current().extensions).toContain("server_no_context_takeover");
    expect(plain.current().ws.extensions).toBe("");
    expect(plain.current().extensions).toBeUndefined();

    // Small edits both ways (under the threshold), then a large one each way (over it).
    const docs = [compressing.provider.document, plain.provider.document];
    docs.forEach((doc, i) => {
      for (let n = 0; n < 20; n++) doc.getText("text").insert(0, `${i}:${n} `);
    });
    compressing.provider.document.getText("big").insert(0, prose(40_000, 1));
    plain.provider.document.getText("big").insert(0, prose(40_000, 2));
    await Promise.all([acknowledged(compressing.provider), acknowledged(plain.provider)]);
    await vi.waitFor(() => expectConverged(docs), SOON);
    expect(docs[0]?.getText("big").length).toBe(80_000);
    await server.store.flush();
    expectConverged(docs, (await server.store.load("shared"))?.updates);
  });

  it("[PROT4] a message of WS_COMPRESSION_MIN_BYTES or more arrives compressed, a smaller one plain", async () => {
    const { address } = await startServer({ config: ON });
    const writer = client(address.wsUrl, "large", false);
    await synced(writer.provider);
    const text = prose(30_000, 3);
    writer.provider.document.getText("text").insert(0, text);
    await acknowledged(writer.provider);

    // A client written by hand, so the frames are seen as they come over the wire.
    const raw = await TcpWebSocket.open(address.port, "/", {
      headers: { "sec-websocket-extensions": "permessage-deflate; client_max_window_bits" },
    });
    expect(raw.header("sec-websocket-extensions")).toMatch(/^permessage-deflate\b/);
    await raw.write(clientFrame(wire.auth("large")));
    await raw.write(clientFrame(wire.syncStep1("large")));
    const step2 = await vi.waitFor(() => {
      const found = raw.frames.find((frame) => frame.rsv1);
      expect(found).toBeDefined();
      return found as ServerFrame;
    }, SOON);

    // The document's state, inflated: every character, in a fraction of its bytes.
    const update = syncStep2Update(inflate(step2));
    expect(update).not.toBeNull();
    const received = new Y.Doc();
    Y.applyUpdate(received, update as Uint8Array);
    expect(received.getText("text").toString()).toBe(text);
    expect(step2.payload.length).toBeLessThan((update as Uint8Array).length / 2);
    // The messages before it (authenticated, the server's own sync step 1) are small: plain.
    const small = raw.frames.filter((frame) => !frame.rsv1);
    expect(small.length).toBeGreaterThan(0);
    for (const frame of small) expect(frame.payload.length).toBeLessThan(1024);
  });

  it("[PROT4] an offer that only asks for a server window under 4 KiB is refused with 400; one with a fallback is served", async () => {
    const { address } = await startServer({ config: ON });
    const offer = (extensions: string) =>
      TcpWebSocket.open(address.port, "/", {
        headers: { "sec-websocket-extensions": extensions },
      });
    await expect(offer("permessage-deflate; server_max_window_bits=10")).rejects.toThrow(
      /HTTP\/1\.1 400/,
    );
    const fallback = await offer(
      "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    );
    expect(fallback.header("sec-websocket-extensions")).toContain("server_max_window_bits=12");
  });

  it("[PROT4] with WS_COMPRESSION=off (the default), an offer is declined and the client is served plain", async () => {
    const { address } = await startServer();
    const compressing = client(address.wsUrl, "plain", true);
    const plain = client(address.wsUrl, "plain", false);
    await Promise.all([synced(compressing.provider), synced(plain.provider)]);
    expect(compressing.current().ws.extensions).toBe("");
    expect(compressing.current().extensions).toBeUndefined();
    compressing.provider.document.getText("text").insert(0, prose(5_000, 4));
    await acknowledged(compressing.provider);
    await vi.waitFor(
      () => expectConverged([compressing.provider.document, plain.provider.document]),
      SOON,
    );
  });

  it.each([
    [{ WS_COMPRESSION: "gzip" }, 'WS_COMPRESSION must be one of off, on, got "gzip"'],
    [{ WS_COMPRESSION: "true" }, 'WS_COMPRESSION must be one of off, on, got "true"'],
    [
      { WS_COMPRESSION_MIN_BYTES: "-1" },
      'WS_COMPRESSION_MIN_BYTES must be an integer 0-1073741824, got "-1"',
    ],
    [
      { WS_COMPRESSION_MIN_BYTES: "1k" },
      'WS_COMPRESSION_MIN_BYTES must be an integer 0-1073741824, got "1k"',
    ],
  ])(
    "[CONF1] a bad compression setting %o stops start-up with exit 1 and says why",
    async (env, message) => {
      const result = await runCli(env);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(message);
    },
  );
});
