/**
 * Who is calling the REST API, from the `Authorization: Bearer ...` header:
 *
 * - `admin`: the API_SECRET, or no credentials in anonymous loopback mode.
 *   Everything is allowed.
 * - `user`: an access token (the same JWTs editors use), allowed what it
 *   grants: reading or writing its documents, never listing all documents
 *   beyond them or deleting.
 * - `anonymous`: no credentials in anonymous mode on a non-loopback address
 *   (ALLOW_ANONYMOUS=true): the documents themselves, as over WebSocket,
 *   but not the whole-server operations (listing, deleting), which need
 *   API_SECRET.
 * - `link`: a signed attachment link (attachments/signing.ts): reading the
 *   attachments of that one document, nothing else.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { AccessMode } from "../auth/access.ts";
import { type Grant, grantAllows, type Permission } from "../auth/tokens.ts";
import { ApiError } from "./errors.ts";

export type Caller =
  | { readonly kind: "admin" }
  | { readonly kind: "user"; readonly grant: Grant }
  | { readonly kind: "anonymous" }
  | { readonly kind: "link"; readonly name: string };

/** What a route needs. */
export type Need = "admin" | Permission;

export interface CallerOptions {
  readonly access: AccessMode;
  readonly apiSecret: string | null;
}

export async function identify(request: IncomingMessage, options: CallerOptions): Promise<Caller> {
  const header = request.headers.authorization;
  if (header === undefined || header.trim() === "") {
    if (options.access.kind === "anonymous") {
      return options.access.loopback && options.apiSecret === null
        ? { kind: "admin" }
        : { kind: "anonymous" };
    }
    throw new ApiError(401, "unauthorized", "send Authorization: Bearer <token or API_SECRET>");
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) {
    throw new ApiError(401, "unauthorized", "the Authorization header must be Bearer <credential>");
  }
  const credential = match[1] ?? "";
  if (options.apiSecret !== null && sameSecret(credential, options.apiSecret)) {
    return { kind: "admin" };
  }
  if (options.access.kind === "token") {
    try {
      return { kind: "user", grant: await options.access.verify(credential) };
    } catch (error) {
      const reason = (error as { reason?: string }).reason ?? "token-invalid";
      throw new ApiError(401, "unauthorized", `the bearer credential was refused: ${reason}`);
    }
  }
  throw new ApiError(401, "unauthorized", "the bearer credential is not this server's API_SECRET");
}

/** Throws 401/403 unless `caller` may do `need` on document `name`. */
export function authorize(caller: Caller, need: Need, name?: string): void {
  switch (caller.kind) {
    case "admin":
      return;
    case "link":
      if (need !== "read" || name !== caller.name) {
        throw new ApiError(403, "forbidden", "a signed link opens only its document's attachments");
      }
      return;
    case "anonymous":
      if (need === "admin") {
        throw new ApiError(401, "unauthorized", "this endpoint needs the API_SECRET bearer");
      }
      return;
    case "user":
      if (need === "admin") {
        throw new ApiError(
          403,
          "forbidden",
          "this endpoint needs the API_SECRET, not a user token",
        );
      }
      if (name === undefined || !grantAllows(caller.grant, name, need)) {
        throw new ApiError(
          403,
          "forbidden",
          name !== undefined && grantAllows(caller.grant, name, "read")
            ? `the token allows only ${caller.grant.perm} on this document`
            : "the token does not grant this document",
        );
      }
  }
}

/** Whether `caller` may see `name` in a listing. */
export function canList(caller: Caller, name: string): boolean {
  if (caller.kind === "link") return false;
  return caller.kind !== "user" || grantAllows(caller.grant, name, "read");
}

/** The user id a change is attributed to. */
export function actorOf(caller: Caller): { userId: string | null } {
  return { userId: caller.kind === "user" ? caller.grant.userId : null };
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
