/**
 * Security headers for what the server sends to browsers.
 *
 * Every response: `X-Content-Type-Options: nosniff` (a body is only ever
 * what its Content-Type says) and `Referrer-Policy: same-origin` (document
 * names in our URLs never leak to other sites through links).
 *
 * HTML pages (the app, the start page) also get a Content-Security-Policy
 * with no inline script and nothing loaded from elsewhere:
 * - `script-src 'self'`: only the app's own bundle; no inline script, no eval.
 * - `style-src 'self'`: stylesheets only from the server, no inline style
 *   (the editor sets its carets' and presence colours through the CSSOM,
 *   which CSP allows).
 * - `img-src 'self' blob: data:`: pasted images show before they upload.
 * - `connect-src 'self'` plus the WebSocket of this host (ws: and wss:).
 * - `frame-ancestors 'self'` plus ALLOWED_ORIGINS (`*`: any), so sites allowed
 *   to embed the editor may frame it and no other site can click-jack a
 *   signed-in user; `X-Frame-Options: SAMEORIGIN` too when nothing else is
 *   allowed (for browsers without frame-ancestors).
 * - `object-src 'none'`, `base-uri 'none'`, `form-action 'self'`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** Sets the headers every response carries. */
export function setCommonHeaders(response: ServerResponse): void {
  response.setHeader("x-content-type-options", "nosniff");
  response.setHeader("referrer-policy", "same-origin");
}

/**
 * The headers of an HTML page of the app for `request`, given ALLOWED_ORIGINS.
 * An administrator's page (`framable: false`, the Trash page) may be framed by
 * the server itself only, whatever ALLOWED_ORIGINS says.
 */
export function pageHeaders(
  request: IncomingMessage,
  allowedOrigins: readonly string[],
  options: { readonly framable: boolean } = { framable: true },
): Record<string, string> {
  const framers = options.framable ? allowedOrigins : [];
  const host = sanitizedHost(request.headers.host);
  const sockets = host === null ? "" : ` ws://${host} wss://${host}`;
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "font-src 'self'",
    `connect-src 'self'${sockets}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    framing(framers).directive,
  ].join("; ");
  return { "content-security-policy": csp, ...framing(framers).headers };
}

/**
 * The CSP of the start page shown while the app is not built: no script at
 * all and its one inline stylesheet.
 */
export function startPageHeaders(allowedOrigins: readonly string[]): Record<string, string> {
  const { directive, headers } = framing(allowedOrigins);
  return {
    "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; ${directive}`,
    ...headers,
  };
}

/** Who may frame a page: the server itself and ALLOWED_ORIGINS (`*`: anyone). */
function framing(allowedOrigins: readonly string[]): {
  readonly directive: string;
  readonly headers: Record<string, string>;
} {
  const ancestors = allowedOrigins.includes("*") ? "*" : ["'self'", ...allowedOrigins].join(" ");
  return {
    directive: `frame-ancestors ${ancestors}`,
    // For browsers without frame-ancestors; it cannot name other sites, so only when none is allowed.
    headers: allowedOrigins.length === 0 ? { "x-frame-options": "SAMEORIGIN" } : {},
  };
}

/** The Host header when it is a plain host[:port], else null (never echo anything else into a header). */
function sanitizedHost(host: string | undefined): string | null {
  if (host === undefined) return null;
  return /^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(host)
    ? host.toLowerCase()
    : null;
}
