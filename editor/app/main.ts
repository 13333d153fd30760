/**
 * The app the server serves: `/` lists documents and opens or creates one,
 * `/d/<name>` edits it, with its version history in a side panel. The user's
 * name and access token live in localStorage; a link may bring the token in
 * its fragment (`#token=...`), which is moved to localStorage at once.
 */
import {
  type CollabEditorHandle,
  colorFor,
  createCollabEditor,
  explainDenial,
} from "../src/index.ts";
import { credentialPanel, deniedPanel, tokenForm } from "./access.ts";
import { listDocuments } from "./api.ts";
import { paragraph } from "./dom.ts";
import { downloadMenu, importControl } from "./files.ts";
import { createHistoryPanel } from "./history.ts";
import { storedToken, takeTokenFromFragment } from "./token.ts";
import { showTrash } from "./trash.ts";

const USER_KEY = "collab-docs:user-name";
const main = document.querySelector("#main") as HTMLElement;
const title = document.querySelector("#title") as HTMLElement;
const nameInput = document.querySelector("#user-name") as HTMLInputElement;
/** What a new name changes besides localStorage (the open editor's user). */
let onNameChange: (name: string) => void = () => {};

function userName(): string {
  let name = localStorage.getItem(USER_KEY);
  if (!name) {
    name = `Guest ${Math.floor(Math.random() * 900 + 100)}`;
    localStorage.setItem(USER_KEY, name);
  }
  return name;
}

function documentPath(name: string): string {
  return `/d/${encodeURIComponent(name)}`;
}

async function showList(): Promise<void> {
  document.title = "collab-docs";
  const heading = document.createElement("span");
  heading.textContent = "Documents";
  const trashLink = document.createElement("a");
  trashLink.className = "app-button secondary app-link-button";
  trashLink.href = "/trash";
  trashLink.textContent = "Trash";
  title.replaceChildren(heading, trashLink);
  const form = document.createElement("form");
  form.className = "app-open";
  form.innerHTML = `<input name="doc" placeholder="Document name, e.g. team/notes" aria-label="Document name" required maxlength="255" />
    <button class="app-button" type="submit">Open or create</button>`;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = (new FormData(form).get("doc") as string).trim();
    if (name) location.assign(documentPath(name));
  });
  // A Markdown, HTML or Word file becomes a new document: named as typed above, or after the file.
  const importer = importControl(
    () => (new FormData(form).get("doc") as string | null) ?? "",
    storedToken,
    (name) => location.assign(documentPath(name)),
  );
  const list = document.createElement("ul");
  list.className = "app-list";
  main.replaceChildren(form, importer, list);
  const token = storedToken();
  const result = await listDocuments(token);
  if (!result.ok) {
    if (result.status === 401 || result.status === 403) {
      // The server wants a token (or another one) to list documents; opening one by name works.
      list.replaceWith(
        credentialPanel(
          "An access token is needed to list documents",
          token === null
            ? "This server lists documents only for an access token. Paste yours below, or open a document by name above."
            : `The server did not accept the saved access token for listing documents (${result.message}). Paste another below, or open a document by name above.`,
          tokenForm(() => void showList()),
        ),
      );
    } else {
      list.replaceWith(paragraph("app-empty", "Could not load the document list."));
    }
    return;
  }
  if (result.value.length === 0) {
    main.append(paragraph("app-empty", "No documents yet: name one above to start."));
    list.remove();
  }
  for (const doc of result.value) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = documentPath(doc.name);
    const label = document.createElement("span");
    label.textContent = doc.name;
    const time = document.createElement("time");
    time.dateTime = doc.updated;
    time.textContent = new Date(doc.updated).toLocaleString();
    link.append(label, time);
    item.append(link);
    list.append(item);
  }
}

function headerButton(text: string): HTMLButtonElement {
  const button = document.createElement("button");
  button.className = "app-button secondary";
  button.type = "button";
  button.textContent = text;
  return button;
}

function showDocument(name: string): void {
  document.title = `${name} · collab-docs`;
  const label = document.createElement("span");
  label.className = "app-doc-name";
  label.textContent = name;
  const share = headerButton("Copy link");
  share.addEventListener("click", async () => {
    // The address never holds the token (it was moved out of the fragment on load).
    await navigator.clipboard?.writeText(location.href).catch(() => {});
    share.textContent = "Link copied";
  });
  const historyButton = headerButton("History");
  historyButton.setAttribute("aria-expanded", "false");
  historyButton.setAttribute("aria-controls", "history-panel");
  title.replaceChildren(label, share, historyButton, downloadMenu(name, storedToken));

  const layout = document.createElement("div");
  layout.className = "app-doc";
  const column = document.createElement("div");
  column.className = "app-doc__main";
  const host = document.createElement("div");
  host.className = "app-doc__editor";
  const setPanelOpen = (open: boolean) => {
    layout.classList.toggle("has-panel", open);
    main.classList.toggle("is-wide", open);
    historyButton.setAttribute("aria-expanded", String(open));
  };
  const history = createHistoryPanel({
    document: name,
    token: storedToken,
    onClose: () => {
      setPanelOpen(false);
      historyButton.focus();
    },
  });
  historyButton.addEventListener("click", () => {
    if (history.isOpen) {
      history.close();
      setPanelOpen(false);
    } else {
      setPanelOpen(true);
      history.open();
    }
  });
  column.append(host);
  layout.append(column, history.element);
  main.replaceChildren(layout);

  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  let handle: CollabEditorHandle | null = null;
  let denied: { reason: string; panel: HTMLElement } | null = null;
  const showDenied = (reason: string) => {
    // The same refusal again (the provider retries): keep the panel and whatever is typed in it.
    if (denied?.reason === reason) return;
    denied?.panel.remove();
    denied = { reason, panel: deniedPanel(reason, () => mount()) };
    column.prepend(denied.panel);
  };
  /** (Re)creates the editor with the current token: the way to retry after a refusal. */
  const mount = () => {
    denied?.panel.remove();
    denied = null;
    handle?.destroy();
    const user = userName();
    const next = createCollabEditor(host, {
      url: wsUrl,
      document: name,
      user: { name: user, color: colorFor(user) },
      token: storedToken() ?? undefined,
      // The app's own panel says why, with a field for a token.
      accessNotice: false,
    });
    handle = next;
    // For the end-to-end tests (and the curious): the running editor's handle.
    (window as unknown as { collab: CollabEditorHandle }).collab = next;
    next.on("connection", (state) => {
      // A deleted document: the editor's own notice offers what to do with the copy here.
      if (state.kind === "denied" && explainDenial(state.reason).problem !== "deleted") {
        showDenied(state.reason);
      }
    });
    next.on("copySaved", (saved) => location.assign(documentPath(saved)));
    next.on("discarded", () => mount());
    next.on("readOnly", (readOnly) => history.setReadOnly(readOnly));
    history.setReadOnly(next.readOnly);
  };
  onNameChange = (next) => handle?.setUser({ name: next, color: colorFor(next) });
  mount();
}

// Before anything else reads the address or the token.
takeTokenFromFragment();

// The app shell stays available offline, so a document page can reload without the network.
if ("serviceWorker" in navigator) void navigator.serviceWorker.register("/sw.js").catch(() => {});

nameInput.value = userName();
nameInput.addEventListener("change", () => {
  const next = nameInput.value.trim();
  if (!next) return;
  localStorage.setItem(USER_KEY, next);
  onNameChange(next);
});
const match = /^\/d\/(.+)$/u.exec(location.pathname);
if (match?.[1]) showDocument(decodeURIComponent(match[1]));
else if (location.pathname === "/trash") {
  document.title = "Trash · collab-docs";
  const back = document.createElement("a");
  back.className = "app-button secondary app-link-button";
  back.href = "/";
  back.textContent = "All documents";
  const heading = document.createElement("span");
  heading.textContent = "Trash";
  title.replaceChildren(heading, back);
  void showTrash(main, (name) => location.assign(documentPath(name)));
} else void showList();
