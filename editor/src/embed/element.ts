/**
 * `<collab-editor>`: the editor as a custom element, for pages without a
 * framework. Attributes: `url`, `document`, `token`, `user-name`,
 * `user-color`, `readonly`, `placeholder`, `offline` ("false" turns the
 * IndexedDB copy off), `comments` ("false" turns the comments panel off). The editor is created when the element is connected,
 * destroyed when it is removed, and rebuilt (once, however many attributes
 * changed together) when anything but the user changes; a new user name or
 * colour is applied to the running editor.
 *
 * A new `token` therefore reconnects with it: set it when the old one
 * expires, or after the server refused the document, and the element opens
 * the document again with the new token (the local copy in IndexedDB, if
 * any, is kept across the rebuild).
 */
import { type CollabEditorHandle, createCollabEditor } from "../editor.ts";
import { colorFor } from "../options.ts";

const USER_ATTRIBUTES = new Set(["user-name", "user-color"]);
const ATTRIBUTES = [
  "url",
  "document",
  "token",
  "readonly",
  "placeholder",
  "offline",
  "comments",
  ...USER_ATTRIBUTES,
];

export class CollabEditorElement extends HTMLElement {
  static readonly observedAttributes = ATTRIBUTES;
  private handle: CollabEditorHandle | null = null;
  private remountQueued = false;

  /** The running editor, or null while the element is detached or misconfigured. */
  get editorHandle(): CollabEditorHandle | null {
    return this.handle;
  }

  connectedCallback(): void {
    this.queueMount();
  }

  disconnectedCallback(): void {
    this.handle?.destroy();
    this.handle = null;
  }

  attributeChangedCallback(name: string, previous: string | null, next: string | null): void {
    if (previous === next || !this.isConnected) return;
    if (USER_ATTRIBUTES.has(name) && this.handle !== null) {
      const user = this.user();
      if (user !== undefined)
        this.handle.setUser({
          name: user.name ?? "Guest",
          color: user.color ?? colorFor(user.name ?? ""),
        });
      return;
    }
    this.queueMount();
  }

  /** Mounts once per task, after every attribute set in it (as on upgrade) has arrived. */
  private queueMount(): void {
    if (this.remountQueued) return;
    this.remountQueued = true;
    queueMicrotask(() => {
      this.remountQueued = false;
      if (this.isConnected) this.mount();
    });
  }

  private user(): { name?: string; color?: string } | undefined {
    const name = this.getAttribute("user-name") ?? undefined;
    const color = this.getAttribute("user-color") ?? undefined;
    return name === undefined && color === undefined ? undefined : { name, color };
  }

  private mount(): void {
    this.handle?.destroy();
    this.handle = null;
    const url = this.getAttribute("url");
    const name = this.getAttribute("document");
    if (!url || !name) return;
    this.handle = createCollabEditor(this, {
      url,
      document: name,
      token: this.getAttribute("token") ?? undefined,
      user: this.user(),
      readOnly: this.hasAttribute("readonly") && this.getAttribute("readonly") !== "false",
      offline: this.getAttribute("offline") !== "false",
      placeholder: this.getAttribute("placeholder") ?? undefined,
      comments: this.getAttribute("comments") !== "false",
    });
    // A discarded copy of a deleted document: open the document afresh.
    this.handle.on("discarded", () => this.queueMount());
  }
}

/** Registers `<collab-editor>` (once). */
export function defineCollabEditorElement(tag = "collab-editor"): void {
  if (!customElements.get(tag)) customElements.define(tag, CollabEditorElement);
}
