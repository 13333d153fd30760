/**
 * Files in and out of the app in real Chromium ([APP9] in SPEC.md): the
 * document page's Download menu saves Markdown, HTML and Word files; the list
 * page imports a Word file as a new document, which holds the same document
 * (headings, marks, lists, task list, table, and an image, whose picture is
 * an attachment of the new document); a file of another kind is
 * refused with a message. Screenshots go to test-results/screenshots.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Download, Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, openPage } from "../helpers/browser.ts";
import { png } from "../helpers/png.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

const SHOTS = resolve(ROOT, "test-results/screenshots");
const SOON = { timeout: 15_000 };
const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

const MARKDOWN = `# Plan

Some **bold**, *italic* and \`code\` with a [link](https://example.com/).

- one
  - nested
- two

- [ ] to do
- [x] done

| Who | What |
| --- | --- |
| Ann | Lead |
`;

async function downloadAs(page: Page, label: string): Promise<Download> {
  await page.getByText("Download", { exact: true }).click();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("menuitem", { name: label }).click(),
  ]);
  return download;
}

describe("files", () => {
  it("[APP9] download as Markdown and Word; import the Word file as a new document with the same content", async () => {
    const { address } = await startServer();
    const api = `${address.url}/api/v1/documents`;
    // The plan shows a picture, an attachment of the document.
    const picture = await fetch(`${api}/team%2Fplan/attachments?filename=chart.png`, {
      method: "POST",
      body: new Uint8Array(png(160, 90, [37, 99, 235], 20)),
    });
    const { id, url } = (await picture.json()) as { id: string; url: string };
    const put = await fetch(`${api}/team%2Fplan`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: `${MARKDOWN}\n![Quarterly chart](${url})\n`,
    });
    expect(put.status).toBe(201);
    const original = await (await fetch(`${api}/team%2Fplan?format=json`)).json();
    expect(JSON.stringify(original)).toContain(`"attachment":"${id}"`);

    const page = await openPage(`${address.url}/d/${encodeURIComponent("team/plan")}`, "Ann");
    await editorReady(page);
    const markdown = await downloadAs(page, "Markdown (.md)");
    expect(markdown.suggestedFilename()).toBe("plan.md");
    expect(await readFile(await markdown.path(), "utf8")).toContain("# Plan");
    await page.getByText("Download", { exact: true }).click();
    await page.screenshot({ path: resolve(SHOTS, "download-menu.png") });
    await page.keyboard.press("Escape");
    const word = await downloadAs(page, "Word (.docx)");
    expect(word.suggestedFilename()).toBe("plan.docx");
    const bytes = await readFile(await word.path());
    expect([...bytes.subarray(0, 2)]).toEqual([0x50, 0x4b]);

    // The list page: a file of another kind is refused, then the Word file imports.
    await page.goto(`${address.url}/`);
    const input = page.locator(".app-import__file");
    await input.setInputFiles({
      name: "notes.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("hi"),
    });
    await expect
      .poll(() => page.locator(".app-import__status").textContent(), SOON)
      .toContain("is not a Markdown (.md), HTML (.html) or Word (.docx) file");
    await page.getByLabel("Document name").fill("imported/plan");
    await input.setInputFiles({ name: "plan.docx", mimeType: DOCX, buffer: bytes });
    await page.waitForURL(`**/d/${encodeURIComponent("imported/plan")}`, SOON);
    await editorReady(page);
    await expect.poll(() => page.locator(".collab-editor__content table").count(), SOON).toBe(1);
    const imported = await (await fetch(`${api}/imported%2Fplan?format=json`)).json();
    // The same, the image's path naming the new document: its picture is an attachment there.
    expect(JSON.stringify(imported)).toBe(
      JSON.stringify(original).replaceAll("team%2Fplan", "imported%2Fplan"),
    );
    await expect
      .poll(
        () =>
          page.evaluate(() => {
            const img = document.querySelector<HTMLImageElement>(".collab-image__img");
            return img?.complete === true && img.naturalWidth === 160 ? img.alt : null;
          }),
        SOON,
      )
      .toBe("Quarterly chart");

    // Importing again under the same name is refused, and says why.
    await page.goto(`${address.url}/`);
    await page.getByLabel("Document name").fill("imported/plan");
    await page
      .locator(".app-import__file")
      .setInputFiles({ name: "plan.docx", mimeType: DOCX, buffer: bytes });
    await expect
      .poll(() => page.locator(".app-import__status").textContent(), SOON)
      .toContain('A document named "imported/plan" exists');

    const phone = await openPage(`${address.url}/`, "Cy", { phone: true });
    await phone.locator(".app-list").waitFor();
    await phone.screenshot({ path: resolve(SHOTS, "import-phone.png"), fullPage: true });
  }, 90_000);
});
