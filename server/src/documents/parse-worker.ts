/**
 * Worker thread entry for {@link ContentParser}: parses request bodies off the
 * event loop, one at a time, and answers with the document or the error.
 */
import { parentPort } from "node:worker_threads";
import { CollabError } from "../errors.ts";
import { type InputFormat, parseContent } from "./convert.ts";

export interface ParseJob {
  readonly id: number;
  readonly body: string;
  readonly format: InputFormat;
  readonly maxBytes: number;
}

export type ParseAnswer =
  /** Sent once the worker has loaded its modules: deadlines start after that. */
  | { readonly id: 0; readonly ok: true; readonly json: "ready" }
  | { readonly id: number; readonly ok: true; readonly json: unknown }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

parentPort?.on("message", ({ id, body, format, maxBytes }: ParseJob) => {
  let answer: ParseAnswer;
  try {
    answer = { id, ok: true, json: parseContent(body, format, { maxBytes }) };
  } catch (error) {
    answer =
      error instanceof CollabError
        ? { id, ok: false, code: error.code, message: error.message }
        : { id, ok: false, code: "INTERNAL", message: String(error) };
  }
  parentPort?.postMessage(answer);
});
parentPort?.postMessage({ id: 0, ok: true, json: "ready" } satisfies ParseAnswer);
