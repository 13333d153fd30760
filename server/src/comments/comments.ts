/**
 * Comments on documents, without transport: applies operations to the live
 * document and its threads document through the document service (so every
 * connected editor receives them, on every instance, and they are durable
 * before the caller hears back),
 * reads threads with the text they cover now, and reports what happened.
 */
import * as Y from "yjs";
import {
  documentOfThreads,
  type Person,
  readThreads,
  THREADS,
  type Thread,
  type ThreadComment,
  threadsDocumentName,
} from "../../../editor/src/comments/model.ts";
import type { DocumentService } from "../documents/service.ts";
import { CollabError } from "../errors.ts";
import { keepThreadMark, watchThreads } from "./keep.ts";
import { anchoredTexts } from "./text.ts";
import {
  applyThreadOp,
  type CommentEvent,
  type Commenter,
  type OpOutcome,
  type ThreadOp,
} from "./threads.ts";

/** A thread with the text it covers now (empty when that text is gone: detached). */
export interface AnchoredThread extends Thread {
  readonly text: string;
}

export interface CommentsOptions {
  readonly documents: DocumentService;
  /** Called after an operation that changed something is stored, with the thread's text now. */
  readonly onEvent?: (document: string, event: CommentEvent, text: string) => void;
  readonly now?: () => number;
}

export type ThreadFilter = "open" | "resolved" | "all";

export class Comments {
  private readonly options: CommentsOptions;

  constructor(options: CommentsOptions) {
    this.options = options;
  }

  /**
   * Applies `op` to document `name` as `by`; resolves once it is stored. Refused with
   * DOCUMENT_NOT_FOUND when the document does not exist, and with the operation's own
   * errors (threads.ts).
   */
  async apply(
    name: string,
    op: ThreadOp,
    by: Commenter,
  ): Promise<{ thread: AnchoredThread | null; changed: boolean }> {
    const { documents } = this.options;
    // A threads document has no threads of its own (a request sent on its connection).
    if (documentOfThreads(name) !== null || !(await documents.exists(name))) {
      throw new CollabError("DOCUMENT_NOT_FOUND", `no document ${JSON.stringify(name)}`);
    }
    let outcome: OpOutcome | null = null;
    let text = "";
    const actor = { userId: by.role === "admin" ? null : by.person.id };
    await documents.editWithThreads(name, actor, (textDoc, threads) => {
      // A thread this deletes is forgotten by the text's keeper (and a mark it put back taken off).
      watchThreads(textDoc, threads);
      moveLegacyThreads(textDoc, threads);
      outcome = applyThreadOp(
        { text: textDoc, threads },
        op,
        by,
        this.options.now?.() ?? Date.now(),
      );
      text = anchoredTexts(textDoc).get(op.thread) ?? "";
      if (op.op === "create") {
        keepThreadMark(textDoc, op.thread, () => documents.loaded(threadsDocumentName(name)));
      }
    });
    const done = outcome as OpOutcome | null;
    if (done === null) throw new Error("the comment operation did not run");
    if (done.event !== null) this.options.onEvent?.(name, done.event, text);
    return {
      thread: done.thread === null ? null : { ...done.thread, text },
      changed: done.event !== null,
    };
  }

  /** The document's threads with their text now, oldest first; null when there is no such document. */
  async list(name: string, filter: ThreadFilter = "all"): Promise<AnchoredThread[] | null> {
    const all = await this.all(name);
    return all?.filter((thread) => filter === "all" || thread.status === filter) ?? null;
  }

  /** One thread; null when the document or the thread does not exist. */
  async get(name: string, id: string): Promise<AnchoredThread | null> {
    return (await this.all(name))?.find((thread) => thread.id === id) ?? null;
  }

  /**
   * Moves threads stored the first way, in the document's own Y.Doc (a root map `threads`
   * there), into its threads document, once. Does nothing for a document without any.
   */
  async migrate(name: string): Promise<void> {
    if (documentOfThreads(name) !== null) return;
    const text = await this.options.documents.current(name);
    if (text !== null && hasLegacyThreads(text)) await this.moveLegacy(name);
  }

  private moveLegacy(name: string): Promise<void> {
    return this.options.documents.editWithThreads(name, { userId: null }, (text, threads) =>
      moveLegacyThreads(text, threads),
    );
  }

  private async all(name: string): Promise<AnchoredThread[] | null> {
    const { documents } = this.options;
    if (documentOfThreads(name) !== null) return null;
    let text = await documents.current(name);
    if (text === null) return null;
    if (hasLegacyThreads(text)) {
      await this.moveLegacy(name);
      text = await documents.current(name);
      if (text === null) return null;
    }
    const threads = await documents.current(threadsDocumentName(name));
    return threads === null ? [] : anchored(text, threads);
  }
}

/** Whether `doc` (a document) holds threads stored the first way, in a root map of its own. */
export function hasLegacyThreads(doc: Y.Doc): boolean {
  const legacy = doc.share.get(THREADS);
  return legacy !== undefined && legacy._map.size > 0;
}

/**
 * Moves the threads of `text` stored the first way (its root map `threads`) into its threads
 * document `threads`, keeping any the threads document already has, and empties that map.
 */
export function moveLegacyThreads(text: Y.Doc, threads: Y.Doc): void {
  if (!hasLegacyThreads(text)) return;
  const legacy = text.getMap<unknown>(THREADS);
  const target = threads.getMap<Y.Map<unknown>>(THREADS);
  for (const [id, value] of legacy.entries()) {
    if (!(value instanceof Y.Map) || target.has(id)) continue;
    const copy = new Y.Map<unknown>();
    for (const [key, field] of value.entries()) {
      if (!(field instanceof Y.AbstractType)) copy.set(key, field);
    }
    target.set(id, copy);
  }
  for (const id of [...legacy.keys()]) legacy.delete(id);
}

/** Every thread of `threads` (a threads document) with its text now in `text`. */
export function anchored(text: Y.Doc, threads: Y.Doc): AnchoredThread[] {
  const texts = anchoredTexts(text);
  return readThreads(threads).map((thread) => ({ ...thread, text: texts.get(thread.id) ?? "" }));
}

/** What a webhook says of a comment event. */
export function eventPayload(
  document: string,
  event: CommentEvent,
  text: string,
): { readonly document: string } & Record<string, unknown> {
  const comment: ThreadComment | null = event.comment;
  return {
    document,
    thread: {
      id: event.thread.id,
      status: event.thread.status,
      quote: event.thread.quote,
      text,
    },
    comment:
      comment === null
        ? null
        : {
            id: comment.id,
            author: comment.author,
            body: comment.body,
            mentions: comment.mentions,
            created: new Date(comment.created).toISOString(),
            edited: comment.edited === null ? null : new Date(comment.edited).toISOString(),
          },
    author: event.actor satisfies Person,
    mentions: (comment?.mentions ?? []).map((m) => m.id),
  };
}
