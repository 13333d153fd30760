/**
 * A tiny document DSL for tests of content (Tiptap JSON):
 * doc(h(1, "Title"), p("plain ", b("bold"))).
 */
import type { JSONContent } from "@tiptap/core";

export type Inline = JSONContent | string;
const inline = (content: Inline[]): JSONContent[] =>
  content.map((c) => (typeof c === "string" ? { type: "text", text: c } : c));
export const block = (
  type: string,
  content: Inline[],
  attrs?: Record<string, unknown>,
): JSONContent => ({
  type,
  ...(attrs ? { attrs } : {}),
  ...(content.length > 0 ? { content: inline(content) } : {}),
});
export const doc = (...content: JSONContent[]): JSONContent => ({ type: "doc", content });
export const p = (...content: Inline[]) => block("paragraph", content);
export const h = (level: number, ...content: Inline[]) => block("heading", content, { level });
export const ul = (...items: JSONContent[]) => block("bulletList", items);
export const ol = (start: number, ...items: JSONContent[]) =>
  block("orderedList", items, { start });
export const li = (...content: JSONContent[]) => block("listItem", content);
export const tasks = (...items: JSONContent[]) => block("taskList", items);
export const task = (checked: boolean, ...content: JSONContent[]) =>
  block("taskItem", content, { checked });
export const quote = (...content: JSONContent[]) => block("blockquote", content);
export const code = (language: string | null, text: string) =>
  block("codeBlock", [text], { language });
export const hr = (): JSONContent => ({ type: "horizontalRule" });
export const table = (...rows: JSONContent[]) => block("table", rows);
export const tr = (...cells: JSONContent[]) => block("tableRow", cells);
export const th = (...content: JSONContent[]) => block("tableHeader", content);
export const td = (...content: JSONContent[]) => block("tableCell", content);
export const br = (): JSONContent => ({ type: "hardBreak" });
