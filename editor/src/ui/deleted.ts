/**
 * The notice shown when the server refuses the document as deleted: the copy
 * on this device is not lost, and the user chooses what to do with it
 * (download it, save it as a new document, or discard it). Plain DOM, like
 * the rest of the chrome; the returned function removes it.
 */
import type { SaveCopyResult } from "../copy.ts";

export interface DeletedNoticeActions {
  /** The document's name, to suggest a name for the copy. */
  readonly document: string;
  readonly download: () => void;
  readonly saveAs: (name: string) => Promise<SaveCopyResult>;
  readonly discard: () => Promise<void>;
}

export interface DeletedNotice {
  readonly element: HTMLElement;
  /** Shows or hides it (shown only while the server refuses the document as deleted). */
  show(shown: boolean): void;
}

export function deletedNotice(page: Document, actions: DeletedNoticeActions): DeletedNotice {
  const element = el(page, "section", "collab-editor__deleted");
  element.setAttribute("role", "alert");
  element.hidden = true;
  const title = el(page, "strong", "collab-editor__notice-title", "This document was deleted");
  const text = el(
    page,
    "p",
    "collab-editor__notice-text",
    "Someone deleted it while this device kept a copy. Your copy is still here, below: download it, save it as a new document, or discard it.",
  );
  const buttons = el(page, "div", "collab-editor__actions");
  const download = button(page, "Download my copy");
  const saveAs = button(page, "Save as a new document…");
  const discard = button(page, "Discard my copy", "danger");
  buttons.append(download, saveAs, discard);

  const form = el(page, "form", "collab-editor__copy-form");
  form.hidden = true;
  const label = el(page, "label", "collab-editor__copy-label", "Name of the new document");
  const input = el(page, "input", "collab-editor__copy-name");
  input.value = `${actions.document} (copy)`;
  input.maxLength = 255;
  input.required = true;
  const inputId = `collab-copy-${Math.random().toString(36).slice(2)}`;
  input.id = inputId;
  label.htmlFor = inputId;
  const save = button(page, "Save copy", "primary");
  save.type = "submit";
  const row = el(page, "div", "collab-editor__copy-row");
  row.append(input, save);
  form.append(label, row);

  const confirm = el(page, "div", "collab-editor__confirm");
  confirm.hidden = true;
  const confirmText = el(
    page,
    "p",
    "collab-editor__notice-text",
    "Discard your copy? It is removed from this device and cannot be brought back.",
  );
  const reallyDiscard = button(page, "Discard it", "danger");
  const keep = button(page, "Keep it");
  const confirmButtons = el(page, "div", "collab-editor__actions");
  confirmButtons.append(reallyDiscard, keep);
  confirm.append(confirmText, confirmButtons);

  const status = el(page, "p", "collab-editor__notice-status");
  status.setAttribute("aria-live", "polite");
  element.append(title, text, buttons, form, confirm, status);

  download.addEventListener("click", () => {
    actions.download();
    status.textContent = "Your copy was downloaded as an HTML file.";
  });
  saveAs.addEventListener("click", () => {
    form.hidden = false;
    confirm.hidden = true;
    input.focus();
    input.select();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    status.textContent = "Saving…";
    const result = await actions.saveAs(input.value);
    save.disabled = false;
    status.textContent = result.ok ? `Saved as “${result.name}”.` : result.message;
    if (result.ok) form.hidden = true;
  });
  discard.addEventListener("click", () => {
    confirm.hidden = false;
    form.hidden = true;
    keep.focus();
  });
  keep.addEventListener("click", () => {
    confirm.hidden = true;
    discard.focus();
  });
  reallyDiscard.addEventListener("click", async () => {
    reallyDiscard.disabled = true;
    await actions.discard();
    confirm.hidden = true;
    buttons.hidden = true;
    status.textContent = "Your copy was discarded.";
  });

  return {
    element,
    show(shown) {
      element.hidden = !shown;
    },
  };
}

function el<K extends keyof HTMLElementTagNameMap>(
  page: Document,
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = page.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(page: Document, text: string, kind?: "primary" | "danger"): HTMLButtonElement {
  const node = el(page, "button", `collab-editor__button${kind ? ` is-${kind}` : ""}`, text);
  node.type = "button";
  return node;
}
