/**
 * The document lifecycle guards in core.ts, on the real core ([LIFE4]).
 */
import { describe, expect, it } from "vitest";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { startServer } from "../helpers/server.ts";

describe("document lifecycle", () => {
  it("[LIFE4] unloading a stale instance never removes the live document of the same name", async () => {
    const { address, server } = await startServer();
    const hp = server.hocuspocus;
    const first = connect({ url: address.wsUrl, name: "reloaded" });
    await synced(first);
    const stale = hp.documents.get("reloaded");
    first.destroy();
    await expect.poll(() => hp.documents.has("reloaded")).toBe(false);

    const second = connect({ url: address.wsUrl, name: "reloaded" });
    await synced(second);
    const live = hp.documents.get("reloaded");
    expect(live).toBeDefined();
    expect(live).not.toBe(stale);
    // What Hocuspocus' timers and disconnect callbacks can do with an old instance:
    if (stale !== undefined) await hp.unloadDocument(stale);
    expect(hp.documents.get("reloaded")).toBe(live);
    second.document.getText("text").insert(0, "still stored");
    await acknowledged(second);
    expect((await server.store.meta("reloaded"))?.logEntries).toBeGreaterThan(0);
  });
});
