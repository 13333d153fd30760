/**
 * Word files through the REST API ([CONV8] in SPEC.md): a document is read as
 * a .docx download and written from one (PUT and POST .../content), the same
 * document coming back apart from what Word cannot carry; a file is bounded
 * by its own 8 MiB, its pictures left out; a zip bomb is 413 even when its
 * directory lies, bytes that are not a Word file 400; the first file a fresh
 * server reads does not pay for loading the reader.
 */
import { join } from "node:path";
import { unzipSync, zipSync } from "fflate";
import { describe, expect, it, vi } from "vitest";
import { DOCX_MEDIA_TYPE } from "../../server/src/api/schemas.ts";
import { parseContent } from "../../server/src/documents/convert.ts";
import { DocxLimits, renderDocx } from "../../server/src/documents/docx.ts";
import { ContentLimits } from "../../server/src/documents/limits.ts";
import { connect, synced } from "../helpers/clients.ts";
import { lyingZip, withPicture } from "../helpers/docx.ts";
import { png } from "../helpers/png.ts";
import { ROOT, spawnServer, startServer, tempDir } from "../helpers/server.ts";

const MARKDOWN = `# Plan

Some **bold** and *italic* text with a [link](https://example.com/).

- [ ] write it
- [x] read it

| Who | What |
| --- | --- |
| Ann | Lead |
`;

describe("Word files over the API", () => {
  it("[CONV8] GET ?format=docx downloads the document; PUT and POST .../content read one back", async () => {
    const { address } = await startServer({ config: { maxBodyBytes: 4 * 1024 * 1024 } });
    const api = `${address.url}/api/v1/documents`;
    const put = await fetch(`${api}/team%2Fplan`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: MARKDOWN,
    });
    expect(put.status).toBe(201);

    const download = await fetch(`${api}/team%2Fplan?format=docx`);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe(DOCX_MEDIA_TYPE);
    expect(download.headers.get("content-disposition")).toBe(
      `attachment; filename="plan.docx"; filename*=UTF-8''plan.docx`,
    );
    const bytes = new Uint8Array(await download.arrayBuffer());
    expect([...bytes.slice(0, 2)]).toEqual([0x50, 0x4b]); // "PK": a zip archive

    const copy = await fetch(`${api}/copy`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: bytes,
    });
    expect(copy.status).toBe(201);
    const json = async (name: string) => (await fetch(`${api}/${name}?format=json`)).json();
    expect(await json("copy")).toEqual(await json("team%2Fplan"));

    // Appended to a document that exists.
    const appended = await fetch(`${api}/copy/content`, {
      method: "POST",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: bytes,
    });
    expect(appended.status).toBe(200);
    const markdown = await (await fetch(`${api}/copy?format=markdown`)).text();
    expect(markdown.match(/# Plan/g)).toHaveLength(2);
  });

  it("[CONV8] a Word file with a 6 MiB picture is read within the default limits (MAX_BODY_BYTES is 1 MiB); the picture becomes an attachment", async () => {
    const { address } = await startServer();
    const api = `${address.url}/api/v1/documents`;
    // Inlined as a data URI, the picture alone would make 8 MiB of HTML.
    const file = await withPicture(6 * 1024 * 1024);
    const put = await fetch(`${api}/pictured`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: file,
    });
    expect(put.status).toBe(201);
    const markdown = await (await fetch(`${api}/pictured?format=markdown`)).text();
    const listed = (await (await fetch(`${api}/pictured/attachments`)).json()) as {
      attachments: Array<{ id: string; type: string; size: number }>;
    };
    expect(listed.attachments).toHaveLength(1);
    const [picture] = listed.attachments;
    expect(picture?.type).toBe("image/png");
    expect(picture?.size).toBeGreaterThan(6 * 1024 * 1024);
    expect(markdown).toBe(
      `Before the picture\n\n![A square of noise](/api/v1/documents/pictured/attachments/${picture?.id})\n\nAfter the picture`,
    );
    // A Word file's own limit, not MAX_BODY_BYTES, bounds its body.
    const tooBig = await fetch(`${api}/huge`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: new Uint8Array(ContentLimits.maxBytes.docx + 1),
    });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { message: string } }).error.message).toBe(
      `the body is larger than a Word file may be (${ContentLimits.maxBytes.docx} bytes)`,
    );
  });

  it("[CONV8] images survive a Word round trip: the picture is written into the file and read back as the same attachment, with its alt text", async () => {
    const { address } = await startServer();
    const api = `${address.url}/api/v1/documents`;
    const bytes = new Uint8Array(png(240, 120, [22, 163, 74], 30));
    const upload = await fetch(`${api}/illustrated/attachments?filename=chart.png`, {
      method: "POST",
      body: bytes,
    });
    const { id } = (await upload.json()) as { id: string };
    const doc = {
      type: "doc",
      content: [
        { type: "heading", attrs: { level: 1 }, content: [{ type: "text", text: "Report" }] },
        { type: "image", attrs: { attachment: id, alt: "Sales by month", width: 200 } },
        { type: "paragraph", content: [{ type: "text", text: "Up and to the right." }] },
      ],
    };
    const put = await fetch(`${api}/illustrated`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(doc),
    });
    expect(put.status).toBe(201);
    const word = new Uint8Array(
      await (await fetch(`${api}/illustrated?format=docx`)).arrayBuffer(),
    );
    // The picture is in the file, as a PNG of its own bytes.
    const media = Object.entries(unzipSync(word)).filter(([path]) =>
      path.startsWith("word/media/"),
    );
    expect(media.map(([, data]) => Buffer.from(data).equals(Buffer.from(bytes)))).toEqual([true]);

    const copy = await fetch(`${api}/copy`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: word,
    });
    expect(copy.status).toBe(201);
    const json = (await (await fetch(`${api}/copy`)).json()) as {
      content: Array<{ type: string; attrs?: Record<string, unknown> }>;
    };
    expect(json.content.map((node) => node.type)).toEqual(["heading", "image", "paragraph"]);
    expect(json.content[1]?.attrs).toMatchObject({
      attachment: id,
      alt: "Sales by month",
      src: `/api/v1/documents/copy/attachments/${id}`,
    });
    const served = await fetch(`${api}/copy/attachments/${id}`);
    expect(Buffer.from(await served.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
  });

  it("[CONV8] a zip bomb answers 413 and bytes that are not a Word file 400, and the server goes on", async () => {
    const { address } = await startServer();
    const api = `${address.url}/api/v1/documents`;
    const bomb = zipSync({
      "word/document.xml": new Uint8Array(DocxLimits.maxUncompressedBytes + 1),
    });
    const refused = await fetch(`${api}/bomb`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: bomb,
    });
    expect(refused.status).toBe(413);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "payload_too_large",
    );
    const garbage = await fetch(`${api}/garbage`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: new TextEncoder().encode("<html><script>alert(1)</script></html>"),
    });
    expect(garbage.status).toBe(400);
    expect(await (await fetch(`${api}/bomb`)).text()).toContain("not_found");
    const fine = await fetch(`${api}/after`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: "still here",
    });
    expect(fine.status).toBe(201);
  });

  it("[CONV8] a zip bomb whose directory understates its sizes answers 413, and the server goes on", async () => {
    const { address } = await startServer();
    const api = `${address.url}/api/v1/documents`;
    // 65 KiB that inflate to more than 64 MiB, declared as 1 KiB.
    const bomb = lyingZip(
      { "word/document.xml": new Uint8Array(DocxLimits.maxUncompressedBytes + 1) },
      1024,
    );
    const refused = await fetch(`${api}/bomb`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: bomb,
    });
    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual({
      error: {
        code: "payload_too_large",
        message: expect.stringMatching(/unpacks to more than \d+ bytes/),
      },
    });
    expect((await fetch(`${api}/bomb`)).status).toBe(404);
    const provider = connect({ url: address.wsUrl, name: "after" });
    await synced(provider);
    const fine = await fetch(`${api}/after`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: "still here",
    });
    expect(fine.status).toBe(201);
    await vi.waitFor(() =>
      expect(provider.document.getXmlFragment("default").toString()).toContain("still here"),
    );
  });

  it("[CONV8] the first Word file a fresh server reads is not refused for the time its reader takes to load; the server itself never loads it", async () => {
    // Loading mammoth takes longer than the 2 s parse deadline.
    const { address, stderr } = await spawnServer({
      DATA_DIR: await tempDir(),
      NODE_OPTIONS: `--import ${join(ROOT, "test/helpers/slow-import.ts")}`,
      SLOW_IMPORT: "/node_modules/mammoth/lib/index.js",
      SLOW_IMPORT_MS: "2500",
    });
    const api = `${address.url}/api/v1/documents`;
    const put = await fetch(`${api}/first`, {
      method: "PUT",
      headers: { "content-type": DOCX_MEDIA_TYPE },
      body: (await renderDocx(parseContent(MARKDOWN, "markdown"))).slice(),
    });
    expect(put.status, await put.clone().text()).toBe(201);
    expect(await (await fetch(`${api}/first?format=markdown`)).text()).toContain("# Plan");
    const loads = stderr.join("").match(/^slow-import \w+/gm) ?? [];
    expect(loads.length).toBeGreaterThan(0);
    expect(new Set(loads)).toEqual(new Set(["slow-import worker"]));
  });

  it("[CONV8] the OpenAPI description lists Word as a body and a representation", async () => {
    const { address } = await startServer();
    const spec = JSON.stringify(await (await fetch(`${address.url}/api/v1/openapi.json`)).json());
    expect(spec).toContain(DOCX_MEDIA_TYPE);
    expect(spec).toContain('"docx"');
  });
});
