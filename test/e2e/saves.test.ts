/**
 * "All changes saved" is true after a reconnect ([EDIT10]): a page types while
 * the server is down (and just before it dies), the server comes back, and
 * the instant the page shows "All changes saved" the server is killed with
 * SIGKILL. The store, read directly while the server is down, must hold
 * every character the page typed. The kill is made from inside the page's
 * own status change (a MutationObserver calling an exposed binding), so it
 * lands as close to the message as the browser allows.
 */
import { afterAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { FIELD } from "../../editor/src/extensions.ts";
import { LevelDbStore } from "../../server/src/persistence/leveldb.ts";
import { closeBrowser, editorReady, openPage } from "../helpers/browser.ts";
import { freePort } from "../helpers/engines.ts";
import { type ServerProcess, spawnServer, tempDir } from "../helpers/server.ts";

afterAll(closeBrowser);

const ROUNDS = 20;
const DOCUMENT = "saved-then-killed";
const WAIT = { timeout: 30_000 } as const;

/** The document's text as stored in `dir` (the server must be down). */
async function storedXml(dir: string): Promise<string> {
  const store = await LevelDbStore.open({ dir });
  try {
    const doc = new Y.Doc();
    for (const update of (await store.load(DOCUMENT))?.updates ?? []) Y.applyUpdate(doc, update);
    return doc.getXmlFragment(FIELD).toString();
  } finally {
    await store.close();
  }
}

describe("saving in the browser", () => {
  it(`[EDIT10] after a reconnect with offline edits, a kill -9 the instant the page says "All changes saved" loses nothing (${ROUNDS} rounds)`, {
    timeout: 240_000,
  }, async () => {
    const dataDir = await tempDir("collab-saved-");
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PORT: String(port), RATE_LIMIT_CONNECTIONS: "0" };
    let server: ServerProcess = await spawnServer(env);
    const page = await openPage(`${server.address.url}/d/${DOCUMENT}`, "Saver");
    await editorReady(page);

    // The page calls this the instant its save status reads "All changes saved".
    let armed = false;
    let killedOnSave = 0;
    let onKilled: () => void = () => {};
    await page.exposeBinding("collabSavedShown", () => {
      if (!armed) return;
      armed = false;
      server.child.kill("SIGKILL");
      killedOnSave++;
      onKilled();
    });
    await page.evaluate(() => {
      const save = document.querySelector(".collab-editor__save") as HTMLElement;
      const notify = (window as unknown as { collabSavedShown: () => void }).collabSavedShown;
      new MutationObserver(() => {
        if (save.textContent === "All changes saved") notify();
      }).observe(save, { childList: true, characterData: true, subtree: true });
    });
    const content = page.locator(".collab-editor__content");
    const status = page.locator(".collab-editor__connection");
    const saveStatus = page.locator(".collab-editor__save");
    await content.click();

    // The provider would reconnect on its own within its backoff (1-3 s here); asking it to
    // reconnect at once only makes the 20 rounds shorter. What is measured does not depend on it.
    const reconnectNow = () =>
      page.evaluate(() =>
        (
          window as unknown as {
            collab: { provider: { configuration: { websocketProvider: { connect(): unknown } } } };
          }
        ).collab.provider.configuration.websocketProvider.connect(),
      );
    const typed: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await status.getByText("Connected").waitFor(WAIT);
      await saveStatus.getByText("All changes saved").waitFor(WAIT);
      // Typed just before the server dies: it may never be stored, so what is typed offline
      // next depends on the reconnect's sync handshake to reach the store.
      const inFlight = ` f${round}.`;
      await page.keyboard.type(inFlight);
      server.child.kill("SIGKILL");
      typed.push(inFlight);
      await server.exited;
      await status.getByText("Offline", { exact: false }).waitFor(WAIT);
      const offline = ` o${round}.`;
      await page.keyboard.type(offline);
      typed.push(offline);
      await saveStatus.getByText("Saving…").waitFor(WAIT);

      const killed = new Promise<void>((resolve) => {
        onKilled = resolve;
      });
      armed = true;
      server = await spawnServer(env);
      await reconnectNow();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        killed,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`round ${round}: never showed saved`)), 30_000);
        }),
      ]).finally(() => clearTimeout(timer));
      await server.exited;
      const xml = await storedXml(dataDir);
      const missing = typed.filter((text) => !xml.includes(text));
      expect(missing, `round ${round}: typed but not stored after "All changes saved"`).toEqual([]);
      server = await spawnServer(env);
      await reconnectNow();
    }
    expect(killedOnSave).toBe(ROUNDS);
  });
});
