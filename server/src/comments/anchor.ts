/**
 * Where a new thread goes: a range of the document's flat text (text.ts),
 * from the editor's selection (two Yjs relative positions, which stay valid
 * while the document changes, so a thread made offline lands on the text it
 * was made on) or from a quote (the REST API: the exact text, with optional
 * text before and after it to tell several matches apart, as the W3C Web
 * Annotation TextQuoteSelector).
 */
import * as Y from "yjs";
import { CollabError } from "../errors.ts";
import { type FlatText, positionBefore, positionOf, type TextRange } from "./text.ts";

/** A relative position as `Y.relativePositionToJSON` writes it. */
export type RelativeJSON = Record<string, unknown>;

export type Anchor =
  | { readonly kind: "relative"; readonly start: RelativeJSON; readonly end: RelativeJSON }
  | {
      readonly kind: "quote";
      readonly quote: string;
      readonly prefix?: string | undefined;
      readonly suffix?: string | undefined;
    };

/** The range `anchor` designates in `flat` now; throws ANCHOR_NOT_FOUND or ANCHOR_AMBIGUOUS. */
export function resolveAnchor(doc: Y.Doc, flat: FlatText, anchor: Anchor): TextRange {
  const range = anchor.kind === "quote" ? byQuote(flat, anchor) : byPositions(doc, flat, anchor);
  if (range.to <= range.from) {
    throw new CollabError("ANCHOR_NOT_FOUND", "the selected text is gone (deleted meanwhile)");
  }
  return range;
}

function byPositions(
  doc: Y.Doc,
  flat: FlatText,
  anchor: Extract<Anchor, { kind: "relative" }>,
): TextRange {
  const from = absolute(doc, flat, anchor.start);
  const to = absolute(doc, flat, anchor.end);
  if (from === null || to === null) {
    throw new CollabError(
      "ANCHOR_NOT_FOUND",
      "the selection refers to text this document does not have",
    );
  }
  return { from: Math.min(from, to), to: Math.max(from, to) };
}

function absolute(doc: Y.Doc, flat: FlatText, json: RelativeJSON): number | null {
  let position: Y.AbsolutePosition | null;
  try {
    position = Y.createAbsolutePositionFromRelativePosition(
      Y.createRelativePositionFromJSON(json),
      doc,
    );
  } catch {
    return null;
  }
  if (position === null) return null;
  if (position.type instanceof Y.XmlText) return positionOf(flat, position.type, position.index);
  return positionBefore(flat, position.type, position.index);
}

function byQuote(flat: FlatText, anchor: Extract<Anchor, { kind: "quote" }>): TextRange {
  const { quote, prefix = "", suffix = "" } = anchor;
  const matches: number[] = [];
  for (let at = flat.text.indexOf(quote); at !== -1; at = flat.text.indexOf(quote, at + 1)) {
    if (!flat.text.slice(0, at).endsWith(prefix)) continue;
    if (!flat.text.slice(at + quote.length).startsWith(suffix)) continue;
    matches.push(at);
  }
  const [first] = matches;
  if (first === undefined) {
    throw new CollabError(
      "ANCHOR_NOT_FOUND",
      `the document has no text ${JSON.stringify(short(quote))}${prefix || suffix ? " with that prefix and suffix" : ""}`,
    );
  }
  if (matches.length > 1) {
    throw new CollabError(
      "ANCHOR_AMBIGUOUS",
      `${JSON.stringify(short(quote))} occurs ${matches.length} times; give a prefix or suffix (text just before or after it) that picks one`,
    );
  }
  return { from: first, to: first + quote.length };
}

function short(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
