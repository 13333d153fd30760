/**
 * createDocumentPreview: a read-only view of a Tiptap JSON document (a saved
 * version, a document fetched from the REST API) with the editor's schema and
 * look, and no connection to anything.
 */
import { Editor, type JSONContent } from "@tiptap/core";
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
  options: { readonly label?: string } = {},
): DocumentPreview {
  const root = element.ownerDocument.createElement("div");
  root.className = "collab-editor collab-editor--preview";
  element.append(root);
  const editor = new Editor({
    element: root,
    editable: false,
    injectCSS: false,
    extensions: schemaExtensions(),
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
