/**
 * Access tokens: JWTs verified with jose, either HS256 with AUTH_SECRET or
 * ES256/RS256 with AUTH_PUBLIC_KEY (a PEM key or a JWKS URL). A verified
 * token becomes a {@link Grant}: who it is and which documents it may read
 * or write. Every failure is a CollabError whose `reason` tells the client
 * what was wrong (missing, malformed, bad signature, expired) and nothing more.
 */
import type { CryptoKey, JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { CollabError } from "../errors.ts";
import { lazily } from "../util/lazy.ts";

/**
 * jose, loaded with the first token verified or signed (or a PEM key checked at start-up):
 * a server in anonymous mode never needs it, and it added about 3.5 MB to every idle process.
 */
type Jose = typeof import("jose");

const loadJose: () => Promise<Jose> = lazily(() => import("jose"));

/**
 * What a token allows: `read` the document; `comment` on it as well (threads, replies,
 * resolving), never changing its content; `write` everything.
 */
export type Permission = "read" | "comment" | "write";

/** Each permission includes those before it. */
const RANK: Record<Permission, number> = { read: 0, comment: 1, write: 2 };

/** A verified token. */
export interface Grant {
  /** The user id (`sub`). */
  readonly userId: string;
  /** The display name (`name`), when the token carries one. */
  readonly name: string | null;
  /** Document names, or prefixes ending in `*` (`*` alone: every document). */
  readonly docs: readonly string[];
  readonly perm: Permission;
  /** Expiry, ms since the epoch. */
  readonly expiresAt: number;
}

const claimsSchema = z.object({
  sub: z.string().min(1).max(256),
  name: z.string().max(256).optional(),
  docs: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  perm: z.enum(["read", "comment", "write"]),
  exp: z.number(),
});

export const HS256 = "HS256";
const PUBLIC_KEY_ALGORITHMS = ["ES256", "RS256"] as const;

export interface TokenKeys {
  readonly secret: string | null;
  readonly publicKey: string | null;
  /** Required `iss`, when set. */
  readonly issuer?: string | null;
  /** Required `aud`, when set. */
  readonly audience?: string | null;
}

/** Verifies tokens; null when no key is configured (anonymous mode). */
export type TokenVerifier = (token: string) => Promise<Grant>;

export function createTokenVerifier(keys: TokenKeys): TokenVerifier | null {
  const { secret, publicKey } = keys;
  if (secret === null && publicKey === null) return null;
  const required = {
    ...(keys.issuer == null ? {} : { issuer: keys.issuer }),
    ...(keys.audience == null ? {} : { audience: keys.audience }),
  };
  const hmacKey = secret === null ? null : new TextEncoder().encode(secret);
  const jwksUrl = publicKey?.startsWith("http") === true ? new URL(publicKey) : null;
  /** The JWKS client, made with the first token (it fetches the key set then). */
  let jwks: JWTVerifyGetKey | null = null;
  const pem = publicKey !== null && jwksUrl === null ? publicKey : null;
  const pemKeys = new Map<string, Promise<CryptoKey>>();

  const getKey =
    (jose: Jose): JWTVerifyGetKey =>
    async (header, token) => {
      const alg = header.alg;
      if (alg === HS256 && hmacKey !== null) return hmacKey;
      if ((PUBLIC_KEY_ALGORITHMS as readonly string[]).includes(alg)) {
        if (jwksUrl !== null) {
          jwks ??= jose.createRemoteJWKSet(jwksUrl);
          return jwks(header, token);
        }
        if (pem !== null) {
          let key = pemKeys.get(alg);
          if (key === undefined) {
            key = jose.importSPKI(pem, alg);
            pemKeys.set(alg, key);
          }
          return key;
        }
      }
      throw new CollabError("TOKEN_INVALID", `tokens signed with ${alg} are not accepted here`, {
        reason: `token-invalid: the ${alg} algorithm is not accepted`,
      });
    };
  const algorithms = [
    ...(hmacKey === null ? [] : [HS256]),
    ...(publicKey === null ? [] : PUBLIC_KEY_ALGORITHMS),
  ];

  return async (token) => {
    if (token === "") {
      throw new CollabError("TOKEN_MISSING", "no token", {
        reason: "token-missing: this server needs an access token",
      });
    }
    const jose = await loadJose();
    let payload: unknown;
    try {
      ({ payload } = await jose.jwtVerify(token, getKey(jose), {
        algorithms,
        requiredClaims: ["exp", "sub"],
        ...required,
      }));
    } catch (error) {
      throw tokenError(error, jose.errors);
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const issue = claims.error.issues[0];
      throw new CollabError("TOKEN_INVALID", `token claims: ${claims.error.message}`, {
        reason: `token-invalid: claim "${issue?.path.join(".")}" ${issue?.message ?? "is invalid"}`,
      });
    }
    const { sub, name, docs, perm, exp } = claims.data;
    return {
      userId: sub,
      name: name ?? null,
      docs: typeof docs === "string" ? [docs] : docs,
      perm,
      expiresAt: exp * 1000,
    };
  };
}

function tokenError(error: unknown, errors: Jose["errors"]): CollabError {
  if (error instanceof CollabError) return error;
  if (error instanceof errors.JWTExpired) {
    const exp = (error.payload as { exp?: unknown }).exp;
    const when = typeof exp === "number" ? ` at ${new Date(exp * 1000).toISOString()}` : "";
    return new CollabError("TOKEN_EXPIRED", `token expired${when}`, {
      reason: `token-expired: the token expired${when}`,
      cause: error,
    });
  }
  const why =
    error instanceof errors.JWSSignatureVerificationFailed
      ? "the signature does not match"
      : error instanceof errors.JWTClaimValidationFailed
        ? `claim "${error.claim}" ${error.reason === "missing" ? "is missing" : "is invalid"}`
        : error instanceof errors.JOSEError && error.code === "ERR_JWS_INVALID"
          ? "it is not a JWT"
          : error instanceof errors.JOSEError && error.code === "ERR_JWT_INVALID"
            ? "it is not a JWT"
            : error instanceof errors.JOSEAlgNotAllowed
              ? "its algorithm is not accepted"
              : error instanceof errors.JWKSNoMatchingKey
                ? "no key matches it"
                : "it could not be verified";
  return new CollabError("TOKEN_INVALID", `token rejected: ${String(error)}`, {
    reason: `token-invalid: ${why}`,
    cause: error,
  });
}

/**
 * Checks at start-up that a PEM AUTH_PUBLIC_KEY is a key tokens can be
 * verified with, rather than failing every token later. A JWKS URL is
 * fetched when the first token arrives.
 */
export async function checkPublicKey(publicKey: string | null): Promise<void> {
  if (publicKey === null || publicKey.startsWith("http")) return;
  const { importSPKI } = await loadJose();
  for (const alg of PUBLIC_KEY_ALGORITHMS) {
    try {
      await importSPKI(publicKey, alg);
      return;
    } catch {
      // Try the next algorithm.
    }
  }
  throw new CollabError(
    "CONFIG_INVALID",
    "AUTH_PUBLIC_KEY is not an ES256 (P-256) or RS256 (RSA) public key in PEM (SPKI) form",
  );
}

/** Whether `grant` covers document `name` with at least `need`. */
export function grantAllows(grant: Grant, name: string, need: Permission): boolean {
  if (RANK[grant.perm] < RANK[need]) return false;
  return grant.docs.some((pattern) =>
    pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name,
  );
}

export interface MintOptions {
  readonly secret: string;
  readonly userId: string;
  readonly name?: string;
  readonly docs: readonly string[];
  readonly perm: Permission;
  /** Lifetime, as jose takes it: "30m", "1h", "7d", or seconds. */
  readonly ttl: string | number;
}

/** Signs an HS256 token: for the `token` command and tests. */
export async function mintToken(options: MintOptions): Promise<string> {
  const ttl = typeof options.ttl === "number" ? `${options.ttl}s` : options.ttl;
  const { SignJWT } = await loadJose();
  return new SignJWT({
    docs: [...options.docs],
    perm: options.perm,
    ...(options.name === undefined ? {} : { name: options.name }),
  })
    .setProtectedHeader({ alg: HS256, typ: "JWT" })
    .setSubject(options.userId)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(options.secret));
}
