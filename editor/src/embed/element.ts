/**
 * `<collab-editor>`: the editor as a custom element, for pages without a
 * framework. Attributes: `url`, `document`, `token`, `user-name`,
 * `user-color`, `readonly`, `placeholder`, `offline` ("false" turns the
 * IndexedDB copy off). The editor is (re)created when the element is
 * connected or an attribute changes, and destroyed when it is removed.
 */
import { type CollabEditorHandle, createCollabEditor } from "../editor.ts";

const ATTRIBUTES = [
  "url",
  "document",
  "token",
  "user-name",
  "user-color",
  "readonly",
  "placeholder",
  "offline",
];

export class CollabEditorElement extends HTMLElement {
  static readonly observedAttributes = ATTRIBUTES;
  private handle: CollabEditorHandle | null = null;

  /** The running editor, or null while the element is detached or misconfigured. */
  get editorHandle(): CollabEditorHandle | null {
    return this.handle;
  }

  connectedCallback(): void {
    this.mount();
  }

  disconnectedCallback(): void {
    this.handle?.destroy();
    this.handle = null;
  }

  attributeChangedCallback(): void {
    if (this.isConnected) this.mount();
  }

  private mount(): void {
    this.handle?.destroy();
    this.handle = null;
    const url = this.getAttribute("url");
    const name = this.getAttribute("document");
    if (!url || !name) return;
    const userName = this.getAttribute("user-name");
    const userColor = this.getAttribute("user-color");
    this.handle = createCollabEditor(this, {
      url,
      document: name,
      token: this.getAttribute("token") ?? undefined,
      user: userName ? { name: userName, color: userColor ?? undefined } : undefined,
      readOnly: this.hasAttribute("readonly") && this.getAttribute("readonly") !== "false",
      offline: this.getAttribute("offline") !== "false",
      placeholder: this.getAttribute("placeholder") ?? undefined,
    });
  }
}

/** Registers `<collab-editor>` (once). */
export function defineCollabEditorElement(tag = "collab-editor"): void {
  if (!customElements.get(tag)) customElements.define(tag, CollabEditorElement);
}
