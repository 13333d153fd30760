/**
 * What an upload is, from its bytes alone: the client's Content-Type and
 * file name are never trusted. Only the raster image types browsers decode
 * safely are shown inline; everything else, SVG and HTML included, is served
 * as a download.
 */
import { lazily } from "../util/lazy.ts";

/** Media types served inline (as `<img>` sources); any other is a download. */
export const INLINE_TYPES: ReadonlySet<string> = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/avif",
]);

/** The type of bytes that match no known signature. */
export const UNKNOWN_TYPE = "application/octet-stream";

/** Loaded when first needed: most processes never see an upload. */
const fileType = lazily(() => import("file-type"));

/**
 * The media type of `bytes` by their signature (file-type's detectors), or
 * {@link UNKNOWN_TYPE}. Text formats (HTML, SVG, plain text) have no
 * signature and are unknown: served as downloads, never rendered.
 */
export async function sniffType(bytes: Uint8Array): Promise<string> {
  const { fileTypeFromBuffer } = await fileType();
  const found = await fileTypeFromBuffer(bytes);
  return found?.mime ?? UNKNOWN_TYPE;
}

/** Whether an attachment of `type` may be shown inline. */
export function isInline(type: string): boolean {
  return INLINE_TYPES.has(type);
}
