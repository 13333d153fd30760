/**
 * Who may do what: the server runs either with token auth (AUTH_SECRET or
 * AUTH_PUBLIC_KEY) or in anonymous mode, and anonymous mode is allowed only
 * where nobody else can reach it (a loopback address) unless the operator
 * says otherwise with ALLOW_ANONYMOUS=true.
 */
import { isIP } from "node:net";
import type { Config } from "../config.ts";
import { CollabError } from "../errors.ts";
import { createTokenVerifier, type TokenVerifier } from "./tokens.ts";

export type AccessMode =
  /** Every connection must present a token. */
  | { readonly kind: "token"; readonly verify: TokenVerifier }
  /** No tokens; `loopback` says whether only this machine can connect. */
  | { readonly kind: "anonymous"; readonly loopback: boolean };

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (bare === "localhost" || bare === "::1") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  return bare.startsWith("::ffff:127.");
}

/**
 * The access mode for `config`. Throws AUTH_MISCONFIGURED when no token key
 * is set, the server would listen beyond loopback, and ALLOW_ANONYMOUS is off.
 */
export function accessMode(config: Config): AccessMode {
  const verify = createTokenVerifier({
    secret: config.authSecret,
    publicKey: config.authPublicKey,
    issuer: config.authIssuer,
    audience: config.authAudience,
  });
  if (verify !== null) return { kind: "token", verify };
  const loopback = isLoopback(config.host);
  if (!loopback && !config.allowAnonymous) {
    throw new CollabError(
      "AUTH_MISCONFIGURED",
      `refusing to start: HOST=${config.host} is reachable from other machines and no AUTH_SECRET or AUTH_PUBLIC_KEY is set, so anyone could read and write every document. Set AUTH_SECRET (or AUTH_PUBLIC_KEY), or ALLOW_ANONYMOUS=true to serve anonymously on purpose.`,
    );
  }
  return { kind: "anonymous", loopback };
}

/** One line for the start-up log. */
export function describeAccess(mode: AccessMode, config: Config): string {
  if (mode.kind === "token") {
    const keys = [
      config.authSecret === null ? null : "HS256 secret",
      config.authPublicKey === null
        ? null
        : config.authPublicKey.startsWith("http")
          ? "JWKS URL"
          : "ES256/RS256 public key",
    ].filter((key) => key !== null);
    return `token auth (${keys.join(" and ")}); REST API ${config.apiSecret === null ? "for document tokens only (no API_SECRET)" : "with API_SECRET"}`;
  }
  return mode.loopback
    ? "anonymous mode: no tokens, loopback only; anyone on this machine can read and write every document"
    : "anonymous mode on a non-loopback address (ALLOW_ANONYMOUS=true): anyone who can reach the port can read and write every document";
}
