/** The rate limit's address keys ([AUTH9]). */
import { describe, expect, it } from "vitest";
import { rateKey } from "../../server/src/transport/gate.ts";

describe("rate-limit keys", () => {
  it("[AUTH9] IPv4 addresses count alone; IPv6 ones by their /64, however they are written", () => {
    expect(rateKey("203.0.113.7")).toBe("203.0.113.7");
    expect(rateKey("::ffff:203.0.113.7")).toBe("203.0.113.7");
    const network = "2001:db8:85a3:8d3::/64";
    expect(rateKey("2001:db8:85a3:8d3:1319:8a2e:370:7348")).toBe(network);
    expect(rateKey("2001:0db8:85a3:08d3::1")).toBe(network);
    expect(rateKey("2001:db8:85a3:8d3:ffff::")).toBe(network);
    expect(rateKey("2001:db8:85a3:8d4::1")).not.toBe(network);
    expect(rateKey("::1")).toBe("0:0:0:0::/64");
  });
});
