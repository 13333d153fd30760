/**
 * Document conversion for the REST API: Tiptap JSON, HTML, Markdown and plain
 * text to and from the Yjs document the editor binds to (the {@link FIELD}
 * XML fragment), all against the editor's own {@link schema}.
 *
 * Every way in goes through one validator ({@link parseContent},
 * {@link replaceContent}, {@link appendContent}, {@link renderContent}):
 * unknown nodes or marks, wrong nesting, empty text and excessive depth are
 * refused with `CONTENT_INVALID` and a message naming the place
 * (`content[2].content[0]: ...`), and links whose address the editor's Link
 * extension would refuse (`javascript:`, `data:`, ...) lose their link mark, as
 * they do when such HTML is pasted into the editor.
 *
 * The empty document is `{ type: "doc", content: [{ type: "paragraph" }] }`
 * (what the schema's `createAndFill` gives): empty input parses to it, and an
 * empty fragment reads as it.
 */
import { getText, getTextSerializersFromSchema, type JSONContent } from "@tiptap/core";
import {
  type Attrs,
  DOMParser,
  DOMSerializer,
  Mark,
  type MarkType,
  type Node as PMNode,
  type TagParseRule,
} from "@tiptap/pm/model";
import { EditorState } from "@tiptap/pm/state";
import { fixTables } from "@tiptap/pm/tables";
import { prosemirrorToYXmlFragment } from "@tiptap/y-tiptap";
import { type IOptionalBrowserSettings, Window } from "happy-dom";
import * as Y from "yjs";
import { CollabError } from "../errors.ts";
import { ContentLimits } from "./limits.ts";
import { FIELD, markdown, schema } from "./schema.ts";

export { ContentLimits } from "./limits.ts";

/** Formats a document can be written in. */
export type InputFormat = "json" | "html" | "markdown";

/** Formats a document can be read as. */
export type OutputFormat = "json" | "html" | "markdown" | "text";

/** Limits for one {@link parseContent} call. */
export interface ParseOptions {
  /** Largest input in UTF-8 bytes. @default ContentLimits.maxBytes[format] */
  maxBytes?: number;
  /** Deepest node nesting. @default ContentLimits.maxDepth */
  maxDepth?: number;
}

/**
 * Parses a request body into a normalised Tiptap document (every attribute
 * present, marks in schema order). Empty or blank input gives the empty
 * document. Throws `CONTENT_INVALID` saying what is wrong and where.
 *
 * @example
 * parseContent("# Title", "markdown")
 * // { type: "doc", content: [{ type: "heading", attrs: { level: 1 }, content: [...] }] }
 */
export function parseContent(
  body: string,
  format: InputFormat,
  options: ParseOptions = {},
): JSONContent {
  const maxBytes = options.maxBytes ?? ContentLimits.maxBytes[format];
  const maxDepth = options.maxDepth ?? ContentLimits.maxDepth;
  // A UTF-8 encoding has at least as many bytes as the string has UTF-16 units.
  if (body.length > maxBytes || Buffer.byteLength(body, "utf8") > maxBytes) {
    throw invalid(`${format} content is larger than ${maxBytes} bytes`);
  }
  const text = body.startsWith("\uFEFF") ? body.slice(1) : body;
  if (text.trim() === "") return emptyDocument().toJSON();
  const raw = rawDocument(text, format, maxDepth);
  return buildDocument(raw, maxDepth).toJSON();
}

/**
 * The document as {@link renderContent} checks it before rendering (a collaborator can
 * write anything into Yjs): for writers of other formats (Word). Throws CONTENT_INVALID.
 */
export function checkedJSON(json: JSONContent): JSONContent {
  return buildDocument(json, ContentLimits.maxStoredDepth).toJSON();
}

/**
 * The document in `doc` as Tiptap JSON, read the way the editor's binding
 * reads it: elements or marks the schema does not know are left out (the
 * editor drops them too), and an empty fragment is the empty document. The
 * result is not re-validated; {@link renderContent} does that.
 */
export function documentJSON(doc: Y.Doc): JSONContent {
  const children = readChildren(doc.getXmlFragment(FIELD), 1);
  const root =
    schema.topNodeType.createAndFill(null, children) ?? schema.topNodeType.create(null, children);
  return root.toJSON();
}

/**
 * Renders a document in `format`. `text` is plain text: the text of each
 * paragraph, heading and code block, separated by a blank line, with hard
 * breaks as newlines (the editor's `getText()` also puts a blank line at the
 * start of every list, item and quote, which gives runs of them). Throws
 * `CONTENT_INVALID` if `json` is not a valid document.
 */
export function renderContent(json: JSONContent, format: OutputFormat): string {
  const node = buildDocument(json, ContentLimits.maxStoredDepth);
  switch (format) {
    case "json":
      return JSON.stringify(node.toJSON());
    case "html":
      return renderHTML(node);
    case "markdown":
      return markdown.serialize(node.toJSON());
    case "text":
      return renderText(node);
  }
}

/**
 * Makes the document in `doc` equal to `json`, in one Yjs transaction with
 * `origin`. y-tiptap diffs the new content against the fragment (the same
 * update the editor makes for a local change), so unchanged blocks keep their
 * Yjs items and edits others make to them at the same time survive; replacing
 * with equal content changes nothing. Throws `CONTENT_INVALID` for an invalid
 * document (and then changes nothing).
 */
export function replaceContent(doc: Y.Doc, json: JSONContent, origin?: unknown): void {
  const node = buildDocument(json, ContentLimits.maxStoredDepth);
  const fragment = doc.getXmlFragment(FIELD);
  doc.transact(() => {
    prosemirrorToYXmlFragment(node, fragment);
  }, origin);
}

/**
 * Appends the blocks of `json` after the blocks stored in `doc`, in one Yjs
 * transaction with `origin`. Stored blocks are kept as they are (a never-edited
 * document has none, so its first block is the first appended one). Throws
 * `CONTENT_INVALID` for an invalid document (and then changes nothing).
 */
export function appendContent(doc: Y.Doc, json: JSONContent, origin?: unknown): void {
  const added = buildDocument(json, ContentLimits.maxStoredDepth);
  const fragment = doc.getXmlFragment(FIELD);
  doc.transact(() => {
    // The current blocks, read back, match the fragment's children one for one, so
    // y-tiptap's diff keeps them all and only inserts the new blocks at the end.
    const current = readChildren(fragment, 1);
    const combined = schema.topNodeType.create(null, [...current, ...nodesOf(added)]);
    prosemirrorToYXmlFragment(combined, fragment);
  }, origin);
}

// ---------------------------------------------------------------------------
// Parsing

function rawDocument(text: string, format: InputFormat, maxDepth: number): unknown {
  try {
    switch (format) {
      case "json":
        return parseJSON(text);
      case "html":
        return parseHTML(text, maxDepth);
      case "markdown":
        return parseMarkdown(text, maxDepth);
    }
  } catch (error) {
    if (error instanceof CollabError) throw error;
    // Recursive parsers overflow on nesting the pre-checks missed; that is bad input.
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw invalid(`${format} content is nested too deeply`, error);
    }
    throw invalid(`${format} content could not be parsed: ${messageOf(error)}`, error);
  }
}

function parseJSON(text: string): unknown {
  try {
    // V8's JSON.parse is iterative: deep nesting cannot overflow here.
    return JSON.parse(text);
  } catch (error) {
    throw invalid(`invalid JSON: ${messageOf(error)}`, error);
  }
}

/**
 * Settings for the happy-dom window HTML is parsed and rendered in. happy-dom
 * already runs no scripts and loads no images by default; the rest turns off
 * every other way a parsed document could reach the network (scripts and
 * stylesheets, frames, navigation), and any fetch that slips through anyway is
 * answered locally with 403 instead of being sent.
 */
const sandboxSettings: IOptionalBrowserSettings = {
  enableJavaScriptEvaluation: false,
  enableImageFileLoading: false,
  disableJavaScriptFileLoading: true,
  disableCSSFileLoading: true,
  disableIframePageLoading: true,
  disableComputedStyleRendering: true,
  navigation: {
    disableMainFrameNavigation: true,
    disableChildFrameNavigation: true,
    disableChildPageNavigation: true,
    disableFallbackToSetURL: true,
  },
  fetch: {
    interceptor: {
      beforeAsyncRequest: async ({ window }) =>
        new window.Response("network access is disabled", { status: 403 }),
    },
  },
};

/** Runs `use` with a fresh sandboxed window, closed afterwards. */
function withWindow<T>(use: (window: Window) => T): T {
  const window = new Window({ settings: sandboxSettings });
  try {
    return use(window);
  } finally {
    window.happyDOM.close().catch(() => {});
  }
}

function parseHTML(html: string, maxDepth: number): unknown {
  return withWindow((window) => {
    const dom = new window.DOMParser().parseFromString(
      `<!DOCTYPE html><html><body>${html}</body></html>`,
      "text/html",
    );
    // ProseMirror's DOM parser recurses per element; check the depth first (iteratively).
    if (elementDepth(dom.body) > maxDepth) {
      throw invalid(`html content is nested deeper than ${maxDepth} elements`);
    }
    // happy-dom's nodes implement the DOM interfaces ProseMirror expects.
    return htmlParser.parse(dom.body as unknown as Node).toJSON();
  });
}

/** The depth of the deepest element below `root` (its children are 1). */
function elementDepth(root: { children: ArrayLike<unknown> }): number {
  let deepest = 0;
  const stack: Array<[{ children: ArrayLike<unknown> }, number]> = [[root, 0]];
  for (let entry = stack.pop(); entry; entry = stack.pop()) {
    const [element, depth] = entry;
    if (depth > deepest) deepest = depth;
    const children = element.children;
    for (let i = 0; i < children.length; i++) {
      stack.push([children[i] as { children: ArrayLike<unknown> }, depth + 1]);
    }
  }
  return deepest;
}

function parseMarkdown(text: string, maxDepth: number): unknown {
  // marked recurses per container and its cost grows fast with nesting: refuse deep
  // nesting before it starts. A list level is two nodes (list, item).
  const nesting = markdownNesting(text);
  if (nesting > maxDepth / 2) {
    throw invalid(`markdown content nests ${nesting} lists or quotes; at most ${maxDepth / 2}`);
  }
  return markdown.parse(text);
}

const listMarker = /^(?:[-+*]|\d{1,9}[.)])(?=[ \t]|$)/;
const fence = /^[ \t]*(?:```|~~~)/;

/**
 * An upper bound on how deeply the containers (lists, block quotes) of
 * Markdown `text` nest. A container opens only with a marker at the start of a
 * line (`>`, `-`, `1.`), and a list nested by indentation alone needs about two
 * columns per level, so each line counts its leading markers plus, when it has
 * any, half its leading whitespace. Lines in fenced code are skipped.
 */
function markdownNesting(text: string): number {
  let deepest = 0;
  let inFence = false;
  for (const line of text.split("\n")) {
    if (fence.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) continue;
    let markers = 0;
    let columns = 0;
    let rest = line;
    for (;;) {
      const spaces = /^[ \t]*/.exec(rest)?.[0] ?? "";
      columns += spaces.length;
      rest = rest.slice(spaces.length);
      const marker = rest.startsWith(">") ? ">" : listMarker.exec(rest)?.[0];
      if (marker === undefined) break;
      markers += 1;
      rest = rest.slice(marker.length);
    }
    if (markers > 0) deepest = Math.max(deepest, markers + Math.floor(columns / 2));
  }
  return deepest;
}

// ---------------------------------------------------------------------------
// Validation: raw JSON to a checked ProseMirror document

/**
 * Builds the document `raw` describes, checking everything the schema
 * requires and naming the place of the first problem. Nesting deeper than
 * `maxDepth` is refused before recursing into it. Link marks with an address
 * the editor would refuse are dropped.
 */
function buildDocument(raw: unknown, maxDepth: number): PMNode {
  if (!isRecord(raw) || raw.type !== schema.topNodeType.name) {
    throw invalid(
      `a document must be an object {"type":"doc","content":[...]}, got ${describeValue(raw)}`,
    );
  }
  const doc = buildNode(raw, "", 1, maxDepth);
  if (doc.childCount === 0) return emptyDocument();
  validate(doc, "");
  try {
    doc.check(); // attribute validators and anything else the walk above does not cover
  } catch (error) {
    throw invalid(`invalid document: ${messageOf(error)}`, error);
  }
  return withRectangularTables(doc);
}

/**
 * `doc` with every table made rectangular (rows short of cells filled, a column's widths
 * made the same) as the editor's table plugin would, so what is stored never needs a repair
 * when an editor opens it (a repair is an edit).
 */
function withRectangularTables(doc: PMNode): PMNode {
  return fixTables(EditorState.create({ doc }))?.doc ?? doc;
}

function buildNode(raw: unknown, path: string, depth: number, maxDepth: number): PMNode {
  if (depth > maxDepth) throw invalid(`the document is nested deeper than ${maxDepth} levels`);
  if (!isRecord(raw) || typeof raw.type !== "string") {
    throw invalidAt(path, `a node must be an object with a "type", got ${describeValue(raw)}`);
  }
  const type = schema.nodes[raw.type];
  if (type === undefined) throw invalidAt(path, `unknown node type "${raw.type}"`);
  const marks = buildMarks(raw.marks, path);
  if (type.isText) {
    if (typeof raw.text !== "string" || raw.text === "") {
      throw invalidAt(path, 'a text node needs a non-empty "text" string');
    }
    // A lone surrogate (possible in JSON escapes) would be garbled by Yjs, which
    // replaces it with U+FFFD only when its item is split or encoded: do it now.
    return schema.text(raw.text.toWellFormed(), marks);
  }
  const children: PMNode[] = [];
  if (raw.content !== undefined) {
    if (!Array.isArray(raw.content)) throw invalidAt(join(path, "content"), "must be an array");
    raw.content.forEach((child, i) => {
      children.push(buildNode(child, join(path, `content[${i}]`), depth + 1, maxDepth));
    });
  }
  if (raw.attrs !== undefined && raw.attrs !== null && !isRecord(raw.attrs)) {
    throw invalidAt(join(path, "attrs"), "must be an object");
  }
  try {
    return type.create((raw.attrs ?? null) as Attrs | null, children, marks);
  } catch (error) {
    throw invalidAt(path, messageOf(error), error);
  }
}

function buildMarks(raw: unknown, path: string): Mark[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidAt(join(path, "marks"), "must be an array");
  const marks: Mark[] = [];
  raw.forEach((item, i) => {
    const at = join(path, `marks[${i}]`);
    if (!isRecord(item) || typeof item.type !== "string") {
      throw invalidAt(at, `a mark must be an object with a "type", got ${describeValue(item)}`);
    }
    const type = schema.marks[item.type];
    if (type === undefined) throw invalidAt(at, `unknown mark type "${item.type}"`);
    if (item.attrs !== undefined && item.attrs !== null && !isRecord(item.attrs)) {
      throw invalidAt(join(at, "attrs"), "must be an object");
    }
    let mark: Mark;
    try {
      mark = type.create((item.attrs ?? null) as Attrs | null);
    } catch (error) {
      throw invalidAt(at, messageOf(error), error);
    }
    if (!isUnsafeLink(mark)) marks.push(mark);
  });
  return marks;
}

/** Checks content and marks node by node, so the message can say where. */
/**
 * Most columns or rows one table cell may span. prosemirror-tables maps a table cell by
 * cell (and so does the Word writer): a span of a billion would take the process's memory.
 */
const MAX_CELL_SPAN = 1_000;

/**
 * Refuses an image or file that is not an attachment (an `attachment` id,
 * or a `pending` upload's local id), or whose `src` is not a path or an
 * http(s) address: documents show only their own attachments.
 */
function checkAttachment(node: PMNode, path: string): void {
  if (node.type.name !== "image" && node.type.name !== "file") return;
  const { attachment, pending, src } = node.attrs as Record<string, unknown>;
  const ok =
    (typeof attachment === "string" && /^[0-9a-f]{64}$/.test(attachment)) ||
    (attachment === null && typeof pending === "string" && /^[\w-]{1,64}$/.test(pending));
  if (!ok) {
    throw invalidAt(
      join(path, "attrs.attachment"),
      `an ${node.type.name} needs the id of an attachment of this document (upload the file to .../attachments first), got ${describeValue(attachment)}`,
    );
  }
  if (src !== null && (typeof src !== "string" || !/^(\/|https?:\/\/)/i.test(src))) {
    throw invalidAt(
      join(path, "attrs.src"),
      `must be a path or an http(s) address, got ${describeValue(src)}`,
    );
  }
}

/** Refuses a table cell whose spans or widths no table could have. */
function checkCell(node: PMNode, path: string): void {
  const role = node.type.spec.tableRole;
  if (role !== "cell" && role !== "header_cell") return;
  for (const name of ["colspan", "rowspan"]) {
    const value: unknown = node.attrs[name];
    if (
      typeof value !== "number" ||
      !Number.isInteger(value) ||
      value < 1 ||
      value > MAX_CELL_SPAN
    ) {
      throw invalidAt(
        join(path, `attrs.${name}`),
        `must be a whole number from 1 to ${MAX_CELL_SPAN}, got ${describeValue(value)}`,
      );
    }
  }
  const widths: unknown = node.attrs.colwidth;
  const valid =
    widths === null ||
    (Array.isArray(widths) &&
      widths.length <= MAX_CELL_SPAN &&
      widths.every((w) => typeof w === "number" && Number.isFinite(w) && w >= 0 && w <= 100_000));
  if (!valid) {
    throw invalidAt(
      join(path, "attrs.colwidth"),
      "must be null or a list of column widths in pixels",
    );
  }
}

function validate(node: PMNode, path: string): void {
  checkCell(node, path);
  checkAttachment(node, path);
  const match = node.type.contentMatch.matchFragment(node.content);
  if (match === null || !match.validEnd) {
    const expected = node.type.spec.content ?? "no content";
    throw invalidAt(
      path,
      `"${node.type.name}" cannot contain ${describeContent(node)} (it takes ${expected})`,
    );
  }
  node.forEach((child, _offset, i) => {
    const at = join(path, `content[${i}]`);
    for (const mark of child.marks) {
      if (!node.type.allowsMarkType(mark.type)) {
        throw invalidAt(at, `mark "${mark.type.name}" is not allowed in "${node.type.name}"`);
      }
    }
    let set = Mark.none;
    for (const mark of child.marks) set = mark.addToSet(set);
    if (!Mark.sameSet(set, child.marks)) {
      const names = child.marks.map((mark) => mark.type.name).join(", ");
      throw invalidAt(at, `marks repeat or exclude each other: ${names}`);
    }
    validate(child, at);
  });
}

/**
 * Whether `mark` is a link the editor would refuse. The editor's own rule
 * decides: the Link extension's HTML parse rule (with the protocols the editor
 * configured), which reads nothing but the `href` attribute.
 */
function isUnsafeLink(mark: Mark): boolean {
  if (mark.type !== linkType) return false;
  const href: unknown = mark.attrs.href;
  if (typeof href !== "string" || href === "" || linkRule?.getAttrs === undefined) return true;
  const element = { getAttribute: (name: string) => (name === "href" ? href : null) };
  try {
    return linkRule.getAttrs(element as unknown as HTMLElement) === false;
  } catch {
    return true; // a rule that needs more of the DOM than `href`: refuse rather than guess
  }
}

const linkType: MarkType | undefined = schema.marks.link;
const linkRule: TagParseRule | undefined = linkType?.spec.parseDOM?.find(
  (rule): rule is TagParseRule => "tag" in rule && rule.tag === "a[href]",
);

// ---------------------------------------------------------------------------
// Reading a Yjs fragment

/**
 * The nodes the children of `parent` describe, as y-tiptap builds them when
 * the editor loads a document, except that nothing is written back: an
 * element the schema rejects (unknown name, bad attributes) or a text run with
 * an unknown mark is skipped. Content the schema refuses that can be filled in
 * (a list item that concurrent edits left starting with a heading) is filled
 * in, as in the editor: `schema.node` carries the editor's patch to y-tiptap
 * (`fillRefusedContent`, docs/patches.md).
 */
function readChildren(parent: Y.XmlFragment | Y.XmlElement, depth: number): PMNode[] {
  if (depth > ContentLimits.maxStoredDepth) {
    throw invalid(`the stored document is nested deeper than ${ContentLimits.maxStoredDepth}`);
  }
  const nodes: PMNode[] = [];
  for (const child of parent.toArray()) {
    if (child instanceof Y.XmlElement) {
      const content = readChildren(child, depth + 1);
      try {
        nodes.push(schema.node(child.nodeName, child.getAttributes(), content));
      } catch {
        // Unknown to the schema: the editor would not show it either.
      }
    } else if (child instanceof Y.XmlText) {
      nodes.push(...readText(child));
    }
  }
  return nodes;
}

/** y-tiptap keys self-overlapping marks as `name--hash`; the name is the part before. */
const hashedMarkName = /^(.*)--[a-zA-Z0-9+/=]{8}$/;

/**
 * The text runs of `text`. Their marks are reduced to a set the schema
 * allows, as ProseMirror's `addToSet` builds one (a mark replaces the marks
 * it excludes): concurrent formatting can leave a run with marks that
 * exclude each other (one user makes it code while another makes it bold;
 * Yjs keeps both attributes), which no API format could render or restore.
 */
function readText(text: Y.XmlText): PMNode[] {
  const delta = text.toDelta() as Array<{ insert?: unknown; attributes?: Record<string, Attrs> }>;
  try {
    return delta.flatMap(({ insert, attributes = {} }) => {
      if (typeof insert !== "string" || insert === "") return [];
      const marks = Object.entries(attributes).reduce(
        (set, [key, attrs]) =>
          schema.mark(hashedMarkName.exec(key)?.[1] ?? key, attrs).addToSet(set),
        Mark.none,
      );
      return [schema.text(insert, marks)];
    });
  } catch {
    return []; // an unknown mark: the editor drops the whole text run
  }
}

// ---------------------------------------------------------------------------
// Rendering

const htmlParser = DOMParser.fromSchema(schema);
const htmlSerializer = DOMSerializer.fromSchema(schema);
const textSerializers = getTextSerializersFromSchema(schema);

function renderHTML(node: PMNode): string {
  return serializeHTML(node, htmlSerializer);
}

/**
 * The HTML of `doc`'s content as `serializer` renders it, built as DOM nodes in the sandboxed
 * window and read back as markup, so text and attribute values are always escaped. For
 * documents of other schemas built on this one (the comparison schema).
 */
export function serializeHTML(doc: PMNode, serializer: DOMSerializer): string {
  return withWindow((window) => {
    const document = window.document as unknown as Document;
    const wrap = document.createElement("div");
    serializer.serializeFragment(doc.content, { document }, wrap);
    return wrap.innerHTML;
  });
}

function renderText(doc: PMNode): string {
  const blocks: string[] = [];
  doc.descendants((node) => {
    if (!node.isTextblock) return true;
    blocks.push(getText(node, { textSerializers }));
    return false;
  });
  return blocks.join("\n\n");
}

// ---------------------------------------------------------------------------
// Helpers

function emptyDocument(): PMNode {
  const doc = schema.topNodeType.createAndFill();
  if (doc === null) throw new Error("the schema has no empty document");
  return doc;
}

function nodesOf(node: PMNode): PMNode[] {
  const nodes: PMNode[] = [];
  node.forEach((child) => {
    nodes.push(child);
  });
  return nodes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function join(path: string, step: string): string {
  return path === "" ? step : `${path}.${step}`;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (isRecord(value)) {
    return typeof value.type === "string" ? `type "${value.type}"` : "an object without a type";
  }
  return typeof value;
}

function describeContent(node: PMNode): string {
  if (node.childCount === 0) return "nothing";
  const names = nodesOf(node).map((child) => child.type.name);
  const shown = names.slice(0, 8).join(", ");
  return names.length > 8 ? `${shown}, ... (${names.length} nodes)` : shown;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function invalid(message: string, cause?: unknown): CollabError {
  return new CollabError("CONTENT_INVALID", message, { cause });
}

function invalidAt(path: string, message: string, cause?: unknown): CollabError {
  return invalid(path === "" ? `invalid document: ${message}` : `${path}: ${message}`, cause);
}
