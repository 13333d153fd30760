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
 * - Connection budget ({@link ConnectionBudget}): honest reconnect storms
 *   pass, abuse does not. After a restart every user reconnects at once, and
 *   thousands of them may share one address (a NAT, or a proxy without
 *   TRUST_PROXY); a flat per-minute count locked most of them out for
 *   minutes. An address may make RATE_LIMIT_CONNECTIONS attempts a minute
 *   plus a burst of RATE_LIMIT_BURST; an attempt whose connection then
 *   opens a document (authenticated, when tokens are on) gives its point
 *   back, at most as many points a minute as the two budgets hold (so
 *   proven clients can reconnect twice as often, never without limit); an
 *   attempt refused (a foreign origin or host, a missing, invalid or expired
 *   token, a document the token does not grant) costs REFUSAL_COST more, from
 *   the budget it was spent from; anything else (a socket that never opens a
 *   document) keeps its point.
 */
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

/** Points an attempt costs on top of its own when it is refused (see the module comment). */
export const REFUSAL_COST = 10;

/** What becomes of one admitted attempt; each is reported once at most. */
export interface AttemptTicket {
  /** The connection opened a document: the attempt's point is given back. */
  authenticated(): void;
  /** The connection was refused a document for its credentials: it costs REFUSAL_COST more. */
  refused(): void;
}

/** A ticket for an attempt that counts nothing (no limit configured). */
export const FREE_ATTEMPT: AttemptTicket = { authenticated() {}, refused() {} };

/** The outcome of an upgrade at the gate. */
export type Admission =
  | { readonly kind: "admitted"; readonly ticket: AttemptTicket }
  | { readonly kind: "refused"; readonly refused: Refused };

/**
 * Connection attempts per address: a sustained budget of `perMinute` and a
 * burst budget of `burst`, both per minute (windows of rate-limiter-flexible's
 * memory limiter), spent in that order.
 */
export class ConnectionBudget {
  private readonly sustained: RateLimiterMemory;
  private readonly burst: RateLimiterMemory | null;
  /** Points an address may get back a minute: as many as the two budgets hold. */
  private readonly refunds: RateLimiterMemory;

  constructor(options: { readonly perMinute: number; readonly burst: number }) {
    this.sustained = new RateLimiterMemory({ points: options.perMinute, duration: 60 });
    this.burst =
      options.burst === 0
        ? null
        : new RateLimiterMemory({ keyPrefix: "burst", points: options.burst, duration: 60 });
    this.refunds = new RateLimiterMemory({
      keyPrefix: "refunds",
      points: options.perMinute + options.burst,
      duration: 60,
    });
  }

  /**
   * Spends one point of `key`: the ticket of the attempt, or, when both
   * budgets are spent, the seconds until a point is back.
   */
  async spend(key: string): Promise<AttemptTicket | number> {
    let from: RateLimiterMemory | null = null;
    let retryMs = 0;
    for (const limiter of [this.sustained, this.burst]) {
      if (limiter === null) continue;
      try {
        await limiter.consume(key);
        from = limiter;
        break;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        retryMs = Math.max(retryMs, rejection.msBeforeNext);
      }
    }
    if (from === null) return Math.max(1, Math.ceil(retryMs / 1000));
    const spentFrom = from;
    let settled = false;
    return {
      authenticated: () => {
        if (settled) return;
        settled = true;
        void this.giveBack(spentFrom, key);
      },
      refused: () => {
        if (settled) return;
        settled = true;
        void spentFrom.penalty(key, REFUSAL_COST);
      },
    };
  }

  /**
   * Charges `key` for an attempt refused before it spent anything (a foreign
   * origin or host): one point and REFUSAL_COST more, from the sustained
   * budget while it has points, else from the burst budget.
   */
  async penalize(key: string): Promise<void> {
    const spent = await this.spend(key);
    if (typeof spent !== "number") spent.refused();
  }

  /**
   * Returns one point to `limiter`, never below nothing spent (a refund is not
   * credit), and at most as many a minute as the budgets hold.
   */
  private async giveBack(limiter: RateLimiterMemory, key: string): Promise<void> {
    const state = await limiter.get(key);
    if (state === null || state.consumedPoints <= 0) return;
    try {
      await this.refunds.consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return;
      throw rejection;
    }
    await limiter.reward(key, 1);
  }
}

export interface GateOptions {
  readonly allowedOrigins: readonly string[];
  readonly trustProxy: boolean;
  /** Connection attempts per address per minute; 0 for no limit. */
  readonly rateLimitConnections: number;
  /** Attempts per address per minute beyond that, for reconnect storms. */
  readonly rateLimitBurst: number;
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
  private readonly budget: ConnectionBudget | null;
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
    this.budget =
      options.rateLimitConnections === 0
        ? null
        : new ConnectionBudget({
            perMinute: options.rateLimitConnections,
            burst: options.rateLimitBurst,
          });
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

  /**
   * Checks a WebSocket upgrade: its host and origin (a refusal costs its
   * address REFUSAL_COST), then one attempt against its address' budget. An
   * admitted attempt comes with the ticket that reports how it went.
   */
  async admitUpgrade(request: IncomingMessage): Promise<Admission> {
    const key = rateKey(this.clientAddress(request));
    const host = this.hostRefusal(request);
    const refused: Refused | null =
      host ??
      (this.originAllowed(request)
        ? null
        : {
            status: 403,
            code: "origin_not_allowed",
            message: `origin ${request.headers.origin} is not allowed; add it to ALLOWED_ORIGINS`,
          });
    if (refused !== null) {
      await this.budget?.penalize(key);
      return { kind: "refused", refused };
    }
    if (this.budget === null) return { kind: "admitted", ticket: FREE_ATTEMPT };
    const spent = await this.budget.spend(key);
    if (typeof spent !== "number") return { kind: "admitted", ticket: spent };
    return {
      kind: "refused",
      refused: {
        status: 429,
        code: "rate_limited",
        message: `too many connection attempts from this address; retry in ${spent} s`,
        headers: { "retry-after": String(spent) },
      },
    };
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
