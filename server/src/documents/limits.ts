/**
 * Conversion limits, in a module of their own so the server can read them
 * without loading the conversion code (Tiptap, ProseMirror, happy-dom).
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Limits on what conversion accepts. They exist because HTML and Markdown are
 * parsed synchronously on the event loop, by recursive code: an unbounded input
 * would stall every connection or overflow the stack.
 */
export const ContentLimits = {
  /**
   * Deepest node nesting {@link parseContent} accepts, counting the doc and
   * text nodes (`doc > bulletList > listItem > paragraph > text` is 5); each
   * nested list adds 2 levels, so this allows 48 lists inside each other.
   * @default 100
   */
  maxDepth: 100,
  /**
   * Deepest nesting read from or written to a stored document (documents made
   * in the editor, versions being restored): a guard for the recursion only.
   * Writing into Yjs overflows the stack somewhere between 800 and 1000
   * levels, and an overflow there would leave a half-written transaction.
   * @default 500
   */
  maxStoredDepth: 500,
  /**
   * Largest input {@link parseContent} accepts, in UTF-8 bytes, per format,
   * sized so one parse blocks the event loop for well under a second on one
   * core: JSON parses at about 30 MiB/s; HTML at about 0.75 MiB/s (happy-dom,
   * then ProseMirror); Markdown (marked) at about 0.5 MiB/s for prose, slower
   * for documents full of lists, whose cost grows quadratically. Hostile
   * Markdown is worse still (a paragraph of 16 KiB of `*` takes 0.8 s, and the
   * cost grows quadratically): the API therefore parses HTML and Markdown in
   * a worker thread with a deadline (documents/parser.ts).
   */
  maxBytes: { json: 8 * MiB, html: 1 * MiB, markdown: 128 * KiB, docx: 8 * MiB },
} as const;
