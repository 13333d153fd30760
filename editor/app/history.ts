/**
 * The version history panel of a document page: save the current content as
 * a named version, list the versions, preview one read-only (rendered from
 * its Tiptap JSON, never from HTML), compare one with the current document or
 * any two with each other, and restore one. A restore is a change on the
 * server like any other, so the open editor (and everyone else's) receives it
 * over the WebSocket; the panel only asks for it. Previews and comparisons are
 * editors of their own, read-only and connected to nothing: looking changes
 * nothing.
 */
import { comparisonExtensions } from "../src/comparison.ts";
import { createDocumentPreview, type DocumentPreview } from "../src/index.ts";
import {
  type ApiResult,
  type ComparedSide,
  type Comparison,
  compareVersions,
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
/** For the comparison's pickers, where room is short. */
const SHORT_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "short" });

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

/** The value of the "to" side meaning the document as it is now. */
const CURRENT = "current";

/** "1 insertion, 2 deletions", or "No changes". */
export function changeSummary(changes: Comparison["changes"]): string {
  const { insertions, deletions } = changes;
  if (insertions + deletions === 0) return "No changes";
  const count = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;
  return `${count(insertions, "insertion")}, ${count(deletions, "deletion")}`;
}

/** A side of a comparison for people: “Before launch” (7 Dec 2026, 10:01) by alice. */
function sideLabel(side: ComparedSide): string {
  if (side.kind === "current") return "the current document";
  const by = side.author === null ? "" : ` by ${side.author}`;
  return `“${side.name ?? "Automatic"}” (${TIME.format(new Date(side.created))}${by})`;
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
  const compareCurrent = button("Compare with current", "app-button secondary");
  const previewActions = el("div", "app-history__actions");
  previewActions.append(restoreButton, compareCurrent);
  previewView.append(back, previewTitle, previewMeta, previewBody, previewActions);

  // The comparison: two sides to pick, what changed, and the document with the changes marked.
  const compareView = el("section", "app-history__compare");
  compareView.hidden = true;
  compareView.setAttribute("aria-labelledby", "compare-title");
  const compareBack = button("← All versions", "app-link-button");
  const compareTitle = el("h3", "", "Compare versions");
  compareTitle.id = "compare-title";
  compareTitle.tabIndex = -1;
  const sides = el("div", "app-history__sides");
  /** A labelled picker of one side (the label names it alone, not its options too). */
  const side = (id: string, text: string): HTMLSelectElement => {
    const field = el("div", "app-history__side");
    const label = el("label", "", text);
    label.htmlFor = id;
    const select = el("select", "");
    select.id = id;
    field.append(label, select);
    sides.append(field);
    return select;
  };
  const fromSelect = side("compare-from", "From");
  const toSelect = side("compare-to", "To");
  const outcome = el("div", "app-history__outcome");
  const summary = el("p", "app-history__summary");
  summary.setAttribute("role", "status");
  const legend = el("p", "app-history__legend");
  legend.append(el("ins", "collab-insertion", "Added"), el("del", "collab-deletion", "Removed"));
  outcome.append(summary, legend);
  const compareMeta = el("p", "app-history__meta");
  const compareBody = el("div", "app-history__document app-history__comparison");
  compareView.append(compareBack, compareTitle, sides, outcome, compareMeta, compareBody);

  panel.append(head, form, readOnlyNote, notice, error, listView, previewView, compareView);

  let readOnly = false;
  let versions: readonly Version[] = [];
  let previewed: { version: Version; preview: DocumentPreview | null } | null = null;
  let compared: { from: string; to: string; preview: DocumentPreview | null } | null = null;
  // Answers to superseded requests (the user has clicked on since) are dropped.
  let listAsked = 0;
  let previewAsked = 0;
  let compareAsked = 0;

  const say = (text: string) => {
    notice.textContent = text;
    error.textContent = "";
  };
  const fail = (text: string) => {
    error.textContent = text;
    notice.textContent = "";
  };

  const renderList = (listed: readonly Version[]) => {
    versions = listed;
    list.replaceChildren(
      ...listed.map((version) => {
        const item = el("li", "app-history__item");
        const open = button("", "app-version");
        open.dataset.id = version.id;
        open.append(el("span", "app-version__name", versionTitle(version)), versionMeta(version));
        open.addEventListener("click", () => void showPreview(version));
        const compare = button("Compare", "app-button secondary app-version__compare");
        compare.dataset.id = version.id;
        compare.setAttribute(
          "aria-label",
          `Compare “${versionTitle(version)}” with the current document`,
        );
        compare.title = "Show what changed since this version";
        compare.addEventListener("click", () => void showComparison(version.id, CURRENT));
        item.append(open, compare);
        return item;
      }),
    );
    empty.hidden = listed.length > 0;
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
    compared?.preview?.destroy();
    compared = null;
    compareBody.replaceChildren();
    compareView.hidden = true;
    panel.classList.remove("is-comparing");
    listView.hidden = false;
  };

  /** Fills a side's picker: every version, and on the "to" side the current document first. */
  const fillSide = (select: HTMLSelectElement, selected: string, withCurrent: boolean) => {
    const options = versions.map((version) => {
      const option = el(
        "option",
        "",
        `${versionTitle(version)} · ${SHORT_TIME.format(new Date(version.created))}`,
      );
      option.value = version.id;
      return option;
    });
    if (withCurrent) {
      const current = el("option", "", "Current document");
      current.value = CURRENT;
      options.unshift(current);
    }
    select.replaceChildren(...options);
    select.value = selected;
  };

  /** Shows what changed from version `from` to version `to` or to the current document. */
  const showComparison = async (from: string, to: string): Promise<void> => {
    const focusTitle = compareView.hidden;
    if (compared === null) closePreview();
    compared?.preview?.destroy();
    compared = { from, to, preview: null };
    const asked = ++compareAsked;
    listView.hidden = true;
    previewView.hidden = true;
    compareView.hidden = false;
    panel.classList.add("is-comparing");
    fillSide(fromSelect, from, false);
    fillSide(toSelect, to, true);
    notice.textContent = "";
    error.textContent = "";
    summary.textContent = "Comparing…";
    compareMeta.textContent = "";
    compareBody.replaceChildren();
    if (focusTitle) compareTitle.focus();
    const result = await compareVersions(name, from, to, token());
    if (asked !== compareAsked || compared?.from !== from || compared.to !== to) return;
    if (!result.ok) {
      summary.textContent = "";
      fail(failure(result, "compare these versions"));
      return;
    }
    const comparison = result.value;
    summary.textContent = changeSummary(comparison.changes);
    compareMeta.textContent = `From ${sideLabel(comparison.from)} to ${sideLabel(comparison.to)}.`;
    try {
      compared.preview = createDocumentPreview(compareBody, comparison.doc, {
        label: "Changes",
        extensions: comparisonExtensions(),
      });
    } catch {
      fail("Could not show the comparison: its content does not fit this editor.");
    }
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
    // Back to where the view was opened from: the version, or its Compare button.
    const selector = compared === null ? ".app-version" : ".app-version__compare";
    const id = previewed?.version.id ?? compared?.from;
    closePreview();
    const item = [...list.querySelectorAll<HTMLButtonElement>(selector)].find(
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
  compareBack.addEventListener("click", backToList);
  restoreButton.addEventListener("click", () => void restore());
  compareCurrent.addEventListener("click", () => {
    const version = previewed?.version;
    if (version !== undefined) void showComparison(version.id, CURRENT);
  });
  fromSelect.addEventListener(
    "change",
    () => void showComparison(fromSelect.value, toSelect.value),
  );
  toSelect.addEventListener("change", () => void showComparison(fromSelect.value, toSelect.value));
  close.addEventListener("click", () => {
    handle.close();
    options.onClose();
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    if (previewed !== null || compared !== null) backToList();
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
