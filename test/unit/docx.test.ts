/**
 * Word files ([CONV8] in SPEC.md): a document written as .docx and read back
 * is the same document, apart from what Word cannot carry (README); untrusted
 * files are checked before they are unpacked.
 */
import type { JSONContent } from "@tiptap/core";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { parseContent } from "../../server/src/documents/convert.ts";
import {
  DocxLimits,
  docxToHtml,
  renderDocx,
  restoreTaskLists,
} from "../../server/src/documents/docx.ts";
import { isCollabError } from "../../server/src/errors.ts";
import { lyingZip, withPicture } from "../helpers/docx.ts";

const SOURCE = `<h1>Launch plan</h1>
<p>Plain <strong>bold</strong> <em>italic</em> <u>under</u> <s>struck</s> <code>code()</code>
<a href="https://example.com/a">link</a> and <strong><em>both</em></strong>.<br>After a break.</p>
<h2>Lists</h2>
<ul><li><p>one</p><ul><li><p>nested</p></li></ul></li><li><p>two</p></li></ul>
<ol start="3"><li><p>three</p></li><li><p>four</p></li></ol>
<ul data-type="taskList"><li data-type="taskItem" data-checked="false"><p>to do</p></li><li data-type="taskItem" data-checked="true"><p>done</p></li></ul>
<h3>Quotes and code</h3>
<blockquote><p>Quoted</p><p>over two paragraphs</p></blockquote>
<pre><code class="language-ts">const answer = 42;
  console.log(answer);</code></pre>
<table><tr><th><p>Owner</p></th><th><p>Task</p></th></tr>
<tr><td><p>Ann</p></td><td><p><strong>Write</strong> the plan</p></td></tr>
<tr><td colspan="2"><p>Both columns</p></td></tr></table>
<hr>
<p>The end.</p>`;

/** What Word cannot carry: a numbered list's first number, a code block's language. */
function withoutWordLosses(node: JSONContent): JSONContent {
  const out: JSONContent = { ...node };
  if (out.type === "orderedList") out.attrs = { ...out.attrs, start: 1 };
  if (out.type === "codeBlock") out.attrs = { ...out.attrs, language: null };
  if (node.content) out.content = node.content.map(withoutWordLosses);
  return out;
}

async function roundTrip(doc: JSONContent): Promise<JSONContent> {
  return restoreTaskLists(parseContent(await docxToHtml(await renderDocx(doc)), "html"));
}

function errorCode(error: unknown): string {
  return isCollabError(error) ? error.code : String(error);
}

describe("Word files", () => {
  it("[CONV8] headings, marks, links, lists, task lists, quotes, code, tables, rules and breaks survive a round trip", async () => {
    const doc = parseContent(SOURCE, "html");
    expect(await roundTrip(doc)).toEqual(withoutWordLosses(doc));
  });

  it("[CONV8] a task list right after a bullet list comes back as its own list (Word joins them)", async () => {
    const doc = parseContent("- one\n- two\n\n- [ ] to do\n- [x] done\n", "markdown");
    expect(doc.content?.map((n) => n.type)).toEqual(["bulletList", "taskList"]);
    expect(await roundTrip(doc)).toEqual(doc);
  });

  it("[CONV8] an empty document writes and reads back empty", async () => {
    const empty = parseContent("", "html");
    expect(await roundTrip(empty)).toEqual(empty);
  });

  it("[CONV8] without a hook pictures are left out, with no empty paragraph, and the text around them is kept", async () => {
    const file = await withPicture(2 * 1024 * 1024);
    expect(file.byteLength).toBeGreaterThan(2 * 1024 * 1024);
    const html = await docxToHtml(file);
    expect(html).not.toContain("data:");
    expect(html.length).toBeLessThan(1024);
    expect(restoreTaskLists(parseContent(html, "html"))).toEqual(
      parseContent("<p>Before the picture</p><p>After the picture</p>", "html"),
    );
  });

  it("[CONV8] a caller can say what pictures become (the hook attachments will use)", async () => {
    const seen: Array<{ type: string; bytes: number }> = [];
    const html = await docxToHtml(await withPicture(64 * 1024), {
      images: async (image) => {
        seen.push({ type: image.contentType, bytes: (await image.read()).byteLength });
        return "/attachments/1";
      },
    });
    expect(seen).toEqual([{ type: "image/png", bytes: expect.any(Number) }]);
    expect(seen[0]?.bytes).toBeGreaterThan(64 * 1024);
    expect(html).toContain('<img alt="A square of noise" src="/attachments/1" />');
  });

  it("[CONV8] a zip bomb is refused from its directory, before anything is unpacked", async () => {
    const bomb = zipSync({
      "word/document.xml": new Uint8Array(DocxLimits.maxUncompressedBytes + 1),
    });
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    const error = await docxToHtml(bomb).catch((e: unknown) => e);
    expect(errorCode(error)).toBe("CONTENT_TOO_LARGE");
  });

  it("[CONV8] a zip bomb whose directory understates its sizes is refused as it unpacks", async () => {
    const { maxUncompressedBytes, maxEntryBytes } = DocxLimits;
    // Files within the limit for one file, declared as 1 KiB each, together past the total.
    const count = Math.floor(maxUncompressedBytes / maxEntryBytes) + 1;
    const part = new Uint8Array(Math.ceil((maxUncompressedBytes + 1) / count));
    const parts: Record<string, Uint8Array> = {};
    for (let i = 0; i < count; i++)
      parts[i === 0 ? "word/document.xml" : `word/media/${i}.bmp`] = part;
    const total = await docxToHtml(lyingZip(parts, 1024)).catch((e: unknown) => e);
    expect(total).toMatchObject({
      code: "CONTENT_TOO_LARGE",
      message: `the Word file unpacks to more than ${maxUncompressedBytes} bytes`,
    });
    // One file past the limit for one file, declared as 1 KiB.
    const one = lyingZip({ "word/document.xml": new Uint8Array(maxEntryBytes + 1) }, 1024);
    expect(one.byteLength).toBeLessThan(64 * 1024);
    expect(await docxToHtml(one).catch((e: unknown) => e)).toMatchObject({
      code: "CONTENT_TOO_LARGE",
      message: `word/document.xml in the Word file unpacks to more than ${maxEntryBytes} bytes`,
    });
  });

  it("[CONV8] an archive of too many files is refused", async () => {
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i <= DocxLimits.maxEntries; i++) files[`f${i}`] = new Uint8Array(0);
    const error = await docxToHtml(zipSync(files)).catch((e: unknown) => e);
    expect(errorCode(error)).toBe("CONTENT_TOO_LARGE");
  });

  it("[CONV8] bytes that are not a zip, or a zip that is not a Word document, are invalid content", async () => {
    const notZip = await docxToHtml(new TextEncoder().encode("<html>hi</html>")).catch((e) => e);
    expect(errorCode(notZip)).toBe("CONTENT_INVALID");
    const notWord = await docxToHtml(zipSync({ "readme.txt": new Uint8Array(3) })).catch((e) => e);
    expect(errorCode(notWord)).toBe("CONTENT_INVALID");
  });
});
