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
 *
 * What Word cannot carry back: a numbered list's first number, a code
 * block's language, column widths, and anything but paragraphs inside a
 * quote (README, "Word files"). Images wait for attachments (issue 13).
 *
 * Reading is for untrusted files: the archive is checked before anything is
 * decompressed (entries, total size: a zip bomb is refused), and it runs in
 * the parser's worker with its deadline (parser.ts).
 */
import type { JSONContent } from "@tiptap/core";
import {
  AlignmentType,
  BorderStyle,
  Document,
  ExternalHyperlink,
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
import { unzipSync } from "fflate";
import mammoth from "mammoth";
import { CollabError } from "../errors.ts";

/** Limits on a Word file read, beyond its size in bytes (ContentLimits.maxBytes.docx). */
export const DocxLimits = {
  /** Files in the archive. @default 2_000 */
  maxEntries: 2_000,
  /** Bytes of all its files once decompressed: a zip bomb is refused before any is. @default 64 MiB */
  maxUncompressedBytes: 64 * 1024 * 1024,
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

/** The document as a Word file. */
export async function renderDocx(json: JSONContent): Promise<Uint8Array> {
  const writer = new DocxWriter();
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

/** The HTML a Word file reads as; CONTENT_INVALID when it is not one, or too big unpacked. */
export async function docxToHtml(bytes: Uint8Array): Promise<string> {
  checkArchive(bytes);
  let result: { value: string };
  try {
    result = await mammoth.convertToHtml({ buffer: Buffer.from(bytes) }, { styleMap: STYLE_MAP });
  } catch (error) {
    throw new CollabError(
      "CONTENT_INVALID",
      `not a Word (.docx) file: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return result.value;
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

/** Refuses an archive with too many files or too many bytes once unpacked, before unpacking it. */
function checkArchive(bytes: Uint8Array): void {
  let entries = 0;
  let total = 0;
  try {
    unzipSync(bytes, {
      filter(file) {
        entries++;
        total += file.originalSize;
        return false; // read the directory only
      },
    });
  } catch {
    throw new CollabError("CONTENT_INVALID", "not a Word (.docx) file: not a zip archive");
  }
  if (entries > DocxLimits.maxEntries) {
    throw new CollabError(
      "CONTENT_TOO_LARGE",
      `the Word file holds ${entries} files, more than ${DocxLimits.maxEntries}`,
    );
  }
  if (total > DocxLimits.maxUncompressedBytes) {
    throw new CollabError(
      "CONTENT_TOO_LARGE",
      `the Word file unpacks to ${total} bytes, more than ${DocxLimits.maxUncompressedBytes}`,
    );
  }
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
