/**
 * The worker-thread parser for HTML, Markdown and Word bodies ([API9]): a
 * slow parse is stopped at its deadline, one that needs too much memory ends
 * the worker and not the process, the queue is bounded, oversized bodies
 * never wait in it, and the parser recovers for the next body.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ContentParser } from "../../server/src/documents/parser.ts";
import { emptyParagraphs } from "../helpers/docx.ts";

/** About a minute of marked's time on the event loop. */
const HOSTILE = "a *".repeat(40_000);

let parser: ContentParser;
afterEach(() => parser.close());

describe("content parser", () => {
  it("[API9] stops a slow parse at its deadline and parses the next body", async () => {
    parser = new ContentParser({ timeoutMs: 300 });
    await expect(parser.parse(HOSTILE, "markdown")).rejects.toMatchObject({
      code: "CONTENT_INVALID",
      message: expect.stringContaining("took over 300 ms"),
    });
    await expect(parser.parse("# Title", "markdown")).resolves.toMatchObject({
      type: "doc",
      content: [{ type: "heading" }],
    });
  });

  it("[API9] refuses more than maxQueued waiting bodies, and oversized ones before queueing", async () => {
    // Before the worker is ready every body waits, so the first counts too.
    parser = new ContentParser({ timeoutMs: 300, maxQueued: 3, maxBytes: { html: 1024 } });
    const running = parser.parse(HOSTILE, "markdown");
    const queued = [parser.parse(HOSTILE, "markdown"), parser.parse("<p>x</p>", "html")];
    await expect(parser.parse("<p>late</p>", "html")).rejects.toMatchObject({
      code: "SERVER_BUSY",
    });
    await expect(parser.parse(`<p>${"x".repeat(2048)}</p>`, "html")).rejects.toMatchObject({
      code: "CONTENT_INVALID",
      message: expect.stringContaining("larger than 1024 bytes"),
    });
    await expect(running).rejects.toMatchObject({ code: "CONTENT_INVALID" });
    await expect(queued[0]).rejects.toMatchObject({ code: "CONTENT_INVALID" });
    await expect(queued[1]).resolves.toMatchObject({ content: [{ type: "paragraph" }] });
  });

  it("[API9] a parse that needs more memory than the worker's heap ends the worker, not the process; the next body parses", async () => {
    // 6 MiB of XML, 10 KiB zipped: the reader needs several hundred MiB for it.
    parser = new ContentParser({ timeoutMs: 60_000, maxHeapMiB: 96 });
    await expect(parser.parse(emptyParagraphs(1_000_000), "docx")).rejects.toMatchObject({
      code: "CONTENT_TOO_LARGE",
      message: expect.stringContaining("needs more than 96 MiB of memory"),
    });
    await expect(parser.parse("# Title", "markdown")).resolves.toMatchObject({
      content: [{ type: "heading" }],
    });
  });
});
