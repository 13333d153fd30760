/**
 * The Hocuspocus extension that enforces access per document: every
 * document a connection opens is authenticated on its own (Hocuspocus sends
 * a token per document), so a refusal closes that document only and other
 * documents on the same socket are unaffected.
 *
 * - Token mode: the token must verify, cover the document, and not be
 *   expired. `perm: read` and `perm: comment` make the connection read-only
 *   (a commenter's comments are requests, comments/extension.ts): Hocuspocus then
 *   applies none of its updates (it answers them with a failed sync status),
 *   so they are never stored or relayed; awareness still flows.
 * - When a token expires during a session the socket is closed with
 *   {@link Close.tokenExpired}; the provider reconnects and asks its `token`
 *   function for a fresh one.
 * - Anonymous mode: everyone may write; nothing to check.
 * - A document's threads document is opened with the document's access, and
 *   read-only for everyone: only the server writes threads.
 */
import type { connectedPayload, Extension, onAuthenticatePayload } from "@hocuspocus/server";
import { documentOfThreads } from "../../../editor/src/comments/model.ts";
import { Close, CollabError, Refusal } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import type { AccessMode } from "./access.ts";
import { type Grant, grantAllows } from "./tokens.ts";

/** Who is on a connection, as hooks and logs see it through the Hocuspocus context. */
export interface UserContext {
  readonly user: { readonly id: string; readonly name: string | null } | null;
  readonly grant: Grant | null;
}

/** setTimeout's largest delay; longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class AuthExtension implements Extension {
  readonly extensionName = "auth";
  /** After the name guard, before persistence loads anything. */
  readonly priority = 5_000;
  private readonly mode: AccessMode;
  private readonly onRefused: (reason: string) => void;

  private readonly logger: Logger | null;

  constructor(
    mode: AccessMode,
    onRefused: (reason: string) => void = () => {},
    logger: Logger | null = null,
  ) {
    this.mode = mode;
    this.onRefused = onRefused;
    this.logger = logger;
  }

  async onAuthenticate({
    token,
    documentName,
    connectionConfig,
    context,
  }: onAuthenticatePayload): Promise<UserContext> {
    // A document's threads document is written by the server alone (comments/comments.ts):
    // every client reads it, with the access it has to the document.
    const threads = documentOfThreads(documentName);
    if (threads !== null) connectionConfig.readOnly = true;
    if (this.mode.kind === "anonymous") return { user: null, grant: null };
    let grant: Grant;
    try {
      grant = await this.mode.verify(token);
    } catch (error) {
      const refusal =
        error instanceof CollabError
          ? error
          : new CollabError("TOKEN_INVALID", String(error), {
              reason: "token-invalid: it could not be verified",
            });
      throw this.refuse(refusal, documentName, context);
    }
    if (!grantAllows(grant, threads ?? documentName, "read")) {
      throw this.refuse(
        new CollabError("ACCESS_DENIED", `token of "${grant.userId}" does not cover the document`, {
          reason: `${Refusal.accessDenied}: the token does not grant this document`,
        }),
        documentName,
        context,
      );
    }
    // `comment` may not change the content either: its comments go through comment requests.
    connectionConfig.readOnly = threads !== null || grant.perm !== "write";
    return { user: { id: grant.userId, name: grant.name }, grant };
  }

  /**
   * Counts and logs a refusal (at info: a bad token is the client's problem,
   * not the server's) and returns what to throw: the reason only, with no
   * message, so Hocuspocus does not print it to stderr as an error as well.
   */
  private refuse(
    error: CollabError,
    documentName: string,
    context: { connectionId?: string; attempt?: { refused(): void } },
  ): { readonly reason: string } {
    const reason = error.reason ?? "permission-denied";
    // A refused credential costs the address more of its connection budget (transport/gate.ts).
    context.attempt?.refused();
    this.onRefused(
      error.code === "ACCESS_DENIED" ? Refusal.accessDenied : error.code.toLowerCase(),
    );
    this.logger?.info(
      { connection: context.connectionId, document: documentName, code: error.code, reason },
      "document refused",
    );
    return { reason };
  }

  async connected({ connection, context }: connectedPayload<UserContext>): Promise<void> {
    const grant = context.grant;
    if (grant === null || grant === undefined) return;
    // The whole socket: a provider re-authenticates only when its socket reconnects.
    const expire = () =>
      connection.webSocket.close(Close.tokenExpired.code, Close.tokenExpired.reason);
    let timer: NodeJS.Timeout;
    // A token valid for longer than setTimeout can wait is checked again when the wait ends.
    const arm = () => {
      const remaining = grant.expiresAt - Date.now();
      timer = setTimeout(
        remaining > MAX_TIMER_MS ? arm : expire,
        Math.min(MAX_TIMER_MS, Math.max(0, remaining)),
      );
      timer.unref();
    };
    arm();
    connection.onClose(() => clearTimeout(timer));
  }
}
