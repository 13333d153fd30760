/**
 * Comment operations on a document (SPEC.md, COM2): the only code that writes
 * the threads of a document (editor/src/comments/model.ts). Transport-free:
 * the WebSocket handler (extension.ts) and the REST API both parse their
 * input into a {@link ThreadOp}, check who is asking, and apply it here, inside
 * one transaction on each of the live documents: the text, which carries the
 * threads' marks, and its threads document, which holds the threads.
 *
 * Who may do what:
 * - anyone who may comment (`comment` or `write`) creates threads, replies,
 *   resolves and reopens;
 * - a comment's text is edited or deleted only by its author (the API secret
 *   may delete any); a thread is deleted by its author, a writer, or the API
 *   secret;
 * - the author of what is written is the caller's identity, never a field of
 *   the request (with tokens: the token's `sub` and `name`).
 *
 * Operations carry ids the client chose, so a client that sends one again (its
 * answer was lost in a reconnect) gets the same result, not a copy.
 */
import * as Y from "yjs";
import {
  COMMENT_KEY_PREFIX,
  MAX_COMMENTS_PER_THREAD,
  MAX_QUOTE_CHARS,
  MAX_THREADS,
  type Mention,
  type Person,
  readThread,
  THREADS,
  type Thread,
  type ThreadComment,
} from "../../../editor/src/comments/model.ts";
import type { CommentOperation } from "../../../editor/src/comments/protocol.ts";
import { CollabError } from "../errors.ts";
import { type Anchor, resolveAnchor } from "./anchor.ts";
import { anchoredTexts, flatten, markRange, unmarkThread } from "./text.ts";

/** One change to a document's threads: what clients send (protocol.ts), the anchor resolved. */
export type ThreadOp =
  | Exclude<CommentOperation, { readonly op: "create" }>
  /** A new thread: the editor anchors it by relative positions, the REST API by a quote. */
  | (Omit<Extract<CommentOperation, { readonly op: "create" }>, "anchor"> & {
      readonly anchor: Anchor;
    });

/** Who applies an operation, and with what standing. */
export interface Commenter {
  readonly person: Person;
  /** `comment` and `write` from tokens (or anonymous mode), `admin` for the API secret. */
  readonly role: "comment" | "write" | "admin";
}

export type CommentEventType =
  | "comment.created"
  | "comment.updated"
  | "comment.deleted"
  | "thread.resolved"
  | "thread.reopened"
  | "thread.deleted";

/** What an operation did, for webhooks and the editor's events. */
export interface CommentEvent {
  readonly type: CommentEventType;
  readonly thread: Thread;
  /** The comment created, edited or deleted (as it was); null for thread events. */
  readonly comment: ThreadComment | null;
  readonly actor: Person;
}

export interface OpOutcome {
  /** The thread after the operation; null once deleted. */
  readonly thread: Thread | null;
  /** Null when the operation changed nothing (sent again, or already so). */
  readonly event: CommentEvent | null;
}

/** The two documents an operation writes: the text (marks) and its threads document. */
export interface ThreadDocs {
  readonly text: Y.Doc;
  readonly threads: Y.Doc;
}

/**
 * Applies `op` to `docs` as `by` at time `now` (ms). Call inside a transaction on each of the
 * live documents. Throws CollabError, before changing anything: THREAD_NOT_FOUND,
 * COMMENT_NOT_FOUND, COMMENT_FORBIDDEN, THREAD_EXISTS, ANCHOR_NOT_FOUND, ANCHOR_AMBIGUOUS,
 * COMMENT_LIMIT (more than MAX_THREADS in the document or MAX_COMMENTS_PER_THREAD in a thread).
 */
export function applyThreadOp(
  docs: ThreadDocs,
  op: ThreadOp,
  by: Commenter,
  now: number,
): OpOutcome {
  const threads = docs.threads.getMap<Y.Map<unknown>>(THREADS);
  if (op.op === "create") return create(docs.text, threads, op, by, now);
  const map = threads.get(op.thread);
  const before = map instanceof Y.Map ? readThread(map) : null;
  if (map === undefined || before === null) {
    throw new CollabError("THREAD_NOT_FOUND", `no thread ${JSON.stringify(op.thread)}`);
  }
  switch (op.op) {
    case "reply": {
      const existing = before.comments.find((c) => c.id === op.comment);
      if (existing !== undefined) return replayed(before, existing, by, op.body);
      if (before.comments.length >= MAX_COMMENTS_PER_THREAD) {
        throw new CollabError(
          "COMMENT_LIMIT",
          `thread ${JSON.stringify(op.thread)} has ${before.comments.length} comments, the most one thread keeps; start a new thread`,
        );
      }
      const comment = newComment(op.comment, by.person, op.body, op.mentions, now);
      map.set(COMMENT_KEY_PREFIX + op.comment, comment);
      return changed(map, "comment.created", comment, by);
    }
    case "edit": {
      const existing = commentOf(before, op.comment);
      if (!sameAuthor(existing, by)) {
        throw new CollabError("COMMENT_FORBIDDEN", "only its author may edit a comment");
      }
      if (existing.body === op.body && sameMentions(existing.mentions, op.mentions)) {
        return { thread: before, event: null };
      }
      const comment: ThreadComment = {
        ...existing,
        body: op.body,
        mentions: [...op.mentions],
        edited: now,
      };
      map.set(COMMENT_KEY_PREFIX + op.comment, comment);
      return changed(map, "comment.updated", comment, by);
    }
    case "delete-comment": {
      const existing = before.comments.find((c) => c.id === op.comment);
      if (existing === undefined) {
        throw new CollabError("COMMENT_NOT_FOUND", `no comment ${JSON.stringify(op.comment)}`);
      }
      if (by.role !== "admin" && !sameAuthor(existing, by)) {
        throw new CollabError("COMMENT_FORBIDDEN", "only its author may delete a comment");
      }
      if (before.comments.length === 1) {
        // A thread with no comment left is gone, and so is its mark.
        deleteThread(docs.text, threads, op.thread);
        return {
          thread: null,
          event: { type: "comment.deleted", thread: before, comment: existing, actor: by.person },
        };
      }
      map.delete(COMMENT_KEY_PREFIX + op.comment);
      return changed(map, "comment.deleted", existing, by);
    }
    case "resolve":
    case "reopen": {
      const status = op.op === "resolve" ? "resolved" : "open";
      if (before.status === status) return { thread: before, event: null };
      map.set("status", status);
      map.set("statusBy", { ...by.person });
      map.set("statusAt", now);
      return changed(map, status === "resolved" ? "thread.resolved" : "thread.reopened", null, by);
    }
    case "delete-thread": {
      if (by.role === "comment" && before.author.id !== by.person.id) {
        throw new CollabError(
          "COMMENT_FORBIDDEN",
          "only its author or someone who may edit the document may delete a thread",
        );
      }
      deleteThread(docs.text, threads, op.thread);
      return {
        thread: null,
        event: { type: "thread.deleted", thread: before, comment: null, actor: by.person },
      };
    }
  }
}

function create(
  doc: Y.Doc,
  threads: Y.Map<Y.Map<unknown>>,
  op: Extract<ThreadOp, { op: "create" }>,
  by: Commenter,
  now: number,
): OpOutcome {
  const existing = threads.get(op.thread);
  if (existing !== undefined) {
    const thread = existing instanceof Y.Map ? readThread(existing) : null;
    const first = thread?.comments.find((c) => c.id === op.comment);
    if (thread !== null && first !== undefined && thread.author.id === by.person.id) {
      const outcome = replayed(thread, first, by, op.body);
      // The threads document and the text are stored one after the other: a crash between
      // them can keep the thread without its mark. Sent again, the creation marks its text.
      if (!anchoredTexts(doc).has(op.thread)) remark(doc, op.anchor, op.thread);
      return outcome;
    }
    throw new CollabError("THREAD_EXISTS", `a thread ${JSON.stringify(op.thread)} exists`);
  }
  if (threads.size >= MAX_THREADS) {
    throw new CollabError(
      "COMMENT_LIMIT",
      `the document has ${threads.size} threads, the most it keeps; delete resolved threads first`,
    );
  }
  const flat = flatten(doc);
  const range = resolveAnchor(doc, flat, op.anchor);
  const comment = newComment(op.comment, by.person, op.body, op.mentions, now);
  const map = new Y.Map<unknown>();
  map.set("id", op.thread);
  map.set("author", { ...by.person });
  map.set("created", now);
  map.set("quote", flat.text.slice(range.from, range.to).slice(0, MAX_QUOTE_CHARS));
  map.set("status", "open");
  map.set(COMMENT_KEY_PREFIX + op.comment, comment);
  threads.set(op.thread, map);
  markRange(flat, range, op.thread, true);
  return changed(map, "comment.created", comment, by);
}

/** Marks the text `anchor` finds, if it still finds any (none when its text is gone). */
function remark(doc: Y.Doc, anchor: Anchor, thread: string): void {
  const flat = flatten(doc);
  let range: { from: number; to: number };
  try {
    range = resolveAnchor(doc, flat, anchor);
  } catch {
    return;
  }
  if (range.to > range.from) markRange(flat, range, thread, true);
}

function deleteThread(doc: Y.Doc, threads: Y.Map<Y.Map<unknown>>, id: string): void {
  unmarkThread(doc, id);
  threads.delete(id);
}

function newComment(
  id: string,
  author: Person,
  body: string,
  mentions: readonly Mention[],
  now: number,
): ThreadComment {
  return { id, author: { ...author }, body, mentions: [...mentions], created: now, edited: null };
}

function commentOf(thread: Thread, id: string): ThreadComment {
  const comment = thread.comments.find((c) => c.id === id);
  if (comment === undefined) {
    throw new CollabError("COMMENT_NOT_FOUND", `no comment ${JSON.stringify(id)}`);
  }
  return comment;
}

function sameAuthor(comment: ThreadComment, by: Commenter): boolean {
  return comment.author.id === by.person.id;
}

function sameMentions(a: readonly Mention[], b: readonly Mention[]): boolean {
  return a.length === b.length && a.every((m, i) => m.id === b[i]?.id && m.label === b[i]?.label);
}

/** The same comment sent again: its result, once more, if it is the same; a conflict otherwise. */
function replayed(thread: Thread, comment: ThreadComment, by: Commenter, body: string): OpOutcome {
  if (comment.author.id !== by.person.id || comment.body !== body) {
    throw new CollabError("THREAD_EXISTS", `a comment ${JSON.stringify(comment.id)} exists`);
  }
  return { thread, event: null };
}

function changed(
  map: Y.Map<unknown>,
  type: CommentEventType,
  comment: ThreadComment | null,
  by: Commenter,
): OpOutcome {
  const thread = readThread(map);
  if (thread === null) throw new Error("a thread just written does not read back");
  return { thread, event: { type, thread, comment, actor: by.person } };
}
