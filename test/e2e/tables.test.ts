/**
 * Tables in real Chromium ([EDIT11] in SPEC.md): Ann inserts a table from the
 * toolbar and fills it with Tab; the table's own tools show only inside it;
 * Ann adds a column while Bob, at the same time, adds a row and types in it;
 * both pages converge on one well-formed table, which the server serves as a
 * Markdown (GFM) table. Ann drags a column wider and Bob's page has the width;
 * then both add columns and rows at once, five times, and the table stays
 * rectangular without growing by itself. Screenshots of a desktop and a phone page go to
 * test-results/screenshots.
 */
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { closeBrowser, editorReady, openPage } from "../helpers/browser.ts";
import { ROOT, startServer } from "../helpers/server.ts";

afterAll(closeBrowser);

const SHOTS = resolve(ROOT, "test-results/screenshots");
const SOON = { timeout: 15_000 };

type Json = { type?: string; text?: string; content?: Json[] };

function editorJson(page: Page): Promise<Json> {
  return page.evaluate(
    () =>
      (
        window as unknown as { collab: { editor: { getJSON(): unknown } } }
      ).collab.editor.getJSON() as Json,
  );
}

/** The first table of `json` as rows of cell texts; null when there is none. */
function tableOf(json: Json): string[][] | null {
  const text = (node: Json): string => node.text ?? (node.content ?? []).map(text).join(" ").trim();
  const find = (node: Json): Json | null =>
    node.type === "table" ? node : ((node.content ?? []).map(find).find((t) => t !== null) ?? null);
  const table = find(json);
  return table === null ? null : (table.content ?? []).map((row) => (row.content ?? []).map(text));
}

/** The cell whose text (collaborators' carets left out) starts with `text`, once there is one. */
async function cell(page: Page, text: string) {
  const find = () =>
    page.evaluate((text) => {
      const cells = [...document.querySelectorAll(".collab-editor__content td")];
      return cells.findIndex((td) => {
        const copy = td.cloneNode(true) as HTMLElement;
        for (const caret of copy.querySelectorAll(".collaboration-carets__caret")) caret.remove();
        return (copy.textContent ?? "").startsWith(text);
      });
    }, text);
  await expect.poll(find, SOON).toBeGreaterThanOrEqual(0);
  return page.locator(".collab-editor__content td").nth(await find());
}

const tool = (page: Page, title: string) => page.getByRole("button", { name: title, exact: true });

describe("tables", () => {
  it("[EDIT11] insert, fill with Tab, add rows and columns from two pages at once; Markdown has the table", async () => {
    const { address } = await startServer();
    const url = `${address.url}/d/tables`;
    const ann = await openPage(url, "Ann");
    const bob = await openPage(url, "Bob");
    await Promise.all([editorReady(ann), editorReady(bob)]);

    await ann.locator(".collab-editor__content").click();
    await ann.keyboard.type("Who does what");
    await ann.keyboard.press("Enter");
    const tableGroup = ann.getByRole("group", { name: "Table" });
    expect(await tableGroup.isHidden()).toBe(true);
    await tool(ann, "Insert a table (Tab moves to the next cell)").click();
    await tableGroup.waitFor();
    for (const [i, cell] of ["Name", "Role", "Notes", "Ann", "Lead", "Owns the plan"].entries()) {
      if (i > 0) await ann.keyboard.press("Tab");
      await ann.keyboard.type(cell);
    }
    const filled = [
      ["Name", "Role", "Notes"],
      ["Ann", "Lead", "Owns the plan"],
      ["", "", ""],
    ];
    await expect.poll(async () => tableOf(await editorJson(bob)), SOON).toEqual(filled);

    // Outside the table its tools go away.
    await ann.locator(".collab-editor__content p", { hasText: "Who does what" }).click();
    await tableGroup.waitFor({ state: "hidden" });

    // At once: Ann adds a column after "Role"; Bob adds a row below Ann's and types in it.
    await (await cell(ann, "Lead")).click();
    await (await cell(bob, "Ann")).click();
    await tool(bob, "Insert a row below").click();
    // Bob's caret goes into the new row first: a click racing a remote render can be put back
    // where it was (y-tiptap restores the selection it had when the change arrived).
    await bob.locator("tr").nth(2).locator("td").first().click();
    await Promise.all([
      tool(ann, "Insert a column to the right").click(),
      bob.keyboard.type("Bob"),
    ]);
    const expected = [
      ["Name", "Role", "", "Notes"],
      ["Ann", "Lead", "", "Owns the plan"],
      ["Bob", "", "", ""],
      ["", "", "", ""],
    ];
    for (const page of [ann, bob]) {
      await expect.poll(async () => tableOf(await editorJson(page)), SOON).toEqual(expected);
    }

    await mkdir(SHOTS, { recursive: true });
    await (await cell(ann, "Owns the plan")).click();
    await tableGroup.waitFor();
    await ann.screenshot({ path: resolve(SHOTS, "tables-desktop.png"), fullPage: true });
    const phone = await openPage(url, "Cy", { phone: true });
    await editorReady(phone);
    await (await cell(phone, "Owns the plan")).click();
    await phone.getByRole("group", { name: "Table" }).waitFor();
    await phone.screenshot({ path: resolve(SHOTS, "tables-phone.png"), fullPage: true });

    // Dragging a column's edge resizes it, for everyone, and the width is kept in the document.
    const nameCell = ann.locator("th").first();
    const box = await nameCell.boundingBox();
    if (box === null) throw new Error("the header cell has no box");
    const edge = { x: box.x + box.width - 2, y: box.y + box.height / 2 };
    await ann.mouse.move(edge.x - 10, edge.y);
    await ann.mouse.move(edge.x, edge.y);
    await ann.locator(".column-resize-handle").first().waitFor();
    await ann.mouse.down();
    await ann.mouse.move(edge.x + 60, edge.y, { steps: 5 });
    await ann.mouse.up();
    const firstWidth = (json: Json) =>
      JSON.stringify(json).match(/"type":"tableHeader","attrs":\{[^}]*"colwidth":\[(\d+)\]/)?.[1];
    await expect
      .poll(async () => Number(firstWidth(await editorJson(ann)) ?? 0), SOON)
      .toBeGreaterThan(box.width + 30);
    const width = firstWidth(await editorJson(ann));
    await expect.poll(async () => firstWidth(await editorJson(bob)), SOON).toBe(width);

    // Columns and rows added at once, five times over (prosemirror-tables issue 249 made such
    // tables grow without end): one editor repairs the table, and both converge on 9 x 9.
    await (await cell(ann, "Lead")).click();
    for (let round = 0; round < 5; round++) {
      await Promise.all([
        tool(ann, "Insert a column to the right").click(),
        tool(bob, "Insert a row below").click(),
      ]);
    }
    const widths = async (page: Page) =>
      (tableOf(await editorJson(page)) ?? []).map((r) => r.length);
    for (const page of [ann, bob]) {
      await expect.poll(() => widths(page), SOON).toEqual(Array(9).fill(9));
    }
    expect(JSON.stringify(await editorJson(ann))).toBe(JSON.stringify(await editorJson(bob)));

    const markdown = await (
      await fetch(`${address.url}/api/v1/documents/tables?format=markdown`)
    ).text();
    expect(markdown).toMatch(/\| Name +\| Role +(\| +)+\| Notes +\|/);
    expect(markdown).toMatch(/\| Bob +\|/);
  }, 90_000);
});
