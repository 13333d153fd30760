/**
 * The REST routes under /api/v1, as one table: each route's method, path,
 * access, inputs and answers (zod schemas) and handler. The router
 * (api/router.ts) and the OpenAPI description (api/openapi.ts) are both
 * built from this table.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { JSONContent } from "@tiptap/core";
import * as Y from "yjs";
import type { z } from "zod";
import type { AttachmentService } from "../attachments/service.ts";
import type { LinkSigner } from "../attachments/signing.ts";
import type { Comments } from "../comments/comments.ts";
import type { DocxPicture } from "../documents/docx.ts";
import type { BodyFormat, Parsed } from "../documents/parser.ts";
import type { DocumentService } from "../documents/service.ts";
import { isTrashId, isVersionId } from "../persistence/log-store.ts";
import type { DocumentMeta, DocumentStore, TrashEntry, VersionMeta } from "../persistence/store.ts";
import { checkDocumentName } from "../protocol/names.ts";
import { lazily } from "../util/lazy.ts";
import { ATTACHMENT_ROUTES, attachmentPath } from "./attachment-routes.ts";
import { actorOf, type Caller, canList, type Need } from "./caller.ts";
import { ApiError } from "./errors.ts";
import { jsonOf, parse } from "./input.ts";
import {
  CONTENT_TYPES,
  type ComparedSide,
  CompareQuery,
  Comparison,
  type DocumentInfo,
  DocumentList,
  FORMAT_MEDIA_TYPES,
  FormatQuery,
  ListQuery,
  NewVersion,
  type OutputFormatParam,
  Restored,
  TiptapDocument,
  TrashEntryQuery,
  Trashed,
  type TrashItem,
  TrashList,
  TrashPurged,
  TrashQuery,
  TrashRestore,
  TrashRestored,
  Version,
  VersionList,
  Written,
} from "./schemas.ts";
import { THREAD_ROUTES } from "./thread-routes.ts";

/** What a handler gets. */
export interface RouteContext {
  readonly caller: Caller;
  /** Path parameters, decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The request's headers (lower-case names). */
  readonly headers: IncomingHttpHeaders;
  /**
   * The request body and its media type (without parameters), when the route takes one:
   * its bytes, and as text unless the type is binary (a Word file: `text` is empty).
   */
  readonly body: {
    readonly text: string;
    readonly bytes: Uint8Array;
    readonly type: string;
  } | null;
  readonly service: DocumentService;
  readonly comments: Comments;
  readonly store: DocumentStore;
  readonly attachments: AttachmentService;
  readonly links: LinkSigner;
  /** Parses a body into a Tiptap document (HTML, Markdown and Word off the event loop). */
  readonly parse: (body: string | Uint8Array, format: BodyFormat) => Promise<Parsed>;
}

/** A handler's answer: JSON, or a body with a media type. */
export type Reply =
  | { readonly status: number; readonly json: unknown }
  | {
      readonly status: number;
      readonly body: string | Uint8Array;
      readonly type: string;
      /** Sent as a download under this name (`Content-Disposition: attachment`). */
      readonly filename?: string;
    }
  | { readonly status: 204 }
  /** Bytes with headers the route sets itself (attachments: type, disposition, caching, ranges). */
  | {
      readonly status: number;
      /** The body: bytes, a stream (piped, and destroyed for HEAD), or none. */
      readonly raw: Uint8Array | Readable | undefined;
      readonly headers: Readonly<Record<string, string>>;
    };

export interface Response {
  readonly description: string;
  /** JSON body schema. */
  readonly schema?: z.ZodType;
  /** Other media types the answer may have (schema-less, e.g. text/html). */
  readonly media?: readonly string[];
}

export interface Route {
  readonly method: "GET" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** OpenAPI path template under /api/v1, e.g. /documents/{name}. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  /** What the caller needs; document permissions apply to the `name` parameter. */
  readonly need: Need | "list";
  readonly query?: z.ZodObject;
  /**
   * Media types the body may have (the wildcard type accepts any); a JSON schema for
   * application/json. `limit: "attachment"`: up to MAX_ATTACHMENT_BYTES and
   * read as bytes, instead of up to MAX_BODY_BYTES.
   */
  readonly body?: {
    readonly types: readonly string[];
    readonly schema?: z.ZodType;
    readonly required: boolean;
    readonly limit?: "attachment";
  };
  /** A signed link (`?expires=&signature=`) may stand in for credentials: reading attachments. */
  readonly signed?: boolean;
  /** Success answers; the error answers are added by the router and OpenAPI. */
  readonly responses: Readonly<Record<number, Response>>;
  readonly handle: (context: RouteContext) => Promise<Reply>;
}

const DOCUMENT_BODY = {
  types: Object.keys(CONTENT_TYPES),
  schema: TiptapDocument,
  required: true,
} as const;

const CONTENT_MEDIA = Object.values(FORMAT_MEDIA_TYPES);

/**
 * The conversion module, loaded on first use: with Tiptap, ProseMirror and
 * happy-dom it adds about 50 MiB and 250 ms to a server that may never
 * serve the API.
 */
type Conversion = typeof import("../documents/convert.ts");

const convert: () => Promise<Conversion> = lazily(() => import("../documents/convert.ts"));

/** The comparison module, loaded on first use, as {@link convert}. */
const compare = lazily(() => import("../documents/compare.ts"));

/** Store pages one list request reads at most, filtering for a user token. */
const MAX_LIST_PAGES = 10;

const DOCUMENT_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/documents",
    operationId: "listDocuments",
    summary: "List stored documents in name order, paginated",
    need: "list",
    query: ListQuery,
    responses: { 200: { description: "A page of documents", schema: DocumentList } },
    async handle({ caller, query, store }) {
      const { prefix, after, limit } = parse(ListQuery, query);
      const documents: z.infer<typeof DocumentInfo>[] = [];
      let cursor = after;
      let exhausted = false;
      // A user token sees only its documents: read on until the page is full, but at most
      // MAX_LIST_PAGES store pages per request; a short page then still has a `next`.
      for (
        let pages = 0;
        pages < MAX_LIST_PAGES && documents.length < limit && !exhausted;
        pages++
      ) {
        const page = await store.list({ prefix, after: cursor, limit });
        exhausted = page.length < limit;
        for (const { name, meta } of page) {
          if (documents.length === limit) break;
          cursor = name;
          if (canList(caller, name)) documents.push(info(name, meta));
        }
        if (caller.kind !== "user") break;
      }
      const next = exhausted && documents.length < limit ? null : (cursor ?? null);
      return { status: 200, json: { documents, next } };
    },
  },
  {
    method: "GET",
    path: "/documents/{name}",
    operationId: "getDocument",
    summary:
      "A document as Tiptap JSON, HTML, Markdown, plain text, a Word file or its binary Yjs state",
    need: "read",
    query: FormatQuery,
    responses: {
      200: {
        description: "The document in the requested format",
        schema: TiptapDocument,
        media: CONTENT_MEDIA,
      },
    },
    async handle({ params, query, service, attachments }) {
      const { format } = parse(FormatQuery, query);
      const converter = await convert();
      const doc = await service.current(params.name ?? "");
      if (doc === null) throw notFound(params.name);
      // Synchronously, right after `current`: it may be the live document.
      return represent(converter, doc, format, params.name ?? "", attachments);
    },
  },
  {
    method: "PUT",
    path: "/documents/{name}",
    operationId: "putDocument",
    summary:
      "Create a document or replace its content (Tiptap JSON, HTML or Markdown by Content-Type); with `If-None-Match: *` only create it",
    need: "write",
    body: DOCUMENT_BODY,
    responses: {
      200: { description: "Replaced", schema: Written },
      201: { description: "Created", schema: Written },
    },
    async handle(context) {
      const { params, caller, service, store, headers } = context;
      const name = params.name ?? "";
      const content = await contentOf(context);
      const converter = await convert();
      const createOnly = headers["if-none-match"]?.trim() === "*";
      const { existed } = await service.edit(
        name,
        actorOf(caller),
        (doc) => converter.replaceContent(doc, content),
        { createOnly },
      );
      return {
        status: existed ? 200 : 201,
        json: { document: await infoOf(store, name), created: !existed },
      };
    },
  },
  {
    method: "DELETE",
    path: "/documents/{name}",
    operationId: "deleteDocument",
    summary:
      "Move a document and its versions to the trash; connected clients are disconnected with a reason, and clients holding a copy are refused from then on",
    need: "admin",
    responses: { 200: { description: "Moved to the trash", schema: Trashed } },
    async handle({ params, caller, service }) {
      const entry = await service.remove(params.name ?? "", actorOf(caller));
      if (entry === null) throw notFound(params.name);
      return { status: 200, json: { trash: trashItem(service, entry) } };
    },
  },
  {
    method: "GET",
    path: "/trash",
    operationId: "listTrash",
    summary: "Deleted documents in the trash, in name order, paginated",
    need: "admin",
    query: TrashQuery,
    responses: { 200: { description: "A page of the trash", schema: TrashList } },
    async handle({ query, service }) {
      const { prefix, after, limit } = parse(TrashQuery, query);
      const items = await service.listTrash({ prefix, after: trashCursor(after), limit });
      const last = items.at(-1);
      return {
        status: 200,
        json: {
          items: items.map((entry) => trashItem(service, entry)),
          next: items.length === limit && last !== undefined ? `${last.id}:${last.name}` : null,
        },
      };
    },
  },
  {
    method: "POST",
    path: "/trash/{name}/restore",
    operationId: "restoreFromTrash",
    summary:
      "Bring a deleted document back with its versions: the newest trash entry of the name, under its own name or another",
    need: "admin",
    body: { types: ["application/json"], schema: TrashRestore, required: false },
    responses: { 200: { description: "Restored", schema: TrashRestored } },
    async handle({ params, body, service, store }) {
      const request =
        body === null || body.text.trim() === "" ? {} : parse(TrashRestore, jsonOf(body));
      const { entry, to } = await service.restoreFromTrash(params.name ?? "", request);
      return {
        status: 200,
        json: { document: await infoOf(store, to), restored: trashItem(service, entry) },
      };
    },
  },
  {
    method: "DELETE",
    path: "/trash/{name}",
    operationId: "purgeFromTrash",
    summary: "Remove a deleted document from the trash for good (every entry of the name, or one)",
    need: "admin",
    query: TrashEntryQuery,
    responses: { 200: { description: "Purged", schema: TrashPurged } },
    async handle({ params, query, service }) {
      const { id } = parse(TrashEntryQuery, query);
      const purged = await service.purgeTrash(params.name ?? "", id);
      if (purged.length === 0) {
        throw new ApiError(
          404,
          "not_found",
          `the trash holds no ${id === undefined ? "" : `entry ${JSON.stringify(id)} of `}document named ${JSON.stringify(params.name)}`,
        );
      }
      return { status: 200, json: { purged: purged.map((entry) => trashItem(service, entry)) } };
    },
  },
  {
    method: "POST",
    path: "/documents/{name}/content",
    operationId: "appendContent",
    summary:
      "Append content (Tiptap JSON, HTML or Markdown by Content-Type) to an existing document",
    need: "write",
    body: DOCUMENT_BODY,
    responses: { 200: { description: "Appended", schema: Written } },
    async handle(context) {
      const { params, caller, service, store } = context;
      const name = params.name ?? "";
      const content = await contentOf(context);
      if (!(await service.exists(name))) throw notFound(name);
      const converter = await convert();
      await service.edit(name, actorOf(caller), (doc) => converter.appendContent(doc, content));
      return { status: 200, json: { document: await infoOf(store, name), created: false } };
    },
  },
  {
    method: "GET",
    path: "/documents/{name}/versions",
    operationId: "listVersions",
    summary: "The document's versions, newest first",
    need: "read",
    responses: { 200: { description: "Versions", schema: VersionList } },
    async handle({ params, service }) {
      const name = params.name ?? "";
      const versions = await service.listVersions(name);
      if (versions.length === 0 && !(await service.exists(name))) throw notFound(name);
      return { status: 200, json: { versions: versions.map(version) } };
    },
  },
  {
    method: "POST",
    path: "/documents/{name}/versions",
    operationId: "createVersion",
    summary: "Save the document's current state as a named version",
    need: "write",
    body: { types: ["application/json"], schema: NewVersion, required: true },
    responses: { 201: { description: "Saved", schema: Version } },
    async handle({ params, body, caller, service }) {
      const { name: label } = parse(NewVersion, jsonOf(body));
      const saved = await service.createVersion(params.name ?? "", {
        label,
        kind: "named",
        actor: actorOf(caller),
      });
      if (saved === null) throw notFound(params.name);
      return { status: 201, json: version(saved) };
    },
  },
  {
    method: "GET",
    path: "/documents/{name}/versions/{id}",
    operationId: "getVersion",
    summary: "A version's content, in the same formats as the document",
    need: "read",
    query: FormatQuery,
    responses: {
      200: {
        description: "The version in the requested format",
        schema: TiptapDocument,
        media: CONTENT_MEDIA,
      },
    },
    async handle({ params, query, service, attachments }) {
      const { format } = parse(FormatQuery, query);
      const found = await service.readVersion(params.name ?? "", params.id ?? "");
      if (found === null) throw versionNotFound(params);
      return represent(await convert(), found.doc, format, params.name ?? "", attachments);
    },
  },
  {
    method: "GET",
    path: "/documents/{name}/versions/{id}/compare",
    operationId: "compareVersion",
    summary:
      "What changed from a version to the current document (`to=current`) or to another version: one document with insertions and deletions marked, as JSON or HTML. Reading it changes nothing",
    need: "read",
    query: CompareQuery,
    responses: {
      200: {
        description: "The comparison (HTML: its document only)",
        schema: Comparison,
        media: ["text/html"],
      },
    },
    async handle({ params, query, service }) {
      const { to, format } = parse(CompareQuery, query);
      if (to !== "current" && !isVersionId(to)) {
        throw new ApiError(400, "bad_request", "to: must be current or a version id");
      }
      const name = params.name ?? "";
      const [converter, comparison] = await Promise.all([convert(), compare()]);
      const from = await service.readVersion(name, params.id ?? "");
      if (from === null) throw versionNotFound(params);
      let later: { side: z.infer<typeof ComparedSide>; json: JSONContent };
      if (to === "current") {
        const doc = await service.current(name);
        if (doc === null) throw notFound(name);
        // Synchronously, right after `current`: it may be the live document.
        const json = converter.documentJSON(doc);
        const side = { id: "current", name: null, kind: "current", author: null } as const;
        later = { side: { ...side, created: new Date().toISOString() }, json };
      } else {
        const other = await service.readVersion(name, to);
        if (other === null) throw versionNotFound({ name, id: to });
        later = { side: versionSide(other.meta), json: converter.documentJSON(other.doc) };
      }
      const { doc, changes } = comparison.compareDocuments(
        converter.documentJSON(from.doc),
        later.json,
      );
      if (format === "html") {
        return {
          status: 200,
          body: comparison.renderComparisonHTML(doc),
          type: "text/html; charset=utf-8",
        };
      }
      return {
        status: 200,
        json: { from: versionSide(from.meta), to: later.side, doc, changes },
      };
    },
  },
  {
    method: "DELETE",
    path: "/documents/{name}/versions/{id}",
    operationId: "deleteVersion",
    summary: "Delete one version",
    need: "write",
    responses: { 204: { description: "Deleted" } },
    async handle({ params, service }) {
      if (!(await service.deleteVersion(params.name ?? "", params.id ?? ""))) {
        throw versionNotFound(params);
      }
      return { status: 204 };
    },
  },
  {
    method: "POST",
    path: "/documents/{name}/versions/{id}/restore",
    operationId: "restoreVersion",
    summary:
      "Make the document's content equal to a version's, as a new change every editor receives live",
    need: "write",
    responses: { 200: { description: "Restored", schema: Restored } },
    async handle({ params, caller, service }) {
      const converter = await convert();
      const result = await service.restore(
        params.name ?? "",
        params.id ?? "",
        actorOf(caller),
        (live, old) => converter.replaceContent(live, converter.documentJSON(old)),
      );
      if (result === null) throw versionNotFound(params);
      return {
        status: 200,
        json: {
          restored: version(result.restored),
          backup: version(result.backup),
        },
      };
    },
  },
];

/** Every route: documents, versions and the trash, attachments, then threads and comments. */
export const ROUTES: readonly Route[] = [
  ...DOCUMENT_ROUTES,
  ...ATTACHMENT_ROUTES,
  ...THREAD_ROUTES,
];

/**
 * The body as a Tiptap document, whichever format it came in. A Word file's pictures are
 * stored as attachments of the document first (with the attachment limits: past one, the
 * request is refused before any content is written), and its image nodes point at them.
 */
async function contentOf({ body, parse, params, attachments }: RouteContext): Promise<JSONContent> {
  const format: BodyFormat =
    CONTENT_TYPES[(body?.type ?? "") as keyof typeof CONTENT_TYPES] ?? "json";
  if (format !== "docx") return (await parse(body?.text ?? "", format)).json;
  const { json, pictures } = await parse(body?.bytes ?? new Uint8Array(), format);
  const name = params.name ?? "";
  for (const [index, picture] of pictures.entries()) {
    await attachments.upload(name, picture.bytes, `picture-${index + 1}`);
  }
  return withAttachmentPaths(json, name);
}

/** `json` with every image and file `src` set to its attachment's path in document `name`. */
function withAttachmentPaths(json: JSONContent, name: string): JSONContent {
  const id = json.attrs?.attachment;
  const attrs =
    (json.type === "image" || json.type === "file") && typeof id === "string"
      ? { ...json.attrs, src: attachmentPath(name, id) }
      : json.attrs;
  return {
    ...json,
    ...(attrs === undefined ? {} : { attrs }),
    ...(json.content === undefined
      ? {}
      : { content: json.content.map((child) => withAttachmentPaths(child, name)) }),
  };
}

/** The pictures a Word file of `json` shows, read from the document's attachments. */
async function picturesOf(
  json: JSONContent,
  name: string,
  attachments: RouteContext["attachments"],
): Promise<Map<string, DocxPicture>> {
  const { pictureOf } = await import("../documents/docx.ts");
  const ids = new Set<string>();
  const walk = (node: JSONContent) => {
    const id = node.attrs?.attachment;
    if (node.type === "image" && typeof id === "string") ids.add(id);
    for (const child of node.content ?? []) walk(child);
  };
  walk(json);
  const pictures = new Map<string, DocxPicture>();
  let total = 0;
  for (const id of ids) {
    const meta = await attachments.meta(name, id).catch(() => null);
    // A Word file of at most 64 MiB of pictures: past that, the rest are named, not shown.
    if (meta === null || total + meta.size > WORD_PICTURE_BYTES) continue;
    const picture = pictureOf(await attachments.read(name, id), meta.type);
    if (picture === null) continue;
    total += meta.size;
    pictures.set(id, picture);
  }
  return pictures;
}

/** Most bytes of pictures one Word download carries. */
const WORD_PICTURE_BYTES = 64 * 1024 * 1024;

/**
 * The document `name` in `format`. Word files are written on the event loop: the content
 * is the server's own, and a document is at most a few MiB.
 */
async function represent(
  converter: Conversion,
  doc: Y.Doc,
  format: OutputFormatParam,
  name: string,
  attachments: RouteContext["attachments"],
): Promise<Reply> {
  if (format === "yjs") {
    return { status: 200, body: Y.encodeStateAsUpdate(doc), type: FORMAT_MEDIA_TYPES.yjs };
  }
  const json = converter.documentJSON(doc);
  if (format === "json") return { status: 200, json };
  if (format === "docx") {
    const { renderDocx } = await import("../documents/docx.ts");
    const checked = converter.checkedJSON(json);
    return {
      status: 200,
      body: await renderDocx(checked, await picturesOf(checked, name, attachments)),
      type: FORMAT_MEDIA_TYPES.docx,
      filename: `${name.split("/").pop() || "document"}.docx`,
    };
  }
  return {
    status: 200,
    body: converter.renderContent(json, format),
    type: `${FORMAT_MEDIA_TYPES[format]}; charset=utf-8`,
  };
}

function info(name: string, meta: DocumentMeta): z.infer<typeof DocumentInfo> {
  return {
    name,
    created: new Date(meta.created).toISOString(),
    updated: new Date(meta.updated).toISOString(),
    size: meta.bytes,
  };
}

async function infoOf(store: DocumentStore, name: string): Promise<z.infer<typeof DocumentInfo>> {
  const meta = await store.meta(name);
  if (meta === null) {
    const now = new Date().toISOString();
    return { name, created: now, updated: now, size: 0 };
  }
  return info(name, meta);
}

function trashItem(service: DocumentService, entry: TrashEntry): z.infer<typeof TrashItem> {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    name: entry.name,
    id: entry.id,
    deleted: iso(entry.deleted),
    deletedBy: entry.deletedBy,
    purgeAt: iso(service.purgeAt(entry)),
    created: iso(entry.created),
    updated: iso(entry.updated),
    size: entry.bytes,
    versions: entry.versions,
  };
}

/** A trash list's `after` (`<id>:<name>`, as `next` gives it) as a store cursor. */
function trashCursor(after: string | undefined): { name: string; id: string } | undefined {
  if (after === undefined) return undefined;
  const colon = after.indexOf(":");
  const cursor = { id: after.slice(0, colon), name: after.slice(colon + 1) };
  if (colon === -1 || !isTrashId(cursor.id) || checkDocumentName(cursor.name) !== null) {
    throw new ApiError(400, "bad_request", "after: not a cursor this API gave");
  }
  return cursor;
}

function version(meta: VersionMeta): z.infer<typeof Version> {
  return {
    id: meta.id,
    name: meta.label,
    kind: meta.kind,
    created: new Date(meta.created).toISOString(),
    size: meta.bytes,
    author: meta.author,
  };
}

/** A version as one side of a comparison. */
function versionSide(meta: VersionMeta): z.infer<typeof ComparedSide> {
  const { id, name, kind, created, author } = version(meta);
  return { id, name, kind, created, author };
}

function notFound(name: string | undefined): ApiError {
  return new ApiError(404, "not_found", `no document named ${JSON.stringify(name)}`);
}

function versionNotFound(params: Readonly<Record<string, string>>): ApiError {
  return new ApiError(
    404,
    "not_found",
    `document ${JSON.stringify(params.name)} has no version ${JSON.stringify(params.id)}`,
  );
}
