/**
 * What a user can do with the copy of a document on their device once the
 * server refuses it as deleted: download it, or save it as a new document
 * through the server's REST API (created only if the name is free).
 */

/** What saving a copy as a new document gave. */
export type SaveCopyResult =
  | { readonly ok: true; readonly name: string }
  | {
      readonly ok: false;
      /**
       * `exists`: a document has that name; `invalid-name`: the name cannot be used;
       * `denied`: the token does not allow creating it; `unreachable`: the server could not be
       * reached; `failed`: anything else (the message says what).
       */
      readonly problem: "exists" | "invalid-name" | "denied" | "unreachable" | "failed";
      readonly message: string;
    };

/**
 * The REST API's base for a WebSocket URL: the same host over HTTP(S), at
 * `/api/v1`.
 *
 * @example apiUrlFor("wss://docs.example.com/collab") // "https://docs.example.com/api/v1"
 */
export function apiUrlFor(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol =
    url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol;
  return `${url.origin}/api/v1`;
}

/**
 * Creates document `name` with `content` (Tiptap JSON) through the REST
 * API, only if no document has that name (`If-None-Match: *`).
 */
export async function saveCopy(options: {
  readonly apiUrl: string;
  readonly name: string;
  readonly content: unknown;
  readonly token: string | null;
  readonly fetch?: typeof fetch;
}): Promise<SaveCopyResult> {
  const name = options.name.trim();
  if (name === "") return { ok: false, problem: "invalid-name", message: "Give the copy a name." };
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "if-none-match": "*",
  };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(
      `${options.apiUrl}/documents/${encodeURIComponent(name)}`,
      { method: "PUT", headers, body: JSON.stringify(options.content) },
    );
  } catch {
    return { ok: false, problem: "unreachable", message: "The server could not be reached." };
  }
  if (response.ok) return { ok: true, name };
  const detail = await response
    .json()
    .then((body: { error?: { message?: string } }) => body.error?.message ?? "")
    .catch(() => "");
  switch (response.status) {
    case 412:
      return { ok: false, problem: "exists", message: `A document named “${name}” exists.` };
    case 400:
      return { ok: false, problem: "invalid-name", message: detail || "That name cannot be used." };
    case 401:
    case 403:
      return {
        ok: false,
        problem: "denied",
        message: "Your access does not allow creating that document.",
      };
    default:
      return {
        ok: false,
        problem: "failed",
        message: detail || `The server answered ${response.status}.`,
      };
  }
}

/** A file name for a document name: what file systems refuse becomes `_`. */
export function fileNameFor(documentName: string, extension: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  const base = documentName.replace(/[\u0000-\u001f\u007f/\\?%*:|"<>]/g, "_").trim() || "document";
  return `${base.slice(0, 120)}.${extension}`;
}

/** A standalone HTML file holding `bodyHtml` (the editor's own HTML), titled `title`. */
export function htmlFile(title: string, bodyHtml: string): string {
  const escaped = title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html>
<head><meta charset="utf-8"><title>${escaped}</title></head>
<body>
${bodyHtml}
</body>
</html>
`;
}

/** Offers `text` as a download named `fileName`, from a page's document. */
export function download(page: Document, fileName: string, type: string, text: string): void {
  const view = page.defaultView;
  if (view === null) return;
  const url = view.URL.createObjectURL(new view.Blob([text], { type }));
  const link = page.createElement("a");
  link.href = url;
  link.download = fileName;
  link.rel = "noopener";
  page.body.append(link);
  link.click();
  link.remove();
  // The browser has started the download; the object URL is not needed any more.
  view.setTimeout(() => view.URL.revokeObjectURL(url), 0);
}
