/**
 * Worker thread entry for {@link ContentParser}: parses request bodies off the
 * event loop, one at a time, and answers with the document or the error.
 *
 * Every parser it uses is loaded before it says it is ready, the Word reader
 * too (docx.ts: mammoth, docx, fflate; about 200 ms, 8 MiB): loaded on first
 * use, that time counted against the first Word file's deadline. They load
 * here only, never on the server's own thread, and only once a body is parsed.
 */
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
  | { readonly id: number; readonly ok: true; readonly json: unknown }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

/** The job's document. A Word file is read as HTML first. */
async function parse(job: ParseJob): Promise<unknown> {
  if (job.format !== "docx") return parseContent(job.body, job.format, { maxBytes: job.maxBytes });
  const html = await docxToHtml(job.body);
  // The HTML a Word file reads as is ours, not the sender's: it may be larger than a sent body.
  return restoreTaskLists(parseContent(html, "html", { maxBytes: ContentLimits.maxBytes.json }));
}

parentPort?.on("message", async (job: ParseJob) => {
  const { id } = job;
  let answer: ParseAnswer;
  try {
    answer = { id, ok: true, json: await parse(job) };
  } catch (error) {
    answer =
      error instanceof CollabError
        ? { id, ok: false, code: error.code, message: error.message }
        : { id, ok: false, code: "INTERNAL", message: String(error) };
  }
  parentPort?.postMessage(answer);
});
parentPort?.postMessage({ id: 0, ok: true, json: "ready" } satisfies ParseAnswer);
