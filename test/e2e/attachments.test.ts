/**
 * Images and files in real Chromium (ATT rules in SPEC.md):
 * Ann pastes a screenshot and Bob's page renders it from the server (never
 * base64 in the document); Ann drops a file and Bob's page shows a card that
 * downloads the same bytes; alt text and a resize reach Bob; an image pasted
 * while offline shows at once and uploads when the network returns; a file
 * the server refuses is taken out again with a message; with token auth
 * images render through signed links. Screenshots of a desktop and a phone
 * page go to test-results/screenshots.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { mintToken } from "../../server/src/auth/tokens.ts";
import { closeBrowser, editorReady, openPage } from "../helpers/browser.ts";
import { png } from "../helpers/png.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

const SHOTS = resolve(ROOT, "test-results/screenshots");
const SOON = { timeout: 15_000 };
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Fires a paste (`kind` "paste") or a drop of one file on the editor, as the browser would. */
async function giveFile(
  page: Page,
  kind: "paste" | "drop",
  file: { bytes: Buffer; name: string; type: string },
): Promise<void> {
  await page.evaluate(
    ({ kind, base64, name, type }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name, { type }));
      const target = document.querySelector(".collab-editor__content") as HTMLElement;
      if (kind === "paste") {
        target.focus();
        target.dispatchEvent(
          new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }),
        );
      } else {
        const box = target.getBoundingClientRect();
        target.dispatchEvent(
          new DragEvent("drop", {
            dataTransfer: transfer,
            bubbles: true,
            cancelable: true,
            clientX: box.left + 20,
            clientY: box.bottom - 10,
          }),
        );
      }
    },
    { kind, base64: file.bytes.toString("base64"), name: file.name, type: file.type },
  );
}

type Json = { type?: string; attrs?: Record<string, unknown>; content?: Json[] };

/** Every node of type `type` in the page's document. */
async function nodes(page: Page, type: string): Promise<Json[]> {
  const json = (await page.evaluate(() =>
    (window as unknown as { collab: { editor: { getJSON(): unknown } } }).collab.editor.getJSON(),
  )) as Json;
  const found: Json[] = [];
  const walk = (node: Json) => {
    if (node.type === type) found.push(node);
    for (const child of node.content ?? []) walk(child);
  };
  walk(json);
  return found;
}

/** The rendered image's state: its src and whether it has decoded pixels. */
function imageState(page: Page) {
  return page.evaluate(() => {
    const img = document.querySelector<HTMLImageElement>(".collab-image__img");
    return img === null
      ? null
      : {
          src: img.getAttribute("src") ?? "",
          loaded: img.complete && img.naturalWidth > 0,
          alt: img.alt,
        };
  });
}

describe("images and files", () => {
  it("[ATT1] a pasted image renders for the other page from the server; a dropped file downloads the same bytes", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/attachments`;
    const ann = await openPage(url, "Ann");
    const bob = await openPage(url, "Bob");
    await Promise.all([editorReady(ann), editorReady(bob)]);
    await ann.locator(".collab-editor__content").click();
    await ann.keyboard.type("Screenshot of the bug:");
    await ann.keyboard.press("Enter");

    const shot = png(320, 180, [79, 70, 229], 40);
    await giveFile(ann, "paste", { bytes: shot, name: "screenshot.png", type: "image/png" });
    // Ann sees it at once (from the file), then from the server; Bob from the server.
    await expect.poll(async () => (await imageState(ann))?.loaded, SOON).toBe(true);
    await expect
      .poll(async () => (await nodes(ann, "image"))[0]?.attrs?.attachment, SOON)
      .toBe(sha256(shot));
    await expect
      .poll(async () => imageState(bob), SOON)
      .toMatchObject({
        loaded: true,
        src: expect.stringContaining(`/attachments/${sha256(shot)}`),
      });
    const image = (await nodes(bob, "image"))[0];
    expect(image?.attrs).toMatchObject({
      attachment: sha256(shot),
      pending: null,
      alt: "screenshot",
    });
    expect(JSON.stringify(await nodes(bob, "image"))).not.toContain("data:");

    // Alt text and width, set on Ann's page, reach Bob's.
    await ann.locator(".collab-image__img").click();
    const alt = ann.getByLabel("Alt text");
    await alt.fill("The error dialog");
    await alt.press("Enter");
    await expect.poll(async () => (await imageState(bob))?.alt, SOON).toBe("The error dialog");
    await ann.locator(".collab-image__img").click();
    const handle = ann.locator(".collab-image__handle");
    const box = await handle.boundingBox();
    if (box === null) throw new Error("no resize handle");
    await ann.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await ann.mouse.down();
    await ann.mouse.move(box.x - 100, box.y, { steps: 5 });
    await ann.mouse.up();
    await expect
      .poll(async () => (await nodes(bob, "image"))[0]?.attrs?.width, SOON)
      .toBeGreaterThan(150);
    const width = Number((await nodes(bob, "image"))[0]?.attrs?.width);
    expect(width).toBeLessThan(260);
    await expect
      .poll(
        () =>
          bob.evaluate(
            () => document.querySelector<HTMLElement>(".collab-image__frame")?.style.width,
          ),
        SOON,
      )
      .toBe(`${width}px`);

    // A dropped file becomes a card on Bob's page whose link downloads the same bytes.
    const notes = Buffer.from("Meeting notes\n- ship it\n");
    await giveFile(ann, "drop", { bytes: notes, name: "notes.txt", type: "text/plain" });
    const card = bob.locator(".collab-file");
    await card.waitFor(SOON);
    await expect
      .poll(() => card.locator(".collab-file__name").textContent(), SOON)
      .toBe("notes.txt");
    await expect.poll(() => card.locator(".collab-file__meta").textContent(), SOON).toBe("24 B");
    const href = await card.locator(".collab-file__download").getAttribute("href");
    expect(href).toContain(`/attachments/${sha256(notes)}`);
    const downloaded = await bob.evaluate(async (href) => {
      const response = await fetch(href ?? "");
      return {
        text: await response.text(),
        disposition: response.headers.get("content-disposition"),
      };
    }, href);
    expect(downloaded).toEqual({
      text: notes.toString(),
      disposition: `attachment; filename="notes.txt"; filename*=UTF-8''notes.txt`,
    });

    await mkdir(SHOTS, { recursive: true });
    await ann.setViewportSize({ width: 1280, height: 800 });
    await ann.screenshot({ path: resolve(SHOTS, "attachments-desktop.png"), fullPage: true });
    const phone = await openPage(url, "Cy", { phone: true });
    await editorReady(phone);
    await expect.poll(async () => (await imageState(phone))?.loaded, SOON).toBe(true);
    await phone.screenshot({ path: resolve(SHOTS, "attachments-phone.png"), fullPage: true });
  });

  it("[ATT6] an image pasted offline shows at once and uploads when the network returns; a refused file is taken out with a message", async () => {
    const { address } = await startServer({ config: { maxAttachmentBytes: 64 * 1024 } });
    const url = `${address.url}/d/offline-images`;
    const ann = await openPage(url, "Ann");
    const bob = await openPage(url, "Bob");
    await Promise.all([editorReady(ann), editorReady(bob)]);
    await ann.locator(".collab-editor__content").click();
    await ann.keyboard.type("Offline picture:");
    await ann.keyboard.press("Enter");

    await ann.context().setOffline(true);
    const picture = png(64, 64, [22, 163, 74]);
    await giveFile(ann, "paste", { bytes: picture, name: "offline.png", type: "image/png" });
    await expect.poll(async () => (await imageState(ann))?.loaded, SOON).toBe(true);
    await expect
      .poll(() => ann.locator(".collab-image__status").textContent(), SOON)
      .toBe("Waiting for the connection to upload");
    await ann.context().setOffline(false);
    await expect
      .poll(async () => (await nodes(bob, "image"))[0]?.attrs?.attachment, SOON)
      .toBe(sha256(picture));
    await expect.poll(async () => (await imageState(bob))?.loaded, SOON).toBe(true);

    // Larger than MAX_ATTACHMENT_BYTES: the node goes again, the user is told, the text stays.
    const big = png(400, 400, [200, 40, 40], 255);
    expect(big.byteLength).toBeGreaterThan(64 * 1024);
    await giveFile(ann, "paste", { bytes: big, name: "huge.png", type: "image/png" });
    const toast = ann.locator(".collab-editor__toast-text");
    await toast.waitFor(SOON);
    expect(await toast.textContent()).toBe(
      "“huge.png” could not be added: the file is larger than MAX_ATTACHMENT_BYTES (65536 bytes)",
    );
    await expect.poll(async () => (await nodes(ann, "image")).length, SOON).toBe(1);
    await expect.poll(async () => (await nodes(bob, "image")).length, SOON).toBe(1);
    expect(await ann.locator(".collab-editor__content").textContent()).toContain(
      "Offline picture:",
    );
  });

  it("[ATT5] with token auth, images render through signed links", async () => {
    const secret = "attachments-e2e-secret-0123456789abcdef";
    const { address } = await startServer({ config: { authSecret: secret } });
    const token = await mintToken({
      secret,
      userId: "ann",
      docs: ["signed"],
      perm: "write",
      ttl: "10m",
    });
    const reader = await mintToken({
      secret,
      userId: "bob",
      docs: ["signed"],
      perm: "read",
      ttl: "10m",
    });
    const ann = await openPage(`${address.url}/d/signed#token=${token}`, "Ann");
    const bob = await openPage(`${address.url}/d/signed#token=${reader}`, "Bob");
    await Promise.all([editorReady(ann), editorReady(bob)]);
    await ann.locator(".collab-editor__content").click();
    const picture = png(48, 48, [234, 88, 12]);
    await giveFile(ann, "paste", { bytes: picture, name: "signed.png", type: "image/png" });
    await expect
      .poll(async () => imageState(bob), SOON)
      .toMatchObject({ loaded: true, src: expect.stringMatching(/\?expires=\d+&signature=/) });
    // Read-only, Bob's page offers no upload: a paste there adds nothing.
    await giveFile(bob, "paste", {
      bytes: png(8, 8, [0, 0, 0]),
      name: "nope.png",
      type: "image/png",
    });
    expect(await nodes(bob, "image")).toHaveLength(1);
  });
});
