/**
 * Version history in real Chromium against a real server ([APP7]), and the
 * document shape the server's conversion and the browser's editor agree on
 * ([EDIT9]).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, editorText, openPage } from "../helpers/browser.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

type Address = Awaited<ReturnType<typeof startServer>>["address"];

/** A REST call (anonymous loopback mode: no credentials needed); the parsed JSON answer. */
async function rest(
  address: Address,
  path: string,
  init: { method?: string; json?: unknown } = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${address.url}/api/v1${path}`, {
    method: init.method ?? "GET",
    headers: init.json === undefined ? {} : { "content-type": "application/json" },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

function documentPath(name: string, rest = ""): string {
  return `/documents/${encodeURIComponent(name)}${rest}`;
}

/** The browser editor's document, as Tiptap JSON. */
function editorJson(page: Page): Promise<unknown> {
  return page.evaluate(() =>
    (window as unknown as { collab: { editor: { getJSON(): unknown } } }).collab.editor.getJSON(),
  );
}

/** Types `text` at the end of the document. */
async function type(page: Page, text: string): Promise<void> {
  await page.evaluate(() =>
    (
      window as unknown as { collab: { editor: { commands: { focus(at: string): void } } } }
    ).collab.editor.commands.focus("end"),
  );
  // Tiptap focuses on the next animation frame; until then keys would go where focus was.
  await page.waitForFunction(() =>
    document.activeElement?.classList.contains("collab-editor__content"),
  );
  await page.keyboard.type(text);
}

const text = (...parts: string[]) => parts.map((t) => ({ type: "text", text: t }));
const p = (...parts: string[]) => ({ type: "paragraph", content: text(...parts) });
const item = (...content: unknown[]) => ({ type: "listItem", content });

/** A document with every kind of node and mark the editor offers. */
const RICH = {
  type: "doc",
  content: [
    { type: "heading", attrs: { level: 1 }, content: text("Launch plan") },
    {
      type: "paragraph",
      content: [
        { type: "text", text: "Plain, " },
        { type: "text", marks: [{ type: "bold" }], text: "bold" },
        { type: "text", text: ", " },
        { type: "text", marks: [{ type: "italic" }], text: "italic" },
        { type: "text", text: ", " },
        { type: "text", marks: [{ type: "bold" }, { type: "italic" }], text: "both" },
        { type: "text", text: ", " },
        { type: "text", marks: [{ type: "underline" }], text: "underlined" },
        { type: "text", text: ", " },
        { type: "text", marks: [{ type: "strike" }], text: "struck" },
        { type: "text", text: ", " },
        { type: "text", marks: [{ type: "code" }], text: "code()" },
        { type: "text", text: " and a " },
        {
          type: "text",
          marks: [{ type: "link", attrs: { href: "https://example.org/docs" } }],
          text: "link",
        },
        { type: "text", text: "." },
        { type: "hardBreak" },
        { type: "text", text: "After a line break." },
      ],
    },
    { type: "heading", attrs: { level: 2 }, content: text("Lists") },
    {
      type: "bulletList",
      content: [
        item(p("one")),
        item(p("two"), { type: "bulletList", content: [item(p("nested"))] }),
      ],
    },
    { type: "orderedList", attrs: { start: 3 }, content: [item(p("third")), item(p("fourth"))] },
    {
      type: "taskList",
      content: [
        { type: "taskItem", attrs: { checked: true }, content: [p("done")] },
        { type: "taskItem", attrs: { checked: false }, content: [p("to do")] },
      ],
    },
    { type: "heading", attrs: { level: 3 }, content: text("Quotes and code") },
    { type: "blockquote", content: [p("Quoted "), p("over two paragraphs")] },
    {
      type: "codeBlock",
      attrs: { language: "ts" },
      content: text("const answer = 42;\nconsole.log(answer);"),
    },
    {
      type: "table",
      content: [
        {
          type: "tableRow",
          content: [
            { type: "tableHeader", attrs: { colwidth: [140] }, content: [p("Owner")] },
            { type: "tableHeader", content: [p("Task")] },
          ],
        },
        {
          type: "tableRow",
          content: [
            { type: "tableCell", content: [p("Ann")] },
            { type: "tableCell", content: [p("Write the plan"), p("and review it")] },
          ],
        },
      ],
    },
    { type: "horizontalRule" },
    { type: "paragraph" },
  ],
};

describe("version history", () => {
  it("[APP7] save a named version, preview it after edits, and restore it live on every open page", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/${encodeURIComponent("launch/plan")}`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await type(alice, "First draft");
    await alice.getByText("All changes saved").waitFor();

    await alice.getByRole("button", { name: "History" }).click();
    const panel = alice.getByRole("complementary", { name: "History" });
    await panel.getByLabel("Save the current content as a version").fill("Before launch");
    await panel.getByRole("button", { name: "Save version" }).click();
    await panel.getByText("Saved “Before launch”.").waitFor();
    await panel.locator(".app-version", { hasText: "Before launch" }).waitFor();

    // A name already taken says so.
    await panel.getByLabel("Save the current content as a version").fill("Before launch");
    await panel.getByRole("button", { name: "Save version" }).click();
    await panel
      .getByText("There is already a version named “Before launch”. Choose another name.")
      .waitFor();

    await type(alice, ", then edited");
    await expect.poll(() => editorText(bob)).toBe("First draft, then edited");
    await alice.getByText("All changes saved").waitFor();

    await panel.locator(".app-version", { hasText: "Before launch" }).click();
    const preview = panel.getByRole("document", { name: "Content of Before launch" });
    // The preview fetches the version through the API, whose conversion code loads on first
    // use: under a loaded CI machine that takes longer than expect.poll's default second.
    await expect.poll(() => preview.textContent(), { timeout: 10_000 }).toBe("First draft");
    expect(await preview.getAttribute("contenteditable")).toBe("false");
    // The live document is untouched by a preview.
    expect(await editorText(alice)).toBe("First draft, then edited");

    alice.once("dialog", (dialog) => void dialog.accept());
    await panel.getByRole("button", { name: "Restore this version" }).click();
    await panel.getByText(/^Restored “Before launch”\./).waitFor();
    // Both pages receive the restore over the WebSocket, like any change.
    await expect.poll(() => editorText(alice)).toBe("First draft");
    await expect.poll(() => editorText(bob)).toBe("First draft");
    // The content before the restore was kept as an automatic version.
    await panel.locator(".app-version", { hasText: "Before restoring" }).waitFor();
    const listed = (await rest(address, documentPath("launch/plan", "/versions"))).body as {
      versions: Array<{ name: string | null; kind: string }>;
    };
    expect(listed.versions.map((v) => v.kind)).toContain("auto");
    expect(listed.versions.some((v) => v.name === "Before launch")).toBe(true);
  });

  it("[APP7] the history panel works from the keyboard and fits a phone", async () => {
    const { address } = await startServer();
    const page = await openPage(`${address.url}/d/phone-history`, "Phone User", { phone: true });
    await editorReady(page);
    await type(page, "Kept in a version");
    await page.getByText("All changes saved").waitFor();

    /** The focused element, as `tag#id text`. */
    const focused = () =>
      page.evaluate(() => {
        const active = document.activeElement;
        return `${active?.tagName.toLowerCase()}#${active?.id ?? ""} ${active?.textContent ?? ""}`;
      });
    await page.getByRole("button", { name: "History" }).focus();
    await page.keyboard.press("Enter");
    expect(await focused()).toBe("h2#history-title History");
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);

    // Tab to the name field, save with Enter.
    for (let i = 0; i < 5 && !(await focused()).startsWith("input#version-name"); i++) {
      await page.keyboard.press("Tab");
    }
    expect(await focused()).toBe("input#version-name ");
    await page.keyboard.type("From the keyboard");
    await page.keyboard.press("Enter");
    const entry = page.locator(".app-version", { hasText: "From the keyboard" });
    await entry.waitFor();

    // Tab to the version, open its preview with Enter, Escape back to the list, Escape to close.
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press("Tab");
      if (await entry.evaluate((node) => node === document.activeElement)) break;
    }
    expect(await entry.evaluate((node) => node === document.activeElement)).toBe(true);
    await page.keyboard.press("Enter");
    await expect
      .poll(() => page.getByRole("document", { name: /^Content of/ }).textContent())
      .toBe("Kept in a version");
    const dir = join(ROOT, "test-results");
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: join(dir, "phone-history.png") });
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);
    await page.keyboard.press("Escape");
    await expect.poll(() => entry.evaluate((node) => node === document.activeElement)).toBe(true);
    await page.keyboard.press("Escape");
    expect(await page.getByRole("complementary", { name: "History" }).count()).toBe(0);
    expect(await focused()).toBe("button# History");
  });
});

describe("the document's shape", () => {
  it("[EDIT9] the server's conversion and the browser's editor agree on a rich document, both ways", async () => {
    const { address } = await startServer();
    const name = "shape/rich";
    const put = await rest(address, documentPath(name), { method: "PUT", json: RICH });
    expect(put.status).toBe(201);
    const stored = (await rest(address, documentPath(name, "?format=json"))).body;

    const page = await openPage(`${address.url}/d/${encodeURIComponent(name)}`, "Ada");
    await editorReady(page);
    await expect.poll(() => editorJson(page)).toEqual(stored);

    // Type and format in the browser; the server's JSON follows exactly.
    await type(page, " More.");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Control+Alt+2");
    await page.keyboard.type("Typed heading");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Control+b");
    await page.keyboard.type("bold");
    await page.keyboard.press("Control+b");
    await page.keyboard.type(" and ");
    await page.keyboard.press("Control+i");
    await page.keyboard.type("italic");
    await page.keyboard.press("Control+i");
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Task list (Ctrl+Shift+9)" }).click();
    await page.keyboard.type("a typed task");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Quote (Ctrl+Shift+B)" }).click();
    await page.keyboard.type("a typed quote with a ");
    await page.keyboard.type("link");
    await page.keyboard.press("Shift+ArrowLeft");
    await page.keyboard.press("Shift+ArrowLeft");
    await page.keyboard.press("Shift+ArrowLeft");
    await page.keyboard.press("Shift+ArrowLeft");
    page.once("dialog", (dialog) => void dialog.accept("https://example.com/typed"));
    await page.getByRole("button", { name: "Add or edit a link" }).click();
    await page.getByText("All changes saved").waitFor();

    const browserJson = await editorJson(page);
    expect(JSON.stringify(browserJson)).toContain("https://example.com/typed");
    expect(JSON.stringify(browserJson)).toContain("a typed task");
    await expect
      .poll(async () => (await rest(address, documentPath(name, "?format=json"))).body)
      .toEqual(browserJson);
  });
});
