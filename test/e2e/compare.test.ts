/**
 * Comparing versions in the History panel, in real Chromium against a real
 * server ([APP10]): what changed since a version, and between two versions,
 * shown read-only in the editor's own rendering, changing nothing.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Locator, Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, editorText, openPage } from "../helpers/browser.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

/** Where screenshots go (looked at by people, not compared). */
async function screenshotDir(): Promise<string> {
  const dir = join(ROOT, "test-results");
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Puts the caret at the end of the document and waits until the editor has focus. */
async function focusEnd(page: Page): Promise<void> {
  await page.evaluate(() =>
    (
      window as unknown as { collab: { editor: { commands: { focus(at: string): void } } } }
    ).collab.editor.commands.focus("end"),
  );
  // Tiptap focuses on the next animation frame; until then keys would go where focus was.
  await page.waitForFunction(() =>
    document.activeElement?.classList.contains("collab-editor__content"),
  );
}

/** The document's stored Yjs state, as the API gives it. */
async function storedState(base: string, name: string): Promise<Uint8Array> {
  const response = await fetch(`${base}/api/v1/documents/${encodeURIComponent(name)}?format=yjs`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Types `Hello brave world`, saves it as version `label`, then deletes `brave ` and adds ` again`. */
async function versionThenEdit(page: Page, panel: Locator, label: string): Promise<void> {
  await focusEnd(page);
  await page.keyboard.type("Hello brave world");
  await page.getByText("All changes saved").waitFor();
  await panel.getByLabel("Save the current content as a version").fill(label);
  await panel.getByRole("button", { name: "Save version" }).click();
  await panel.getByText(`Saved “${label}”.`).waitFor();

  await focusEnd(page);
  await page.keyboard.type(" again");
  // Select "brave " (the paragraph's text starts at position 1) and delete it with a key.
  await page.evaluate(
    ([from, to]) =>
      (
        window as unknown as {
          collab: {
            editor: { commands: { setTextSelection(range: { from: number; to: number }): void } };
          };
        }
      ).collab.editor.commands.setTextSelection({ from, to }),
    [1 + "Hello ".length, 1 + "Hello brave ".length] as const,
  );
  await page.keyboard.press("Backspace");
  await expect.poll(() => editorText(page)).toBe("Hello world again");
  await page.getByText("All changes saved").waitFor();
}

/** The marked text of the comparison shown in `panel`: insertions and deletions, in order. */
async function marks(panel: Locator): Promise<{ ins: string[]; del: string[] }> {
  const changes = panel.getByRole("document", { name: "Changes" });
  return {
    ins: await changes.locator("ins").allTextContents(),
    del: await changes.locator("del").allTextContents(),
  };
}

describe("comparing versions", () => {
  it("[APP10] compare view shows an insertion and a deletion made after a version", async () => {
    const { address } = await startServer();
    const name = "compare/plan";
    const page = await openPage(`${address.url}/d/${encodeURIComponent(name)}`, "Alice");
    await page.setViewportSize({ width: 1280, height: 800 });
    await editorReady(page);
    await page.getByRole("button", { name: "History" }).click();
    const panel = page.getByRole("complementary", { name: "History" });
    await versionThenEdit(page, panel, "Before edits");
    const before = await storedState(address.url, name);

    await panel
      .getByRole("button", { name: "Compare “Before edits” with the current document" })
      .click();
    const changes = panel.getByRole("document", { name: "Changes" });
    // The comparison loads the API's conversion code on first use: slower on a loaded machine.
    await expect
      .poll(() => changes.textContent(), { timeout: 10_000 })
      .toBe("Hello brave world again");
    expect(await marks(panel)).toEqual({ ins: [" again"], del: ["brave "] });
    await panel.getByText("1 insertion, 1 deletion").waitFor();
    await panel.getByText(/^From “Before edits” \(.+\) to the current document\.$/).waitFor();
    expect(await changes.getAttribute("contenteditable")).toBe("false");
    // Shown in the editor's own rendering: the same paragraph element as the editor's.
    expect(await changes.locator("p").count()).toBe(1);
    // Insertions and deletions look different: green underline, red strike-through.
    const look = await changes.evaluate((root) => {
      const style = (selector: string) => {
        const node = root.querySelector(selector);
        return node === null ? "" : getComputedStyle(node).textDecorationLine;
      };
      return { ins: style("ins"), del: style("del") };
    });
    expect(look).toEqual({ ins: "underline", del: "line-through" });
    await page.screenshot({ path: join(await screenshotDir(), "compare-desktop.png") });

    // Reading the comparison changed nothing: the page's document, the stored state.
    expect(await editorText(page)).toBe("Hello world again");
    expect(await storedState(address.url, name)).toEqual(before);

    // Any two versions: pick the later side.
    await panel.getByRole("button", { name: "← All versions" }).click();
    await panel.getByLabel("Save the current content as a version").fill("After edits");
    await panel.getByRole("button", { name: "Save version" }).click();
    await panel.getByText("Saved “After edits”.").waitFor();
    const later = await panel
      .locator(".app-version", { hasText: "After edits" })
      .getAttribute("data-id");
    await panel
      .getByRole("button", { name: "Compare “Before edits” with the current document" })
      .click();
    await panel.getByText("1 insertion, 1 deletion").waitFor();
    await panel.getByLabel("To", { exact: true }).selectOption(later ?? "");
    await panel.getByText(/^From “Before edits” \(.+\) to “After edits” \(.+\)\.$/).waitFor();
    expect(await marks(panel)).toEqual({ ins: [" again"], del: ["brave "] });
    // The same version on both sides: nothing changed.
    await panel.getByLabel("From", { exact: true }).selectOption(later ?? "");
    await panel.getByText("No changes").waitFor();
    await expect.poll(() => marks(panel)).toEqual({ ins: [], del: [] });

    // Escape leads back to the list, to the Compare button it came from.
    await page.keyboard.press("Escape");
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? ""))
      .toBe("Compare “After edits” with the current document");
    expect(await editorText(page)).toBe("Hello world again");
  });

  it("[APP10] blocks added and removed are marked at their edge, in lists, task lists and tables too", async () => {
    const { address } = await startServer();
    const name = "compare/rich";
    const text = (t: string) => ({ type: "text", text: t });
    const p = (...content: unknown[]) => ({ type: "paragraph", content });
    const item = (t: string) => ({ type: "listItem", content: [p(text(t))] });
    const task = (checked: boolean, t: string) => ({
      type: "taskItem",
      attrs: { checked },
      content: [p(text(t))],
    });
    const cell = (type: string, t: string) => ({ type, content: [p(text(t))] });
    const row = (type: string, a: string, b: string) => ({
      type: "tableRow",
      content: [cell(type, a), cell(type, b)],
    });
    const plan = (changed: boolean) => ({
      type: "doc",
      content: [
        { type: "heading", attrs: { level: 1 }, content: [text("Launch plan")] },
        p(
          text(
            changed
              ? "We ship the editor in April, after a longer beta."
              : "We ship the editor in March, after the beta.",
          ),
        ),
        { type: "heading", attrs: { level: 2 }, content: [text("Tasks")] },
        {
          type: "taskList",
          content: [task(true, "Write the plan"), task(changed, "Review with the team")],
        },
        {
          type: "bulletList",
          content: [item("Docs"), item("Support"), ...(changed ? [item("Training")] : [])],
        },
        {
          type: "table",
          content: [
            row("tableHeader", "Owner", "Task"),
            row("tableCell", "Ann", "Write the plan"),
            row("tableCell", changed ? "Cleo" : "Bob", "Review"),
          ],
        },
        changed
          ? p(text("Sign-off by "), { type: "text", marks: [{ type: "bold" }], text: "Friday" })
          : p(text("Questions go to the channel.")),
      ],
    });
    const api = (method: string, path: string, body?: unknown) =>
      fetch(`${address.url}/api/v1/documents/${encodeURIComponent(name)}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    await api("PUT", "", plan(false));
    await api("POST", "/versions", { name: "Draft for review" });
    await api("PUT", "", plan(true));

    const page = await openPage(`${address.url}/d/${encodeURIComponent(name)}`, "Ann");
    await page.setViewportSize({ width: 1280, height: 800 });
    await editorReady(page);
    await page.getByRole("button", { name: "History" }).click();
    const panel = page.getByRole("complementary", { name: "History" });
    // From the version's preview this time.
    await panel.locator(".app-version", { hasText: "Draft for review" }).click();
    await panel.getByRole("button", { name: "Compare with current" }).click();
    const changes = panel.getByRole("document", { name: "Changes" });
    await expect
      .poll(() => marks(panel), { timeout: 10_000 })
      .toMatchObject({
        ins: expect.arrayContaining(["April", "a longer", "Training", "Cleo", "Friday"]),
        del: expect.arrayContaining(["March", "the", "Bob", "Questions go to the channel."]),
      });
    // Whole blocks: the new list item, the task whose box was ticked, the removed paragraph.
    expect(await changes.locator('li[data-change="inserted"]').allTextContents()).toEqual(
      expect.arrayContaining(["Training"]),
    );
    expect(await changes.locator('ul[data-type="taskList"] > li[data-change]').count()).toBe(2);
    expect(await changes.locator('p[data-change="deleted"]').allTextContents()).toEqual([
      "Questions go to the channel.",
    ]);
    await page.screenshot({ path: join(await screenshotDir(), "compare-rich-desktop.png") });
  });

  it("[APP10] the comparison works from the keyboard and fits a phone", async () => {
    const { address } = await startServer();
    const page = await openPage(`${address.url}/d/phone-compare`, "Phone User", { phone: true });
    await editorReady(page);
    await page.getByRole("button", { name: "History" }).focus();
    await page.keyboard.press("Enter");
    const panel = page.getByRole("complementary", { name: "History" });
    await versionThenEdit(page, panel, "Draft");

    // From the list, Tab to the version's Compare button and open it with Enter.
    const compare = panel.getByRole("button", {
      name: "Compare “Draft” with the current document",
    });
    await panel.locator(".app-version", { hasText: "Draft" }).focus();
    await page.keyboard.press("Tab");
    expect(await compare.evaluate((node) => node === document.activeElement)).toBe(true);
    await page.keyboard.press("Enter");
    await expect
      .poll(() => marks(panel), { timeout: 10_000 })
      .toEqual({ ins: [" again"], del: ["brave "] });
    await panel.getByText("1 insertion, 1 deletion").waitFor();
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);
    await page.screenshot({ path: join(await screenshotDir(), "compare-phone.png") });
    await page.keyboard.press("Escape");
    await expect.poll(() => compare.evaluate((node) => node === document.activeElement)).toBe(true);
    expect(await editorText(page)).toBe("Hello world again");
  });
});
