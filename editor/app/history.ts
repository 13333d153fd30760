/**
 * The version history panel of a document page: save the current content as
 * a named version, list the versions, preview one read-only (rendered from
 * its Tiptap JSON, never from HTML) and restore it. A restore is a change on
 * the server like any other, so the open editor (and everyone else's)
 * receives it over the WebSocket; the panel only asks for it.
 */
import { createDocumentPreview, type DocumentPreview } from "../src/index.ts";
import {
  type ApiResult,
  listVersions,
  restoreVersion,
  saveVersion,
  type Version,
  versionContent,
} from "./api.ts";
import { button, el } from "./dom.ts";

export interface HistoryPanelOptions {
  /** The document's name. */
  readonly document: string;
  /** The token for the REST API, read at each request. */
  readonly token: () => string | null;
  /** Called after the panel closed itself (Escape, its close button). */
  readonly onClose: () => void;
}

export interface HistoryPanel {
  readonly element: HTMLElement;
  readonly isOpen: boolean;
  /** Shows the panel, reloads the list and moves focus into it. */
  open(): void;
  close(): void;
  /** A reader can look at versions but neither save nor restore them. */
  setReadOnly(readOnly: boolean): void;
  destroy(): void;
}

const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A version's title: its name, or "Automatic" for an unnamed automatic one. */
export function versionTitle(version: Version): string {
  return version.name ?? "Automatic";
}

function versionMeta(version: Version): HTMLElement {
  const meta = el("span", "app-version__meta");
  const time = el("time", "", TIME.format(new Date(version.created)));
  time.dateTime = version.created;
  meta.append(time);
  if (version.kind === "auto" && version.name !== null) meta.append(" · Automatic");
  if (version.author !== null) meta.append(` · ${version.author}`);
  return meta;
}

/** A failed request as a sentence for people. */
function failure(result: Extract<ApiResult<unknown>, { ok: false }>, doing: string): string {
  const said = result.message.charAt(0).toUpperCase() + result.message.slice(1);
  switch (result.status) {
    case 0:
      return `Could not ${doing}: the server cannot be reached.`;
    case 401:
      return `Could not ${doing}: the server needs a valid access token. ${said}`;
    case 403:
      return `Could not ${doing}: your access token does not allow it (${result.message}).`;
    default:
      return `Could not ${doing}: ${said}`;
  }
}

export function createHistoryPanel(options: HistoryPanelOptions): HistoryPanel {
  const { document: name, token } = options;
  const panel = el("aside", "app-panel app-history");
  panel.id = "history-panel";
  panel.hidden = true;
  panel.setAttribute("aria-labelledby", "history-title");

  const head = el("div", "app-history__head");
  const title = el("h2", "", "History");
  title.id = "history-title";
  title.tabIndex = -1;
  const close = button("×", "app-icon-button");
  close.setAttribute("aria-label", "Close history");
  close.title = "Close history (Esc)";
  head.append(title, close);

  const form = el("form", "app-history__save");
  const nameLabel = el("label", "", "Save the current content as a version");
  nameLabel.htmlFor = "version-name";
  const row = el("div", "app-history__row");
  const nameInput = el("input", "");
  nameInput.id = "version-name";
  nameInput.name = "name";
  nameInput.required = true;
  nameInput.maxLength = 200;
  nameInput.placeholder = "Version name, e.g. Before launch";
  nameInput.autocomplete = "off";
  const saveButton = el("button", "app-button", "Save version");
  saveButton.type = "submit";
  row.append(nameInput, saveButton);
  form.append(nameLabel, row);

  const readOnlyNote = el(
    "p",
    "app-hint",
    "Read only: you can look at versions, but not save or restore them.",
  );
  readOnlyNote.hidden = true;
  // Outcomes are announced politely; failures interrupt.
  const notice = el("p", "app-history__notice");
  notice.setAttribute("role", "status");
  const error = el("p", "app-history__error");
  error.setAttribute("role", "alert");

  const listView = el("div", "app-history__versions");
  const list = el("ol", "app-history__list");
  list.setAttribute("aria-label", "Versions, newest first");
  const empty = el(
    "p",
    "app-hint",
    "No versions yet. Save one above; the server also keeps automatic ones as the document changes.",
  );
  empty.hidden = true;
  listView.append(list, empty);

  const previewView = el("section", "app-history__preview");
  previewView.hidden = true;
  previewView.setAttribute("aria-labelledby", "preview-title");
  const back = button("← All versions", "app-link-button");
  const previewTitle = el("h3", "");
  previewTitle.id = "preview-title";
  previewTitle.tabIndex = -1;
  const previewMeta = el("p", "app-history__meta");
  const previewBody = el("div", "app-history__document");
  const restoreButton = el("button", "app-button", "Restore this version");
  restoreButton.type = "button";
  previewView.append(back, previewTitle, previewMeta, previewBody, restoreButton);

  panel.append(head, form, readOnlyNote, notice, error, listView, previewView);

  let readOnly = false;
  let previewed: { version: Version; preview: DocumentPreview | null } | null = null;
  // Answers to superseded requests (the user has clicked on since) are dropped.
  let listAsked = 0;
  let previewAsked = 0;

  const say = (text: string) => {
    notice.textContent = text;
    error.textContent = "";
  };
  const fail = (text: string) => {
    error.textContent = text;
    notice.textContent = "";
  };

  const renderList = (versions: readonly Version[]) => {
    list.replaceChildren(
      ...versions.map((version) => {
        const item = el("li", "app-history__item");
        const open = button("", "app-version");
        open.dataset.id = version.id;
        open.append(el("span", "app-version__name", versionTitle(version)), versionMeta(version));
        open.addEventListener("click", () => void showPreview(version));
        item.append(open);
        return item;
      }),
    );
    empty.hidden = versions.length > 0;
  };

  const refresh = async (): Promise<void> => {
    const asked = ++listAsked;
    const result = await listVersions(name, token());
    if (asked !== listAsked) return;
    if (result.ok) renderList(result.value.versions);
    // A document nobody has written to yet has no versions either.
    else if (result.status === 404) renderList([]);
    else fail(failure(result, "load the versions"));
  };

  const closePreview = () => {
    previewed?.preview?.destroy();
    previewed = null;
    previewBody.replaceChildren();
    previewView.hidden = true;
    listView.hidden = false;
  };

  const showPreview = async (version: Version): Promise<void> => {
    closePreview();
    const asked = ++previewAsked;
    listView.hidden = true;
    previewView.hidden = false;
    previewTitle.textContent = versionTitle(version);
    previewMeta.replaceChildren(versionMeta(version));
    previewBody.replaceChildren(el("p", "app-hint", "Loading…"));
    previewed = { version, preview: null };
    restoreButton.disabled = readOnly;
    previewTitle.focus();
    const result = await versionContent(name, version.id, token());
    if (asked !== previewAsked || previewed?.version !== version) return;
    previewBody.replaceChildren();
    if (!result.ok) {
      fail(failure(result, "load this version"));
      return;
    }
    try {
      previewed.preview = createDocumentPreview(previewBody, result.value, {
        label: `Content of ${versionTitle(version)}`,
      });
    } catch {
      fail("Could not show this version: its content does not fit this editor.");
    }
  };

  const backToList = () => {
    const id = previewed?.version.id;
    closePreview();
    const item = [...list.querySelectorAll<HTMLButtonElement>(".app-version")].find(
      (b) => b.dataset.id === id,
    );
    (item ?? title).focus();
  };

  const restore = async () => {
    const version = previewed?.version;
    if (version === undefined) return;
    const label = versionTitle(version);
    const sure = globalThis.confirm(
      `Restore “${label}”? Everyone editing sees its content at once; the current content is saved as an automatic version first.`,
    );
    if (!sure) return;
    restoreButton.disabled = true;
    const result = await restoreVersion(name, version.id, token());
    restoreButton.disabled = readOnly;
    if (!result.ok) {
      fail(failure(result, "restore this version"));
      return;
    }
    const backup = result.value.backup;
    closePreview();
    say(
      `Restored “${label}”.${backup === null ? "" : ` The content before it is saved as “${versionTitle(backup)}”.`}`,
    );
    await refresh();
    title.focus();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = nameInput.value.trim();
    if (!label) return;
    saveButton.disabled = true;
    const result = await saveVersion(name, label, token());
    saveButton.disabled = readOnly;
    if (result.ok) {
      nameInput.value = "";
      say(`Saved “${label}”.`);
      closePreview();
      await refresh();
    } else if (result.status === 409) {
      fail(`There is already a version named “${label}”. Choose another name.`);
      nameInput.focus();
    } else if (result.status === 404) {
      fail("There is nothing to save yet: write something first.");
    } else {
      fail(failure(result, "save the version"));
    }
  });
  back.addEventListener("click", backToList);
  restoreButton.addEventListener("click", () => void restore());
  close.addEventListener("click", () => {
    handle.close();
    options.onClose();
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    if (previewed !== null) backToList();
    else {
      handle.close();
      options.onClose();
    }
  });

  const handle: HistoryPanel = {
    element: panel,
    get isOpen() {
      return !panel.hidden;
    },
    open() {
      panel.hidden = false;
      notice.textContent = "";
      error.textContent = "";
      closePreview();
      void refresh();
      title.focus();
    },
    close() {
      closePreview();
      panel.hidden = true;
    },
    setReadOnly(next) {
      readOnly = next;
      nameInput.disabled = next;
      saveButton.disabled = next;
      restoreButton.disabled = next;
      readOnlyNote.hidden = !next;
    },
    destroy() {
      closePreview();
      panel.remove();
    },
  };
  return handle;
}
