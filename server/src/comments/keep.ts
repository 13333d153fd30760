/**
 * The server's part in keeping a thread on its text ([COM2] in SPEC.md): the
 * text a thread covers when this server makes it is kept marked through
 * concurrent deletions by editors that had not seen all of it
 * (editor/src/comments/keep-marks.ts explains how a mark is lost, and is
 * put back). The editors keep the text they move; the server keeps the text
 * it marks.
 *
 * One keeper per live text document, dropped with it. What it remembers
 * lives in memory only: after a restart, or on another instance, a thread's
 * text is kept by the editors alone.
 */
import type * as Y from "yjs";
import { MarkKeeper } from "../../../editor/src/comments/keep-marks.ts";
import { commentMarkKey, THREADS } from "../../../editor/src/comments/model.ts";
import { FIELD } from "../../../editor/src/extensions.ts";

const keepers = new WeakMap<Y.Doc, MarkKeeper>();

/**
 * Keeps thread `id`'s mark on the text it covers now in `text`, for as long
 * as `threads()` (the live threads document, or null when it is not loaded:
 * then nothing is put back) has the thread. Returns the keeper of `text` (its
 * `size`, `visits`: for tests and metrics).
 */
export function keepThreadMark(text: Y.Doc, id: string, threads: () => Y.Doc | null): MarkKeeper {
  let keeper = keepers.get(text);
  if (keeper === undefined) {
    keeper = new MarkKeeper(text, {
      threadExists: (thread) => threads()?.getMap(THREADS).has(thread) ?? false,
    });
    keepers.set(text, keeper);
    text.once("destroy", () => keepers.get(text)?.destroy());
  }
  keeper.keepMark(text.getXmlFragment(FIELD), commentMarkKey(id));
  return keeper;
}
