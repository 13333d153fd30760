/**
 * The app the server serves: `/` lists documents and opens or creates one,
 * `/d/<name>` edits it. The user's name lives in localStorage.
 */
import { colorFor, createCollabEditor } from "../src/index.ts";

interface Listed {
  readonly name: string;
  readonly updated: string;
}

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
  title.textContent = "Documents";
  const form = document.createElement("form");
  form.className = "app-open";
  form.innerHTML = `<input name="doc" placeholder="Document name, e.g. team/notes" aria-label="Document name" required maxlength="255" />
    <button class="app-button" type="submit">Open or create</button>`;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = (new FormData(form).get("doc") as string).trim();
    if (name) location.assign(documentPath(name));
  });
  const list = document.createElement("ul");
  list.className = "app-list";
  main.replaceChildren(form, list);
  try {
    const body = { documents: [] as Listed[] };
    // Every page of the list (bounded: 50 pages of 200).
    let after: string | null = "";
    for (let pages = 0; after !== null && pages < 50; pages++) {
      const query = new URLSearchParams({ limit: "200", ...(after ? { after } : {}) });
      const page = (await (await fetch(`/api/v1/documents?${query}`)).json()) as {
        documents: Listed[];
        next: string | null;
      };
      body.documents.push(...page.documents);
      after = page.next;
    }
    if (body.documents.length === 0) {
      main.append(
        Object.assign(document.createElement("p"), {
          className: "app-empty",
          textContent: "No documents yet: name one above to start.",
        }),
      );
      list.remove();
    }
    for (const doc of body.documents) {
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
  } catch {
    list.replaceWith(
      Object.assign(document.createElement("p"), {
        className: "app-empty",
        textContent: "Could not load the document list.",
      }),
    );
  }
}

function showDocument(name: string): void {
  document.title = `${name} · collab-docs`;
  const label = document.createElement("span");
  label.textContent = name;
  const share = document.createElement("button");
  share.className = "app-button secondary";
  share.type = "button";
  share.textContent = "Copy link";
  share.addEventListener("click", async () => {
    await navigator.clipboard?.writeText(location.href).catch(() => {});
    share.textContent = "Link copied";
  });
  title.replaceChildren(label, share);
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  const user = userName();
  const handle = createCollabEditor(main, {
    url: wsUrl,
    document: name,
    user: { name: user, color: colorFor(user) },
  });
  (window as unknown as { collab: typeof handle }).collab = handle;
  onNameChange = (next) => handle.setUser({ name: next, color: colorFor(next) });
}

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
else void showList();
