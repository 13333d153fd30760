/**
 * The attachment routes: upload, list, fetch (with ranges and caching) and
 * signed links. Served with the headers that keep user content from ever
 * running as this site's page: only raster images inline, everything else a
 * download; `nosniff`; a sandboxing Content-Security-Policy.
 */
import { isInline } from "../attachments/sniff.ts";
import type { AttachmentMeta } from "../attachments/store.ts";
import { isAttachmentId } from "../attachments/store.ts";
import { contentDisposition } from "./disposition.ts";
import { ApiError } from "./errors.ts";
import { parse } from "./input.ts";
import type { Reply, Route, RouteContext } from "./routes.ts";
import { Attachment, AttachmentLinks, AttachmentList, UploadQuery } from "./schemas.ts";

/** The path of attachment `id` of document `name` below the server's root. */
export function attachmentPath(name: string, id: string): string {
  return `/api/v1/documents/${encodeURIComponent(name)}/attachments/${id}`;
}

function attachmentJson(name: string, meta: AttachmentMeta): unknown {
  return {
    id: meta.id,
    url: attachmentPath(name, meta.id),
    type: meta.type,
    size: meta.size,
    filename: meta.filename,
    created: new Date(meta.created).toISOString(),
  };
}

/** The bytes and name of an upload: the raw body, or the `file` part of a multipart form. */
async function uploaded({
  body,
  headers,
  query,
}: RouteContext): Promise<{ bytes: Uint8Array; filename: string }> {
  const { filename } = parse(UploadQuery, query);
  if (body === null) throw new ApiError(400, "bad_request", "send the file as the request body");
  if (body.type !== "multipart/form-data") return { bytes: body.bytes, filename: filename ?? "" };
  let form: FormData;
  try {
    // undici's multipart reader, as fetch's Response.formData() uses it.
    form = await new Response(new Blob([body.bytes as Uint8Array<ArrayBuffer>]), {
      headers: { "content-type": headers["content-type"] ?? "" },
    }).formData();
  } catch {
    throw new ApiError(400, "bad_request", "the multipart body does not parse");
  }
  const file = form.get("file");
  if (file === null || typeof file === "string") {
    throw new ApiError(400, "bad_request", "the multipart body has no file part named `file`");
  }
  return { bytes: new Uint8Array(await file.arrayBuffer()), filename: filename ?? file.name };
}

/** A single `bytes=` range of a body of `size` bytes; null for none or several; "unsatisfiable". */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null | "unsatisfiable" {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return null;
  const [, from = "", to = ""] = match;
  if (from === "" && to === "") return null;
  let start: number;
  let end: number;
  if (from === "") {
    const suffix = Number(to);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(from);
    end = to === "" ? size - 1 : Math.min(Number(to), size - 1);
    if (to !== "" && Number(to) < start) return null;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/** The headers every attachment answer carries. */
function servingHeaders(meta: AttachmentMeta): Record<string, string> {
  const inline = isInline(meta.type);
  return {
    // Only raster images as themselves; anything else is bytes to save, never a page.
    "content-type": inline ? meta.type : "application/octet-stream",
    "content-disposition": contentDisposition(
      inline ? "inline" : "attachment",
      meta.filename || meta.id,
    ),
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
    // Readers only: kept by the browser, never by a shared cache; the bytes never change.
    "cache-control": "private, max-age=31536000, immutable",
    etag: `"${meta.id}"`,
    "accept-ranges": "bytes",
    // Embedding sites show images from here in their own pages.
    "cross-origin-resource-policy": "cross-origin",
  };
}

async function serve(context: RouteContext): Promise<Reply> {
  const { params, headers, attachments } = context;
  const name = params.name ?? "";
  const id = params.id ?? "";
  if (!isAttachmentId(id)) {
    throw new ApiError(404, "not_found", "an attachment id is 64 hex digits (its SHA-256)");
  }
  const meta = await attachments.meta(name, id);
  const common = servingHeaders(meta);
  const tags = headers["if-none-match"]?.split(",") ?? [];
  if (tags.some((tag) => tag.trim().replace(/^W\//, "") === `"${id}"`)) {
    return { status: 304, raw: undefined, headers: common };
  }
  const range = parseRange(headers.range, meta.size);
  if (range === "unsatisfiable") {
    return {
      status: 416,
      raw: undefined,
      headers: { ...common, "content-range": `bytes */${meta.size}` },
    };
  }
  const { start, end } = range ?? { start: 0, end: meta.size - 1 };
  const length = String(end - start + 1);
  // Streamed from the store: fifty images in flight are not fifty whole files in memory.
  const body = await attachments.stream(name, id, range ?? undefined);
  if (range === null) {
    return { status: 200, raw: body, headers: { ...common, "content-length": length } };
  }
  return {
    status: 206,
    raw: body,
    headers: {
      ...common,
      "content-range": `bytes ${start}-${end}/${meta.size}`,
      "content-length": length,
    },
  };
}

export const ATTACHMENT_ROUTES: readonly Route[] = [
  {
    method: "POST",
    path: "/documents/{name}/attachments",
    operationId: "uploadAttachment",
    summary:
      "Upload an image or file: the raw body (any Content-Type; the type is sniffed from the bytes) or multipart/form-data with a `file` part",
    need: "write",
    query: UploadQuery,
    body: { types: ["*/*"], required: true, limit: "attachment" },
    responses: {
      201: { description: "Stored", schema: Attachment },
      200: { description: "The document had these bytes already", schema: Attachment },
    },
    async handle(context) {
      const name = context.params.name ?? "";
      const { bytes, filename } = await uploaded(context);
      const before = Date.now();
      const meta = await context.attachments.upload(name, bytes, filename);
      return { status: meta.created >= before ? 201 : 200, json: attachmentJson(name, meta) };
    },
  },
  {
    method: "GET",
    path: "/documents/{name}/attachments",
    operationId: "listAttachments",
    summary: "The document's attachments",
    need: "read",
    responses: { 200: { description: "Attachments", schema: AttachmentList } },
    async handle({ params, attachments }) {
      const name = params.name ?? "";
      const list = await attachments.list(name);
      return { status: 200, json: { attachments: list.map((meta) => attachmentJson(name, meta)) } };
    },
  },
  {
    method: "POST",
    path: "/documents/{name}/attachments/links",
    operationId: "signAttachmentLinks",
    summary:
      "A signature that lets a browser fetch this document's attachments without a token for a while (for <img src>)",
    need: "read",
    responses: { 200: { description: "The signature", schema: AttachmentLinks } },
    async handle({ params, links }) {
      const { expires, signature } = links.sign(params.name ?? "");
      return {
        status: 200,
        json: {
          expires: new Date(expires * 1000).toISOString(),
          query: `expires=${expires}&signature=${signature}`,
        },
      };
    },
  },
  {
    method: "GET",
    path: "/documents/{name}/attachments/{id}",
    operationId: "getAttachment",
    summary:
      "An attachment's bytes: raster images inline, anything else as a download; supports Range and If-None-Match; a token or a signed link",
    need: "read",
    signed: true,
    responses: {
      200: { description: "The bytes", media: ["image/*", "application/octet-stream"] },
      206: { description: "The requested range", media: ["image/*", "application/octet-stream"] },
      304: { description: "Not modified" },
    },
    handle: serve,
  },
];
