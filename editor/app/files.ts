/**
 * Files in and out of the app: the document page's Download menu (Markdown,
 * HTML, Word) and the list page's import of a Markdown, HTML or Word file as
 * a new document. The server converts both ways (REST `?format=` and `PUT`).
 */
import {
  DOWNLOADS,
  type DownloadFormat,
  downloadDocument,
  importDocument,
  importType,
} from "./api.ts";
import { button, el } from "./dom.ts";

/** A "Download" menu for document `name`: each item saves the document as a file of its format. */
export function downloadMenu(name: string, token: () => string | null): HTMLElement {
  const menu = el("details", "app-menu");
  const summary = el("summary", "app-button secondary", "Download");
  summary.setAttribute("aria-haspopup", "menu");
  const list = el("div", "app-menu__items");
  list.setAttribute("role", "menu");
  const status = el("p", "app-menu__status");
  status.setAttribute("role", "status");
  for (const [format, { label }] of Object.entries(DOWNLOADS) as Array<
    [DownloadFormat, (typeof DOWNLOADS)[DownloadFormat]]
  >) {
    const item = button(label, "app-menu__item");
    item.setAttribute("role", "menuitem");
    item.addEventListener("click", async () => {
      status.textContent = "Preparing…";
      const result = await downloadDocument(name, format, token());
      if (!result.ok) {
        status.textContent = `Could not download: ${result.message}`;
        return;
      }
      status.textContent = "";
      menu.open = false;
      save(result.value, `${baseName(name)}.${DOWNLOADS[format].extension}`);
    });
    list.append(item);
  }
  list.append(status);
  menu.append(summary, list);
  // Escape closes the menu and gives focus back to its button.
  menu.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !menu.open) return;
    menu.open = false;
    summary.focus();
  });
  return menu;
}

/**
 * An "Import a file" control: the chosen Markdown, HTML or Word file becomes a new document,
 * named `target()` or, when that is empty, after the file; `opened` is called with its name.
 */
export function importControl(
  target: () => string,
  token: () => string | null,
  opened: (name: string) => void,
): HTMLElement {
  const wrap = el("div", "app-import");
  const input = el("input", "app-import__file");
  input.type = "file";
  input.accept = ".md,.markdown,.html,.htm,.docx";
  input.setAttribute("aria-label", "Import a Markdown, HTML or Word file as a new document");
  const choose = button("Import a file", "app-button secondary");
  choose.addEventListener("click", () => input.click());
  const status = el("p", "app-import__status");
  status.setAttribute("role", "status");
  input.addEventListener("change", async () => {
    const file = input.files?.[0];
    input.value = "";
    if (file === undefined) return;
    if (importType(file.name) === null) {
      status.textContent = `${file.name} is not a Markdown (.md), HTML (.html) or Word (.docx) file.`;
      return;
    }
    const name = target().trim() || file.name.replace(/\.[^.]+$/, "");
    status.textContent = `Importing ${file.name}…`;
    const result = await importDocument(name, file, token());
    if (!result.ok) {
      status.textContent = `Could not import ${file.name}: ${result.message}`;
      return;
    }
    status.textContent = "";
    opened(name);
  });
  wrap.append(choose, input, status);
  return wrap;
}

/** The last part of a document name, for a file name. */
function baseName(name: string): string {
  return name.split("/").pop() || "document";
}

/** Saves `blob` as a file named `fileName` (the browser's download). */
function save(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
