/**
 * Real Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by
 * playwright-core (Playwright cannot download its own browsers here). Each
 * call gives a fresh context (its own storage); everything closes when the
 * test finishes.
 */
import { type Browser, chromium, type Page } from "playwright-core";
import { expect, onTestFinished } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS } from "../../scripts/chromium.ts";

let shared: Promise<Browser> | undefined;

/** One browser per test file; contexts isolate the pages. */
export function browser(): Promise<Browser> {
  shared ??= chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS],
  });
  return shared;
}

export async function closeBrowser(): Promise<void> {
  const running = shared;
  shared = undefined;
  await (await running)?.close();
}

/** A page in a fresh context, with the local user's name preset; `phone`: a 390x844 touch screen. */
export async function openPage(
  url: string,
  userName: string,
  options: { phone?: boolean } = {},
): Promise<Page> {
  const context = await (await browser()).newContext(
    options.phone === true
      ? { viewport: { width: 390, height: 844 }, hasTouch: true }
      : { viewport: { width: 900, height: 700 } },
  );
  onTestFinished(() => context.close());
  await context.addInitScript(
    (name) => localStorage.setItem("collab-docs:user-name", name),
    userName,
  );
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[${userName}] page error:`, error.message));
  watchContentSecurityPolicy(page);
  await page.goto(url);
  return page;
}

/**
 * Fails the test if the page reports any Content-Security-Policy violation:
 * the app must run whole under the server's CSP ([OPS4]).
 */
export function watchContentSecurityPolicy(page: Page): void {
  const violations: string[] = [];
  void page.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (event) =>
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`),
    ),
  );
  page.on("console", (message) => {
    const text = message.text();
    if (text.startsWith("CSP violation") || /Content Security Policy/.test(text)) {
      violations.push(text);
    }
  });
  onTestFinished(() => {
    expect(violations, "Content-Security-Policy violations").toEqual([]);
  });
}

/** The editor's plain text (not the page text, which includes caret labels). */
export function editorText(page: Page): Promise<string> {
  return page.evaluate(() =>
    (window as unknown as { collab: { editor: { getText(): string } } }).collab.editor.getText(),
  );
}

/** Waits until the page's editor is connected and synced. */
export async function editorReady(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const collab = (window as unknown as { collab?: { provider: { isSynced: boolean } } }).collab;
    return collab?.provider.isSynced === true;
  });
  await page.locator(".collab-editor__content").waitFor();
}
