/**
 * Comment threads for the cold-load benchmark: `threads` threads of
 * `comments` comments each, written as the server writes them
 * (editor/src/comments/model.ts): one Y.Map per thread in the `threads` root
 * of the threads document, one key per comment, and the thread's mark on its
 * text in the document under y-tiptap's key. The trace document is plain
 * text (a Y.Text), so the marks go on that text, spread evenly over it.
 */
import * as Y from "yjs";
import { COMMENT_KEY_PREFIX, commentMarkKey, THREADS } from "../editor/src/comments/model.ts";

export function addThreads(doc: Y.Doc, threadsDoc: Y.Doc, threads: number, comments: number): void {
  const text = doc.getText("text");
  const length = text.length;
  const span = 24;
  const step = Math.max(span + 1, Math.floor(length / (threads + 1)));
  doc.transact(() => {
    const map = threadsDoc.getMap<Y.Map<unknown>>(THREADS);
    for (let i = 0; i < threads; i++) {
      const id = `bench-thread-${i}`;
      const at = Math.min(length - span, (i + 1) * step);
      const thread = new Y.Map<unknown>();
      thread.set("id", id);
      thread.set("author", { id: "bench-author", name: "Bench Author" });
      thread.set("created", 1_800_000_000_000 + i);
      thread.set("quote", text.toString().slice(at, at + span));
      thread.set("status", i % 5 === 0 ? "resolved" : "open");
      for (let c = 0; c < comments; c++) {
        const commentId = `${id}-c${c}`;
        thread.set(`${COMMENT_KEY_PREFIX}${commentId}`, {
          id: commentId,
          author: { id: `user-${c}`, name: `User ${c}` },
          body: `Comment ${c} on thread ${i}: is this paragraph right? @User${(c + 1) % comments}`,
          mentions: [{ id: `user-${(c + 1) % comments}`, label: `User${(c + 1) % comments}` }],
          created: 1_800_000_000_000 + i * 1000 + c,
          edited: null,
        });
      }
      map.set(id, thread);
      if (at >= 0) text.format(at, span, { [commentMarkKey(id)]: { thread: id } });
    }
  });
}
