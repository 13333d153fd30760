/**
 * REST errors: every failure is answered as `{ "error": { "code", "message" } }`
 * with its HTTP status. CollabErrors from the layers below map to one status each.
 */
import { CollabError, type ErrorCode } from "../errors.ts";

export type ApiStatus = 400 | 401 | 403 | 404 | 405 | 409 | 412 | 413 | 415 | 422 | 500 | 503;

/** The `code` strings the API answers with. */
export type ApiErrorCode =
  | "bad_request"
  | "invalid_name"
  | "invalid_content"
  | "unauthorized"
  | "forbidden"
  | "origin_not_allowed"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "precondition_failed"
  | "payload_too_large"
  | "quota_exceeded"
  | "unsupported_media_type"
  | "unprocessable"
  | "unavailable"
  | "internal";

export class ApiError extends Error {
  readonly status: ApiStatus;
  readonly code: ApiErrorCode;

  constructor(status: ApiStatus, code: ApiErrorCode, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

const FROM_COLLAB: Partial<Record<ErrorCode, [ApiStatus, ApiErrorCode]>> = {
  CONTENT_INVALID: [400, "invalid_content"],
  CONTENT_TOO_LARGE: [413, "payload_too_large"],
  ATTACHMENT_TOO_LARGE: [413, "payload_too_large"],
  ATTACHMENT_LIMIT: [413, "quota_exceeded"],
  ATTACHMENT_NOT_FOUND: [404, "not_found"],
  DOCUMENT_NAME_INVALID: [400, "invalid_name"],
  TOKEN_MISSING: [401, "unauthorized"],
  TOKEN_INVALID: [401, "unauthorized"],
  TOKEN_EXPIRED: [401, "unauthorized"],
  ACCESS_DENIED: [403, "forbidden"],
  READ_ONLY: [403, "forbidden"],
  DOCUMENT_NOT_FOUND: [404, "not_found"],
  DOCUMENT_EXISTS: [409, "conflict"],
  DOCUMENT_PRECONDITION: [412, "precondition_failed"],
  VERSION_NOT_FOUND: [404, "not_found"],
  VERSION_EXISTS: [409, "conflict"],
  VERSION_LIMIT: [409, "conflict"],
  DOCUMENT_BUSY: [409, "conflict"],
  COMMENT_INVALID: [400, "bad_request"],
  THREAD_NOT_FOUND: [404, "not_found"],
  COMMENT_NOT_FOUND: [404, "not_found"],
  COMMENT_FORBIDDEN: [403, "forbidden"],
  THREAD_EXISTS: [409, "conflict"],
  COMMENT_LIMIT: [409, "conflict"],
  ANCHOR_AMBIGUOUS: [409, "conflict"],
  ANCHOR_NOT_FOUND: [422, "unprocessable"],
  TOO_MANY_DOCUMENTS: [503, "unavailable"],
  SERVER_BUSY: [503, "unavailable"],
  DOCUMENT_LOAD_FAILED: [503, "unavailable"],
  STORE_CLOSED: [503, "unavailable"],
  STORE_UNAVAILABLE: [503, "unavailable"],
};

/** The API error for anything a handler threw. Unknown errors are 500s (and logged by the caller). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof CollabError) {
    const mapped = FROM_COLLAB[error.code];
    if (mapped !== undefined) return new ApiError(mapped[0], mapped[1], error.message);
  }
  return new ApiError(500, "internal", "internal error; see the server log");
}
