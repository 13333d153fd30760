/**
 * The pieces of attachments that need no server (ATT rules in SPEC.md):
 * signed links, byte ranges, file names, sniffing and finding the
 * attachments a document shows.
 */
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { attachmentIdOf } from "../../editor/src/attachments/nodes.ts";
import { FIELD } from "../../editor/src/extensions.ts";
import { parseRange } from "../../server/src/api/attachment-routes.ts";
import { attachmentsIn } from "../../server/src/attachments/references.ts";
import { cleanFilename } from "../../server/src/attachments/service.ts";
import { LinkSigner } from "../../server/src/attachments/signing.ts";
import { isInline, sniffType } from "../../server/src/attachments/sniff.ts";
import { png } from "../helpers/png.ts";

describe("signed links", () => {
  const signer = new LinkSigner(Buffer.from("k".repeat(32)), 3600);
  const at = Date.UTC(2026, 11, 7, 10, 15);

  it("[ATT5] live between one and two windows, the same within a window", () => {
    const link = signer.sign("doc", at);
    expect(link.expires * 1000 - at).toBeGreaterThan(3600_000);
    expect(link.expires * 1000 - at).toBeLessThanOrEqual(7200_000);
    expect(signer.sign("doc", at + 10 * 60_000)).toEqual(link);
    expect(signer.check("doc", String(link.expires), link.signature, at)).toBeNull();
    expect(
      signer.check("doc", String(link.expires), link.signature, link.expires * 1000),
    ).toContain("expired");
  });

  it("[ATT5] refuses another document, another key, a changed expiry and junk", () => {
    const link = signer.sign("doc", at);
    const expires = String(link.expires);
    expect(signer.check("doc2", expires, link.signature, at)).toContain("not valid");
    const other = new LinkSigner(Buffer.from("j".repeat(32)), 3600);
    expect(other.check("doc", expires, link.signature, at)).toContain("not valid");
    expect(signer.check("doc", String(link.expires + 3600), link.signature, at)).toContain(
      "not valid",
    );
    expect(signer.check("doc", "12abc", link.signature, at)).toContain("malformed");
    expect(signer.check("doc", expires, "", at)).toContain("not valid");
  });
});

describe("byte ranges", () => {
  it("[ATT3] one range, open or suffix, clamped; several or malformed are ignored; past the end unsatisfiable", () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange("bytes=0-3", 10)).toEqual({ start: 0, end: 3 });
    expect(parseRange("bytes=4-", 10)).toEqual({ start: 4, end: 9 });
    expect(parseRange("bytes=-3", 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange("bytes=-30", 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=5-500", 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange("bytes=0-1,4-5", 10)).toBeNull();
    expect(parseRange("items=0-1", 10)).toBeNull();
    expect(parseRange("bytes=5-2", 10)).toBeNull();
    expect(parseRange("bytes=10-", 10)).toBe("unsatisfiable");
    expect(parseRange("bytes=-0", 10)).toBe("unsatisfiable");
  });
});

describe("uploads", () => {
  it("[ATT2] types come from the bytes; only raster images are inline", async () => {
    expect(await sniffType(png(2, 2, [1, 2, 3]))).toBe("image/png");
    expect(await sniffType(Buffer.from("<html><script>alert(1)</script></html>"))).toBe(
      "application/octet-stream",
    );
    expect(await sniffType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"></svg>'))).not.toBe(
      "image/png",
    );
    expect(await sniffType(Buffer.from("%PDF-1.7\n%âãÏÓ\n1 0 obj\n"))).toBe("application/pdf");
    for (const type of ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]) {
      expect(isInline(type)).toBe(true);
    }
    for (const type of [
      "image/svg+xml",
      "text/html",
      "application/pdf",
      "application/octet-stream",
    ]) {
      expect(isInline(type)).toBe(false);
    }
  });

  it("[ATT2] file names lose paths and control characters", () => {
    expect(cleanFilename("C:\\Users\\ada\\report.pdf")).toBe("report.pdf");
    expect(cleanFilename("../../etc/passwd")).toBe("passwd");
    expect(cleanFilename("a\u0000b\u001fc\u007f.txt")).toBe("abc.txt");
    expect(cleanFilename("x".repeat(400))).toHaveLength(255);
  });
});

describe("references", () => {
  it("[ATT4] finds the attachment ids of images and files, however deep", () => {
    const doc = new Y.Doc();
    const fragment = doc.getXmlFragment(FIELD);
    const a = "a".repeat(64);
    const b = "b".repeat(64);
    const image = new Y.XmlElement("image");
    image.setAttribute("attachment", a);
    const quote = new Y.XmlElement("blockquote");
    const file = new Y.XmlElement("file");
    file.setAttribute("attachment", b);
    quote.insert(0, [file]);
    const bogus = new Y.XmlElement("image");
    bogus.setAttribute("attachment", "../not-an-id");
    fragment.insert(0, [image, quote, bogus]);
    expect([...attachmentsIn(doc)].sort()).toEqual([a, b]);
    expect(attachmentIdOf(`/api/v1/documents/x/attachments/${a}?expires=1`)).toBe(a);
    expect(attachmentIdOf("https://example.com/cat.png")).toBeNull();
  });
});
