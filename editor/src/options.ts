/**
 * Options of {@link createCollabEditor} and attributes of `<collab-editor>`.
 */

import { apiUrlFor } from "./copy.ts";

/** Who is typing: shown on the caret and in the presence list. */
export interface CollabUser {
  /** @example "Ada" */
  readonly name: string;
  /** Any CSS colour. @example "#7c3aed" */
  readonly color: string;
}

export interface CollabEditorOptions {
  /**
   * WebSocket URL of the collab-docs server (any path). Required.
   * @default none
   * @example "ws://localhost:1234"
   */
  readonly url: string;
  /**
   * Document name: 1 to 255 bytes of UTF-8, no control characters. Required.
   * @default none
   * @example "team/meeting-notes"
   */
  readonly document: string;
  /**
   * Access token sent to the server, or a function returning a fresh one (called on every
   * (re)connect).
   * @default undefined (no token)
   * @example async () => (await fetch("/token")).text()
   */
  readonly token?: string | (() => Promise<string>);
  /**
   * The local user.
   * @default a generated name and colour
   * @example { name: "Ada", color: "#7c3aed" }
   */
  readonly user?: { readonly name?: string; readonly color?: string };
  /**
   * Show the document without letting this user change it (no toolbar, not editable). The
   * server can make an editor read-only too, when its token grants only reading: the editor
   * then shows a "Read only" badge and a disabled toolbar (see the handle's `readOnly`).
   * @default false
   * @example true
   */
  readonly readOnly?: boolean;
  /**
   * Keep a copy in the browser (IndexedDB) so edits made offline survive a reload and merge
   * when the connection returns.
   * @default true
   * @example false // a shared kiosk: keep nothing in the browser
   */
  readonly offline?: boolean;
  /**
   * Text shown while the document is empty.
   * @default "Start writing…"
   * @example "Meeting notes…"
   */
  readonly placeholder?: string;
  /**
   * Show the toolbar, presence and status bar; false gives only the editing surface.
   * @default true
   * @example false // your app draws its own toolbar from handle.editor
   */
  readonly chrome?: boolean;
  /**
   * When the server refuses the document, show a notice saying why in place of the document.
   * Turn it off when your page shows its own (the `connection` event's `denied` state carries
   * the server's `reason`; `explainDenial(reason)` gives its kind and a message for people).
   * Needs `chrome`.
   * @default true
   * @example false // the app shows an "Access denied" panel with a token field instead
   */
  readonly accessNotice?: boolean;
  /**
   * When the server refuses the document as deleted (this device holds a copy of a document
   * someone deleted), show a notice offering to download the copy, save it as a new document or
   * discard it, with the copy visible below. Needs `chrome`.
   * @default true
   */
  readonly deletedNotice?: boolean;
  /**
   * The server's REST API, used to save a copy of a deleted document as a new one.
   * @default the `url`'s host over http(s), at /api/v1
   * @example "https://docs.example.com/api/v1"
   */
  readonly apiUrl?: string;
  /**
   * Comment threads: a panel beside the text, a Comment button (Ctrl+Alt+M), highlights.
   * Needs `chrome`. @default true
   */
  readonly comments?: boolean;
  /**
   * People to suggest after `@` in a comment, besides those present and those who have
   * commented: your directory, say. Called with what follows the `@`.
   */
  readonly mentions?: (query: string) => Promise<ReadonlyArray<{ id: string; name: string }>>;
}

/** Options with their defaults filled in. */
export interface ResolvedOptions extends Required<Omit<CollabEditorOptions, "token" | "mentions">> {
  readonly token: CollabEditorOptions["token"];
  readonly mentions: CollabEditorOptions["mentions"];
}

const PALETTE = [
  "#7c3aed",
  "#db2777",
  "#ea580c",
  "#16a34a",
  "#0891b2",
  "#2563eb",
  "#9333ea",
  "#ca8a04",
];

/** A stable colour for a name. */
export function colorFor(name: string): string {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  return PALETTE[hash % PALETTE.length] as string;
}

export function resolveOptions(options: CollabEditorOptions): ResolvedOptions {
  if (typeof options.url !== "string" || options.url === "")
    throw new TypeError("collab-editor: `url` is required");
  if (typeof options.document !== "string" || options.document === "") {
    throw new TypeError("collab-editor: `document` is required");
  }
  const name = options.user?.name ?? `Guest ${Math.floor(Math.random() * 900 + 100)}`;
  return {
    url: options.url,
    document: options.document,
    token: options.token,
    user: { name, color: options.user?.color ?? colorFor(name) },
    readOnly: options.readOnly ?? false,
    offline: options.offline ?? true,
    placeholder: options.placeholder ?? "Start writing…",
    chrome: options.chrome ?? true,
    accessNotice: options.accessNotice ?? true,
    deletedNotice: options.deletedNotice ?? true,
    apiUrl: options.apiUrl ?? apiUrlFor(options.url),
    comments: options.comments ?? true,
    mentions: options.mentions,
  };
}
