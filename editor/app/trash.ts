/**
 * The Trash page (`/trash`): deleted documents, when each was deleted and by
 * whom, when it leaves the trash for good, and buttons to restore it (under
 * another name when its name has a new document) or delete it forever.
 */

import { credentialForm, credentialPanel } from "./access.ts";
import { listTrash, purgeFromTrash, restoreFromTrash, type TrashItem } from "./api.ts";
import { button, paragraph } from "./dom.ts";

/**
 * Where the API secret the trash needs is kept: for this tab only (sessionStorage), and apart
 * from the user's access token, which the editor sends over its WebSocket. The secret is the
 * server's master credential: it never leaves this page's REST calls.
 */
const SECRET_KEY = "collab-docs:api-secret";

function apiSecret(): string | null {
  return sessionStorage.getItem(SECRET_KEY);
}

/** A form for the API secret; on submit it is kept for the tab and `onSecret` runs. */
function secretForm(onSecret: () => void): HTMLFormElement {
  return credentialForm({
    label: "API secret",
    placeholder: "The server's API_SECRET",
    submit: "Use for this tab",
    use: (secret) => {
      sessionStorage.setItem(SECRET_KEY, secret);
      onSecret();
    },
  });
}

/** Renders the Trash page into `main`; `open(name)` opens a document. */
export async function showTrash(main: HTMLElement, open: (name: string) => void): Promise<void> {
  const intro = paragraph(
    "app-hint",
    "Deleted documents stay here with their versions until the date shown, then they are removed for good.",
  );
  const list = document.createElement("ul");
  list.className = "app-list app-trash";
  list.setAttribute("aria-label", "Deleted documents");
  main.replaceChildren(intro, list);
  const result = await listTrash(apiSecret());
  if (!result.ok) {
    if (result.status === 401 || result.status === 403) {
      list.replaceWith(
        credentialPanel(
          "The trash needs the server's API secret",
          "Only an administrator can see and restore deleted documents on this server. Paste the server's API secret below; it is kept for this tab only.",
          secretForm(() => void showTrash(main, open)),
        ),
      );
    } else {
      list.replaceWith(paragraph("app-empty", "Could not load the trash."));
    }
    return;
  }
  if (result.value.length === 0) {
    list.replaceWith(paragraph("app-empty", "The trash is empty."));
    return;
  }
  // Newest deletion first: the one to undo is usually the latest.
  const items = [...result.value].sort((a, b) => b.deleted.localeCompare(a.deleted));
  for (const item of items) list.append(row(item, open, () => void showTrash(main, open)));
}

function row(item: TrashItem, open: (name: string) => void, refresh: () => void): HTMLLIElement {
  const li = document.createElement("li");
  li.className = "app-trash__item";
  const info = document.createElement("div");
  info.className = "app-trash__info";
  const name = document.createElement("strong");
  name.className = "app-trash__name";
  name.textContent = item.name;
  const details = document.createElement("span");
  details.className = "app-trash__details";
  const by = item.deletedBy === null ? "" : ` by ${item.deletedBy}`;
  const versions =
    item.versions === 0 ? "" : ` · ${item.versions} version${item.versions === 1 ? "" : "s"}`;
  details.textContent = `Deleted ${when(item.deleted)}${by}${versions} · removed for good ${day(item.purgeAt)}`;
  info.append(name, details);

  const actions = document.createElement("div");
  actions.className = "app-trash__actions";
  const restore = button("Restore", "app-button");
  const purge = button("Delete forever", "app-button secondary danger");
  actions.append(restore, purge);
  const message = paragraph("app-trash__message", "");
  message.setAttribute("aria-live", "polite");
  li.append(info, actions, message);

  const restoreAs = async (as: string | null) => {
    restore.disabled = true;
    message.textContent = "Restoring…";
    const result = await restoreFromTrash(item, as, apiSecret());
    restore.disabled = false;
    if (result.ok) {
      open(result.value.document.name);
      return;
    }
    if (result.status === 409) {
      message.textContent = "";
      li.append(renameForm(item, (name) => void restoreAs(name)));
      message.textContent = `A new document named “${item.name}” exists. Restore this one under another name:`;
      return;
    }
    message.textContent = result.message;
  };
  restore.addEventListener("click", () => void restoreAs(null));

  let confirming = false;
  purge.addEventListener("click", async () => {
    if (!confirming) {
      confirming = true;
      purge.textContent = "Click again to delete forever";
      message.textContent = "This cannot be undone.";
      return;
    }
    purge.disabled = true;
    const result = await purgeFromTrash(item, apiSecret());
    if (result.ok) refresh();
    else {
      purge.disabled = false;
      message.textContent = result.message;
    }
  });
  return li;
}

function renameForm(item: TrashItem, submit: (name: string) => void): HTMLFormElement {
  const form = document.createElement("form");
  form.className = "app-open app-trash__rename";
  const input = document.createElement("input");
  input.name = "as";
  input.required = true;
  input.maxLength = 255;
  input.value = `${item.name} (restored)`;
  input.setAttribute("aria-label", "Restore under this name");
  const go = button("Restore as", "app-button");
  go.type = "submit";
  form.append(input, go);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (name) submit(name);
    form.remove();
  });
  queueMicrotask(() => input.focus());
  return form;
}

function when(iso: string): string {
  return new Date(iso).toLocaleString();
}

function day(iso: string): string {
  return `on ${new Date(iso).toLocaleDateString()}`;
}
