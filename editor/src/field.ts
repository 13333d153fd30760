/**
 * The name of the Yjs XML fragment a document's text lives in, in a module of
 * its own: the server reads and marks that fragment without loading Tiptap
 * (editor/src/extensions.ts), which added 13 MB to its idle memory.
 */

/** The Yjs XML fragment the editor binds to. */
export const FIELD = "default";
