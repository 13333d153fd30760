/** The rate limit's address keys ([AUTH9]). */
import { describe, expect, it } from "vitest";
import { ConnectionBudget, rateKey } from "../../server/src/transport/gate.ts";

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

/** Lets the budget's own promises (refunds, penalties) settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("connection budget", () => {
  it("[AUTH12] attempts that open a document get their point back, but never more than the budgets hold a minute", async () => {
    const budget = new ConnectionBudget({ perMinute: 10, burst: 5 });
    let admitted = 0;
    for (let i = 0; i < 1000; i++) {
      const ticket = await budget.spend("10.0.0.1");
      if (typeof ticket === "number") break;
      admitted++;
      ticket.authenticated();
      await settle();
    }
    // 15 given back, then 15 more spent for good.
    expect(admitted).toBe(30);
    // Another address has its own budget.
    expect(typeof (await budget.spend("10.0.0.2"))).toBe("object");
  });

  it("[AUTH12] a refused attempt costs ten more from the budget it was spent from, burst included", async () => {
    const budget = new ConnectionBudget({ perMinute: 22, burst: 22 });
    let admitted = 0;
    for (let i = 0; i < 100; i++) {
      const ticket = await budget.spend("10.0.0.1");
      if (typeof ticket === "number") {
        expect(ticket).toBeGreaterThan(0);
        break;
      }
      admitted++;
      ticket.refused();
      await settle();
    }
    expect(admitted).toBe(4);
  });

  it("[AUTH12] a ticket reports once: refused after authenticated changes nothing", async () => {
    const budget = new ConnectionBudget({ perMinute: 3, burst: 0 });
    const ticket = await budget.spend("k");
    if (typeof ticket === "number") throw new Error("no budget");
    ticket.authenticated();
    ticket.refused();
    await settle();
    for (let i = 0; i < 3; i++) expect(typeof (await budget.spend("k"))).toBe("object");
    expect(typeof (await budget.spend("k"))).toBe("number");
  });
});
