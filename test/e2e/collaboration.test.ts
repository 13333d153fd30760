/**
 * Collaboration details in real Chromium ([EDIT3]-[EDIT6]), and concurrent
 * structure edits the binding must not lose text over ([REL1]).
 */
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, editorText, openPage } from "../helpers/browser.ts";
import { startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

type Json = {
  type?: string;
  text?: string;
  marks?: Array<{ type: string; attrs?: Record<string, unknown> }>;
  content?: Json[];
};

function editorJson(page: Awaited<ReturnType<typeof openPage>>): Promise<Json> {
  return page.evaluate(
    () =>
      (
        window as unknown as { collab: { editor: { getJSON(): unknown } } }
      ).collab.editor.getJSON() as Json,
  );
}

/** Every node and mark type in a Tiptap JSON document. */
function typesIn(json: Json): string[] {
  const found = new Set<string>();
  const walk = (node: Json) => {
    if (node.type) found.add(node.type);
    for (const mark of node.marks ?? []) found.add(`mark:${mark.type}`);
    for (const child of node.content ?? []) walk(child);
  };
  walk(json);
  return [...found].sort();
}

/** Deletes the paragraph reading `value` with the editor's own command, as selecting it and pressing Delete would. */
async function deleteParagraph(page: Awaited<ReturnType<typeof openPage>>, value: string) {
  const deleted = await page.evaluate((value) => {
    type PMNode = {
      type: { name: string };
      textContent: string;
      nodeSize: number;
    };
    const { editor } = (
      window as unknown as {
        collab: {
          editor: {
            state: {
              doc: { descendants(f: (node: PMNode, pos: number) => boolean): void };
            };
            commands: { deleteRange(range: { from: number; to: number }): boolean };
          };
        };
      }
    ).collab;
    let range: { from: number; to: number } | undefined;
    editor.state.doc.descendants((node, pos) => {
      if (node.type.name === "paragraph" && node.textContent === value) {
        range = { from: pos, to: pos + node.nodeSize };
      }
      return range === undefined;
    });
    return range !== undefined && editor.commands.deleteRange(range);
  }, value);
  expect(deleted, `deleting "${value}"`).toBe(true);
}

describe("collaboration in the browser", () => {
  it("[EDIT3] formatting, lists and links made in one page appear in the other", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/formatting`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.press("Control+Alt+1");
    await alice.keyboard.type("Title");
    await alice.keyboard.press("Enter");
    await alice.keyboard.press("Control+b");
    await alice.keyboard.type("bold");
    await alice.keyboard.press("Control+b");
    await alice.keyboard.type(" plain ");
    await alice.keyboard.press("Control+i");
    await alice.keyboard.type("italic");
    await alice.keyboard.press("Control+i");
    await alice.keyboard.press("Enter");
    await alice.getByRole("button", { name: "Bullet list (Ctrl+Shift+8)" }).click();
    await alice.keyboard.type("first item");
    await alice.keyboard.press("Enter");
    await alice.keyboard.type("second item");
    await alice.keyboard.press("Enter");
    await alice.keyboard.press("Enter");
    await alice.keyboard.type("a link");
    await alice.keyboard.press("Shift+Home");
    alice.once("dialog", (dialog) => void dialog.accept("https://example.org/"));
    await alice.getByRole("button", { name: "Add or edit a link" }).click();
    // The toolbar shows what is active where the cursor is.
    await expect
      .poll(() =>
        alice.getByRole("button", { name: "Add or edit a link" }).getAttribute("aria-pressed"),
      )
      .toBe("true");

    const expected = [
      "bulletList",
      "heading",
      "listItem",
      "mark:bold",
      "mark:italic",
      "mark:link",
      "paragraph",
    ];
    await expect
      .poll(async () => typesIn(await editorJson(bob)).filter((t) => expected.includes(t)))
      .toEqual(expected);
    const bobJson = JSON.stringify(await editorJson(bob));
    expect(bobJson).toContain("https://example.org/");
    expect(await editorText(bob)).toContain("second item");
  });

  it("[EDIT4] undo takes back only your own changes", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/undo`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.type("alpha");
    await expect.poll(() => editorText(bob)).toBe("alpha");
    await bob.locator(".collab-editor__content").click();
    await bob.keyboard.press("End");
    await bob.keyboard.type(" beta");
    await expect.poll(() => editorText(alice)).toBe("alpha beta");
    await alice.keyboard.press("Control+z");
    await expect.poll(() => editorText(alice)).toBe(" beta");
    await expect.poll(() => editorText(bob)).toBe(" beta");
  });

  it("[EDIT5] a page that goes offline keeps editing, says so, and merges when it is back", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/offline`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await alice.locator(".collab-editor__content").click();
    await alice.keyboard.type("shared start.");
    await expect.poll(() => editorText(bob)).toBe("shared start.");

    await bob.context().setOffline(true);
    await bob.getByText("Offline — changes are kept on this device").waitFor();
    await bob.locator(".collab-editor__content").click();
    await bob.keyboard.press("End");
    await bob.keyboard.type(" bob offline.");
    await alice.keyboard.press("End");
    await alice.keyboard.type(" alice online.");
    expect(await editorText(alice)).not.toContain("bob offline");

    await bob.context().setOffline(false);
    // The status says so too: a short drop never closed the socket, so nothing else would.
    await bob.locator(".collab-editor__connection").getByText("Connected").waitFor();
    await expect
      .poll(async () => (await editorText(alice)) === (await editorText(bob)), { timeout: 15_000 })
      .toBe(true);
    const text = await editorText(alice);
    expect(text).toContain("bob offline.");
    expect(text).toContain("alice online.");
    await bob.getByText("All changes saved").waitFor();
  });

  it("[EDIT5] a page reloaded while offline still has its offline edits, and they sync when it is back", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/offline-reload`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    // The service worker has cached the app shell once it is ready.
    await bob.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await bob.context().setOffline(true);
    await bob.getByText("Offline — changes are kept on this device").waitFor();
    await bob.locator(".collab-editor__content").click();
    await bob.keyboard.type("written offline, then reloaded");
    // y-indexeddb writes asynchronously: wait until the local copy holds the edit.
    const localCopy = () =>
      bob.evaluate(
        (name) =>
          new Promise<number>((resolve) => {
            const open = indexedDB.open(name);
            open.onsuccess = () => {
              const request = open.result.transaction("updates").objectStore("updates").count();
              request.onsuccess = () => {
                open.result.close();
                resolve(request.result);
              };
            };
          }),
        `collab-docs:${address.wsUrl}:offline-reload`,
      );
    await expect.poll(localCopy).toBeGreaterThan(1);
    await bob.reload();
    await bob
      .locator(".collab-editor__content")
      .getByText("written offline, then reloaded")
      .waitFor();
    expect(await editorText(alice)).not.toContain("written offline");
    await bob.context().setOffline(false);
    await expect
      .poll(() => editorText(alice), { timeout: 15_000 })
      .toContain("written offline, then reloaded");
  });

  it("[EDIT6] after the server restarts, a reload shows the content intact", async () => {
    const first = await startServer();
    const url = `${first.address.url}/d/restart`;
    const page = await openPage(url, "Alice");
    await editorReady(page);
    await page.locator(".collab-editor__content").click();
    await page.keyboard.type("survives a restart");
    await page.getByText("All changes saved").waitFor();
    await page.context().close();
    await first.server.close();

    const second = await startServer({ dataDir: first.dataDir });
    const again = await openPage(`${second.address.url}/d/restart`, "Alice");
    await editorReady(again);
    await expect.poll(() => editorText(again)).toBe("survives a restart");
  });

  it("[REL1] a list item that concurrent edits leave starting with a heading keeps its text in every page", async () => {
    const { address } = await startServer();
    const name = "item-structure";
    const item = [
      { type: "paragraph", content: [{ type: "text", text: "one" }] },
      { type: "paragraph", content: [{ type: "text", text: "two" }] },
      { type: "heading", attrs: { level: 2 }, content: [{ type: "text", text: "Title" }] },
    ];
    const put = await fetch(`${address.url}/api/v1/documents/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        type: "doc",
        content: [{ type: "bulletList", content: [{ type: "listItem", content: item }] }],
      }),
    });
    expect(put.status).toBe(201);
    const url = `${address.url}/d/${name}`;
    const [alice, bob] = await Promise.all([openPage(url, "Alice"), openPage(url, "Bob")]);
    await Promise.all([editorReady(alice), editorReady(bob)]);
    await expect.poll(() => editorText(bob)).toContain("Title");

    // Bob, offline, deletes the item's second paragraph while Alice deletes its first.
    await bob.context().setOffline(true);
    await bob.getByText("Offline — changes are kept on this device").waitFor();
    await deleteParagraph(bob, "two");
    await deleteParagraph(alice, "one");
    await alice.getByText("All changes saved").waitFor();
    await bob.context().setOffline(false);

    // Merged, the item starts with the heading, which the schema refuses there: both pages
    // show it with an empty paragraph filled in front, and the server reads the same.
    // (Each page's trailing-node plugin may have added an empty paragraph after the list.)
    const list: Json = {
      type: "bulletList",
      content: [{ type: "listItem", content: [{ type: "paragraph" }, item[2] as Json] }],
    };
    for (const page of [alice, bob]) {
      await expect
        .poll(async () => (await editorJson(page)).content?.[0], { timeout: 15_000 })
        .toEqual(list);
    }
    await expect.poll(async () => editorJson(bob)).toEqual(await editorJson(alice));
    await bob.getByText("All changes saved").waitFor();
    const stored = await fetch(`${address.url}/api/v1/documents/${name}?format=json`);
    expect(await stored.json()).toEqual(await editorJson(bob));

    // Editing inside the item stores the filled-in paragraph with the edit.
    await alice.getByText("Title").click();
    await alice.keyboard.press("End");
    await alice.keyboard.type(" kept");
    await expect.poll(() => editorText(bob)).toContain("Title kept");
    await alice.getByText("All changes saved").waitFor();
    const json = await fetch(`${address.url}/api/v1/documents/${name}?format=json`);
    expect(JSON.stringify(await json.json())).toContain("Title kept");
  });
});
