/**
 * The app's client for the server's REST API (/api/v1). Failures the user can
 * meet (no token, no access, a name already taken, the network) come back as
 * values, never as exceptions, so each page decides what to say.
 */
import type { JSONContent } from "@tiptap/core";

/** A saved version of a document, as `GET .../versions` lists it. */
export interface Version {
  readonly id: string;
  /** The name it was saved under; null for automatic versions. */
  readonly name: string | null;
  readonly kind: "named" | "auto";
  /** ISO time. */
  readonly created: string;
  readonly size: number;
  /** Who saved it (the token's subject), when known. */
  readonly author: string | null;
}

export interface ListedDocument {
  readonly name: string;
  readonly updated: string;
}

export type ApiResult<T> =
  | { readonly ok: true; readonly status: number; readonly value: T }
  | {
      readonly ok: false;
      /** The HTTP status; 0 when the server could not be reached. */
      readonly status: number;
      /** The API's error code (`not_found`, `conflict`, ...), or `network`. */
      readonly code: string;
      readonly message: string;
    };

/** `/api/v1/documents/<name>` with the name percent-encoded, plus `rest`. */
export function documentUrl(name: string, rest = ""): string {
  return `/api/v1/documents/${encodeURIComponent(name)}${rest}`;
}

/**
 * Calls the API. `token` goes as `Authorization: Bearer`; without one the server decides (in
 * anonymous loopback mode everything is allowed).
 */
export async function call<T>(
  path: string,
  options: { readonly method?: string; readonly json?: unknown; readonly token: string | null },
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? "GET",
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      cache: "no-store",
    });
  } catch {
    return { ok: false, status: 0, code: "network", message: "Could not reach the server." };
  }
  const body = (await response.json().catch(() => null)) as unknown;
  if (response.ok) return { ok: true, status: response.status, value: body as T };
  return failure(response.status, body);
}

/** The failure an error answer (`{ "error": { "code", "message" } }`, or anything) means. */
function failure(status: number, body: unknown): Extract<ApiResult<never>, { ok: false }> {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return {
    ok: false,
    status,
    code: typeof error?.code === "string" ? error.code : "http",
    message: typeof error?.message === "string" ? error.message : `The server answered ${status}.`,
  };
}

/** Formats a document downloads as, with the file extension each gets. */
export const DOWNLOADS = {
  markdown: { label: "Markdown (.md)", extension: "md" },
  html: { label: "Web page (.html)", extension: "html" },
  docx: { label: "Word (.docx)", extension: "docx" },
} as const;
export type DownloadFormat = keyof typeof DOWNLOADS;

/** The document in `format`, as a file's bytes. */
export async function downloadDocument(
  name: string,
  format: DownloadFormat,
  token: string | null,
): Promise<ApiResult<Blob>> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(documentUrl(name, `?format=${format}`), { headers, cache: "no-store" });
  } catch {
    return { ok: false, status: 0, code: "network", message: "Could not reach the server." };
  }
  if (!response.ok) return failure(response.status, await response.json().catch(() => null));
  return { ok: true, status: response.status, value: await response.blob() };
}

/** The media type a file is sent as, from its extension; null for a kind the server cannot read. */
export function importType(fileName: string): string | null {
  const extension = fileName.toLowerCase().split(".").pop() ?? "";
  if (extension === "md" || extension === "markdown") return "text/markdown";
  if (extension === "html" || extension === "htm") return "text/html";
  if (extension === "docx") {
    return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
  }
  return null;
}

/** Creates document `name` from `file` (Markdown, HTML or Word); refused if `name` exists. */
export async function importDocument(
  name: string,
  file: File,
  token: string | null,
): Promise<ApiResult<unknown>> {
  const type = importType(file.name);
  if (type === null) {
    return {
      ok: false,
      status: 415,
      code: "unsupported_media_type",
      message: `${file.name} is not a Markdown (.md), HTML (.html) or Word (.docx) file.`,
    };
  }
  const headers: Record<string, string> = { "content-type": type, "if-none-match": "*" };
  if (token) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(documentUrl(name), { method: "PUT", headers, body: file });
  } catch {
    return { ok: false, status: 0, code: "network", message: "Could not reach the server." };
  }
  const body = (await response.json().catch(() => null)) as unknown;
  if (response.ok) return { ok: true, status: response.status, value: body };
  if (response.status === 412) {
    return {
      ...failure(412, body),
      message: `A document named "${name}" exists; choose another name.`,
    };
  }
  return failure(response.status, body);
}

/** Every stored document the token may see (bounded: 50 pages of 200). */
export async function listDocuments(token: string | null): Promise<ApiResult<ListedDocument[]>> {
  const documents: ListedDocument[] = [];
  let after: string | null = "";
  for (let pages = 0; after !== null && pages < 50; pages++) {
    const query: URLSearchParams = new URLSearchParams({
      limit: "200",
      ...(after ? { after } : {}),
    });
    const page: ApiResult<{ documents: ListedDocument[]; next: string | null }> = await call(
      `/api/v1/documents?${query}`,
      { token },
    );
    if (!page.ok) return page;
    documents.push(...(page.value?.documents ?? []));
    after = page.value?.next ?? null;
  }
  return { ok: true, status: 200, value: documents };
}

export function listVersions(
  name: string,
  token: string | null,
): Promise<ApiResult<{ versions: Version[] }>> {
  return call(documentUrl(name, "/versions"), { token });
}

export function saveVersion(
  name: string,
  label: string,
  token: string | null,
): Promise<ApiResult<Version>> {
  return call(documentUrl(name, "/versions"), { method: "POST", json: { name: label }, token });
}

export function versionContent(
  name: string,
  id: string,
  token: string | null,
): Promise<ApiResult<JSONContent>> {
  return call(documentUrl(name, `/versions/${encodeURIComponent(id)}?format=json`), { token });
}

/** One side of a comparison: a version, or the document as it is now (`id: "current"`). */
export interface ComparedSide {
  readonly id: string;
  readonly name: string | null;
  readonly kind: "named" | "auto" | "current";
  /** ISO time it was saved; for the current document, when the comparison was made. */
  readonly created: string;
  /** Who saved the version (the token's subject), when known. */
  readonly author: string | null;
}

/** `GET .../versions/{id}/compare`: both sides in one document, changes marked. */
export interface Comparison {
  readonly from: ComparedSide;
  readonly to: ComparedSide;
  /** A document of the comparison schema (`comparisonExtensions()`). */
  readonly doc: JSONContent;
  readonly changes: { readonly insertions: number; readonly deletions: number };
}

/** What changed from version `from` to version `to`, or to the current document. */
export function compareVersions(
  name: string,
  from: string,
  to: string,
  token: string | null,
): Promise<ApiResult<Comparison>> {
  const query = new URLSearchParams({ to, format: "json" });
  return call(documentUrl(name, `/versions/${encodeURIComponent(from)}/compare?${query}`), {
    token,
  });
}

export function restoreVersion(
  name: string,
  id: string,
  token: string | null,
): Promise<ApiResult<{ restored: Version; backup: Version | null }>> {
  return call(documentUrl(name, `/versions/${encodeURIComponent(id)}/restore`), {
    method: "POST",
    token,
  });
}

/** A deleted document in the trash, as `GET /api/v1/trash` lists it. */
export interface TrashItem {
  readonly name: string;
  readonly id: string;
  /** ISO times. */
  readonly deleted: string;
  readonly deletedBy: string | null;
  readonly purgeAt: string;
  readonly updated: string;
  readonly size: number;
  readonly versions: number;
}

/** Everything in the trash (bounded: 20 pages of 500). */
export async function listTrash(token: string | null): Promise<ApiResult<TrashItem[]>> {
  const items: TrashItem[] = [];
  let after: string | null = "";
  for (let pages = 0; after !== null && pages < 20; pages++) {
    const query: URLSearchParams = new URLSearchParams({
      limit: "500",
      ...(after ? { after } : {}),
    });
    const page: ApiResult<{ items: TrashItem[]; next: string | null }> = await call(
      `/api/v1/trash?${query}`,
      { token },
    );
    if (!page.ok) return page;
    items.push(...(page.value?.items ?? []));
    after = page.value?.next ?? null;
  }
  return { ok: true, status: 200, value: items };
}

/** Restores trash entry `id` of `name`, under `as` when given. */
export function restoreFromTrash(
  item: { readonly name: string; readonly id: string },
  as: string | null,
  token: string | null,
): Promise<ApiResult<{ document: { name: string } }>> {
  return call(`/api/v1/trash/${encodeURIComponent(item.name)}/restore`, {
    method: "POST",
    json: as === null ? { id: item.id } : { id: item.id, as },
    token,
  });
}

/** Purges trash entry `id` of `name` for good. */
export function purgeFromTrash(
  item: { readonly name: string; readonly id: string },
  token: string | null,
): Promise<ApiResult<unknown>> {
  return call(
    `/api/v1/trash/${encodeURIComponent(item.name)}?${new URLSearchParams({ id: item.id })}`,
    { method: "DELETE", token },
  );
}
