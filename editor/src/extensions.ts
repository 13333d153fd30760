/**
 * The document schema: one list of Tiptap extensions shared by the editor and
 * (in a later issue) the server's JSON/HTML/Markdown conversion, so both agree
 * on the shape of a document.
 */
import type { Extensions } from "@tiptap/core";
import { TaskItem, TaskList } from "@tiptap/extension-list";
import StarterKit from "@tiptap/starter-kit";

/** The Yjs XML fragment the editor binds to. */
export const FIELD = "default";

/** Every node and mark a document may contain. */
export function schemaExtensions(): Extensions {
  return [
    StarterKit.configure({
      // Undo and redo come from the collaboration binding, per user.
      undoRedo: false,
      heading: { levels: [1, 2, 3] },
      link: { openOnClick: false, autolink: true, defaultProtocol: "https" },
    }),
    TaskList,
    TaskItem.configure({ nested: true }),
  ];
}
