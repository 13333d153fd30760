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
 *
 * A thread's mark is put back only while the threads document loaded here
 * has the thread, and a thread deleted there (here, or on another instance:
 * the threads document reaches every instance that has it loaded) is
 * forgotten at once; if this instance put its mark back before the deletion
 * reached its threads document (the text's unmarking came first), it takes
 * the mark off again ({@link MarkKeeper.threadDeleted}).
 */
import type * as Y from "yjs";
import { MarkKeeper } from "../../../editor/src/comments/keep-marks.ts";
import { commentMarkKey, THREADS } from "../../../editor/src/comments/model.ts";
import { FIELD } from "../../../editor/src/field.ts";

const keepers = new WeakMap<Y.Doc, MarkKeeper>();

/** Per threads document watched, the keeper its deletions go to, and how to stop. */
const watching = new WeakMap<Y.Doc, { readonly keeper: MarkKeeper; readonly stop: () => void }>();

/**
 * Keeps thread `id`'s mark on the text it covers now in `text`, for as long
 * as `threads()` (the live threads document, or null when it is not loaded:
 * then nothing is put back) has the thread. Returns the keeper of `text` (its
 * `size`, `visits`: for tests and metrics).
 */
export function keepThreadMark(text: Y.Doc, id: string, threads: () => Y.Doc | null): MarkKeeper {
  let keeper = keepers.get(text);
  if (keeper === undefined) {
    const created: MarkKeeper = new MarkKeeper(text, {
      threadExists: (thread) => {
        const doc = threads();
        if (doc === null) return false;
        // The threads document may have been loaded again since: its deletions reach this keeper.
        watch(doc, text, created);
        return doc.getMap(THREADS).has(thread);
      },
    });
    keeper = created;
    keepers.set(text, keeper);
    text.once("destroy", () => keepers.get(text)?.destroy());
  }
  const doc = threads();
  if (doc !== null) watch(doc, text, keeper);
  keeper.keepMark(text.getXmlFragment(FIELD), commentMarkKey(id));
  return keeper;
}

/**
 * Makes thread deletions in `threads` (the live threads document of `text`) reach the keeper
 * of `text`, when it has one: a deleted thread's text is forgotten, and a mark this server put
 * back on it is taken off again. For a change about to delete threads (Comments.apply), and
 * for each threads document loaded anew. Does nothing when `text` has no keeper.
 */
export function watchThreads(text: Y.Doc, threads: Y.Doc): void {
  const keeper = keepers.get(text);
  if (keeper !== undefined) watch(threads, text, keeper);
}

function watch(threads: Y.Doc, text: Y.Doc, keeper: MarkKeeper): void {
  const current = watching.get(threads);
  if (current?.keeper === keeper) return;
  current?.stop();
  const map = threads.getMap<unknown>(THREADS);
  const observer = (event: Y.YMapEvent<unknown>) => {
    for (const [id, change] of event.changes.keys) {
      if (change.action === "delete") keeper.threadDeleted(id);
    }
  };
  map.observe(observer);
  const stop = () => {
    map.unobserve(observer);
    text.off("destroy", stop);
    threads.off("destroy", stop);
    if (watching.get(threads)?.keeper === keeper) watching.delete(threads);
  };
  // The watch goes with either document (the text's keeper goes with the text; a threads
  // document unloaded is not held for the text's sake).
  text.on("destroy", stop);
  threads.on("destroy", stop);
  watching.set(threads, { keeper, stop });
}
