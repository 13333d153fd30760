/**
 * Signed attachment links. An `<img>` cannot send an Authorization header,
 * so a reader of a document gets a signature that lets its browser fetch
 * that document's attachments for a while: `?expires=<s>&signature=<mac>`,
 * an HMAC-SHA256 of the document name and the expiry. One signature serves
 * every attachment of the document, so the editor asks once, not per image.
 *
 * Expiries are rounded to a window: every link made within one window has
 * the same expiry and the same URL, so browsers reuse cached images, and a
 * link lives at least one window and at most two.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface LinkSignature {
  /** When the links stop working, seconds since the epoch. */
  readonly expires: number;
  readonly signature: string;
}

export class LinkSigner {
  private readonly key: Uint8Array;
  private readonly windowSeconds: number;

  /** `key`: the HMAC key; `windowSeconds`: a link lives between one and two of these. */
  constructor(key: Uint8Array, windowSeconds: number) {
    this.key = key;
    this.windowSeconds = windowSeconds;
  }

  /** A signature for `name`'s attachments made at `nowMs`. */
  sign(name: string, nowMs = Date.now()): LinkSignature {
    const window = this.windowSeconds;
    const expires = (Math.floor(nowMs / 1000 / window) + 2) * window;
    return { expires, signature: this.mac(name, expires) };
  }

  /** Why `expires`/`signature` do not open `name`'s attachments at `nowMs`, or null when they do. */
  check(name: string, expires: string, signature: string, nowMs = Date.now()): string | null {
    if (!/^\d{1,12}$/.test(expires)) return "the link's expiry is malformed";
    const expected = Buffer.from(this.mac(name, Number(expires)));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return "the link's signature is not valid for this document";
    }
    if (Number(expires) * 1000 <= nowMs) return "the link has expired; reload to get a new one";
    return null;
  }

  private mac(name: string, expires: number): string {
    return createHmac("sha256", this.key)
      .update(`collab-attachments\n${expires}\n${name}`)
      .digest("base64url");
  }
}
