/**
 * Document names: 1 to 255 bytes of UTF-8 with no control characters, not
 * only whitespace. A name
 * is only ever a key in the store, never a file path, so nothing else is
 * forbidden: slashes, dots and spaces are ordinary characters.
 */

import { documentOfThreads } from "../../../editor/src/comments/model.ts";

/** Longest allowed document name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

/** Why a name was refused, or null when it is valid. */
export function checkDocumentName(name: string): string | null {
  if (name.length === 0) return "document name is empty";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_NAME_BYTES) {
    return `document name is ${bytes} bytes, at most ${MAX_NAME_BYTES} allowed`;
  }
  if (CONTROL.test(name)) return "document name contains a control character";
  // Hocuspocus refuses these itself, with a generic reason; say why instead.
  if (name.trim() === "") return "document name is only whitespace";
  if (name.isWellFormed?.() === false) return "document name is not well-formed Unicode";
  return null;
}

/**
 * Why a name cannot be stored, or null: a document name, or the name of a
 * document's threads document (editor/src/comments/model.ts), which only
 * the server makes, and which clients open beside the document.
 */
export function checkStoredName(name: string): string | null {
  return checkDocumentName(documentOfThreads(name) ?? name);
}

/** The document a stored name belongs to: itself, or the document of a threads document. */
export function ownerOf(name: string): string {
  return documentOfThreads(name) ?? name;
}
