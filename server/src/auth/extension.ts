/**
 * The Hocuspocus extension that enforces access per document: every
 * document a connection opens is authenticated on its own (Hocuspocus sends
 * a token per document), so a refusal closes that document only and other
 * documents on the same socket are unaffected.
 *
 * - Token mode: the token must verify, cover the document, and not be
 *   expired. `perm: read` makes the connection read-only: Hocuspocus then
 *   applies none of its updates (it answers them with a failed sync status),
 *   so they are never stored or relayed; awareness still flows.
 * - When a token expires during a session the socket is closed with
 *   {@link Close.tokenExpired}; the provider reconnects and asks its `token`
 *   function for a fresh one.
 * - Anonymous mode: everyone may write; nothing to check.
 */
import type { connectedPayload, Extension, onAuthenticatePayload } from "@hocuspocus/server";
import { Close, CollabError, Refusal } from "../errors.ts";
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

  constructor(mode: AccessMode, onRefused: (reason: string) => void = () => {}) {
    this.mode = mode;
    this.onRefused = onRefused;
  }

  async onAuthenticate({
    token,
    documentName,
    connectionConfig,
  }: onAuthenticatePayload): Promise<UserContext> {
    if (this.mode.kind === "anonymous") return { user: null, grant: null };
    let grant: Grant;
    try {
      grant = await this.mode.verify(token);
    } catch (error) {
      this.onRefused(error instanceof CollabError ? error.code.toLowerCase() : "token_invalid");
      throw error;
    }
    if (!grantAllows(grant, documentName, "read")) {
      this.onRefused(Refusal.accessDenied);
      throw new CollabError(
        "ACCESS_DENIED",
        `token of "${grant.userId}" does not cover "${documentName}"`,
        { reason: `${Refusal.accessDenied}: the token does not grant this document` },
      );
    }
    connectionConfig.readOnly = grant.perm === "read";
    return { user: { id: grant.userId, name: grant.name }, grant };
  }

  async connected({ connection, context }: connectedPayload<UserContext>): Promise<void> {
    const grant = context.grant;
    if (grant === null || grant === undefined) return;
    const remaining = grant.expiresAt - Date.now();
    if (remaining > MAX_TIMER_MS) return;
    // The whole socket: a provider re-authenticates only when its socket reconnects.
    const timer = setTimeout(
      () => connection.webSocket.close(Close.tokenExpired.code, Close.tokenExpired.reason),
      Math.max(0, remaining),
    );
    timer.unref();
    connection.onClose(() => clearTimeout(timer));
  }
}
