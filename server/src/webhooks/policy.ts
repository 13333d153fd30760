/**
 * The pure parts of webhook delivery: which responses are retried, how long
 * to wait before the next attempt, and how a receiver URL is shown in logs.
 */

/** What a delivery attempt's HTTP status means. */
export type Verdict = "delivered" | "retry" | "fail";

/**
 * 2xx is delivered. 408, 429 and 5xx are the receiver's passing trouble and
 * are retried; any other status (other 4xx, and 3xx: redirects are not
 * followed, since a POST that follows one may arrive as a bodiless GET)
 * would fail the same way again, so it fails at once.
 */
export function verdictFor(status: number): Verdict {
  if (status >= 200 && status < 300) return "delivered";
  if (status === 408 || status === 429 || status >= 500) return "retry";
  return "fail";
}

/**
 * Delay before the next attempt after `attempts` failed ones: `baseMs`
 * doubling per attempt, capped at `maxMs`, with "equal jitter" (a random
 * point in the upper half) so receivers that fail together are not retried
 * in lockstep. A `Retry-After` delay, when the receiver sent one, is a lower
 * bound; the cap bounds both, so a receiver cannot park a delivery for hours.
 */
export function retryDelayMs(options: {
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly retryAfterMs: number | null;
  readonly random?: () => number;
}): number {
  const { attempts, baseMs, maxMs, retryAfterMs, random = Math.random } = options;
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempts - 1));
  const backoff = ceiling / 2 + (random() * ceiling) / 2;
  return Math.round(Math.min(maxMs, Math.max(backoff, retryAfterMs ?? 0)));
}

/**
 * A `Retry-After` header in milliseconds from `now`: delay-seconds or an
 * HTTP date (RFC 9110, 10.2.3). Null when absent or unreadable.
 */
export function parseRetryAfter(header: string | null, now = Date.now()): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** A receiver URL, split into what is requested and what may be logged. */
export interface Endpoint {
  /** The URL requested: the configured one without credentials (fetch refuses those). */
  readonly url: string;
  /** Origin and path only: query strings and credentials often hold secrets. */
  readonly label: string;
  /** `Basic ...` from the URL's credentials, or null. */
  readonly authorization: string | null;
}

/** Parses a receiver URL; null when it is not an absolute http(s) URL. */
export function parseEndpoint(raw: string): Endpoint | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const authorization =
    url.username === "" && url.password === ""
      ? null
      : `Basic ${Buffer.from(
          `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
        ).toString("base64")}`;
  url.username = "";
  url.password = "";
  url.hash = "";
  return { url: url.href, label: `${url.origin}${url.pathname}`, authorization };
}

/** A short description of a failed fetch for logs (no URL, no stack). */
export function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError") return "timed out";
    const cause: unknown = error.cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return typeof code === "string" ? `${code}: ${cause.message}` : cause.message;
    }
    return error.message;
  }
  return String(error);
}
