/**
 * A deleted document in the browser ([TRASH5]) and the app's Trash page
 * ([APP8]), in real Chromium. Screenshots of both, desktop and phone, are
 * kept in test-results/ as artifacts.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, editorText, openPage } from "../helpers/browser.ts";
import { ROOT, type RunningServer, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

const SHOTS = join(ROOT, "test-results");

async function shot(page: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function api(server: RunningServer, method: string, path: string): Promise<number> {
  return (await fetch(`${server.address.url}/api/v1${path}`, { method })).status;
}

async function typeInto(page: Page, text: string): Promise<void> {
  await page.locator(".collab-editor__content").click();
  await page.keyboard.type(text);
  await page.locator(".collab-editor__save").getByText("All changes saved").waitFor();
}

describe("a deleted document in the browser", () => {
  for (const phone of [false, true]) {
    it(`[TRASH5] the page says the document was deleted and offers to download, save or discard the copy${phone ? " (phone)" : ""}`, async () => {
      const server = await startServer();
      const url = `${server.address.url}/d/meeting`;
      const page = await openPage(url, "Ada", { phone });
      await editorReady(page);
      await typeInto(page, "Decisions we made.");
      expect(await api(server, "DELETE", "/documents/meeting")).toBe(200);

      const notice = page.locator(".collab-editor__deleted");
      await notice.getByText("This document was deleted").waitFor();
      // The copy stays in view, read-only.
      await page.locator(".collab-editor__content").getByText("Decisions we made.").waitFor();
      expect(await page.locator(".collab-editor__content").getAttribute("contenteditable")).toBe(
        "false",
      );
      await shot(page, `trash-deleted-notice${phone ? "-phone" : ""}`);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        page.viewportSize()?.width ?? 0,
      );

      const [download] = await Promise.all([
        page.waitForEvent("download"),
        notice.getByRole("button", { name: "Download my copy" }).click(),
      ]);
      expect(download.suggestedFilename()).toBe("meeting.html");
      const file = await download.path();
      expect(await readFile(file, "utf8")).toContain("Decisions we made.");

      await notice.getByRole("button", { name: "Save as a new document…" }).click();
      const input = notice.getByLabel("Name of the new document");
      expect(await input.inputValue()).toBe("meeting (copy)");
      await notice.getByRole("button", { name: "Save copy" }).click();
      await page.waitForURL(`${server.address.url}/d/${encodeURIComponent("meeting (copy)")}`);
      await editorReady(page);
      await expect.poll(() => editorText(page)).toBe("Decisions we made.");
      // The deleted name is still deleted, and the copy is a document of its own.
      expect(await server.server.store.load("meeting")).toBeNull();
    });
  }

  it("[TRASH5] discarding the copy opens the name afresh, and saving under a taken name says so", async () => {
    const server = await startServer();
    const page = await openPage(`${server.address.url}/d/scratch`, "Ada");
    await editorReady(page);
    await typeInto(page, "Old draft.");
    // A thread on the old document, which the page keeps in its copy of the threads.
    const threads = page.locator(".collab-comments__thread .collab-comments__quote");
    await expect
      .poll(async () => {
        const response = await fetch(`${server.address.url}/api/v1/documents/scratch/threads`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ anchor: { quote: "Old draft" }, body: "Old?" }),
        });
        return response.status;
      })
      .toBe(201);
    await expect.poll(() => threads.allTextContents()).toEqual(["Old draft"]);
    await fetch(`${server.address.url}/api/v1/documents/taken`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: "already here",
    });
    await api(server, "DELETE", "/documents/scratch");
    const notice = page.locator(".collab-editor__deleted");
    await notice.getByText("This document was deleted").waitFor();
    await notice.getByRole("button", { name: "Save as a new document…" }).click();
    await notice.getByLabel("Name of the new document").fill("taken");
    await notice.getByRole("button", { name: "Save copy" }).click();
    await notice.getByText("A document named “taken” exists.").waitFor();

    await notice.getByRole("button", { name: "Discard my copy" }).click();
    await notice.getByRole("button", { name: "Discard it" }).click();
    // Opened afresh: the new, empty document of that name, editable.
    await page.locator(".collab-editor__deleted").waitFor({ state: "hidden" });
    await editorReady(page);
    await expect.poll(() => editorText(page)).toBe("");
    await typeInto(page, "A fresh start.");
    await expect
      .poll(async () => {
        const response = await fetch(`${server.address.url}/api/v1/documents/scratch?format=text`);
        return response.ok ? (await response.text()).trim() : "";
      })
      .toBe("A fresh start.");
    // The old document's threads went with the discarded copy: only the new one's show.
    const fresh = await fetch(`${server.address.url}/api/v1/documents/scratch/threads`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ anchor: { quote: "fresh" }, body: "New?" }),
    });
    expect(fresh.status).toBe(201);
    await expect.poll(() => threads.allTextContents()).toEqual(["fresh"]);
  });
});

describe("a restore into an open page", () => {
  it("[TRASH3] a page with the (empty) name open when a document is restored into it shows the restored content", async () => {
    const server = await startServer();
    await fetch(`${server.address.url}/api/v1/documents/back`, {
      method: "PUT",
      headers: { "content-type": "text/markdown" },
      body: "Welcome back",
    });
    const thread = await fetch(`${server.address.url}/api/v1/documents/back/threads`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ anchor: { quote: "Welcome" }, body: "Warm enough?" }),
    });
    expect(thread.status).toBe(201);
    await api(server, "DELETE", "/documents/back");
    const page = await openPage(`${server.address.url}/d/back`, "Ada");
    await editorReady(page);
    expect(await editorText(page)).toBe("");
    const quotes = page.locator(".collab-comments__thread .collab-comments__quote");
    expect(await quotes.count()).toBe(0);
    expect(await api(server, "POST", "/trash/back/restore")).toBe(200);
    await expect.poll(() => editorText(page)).toBe("Welcome back");
    // Its threads come back too: the threads document, closed with the document, is opened again.
    await expect.poll(() => quotes.allTextContents()).toEqual(["Welcome"]);
    expect(await page.locator(".collab-editor__deleted").isVisible()).toBe(false);
    await page.locator(".collab-editor__connection").getByText("Connected").waitFor();
  });
});

describe("the Trash page", () => {
  for (const phone of [false, true]) {
    it(`[APP8] lists deleted documents, restores one into the editor, and deletes one forever${phone ? " (phone)" : ""}`, async () => {
      const server = await startServer();
      for (const [name, text] of [
        ["roadmap", "Q1 goals"],
        ["old idea", "never mind"],
      ] as const) {
        await fetch(`${server.address.url}/api/v1/documents/${encodeURIComponent(name)}`, {
          method: "PUT",
          headers: { "content-type": "text/markdown" },
          body: text,
        });
        await api(server, "DELETE", `/documents/${encodeURIComponent(name)}`);
      }
      const page = await openPage(`${server.address.url}/`, "Ada", { phone });
      await page.getByRole("link", { name: "Trash" }).click();
      await page.waitForURL(`${server.address.url}/trash`);
      const list = page.getByRole("list", { name: "Deleted documents" });
      await list.getByText("roadmap").waitFor();
      await list.getByText("old idea").waitFor();
      await shot(page, `trash-page${phone ? "-phone" : ""}`);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        page.viewportSize()?.width ?? 0,
      );

      const idea = list.locator("li", { hasText: "old idea" });
      await idea.getByRole("button", { name: "Delete forever" }).click();
      await idea.getByRole("button", { name: "Click again to delete forever" }).click();
      await list.getByText("old idea").waitFor({ state: "detached" });

      await list
        .locator("li", { hasText: "roadmap" })
        .getByRole("button", { name: "Restore" })
        .click();
      await page.waitForURL(`${server.address.url}/d/roadmap`);
      await editorReady(page);
      await expect.poll(() => editorText(page)).toBe("Q1 goals");
    });
  }

  it("[APP8] a name taken by a new document restores under another name", async () => {
    const server = await startServer();
    const put = (body: string) =>
      fetch(`${server.address.url}/api/v1/documents/plan`, {
        method: "PUT",
        headers: { "content-type": "text/markdown" },
        body,
      });
    await put("the old plan");
    await api(server, "DELETE", "/documents/plan");
    await put("the new plan");
    const page = await openPage(`${server.address.url}/trash`, "Ada");
    const item = page.locator(".app-trash__item", { hasText: "plan" });
    await item.getByRole("button", { name: "Restore" }).click();
    await item.getByText("A new document named “plan” exists.", { exact: false }).waitFor();
    await item.getByRole("button", { name: "Restore as" }).click();
    await page.waitForURL(`${server.address.url}/d/${encodeURIComponent("plan (restored)")}`);
    await editorReady(page);
    await expect.poll(() => editorText(page)).toBe("the old plan");
  });
});
