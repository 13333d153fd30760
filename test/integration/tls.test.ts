/**
 * HTTPS and wss:// without a proxy ([OPS6]): TLS_CERT and TLS_KEY with a
 * self-signed certificate (made by openssl for 127.0.0.1), the real provider
 * trusting it, SIGHUP reloading the files without dropping connections, and
 * bad files named at start-up and kept out on reload.
 */
import { X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { get } from "node:https";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { acknowledged, nodeSocket, synced } from "../helpers/clients.ts";
import { freePort } from "../helpers/engines.ts";
import { spawnServer, startServer, tempDir } from "../helpers/server.ts";
import { selfSigned } from "../helpers/tls.ts";

const SOON = { timeout: 10_000, interval: 10 };

function provider(url: string, ca: Buffer, name: string, document = new Y.Doc()) {
  const socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: nodeSocket({ ca }) });
  const client = new HocuspocusProvider({ websocketProvider: socket, name, document });
  client.attach();
  onTestFinished(() => {
    client.destroy();
    socket.destroy();
  });
  return { client, socket };
}

/** The SHA-256 fingerprint of the certificate the server presents to a new connection. */
function presented(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

async function fingerprint(file: string): Promise<string> {
  return new X509Certificate(await readFile(file)).fingerprint256;
}

describe("TLS", () => {
  it("[OPS6] with TLS_CERT and TLS_KEY the server speaks HTTPS and wss://, and the provider syncs over it", async () => {
    const dir = await tempDir("collab-tls-");
    const files = selfSigned(dir, "first");
    const ca = await readFile(files.cert);
    const { server, address } = await startServer({
      config: { tlsCert: files.cert, tlsKey: files.key },
    });
    expect(address.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(address.wsUrl).toMatch(/^wss:\/\//);
    const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      get(`${address.url}/healthz`, { ca }, (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      }).on("error", reject);
    });
    expect(health).toEqual({ status: 200, body: JSON.stringify({ status: "ok" }) });
    const { client } = provider(address.wsUrl, ca, "secure");
    await synced(client);
    client.document.getText("text").insert(0, "over TLS");
    await acknowledged(client);
    const stored = await server.store.load("secure");
    const doc = new Y.Doc();
    for (const update of stored?.updates ?? []) Y.applyUpdate(doc, update);
    expect(doc.getText("text").toString()).toBe("over TLS");
    // A client that does not trust the certificate gets no connection.
    const untrusted = new WebSocket(address.wsUrl);
    const failure = await new Promise<Error>((resolve) => untrusted.on("error", resolve));
    expect(failure.message).toMatch(/self-signed|certificate/i);
  });

  it("[OPS6] SIGHUP reloads the files: new connections get the new certificate, open ones stay, a bad file is refused", async () => {
    const dir = await tempDir("collab-tls-");
    const first = selfSigned(dir, "first");
    const live = { cert: join(dir, "live.crt"), key: join(dir, "live.key") };
    await writeFile(live.cert, await readFile(first.cert));
    await writeFile(live.key, await readFile(first.key));
    const port = await freePort();
    const server = await spawnServer({
      PORT: String(port),
      STORE: "memory",
      TLS_CERT: live.cert,
      TLS_KEY: live.key,
    });
    expect(server.address.url).toBe(`https://127.0.0.1:${port}`);
    const firstCa = await readFile(first.cert);
    const { client, socket } = provider(server.address.wsUrl, firstCa, "renewed");
    await synced(client);
    let disconnects = 0;
    socket.on("disconnect", () => disconnects++);
    expect(await presented(port, firstCa)).toBe(await fingerprint(first.cert));

    const second = selfSigned(dir, "second");
    await writeFile(live.cert, await readFile(second.cert));
    await writeFile(live.key, await readFile(second.key));
    const reloaded = server.lines.length;
    server.child.kill("SIGHUP");
    await vi.waitFor(
      () => expect(server.lines.slice(reloaded).join("\n")).toContain("TLS certificate reloaded"),
      SOON,
    );
    expect(await presented(port, firstCa)).toBe(await fingerprint(second.cert));
    // The open connection kept its session and still syncs.
    client.document.getText("text").insert(0, "after the renewal");
    await acknowledged(client);
    expect(disconnects).toBe(0);

    // A broken file is refused: the certificate in use stays.
    await writeFile(live.cert, "not a certificate\n");
    const broken = server.lines.length;
    server.child.kill("SIGHUP");
    await vi.waitFor(
      () =>
        expect(server.lines.slice(broken).join("\n")).toContain(
          `TLS certificate not reloaded, the old one is kept: TLS_CERT ${live.cert} holds no PEM certificate`,
        ),
      SOON,
    );
    expect(server.child.exitCode).toBeNull();
    expect(await presented(port, firstCa)).toBe(await fingerprint(second.cert));
    server.child.kill("SIGTERM");
    expect((await server.exited).code).toBe(0);
  });

  it("[OPS6] a missing, unreadable or mismatched file, or only one of the two, stops start-up naming it", async () => {
    const dir = await tempDir("collab-tls-");
    const a = selfSigned(dir, "a");
    const b = selfSigned(dir, "b");
    const cases: Array<[Record<string, string>, string]> = [
      [
        { TLS_CERT: join(dir, "missing.crt"), TLS_KEY: a.key },
        `TLS_CERT ${join(dir, "missing.crt")} cannot be read (ENOENT)`,
      ],
      [{ TLS_CERT: a.cert, TLS_KEY: a.cert }, `TLS_KEY ${a.cert} holds no PEM private key`],
      [
        { TLS_CERT: a.cert, TLS_KEY: b.key },
        `TLS_CERT ${a.cert} and TLS_KEY ${b.key} do not make a usable certificate`,
      ],
      [{ TLS_CERT: a.cert }, "TLS_CERT is set but TLS_KEY is not"],
    ];
    for (const [env, message] of cases) {
      const failed = await spawnServer({ STORE: "memory", ...env }).then(
        () => null,
        (error: Error) => error.message,
      );
      expect(failed).toContain(message);
    }
  });
});
