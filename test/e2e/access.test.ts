/**
 * Access tokens in real Chromium against a server with token auth: the app's
 * "Access denied" panel and token field, the `#token=` link, read-only
 * tokens, refusals explained in words, and `<collab-editor token>`
 * ([EDIT7], [EDIT8], [APP6]).
 */
import { SignJWT } from "jose";
import type { Page } from "playwright-core";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { mintToken, type Permission } from "../../server/src/auth/tokens.ts";
import { browser, closeBrowser, editorReady, editorText, openPage } from "../helpers/browser.ts";
import { startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

const SECRET = "access-test-secret-of-at-least-32-characters";

function token(docs: string[], perm: Permission, userId = "ada", secret = SECRET) {
  return mintToken({ secret, userId, name: userId, docs, perm, ttl: "1h" });
}

/** A token for `docs` that expired a minute ago. */
function expiredToken(docs: string[]): Promise<string> {
  return new SignJWT({ docs, perm: "write" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("ada")
    .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
    .sign(new TextEncoder().encode(SECRET));
}

async function tokenServer() {
  return startServer({ config: { authSecret: SECRET } });
}

type Address = Awaited<ReturnType<typeof tokenServer>>["address"];

/** A REST call with a bearer token; resolves with the status and the parsed body. */
async function rest(
  address: Address,
  path: string,
  bearer: string,
  init: { method?: string; json?: unknown } = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${address.url}/api/v1${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(init.json === undefined ? {} : { "content-type": "application/json" }),
    },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await response.text();
  const json = response.headers.get("content-type")?.includes("json") ?? false;
  return { status: response.status, body: json ? JSON.parse(text) : text };
}

function doc(...paragraphs: string[]) {
  return {
    type: "doc",
    content: paragraphs.map((text) => ({ type: "paragraph", content: [{ type: "text", text }] })),
  };
}

const connectionText = (page: Page) => page.locator(".collab-editor__connection").textContent();

describe("access in the browser", () => {
  it("[APP6] without a token the page says access is denied in words, and a pasted token connects", async () => {
    const { address } = await tokenServer();
    const page = await openPage(`${address.url}/d/plans`, "Ada");
    const panel = page.locator(".app-denied");
    await panel.getByRole("heading", { name: "Access denied" }).waitFor();
    await panel.getByText("You need an access token to open this document.").waitFor();
    // The server's own reason stays available in the status line.
    await expect
      .poll(() => connectionText(page))
      .toBe("Access denied (token-missing: this server needs an access token)");
    expect(await page.locator(".collab-editor__content").getAttribute("contenteditable")).toBe(
      "false",
    );

    const writer = await token(["plans"], "write");
    await page.getByLabel("Access token").fill(writer);
    await page.getByRole("button", { name: "Use this token" }).click();
    await editorReady(page);
    expect(await panel.count()).toBe(0);
    expect(await page.evaluate(() => localStorage.getItem("collab-docs:token"))).toBe(writer);
    await page.locator(".collab-editor__content").click();
    await page.keyboard.type("written with a pasted token");
    await page.getByText("All changes saved").waitFor();
    const stored = await rest(address, "/documents/plans?format=json", writer);
    expect(JSON.stringify(stored.body)).toContain("written with a pasted token");
  });

  it("[EDIT8] refusals say what is wrong in words (invalid, expired, another document) and keep the reason", async () => {
    const { address } = await tokenServer();
    const cases = [
      {
        token: await token(["plans"], "write", "ada", "another-secret-of-at-least-32-characters"),
        message:
          "The access token is not valid (the signature does not match). Check that it was copied whole, or ask for a new one.",
        reason: "token-invalid: the signature does not match",
      },
      {
        token: await expiredToken(["plans"]),
        message: /^Your access token expired on .+\. Ask for a new one\.$/,
        reason: "token-expired: the token expired at",
      },
      {
        token: await token(["other"], "write"),
        message: "Your access token does not give access to this document.",
        reason: "access-denied: the token does not grant this document",
      },
    ];
    for (const refused of cases) {
      const page = await openPage(`${address.url}/d/plans#token=${refused.token}`, "Ada");
      const message = page.locator(".app-denied .app-denied__message");
      await message.waitFor();
      if (typeof refused.message === "string")
        expect(await message.textContent()).toBe(refused.message);
      else expect(await message.textContent()).toMatch(refused.message);
      await expect.poll(() => connectionText(page)).toContain(refused.reason);
      expect(await page.locator(".collab-editor__content").getAttribute("contenteditable")).toBe(
        "false",
      );
      await page.context().close();
    }
  });

  it("[APP6] a #token= link opens the document, and the token leaves the address bar but is kept", async () => {
    const { address } = await tokenServer();
    const writer = await token(["team/*"], "write");
    const path = `/d/${encodeURIComponent("team/notes")}`;
    const page = await openPage(`${address.url}${path}#token=${writer}`, "Ada");
    await editorReady(page);
    expect(page.url()).toBe(`${address.url}${path}`);
    expect(await page.evaluate(() => location.hash)).toBe("");
    expect(await page.evaluate(() => localStorage.getItem("collab-docs:token"))).toBe(writer);
    // The next visit (no fragment) uses the kept token.
    await page.reload();
    await editorReady(page);
    expect(await page.locator(".app-denied").count()).toBe(0);
  });

  it("[EDIT7] a read-only token: a badge, no toolbar, typing changes nothing here or on the server, a writer's changes still arrive", async () => {
    const { address } = await tokenServer();
    const writer = await token(["plans"], "write", "wes");
    const reader = await token(["plans"], "read", "rita");
    expect(
      (
        await rest(address, "/documents/plans", writer, {
          method: "PUT",
          json: doc("original text"),
        })
      ).status,
    ).toBe(201);
    const before = await rest(address, "/documents/plans?format=json", reader);

    const page = await openPage(`${address.url}/d/plans#token=${reader}`, "Rita");
    await editorReady(page);
    await page.locator(".collab-editor__badge", { hasText: "Read only" }).waitFor();
    await expect
      .poll(() =>
        page.evaluate(
          () => (window as unknown as { collab: { readOnly: boolean } }).collab.readOnly,
        ),
      )
      .toBe(true);
    await expect.poll(() => connectionText(page)).toBe("Connected — read only");
    const content = page.locator(".collab-editor__content");
    expect(await content.getAttribute("contenteditable")).toBe("false");
    const bold = page.getByRole("button", { name: "Bold (Ctrl+B)" });
    expect(await bold.isDisabled()).toBe(true);
    expect(await editorText(page)).toBe("original text");

    await content.click();
    await page.keyboard.press("End");
    await page.keyboard.type("should not appear");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Backspace");
    expect(await editorText(page)).toBe("original text");
    expect(await rest(address, "/documents/plans?format=json", reader)).toEqual(before);

    // A writer's change (through the REST API) reaches the reader live.
    await rest(address, "/documents/plans", writer, {
      method: "PUT",
      json: doc("original text", "added by the writer"),
    });
    await expect.poll(() => editorText(page)).toContain("added by the writer");
    expect(await content.getAttribute("contenteditable")).toBe("false");
  });

  it("[APP6] the document list explains when the server wants a token, and lists what a token grants", async () => {
    const { address } = await tokenServer();
    const admin = await token(["*"], "write");
    for (const name of ["alpha", "beta"]) {
      await rest(address, `/documents/${name}`, admin, { method: "PUT", json: doc(name) });
    }
    const page = await openPage(`${address.url}/`, "Ada");
    await page
      .getByText("This server lists documents only for an access token.", { exact: false })
      .waitFor();
    // Opening a document by name still works without the list.
    expect(await page.getByLabel("Document name").isVisible()).toBe(true);
    await page.getByLabel("Access token").fill(await token(["alpha"], "read"));
    await page.getByRole("button", { name: "Use this token" }).click();
    await expect.poll(() => page.locator(".app-list a span").allTextContents()).toEqual(["alpha"]);
  });

  it("[EDIT8] changing <collab-editor>'s token attribute reconnects with the new token", async () => {
    const { address } = await tokenServer();
    const context = await (await browser()).newContext();
    onTestFinished(() => context.close());
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error.message));
    // A page on the server's own origin (one on another origin needs ALLOWED_ORIGINS), its
    // element given a token for another document.
    const refused = await token(["other"], "write");
    await page.goto(`${address.url}/healthz`);
    await page.evaluate(
      ({ wsUrl, refused }) => {
        const style = Object.assign(document.createElement("link"), {
          rel: "stylesheet",
          href: "/embed/collab-editor.css",
        });
        const element = document.createElement("collab-editor");
        const attributes = { url: wsUrl, document: "plans", "user-name": "Ada", offline: "false" };
        for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
        element.setAttribute("token", refused);
        document.body.replaceChildren(style, element);
      },
      { wsUrl: address.wsUrl, refused },
    );
    await page.addScriptTag({
      type: "module",
      content: `import { defineCollabEditorElement } from "/embed/collab-editor.js";
        defineCollabEditorElement();`,
    });
    const notice = page.locator("collab-editor .collab-editor__notice");
    await notice.getByText("Your access token does not give access to this document.").waitFor();
    expect(await notice.getByText("Access denied").isVisible()).toBe(true);

    const writer = await token(["plans"], "write");
    await page.evaluate(
      (t) => document.querySelector("collab-editor")?.setAttribute("token", t),
      writer,
    );
    await page.locator("collab-editor .collab-editor__connection").getByText("Connected").waitFor();
    expect(await notice.isVisible()).toBe(false);
    await page.locator("collab-editor .collab-editor__content").click();
    await page.keyboard.type("after a new token");
    await page.locator("collab-editor").getByText("All changes saved").waitFor();
    await expect
      .poll(async () => (await rest(address, "/documents/plans?format=text", writer)).body)
      .toContain("after a new token");
  });
});
