/**
 * Worker thread entry for {@link ContentParser}: parses request bodies off the
 * event loop, one at a time, and answers with the document or the error.
 *
 * Every parser it uses is loaded before it says it is ready, the Word reader
 * too (docx.ts: mammoth, docx, fflate; about 200 ms, 8 MiB): loaded on first
 * use, that time counted against the first Word file's deadline. They load
 * here only, never on the server's own thread, and only once a body is parsed.
 */
import { createHash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import { CollabError } from "../errors.ts";
import { type InputFormat, parseContent } from "./convert.ts";
import { docxToHtml, restoreTaskLists } from "./docx.ts";
import { ContentLimits } from "./limits.ts";

/** A text body in one of the text formats, or a Word file's bytes. */
export type ParseJob =
  | {
      readonly id: number;
      readonly body: string;
      readonly format: InputFormat;
      readonly maxBytes: number;
    }
  | {
      readonly id: number;
      readonly body: Uint8Array;
      readonly format: "docx";
      readonly maxBytes: number;
    };

export type ParseAnswer =
  /** Sent once the worker has loaded its modules: deadlines start after that. */
  | { readonly id: 0; readonly ok: true; readonly json: "ready" }
  | {
      readonly id: number;
      readonly ok: true;
      readonly json: unknown;
      /** A Word file's pictures, by the attachment id its image nodes name. */
      readonly pictures?: Array<{ readonly id: string; readonly bytes: Uint8Array }>;
    }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

/** Picture types a Word file's images are kept in (as attachments shown inline); others are left out. */
const PICTURE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]);

/**
 * The job's document, and a Word file's pictures. A Word file is read as HTML first; each
 * picture of a shown type becomes an image node naming it by its SHA-256, the id the server
 * stores it under as an attachment.
 */
async function parse(job: ParseJob): Promise<{ json: unknown; pictures?: Picture[] }> {
  if (job.format !== "docx") {
    return { json: parseContent(job.body, job.format, { maxBytes: job.maxBytes }) };
  }
  const pictures = new Map<string, Uint8Array>();
  const html = await docxToHtml(job.body, {
    images: async (image) => {
      if (!PICTURE_TYPES.has(image.contentType)) return null;
      const bytes = await image.read();
      const id = createHash("sha256").update(bytes).digest("hex");
      pictures.set(id, bytes);
      return `/attachments/${id}`;
    },
  });
  // The HTML a Word file reads as is ours, not the sender's: it may be larger than a sent body.
  const json = restoreTaskLists(
    parseContent(html, "html", { maxBytes: ContentLimits.maxBytes.json }),
  );
  return { json, pictures: [...pictures].map(([id, bytes]) => ({ id, bytes })) };
}

interface Picture {
  readonly id: string;
  readonly bytes: Uint8Array;
}

parentPort?.on("message", async (job: ParseJob) => {
  const { id } = job;
  let answer: ParseAnswer;
  try {
    answer = { id, ok: true, ...(await parse(job)) };
  } catch (error) {
    answer =
      error instanceof CollabError
        ? { id, ok: false, code: error.code, message: error.message }
        : { id, ok: false, code: "INTERNAL", message: String(error) };
  }
  parentPort?.postMessage(answer);
});
parentPort?.postMessage({ id: 0, ok: true, json: "ready" } satisfies ParseAnswer);
