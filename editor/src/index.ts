/**
 * @collab-docs/editor: a collaborative rich-text editor for collab-docs servers.
 *
 * - `createCollabEditor(element, options)` mounts an editor and returns its handle.
 * - `defineCollabEditorElement()` registers `<collab-editor>`.
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
export {
  type ConnectionState,
  describeConnection,
  describeSave,
  type SaveState,
} from "./status.ts";
