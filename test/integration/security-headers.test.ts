/**
 * Defence in depth for what the server sends browsers ([OPS4], [OPS5]): a
 * strict Content-Security-Policy on the app's pages with frame-ancestors
 * following ALLOWED_ORIGINS, Referrer-Policy and nosniff on every answer,
 * and METRICS_TOKEN keeping /metrics private.
 */
import { describe, expect, it } from "vitest";
import { startServer } from "../helpers/server.ts";

function directives(csp: string | null): Map<string, string> {
  return new Map(
    (csp ?? "").split(";").map((part) => {
      const [name = "", ...values] = part.trim().split(/\s+/);
      return [name, values.join(" ")];
    }),
  );
}

describe("security headers", () => {
  it("[OPS4] app pages carry a CSP without inline script, framing only by the server itself", async () => {
    const { address } = await startServer();
    for (const path of ["/", "/d/some%20doc", "/trash"]) {
      const response = await fetch(`${address.url}${path}`);
      expect(response.headers.get("content-type")).toMatch(/^text\/html/);
      const csp = directives(response.headers.get("content-security-policy"));
      expect(csp.get("script-src")).toBe("'self'");
      expect(csp.get("style-src")).toBe("'self'");
      expect(csp.get("object-src")).toBe("'none'");
      expect(csp.get("base-uri")).toBe("'none'");
      expect(csp.get("img-src")).toBe("'self' blob: data:");
      expect(csp.get("connect-src")).toBe(
        `'self' ws://127.0.0.1:${address.port} wss://127.0.0.1:${address.port}`,
      );
      expect(csp.get("frame-ancestors")).toBe("'self'");
      expect(response.headers.get("x-frame-options")).toBe("SAMEORIGIN");
      expect(response.headers.get("referrer-policy")).toBe("same-origin");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  it("[OPS4] ALLOWED_ORIGINS may frame the app; * lets any site frame it", async () => {
    const some = await startServer({
      config: { allowedOrigins: ["https://intranet.example", "http://wiki.example:8080"] },
    });
    const response = await fetch(`${some.address.url}/d/x`);
    expect(directives(response.headers.get("content-security-policy")).get("frame-ancestors")).toBe(
      "'self' https://intranet.example http://wiki.example:8080",
    );
    expect(response.headers.get("x-frame-options")).toBeNull();
    // The Trash page (an administrator's) is framed by the server itself only.
    const trash = await fetch(`${some.address.url}/trash`);
    expect(directives(trash.headers.get("content-security-policy")).get("frame-ancestors")).toBe(
      "'self'",
    );
    expect(trash.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    const any = await startServer({ config: { allowedOrigins: ["*"] } });
    const open = await fetch(`${any.address.url}/d/x`);
    expect(directives(open.headers.get("content-security-policy")).get("frame-ancestors")).toBe(
      "*",
    );
  });

  it("[OPS4] every answer, API and errors included, has nosniff and Referrer-Policy", async () => {
    const { address } = await startServer();
    for (const path of ["/api/v1/documents", "/healthz", "/nowhere", "/api/v1/openapi.json"]) {
      const response = await fetch(`${address.url}${path}`);
      expect(response.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(response.headers.get("referrer-policy"), path).toBe("same-origin");
    }
  });

  it("[OPS5] with METRICS_TOKEN, /metrics answers only that bearer token", async () => {
    const token = "metrics-token-0123456789";
    const { address } = await startServer({ config: { metricsToken: token } });
    const without = await fetch(`${address.url}/metrics`);
    expect(without.status).toBe(401);
    expect(without.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await without.json()).toMatchObject({ error: { code: "unauthorized" } });
    const wrong = await fetch(`${address.url}/metrics`, {
      headers: { authorization: "Bearer metrics-token-0123456780" },
    });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${address.url}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain("collab_connections");
    // Without the setting, metrics stay open (the default, for a scraper on the same network).
    const open = await startServer();
    expect((await fetch(`${open.address.url}/metrics`)).status).toBe(200);
  });
});
