/**
 * The `Content-Disposition` header of a file the server sends: shown
 * (`inline`) or saved (`attachment`) under `filename`, given first in ASCII
 * (other characters, quotes and backslashes as `_`) and then exactly, as an
 * RFC 5987 ext-value, so every browser gets a usable name.
 */
export function contentDisposition(kind: "inline" | "attachment", filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeRfc5987(filename)}`;
}

/** `value` as an RFC 5987 ext-value's characters: percent-encoded beyond its attr-chars. */
function encodeRfc5987(value: string): string {
  return encodeURIComponent(value).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
