/**
 * The editor's chrome: toolbar, presence, a "Read only" badge, the notice
 * shown when the server refuses the document, and the status line, in plain
 * DOM so the package needs no framework. Everything it adds is removed by
 * the returned function.
 */
import type { Editor } from "@tiptap/core";
import type { CollabEditorHandle, Participant } from "../editor.ts";
import {
  type ConnectionState,
  describeConnection,
  describeSave,
  explainDenial,
  type SaveState,
} from "../status.ts";
import { type DeletedNoticeActions, deletedNotice } from "./deleted.ts";

interface ChromeOptions {
  readonly root: HTMLElement;
  readonly surface: HTMLElement;
  readonly editor: Editor;
  /** Subscribes to the editor's events; returns the unsubscribe function. */
  readonly on: CollabEditorHandle["on"];
  /** Build the toolbar at all (false for an editor read-only by option). */
  readonly toolbar: boolean;
  /** Show why the server refused the document in place of the document. */
  readonly accessNotice: boolean;
  readonly participants: () => Participant[];
  /** Whether the user can currently not change the document. */
  readonly readOnly: () => boolean;
  /** Whether the user, though read-only, may comment (a `comment` token). */
  readonly commenter: () => boolean;
  /** The save state when the chrome mounts; the `save` event brings changes. */
  readonly save: () => SaveState;
  /** What the notice for a document refused as deleted offers; null: no such notice. */
  readonly deleted: DeletedNoticeActions | null;
  /** Inserts and uploads files the user picked (the toolbar's attach button). */
  readonly attach: (files: File[]) => void;
}

interface Tool {
  readonly label: string;
  readonly title: string;
  readonly run: (editor: Editor) => void;
  readonly active?: (editor: Editor) => boolean;
}

const inTable = (e: Editor) => e.isActive("table");

/** Tools for the table the selection is in: a group of the toolbar shown only there. */
const TABLE_TOOLS: readonly Tool[] = [
  {
    label: "Row ↑",
    title: "Insert a row above",
    run: (e) => e.chain().focus().addRowBefore().run(),
  },
  {
    label: "Row ↓",
    title: "Insert a row below",
    run: (e) => e.chain().focus().addRowAfter().run(),
  },
  {
    label: "Col ←",
    title: "Insert a column to the left",
    run: (e) => e.chain().focus().addColumnBefore().run(),
  },
  {
    label: "Col →",
    title: "Insert a column to the right",
    run: (e) => e.chain().focus().addColumnAfter().run(),
  },
  {
    label: "− Row",
    title: "Delete this row",
    run: (e) => e.chain().focus().deleteRow().run(),
  },
  {
    label: "− Col",
    title: "Delete this column",
    run: (e) => e.chain().focus().deleteColumn().run(),
  },
  {
    label: "Header",
    title: "Make the first row a header row, or a normal row again",
    run: (e) => e.chain().focus().toggleHeaderRow().run(),
    active: (e) => inTable(e) && firstRowIsHeader(e),
  },
  {
    label: "Merge",
    title: "Merge the selected cells, or split a merged cell",
    run: (e) => e.chain().focus().mergeOrSplit().run(),
  },
  {
    label: "Delete table",
    title: "Delete the whole table",
    run: (e) => e.chain().focus().deleteTable().run(),
  },
];

/** Whether the first row of the table the selection is in is a header row. */
function firstRowIsHeader(editor: Editor): boolean {
  const { $from } = editor.state.selection;
  for (let depth = $from.depth; depth > 0; depth--) {
    const node = $from.node(depth);
    if (node.type.name !== "table") continue;
    const first = node.firstChild;
    return first !== null && first.childCount > 0 && first.firstChild?.type.name === "tableHeader";
  }
  return false;
}

const TOOLS: ReadonlyArray<Tool | "|"> = [
  {
    label: "B",
    title: "Bold (Ctrl+B)",
    run: (e) => e.chain().focus().toggleBold().run(),
    active: (e) => e.isActive("bold"),
  },
  {
    label: "I",
    title: "Italic (Ctrl+I)",
    run: (e) => e.chain().focus().toggleItalic().run(),
    active: (e) => e.isActive("italic"),
  },
  {
    label: "U",
    title: "Underline (Ctrl+U)",
    run: (e) => e.chain().focus().toggleUnderline().run(),
    active: (e) => e.isActive("underline"),
  },
  {
    label: "S",
    title: "Strikethrough (Ctrl+Shift+S)",
    run: (e) => e.chain().focus().toggleStrike().run(),
    active: (e) => e.isActive("strike"),
  },
  {
    label: "</>",
    title: "Inline code (Ctrl+E)",
    run: (e) => e.chain().focus().toggleCode().run(),
    active: (e) => e.isActive("code"),
  },
  "|",
  ...([1, 2, 3] as const).map((level) => ({
    label: `H${level}`,
    title: `Heading ${level} (Ctrl+Alt+${level})`,
    run: (e: Editor) => e.chain().focus().toggleHeading({ level }).run(),
    active: (e: Editor) => e.isActive("heading", { level }),
  })),
  "|",
  {
    label: "•",
    title: "Bullet list (Ctrl+Shift+8)",
    run: (e) => e.chain().focus().toggleBulletList().run(),
    active: (e) => e.isActive("bulletList"),
  },
  {
    label: "1.",
    title: "Numbered list (Ctrl+Shift+7)",
    run: (e) => e.chain().focus().toggleOrderedList().run(),
    active: (e) => e.isActive("orderedList"),
  },
  {
    label: "☐",
    title: "Task list (Ctrl+Shift+9)",
    run: (e) => e.chain().focus().toggleTaskList().run(),
    active: (e) => e.isActive("taskList"),
  },
  {
    label: "❝",
    title: "Quote (Ctrl+Shift+B)",
    run: (e) => e.chain().focus().toggleBlockquote().run(),
    active: (e) => e.isActive("blockquote"),
  },
  {
    label: "{ }",
    title: "Code block (Ctrl+Alt+C)",
    run: (e) => e.chain().focus().toggleCodeBlock().run(),
    active: (e) => e.isActive("codeBlock"),
  },
  {
    label: "Link",
    title: "Add or edit a link",
    run: (e) => editLink(e),
    active: (e) => e.isActive("link"),
  },
  { label: "―", title: "Horizontal rule", run: (e) => e.chain().focus().setHorizontalRule().run() },
  {
    label: "⊞",
    title: "Insert a table (Tab moves to the next cell)",
    run: (e) => e.chain().focus().insertTable({ rows: 3, cols: 3, withHeaderRow: true }).run(),
    active: inTable,
  },
  "|",
  {
    label: "↶",
    title: "Undo your last change (Ctrl+Z)",
    run: (e) => e.chain().focus().undo().run(),
  },
  { label: "↷", title: "Redo (Ctrl+Shift+Z)", run: (e) => e.chain().focus().redo().run() },
];

/** A paperclip icon (no emoji: not every system has a font for it). */
function paperclip(doc: Document): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = doc.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  const path = doc.createElementNS(ns, "path");
  path.setAttribute(
    "d",
    "M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48",
  );
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

/** Asks for a link's address; an empty answer removes the link. */
function editLink(editor: Editor): void {
  const current = (editor.getAttributes("link").href as string | undefined) ?? "https://";
  const href = globalThis.prompt?.("Link address (empty to remove)", current);
  if (href === null || href === undefined) return;
  const chain = editor.chain().focus().extendMarkRange("link");
  if (href.trim() === "") chain.unsetLink().run();
  else chain.setLink({ href: href.trim() }).run();
}

/**
 * A peer's colour arrives over the network: accept only plain colour values,
 * never url(...) or anything else that would make every viewer fetch something.
 */
export function safeColor(color: string): string {
  return /^(#[0-9a-f]{3,8}|(rgb|hsl)a?\([\d\s.,%/-]+\)|[a-z]{3,20})$/i.test(color)
    ? color
    : "#888888";
}

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string,
  text?: string,
) {
  const node = doc.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Sets attribute `name` of `element` to `value` unless it already has that value. */
function setIfChanged(element: Element, name: string, value: string): void {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

function initials(name: string): string {
  const parts = name.trim().split(/\s+/u);
  const letters = parts.length > 1 ? [parts[0], parts.at(-1)] : [name.trim()];
  return letters
    .map((p) => [...(p ?? "")].slice(0, parts.length > 1 ? 1 : 2).join(""))
    .join("")
    .toUpperCase();
}

export function mountChrome({
  root,
  surface,
  editor,
  on,
  toolbar: withToolbar,
  accessNotice,
  participants,
  readOnly,
  commenter,
  save,
  deleted,
  attach,
}: ChromeOptions): () => void {
  const doc = root.ownerDocument;
  const header = el(doc, "div", "collab-editor__bar");
  const toolbar = el(doc, "div", "collab-editor__toolbar");
  toolbar.setAttribute("role", "toolbar");
  toolbar.setAttribute("aria-label", "Formatting");
  const presence = el(doc, "ul", "collab-editor__presence");
  presence.setAttribute("aria-label", "People in this document");
  const status = el(doc, "div", "collab-editor__status");
  status.setAttribute("role", "status");
  const connectionText = el(doc, "span", "collab-editor__connection");
  const saveText = el(doc, "span", "collab-editor__save");
  status.append(connectionText, saveText);
  const badge = el(doc, "span", "collab-editor__badge", "Read only");
  badge.title = "You can read this document but not change it";
  badge.hidden = true;
  const notice = el(doc, "div", "collab-editor__notice");
  notice.setAttribute("role", "alert");
  notice.hidden = true;
  const noticeTitle = el(doc, "strong", "collab-editor__notice-title", "Access denied");
  const noticeText = el(doc, "p", "collab-editor__notice-text");
  notice.append(noticeTitle, noticeText);
  // Messages that come and go (a file that could not be added): dismissed by the user, or in 10 s.
  const toasts = el(doc, "div", "collab-editor__toasts");
  toasts.setAttribute("role", "alert");
  const toast = (message: string) => {
    const item = el(doc, "div", "collab-editor__toast");
    const text = el(doc, "span", "collab-editor__toast-text", message);
    const close = el(doc, "button", "collab-editor__toast-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    const remove = () => item.remove();
    close.addEventListener("click", remove);
    item.append(text, close);
    toasts.append(item);
    setTimeout(remove, 10_000);
  };

  const buttons: Array<{ button: HTMLButtonElement; tool: Tool }> = [];
  const toolButton = (tool: Tool) => {
    const button = el(doc, "button", "collab-editor__tool", tool.label);
    button.type = "button";
    button.title = tool.title;
    button.setAttribute("aria-label", tool.title);
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => tool.run(editor));
    buttons.push({ button, tool });
    return button;
  };
  const tableTools = el(doc, "div", "collab-editor__table-tools");
  tableTools.setAttribute("role", "group");
  tableTools.setAttribute("aria-label", "Table");
  tableTools.hidden = true;
  if (withToolbar) {
    for (const tool of TOOLS) {
      toolbar.append(tool === "|" ? el(doc, "span", "collab-editor__separator") : toolButton(tool));
    }
    // Images and files: a hidden file input behind a button of the toolbar.
    const picker = el(doc, "input", "collab-editor__file-input");
    picker.type = "file";
    picker.multiple = true;
    picker.hidden = true;
    picker.addEventListener("change", () => {
      const files = [...(picker.files ?? [])];
      picker.value = "";
      if (files.length > 0) attach(files);
    });
    const attachTool: Tool = {
      label: "Attach",
      title: "Insert an image or file (or paste, or drop it in the text)",
      run: () => picker.click(),
    };
    const tableTool = toolbar.querySelector('[title^="Insert a table"]');
    const attachButton = toolButton(attachTool);
    attachButton.classList.add("collab-editor__tool--icon");
    attachButton.replaceChildren(paperclip(doc));
    if (tableTool !== null) tableTool.after(attachButton);
    else toolbar.append(attachButton);
    toolbar.append(picker);
    const label = el(doc, "span", "collab-editor__table-label", "Table");
    label.setAttribute("aria-hidden", "true");
    tableTools.append(label, ...TABLE_TOOLS.map(toolButton));
    toolbar.append(tableTools);
  }
  header.append(toolbar, badge, presence);
  const deletedCopy = deleted === null ? null : deletedNotice(doc, deleted);
  root.append(
    header,
    notice,
    ...(deletedCopy === null ? [] : [deletedCopy.element]),
    surface,
    toasts,
    status,
  );

  let connection: ConnectionState = { kind: "connecting" };
  // Runs on every transaction (each keystroke): the DOM is written only where a state changed,
  // so typing does not touch the toolbar's elements (every write invalidates their style).
  const refreshTools = () => {
    const disabled = readOnly() || connection.kind === "denied";
    setIfChanged(toolbar, "aria-disabled", String(disabled));
    const hideTable = disabled || !inTable(editor);
    if (tableTools.hidden !== hideTable) tableTools.hidden = hideTable;
    for (const { button, tool } of buttons) {
      if (button.disabled !== disabled) button.disabled = disabled;
      const active = tool.active?.(editor) ?? false;
      if (button.classList.contains("is-active") !== active) {
        button.classList.toggle("is-active", active);
      }
      if (tool.active) setIfChanged(button, "aria-pressed", String(active));
    }
  };
  /** What the presence list shows, to render it again only when that changed. */
  let shownPresence: string | null = null;
  const renderPresence = (list: readonly Participant[]) => {
    // Awareness changes with every caret move of anyone (each keystroke); the people shown
    // rarely change, and rebuilding the list each time costs a style and layout pass.
    const key = JSON.stringify(list.map((p) => [p.name, safeColor(p.color), p.self]));
    if (key === shownPresence) return;
    shownPresence = key;
    presence.replaceChildren(
      ...list.map((p) => {
        const item = el(doc, "li", "collab-editor__person", initials(p.name));
        item.style.setProperty("--person-color", safeColor(p.color));
        item.title = p.self ? `${p.name} (you)` : p.name;
        item.dataset.name = p.name;
        if (p.self) item.classList.add("is-self");
        return item;
      }),
    );
  };
  const renderAccess = () => {
    badge.hidden = !readOnly();
    const commenting = readOnly() && commenter();
    badge.textContent = commenting ? "Can comment" : "Read only";
    badge.title = commenting
      ? "You can comment on this document but not change its text"
      : "You can read this document but not change it";
    badge.classList.toggle("is-commenter", commenting);
    refreshTools();
  };
  const renderConnection = (state: ConnectionState) => {
    connection = state;
    connectionText.textContent = describeConnection(state);
    root.dataset.connection = state.kind;
    // Refused as deleted: the user's copy stays in view (read-only) under a notice of its own.
    const isDeleted =
      deletedCopy !== null &&
      state.kind === "denied" &&
      explainDenial(state.reason).problem === "deleted";
    root.dataset.deleted = String(isDeleted);
    deletedCopy?.show(isDeleted);
    notice.hidden = !accessNotice || state.kind !== "denied" || isDeleted;
    noticeText.textContent = state.kind === "denied" ? explainDenial(state.reason).message : "";
    renderAccess();
  };
  renderConnection(connection);
  const renderSave = (state: SaveState) => {
    const text = describeSave(state);
    // The line flips between saving and saved with every keystroke: its text node is changed in
    // place, not replaced (which would also rebuild its layout object).
    const node = saveText.firstChild;
    if (node instanceof Text && node.nextSibling === null) {
      if (node.data !== text) node.data = text;
    } else saveText.textContent = text;
    if (root.dataset.save !== state.kind) root.dataset.save = state.kind;
  };
  renderSave(save());
  renderPresence(participants());

  editor.on("transaction", refreshTools);
  const off = [
    on("presence", renderPresence),
    on("connection", renderConnection),
    on("readOnly", renderAccess),
    on("access", renderAccess),
    on("save", renderSave),
    on("notice", toast),
    () => editor.off("transaction", refreshTools),
  ];
  return () => {
    for (const unsubscribe of off) unsubscribe();
    header.remove();
    notice.remove();
    deletedCopy?.element.remove();
    toasts.remove();
    status.remove();
  };
}
