/**
 * Errors and close codes: the one typed error class that reaches callers, and
 * the WebSocket close codes the server uses, each with a name and a reason.
 */

/** Every error code the server raises to callers. Match on `code`, never on message text. */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "DATA_DIR_LOCKED"
  | "STORE_CLOSED"
  | "STORE_CORRUPT"
  | "STORE_UNAVAILABLE"
  | "DOCUMENT_NAME_INVALID"
  | "DOCUMENT_LOAD_FAILED"
  | "TOO_MANY_DOCUMENTS"
  | "PROTOCOL_ERROR"
  | "AUTH_MISCONFIGURED"
  | "TOKEN_MISSING"
  | "TOKEN_INVALID"
  | "TOKEN_EXPIRED"
  | "ACCESS_DENIED"
  | "READ_ONLY"
  | "CONTENT_INVALID"
  /** Content within the byte limit that unpacks or expands past another limit (a zip bomb). */
  | "CONTENT_TOO_LARGE"
  | "DOCUMENT_NOT_FOUND"
  | "DOCUMENT_EXISTS"
  | "DOCUMENT_PRECONDITION"
  | "DOCUMENT_BUSY"
  | "SERVER_BUSY"
  | "VERSION_NOT_FOUND"
  | "VERSION_EXISTS"
  | "VERSION_LIMIT"
  | "BACKUP_INVALID"
  /** A comment operation that does not parse (bad ids, empty body, ...). */
  | "COMMENT_INVALID"
  /** No thread or comment with that id. */
  | "THREAD_NOT_FOUND"
  | "COMMENT_NOT_FOUND"
  /** The caller may not do this to that thread or comment (someone else's, or no comment permission). */
  | "COMMENT_FORBIDDEN"
  /** A thread with that id exists and differs from the one being created. */
  | "THREAD_EXISTS"
  | "COMMENT_LIMIT"
  /** A thread's anchor matches no text now. */
  | "ANCHOR_NOT_FOUND"
  /** A quote anchor matches several places; add a prefix or suffix. */
  | "ANCHOR_AMBIGUOUS"
  /** An upload larger than MAX_ATTACHMENT_BYTES. */
  | "ATTACHMENT_TOO_LARGE"
  /** An upload past a document's attachment count or bytes. */
  | "ATTACHMENT_LIMIT"
  | "ATTACHMENT_NOT_FOUND";

/**
 * The server's error: a stable `code` plus a human-readable message. When it
 * refuses a document to a client, `reason` is what the client is told
 * (Hocuspocus sends it in its permission-denied message); the message, which
 * may name internals, stays in the server log.
 */
export class CollabError extends Error {
  readonly code: ErrorCode;
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; reason?: string }) {
    super(message, options);
    this.name = "CollabError";
    this.code = code;
    this.reason = options?.reason;
  }
}

/** True when `error` is a {@link CollabError}, optionally with the given code. */
export function isCollabError(error: unknown, code?: ErrorCode): error is CollabError {
  return error instanceof CollabError && (code === undefined || error.code === code);
}

/** A WebSocket close code with its name and the reason sent to the client. */
export interface CloseCode {
  readonly code: number;
  readonly reason: string;
}

/**
 * Close codes sent on the WebSocket. 1xxx are RFC 6455 codes; 4xxx are ours.
 * A reason is at most 123 bytes (RFC 6455, 5.5: control frame payload minus the code).
 */
export const Close = {
  /** The server is shutting down; the provider reconnects to another instance or later. */
  goingAway: { code: 1001, reason: "server shutting down" },
  /** A frame that does not parse as a Hocuspocus/Yjs message. */
  protocolError: { code: 1002, reason: "protocol error" },
  /** Text frames are not part of the protocol. */
  unsupportedData: { code: 1003, reason: "text frames are not supported" },
  /** Bytes that parse structurally but carry invalid data (bad UTF-8, bad JSON). */
  invalidPayload: { code: 1007, reason: "invalid payload" },
  /** A single message larger than MAX_MESSAGE_BYTES. */
  messageTooBig: { code: 1009, reason: "message too big" },
  /**
   * Handling a message threw: a bug, not the client's fault. Only the
   * connection that sent it is closed; the process and everyone else go on.
   */
  internalError: { code: 1011, reason: "internal error" },
  /** The session's token expired; the provider reconnects and fetches a fresh one. */
  tokenExpired: { code: 4401, reason: "token-expired" },
  /**
   * The document was deleted through the REST API, or the client holds the
   * state of a deleted document. Final: y-websocket does not reconnect.
   */
  documentDeleted: { code: 4410, reason: "document-deleted" },
  /**
   * A trashed document was restored into the (empty) document the client had
   * open: it opens the document again. Outside 4400-4499, so y-websocket
   * reconnects.
   */
  documentRestored: { code: 4501, reason: "document-restored" },
} as const satisfies Record<string, CloseCode>;

/** Reasons sent in a per-document refusal (Hocuspocus' permission-denied message). */
export const Refusal = {
  invalidName: "invalid-document-name",
  tooManyDocuments: "too-many-documents",
  loadFailed: "document-load-failed",
  accessDenied: "access-denied",
  documentDeleted: "document-deleted",
  /**
   * The document is being deleted or restored this moment: try again shortly.
   * Not final (the deletion may yet fail, and a restore ends with a document).
   */
  documentBusy: "document-busy",
} as const;

/**
 * Thrown from a `beforeSync` hook to make Hocuspocus close the document's connection
 * with `code` and `reason` and drop what the connection queued behind it (the state of
 * a deleted document, an update that writes threads). Not an Error, and without a
 * message: Hocuspocus then does not print it as a hook failure (main.ts leaves it to
 * the hook, which logs the refusal at info).
 */
export class RefusedSync {
  readonly code: number;
  readonly reason: string;

  constructor(code: number, reason: string) {
    this.code = code;
    this.reason = reason;
  }
}

/** Cuts a close reason to the 123 bytes RFC 6455 allows, on a character boundary. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  let cut = text;
  while (new TextEncoder().encode(cut).length > 120) cut = cut.slice(0, -1);
  return `${cut}...`;
}
