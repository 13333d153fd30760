/**
 * Embedding in real Chromium ([EMB] rules): the README's plain-HTML example,
 * served from another origin, a read-only embed, and destroy().
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import * as Y from "yjs";
import { browser, closeBrowser } from "../helpers/browser.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

/** A customer's site: its own origin (port 0) serving `html` at /, set once the collab server runs. */
async function hostSite(): Promise<{ origin: string; url: string; html: string }> {
  const site = { origin: "", url: "", html: "" };
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(site.html);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  site.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  site.url = `${site.origin}/`;
  return site;
}

/** A collab server that allows the site's origin, as the README tells embedders to configure it. */
async function serverFor(site: { origin: string }) {
  return startServer({ config: { allowedOrigins: [site.origin] } });
}

/** The README's plain-HTML example, pointed at `address`. */
function readmeExample(address: { url: string; wsUrl: string }, extra = ""): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Embed the editor"));
  const html = /```html\n([\s\S]*?)```/.exec(section)?.[1];
  if (html === undefined) throw new Error("README has no HTML example under 'Embed the editor'");
  return `<!doctype html><meta charset="utf-8"><body>${html
    .replaceAll("http://localhost:1234", address.url)
    .replaceAll("ws://localhost:1234", address.wsUrl)
    .replace("<collab-editor ", `<collab-editor ${extra} `)}</body>`;
}

async function newPage() {
  const context = await (await browser()).newContext();
  onTestFinished(() => context.close());
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error("page error:", error.message));
  return page;
}

describe("embedding", () => {
  it("[EMB1] the README's plain-HTML example edits the document from another origin", async () => {
    const site = await hostSite();
    const { address } = await serverFor(site);
    const watcher = connect({ url: address.wsUrl, name: "team/notes" });
    await synced(watcher);
    const page = await newPage();
    const sockets: string[] = [];
    page.on("websocket", (socket) => sockets.push(socket.url()));
    site.html = readmeExample(address);
    await page.goto(site.url);
    const content = page.locator("collab-editor .collab-editor__content");
    await content.click();
    // One element, one editor, one socket, however many attributes it was upgraded with.
    expect(sockets).toHaveLength(1);
    // Nothing global lands in the host page: Tiptap's stylesheet is not injected.
    expect(await page.locator("head style[data-tiptap-style]").count()).toBe(0);
    await page.keyboard.type("typed in an embed");
    await expect
      .poll(() => watcher.document.getXmlFragment("default").toString())
      .toContain("typed in an embed");
    await page.locator("collab-editor").getByText("All changes saved").waitFor();
    await page.locator('collab-editor .collab-editor__person[data-name="Ada"]').waitFor();
  });

  it("[EMB2] a read-only embed shows the document but cannot change it", async () => {
    const site = await hostSite();
    const { address, server } = await serverFor(site);
    const writer = connect({ url: address.wsUrl, name: "team/notes" });
    await synced(writer);
    const paragraph = new Y.XmlElement("paragraph");
    paragraph.insert(0, [new Y.XmlText("read me")]);
    writer.document.getXmlFragment("default").insert(0, [paragraph]);
    await acknowledged(writer);
    const before = (await server.store.meta("team/notes"))?.logEntries;

    const page = await newPage();
    site.html = readmeExample(address, 'readonly offline="false"');
    await page.goto(site.url);
    const content = page.locator("collab-editor .collab-editor__content");
    await content.getByText("read me").waitFor();
    expect(await content.getAttribute("contenteditable")).toBe("false");
    await content.click();
    await page.keyboard.type("should not appear");
    expect(await page.locator("collab-editor .collab-editor__tool").count()).toBe(0);
    expect(await content.textContent()).not.toContain("should not appear");
    expect(writer.document.getXmlFragment("default").toString()).not.toContain("should not appear");
    expect((await server.store.meta("team/notes"))?.logEntries).toBe(before);
  });

  it("[EMB3] destroy() closes the socket and removes what the editor added", async () => {
    const site = await hostSite();
    const { address, server } = await serverFor(site);
    const page = await newPage();
    site.html = `<!doctype html><meta charset="utf-8"><div id="host"></div>
      <script type="module">
        import { createCollabEditor } from "${address.url}/embed/collab-editor.js";
        window.handle = createCollabEditor(document.querySelector("#host"), {
          url: "${address.wsUrl}", document: "destroyed", offline: false, user: { name: "Temp" },
        });
      </script>`;
    await page.goto(site.url);
    await page.locator("#host .collab-editor").waitFor();
    await expect.poll(() => server.hocuspocus.getConnectionsCount()).toBe(1);
    await page.evaluate(() =>
      (window as unknown as { handle: { destroy(): void } }).handle.destroy(),
    );
    await expect.poll(() => server.hocuspocus.getConnectionsCount()).toBe(0);
    await expect
      .poll(() => server.metrics.registry.getSingleMetricAsString("collab_connections_open"))
      .toMatch(/collab_connections_open 0/);
    expect(await page.locator("#host").innerHTML()).toBe("");
  });
});

describe("comments in an embed", () => {
  it('[COM6] the host\'s mentions callback suggests its people; `comment` events follow; comments="false" hides the panel', async () => {
    const site = await hostSite();
    const { address } = await serverFor(site);
    const writer = connect({ url: address.wsUrl, name: "mentions" });
    await synced(writer);
    const paragraph = new Y.XmlElement("paragraph");
    paragraph.insert(0, [new Y.XmlText("Budget for the next quarter")]);
    writer.document.getXmlFragment("default").insert(0, [paragraph]);
    await acknowledged(writer);
    const page = await newPage();
    site.html = `<!doctype html><meta charset="utf-8"><div id="host"></div>
      <script type="module">
        import { createCollabEditor } from "${address.url}/embed/collab-editor.js";
        window.events = [];
        window.handle = createCollabEditor(document.querySelector("#host"), {
          url: "${address.wsUrl}", document: "mentions", offline: false, user: { name: "Host" },
          mentions: async (query) =>
            [{ id: "u-42", name: "Grace Hopper" }, { id: "u-7", name: "Alan Turing" }]
              .filter((p) => p.name.toLowerCase().includes(query.toLowerCase())),
        });
        window.handle.on("comment", (event) => window.events.push(event));
      </script>`;
    await page.goto(site.url);
    await page.locator("#host .collab-editor__content").getByText("Budget").waitFor();
    await page.evaluate(() => {
      const { editor } = (
        window as unknown as {
          handle: { editor: { commands: { focus(): void; setTextSelection(r: object): void } } };
        }
      ).handle;
      editor.commands.focus();
      editor.commands.setTextSelection({ from: 1, to: 7 });
    });
    await page.locator(".collab-comments__new").click();
    const input = page.locator(".collab-comments__composer textarea");
    // Suggestions from the host, chosen with the keyboard: the arrows move (and wrap), Enter picks.
    await input.pressSequentially("Over to you @a");
    const suggestions = page.locator(".collab-comments__suggestion");
    const selected = page.locator('.collab-comments__suggestion[aria-selected="true"]');
    await expect.poll(() => suggestions.allTextContents()).toEqual(["Grace Hopper", "Alan Turing"]);
    expect(await selected.textContent()).toBe("Grace Hopper");
    await input.press("ArrowDown");
    expect(await selected.textContent()).toBe("Alan Turing");
    expect(await input.getAttribute("aria-activedescendant")).toBe(
      await selected.getAttribute("id"),
    );
    await input.press("ArrowDown");
    expect(await selected.textContent()).toBe("Grace Hopper");
    await input.press("ArrowUp");
    await input.press("ArrowUp");
    expect(await selected.textContent()).toBe("Grace Hopper");
    await input.press("Enter");
    expect(await input.inputValue()).toBe("Over to you @Grace Hopper ");
    await page.locator(".collab-comments__composer button[type=submit]").click();
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { events: unknown[] }).events))
      .toEqual([{ op: "create", thread: expect.any(String) }]);
    const threads = (await (
      await fetch(`${address.url}/api/v1/documents/mentions/threads`)
    ).json()) as {
      threads: Array<{
        anchor: { text: string };
        comments: Array<{ body: string; mentions: unknown }>;
      }>;
    };
    expect(threads.threads[0]?.anchor.text).toBe("Budget");
    expect(threads.threads[0]?.comments[0]).toMatchObject({
      body: "Over to you @Grace Hopper",
      mentions: [{ id: "u-42", label: "Grace Hopper" }],
    });

    const plain = await newPage();
    site.html = readmeExample(address, 'comments="false" offline="false"');
    await plain.goto(site.url);
    await plain.locator("collab-editor .collab-editor__content").waitFor();
    expect(await plain.locator("collab-editor .collab-comments").count()).toBe(0);
    expect(await plain.locator("collab-editor .collab-comments__new").count()).toBe(0);
  });
});

describe("framing", () => {
  it("[OPS4] a site in ALLOWED_ORIGINS may frame the app; any other site is refused by frame-ancestors", async () => {
    const allowed = await hostSite();
    const other = await hostSite();
    const { address } = await serverFor(allowed);
    const frame = `<!doctype html><meta charset="utf-8"><iframe src="${address.url}/d/framed" width="800" height="500"></iframe>`;
    allowed.html = frame;
    other.html = frame;
    const framedEditor = async (site: { url: string }) => {
      const page = await newPage();
      const refused: string[] = [];
      page.on("console", (message) => {
        if (/frame-ancestors/.test(message.text())) refused.push(message.text());
      });
      await page.goto(site.url);
      const child = page.frames().find((f) => f !== page.mainFrame());
      return { page, child, refused };
    };
    const ok = await framedEditor(allowed);
    await ok.child?.locator(".collab-editor__content").waitFor();
    expect(ok.refused).toEqual([]);
    const blocked = await framedEditor(other);
    await expect.poll(() => blocked.refused.length).toBeGreaterThan(0);
    expect(await blocked.child?.locator(".collab-editor__content").count()).toBe(0);
  });
});
