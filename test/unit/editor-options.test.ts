import { describe, expect, it } from "vitest";
import { colorFor, resolveOptions } from "../../editor/src/options.ts";
import { describeConnection, describeSave } from "../../editor/src/status.ts";

describe("editor options", () => {
  it("[EMB1] fill in documented defaults and refuse what is missing", () => {
    const resolved = resolveOptions({ url: "ws://x", document: "d", user: { name: "Ada" } });
    expect(resolved).toMatchObject({
      readOnly: false,
      offline: true,
      placeholder: "Start writing…",
      chrome: true,
    });
    expect(resolved.user).toEqual({ name: "Ada", color: colorFor("Ada") });
    expect(() => resolveOptions({ url: "", document: "d" })).toThrow(/url/);
    expect(() => resolveOptions({ url: "ws://x", document: "" })).toThrow(/document/);
  });

  it("[APP2] a name always gets the same colour", () => {
    expect(colorFor("Ada")).toBe(colorFor("Ada"));
    expect(colorFor("Ada")).toMatch(/^#[0-9a-f]{6}$/);
  });

  it("[EDIT5] status texts say what users need to know", () => {
    expect(describeConnection({ kind: "offline", keptOnDevice: true })).toBe(
      "Offline — changes are kept on this device",
    );
    expect(describeConnection({ kind: "denied", reason: "too-many-documents" })).toBe(
      "Access denied (too-many-documents)",
    );
    expect(describeSave({ kind: "saving", pending: 3 })).toBe("Saving…");
    expect(describeSave({ kind: "saved" })).toBe("All changes saved");
  });
});

describe("presence colours from the network", () => {
  it("[EDIT2] only plain colour values reach the page", async () => {
    const { safeColor } = await import("../../editor/src/ui/chrome.ts");
    expect(safeColor("#7c3aed")).toBe("#7c3aed");
    expect(safeColor("rgb(1, 2, 3)")).toBe("rgb(1, 2, 3)");
    expect(safeColor("teal")).toBe("teal");
    expect(safeColor("url(http://attacker/beacon)")).toBe("#888888");
    expect(safeColor("red; background: url(x)")).toBe("#888888");
  });
});
