/**
 * createDocumentPreview: a read-only view of a Tiptap JSON document (a saved
 * version, a document fetched from the REST API) with the editor's schema and
 * look, and no connection to anything.
 */
import { Editor, type Extensions, type JSONContent } from "@tiptap/core";
import { schemaExtensions } from "./extensions.ts";

/** What {@link createDocumentPreview} returns. */
export interface DocumentPreview {
  /** The read-only Tiptap editor showing the document. */
  readonly editor: Editor;
  /** Removes the preview and everything it added. */
  destroy(): void;
}

/**
 * Shows `content` (Tiptap JSON, e.g. `GET /api/v1/documents/{name}?format=json`) in `element`,
 * read-only. Nothing is parsed as HTML: the JSON becomes nodes of the editor's schema.
 *
 * @example
 * const json = await (await fetch("/api/v1/documents/notes/versions/v1?format=json")).json();
 * const preview = createDocumentPreview(document.querySelector("#preview"), json);
 * // later: preview.destroy();
 */
export function createDocumentPreview(
  element: HTMLElement,
  content: JSONContent,
  options: {
    /** The accessible name of the shown document. @default "Document preview" */
    readonly label?: string;
    /**
     * The schema to show it with, as Tiptap extensions: one that holds at least every node
     * and mark of `content`. @default schemaExtensions(), the editor's own
     */
    readonly extensions?: Extensions;
  } = {},
): DocumentPreview {
  const root = element.ownerDocument.createElement("div");
  root.className = "collab-editor collab-editor--preview";
  element.append(root);
  const editor = new Editor({
    element: root,
    editable: false,
    injectCSS: false,
    extensions: options.extensions ?? schemaExtensions(),
    content,
    editorProps: {
      attributes: {
        class: "collab-editor__preview",
        role: "document",
        "aria-label": options.label ?? "Document preview",
        "aria-readonly": "true",
      },
    },
  });
  return {
    editor,
    destroy() {
      editor.destroy();
      root.remove();
    },
  };
}
