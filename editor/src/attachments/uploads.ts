/**
 * Putting images and files into a document: paste, drop or the toolbar's
 * button insert a node at once (an image shows from the local file, with a
 * progress bar), the bytes upload to the server, and the node gets the
 * attachment's id, which is what every other editor renders from.
 *
 * Offline (or with the server failing) an upload waits and is tried again
 * when the connection returns; the file is kept in IndexedDB meanwhile, so
 * a reload does not lose it. A file the server refuses (too large, not
 * allowed) is taken out again and the user is told why; nothing else
 * changes.
 */
import type { Editor } from "@tiptap/core";
import type { Node as PmNode } from "@tiptap/pm/model";
import { Plugin, PluginKey, TextSelection } from "@tiptap/pm/state";
import { type AttachmentClient, AttachmentError, type AttachmentInfo } from "./client.ts";

/** Types the browser shows as images; anything else becomes a file card. */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]);

/** An upload this editor started, by its local id (the node's `pending` attribute). */
interface LocalUpload {
  readonly file: Blob;
  readonly filename: string;
  /** A blob: URL of the file, for showing an image before it is uploaded. */
  readonly preview: string;
  progress: number;
  state: "uploading" | "waiting";
}

/** What the uploader tells node views about a local upload. */
export interface UploadState {
  readonly preview: string;
  readonly progress: number;
  readonly state: "uploading" | "waiting";
}

export interface UploadsOptions {
  readonly client: AttachmentClient;
  /** The document, to keep waiting files apart from other documents'. */
  readonly key: string;
  /** Tells the user something went wrong (a file could not be uploaded). */
  readonly notify: (message: string) => void;
  /** Keep waiting files in IndexedDB (the editor's `offline` option). */
  readonly persist: boolean;
}

/** The uploader of one editor. */
export class Uploads {
  private readonly options: UploadsOptions;
  private readonly local = new Map<string, LocalUpload>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private editor: Editor | null = null;
  private destroyed = false;
  private readonly store: PendingStore | null;

  constructor(options: UploadsOptions) {
    this.options = options;
    this.store = options.persist && typeof indexedDB !== "undefined" ? new PendingStore() : null;
  }

  /** Binds the editor, once it exists. */
  attach(editor: Editor): void {
    this.editor = editor;
  }

  /** The paste and drop handling, as a ProseMirror plugin. */
  plugin(): Plugin {
    return new Plugin({
      key: new PluginKey("attachmentUploads"),
      props: {
        handlePaste: (_view, event) => {
          const files = [...(event.clipboardData?.files ?? [])];
          if (files.length === 0 || this.editor?.isEditable !== true) return false;
          this.insert(files);
          return true;
        },
        handleDrop: (view, event, _slice, moved) => {
          const files = [...(event.dataTransfer?.files ?? [])];
          if (moved || files.length === 0 || this.editor?.isEditable !== true) return false;
          const at = view.posAtCoords({ left: event.clientX, top: event.clientY });
          this.insert(files, at?.pos);
          return true;
        },
      },
    });
  }

  /** What node views show for local upload `id`, or null when it is not this editor's. */
  state(id: string): UploadState | null {
    const upload = this.local.get(id);
    return upload === undefined
      ? null
      : { preview: upload.preview, progress: upload.progress, state: upload.state };
  }

  /** Calls `listener` when local upload `id` progresses; returns the unsubscribe. */
  watch(id: string, listener: () => void): () => void {
    const set = this.listeners.get(id) ?? new Set();
    set.add(listener);
    this.listeners.set(id, set);
    return () => set.delete(listener);
  }

  /** Inserts `files` at `pos` (the selection when left out) and uploads them. */
  insert(files: readonly File[], pos?: number): void {
    const editor = this.editor;
    if (editor === null || files.length === 0) return;
    const nodes = files.map((file) => {
      const id = crypto.randomUUID();
      const filename = file.name || "file";
      this.local.set(id, {
        file,
        filename,
        preview: URL.createObjectURL(file),
        progress: 0,
        state: "uploading",
      });
      void this.store?.put(id, { key: this.options.key, file, filename });
      return IMAGE_TYPES.has(file.type)
        ? { type: "image", attrs: { pending: id, alt: stem(filename) } }
        : { type: "file", attrs: { pending: id, filename, size: file.size } };
    });
    const chain = editor.chain().focus();
    (pos === undefined ? chain.insertContent(nodes) : chain.insertContentAt(pos, nodes)).run();
    this.caretAfter(nodes.at(-1)?.attrs.pending);
    for (const node of nodes) void this.upload(node.attrs.pending);
  }

  /**
   * Puts the caret in the paragraph after the node of local upload `id`
   * (making one at the end of the document), so typing or pasting next does
   * not replace the image just inserted.
   */
  private caretAfter(id: string | undefined): void {
    const editor = this.editor;
    if (editor === null || id === undefined) return;
    let after: number | null = null;
    editor.state.doc.descendants((node, pos) => {
      if (node.attrs.pending === id) after = pos + node.nodeSize;
      return after === null;
    });
    if (after === null) return;
    const tr = editor.state.tr;
    const next = tr.doc.resolve(after).nodeAfter;
    if (next === null || !next.isTextblock) {
      const paragraph = editor.schema.nodes.paragraph;
      if (paragraph === undefined) return;
      tr.insert(after, paragraph.create());
    }
    tr.setSelection(TextSelection.create(tr.doc, after + 1));
    editor.view.dispatch(tr.scrollIntoView());
  }

  /**
   * Takes up uploads a previous page of this document left waiting (kept in
   * IndexedDB): those whose node is still in the document.
   */
  async resume(): Promise<void> {
    if (this.store === null || this.editor === null) return;
    const waiting = new Set<string>();
    this.editor.state.doc.descendants((node) => {
      const pending = node.attrs.pending;
      if (typeof pending === "string") waiting.add(pending);
    });
    for (const id of waiting) {
      if (this.local.has(id)) continue;
      const kept = await this.store.get(id);
      if (kept === null || kept.key !== this.options.key) continue;
      this.local.set(id, {
        file: kept.file,
        filename: kept.filename,
        preview: URL.createObjectURL(kept.file),
        progress: 0,
        state: "waiting",
      });
      this.changed(id);
    }
    this.retry();
  }

  /** Tries every waiting upload again (the connection came back). */
  retry(): void {
    for (const [id, upload] of this.local) {
      if (upload.state === "waiting") void this.upload(id);
    }
  }

  destroy(): void {
    this.destroyed = true;
    for (const upload of this.local.values()) URL.revokeObjectURL(upload.preview);
    this.local.clear();
    this.listeners.clear();
    this.store?.close();
  }

  private async upload(id: string): Promise<void> {
    const upload = this.local.get(id);
    if (upload === undefined) return;
    upload.state = "uploading";
    this.changed(id);
    let info: AttachmentInfo;
    try {
      info = await this.options.client.upload(upload.file, upload.filename, (fraction) => {
        upload.progress = fraction;
        this.changed(id);
      });
    } catch (error) {
      if (this.destroyed) return;
      const failure =
        error instanceof AttachmentError ? error : new AttachmentError(String(error), 0);
      if (!failure.permanent) {
        upload.state = "waiting";
        upload.progress = 0;
        this.changed(id);
        return;
      }
      this.options.notify(`“${upload.filename}” could not be added: ${failure.message}`);
      this.replace(id, null);
      this.forget(id);
      return;
    }
    if (this.destroyed) return;
    this.replace(id, info);
    // The preview stays a moment longer: the node view swaps to the server's copy once loaded.
    this.forget(id);
  }

  /** Gives every node of local upload `id` its attachment, or removes them (`info` null). */
  private replace(id: string, info: AttachmentInfo | null): void {
    const editor = this.editor;
    if (editor === null || editor.isDestroyed) return;
    const found: Array<{ node: PmNode; pos: number }> = [];
    editor.state.doc.descendants((node, pos) => {
      if (node.attrs.pending === id) found.push({ node, pos });
    });
    if (found.length === 0) return;
    const tr = editor.state.tr;
    // From the end, so earlier positions stay valid.
    for (const { node, pos } of found.reverse()) {
      if (info === null) {
        tr.delete(pos, pos + node.nodeSize);
        continue;
      }
      const attrs = { ...node.attrs, attachment: info.id, src: info.url, pending: null };
      if (node.type.name === "file") Object.assign(attrs, { size: info.size });
      tr.setNodeMarkup(pos, undefined, attrs);
    }
    tr.setMeta("addToHistory", false);
    editor.view.dispatch(tr);
  }

  private forget(id: string): void {
    const upload = this.local.get(id);
    this.local.delete(id);
    void this.store?.delete(id);
    this.changed(id);
    this.listeners.delete(id);
    // Once the views had their chance to show the server's copy.
    if (upload !== undefined) setTimeout(() => URL.revokeObjectURL(upload.preview), 30_000);
  }

  private changed(id: string): void {
    for (const listener of this.listeners.get(id) ?? []) listener();
  }
}

/** A file name without its extension, as a first alt text. */
function stem(filename: string): string {
  return filename.replace(/\.[^.]+$/, "");
}

interface PendingFile {
  readonly key: string;
  readonly file: Blob;
  readonly filename: string;
}

/** Files waiting to be uploaded, in IndexedDB, by local upload id. */
class PendingStore {
  private readonly db: Promise<IDBDatabase | null>;

  constructor() {
    this.db = new Promise((resolve) => {
      try {
        const request = indexedDB.open("collab-docs:uploads", 1);
        request.onupgradeneeded = () => request.result.createObjectStore("pending");
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => resolve(null);
      } catch {
        resolve(null);
      }
    });
  }

  async put(id: string, value: PendingFile): Promise<void> {
    await this.run("readwrite", (store) => store.put(value, id));
  }

  async get(id: string): Promise<PendingFile | null> {
    const found = await this.run<PendingFile | undefined>("readonly", (store) => store.get(id));
    return found ?? null;
  }

  async delete(id: string): Promise<void> {
    await this.run("readwrite", (store) => store.delete(id));
  }

  close(): void {
    void this.db.then((db) => db?.close());
  }

  private async run<T>(
    mode: IDBTransactionMode,
    operation: (store: IDBObjectStore) => IDBRequest,
  ): Promise<T | undefined> {
    const db = await this.db;
    if (db === null) return undefined;
    return new Promise((resolve) => {
      try {
        const request = operation(db.transaction("pending", mode).objectStore("pending"));
        request.onsuccess = () => resolve(request.result as T);
        request.onerror = () => resolve(undefined);
      } catch {
        // Closed, or storage refused: the upload still runs from memory.
        resolve(undefined);
      }
    });
  }
}
