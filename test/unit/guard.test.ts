import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { inspectFrame } from "../../server/src/protocol/guard.ts";
import { checkDocumentName } from "../../server/src/protocol/names.ts";
import { wire } from "../helpers/wire.ts";

function update(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("t").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

/**
 * An awareness message whose update (one client, clock 1, state `null`) is
 * followed by bytes inside its own length-prefixed payload: the presence code
 * decodes the payload again, and once threw on these, ending the process.
 */
function awarenessWithTrailingBytes(): Uint8Array {
  const payload = encoding.createEncoder();
  encoding.writeVarUint(payload, 1); // one client
  encoding.writeVarUint(payload, 7); // its id
  encoding.writeVarUint(payload, 1); // clock
  encoding.writeVarString(payload, "null");
  encoding.writeUint8(payload, 0xff); // trailing
  const message = encoding.createEncoder();
  encoding.writeVarString(message, "doc");
  encoding.writeVarUint(message, 1); // awareness
  encoding.writeVarUint8Array(message, encoding.toUint8Array(payload));
  return encoding.toUint8Array(message);
}

describe("frame guard", () => {
  it("[PROT1] accepts every message a provider sends", () => {
    for (const frame of [
      wire.auth("doc", "token"),
      wire.syncStep1("doc"),
      wire.update("doc", update("hello")),
      wire.awareness("doc", 1, JSON.stringify({ user: { name: "A" } })),
      wire.awareness("doc", 1, "null"),
    ]) {
      expect(inspectFrame(frame)).toMatchObject({ kind: "message", documentName: "doc" });
    }
    expect(inspectFrame(Uint8Array.of(10))).toEqual({ kind: "pong" });
  });

  it("[LIM4] says which frames carry an update (each one is acknowledged once stored)", () => {
    const carries = (frame: Uint8Array) => {
      const verdict = inspectFrame(frame);
      return verdict.kind === "message" && verdict.update !== null;
    };
    const hello = update("hello");
    const verdict = inspectFrame(wire.update("doc", hello));
    expect(verdict.kind === "message" && verdict.update).toEqual({ syncType: 2, bytes: hello });
    expect(carries(wire.update("doc", update("hello")))).toBe(true);
    expect(carries(wire.syncStep2("doc", update("hello")))).toBe(true);
    expect(carries(wire.syncStep1("doc"))).toBe(false);
    expect(carries(wire.auth("doc", "token"))).toBe(false);
    expect(carries(wire.awareness("doc", 1, "null"))).toBe(false);
  });

  it("[PROT1] rejects truncated updates, bad JSON, unknown types and bad UTF-8 with a reason", () => {
    const full = update("truncate me");
    const cases: Array<[Uint8Array, number, RegExp]> = [
      [wire.update("doc", full.subarray(0, full.length - 3)), 1002, /Yjs update does not decode/],
      [wire.update("doc", full).subarray(0, 10), 1002, /truncated/],
      [wire.awareness("doc", 1, "{not json"), 1007, /awareness state is not JSON/],
      [awarenessWithTrailingBytes(), 1002, /trailing bytes/],
      [Uint8Array.of(3, 100, 111, 99, 6, 0), 1002, /message type 6 is not accepted/],
      [Uint8Array.of(3, 100, 111, 99, 42), 1002, /message type 42/],
      [wire.badUtf8Address(), 1007, /not valid UTF-8/],
      [Uint8Array.of(), 1002, /missing/],
    ];
    for (const [frame, code, reason] of cases) {
      const verdict = inspectFrame(frame);
      expect(verdict.kind).toBe("reject");
      if (verdict.kind === "reject") {
        expect(verdict.close.code).toBe(code);
        expect(verdict.close.reason).toMatch(reason);
      }
    }
  });
});

describe("document names", () => {
  it("[NAME1] 1-255 bytes of UTF-8 without control characters", () => {
    expect(checkDocumentName("a")).toBeNull();
    expect(checkDocumentName("é".repeat(127))).toBeNull();
    expect(checkDocumentName("é".repeat(128))).toMatch(/256 bytes/);
    expect(checkDocumentName("")).toMatch(/empty/);
    expect(checkDocumentName("a\u0085b")).toMatch(/control/);
    expect(checkDocumentName("\ud800")).toMatch(/well-formed/);
    expect(checkDocumentName("  ")).toMatch(/whitespace/);
    expect(checkDocumentName(" a ")).toBeNull();
  });
});
