/**
 * The shapes the REST API accepts and answers with, as zod schemas: the
 * handlers validate with them and the OpenAPI description is generated
 * from them, so the two cannot drift apart.
 */
import { z } from "zod";

/** The named schemas: OpenAPI's components, referenced by id. */
export const API_SCHEMAS = z.registry<{ id: string }>();

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe("Stable, machine-readable code such as not_found"),
      message: z.string().describe("What went wrong, for people"),
    }),
  })
  .register(API_SCHEMAS, { id: "Error" });

export const DocumentInfo = z
  .object({
    name: z.string(),
    created: z.iso.datetime(),
    updated: z.iso.datetime(),
    size: z.number().int().describe("Bytes stored: snapshot plus update log"),
  })
  .register(API_SCHEMAS, { id: "DocumentInfo" });

export const DocumentList = z
  .object({
    documents: z.array(DocumentInfo),
    next: z.string().nullable().describe("Pass as `after` for the next page; null on the last"),
  })
  .register(API_SCHEMAS, { id: "DocumentList" });

export const Version = z
  .object({
    id: z.string(),
    name: z
      .string()
      .nullable()
      .describe("The name given when it was saved; null for automatic ones"),
    kind: z.enum(["named", "auto"]),
    created: z.iso.datetime(),
    size: z.number().int(),
    author: z.string().nullable().describe("The token subject that saved it, when known"),
  })
  .register(API_SCHEMAS, { id: "Version" });

export const VersionList = z
  .object({ versions: z.array(Version) })
  .register(API_SCHEMAS, { id: "VersionList" });

export const Restored = z
  .object({
    restored: Version,
    backup: Version.describe("The automatic version holding the state the restore replaced"),
  })
  .register(API_SCHEMAS, { id: "Restored" });

export const Written = z
  .object({ document: DocumentInfo, created: z.boolean() })
  .register(API_SCHEMAS, { id: "Written" });

export const NewVersion = z
  .object({ name: z.string().trim().min(1).max(200) })
  .strict()
  .register(API_SCHEMAS, { id: "NewVersion" });

export const TrashItem = z
  .object({
    name: z.string().describe("The name the document had"),
    id: z.string().describe("This trash entry (a name deleted twice has two)"),
    deleted: z.iso.datetime(),
    deletedBy: z.string().nullable().describe("The token subject that deleted it, when known"),
    purgeAt: z.iso.datetime().describe("When it leaves the trash for good (TRASH_RETENTION_DAYS)"),
    created: z.iso.datetime(),
    updated: z.iso.datetime().describe("Its last change before it was deleted"),
    size: z.number().int().describe("Bytes of its content"),
    versions: z.number().int().describe("Saved versions kept with it"),
  })
  .register(API_SCHEMAS, { id: "TrashItem" });

export const Trashed = z.object({ trash: TrashItem }).register(API_SCHEMAS, { id: "Trashed" });

export const TrashList = z
  .object({
    items: z.array(TrashItem),
    next: z.string().nullable().describe("Pass as `after` for the next page; null on the last"),
  })
  .register(API_SCHEMAS, { id: "TrashList" });

export const TrashRestore = z
  .object({
    id: z
      .string()
      .min(1)
      .optional()
      .describe("The trash entry; the newest of the name if left out"),
    as: z
      .string()
      .min(1)
      .optional()
      .describe("Restore under this name instead (when the name has a new document)"),
  })
  .strict()
  .register(API_SCHEMAS, { id: "TrashRestore" });

export const TrashRestored = z
  .object({ document: DocumentInfo, restored: TrashItem })
  .register(API_SCHEMAS, { id: "TrashRestored" });

export const TrashPurged = z
  .object({ purged: z.array(TrashItem) })
  .register(API_SCHEMAS, { id: "TrashPurged" });

export const TrashQuery = z.object({
  prefix: z.string().optional().describe("Only names starting with this"),
  after: z.string().optional().describe("The previous page's next"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const TrashEntryQuery = z.object({
  id: z.string().min(1).optional().describe("One trash entry; every entry of the name if left out"),
});

/** A Tiptap (ProseMirror) JSON document; the server checks it against the editor's schema. */
export const TiptapDocument = z
  .looseObject({
    type: z.literal("doc"),
    content: z.array(z.looseObject({ type: z.string() })).optional(),
  })
  .register(API_SCHEMAS, { id: "TiptapDocument" });

export const ComparedSide = z
  .object({
    id: z.string().describe("The version's id, or `current` for the document as it is now"),
    name: z
      .string()
      .nullable()
      .describe("The version's name; null for automatic ones and `current`"),
    kind: z.enum(["named", "auto", "current"]),
    created: z.iso
      .datetime()
      .describe("When the version was saved; for `current`, when this answer was made"),
    author: z
      .string()
      .nullable()
      .describe("The token subject that saved the version, when known; null for `current`"),
  })
  .register(API_SCHEMAS, { id: "ComparedSide" });

export const Comparison = z
  .object({
    from: ComparedSide.describe("The earlier side: what was there before"),
    to: ComparedSide.describe("The later side: what is there after"),
    doc: TiptapDocument.describe(
      "Both sides in one document: text only `to` has carries an `insertion` mark, text only `from` has a `deletion` mark, and blocks added or removed whole have `attrs.change` (`inserted`, `deleted`)",
    ),
    changes: z
      .object({
        insertions: z.number().int().min(0).describe("Runs of inserted content"),
        deletions: z.number().int().min(0).describe("Runs of deleted content"),
      })
      .describe("How many changes `doc` shows; content changed next to each other counts once"),
  })
  .register(API_SCHEMAS, { id: "Comparison" });

export const CompareQuery = z.object({
  to: z
    .string()
    .min(1)
    .default("current")
    .describe(
      "What to compare the version with: `current` (the document now) or another version's id",
    ),
  format: z
    .enum(["json", "html"])
    .default("json")
    .describe("`json`: the Comparison; `html`: its document as HTML with `<ins>` and `<del>`"),
});

export const OUTPUT_FORMATS = ["json", "html", "markdown", "text", "yjs", "docx"] as const;
export type OutputFormatParam = (typeof OUTPUT_FORMATS)[number];

export const FormatQuery = z.object({
  format: z.enum(OUTPUT_FORMATS).default("json").describe("The representation to return"),
});

export const ListQuery = z.object({
  prefix: z.string().optional().describe("Only names starting with this"),
  after: z.string().optional().describe("Only names after this one (the previous page's next)"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** The media type of a Word (.docx) file. */
export const DOCX_MEDIA_TYPE =
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** Content types a document body may have, with the format each means. */
export const CONTENT_TYPES = {
  "application/json": "json",
  "text/html": "html",
  "text/markdown": "markdown",
  [DOCX_MEDIA_TYPE]: "docx",
} as const;

/** Body media types that are bytes, not UTF-8 text. */
export const BINARY_CONTENT_TYPES: ReadonlySet<string> = new Set([DOCX_MEDIA_TYPE]);
export type ContentType = keyof typeof CONTENT_TYPES;

/** The media type answering each output format. */
export const FORMAT_MEDIA_TYPES: Record<OutputFormatParam, string> = {
  json: "application/json",
  html: "text/html",
  markdown: "text/markdown",
  text: "text/plain",
  yjs: "application/octet-stream",
  docx: DOCX_MEDIA_TYPE,
};

const PersonBody = z
  .object({ id: z.string().min(1).max(256), name: z.string().min(1).max(256) })
  .register(API_SCHEMAS, { id: "Person" });

const MentionBody = z
  .object({ id: z.string().min(1).max(256), label: z.string().min(1).max(256) })
  .register(API_SCHEMAS, { id: "Mention" });

export const ThreadComment = z
  .object({
    id: z.string(),
    author: PersonBody,
    body: z.string().describe("Plain text; a mention appears in it as @label"),
    mentions: z.array(MentionBody),
    created: z.iso.datetime(),
    edited: z.iso.datetime().nullable(),
  })
  .register(API_SCHEMAS, { id: "ThreadComment" });

export const Thread = z
  .object({
    id: z.string(),
    status: z.enum(["open", "resolved"]),
    anchor: z.object({
      quote: z.string().describe("The text the thread was made on"),
      text: z
        .string()
        .describe("The text it covers now; empty when all of it was deleted (detached)"),
    }),
    author: PersonBody,
    created: z.iso.datetime(),
    statusBy: PersonBody.nullable().describe("Who resolved or reopened it last"),
    statusAt: z.iso.datetime().nullable(),
    comments: z.array(ThreadComment).describe("Oldest first"),
  })
  .register(API_SCHEMAS, { id: "Thread" });

export const ThreadList = z
  .object({ threads: z.array(Thread).describe("Oldest first") })
  .register(API_SCHEMAS, { id: "ThreadList" });

export const ThreadQuery = z.object({
  status: z.enum(["open", "resolved", "all"]).default("open").describe("Which threads"),
});

const MentionInput = z
  .union([z.string().min(1).max(256), MentionBody])
  .describe("A user id, or an id with the label shown for it");

const CommentFields = {
  body: z.string().min(1).max(10_000).describe("Plain text"),
  mentions: z.array(MentionInput).max(50).optional().describe("Who the comment mentions"),
  author: PersonBody.optional().describe(
    "Who writes it, with the API secret (or in anonymous mode); with a token it is the token's user, and any other author is refused",
  ),
};

export const NewThread = z
  .object({
    anchor: z
      .object({
        quote: z.string().min(1).max(2_000).describe("The exact text to comment on"),
        prefix: z.string().max(2_000).optional().describe("Text just before it, to pick one match"),
        suffix: z.string().max(2_000).optional().describe("Text just after it, to pick one match"),
      })
      .strict()
      .describe("W3C Web Annotation TextQuoteSelector"),
    ...CommentFields,
  })
  .strict()
  .register(API_SCHEMAS, { id: "NewThread" });

export const NewComment = z
  .object(CommentFields)
  .strict()
  .register(API_SCHEMAS, { id: "NewComment" });

export const CommentEdit = z
  .object({ body: CommentFields.body, mentions: CommentFields.mentions })
  .strict()
  .register(API_SCHEMAS, { id: "CommentEdit" });

export const ThreadPatch = z
  .object({ status: z.enum(["open", "resolved"]) })
  .strict()
  .register(API_SCHEMAS, { id: "ThreadPatch" });

export const ThreadAnswer = z
  .object({ thread: Thread })
  .register(API_SCHEMAS, { id: "ThreadAnswer" });

export const CommentAnswer = z
  .object({ thread: Thread, comment: ThreadComment })
  .register(API_SCHEMAS, { id: "CommentAnswer" });

export const Attachment = z
  .object({
    id: z.string().describe("The SHA-256 of the bytes, in hex"),
    url: z
      .string()
      .describe("Its path on this server (with a token, or signed: see attachment links)"),
    type: z.string().describe("The media type sniffed from the bytes"),
    size: z.number().int(),
    filename: z.string().describe("The name the upload gave (empty when none)"),
    created: z.iso.datetime(),
  })
  .register(API_SCHEMAS, { id: "Attachment" });

export const AttachmentList = z
  .object({ attachments: z.array(Attachment) })
  .register(API_SCHEMAS, { id: "AttachmentList" });

export const AttachmentLinks = z
  .object({
    expires: z.iso.datetime().describe("When links made with this signature stop working"),
    query: z
      .string()
      .describe(
        "Append to an attachment's url (after `?`) to fetch it without a token, e.g. in <img src>",
      ),
  })
  .register(API_SCHEMAS, { id: "AttachmentLinks" });

export const UploadQuery = z.object({
  filename: z.string().max(1000).optional().describe("The file's name, for downloads (raw bodies)"),
});
