/**
 * @collab-docs/editor: a collaborative rich-text editor for collab-docs servers.
 *
 * - `createCollabEditor(element, options)` mounts an editor and returns its handle.
 * - `defineCollabEditorElement()` registers `<collab-editor>`.
 * - `createDocumentPreview(element, json)` shows a Tiptap JSON document read-only.
 * - `trackSaves(provider)` says when the server has stored every local change of a plain
 *   Hocuspocus provider (also at `@collab-docs/editor/saves`, without the editor).
 * - Import `@collab-docs/editor/style.css` once for the default look.
 */
import "./ui/styles.css";

export { apiUrlFor, type SaveCopyResult } from "./copy.ts";
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
export { RECONNECT } from "./reconnect.ts";
export { type SaveTracker, type TrackSavesOptions, trackSaves } from "./saves.ts";
export {
  type AccessProblem,
  type ConnectionState,
  type Denial,
  describeConnection,
  describeSave,
  explainDenial,
  type SaveState,
} from "./status.ts";
