/**
 * A bare `ws` server for the compression benchmark (bench/compression.ts):
 * what permessage-deflate's zlib streams cost per connection under given
 * options, apart from everything a sync server keeps. It answers every
 * message with REPLY_BYTES of prose-like text, so each connection has
 * inflated one message and, when the reply reaches the threshold, deflated
 * one, as a browser tab's connection has after its first sync.
 *
 * Environment: WS_DEFLATE, the JSON of ws' `perMessageDeflate` option
 * (`false` for none).
 *
 *   node --expose-gc bench/servers/bare-ws.ts     (with an IPC channel)
 */
import type { PerMessageDeflateOptions } from "ws";
import { WebSocketServer } from "ws";
import { announce, serveBenchmark } from "./child.ts";

/** The reply: over ws' and our default threshold (1,024 bytes), the size of a small document's sync. */
export const REPLY_BYTES = 8 * 1024;

const options = JSON.parse(process.env.WS_DEFLATE ?? "false") as PerMessageDeflateOptions | false;
const words = ["the", "server", "sends", "each", "client", "its", "document", "state", "once"];
let text = "";
for (let i = 0; text.length < REPLY_BYTES; i++) text += `${words[(i * 7 + (i >> 3)) % 9]} `;
const reply = Buffer.from(text.slice(0, REPLY_BYTES));

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: options });
wss.on("connection", (ws) => ws.on("message", () => ws.send(reply)));
await new Promise<void>((resolve) => wss.once("listening", resolve));
const address = wss.address();
if (address === null || typeof address === "string") throw new Error("no port");

serveBenchmark({
  stats: () => ({ loads: [], documents: 0, connections: wss.clients.size }),
  close: async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  },
});
announce(address.port);
