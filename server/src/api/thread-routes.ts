/**
 * The REST routes of comment threads (SPEC.md, COM5): list, read, create by
 * quote, reply, edit, delete, resolve and reopen. Each change goes through
 * the same operations as the editor's (comments/threads.ts), reaches
 * connected editors live and is stored before the answer.
 */
import { randomBytes } from "node:crypto";
import type {
  ThreadComment as Comment,
  Mention,
  Person,
} from "../../../editor/src/comments/model.ts";
import type { AnchoredThread } from "../comments/comments.ts";
import { ANONYMOUS } from "../comments/extension.ts";
import type { Commenter } from "../comments/threads.ts";
import type { Caller } from "./caller.ts";
import { ApiError } from "./errors.ts";
import { jsonOf, parse } from "./input.ts";
import type { Route, RouteContext } from "./routes.ts";
import {
  CommentAnswer,
  CommentEdit,
  NewComment,
  NewThread,
  ThreadAnswer,
  ThreadList,
  ThreadPatch,
  ThreadQuery,
} from "./schemas.ts";

const JSON_BODY = ["application/json"] as const;

export const THREAD_ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/documents/{name}/threads",
    operationId: "listThreads",
    summary: "The document's comment threads, oldest first, each with the text it covers now",
    need: "read",
    query: ThreadQuery,
    responses: { 200: { description: "The threads", schema: ThreadList } },
    async handle({ params, query, comments }) {
      const { status } = parse(ThreadQuery, query);
      const threads = await comments.list(params.name ?? "", status);
      if (threads === null) throw documentNotFound(params.name);
      return { status: 200, json: { threads: threads.map(threadJson) } };
    },
  },
  {
    method: "POST",
    path: "/documents/{name}/threads",
    operationId: "createThread",
    summary: "Start a thread on the text a quote designates, with its first comment",
    need: "comment",
    body: { types: JSON_BODY, schema: NewThread, required: true },
    responses: { 201: { description: "Created", schema: CommentAnswer } },
    async handle({ params, body, caller, comments }) {
      const input = parse(NewThread, jsonOf(body));
      const thread = newId();
      const comment = newId();
      const { thread: created } = await comments.apply(
        params.name ?? "",
        {
          op: "create",
          thread,
          comment,
          anchor: { kind: "quote", ...input.anchor },
          body: input.body,
          mentions: mentionsOf(input.mentions),
        },
        commenter(caller, input.author),
      );
      return commentAnswer(201, created, comment);
    },
  },
  {
    method: "GET",
    path: "/documents/{name}/threads/{thread}",
    operationId: "getThread",
    summary: "One thread",
    need: "read",
    responses: { 200: { description: "The thread", schema: ThreadAnswer } },
    async handle({ params, comments }) {
      return { status: 200, json: { thread: threadJson(await existing(params, comments)) } };
    },
  },
  {
    method: "PATCH",
    path: "/documents/{name}/threads/{thread}",
    operationId: "updateThread",
    summary: "Resolve or reopen a thread",
    need: "comment",
    body: { types: JSON_BODY, schema: ThreadPatch, required: true },
    responses: { 200: { description: "Updated", schema: ThreadAnswer } },
    async handle({ params, body, caller, comments }) {
      const { status } = parse(ThreadPatch, jsonOf(body));
      const { thread } = await apply(params, comments, caller, {
        op: status === "resolved" ? "resolve" : "reopen",
        thread: params.thread ?? "",
      });
      return { status: 200, json: { thread: threadJson(present(thread)) } };
    },
  },
  {
    method: "DELETE",
    path: "/documents/{name}/threads/{thread}",
    operationId: "deleteThread",
    summary:
      "Delete a thread with its comments and its mark in the text (its author, a writer, or the API secret)",
    need: "comment",
    responses: { 204: { description: "Deleted" } },
    async handle({ params, caller, comments }) {
      await apply(params, comments, caller, { op: "delete-thread", thread: params.thread ?? "" });
      return { status: 204 };
    },
  },
  {
    method: "POST",
    path: "/documents/{name}/threads/{thread}/comments",
    operationId: "replyToThread",
    summary: "Reply to a thread",
    need: "comment",
    body: { types: JSON_BODY, schema: NewComment, required: true },
    responses: { 201: { description: "Created", schema: CommentAnswer } },
    async handle({ params, body, caller, comments }) {
      const input = parse(NewComment, jsonOf(body));
      const comment = newId();
      const { thread } = await apply(
        params,
        comments,
        caller,
        {
          op: "reply",
          thread: params.thread ?? "",
          comment,
          body: input.body,
          mentions: mentionsOf(input.mentions),
        },
        input.author,
      );
      return commentAnswer(201, thread, comment);
    },
  },
  {
    method: "PATCH",
    path: "/documents/{name}/threads/{thread}/comments/{comment}",
    operationId: "editComment",
    summary: "Edit a comment's text (its author only)",
    need: "comment",
    body: { types: JSON_BODY, schema: CommentEdit, required: true },
    responses: { 200: { description: "Edited", schema: CommentAnswer } },
    async handle({ params, body, caller, comments }) {
      const input = parse(CommentEdit, jsonOf(body));
      const { thread } = await apply(params, comments, caller, {
        op: "edit",
        thread: params.thread ?? "",
        comment: params.comment ?? "",
        body: input.body,
        mentions: mentionsOf(input.mentions),
      });
      return commentAnswer(200, thread, params.comment ?? "");
    },
  },
  {
    method: "DELETE",
    path: "/documents/{name}/threads/{thread}/comments/{comment}",
    operationId: "deleteComment",
    summary: "Delete a comment (its author, or the API secret); a thread left with none is deleted",
    need: "comment",
    responses: { 204: { description: "Deleted" } },
    async handle({ params, caller, comments }) {
      await apply(params, comments, caller, {
        op: "delete-comment",
        thread: params.thread ?? "",
        comment: params.comment ?? "",
      });
      return { status: 204 };
    },
  },
];

type Params = RouteContext["params"];

async function existing(
  params: Params,
  comments: RouteContext["comments"],
): Promise<AnchoredThread> {
  const thread = await comments.get(params.name ?? "", params.thread ?? "");
  if (thread !== null) return thread;
  if ((await comments.list(params.name ?? "")) === null) throw documentNotFound(params.name);
  throw new ApiError(404, "not_found", `no thread ${JSON.stringify(params.thread)}`);
}

function apply(
  params: Params,
  comments: RouteContext["comments"],
  caller: Caller,
  op: Parameters<RouteContext["comments"]["apply"]>[1],
  author?: Person,
) {
  return comments.apply(params.name ?? "", op, commenter(caller, author));
}

/**
 * Who writes: the token's user (an `author` naming anyone else is refused), or with the
 * API secret and in anonymous mode the `author` given.
 */
function commenter(caller: Caller, author: Person | undefined): Commenter {
  switch (caller.kind) {
    case "admin":
      return { person: author ?? { id: "api", name: "API" }, role: "admin" };
    case "anonymous":
      return { person: author ?? ANONYMOUS, role: "write" };
    case "link":
      throw new ApiError(403, "forbidden", "a signed link opens only its document's attachments");
    case "user": {
      const { grant } = caller;
      if (author !== undefined && author.id !== grant.userId) {
        throw new ApiError(403, "forbidden", "a token may only write as its own user (sub)");
      }
      if (grant.perm === "read") {
        throw new ApiError(403, "forbidden", "the token may read this document but not comment");
      }
      return { person: { id: grant.userId, name: grant.name ?? grant.userId }, role: grant.perm };
    }
  }
}

function mentionsOf(input: ReadonlyArray<string | Mention> | undefined): Mention[] {
  return (input ?? []).map((m) => (typeof m === "string" ? { id: m, label: m } : m));
}

function present(thread: AnchoredThread | null): AnchoredThread {
  if (thread === null) throw new Error("the thread is gone after the operation");
  return thread;
}

function commentAnswer(status: number, thread: AnchoredThread | null, commentId: string) {
  const found = present(thread);
  const comment = found.comments.find((c) => c.id === commentId);
  if (comment === undefined) throw new Error("the comment is missing after the operation");
  return { status, json: { thread: threadJson(found), comment: commentJson(comment) } };
}

/** A new thread or comment id: 16 characters of base64url (96 random bits). */
function newId(): string {
  return randomBytes(12).toString("base64url");
}

function documentNotFound(name: string | undefined): ApiError {
  return new ApiError(404, "not_found", `no document ${JSON.stringify(name)}`);
}

const iso = (ms: number) => new Date(ms).toISOString();

export function threadJson(thread: AnchoredThread) {
  return {
    id: thread.id,
    status: thread.status,
    anchor: { quote: thread.quote, text: thread.text },
    author: thread.author,
    created: iso(thread.created),
    statusBy: thread.statusBy,
    statusAt: thread.statusAt === null ? null : iso(thread.statusAt),
    comments: thread.comments.map(commentJson),
  };
}

function commentJson(comment: Comment) {
  return {
    id: comment.id,
    author: comment.author,
    body: comment.body,
    mentions: comment.mentions,
    created: iso(comment.created),
    edited: comment.edited === null ? null : iso(comment.edited),
  };
}
