/**
 * The document schema on the server: the editor's own extension list, so a
 * document the REST API writes is exactly what the editor can show and edit.
 *
 * The list is imported from the editor's source by relative path rather than
 * copied or published as a package: there is one list for both sides (a node
 * added to the editor is known to the server at once, and a node the editor
 * lacks can never be stored), and Node runs the editor's TypeScript directly,
 * so there is no build step between them. The editor module only imports
 * Tiptap extensions (no DOM at import time), which the server depends on too.
 * Anything that runs the server must therefore ship
 * `editor/src/extensions.ts` next to `server/src`.
 *
 * Everything here is built once per process: building a schema from the
 * extensions takes milliseconds, too slow to repeat per request.
 */
import { type Extensions, getSchema } from "@tiptap/core";
import { MarkdownManager } from "@tiptap/markdown";
import type { Schema } from "@tiptap/pm/model";
import { FIELD, fillRefusedContent, schemaExtensions } from "../../../editor/src/extensions.ts";

export { FIELD, schemaExtensions };

/** The editor's extensions, instantiated once for the server's converters. */
export const extensions: Extensions = schemaExtensions();

/**
 * The ProseMirror schema every stored document conforms to, with the editor's
 * patch to y-tiptap's rendering ({@link fillRefusedContent}), so the server
 * reads a fragment as the editor shows it.
 */
export const schema: Schema = fillRefusedContent(getSchema(extensions));

/** Markdown parser and serializer for {@link schema} (each node's own Markdown rules). */
export const markdown: MarkdownManager = new MarkdownManager({ extensions });
