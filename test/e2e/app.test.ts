/**
 * The app's own pages and states in real Chromium ([APP] rules), and the
 * side-by-side screenshot kept as a test artifact.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { browser, closeBrowser, editorReady, openPage } from "../helpers/browser.ts";
import { connect, synced } from "../helpers/clients.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

describe("the app", () => {
  it("[APP1] / lists stored documents and opens or creates one by name", async () => {
    const { address } = await startServer();
    for (const name of ["alpha notes", "team/plan"]) {
      const writer = connect({ url: address.wsUrl, name });
      await synced(writer);
      writer.document.getXmlFragment("default").insert(0, []);
      writer.document.getText("touch").insert(0, "x");
      await expect.poll(() => writer.unsyncedChanges).toBe(0);
    }
    const page = await openPage(`${address.url}/`, "Alice");
    // The name can be set from the list page too.
    await page.getByLabel("Your name").fill("Alice from the list");
    await page.getByLabel("Your name").blur();
    expect(await page.evaluate(() => localStorage.getItem("collab-docs:user-name"))).toBe(
      "Alice from the list",
    );
    const links = page.locator(".app-list a span");
    await expect.poll(() => links.allTextContents()).toEqual(["alpha notes", "team/plan"]);
    await page.getByLabel("Document name").fill("brand new/doc ü");
    await page.getByRole("button", { name: "Open or create" }).click();
    await page.waitForURL(`${address.url}/d/${encodeURIComponent("brand new/doc ü")}`);
    await editorReady(page);
    await page.locator(".app-title").getByText("brand new/doc ü").waitFor();
  });

  it("[APP2] changing your name updates presence and your caret for everyone", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/names`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.type("hi");
    await bob.locator(".collaboration-carets__label", { hasText: "Alice" }).waitFor();
    await alice.getByLabel("Your name").fill("Alice Cooper");
    await alice.getByLabel("Your name").press("Enter");
    await alice.getByLabel("Your name").blur();
    await bob.locator('.collab-editor__person[data-name="Alice Cooper"]').waitFor();
    // Back in the document, the caret carries the new name.
    await alice.locator(".collab-editor__content").click();
    await bob.locator(".collaboration-carets__label", { hasText: "Alice Cooper" }).waitFor();
    expect(await alice.evaluate(() => localStorage.getItem("collab-docs:user-name"))).toBe(
      "Alice Cooper",
    );
  });

  it("[APP3] a refused document says access denied", async () => {
    const { address } = await startServer();
    const page = await openPage(`${address.url}/d/${encodeURIComponent("   ")}`, "Alice");
    await page.getByText(/Access denied \(invalid-document-name/).waitFor();
  });

  it("[APP4] screenshot: two people side by side, with each other's carets", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/roadmap`;
    // Two browsers' worth of people: a caret shows only while its editor has focus.
    const [alice, bob] = await Promise.all([
      openPage(url, "Alice Smith"),
      openPage(url, "Bob Jones"),
    ]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.press("Control+Alt+1");
    await alice.keyboard.type("Q3 roadmap");
    await alice.keyboard.press("Enter");
    await alice.keyboard.type("Ship the editor, then access control. ");
    await alice.keyboard.press("Control+b");
    await alice.keyboard.type("Durability first.");
    await alice.keyboard.press("Control+b");
    await bob.locator(".collab-editor__content").getByText("Durability first.").waitFor();
    await bob.evaluate(() =>
      (
        window as unknown as { collab: { editor: { commands: { focus(at: string): void } } } }
      ).collab.editor.commands.focus("end"),
    );
    await bob.keyboard.press("Enter");
    await bob.getByRole("button", { name: "Task list (Ctrl+Shift+9)" }).click();
    await bob.keyboard.type("Write the embedding guide");
    await alice.locator(".collaboration-carets__label", { hasText: "Bob Jones" }).waitFor();
    await bob.locator(".collaboration-carets__label", { hasText: "Alice Smith" }).waitFor();
    const shots = await Promise.all(
      [alice, bob].map(async (p) => (await p.screenshot()).toString("base64")),
    );
    // Compose the two views into one picture.
    const board = await (await browser()).newContext({ viewport: { width: 1832, height: 732 } });
    onTestFinished(() => board.close());
    const view = await board.newPage();
    await view.setContent(
      `<body style="margin:0;display:flex;gap:16px;padding:16px;background:#d1d5db">${shots
        .map(
          (b64) =>
            `<img style="width:900px;border-radius:8px;box-shadow:0 2px 8px #0003" src="data:image/png;base64,${b64}">`,
        )
        .join("")}</body>`,
    );
    const dir = join(ROOT, "test-results");
    await mkdir(dir, { recursive: true });
    await view.screenshot({ path: join(dir, "side-by-side.png") });
  });

  it("[APP5] fits a phone screen and the toolbar is reachable and usable from the keyboard", async () => {
    const { address } = await startServer();
    const page = await openPage(`${address.url}/d/phone`, "Phone User", { phone: true });
    await editorReady(page);
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);
    const dir = join(ROOT, "test-results");
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: join(dir, "phone.png") });

    // Keyboard only: Tab to the Bold button, press it, type.
    await page.locator(".collab-editor__content").click();
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press("Shift+Tab");
      if (
        await page.evaluate(
          () => document.activeElement?.getAttribute("aria-label") === "Bold (Ctrl+B)",
        )
      )
        break;
    }
    expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(
      "Bold (Ctrl+B)",
    );
    await page.keyboard.press("Enter");
    await expect
      .poll(() => page.getByRole("button", { name: "Bold (Ctrl+B)" }).getAttribute("aria-pressed"))
      .toBe("true");
  });
});
