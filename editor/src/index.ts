/**
 * @collab-docs/editor: a collaborative rich-text editor for collab-docs servers.
 *
 * - `createCollabEditor(element, options)` mounts an editor and returns its handle.
 * - `defineCollabEditorElement()` registers `<collab-editor>`.
 * - `createDocumentPreview(element, json)` shows a Tiptap JSON document read-only.
 * - Import `@collab-docs/editor/style.css` once for the default look.
 */
import "./ui/styles.css";

export {
  type CollabEditorEvents,
  type CollabEditorHandle,
  createCollabEditor,
  type Participant,
} from "./editor.ts";
export { CollabEditorElement, defineCollabEditorElement } from "./embed/element.ts";
export { FIELD, schemaExtensions } from "./extensions.ts";
export { type CollabEditorOptions, type CollabUser, colorFor } from "./options.ts";
export { createDocumentPreview, type DocumentPreview } from "./preview.ts";
export {
  type AccessProblem,
  type ConnectionState,
  type Denial,
  describeConnection,
  describeSave,
  explainDenial,
  type SaveState,
} from "./status.ts";
