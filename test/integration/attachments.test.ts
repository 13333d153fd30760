/**
 * Attachments over the REST API (ATT rules in SPEC.md): uploads are typed by
 * their bytes, only raster images are shown inline, every answer is
 * sandboxed and cached by hash, ranges work, limits answer 413, readers and
 * signed links may fetch and only writers upload, and attachments follow
 * their document through the trash and are collected only when nothing
 * (content or saved version) shows them.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LinkSigner } from "../../server/src/attachments/signing.ts";
import { mintToken } from "../../server/src/auth/tokens.ts";
import { type Engine, startPostgres, startRedis } from "../helpers/engines.ts";
import { startServer } from "../helpers/server.ts";

/** A real 1x1 PNG. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);
const HTML = Buffer.from(
  "<!doctype html><html><body><script>alert(document.cookie)</script></body></html>",
);
const SVG = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><circle r="4"/></svg>',
);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

type Json = Record<string, unknown>;

async function upload(
  base: string,
  name: string,
  bytes: Uint8Array<ArrayBuffer>,
  options: { type?: string; filename?: string; token?: string } = {},
): Promise<{ status: number; json: Json }> {
  const query =
    options.filename === undefined ? "" : `?filename=${encodeURIComponent(options.filename)}`;
  const response = await fetch(
    `${base}/api/v1/documents/${encodeURIComponent(name)}/attachments${query}`,
    {
      method: "POST",
      headers: {
        "content-type": options.type ?? "application/octet-stream",
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      },
      body: bytes,
    },
  );
  return { status: response.status, json: (await response.json()) as Json };
}

function imageDoc(...ids: string[]): Json {
  return {
    type: "doc",
    content: [
      { type: "paragraph", content: [{ type: "text", text: "Pictures" }] },
      ...ids.map((id) => ({
        type: "image",
        attrs: { src: `/x/attachments/${id}`, attachment: id, alt: "a" },
      })),
    ],
  };
}

async function putDoc(base: string, name: string, doc: Json): Promise<number> {
  const response = await fetch(`${base}/api/v1/documents/${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(doc),
  });
  return response.status;
}

describe("attachments over the API", () => {
  it("[ATT2] types come from the bytes; only raster images are inline; every answer is sandboxed", async () => {
    const { address } = await startServer();
    // A PNG named .exe and sent as an executable is a PNG.
    const png = await upload(address.url, "doc", PNG, {
      type: "application/x-msdownload",
      filename: "setup.exe",
    });
    expect(png.status).toBe(201);
    expect(png.json).toMatchObject({
      id: sha256(PNG),
      type: "image/png",
      size: PNG.byteLength,
      filename: "setup.exe",
      url: `/api/v1/documents/doc/attachments/${sha256(PNG)}`,
    });
    const image = await fetch(`${address.url}${png.json.url}`);
    expect(image.status).toBe(200);
    expect(Buffer.from(await image.arrayBuffer())).toEqual(PNG);
    expect(image.headers.get("content-type")).toBe("image/png");
    expect(image.headers.get("content-disposition")).toMatch(/^inline; /);
    expect(image.headers.get("x-content-type-options")).toBe("nosniff");
    expect(image.headers.get("content-security-policy")).toContain("sandbox");
    expect(image.headers.get("cache-control")).toBe("private, max-age=31536000, immutable");
    expect(image.headers.get("etag")).toBe(`"${sha256(PNG)}"`);

    // HTML claiming to be a PNG, and SVG with script: downloads of bytes, never rendered.
    for (const [bytes, claimed, filename] of [
      [HTML, "image/png", "photo.png"],
      [SVG, "image/svg+xml", "logo.svg"],
    ] as const) {
      const sent = await upload(address.url, "doc", bytes, { type: claimed, filename });
      expect(sent.status).toBe(201);
      expect(sent.json.type).toBe("application/octet-stream");
      const served = await fetch(`${address.url}${sent.json.url}`);
      expect(served.headers.get("content-type")).toBe("application/octet-stream");
      expect(served.headers.get("content-disposition")).toBe(
        `attachment; filename="${filename}"; filename*=UTF-8''${filename}`,
      );
      expect(served.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
      expect(served.headers.get("x-content-type-options")).toBe("nosniff");
      expect(Buffer.from(await served.arrayBuffer())).toEqual(bytes);
    }
  });

  it("[ATT1] the same bytes are stored once; multipart uploads carry their file name", async () => {
    const { address, server } = await startServer();
    const first = await upload(address.url, "doc", PNG, { filename: "a.png" });
    const again = await upload(address.url, "doc", PNG, { filename: "b.png" });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    const form = new FormData();
    form.append("file", new Blob([SVG], { type: "image/svg+xml" }), "diagram ✓.svg");
    const multipart = await fetch(`${address.url}/api/v1/documents/doc/attachments`, {
      method: "POST",
      body: form,
    });
    expect(multipart.status).toBe(201);
    expect(await multipart.json()).toMatchObject({ id: sha256(SVG), filename: "diagram ✓.svg" });
    expect((await server.attachments.list("doc")).map((meta) => meta.id).sort()).toEqual(
      [sha256(PNG), sha256(SVG)].sort(),
    );
    const listed = await (await fetch(`${address.url}/api/v1/documents/doc/attachments`)).json();
    expect(listed.attachments).toHaveLength(2);
  });

  it("[ATT3] ranges, conditional requests and HEAD", async () => {
    const { address } = await startServer();
    const bytes = Buffer.from("0123456789abcdefghij");
    const { json } = await upload(address.url, "doc", bytes);
    const url = `${address.url}${json.url}`;
    const part = await fetch(url, { headers: { range: "bytes=2-5" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 2-5/20");
    expect(await part.text()).toBe("2345");
    const suffix = await fetch(url, { headers: { range: "bytes=-3" } });
    expect(await suffix.text()).toBe("hij");
    const open = await fetch(url, { headers: { range: "bytes=15-" } });
    expect(await open.text()).toBe("fghij");
    const beyond = await fetch(url, { headers: { range: "bytes=20-" } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe("bytes */20");
    const cached = await fetch(url, { headers: { "if-none-match": `"${json.id}"` } });
    expect(cached.status).toBe(304);
    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("20");
    const missing = await fetch(
      `${address.url}/api/v1/documents/doc/attachments/${"0".repeat(64)}`,
    );
    expect(missing.status).toBe(404);
    const malformed = await fetch(`${address.url}/api/v1/documents/doc/attachments/..%2Fsecret`);
    expect(malformed.status).toBe(404);
  });

  it("[ATT2] a file past MAX_ATTACHMENT_BYTES, or past a document's count or bytes, is 413", async () => {
    const { address } = await startServer({
      config: {
        maxAttachmentBytes: 2048,
        maxAttachmentsPerDocument: 2,
        maxAttachmentBytesPerDocument: 3000,
      },
    });
    const big = await upload(address.url, "doc", Buffer.alloc(4096, 1));
    expect(big.status).toBe(413);
    expect(big.json).toEqual({
      error: {
        code: "payload_too_large",
        message: "the file is larger than MAX_ATTACHMENT_BYTES (2048 bytes)",
      },
    });
    expect((await upload(address.url, "doc", Buffer.alloc(1500, 1))).status).toBe(201);
    const bytes = await upload(address.url, "doc", Buffer.alloc(1600, 2));
    expect(bytes.status).toBe(413);
    expect(bytes.json.error).toMatchObject({ code: "quota_exceeded" });
    expect(String((bytes.json.error as Json).message)).toContain(
      "MAX_ATTACHMENT_BYTES_PER_DOCUMENT",
    );
    expect((await upload(address.url, "doc", Buffer.alloc(10, 3))).status).toBe(201);
    const count = await upload(address.url, "doc", Buffer.alloc(10, 4));
    expect(count.status).toBe(413);
    expect(String((count.json.error as Json).message)).toContain("MAX_ATTACHMENTS_PER_DOCUMENT");
    // Another document has its own allowance.
    expect((await upload(address.url, "other", Buffer.alloc(10, 4))).status).toBe(201);
    expect((await upload(address.url, "doc", Buffer.alloc(0))).status).toBe(400);
  });

  it("[ATT5] readers fetch with a token or a signed link; only writers upload; links expire", async () => {
    const secret = "attachments-test-secret-0123456789abcdef";
    const linkSecret = "attachment-links-test-secret-0123456789";
    const { address } = await startServer({
      config: { authSecret: secret, attachmentUrlSecret: linkSecret, attachmentUrlSeconds: 60 },
    });
    const token = (perm: "read" | "comment" | "write", docs = ["doc"]) =>
      mintToken({ secret, userId: `u-${perm}`, docs, perm, ttl: "10m" });
    const writer = await token("write");
    for (const perm of ["read", "comment"] as const) {
      const refused = await upload(address.url, "doc", PNG, { token: await token(perm) });
      expect(refused.status, perm).toBe(403);
    }
    expect((await upload(address.url, "doc", PNG)).status).toBe(401);
    const { status, json } = await upload(address.url, "doc", PNG, { token: writer });
    expect(status).toBe(201);
    const url = `${address.url}${json.url}`;
    expect((await fetch(url)).status).toBe(401);
    const reader = await token("read");
    expect((await fetch(url, { headers: { authorization: `Bearer ${reader}` } })).status).toBe(200);
    const stranger = await token("read", ["other"]);
    expect((await fetch(url, { headers: { authorization: `Bearer ${stranger}` } })).status).toBe(
      403,
    );
    expect(
      (
        await fetch(`${address.url}/api/v1/documents/doc/attachments/links`, {
          method: "POST",
          headers: { authorization: `Bearer ${stranger}` },
        })
      ).status,
    ).toBe(403);

    // A reader's signed link opens the image without a header, as <img src> does.
    const links = await fetch(`${address.url}/api/v1/documents/doc/attachments/links`, {
      method: "POST",
      headers: { authorization: `Bearer ${reader}` },
    });
    expect(links.status).toBe(200);
    const signed = (await links.json()) as { query: string; expires: string };
    const expires = Date.parse(signed.expires);
    expect(expires - Date.now()).toBeGreaterThan(59_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(120_000);
    const viaLink = await fetch(`${url}?${signed.query}`);
    expect(viaLink.status).toBe(200);
    expect(Buffer.from(await viaLink.arrayBuffer())).toEqual(PNG);
    // Tampered, for another document, or expired: refused.
    const tampered = signed.query.replace(/signature=./, (s) =>
      s.endsWith("A") ? `${s.slice(0, -1)}B` : `${s.slice(0, -1)}A`,
    );
    expect((await fetch(`${url}?${tampered}`)).status).toBe(403);
    await upload(address.url, "other", PNG, { token: await token("write", ["other"]) });
    const otherUrl = `${address.url}/api/v1/documents/other/attachments/${json.id}`;
    expect((await fetch(`${otherUrl}?${signed.query}`)).status).toBe(403);
    const signer = new LinkSigner(Buffer.from(linkSecret), 60);
    const old = signer.sign("doc", Date.now() - 10 * 60_000);
    const expired = await fetch(`${url}?expires=${old.expires}&signature=${old.signature}`);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toContain(
      "expired",
    );
    // A link opens attachments only: not the document itself.
    const doc = await fetch(`${address.url}/api/v1/documents/doc?${signed.query}`);
    expect(doc.status).toBe(401);
  });

  it("[ATT4] attachments follow their document through the trash: unserved there, back on restore, gone on purge", async () => {
    const { address, server } = await startServer();
    expect(await putDoc(address.url, "doc", imageDoc(sha256(PNG)))).toBe(201);
    const { json } = await upload(address.url, "doc", PNG);
    const url = `${address.url}${json.url}`;
    expect((await fetch(`${address.url}/api/v1/documents/doc`, { method: "DELETE" })).status).toBe(
      200,
    );
    expect((await fetch(url)).status).toBe(404);
    const restored = await fetch(`${address.url}/api/v1/trash/doc/restore`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ as: "copy" }),
    });
    expect(restored.status).toBe(200);
    expect((await fetch(url)).status).toBe(404);
    expect(
      (await fetch(`${address.url}/api/v1/documents/copy/attachments/${json.id}`)).status,
    ).toBe(200);
    expect((await fetch(`${address.url}/api/v1/documents/copy`, { method: "DELETE" })).status).toBe(
      200,
    );
    expect((await fetch(`${address.url}/api/v1/trash/copy`, { method: "DELETE" })).status).toBe(
      200,
    );
    expect(await server.attachments.owners()).toEqual([]);
  });

  it("[ATT4] collection keeps what the content or a saved version shows and removes the rest", async () => {
    const { address, server } = await startServer({ config: { attachmentGraceMs: 0 } });
    const [a, b, c] = await Promise.all(
      ["shown now", "shown by a version", "shown nowhere"].map(async (text) => {
        const { json } = await upload(address.url, "doc", Buffer.from(text));
        return String(json.id);
      }),
    );
    expect(await putDoc(address.url, "doc", imageDoc(String(a), String(b)))).toBe(201);
    const saved = await fetch(`${address.url}/api/v1/documents/doc/versions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "with b" }),
    });
    expect(saved.status).toBe(201);
    const version = (await saved.json()) as { id: string };
    expect(await putDoc(address.url, "doc", imageDoc(String(a)))).toBe(200);
    expect(await server.attachments.collect("doc")).toEqual([c]);
    expect((await server.attachments.list("doc")).map((m) => m.id).sort()).toEqual([a, b].sort());
    // Once no version shows b either, it goes; a stays.
    await fetch(`${address.url}/api/v1/documents/doc/versions/${version.id}`, { method: "DELETE" });
    expect(await server.attachments.collect("doc")).toEqual([b]);
    expect((await server.attachments.list("doc")).map((m) => m.id)).toEqual([a]);
    // Within the grace period nothing is collected: an upload is in no content until inserted.
    const fresh = await startServer({ config: { attachmentGraceMs: 60_000 } });
    await upload(fresh.address.url, "doc", Buffer.from("just uploaded"));
    expect(await fresh.server.attachments.collect("doc")).toEqual([]);
  });
});

describe("attachments in a cluster", () => {
  let redis: Engine;
  let postgres: Engine;
  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([redis?.stop(), postgres?.stop()]);
  });

  it("[ATT1] an attachment uploaded to one instance is served by another, with the same signed links", async () => {
    const secret = "cluster-attachments-secret-0123456789abcdef";
    const config = {
      cluster: true,
      store: "postgres" as const,
      databaseUrl: postgres.url,
      redisUrl: redis.url,
      authSecret: secret,
      apiSecret: "cluster-attachments-api-secret-0123456789",
    };
    const first = await startServer({ config });
    const second = await startServer({ config });
    const writer = await mintToken({
      secret,
      userId: "w",
      docs: ["doc"],
      perm: "write",
      ttl: "5m",
    });
    const { status, json } = await upload(first.address.url, "doc", PNG, { token: writer });
    expect(status).toBe(201);
    const links = await fetch(`${first.address.url}/api/v1/documents/doc/attachments/links`, {
      method: "POST",
      headers: { authorization: `Bearer ${writer}` },
    });
    const { query } = (await links.json()) as { query: string };
    const served = await fetch(`${second.address.url}${json.url}?${query}`);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer())).toEqual(PNG);
    // Deleted through the second, the first serves it no more.
    await fetch(`${first.address.url}/api/v1/documents/doc`, {
      method: "PUT",
      headers: { authorization: `Bearer ${writer}`, "content-type": "text/markdown" },
      body: "Has a picture",
    });
    const deleted = await fetch(`${second.address.url}/api/v1/documents/doc`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${config.apiSecret}` },
    });
    expect(deleted.status).toBe(200);
    expect((await fetch(`${first.address.url}${json.url}?${query}`)).status).toBe(404);
  });
});
