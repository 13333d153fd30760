/**
 * How an editor asks the server to change threads: Hocuspocus stateless
 * messages on the document's own connection, like the stored-confirmation
 * exchange (save-protocol.ts). Shared by the editor and the server.
 *
 * The client sends `{"collab":"comment","id":7,"op":{...},"as":{...}}`; the
 * server applies the operation, waits until it is stored, and answers
 * `{"collab":"commented","id":7}`, or at once
 * `{"collab":"commented","id":7,"error":{"code":"...","message":"..."}}`.
 * `as` names the user in anonymous mode; with tokens the server uses the
 * token's user and ignores it. The server handles a connection's messages in
 * order, so an operation sent after the client's sync sees everything the
 * client had (a thread made offline, on text typed offline, finds its text).
 */
import type { Mention, Person } from "./model.ts";

/** A relative position as `Y.relativePositionToJSON` writes it. */
export type RelativePositionJSON = Record<string, unknown>;

/** What the editor sends (the server's parser is server/src/comments/wire.ts). */
export type CommentOperation =
  | {
      readonly op: "create";
      readonly thread: string;
      readonly comment: string;
      readonly anchor: { readonly start: RelativePositionJSON; readonly end: RelativePositionJSON };
      readonly body: string;
      readonly mentions: readonly Mention[];
    }
  | {
      readonly op: "reply" | "edit";
      readonly thread: string;
      readonly comment: string;
      readonly body: string;
      readonly mentions: readonly Mention[];
    }
  | { readonly op: "delete-comment"; readonly thread: string; readonly comment: string }
  | { readonly op: "resolve" | "reopen" | "delete-thread"; readonly thread: string };

export interface CommentRequest {
  /** A non-negative safe integer, echoed in the answer. */
  readonly id: number;
  readonly op: CommentOperation;
  /** The user, in anonymous mode. */
  readonly as?: Person;
}

export interface CommentAnswer {
  readonly id: number;
  /** Null: applied and stored. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/**
 * What the server tells a connection once it may read the document: its permission and,
 * with tokens, who it is (the author the server will record), so an editor can offer
 * commenting to commenters and editing of their own comments.
 * `{"collab":"access","perm":"comment","user":{"id":"ann","name":"Ann"}}`
 */
export interface AccessInfo {
  readonly perm: "read" | "comment" | "write";
  /** Null in anonymous mode: the client names itself. */
  readonly user: Person | null;
}

const ACCESS = "access";

export function encodeAccess(access: AccessInfo): string {
  return JSON.stringify({ collab: ACCESS, perm: access.perm, user: access.user });
}

export function parseAccess(payload: string): AccessInfo | null {
  if (!payload.startsWith(`{"collab":"${ACCESS}"`)) return null;
  try {
    const value = JSON.parse(payload) as { perm?: unknown; user?: unknown };
    const perm = value.perm;
    if (perm !== "read" && perm !== "comment" && perm !== "write") return null;
    const user = value.user as { id?: unknown; name?: unknown } | null | undefined;
    return {
      perm,
      user:
        user !== null && typeof user?.id === "string" && typeof user.name === "string"
          ? { id: user.id, name: user.name }
          : null,
    };
  } catch {
    return null;
  }
}

export const REQUEST = "comment";
export const ANSWER = "commented";
const ANSWER_PREFIX = `{"collab":"${ANSWER}"`;

export function encodeCommentRequest(request: CommentRequest): string {
  return JSON.stringify({ collab: REQUEST, ...request });
}

export function encodeCommentAnswer(answer: CommentAnswer): string {
  return JSON.stringify(
    answer.error === null
      ? { collab: ANSWER, id: answer.id }
      : { collab: ANSWER, id: answer.id, error: answer.error },
  );
}

/** The answer in a stateless payload, or null when the payload is something else. */
export function parseCommentAnswer(payload: string): CommentAnswer | null {
  if (!payload.startsWith(ANSWER_PREFIX)) return null;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { id, error } = value as { id?: unknown; error?: unknown };
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) return null;
  if (error === undefined) return { id, error: null };
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return typeof code === "string" && typeof message === "string"
    ? { id, error: { code, message } }
    : null;
}
