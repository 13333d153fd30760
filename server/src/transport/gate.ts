/**
 * The checks an HTTP request or WebSocket upgrade passes before anything
 * else sees it: the browser `Origin` (against cross-site WebSocket hijacking
 * and for CORS) and the per-address connection rate limit.
 *
 * - Origin: a request without one is not from a browser page and passes.
 *   The server's own origin (the `Host` the request was sent to) always
 *   passes, so the editor app served here works; others must be listed in
 *   ALLOWED_ORIGINS (`*` allows every origin).
 * - Host, in anonymous mode only: a request must be addressed to an IP
 *   address, `localhost`, or a host named in ALLOWED_ORIGINS. Otherwise a
 *   page on any site could rebind its own domain name to this server's
 *   address (DNS rebinding) and, being "same-origin" with it, use it without
 *   credentials. With token auth a rebound page has no token, so any Host will do.
 * - Client address: the socket's peer, or with TRUST_PROXY the last
 *   `X-Forwarded-For` entry, the one the proxy in front of us appended
 *   (earlier entries are whatever the client claimed).
 */
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

export interface GateOptions {
  readonly allowedOrigins: readonly string[];
  readonly trustProxy: boolean;
  /** Connection attempts per address per minute; 0 for no limit. */
  readonly rateLimitConnections: number;
  /** Check the Host header against DNS rebinding (anonymous mode). */
  readonly checkHost: boolean;
}

/** Why a request was turned away, as an HTTP answer. */
export interface Refused {
  readonly status: 403 | 429;
  readonly code: "origin_not_allowed" | "host_not_allowed" | "rate_limited";
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export class Gate {
  private readonly allowed: ReadonlySet<string>;
  private readonly anyOrigin: boolean;
  private readonly trustProxy: boolean;
  private readonly limiter: RateLimiterMemory | null;
  /** Host names trusted in anonymous mode besides IP addresses and localhost; null: no check. */
  private readonly trustedHosts: ReadonlySet<string> | null;

  constructor(options: GateOptions) {
    this.allowed = new Set(options.allowedOrigins);
    this.anyOrigin = this.allowed.has("*");
    this.trustedHosts =
      !options.checkHost || this.anyOrigin
        ? null
        : new Set(options.allowedOrigins.map((origin) => new URL(origin).hostname));
    this.trustProxy = options.trustProxy;
    this.limiter =
      options.rateLimitConnections === 0
        ? null
        : new RateLimiterMemory({ points: options.rateLimitConnections, duration: 60 });
  }

  /** The request's `Origin` when it is a browser's cross-origin one (not the server's own), else null. */
  foreignOrigin(request: IncomingMessage): string | null {
    const origin = request.headers.origin;
    if (origin === undefined) return null;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return origin;
    }
    return host === request.headers.host?.toLowerCase() ? null : origin.toLowerCase();
  }

  /** Whether a browser page at the request's origin may use this server. */
  originAllowed(request: IncomingMessage): boolean {
    const origin = this.foreignOrigin(request);
    return origin === null || this.anyOrigin || this.allowed.has(origin);
  }

  /** Why the request's Host is refused (see the module comment), or null when it is fine. */
  hostRefusal(request: IncomingMessage): Refused | null {
    const host = request.headers.host;
    if (this.trustedHosts === null || host === undefined) return null;
    let hostname: string;
    try {
      hostname = new URL(`http://${host}`).hostname.toLowerCase();
    } catch {
      hostname = "";
    }
    const bare = hostname.replace(/^\[|\]$/g, "");
    if (isIP(bare) !== 0 || bare === "localhost" || bare.endsWith(".localhost")) return null;
    if (this.trustedHosts.has(hostname)) return null;
    return {
      status: 403,
      code: "host_not_allowed",
      message: `requests to host ${JSON.stringify(host)} are refused: without token auth the server answers only requests addressed to an IP address, localhost, or a host in ALLOWED_ORIGINS (protection against DNS rebinding)`,
    };
  }

  /** The address rate limits and logs use. */
  clientAddress(request: IncomingMessage): string {
    if (this.trustProxy) {
      const forwarded = request.headers["x-forwarded-for"];
      const list = (Array.isArray(forwarded) ? forwarded.join(",") : (forwarded ?? ""))
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== "");
      const last = list.at(-1);
      if (last !== undefined) return last;
    }
    return request.socket.remoteAddress ?? "unknown";
  }

  /** Checks a WebSocket upgrade: its origin, then one attempt against its address' budget. */
  async admitUpgrade(request: IncomingMessage): Promise<Refused | null> {
    const host = this.hostRefusal(request);
    if (host !== null) return host;
    if (!this.originAllowed(request)) {
      return {
        status: 403,
        code: "origin_not_allowed",
        message: `origin ${request.headers.origin} is not allowed; add it to ALLOWED_ORIGINS`,
      };
    }
    if (this.limiter === null) return null;
    try {
      await this.limiter.consume(rateKey(this.clientAddress(request)));
      return null;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      return {
        status: 429,
        code: "rate_limited",
        message: `too many connection attempts from this address; retry in ${seconds} s`,
        headers: { "retry-after": String(seconds) },
      };
    }
  }
}

/**
 * The rate-limit key of an address: IPv4 addresses as they are, IPv6 ones by
 * their /64 network, since one host commonly holds a whole /64 and could
 * otherwise pick a fresh address per attempt.
 */
export function rateKey(address: string): string {
  const bare = address.replace(/^\[|\]$/g, "").split("%")[0] ?? "";
  if (isIP(bare) !== 6) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped?.[1] !== undefined) return mapped[1];
  const [head = "", tail = ""] = bare.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = bare.includes("::") ? (tail === "" ? [] : tail.split(":")) : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(":")}::/64`;
}
