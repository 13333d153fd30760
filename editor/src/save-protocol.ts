/**
 * The stored-confirmation exchange: how a client learns that the server has
 * stored every change it sent, carried in Hocuspocus stateless messages on
 * the document's own connection (so it works through any Hocuspocus
 * transport, shared sockets included). Shared by the editor and the server.
 *
 * The client asks `{"collab":"stored?","id":7}`. The server handles a
 * connection's messages in order, so when it reads the question it has
 * applied everything the client sent on that connection before it; it
 * answers `{"collab":"stored","id":7}` once all of that is durable. A
 * connection that may not change the document (a read-only token) is
 * answered at once with `{"collab":"stored","id":7,"refused":"read-only"}`:
 * its changes are never stored. A question the server cannot answer (the
 * document is being deleted or unloaded) gets no answer; the connection then
 * closes.
 *
 * Ids are chosen by the client and only matched by it; the server echoes them.
 */

/** What a client asks: "is everything I sent before this stored?" */
export interface StoredQuestion {
  /** A non-negative safe integer, echoed in the answer. */
  readonly id: number;
}

/** What the server answers. */
export interface StoredAnswer {
  readonly id: number;
  /** Null: everything the connection sent before the question is stored. Otherwise why it never will be. */
  readonly refused: "read-only" | null;
}

const QUESTION = "stored?";
const ANSWER = "stored";
/** Every payload of this exchange starts so; other stateless payloads are not parsed. */
const PREFIX = '{"collab":"stored';

/** The stateless payload asking question `id`. */
export function encodeStoredQuestion(question: StoredQuestion): string {
  return JSON.stringify({ collab: QUESTION, id: question.id });
}

/** The stateless payload answering. */
export function encodeStoredAnswer(answer: StoredAnswer): string {
  return JSON.stringify(
    answer.refused === null
      ? { collab: ANSWER, id: answer.id }
      : { collab: ANSWER, id: answer.id, refused: answer.refused },
  );
}

/** The question in a stateless payload, or null when the payload is something else. */
export function parseStoredQuestion(payload: string): StoredQuestion | null {
  const value = parse(payload);
  return value?.collab === QUESTION && isId(value.id) ? { id: value.id } : null;
}

/** The answer in a stateless payload, or null when the payload is something else. */
export function parseStoredAnswer(payload: string): StoredAnswer | null {
  const value = parse(payload);
  if (value?.collab !== ANSWER || !isId(value.id)) return null;
  if (value.refused === undefined) return { id: value.id, refused: null };
  return value.refused === "read-only" ? { id: value.id, refused: "read-only" } : null;
}

function parse(payload: string): Record<string, unknown> | null {
  if (!payload.startsWith(PREFIX)) return null;
  try {
    const value: unknown = JSON.parse(payload);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
