/**
 * Word (`.docx`) to and from a document, with well-kept libraries: `docx`
 * writes the file, `mammoth` reads one into HTML, which the HTML reader
 * (convert.ts) turns into the schema's document. Both directions agree on
 * named styles, so what one writes the other reads back:
 *
 * | document          | Word                                          |
 * | ----------------- | --------------------------------------------- |
 * | heading 1-3       | Heading 1-3                                   |
 * | bold, italic, ... | run bold, italic, underline, strike           |
 * | inline code       | character style "Inline Code"                 |
 * | link              | hyperlink                                     |
 * | bullet, numbered  | numbered paragraphs (lists nest)              |
 * | task list         | bulleted paragraphs starting "☐ " or "☑ "     |
 * | code block        | paragraphs of style "Code", one per line      |
 * | quote             | paragraphs of style "Quote"                   |
 * | table             | table, first row repeated as header if a header row; merged cells |
 * | rule              | paragraph of style "Horizontal Rule"          |
 * | line break        | line break                                    |
 * | image             | picture (PNG, JPEG, GIF) with its alt text    |
 * | file card         | its file name                                 |
 *
 * What Word cannot carry back: a numbered list's first number, a code
 * block's language, column widths, and anything but paragraphs inside a
 * quote, an image's width (it comes back at its size in Word), and a file
 * card (README, "Word files"). Reading hands each picture to the caller
 * ({@link DocxReadOptions.images}), which keeps it as an attachment.
 *
 * Reading is for untrusted files, in the parser's worker with its deadline
 * (parser.ts). The archive is unpacked here, never by mammoth's own unzipper:
 * its directory is checked first (files, declared sizes), then each file is
 * inflated with its output counted as it comes, whatever size the directory
 * declares, so a zip bomb is refused before it fills memory. mammoth reads an
 * archive rebuilt from the checked bytes, stored without compression.
 */
import { inflateRawSync } from "node:zlib";
import type { JSONContent } from "@tiptap/core";
import {
  AlignmentType,
  BorderStyle,
  Document,
  ExternalHyperlink,
  ImageRun,
  LevelFormat,
  Packer,
  Paragraph,
  type ParagraphChild,
  Table,
  TableCell,
  TableRow,
  TextRun,
  WidthType,
} from "docx";
import { zipSync } from "fflate";
import { imageSize } from "image-size";
import mammoth from "mammoth";
import { CollabError } from "../errors.ts";

/** Limits on a Word file read, beyond its size in bytes (ContentLimits.maxBytes.docx). */
export const DocxLimits = {
  /** Files in the archive. @default 2_000 */
  maxEntries: 2_000,
  /**
   * Bytes of all its files once decompressed, counted as they are inflated (a zip
   * bomb's directory understates them). @default 64 MiB
   */
  maxUncompressedBytes: 64 * 1024 * 1024,
  /**
   * Bytes of any one file once decompressed: more than any part Word writes or any
   * picture in an 8 MiB file plausibly is (a 4K screenshot as a bitmap). @default 32 MiB
   */
  maxEntryBytes: 32 * 1024 * 1024,
} as const;

const CODE_STYLE = "Code";
const QUOTE_STYLE = "Quote";
const RULE_STYLE = "HorizontalRule";
const INLINE_CODE_STYLE = "InlineCode";
const TASK_OPEN = "☐ ";
const TASK_DONE = "☑ ";
const MONO = "Courier New";

/** How mammoth maps the styles {@link renderDocx} writes (and Word's own) to HTML. */
const STYLE_MAP = [
  "p[style-name='Code'] => pre:separator('\\n')",
  "p[style-name='Quote'] => blockquote > p:fresh",
  "p[style-name='Intense Quote'] => blockquote > p:fresh",
  "p[style-name='Horizontal Rule'] => hr",
  "r[style-name='Inline Code'] => code",
  "u => u",
  "strike => s",
];

/** A picture a Word file shows: bytes of a type Word reads, and its size in pixels. */
export interface DocxPicture {
  readonly data: Uint8Array;
  readonly type: "png" | "jpg" | "gif";
  readonly width: number;
  readonly height: number;
}

const WORD_TYPES: Readonly<Record<string, DocxPicture["type"]>> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/gif": "gif",
};

/** `bytes` of media type `type` as a picture Word can show, or null (WebP, AVIF, unreadable). */
export function pictureOf(bytes: Uint8Array, type: string): DocxPicture | null {
  const word = WORD_TYPES[type];
  if (word === undefined) return null;
  try {
    const { width, height } = imageSize(bytes);
    return width > 0 && height > 0 ? { data: bytes, type: word, width, height } : null;
  } catch {
    return null;
  }
}

/** Widest a picture is written, in pixels: a page's text width at 96 dpi. */
const PAGE_WIDTH = 600;

/**
 * The document as a Word file, with the pictures of its images (by attachment id; an image
 * without one is written as its alt text).
 */
export async function renderDocx(
  json: JSONContent,
  pictures: ReadonlyMap<string, DocxPicture> = new Map(),
): Promise<Uint8Array> {
  const writer = new DocxWriter(pictures);
  const children = writer.blocks(json.content ?? [], { list: null, quote: false });
  const document = new Document({
    creator: "collab-docs",
    styles: {
      paragraphStyles: [
        {
          id: CODE_STYLE,
          name: "Code",
          basedOn: "Normal",
          run: { font: MONO, size: 20 },
          paragraph: { spacing: { before: 0, after: 0 } },
        },
        {
          id: QUOTE_STYLE,
          name: "Quote",
          basedOn: "Normal",
          run: { italics: true, color: "555555" },
          paragraph: { indent: { left: 567 } },
        },
        {
          id: RULE_STYLE,
          name: "Horizontal Rule",
          basedOn: "Normal",
          paragraph: {
            border: { bottom: { style: BorderStyle.SINGLE, size: 6, color: "AAAAAA", space: 1 } },
          },
        },
      ],
      characterStyles: [
        {
          id: INLINE_CODE_STYLE,
          name: "Inline Code",
          basedOn: "DefaultParagraphFont",
          run: { font: MONO },
        },
      ],
    },
    numbering: { config: writer.numbering() },
    sections: [{ children: children.length > 0 ? children : [new Paragraph({})] }],
  });
  return new Uint8Array(await Packer.toBuffer(document));
}

/** A picture in a Word file, as the reader meets it. */
export interface DocxImage {
  /** Its media type, as the file declares it (`image/png`, ...). */
  readonly contentType: string;
  /** Its bytes: unpacked, and counted against {@link DocxLimits}, with the rest of the file. */
  read(): Promise<Uint8Array>;
}

/**
 * What each picture in a Word file becomes, asked once per picture in document order:
 * the `src` of its `<img>` in the HTML (which carries the picture's alternative text as
 * `alt`), or null to leave the picture out.
 */
export type DocxImages = (image: DocxImage) => Promise<string | null>;

/**
 * Leaves every picture out without reading it: the document has no images yet. Inlined
 * as data URIs (mammoth's default), a few MiB of pictures made the HTML many MiB and its
 * parse run past the deadline, only for the pictures to be dropped.
 */
export const leaveImagesOut: DocxImages = async () => null;

export interface DocxReadOptions {
  /**
   * What pictures become. Attachments (issue 13) will pass one that stores the bytes and
   * answers the attachment's address. @default {@link leaveImagesOut}
   */
  readonly images?: DocxImages;
}

/**
 * The HTML a Word file reads as: CONTENT_INVALID when it is not one, CONTENT_TOO_LARGE when
 * it unpacks past {@link DocxLimits} (refused as soon as its inflated bytes pass them).
 */
export async function docxToHtml(
  bytes: Uint8Array,
  { images = leaveImagesOut }: DocxReadOptions = {},
): Promise<string> {
  const archive = repack(bytes);
  let result: { value: string };
  try {
    result = await mammoth.convertToHtml(
      { buffer: Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength) },
      {
        styleMap: STYLE_MAP,
        // A picture left out is an <img> with no source, which the HTML reader drops.
        convertImage: mammoth.images.imgElement(async (image) => ({
          src:
            (await images({
              contentType: image.contentType,
              read: async () => new Uint8Array(await image.readAsArrayBuffer()),
            })) ?? "",
        })),
      },
    );
  } catch (error) {
    throw new CollabError(
      "CONTENT_INVALID",
      `not a Word (.docx) file: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  // A picture alone in its paragraph is a block image of its own, not one beside an empty
  // paragraph (which is what the HTML reader would make of an image lifted out of it).
  return result.value.replace(/<p>((?:<img [^>]*>)+)<\/p>/g, "$1");
}

/**
 * Task lists come back from Word as bullet items that start with a box, joined to any
 * bullet list beside them: make each run of boxed items a task list again.
 */
export function restoreTaskLists(node: JSONContent): JSONContent {
  return node.content === undefined ? node : { ...node, content: node.content.flatMap(splitTasks) };
}

function splitTasks(node: JSONContent): JSONContent[] {
  const inner = restoreTaskLists(node);
  if (inner.type !== "bulletList" || inner.content === undefined) return [inner];
  const lists: Array<{ type: "bulletList" | "taskList"; content: JSONContent[] }> = [];
  for (const item of inner.content) {
    const task = taskOf(item);
    const type = task === null ? "bulletList" : "taskList";
    const last = lists.at(-1);
    if (last?.type === type) last.content.push(task ?? item);
    else lists.push({ type, content: [task ?? item] });
  }
  return lists;
}

function taskOf(item: JSONContent): JSONContent | null {
  const [first, ...rest] = item.content ?? [];
  const text = first?.type === "paragraph" ? first.content?.[0] : undefined;
  if (text?.type !== "text" || typeof text.text !== "string") return null;
  const box = [TASK_OPEN, TASK_DONE].find((b) => text.text?.startsWith(b));
  if (box === undefined || first === undefined) return null;
  const remaining = text.text.slice(box.length);
  const inline = [
    ...(remaining === "" ? [] : [{ ...text, text: remaining }]),
    ...(first.content ?? []).slice(1),
  ];
  const paragraph: JSONContent = { ...first, content: inline.length > 0 ? inline : undefined };
  if (paragraph.content === undefined) delete paragraph.content;
  return { type: "taskItem", attrs: { checked: box === TASK_DONE }, content: [paragraph, ...rest] };
}

/**
 * The Word file's archive rebuilt from its checked contents, every file stored (not
 * compressed), so that mammoth's unzipper only copies bytes already counted.
 */
function repack(bytes: Uint8Array): Uint8Array {
  const files = unpack(bytes);
  try {
    return zipSync(files, { level: 0 });
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : String(error));
  }
}

/** A file in a zip archive's central directory: where its data is and how it is stored. */
interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly flags: number;
  readonly compressedSize: number;
  /** As the archive declares it: for a first check only, never trusted. */
  readonly declaredSize: number;
  readonly localHeader: number;
}

/**
 * The archive's files, inflated and counted here: more than {@link DocxLimits} allow is
 * CONTENT_TOO_LARGE, refused from the directory's declared sizes when they say so, and
 * otherwise as soon as the inflated bytes pass a limit, whatever the directory declares.
 * CONTENT_INVALID when the bytes are not a zip archive this reads.
 */
function unpack(bytes: Uint8Array): Record<string, Uint8Array> {
  const entries = centralDirectory(bytes);
  const declared = entries.reduce((sum, entry) => sum + entry.declaredSize, 0);
  if (declared > DocxLimits.maxUncompressedBytes) {
    throw new CollabError(
      "CONTENT_TOO_LARGE",
      `the Word file unpacks to ${declared} bytes, more than ${DocxLimits.maxUncompressedBytes}`,
    );
  }
  // No prototype: a file may be named "__proto__".
  const files: Record<string, Uint8Array> = Object.create(null);
  let total = 0;
  for (const entry of entries) {
    const left = DocxLimits.maxUncompressedBytes - total;
    const limit = Math.min(DocxLimits.maxEntryBytes, left);
    const data = inflate(bytes, entry, limit);
    if (data === null) {
      throw new CollabError(
        "CONTENT_TOO_LARGE",
        left < DocxLimits.maxEntryBytes
          ? `the Word file unpacks to more than ${DocxLimits.maxUncompressedBytes} bytes`
          : `${entry.name} in the Word file unpacks to more than ${DocxLimits.maxEntryBytes} bytes`,
      );
    }
    total += data.byteLength;
    files[entry.name] = data;
  }
  return files;
}

/** The entry's data, or null when it is more than `limit` bytes inflated (inflating stops there). */
function inflate(bytes: Uint8Array, entry: ZipEntry, limit: number): Uint8Array | null {
  const view = viewOf(bytes);
  const at = entry.localHeader;
  if (at + 30 > bytes.byteLength || view.getUint32(at, true) !== LOCAL_HEADER) {
    throw invalid(`no local header for ${entry.name}`);
  }
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.byteLength) throw invalid(`${entry.name} is cut short`);
  if (entry.flags & 1) throw invalid(`${entry.name} is encrypted`);
  const data = bytes.subarray(start, end);
  if (entry.method === 0) return data.byteLength > limit ? null : data;
  if (entry.method !== 8) throw invalid(`${entry.name} is compressed with method ${entry.method}`);
  try {
    // zlib stops once its output would pass maxOutputLength (at least 1).
    const out = inflateRawSync(data, { maxOutputLength: Math.max(1, limit) });
    return out.byteLength > limit ? null : new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch (error) {
    if (error instanceof RangeError && (error as NodeJS.ErrnoException).code === TOO_LARGE) {
      return null;
    }
    throw invalid(`${entry.name} does not inflate`);
  }
}

/** What zlib throws when its output would pass maxOutputLength. */
const TOO_LARGE = "ERR_BUFFER_TOO_LARGE";
const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;

/**
 * The entries of the archive's central directory (as JSZip, fflate and Word read it);
 * CONTENT_TOO_LARGE when it lists more than {@link DocxLimits.maxEntries}. ZIP64 archives
 * are refused: a Word file within its byte limit never needs one.
 */
function centralDirectory(bytes: Uint8Array): ZipEntry[] {
  const view = viewOf(bytes);
  let end = bytes.byteLength - 22;
  const stop = Math.max(0, end - 0xffff);
  while (end >= stop && view.getUint32(end, true) !== END_OF_DIRECTORY) end--;
  if (end < stop) throw invalid("not a zip archive");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  if (
    count === 0xffff ||
    at === 0xffffffff ||
    (end >= 20 && view.getUint32(end - 20, true) === ZIP64_LOCATOR)
  ) {
    throw invalid("a ZIP64 archive");
  }
  if (count > DocxLimits.maxEntries) {
    throw new CollabError(
      "CONTENT_TOO_LARGE",
      `the Word file holds ${count} files, more than ${DocxLimits.maxEntries}`,
    );
  }
  const entries: ZipEntry[] = [];
  const names = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.byteLength || view.getUint32(at, true) !== CENTRAL_HEADER) {
      throw invalid("its directory is damaged");
    }
    const nameLength = view.getUint16(at + 28, true);
    const entry: ZipEntry = {
      name: names.decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      flags: view.getUint16(at + 8, true),
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      declaredSize: view.getUint32(at + 24, true),
      localHeader: view.getUint32(at + 42, true),
    };
    if (
      entry.compressedSize === 0xffffffff ||
      entry.declaredSize === 0xffffffff ||
      entry.localHeader === 0xffffffff
    ) {
      throw invalid("a ZIP64 archive");
    }
    entries.push(entry);
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return entries;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function invalid(why: string): CollabError {
  return new CollabError("CONTENT_INVALID", `not a Word (.docx) file: ${why}`);
}

interface Context {
  /** The list the blocks are items of: its numbering reference and depth. */
  readonly list: {
    readonly reference: string;
    readonly level: number;
    readonly instance: number;
  } | null;
  readonly quote: boolean;
}

type Block = Paragraph | Table;

/** Builds Word blocks from the document's, collecting the numbering its lists need. */
class DocxWriter {
  private readonly ordered = new Map<number, string>();
  private instances = 0;
  private readonly pictures: ReadonlyMap<string, DocxPicture>;

  constructor(pictures: ReadonlyMap<string, DocxPicture>) {
    this.pictures = pictures;
  }

  numbering() {
    const levels = (format: (typeof LevelFormat)[keyof typeof LevelFormat], start: number) =>
      Array.from({ length: 9 }, (_, level) => ({
        level,
        format,
        start,
        text: format === LevelFormat.BULLET ? ["•", "◦", "▪"][level % 3] : `%${level + 1}.`,
        alignment: AlignmentType.LEFT,
        style: { paragraph: { indent: { left: 720 * (level + 1), hanging: 360 } } },
      }));
    return [
      { reference: "bullet", levels: levels(LevelFormat.BULLET, 1) },
      { reference: "task", levels: levels(LevelFormat.BULLET, 1) },
      ...[...this.ordered].map(([start, reference]) => ({
        reference,
        levels: levels(LevelFormat.DECIMAL, start),
      })),
    ];
  }

  blocks(nodes: readonly JSONContent[], context: Context): Block[] {
    return nodes.flatMap((node) => this.block(node, context));
  }

  private block(node: JSONContent, context: Context): Block[] {
    const inline = (extra: ParagraphChild[] = []) => [...extra, ...this.inline(node.content ?? [])];
    const numbering =
      context.list === null
        ? undefined
        : {
            reference: context.list.reference,
            level: context.list.level,
            instance: context.list.instance,
          };
    switch (node.type) {
      case "paragraph":
        return [
          new Paragraph({
            children: inline(),
            numbering,
            style: context.quote ? QUOTE_STYLE : undefined,
          }),
        ];
      case "heading": {
        const level = Number(node.attrs?.level ?? 1);
        const heading = level === 1 ? "Heading1" : level === 2 ? "Heading2" : "Heading3";
        return [new Paragraph({ children: inline(), style: heading })];
      }
      case "bulletList":
      case "orderedList":
      case "taskList": {
        // Task lists number as bullets of their own, so Word never joins one to a list beside it.
        const reference =
          node.type === "orderedList"
            ? this.orderedReference(node)
            : node.type === "taskList"
              ? "task"
              : "bullet";
        const level = context.list === null ? 0 : Math.min(context.list.level + 1, 8);
        const instance = context.list === null ? ++this.instances : context.list.instance;
        return (node.content ?? []).flatMap((item) =>
          this.item(item, { ...context, list: { reference, level, instance } }),
        );
      }
      case "blockquote":
        return this.blocks(node.content ?? [], { ...context, quote: true });
      case "codeBlock": {
        const text = (node.content ?? []).map((t) => t.text ?? "").join("");
        return text
          .split("\n")
          .map((line) => new Paragraph({ style: CODE_STYLE, children: [new TextRun(line)] }));
      }
      case "horizontalRule":
        return [new Paragraph({ style: RULE_STYLE })];
      case "table":
        return [this.table(node)];
      case "image":
        return [this.image(node, context)];
      case "file":
        return [
          new Paragraph({
            numbering,
            children: [
              new TextRun({ text: String(node.attrs?.filename || "file"), italics: true }),
            ],
          }),
        ];
      default:
        // Unknown blocks: their text, so nothing written is lost.
        return node.content === undefined ? [] : this.blocks(node.content, context);
    }
  }

  private item(item: JSONContent, context: Context): Block[] {
    const [first, ...rest] = item.content ?? [];
    const box =
      item.type === "taskItem"
        ? [new TextRun(item.attrs?.checked === true ? TASK_DONE : TASK_OPEN)]
        : [];
    const lead =
      first?.type === "paragraph"
        ? [
            new Paragraph({
              numbering: numberingOf(context),
              children: [...box, ...this.inline(first.content ?? [])],
            }),
          ]
        : this.blocks(first === undefined ? [] : [first], context);
    // Nested lists go one level deeper; other blocks of the item follow without a number.
    const after = rest.flatMap((node) =>
      node.type === "bulletList" || node.type === "orderedList" || node.type === "taskList"
        ? this.block(node, context)
        : this.blocks([node], { ...context, list: null }),
    );
    return [...lead, ...after];
  }

  /** A picture at its width in the document (or its own, at most a page's), else its alt text. */
  private image(node: JSONContent, context: Context): Paragraph {
    const id = node.attrs?.attachment;
    const alt = typeof node.attrs?.alt === "string" ? node.attrs.alt : "";
    const picture = typeof id === "string" ? this.pictures.get(id) : undefined;
    if (picture === undefined) {
      return new Paragraph({
        numbering: numberingOf(context),
        children: [
          new TextRun({ text: alt === "" ? "[image]" : `[image: ${alt}]`, italics: true }),
        ],
      });
    }
    const wanted = typeof node.attrs?.width === "number" ? node.attrs.width : picture.width;
    const width = Math.max(1, Math.min(wanted, PAGE_WIDTH));
    const height = Math.max(1, Math.round((picture.height * width) / picture.width));
    return new Paragraph({
      numbering: numberingOf(context),
      children: [
        new ImageRun({
          type: picture.type,
          data: picture.data,
          transformation: { width, height },
          altText: { name: alt || "image", description: alt, title: alt },
        }),
      ],
    });
  }

  private table(node: JSONContent): Table {
    const rows = (node.content ?? []).map((row, index) => {
      const cells = row.content ?? [];
      const header =
        index === 0 && cells.length > 0 && cells.every((c) => c.type === "tableHeader");
      return new TableRow({
        tableHeader: header || undefined,
        children: cells.map((cell) => {
          const blocks = this.blocks(cell.content ?? [], { list: null, quote: false });
          return new TableCell({
            columnSpan: Number(cell.attrs?.colspan ?? 1),
            rowSpan: Number(cell.attrs?.rowspan ?? 1),
            children: blocks.length > 0 ? blocks : [new Paragraph({})],
          });
        }),
      });
    });
    return new Table({ rows, width: { size: 100, type: WidthType.PERCENTAGE } });
  }

  private inline(nodes: readonly JSONContent[]): ParagraphChild[] {
    const out: ParagraphChild[] = [];
    for (const node of nodes) {
      if (node.type === "hardBreak") {
        out.push(new TextRun({ break: 1 }));
        continue;
      }
      if (node.type !== "text" || typeof node.text !== "string") continue;
      const marks = new Map((node.marks ?? []).map((mark) => [mark.type, mark.attrs ?? {}]));
      const run = new TextRun({
        text: node.text,
        bold: marks.has("bold") || undefined,
        italics: marks.has("italic") || undefined,
        underline: marks.has("underline") ? {} : undefined,
        strike: marks.has("strike") || undefined,
        style: marks.has("code") ? INLINE_CODE_STYLE : undefined,
      });
      const href = marks.get("link")?.href;
      out.push(
        typeof href === "string" ? new ExternalHyperlink({ link: href, children: [run] }) : run,
      );
    }
    return out;
  }

  private orderedReference(node: JSONContent): string {
    const start = Math.max(1, Math.floor(Number(node.attrs?.start ?? 1)) || 1);
    let reference = this.ordered.get(start);
    if (reference === undefined) {
      reference = `ordered-${start}`;
      this.ordered.set(start, reference);
    }
    return reference;
  }
}

function numberingOf(context: Context) {
  return context.list === null
    ? undefined
    : {
        reference: context.list.reference,
        level: context.list.level,
        instance: context.list.instance,
      };
}
