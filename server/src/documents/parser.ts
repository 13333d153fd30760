/**
 * Parses HTML and Markdown request bodies in a worker thread. The parsers
 * (happy-dom, marked) run synchronously, and some inputs cost quadratic time
 * (16 KiB of `*` takes marked 0.8 s, 128 KiB about 50 s): on the event loop,
 * one such request would stall every connection. In the worker it stalls
 * only itself, and a parse that runs past its deadline is stopped by
 * terminating the worker (a fresh one takes the next job) and refused.
 * Word files are read there too (mammoth), and so is one that needs more
 * memory than the worker's heap: the worker ends, the server goes on.
 * JSON is parsed on the event loop: it is linear and fast.
 */
import { Worker } from "node:worker_threads";
import type { JSONContent } from "@tiptap/core";
import { CollabError, type ErrorCode } from "../errors.ts";
import type { InputFormat } from "./convert.ts";

/** What a body may be written in: a text format, or a Word file (`docx`, bytes). */
export type BodyFormat = InputFormat | "docx";

import { ContentLimits } from "./limits.ts";
import type { ParseAnswer, ParseJob } from "./parse-worker.ts";

export interface ContentParserOptions {
  /** Longest one parse may run. @default 2_000 */
  readonly timeoutMs?: number;
  /** Parses waiting for the worker; more are refused (SERVER_BUSY) rather than queued. @default 8 */
  readonly maxQueued?: number;
  /** Largest body per format, in bytes. @default ContentLimits.maxBytes */
  readonly maxBytes?: Partial<Record<BodyFormat, number>>;
  /**
   * The worker's heap (V8's old generation), in MiB: a parse that needs more ends the
   * worker, never the server, and is refused with CONTENT_TOO_LARGE; a fresh worker takes
   * the next body. The deadline stops most parses long before: a Word file that parses
   * in 2 s needs about 250 MiB, but 1 MiB of HTML made of short paragraphs needs 900.
   * @default 1024
   */
  readonly maxHeapMiB?: number;
}

/** A picture of a Word file: its bytes, under the attachment id its image node names. */
export interface ParsedPicture {
  /** The SHA-256 of `bytes`, as attachments are addressed. */
  readonly id: string;
  readonly bytes: Uint8Array;
}

/** A parsed body, with the pictures its image nodes refer to (a Word file's). */
export interface Parsed {
  readonly json: JSONContent;
  readonly pictures: readonly ParsedPicture[];
}

interface Pending {
  readonly job: ParseJob;
  readonly resolve: (parsed: Parsed) => void;
  readonly reject: (error: unknown) => void;
}

export class ContentParser {
  private readonly timeoutMs: number;
  private readonly maxQueued: number;
  private readonly maxBytes: Record<BodyFormat, number>;
  private readonly maxHeapMiB: number;
  private worker: Worker | null = null;
  /** The worker has loaded its modules (its start-up does not count against a deadline). */
  private workerReady = false;
  private readonly queue: Pending[] = [];
  private running: { pending: Pending; timer: NodeJS.Timeout } | null = null;
  private nextId = 1;
  private closed = false;

  constructor(options: ContentParserOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.maxQueued = options.maxQueued ?? 8;
    this.maxBytes = { ...ContentLimits.maxBytes, ...options.maxBytes };
    this.maxHeapMiB = options.maxHeapMiB ?? 1024;
  }

  /**
   * The body as a normalised Tiptap document; CONTENT_INVALID when it is not one or takes
   * too long, CONTENT_TOO_LARGE for a Word file that unpacks too large. A Word file (`docx`)
   * comes as its bytes, every other format as text.
   */
  async parse(body: string | Uint8Array, format: BodyFormat): Promise<JSONContent> {
    return (await this.parseWithPictures(body, format)).json;
  }

  /**
   * {@link parse}, with the pictures of a Word file: each image node's
   * `attachment` is the id of one of them, which the caller stores as an
   * attachment of the document before writing the content.
   */
  parseWithPictures(body: string | Uint8Array, format: BodyFormat): Promise<Parsed> {
    const maxBytes = this.maxBytes[format];
    if ((format === "docx") !== (typeof body !== "string")) {
      return Promise.reject(
        new TypeError(`a ${format} body comes as ${format === "docx" ? "bytes" : "text"}`),
      );
    }
    if (format === "json")
      return import("./convert.ts").then(({ parseContent }) => ({
        json: parseContent(body as string, format, { maxBytes }),
        pictures: [],
      }));
    if (this.closed)
      return Promise.reject(new CollabError("STORE_CLOSED", "the server is shutting down"));
    // Checked here too, so an oversized body is never held in the queue.
    const size = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength;
    if (size > maxBytes) {
      const code = format === "docx" ? "CONTENT_TOO_LARGE" : "CONTENT_INVALID";
      return Promise.reject(
        new CollabError(code, `${format} content is larger than ${maxBytes} bytes`),
      );
    }
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new CollabError(
          "SERVER_BUSY",
          `${this.queue.length} HTML, Markdown and Word bodies are waiting to be parsed; try again shortly`,
        ),
      );
    }
    const id = this.nextId++;
    const job: ParseJob =
      format === "docx"
        ? { id, body: body as Uint8Array, format, maxBytes }
        : { id, body: body as string, format, maxBytes };
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.next();
    });
  }

  /** The largest body this parser takes in `format`, in bytes. */
  maxBytesOf(format: BodyFormat): number {
    return this.maxBytes[format];
  }

  /** Stops the worker; queued parses are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) {
      pending.reject(new CollabError("STORE_CLOSED", "the server is shutting down"));
    }
    await this.worker?.terminate();
    this.worker = null;
  }

  private next(): void {
    if (this.running !== null || this.closed || this.queue.length === 0) return;
    const worker = this.ensureWorker();
    if (!this.workerReady) return;
    const pending = this.queue.shift();
    if (pending === undefined) return;
    const timer = setTimeout(() => {
      // The only way to stop a synchronous parse: end the thread. The next job gets a new one.
      this.running = null;
      this.worker = null;
      void worker.terminate();
      pending.reject(
        new CollabError(
          "CONTENT_INVALID",
          `${pending.job.format} content took over ${this.timeoutMs} ms to parse; send it as Tiptap JSON or in smaller parts`,
        ),
      );
      this.next();
    }, this.timeoutMs);
    this.running = { pending, timer };
    worker.postMessage(pending.job);
  }

  private ensureWorker(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(new URL("./parse-worker.ts", import.meta.url), {
      resourceLimits: {
        maxOldGenerationSizeMb: this.maxHeapMiB,
        // Past its heap limit a worker gets 16 MiB more while it is stopped; objects promoted
        // from a larger young generation (192 MiB by default) can overrun that, and V8 then
        // aborts the whole process instead.
        maxYoungGenerationSizeMb: 32,
      },
    });
    worker.unref();
    this.workerReady = false;
    worker.on("message", (answer: ParseAnswer) => {
      if (answer.id === 0) {
        if (this.worker === worker) this.workerReady = true;
        this.next();
        return;
      }
      const running = this.running;
      if (running === null || running.pending.job.id !== answer.id) return;
      clearTimeout(running.timer);
      this.running = null;
      if (answer.ok) {
        running.pending.resolve({
          json: answer.json as JSONContent,
          pictures: ("pictures" in answer ? answer.pictures : undefined) ?? [],
        });
      } else running.pending.reject(new CollabError(answer.code as ErrorCode, answer.message));
      this.next();
    });
    worker.on("error", (error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      const running = this.running;
      if (running !== null) {
        clearTimeout(running.timer);
        this.running = null;
        const { format } = running.pending.job;
        running.pending.reject(
          (error as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
            ? new CollabError(
                "CONTENT_TOO_LARGE",
                `${format} content needs more than ${this.maxHeapMiB} MiB of memory to parse; send it as Tiptap JSON or in smaller parts`,
              )
            : error,
        );
      }
      this.next();
    });
    this.worker = worker;
    return worker;
  }
}
