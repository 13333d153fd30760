/**
 * What the editor tells its user about the connection, access and saving, as
 * values a UI can render with an exhaustive switch.
 */

/**
 * Why the server refused a document, as the user should understand it:
 *
 * - `token-missing`: the server needs a token and none was given (or the
 *   `token` function failed);
 * - `token-invalid`: the token is not one this server accepts (bad signature,
 *   not a JWT, bad claims);
 * - `token-expired`: the token was valid but has expired;
 * - `no-access`: the token is valid but does not grant this document;
 * - `invalid-name`: the document name cannot be used;
 * - `deleted`: the document was deleted while open;
 * - `unavailable`: the server cannot open the document right now (too many
 *   open, or loading failed);
 * - `other`: a reason this editor does not know.
 */
export type AccessProblem =
  | "token-missing"
  | "token-invalid"
  | "token-expired"
  | "no-access"
  | "invalid-name"
  | "deleted"
  | "unavailable"
  | "other";

/** The connection, as the user should understand it. */
export type ConnectionState =
  | { readonly kind: "connecting" }
  /**
   * Connected. `readOnly` is true when the server grants this connection only
   * read access (a `perm: read` token): the editor is then not editable.
   */
  | { readonly kind: "connected"; readonly readOnly: boolean }
  /** No connection; edits are kept on this device (when offline storage is on) and merge later. */
  | { readonly kind: "offline"; readonly keptOnDevice: boolean }
  /**
   * The server refused this document. `reason` is the server's own text
   * (e.g. `token-expired: the token expired at ...`); {@link explainDenial}
   * says what it means for people.
   */
  | { readonly kind: "denied"; readonly reason: string };

/** Saving: `saved` only once the server has stored every local change. */
export type SaveState =
  | { readonly kind: "saving"; readonly pending: number }
  | { readonly kind: "saved" };

/** Known reason prefixes (the text before the first colon) and what they mean. */
const PROBLEMS: Readonly<Record<string, AccessProblem>> = {
  "token-missing": "token-missing",
  "token-invalid": "token-invalid",
  "token-expired": "token-expired",
  "access-denied": "no-access",
  "permission-denied": "no-access",
  "invalid-document-name": "invalid-name",
  "document-deleted": "deleted",
  "too-many-documents": "unavailable",
  "document-load-failed": "unavailable",
};

/** The provider's own reason when the `token` function throws. */
const TOKEN_FUNCTION_FAILED = "Failed to get token";

/** A refusal as people should understand it. */
export interface Denial {
  readonly problem: AccessProblem;
  /** One or two sentences for people, without the server's jargon. */
  readonly message: string;
}

/**
 * What a refusal `reason`, as the server (or the provider) gave it, means.
 *
 * @example
 * explainDenial("token-expired: the token expired at 2030-01-01T00:00:00.000Z")
 * // { problem: "token-expired",
 * //   message: "Your access token expired on 1/1/2030, 12:00:00 AM. Ask for a new one." }
 */
export function explainDenial(reason: string): Denial {
  const colon = reason.indexOf(":");
  const code = (colon === -1 ? reason : reason.slice(0, colon)).trim();
  const detail = colon === -1 ? "" : reason.slice(colon + 1).trim();
  if (reason.startsWith(TOKEN_FUNCTION_FAILED)) {
    return {
      problem: "token-missing",
      message: "Could not get an access token for this document. Try again later.",
    };
  }
  const problem = PROBLEMS[code] ?? "other";
  return { problem, message: explain(problem, code, detail) };
}

function explain(problem: AccessProblem, code: string, detail: string): string {
  switch (problem) {
    case "token-missing":
      return "You need an access token to open this document.";
    case "token-invalid":
      return `The access token is not valid${detail ? ` (${detail})` : ""}. Check that it was copied whole, or ask for a new one.`;
    case "token-expired": {
      const at = /\d{4}-\d\d-\d\dT[\d:.]+Z/.exec(detail)?.[0];
      const when = at === undefined ? "" : ` on ${new Date(at).toLocaleString()}`;
      return `Your access token expired${when}. Ask for a new one.`;
    }
    case "no-access":
      return "Your access token does not give access to this document.";
    case "invalid-name":
      return `This document name cannot be used${detail ? `: ${detail}` : ""}.`;
    case "deleted":
      return "This document was deleted.";
    case "unavailable":
      return code === "too-many-documents"
        ? "The server has too many documents open to open this one. Try again later."
        : "The server could not load this document. Try again later.";
    case "other":
      return `The server refused this document${code ? ` (${code})` : ""}.`;
  }
}

/** One line for a status bar; a refusal keeps the server's own reason. */
export function describeConnection(state: ConnectionState): string {
  switch (state.kind) {
    case "connecting":
      return "Connecting…";
    case "connected":
      return state.readOnly ? "Connected — read only" : "Connected";
    case "offline":
      return state.keptOnDevice ? "Offline — changes are kept on this device" : "Offline";
    case "denied":
      return explainDenial(state.reason).problem === "deleted"
        ? "Deleted — showing the copy on this device"
        : `Access denied (${state.reason})`;
  }
}

export function describeSave(state: SaveState): string {
  switch (state.kind) {
    case "saving":
      return "Saving…";
    case "saved":
      return "All changes saved";
  }
}
