/**
 * The editor app in real Chromium against a real server ([EDIT] rules).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, editorText, openPage } from "../helpers/browser.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

describe("the editor app", () => {
  it("[EDIT1] two people typing in the same paragraph at once end with the same text, every character kept", async () => {
    const { address, server } = await startServer();
    const url = `${address.url}/d/${encodeURIComponent("shared notes")}`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.type("start ");
    await expect.poll(() => editorText(bob)).toBe("start ");
    await bob.locator(".collab-editor__content").click();
    await bob.keyboard.press("End");
    const a = "aaaaaaaaaaaaaaaaaaaa";
    const b = "bbbbbbbbbbbbbbbbbbbb";
    await Promise.all([alice.keyboard.type(a, { delay: 5 }), bob.keyboard.type(b, { delay: 5 })]);
    await expect
      .poll(async () => (await editorText(alice)) === (await editorText(bob)), { timeout: 10_000 })
      .toBe(true);
    const text = await editorText(alice);
    expect(text.startsWith("start")).toBe(true);
    expect([...text].filter((c) => c === "a").length).toBe(a.length + 1);
    expect([...text].filter((c) => c === "b").length).toBe(b.length);
    // Both saw "All changes saved", which means the server stored everything.
    for (const page of [alice, bob]) await page.getByText("All changes saved").waitFor();
    expect((await server.store.meta("shared notes"))?.logEntries).toBeGreaterThan(0);
  });

  it("[EDIT2] presence lists everyone, remote carets carry names, and a closed page leaves", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/presence`;
    const alice = await openPage(url, "Alice Smith");
    const bob = await openPage(url, "Bob Jones");
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.type("Hello from Alice");
    await bob.locator(".collab-editor__content").click();
    await bob.keyboard.press("End");
    await bob.keyboard.type(" and Bob");
    const people = (page: typeof alice) =>
      page
        .locator(".collab-editor__person")
        .evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.name).sort());
    await expect.poll(() => people(alice)).toEqual(["Alice Smith", "Bob Jones"]);
    await expect.poll(() => people(bob)).toEqual(["Alice Smith", "Bob Jones"]);
    await alice.locator(".collaboration-carets__label", { hasText: "Bob Jones" }).waitFor();
    await bob.locator(".collaboration-carets__label", { hasText: "Alice Smith" }).waitFor();

    const dir = join(ROOT, "test-results");
    await mkdir(dir, { recursive: true });
    await alice.screenshot({ path: join(dir, "editor-alice.png") });
    await bob.screenshot({ path: join(dir, "editor-bob.png") });

    await bob.context().close();
    await expect.poll(() => people(alice)).toEqual(["Alice Smith"]);
  });
});
