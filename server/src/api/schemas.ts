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

export const OUTPUT_FORMATS = ["json", "html", "markdown", "text", "yjs"] as const;
export type OutputFormatParam = (typeof OUTPUT_FORMATS)[number];

export const FormatQuery = z.object({
  format: z.enum(OUTPUT_FORMATS).default("json").describe("The representation to return"),
});

export const ListQuery = z.object({
  prefix: z.string().optional().describe("Only names starting with this"),
  after: z.string().optional().describe("Only names after this one (the previous page's next)"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Content types a document body may have, with the format each means. */
export const CONTENT_TYPES = {
  "application/json": "json",
  "text/html": "html",
  "text/markdown": "markdown",
} as const;
export type ContentType = keyof typeof CONTENT_TYPES;

/** The media type answering each output format. */
export const FORMAT_MEDIA_TYPES: Record<OutputFormatParam, string> = {
  json: "application/json",
  html: "text/html",
  markdown: "text/markdown",
  text: "text/plain",
  yjs: "application/octet-stream",
};
