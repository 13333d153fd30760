/**
 * Parses what clients send about threads (editor/src/comments/protocol.ts) and
 * the pieces the REST API shares with it: ids, bodies, mentions, people.
 * Everything is checked here, so the operations (threads.ts) only ever see
 * well-formed input.
 */
import { z } from "zod";
import {
  ID_PATTERN,
  MAX_BODY_CHARS,
  MAX_MENTIONS,
  type Person,
} from "../../../editor/src/comments/model.ts";
import { REQUEST } from "../../../editor/src/comments/protocol.ts";
import { CollabError } from "../errors.ts";
import type { ThreadOp } from "./threads.ts";

export const Id = z.string().regex(ID_PATTERN, "1 to 64 letters, digits, - or _");
export const Body = z
  .string()
  .max(MAX_BODY_CHARS)
  .refine((body) => body.trim().length > 0, "a comment needs some text");
export const MentionSchema = z.object({
  id: z.string().min(1).max(256),
  label: z.string().min(1).max(256),
});
export const Mentions = z.array(MentionSchema).max(MAX_MENTIONS);
export const PersonSchema = z.object({
  id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
});
const Relative = z.record(z.string(), z.unknown());

const Operation = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("create"),
    thread: Id,
    comment: Id,
    anchor: z.object({ start: Relative, end: Relative }),
    body: Body,
    mentions: Mentions.default([]),
  }),
  z.object({
    op: z.enum(["reply", "edit"]),
    thread: Id,
    comment: Id,
    body: Body,
    mentions: Mentions.default([]),
  }),
  z.object({ op: z.literal("delete-comment"), thread: Id, comment: Id }),
  z.object({ op: z.enum(["resolve", "reopen", "delete-thread"]), thread: Id }),
]);

const Request = z.object({
  collab: z.literal(REQUEST),
  id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  op: Operation,
  as: PersonSchema.optional(),
});

const PREFIX = `{"collab":"${REQUEST}"`;

/** A parsed request: its id (to answer), and the operation or why it does not parse. */
export type ParsedRequest =
  | { readonly id: number; readonly op: ThreadOp; readonly as: Person | null }
  | { readonly id: number; readonly error: CollabError };

/** The comment request in a stateless payload, or null when the payload is something else. */
export function parseCommentRequest(payload: string): ParsedRequest | null {
  if (!payload.startsWith(PREFIX)) return null;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  const id = (value as { id?: unknown } | null)?.id;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) return null;
  const parsed = Request.safeParse(value);
  if (!parsed.success) {
    return { id, error: new CollabError("COMMENT_INVALID", describeIssues(parsed.error)) };
  }
  const { op, as } = parsed.data;
  const operation: ThreadOp =
    op.op === "create"
      ? { ...op, anchor: { kind: "relative", start: op.anchor.start, end: op.anchor.end } }
      : op;
  return { id, op: operation, as: as ?? null };
}

/** zod's issues as one line. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join(".") || "request"}: ${issue.message}`)
    .join("; ");
}
