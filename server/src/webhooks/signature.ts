/**
 * Webhook signatures, shared by the sender and by receivers (and tests): an
 * HMAC-SHA256 of the exact body bytes, sent as `x-collab-signature:
 * sha256=<hex>`. The body carries its `created` time, so a receiver that
 * wants to refuse replays can refuse old deliveries and remember delivery ids.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Request headers of a webhook delivery (lower case, as Node's `req.headers` spells them). */
export const WebhookHeader = {
  /** The event type, e.g. `document.created`. */
  event: "x-collab-event",
  /** The delivery id, also the body's `id`; the same on every retry. */
  delivery: "x-collab-delivery",
  /** `sha256=<hex HMAC-SHA256 of the body>`; absent when no secret is set. */
  signature: "x-collab-signature",
} as const;

const PREFIX = "sha256=";

/**
 * The signature header value for `body` (its UTF-8 bytes when a string).
 *
 * @example
 * signature('{"id":"..."}', "s3cret"); // "sha256=5d1c..."
 */
export function signature(body: string | Uint8Array, secret: string): string {
  return PREFIX + createHmac("sha256", secret).update(body).digest("hex");
}

/**
 * True when `header` is the signature of exactly `body` under `secret`.
 * Compares in constant time; a missing or malformed header is false, never an
 * exception. Verify the raw body bytes as received, before parsing the JSON.
 *
 * @example
 * const ok = verifySignature(rawBody, req.headers["x-collab-signature"] as string | undefined, secret);
 */
export function verifySignature(
  body: string | Uint8Array,
  header: string | undefined,
  secret: string,
): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(signature(body, secret));
  const given = Buffer.from(header.trim().toLowerCase());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
