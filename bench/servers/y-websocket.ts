/**
 * The y-websocket reference server for the peer benchmarks:
 * `@y/websocket-server@0.1.1` (the last release on Yjs 13 with LevelDB
 * persistence) in a child process, set up exactly as its own `server.js`
 * does (an http server, `ws` in noServer mode, `setupWSConnection`), plus
 * the benchmark's IPC (bench/servers/child.ts).
 *
 * Environment:
 * - DATA_DIR: when set, passed on as its `YPERSISTENCE` (y-leveldb 0.1 in
 *   that directory: every update is stored as it arrives, a document is
 *   written and unloaded when its last client leaves). When unset, documents
 *   live in memory only and are never unloaded.
 *
 *   node --expose-gc bench/servers/y-websocket.ts     (with an IPC channel)
 */
import { createServer } from "node:http";
import { WebSocketServer } from "ws";
import { announce, serveBenchmark } from "./child.ts";

// The module reads YPERSISTENCE when it is first imported, so set it before.
if (process.env.DATA_DIR) process.env.YPERSISTENCE = process.env.DATA_DIR;
else delete process.env.YPERSISTENCE;
const { docs, getPersistence, setupWSConnection } = await import("@y/websocket-server/utils");

const wss = new WebSocketServer({ noServer: true });
wss.on("connection", (socket, request) => setupWSConnection(socket, request));
const server = createServer((_request, response) => {
  response.writeHead(200, { "Content-Type": "text/plain" });
  response.end("okay");
});
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const address = server.address();
if (address === null || typeof address === "string") throw new Error("no address");

serveBenchmark({
  stats: () => ({ loads: [], documents: docs.size, connections: wss.clients.size }),
  close: async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // y-leveldb queues its writes; closing it waits for them.
    const persistence = getPersistence() as { provider?: { destroy(): Promise<void> } } | null;
    await persistence?.provider?.destroy();
  },
});
announce(address.port);
