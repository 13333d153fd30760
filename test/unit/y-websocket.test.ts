/**
 * The y-websocket translation as pure functions: choosing the dialect from
 * the request path, and each row of the mapping table in
 * server/src/protocol/y-websocket.ts (YWS rules in SPEC.md).
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { inspectFrame } from "../../server/src/protocol/guard.ts";
import { AuthType, MessageType, SyncType } from "../../server/src/protocol/messages.ts";
import {
  AwarenessEchoFilter,
  chooseDialect,
  encodeAddress,
  fromHocuspocus,
  toHocuspocus,
  YMessageType,
  yWebSocketClose,
  yWebSocketTranslator,
} from "../../server/src/protocol/y-websocket.ts";
import { wire } from "../helpers/wire.ts";

/** A Hocuspocus message for `documentName`: address, type, then `body`. */
function hocuspocus(
  documentName: string,
  type: number,
  body: (e: encoding.Encoder) => void = () => {},
) {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, documentName);
  encoding.writeVarUint(encoder, type);
  body(encoder);
  return encoding.toUint8Array(encoder);
}

/** A y-websocket client frame: type, then `body`. */
function plain(type: number, body: (e: encoding.Encoder) => void = () => {}) {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, type);
  body(encoder);
  return encoding.toUint8Array(encoder);
}

const stateVector = Y.encodeStateVector(new Y.Doc());

/** A y-websocket awareness frame with one entry per `[client, clock, state]`. */
function awareness(...entries: Array<[number, number, string]>): Uint8Array {
  return plain(YMessageType.Awareness, (e) => {
    const update = encoding.createEncoder();
    encoding.writeVarUint(update, entries.length);
    for (const [client, clock, state] of entries) {
      encoding.writeVarUint(update, client);
      encoding.writeVarUint(update, clock);
      encoding.writeVarString(update, state);
    }
    encoding.writeVarUint8Array(e, encoding.toUint8Array(update));
  });
}

describe("y-websocket dialect", () => {
  it("[YWS1] /yjs/<name> is y-websocket with the URL-decoded name and ?token=; other paths are Hocuspocus", () => {
    expect(chooseDialect("/yjs/notes")).toEqual({
      kind: "y-websocket",
      documentName: "notes",
      token: "",
    });
    expect(chooseDialect(`/yjs/${encodeURIComponent("Café plan/2025 ✓")}?token=a%2Bb&x=1`)).toEqual(
      { kind: "y-websocket", documentName: "Café plan/2025 ✓", token: "a+b" },
    );
    // The raw path is read: nothing is normalised away.
    expect(chooseDialect("/yjs/a/../b")).toMatchObject({ documentName: "a/../b" });
    for (const other of ["/", "/?token=t", "/yjs", "/yjsx/doc", "/api/yjs/doc", "/YJS/doc"]) {
      expect(chooseDialect(other)).toEqual({ kind: "hocuspocus" });
    }
  });

  it("[YWS6] an empty or undecodable name (or one with NUL) is invalid", () => {
    for (const target of ["/yjs/", "/yjs/?token=t", "/yjs/%E0%A4%A", "/yjs/%ZZ", "/yjs/%C3%28"]) {
      expect(chooseDialect(target)).toMatchObject({ kind: "invalid" });
    }
    expect(chooseDialect("/yjs/a%00b")).toEqual({
      kind: "invalid",
      reason: "the document name contains NUL",
    });
  });

  it("[YWS1] opens with a Hocuspocus Auth message carrying the token, then prefixes every frame", () => {
    const translator = yWebSocketTranslator("doc ✓", "secret");
    expect(translator.opening).toEqual([wire.auth("doc ✓", "secret")]);
    expect(inspectFrame(translator.opening[0] ?? new Uint8Array())).toMatchObject({
      kind: "message",
      documentName: "doc ✓",
      type: MessageType.Auth,
    });
    const step1 = plain(YMessageType.Sync, (e) => {
      encoding.writeVarUint(e, SyncType.Step1);
      encoding.writeVarUint8Array(e, stateVector);
    });
    expect(translator.incoming(step1)).toEqual({
      kind: "frame",
      frame: wire.syncStep1("doc ✓"),
    });
    const query = plain(YMessageType.QueryAwareness);
    expect(toHocuspocus(encodeAddress("d"), query)).toEqual({
      kind: "frame",
      frame: hocuspocus("d", MessageType.QueryAwareness),
    });
  });

  it("[YWS5] refuses frames that are not y-websocket's: empty, auth and Hocuspocus-only types", () => {
    const address = encodeAddress("d");
    for (const frame of [
      new Uint8Array(),
      Uint8Array.of(0x80),
      plain(YMessageType.Auth, (e) => {
        encoding.writeVarUint(e, 0);
        encoding.writeVarString(e, "x");
      }),
      plain(MessageType.SyncReply),
      plain(MessageType.Stateless, (e) => encoding.writeVarString(e, "{}")),
      plain(MessageType.Close),
      plain(MessageType.Pong),
      plain(300),
    ]) {
      const incoming = toHocuspocus(address, frame);
      expect(incoming.kind, `frame ${[...frame]}`).toBe("reject");
      if (incoming.kind === "reject") {
        expect(incoming.close.code).toBe(1002);
        expect(incoming.close.reason).toMatch(/^protocol error: /);
      }
    }
  });

  it("[YWS2] sync, awareness and query-awareness pass out unchanged; SyncReply becomes Sync", () => {
    const body = (e: encoding.Encoder) => {
      encoding.writeVarUint(e, SyncType.Step1);
      encoding.writeVarUint8Array(e, stateVector);
    };
    expect(fromHocuspocus(hocuspocus("doc", MessageType.Sync, body))).toEqual({
      kind: "send",
      frame: plain(YMessageType.Sync, body),
    });
    expect(fromHocuspocus(hocuspocus("doc", MessageType.SyncReply, body))).toEqual({
      kind: "send",
      frame: plain(YMessageType.Sync, body),
    });
    const awareness = wire.awareness("doc\0session", 7, '{"user":{"name":"A"}}');
    const out = fromHocuspocus(awareness);
    expect(out.kind).toBe("send");
    if (out.kind === "send") {
      const decoder = decoding.createDecoder(out.frame);
      expect(decoding.readVarUint(decoder)).toBe(YMessageType.Awareness);
      const update = decoding.createDecoder(decoding.readVarUint8Array(decoder));
      expect([decoding.readVarUint(update), decoding.readVarUint(update)]).toEqual([1, 7]);
    }
    expect(fromHocuspocus(hocuspocus("doc", MessageType.QueryAwareness))).toEqual({
      kind: "send",
      frame: plain(YMessageType.QueryAwareness),
    });
  });

  it("[YWS2] acknowledgements, stateless messages, Authenticated and token requests are dropped", () => {
    for (const message of [
      hocuspocus("doc", MessageType.SyncStatus, (e) => encoding.writeVarUint(e, 1)),
      hocuspocus("doc", MessageType.Stateless, (e) => encoding.writeVarString(e, "hi")),
      hocuspocus("doc", MessageType.BroadcastStateless, (e) => encoding.writeVarString(e, "hi")),
      hocuspocus("doc", MessageType.Auth, (e) => {
        encoding.writeVarUint(e, AuthType.Authenticated);
        encoding.writeVarString(e, "read-write");
      }),
      hocuspocus("doc", MessageType.Auth, (e) => encoding.writeVarUint(e, AuthType.Token)),
      hocuspocus("doc", MessageType.Ping),
      Uint8Array.of(MessageType.Ping),
      new Uint8Array(),
    ]) {
      expect(fromHocuspocus(message)).toEqual({ kind: "drop" });
    }
  });

  it("[YWS4] permission denied becomes y-protocols' auth message, then close 4403 with the reason", () => {
    const reason = `access-denied: ${"ü".repeat(100)}`;
    const out = fromHocuspocus(
      hocuspocus("doc", MessageType.Auth, (e) => {
        encoding.writeVarUint(e, AuthType.PermissionDenied);
        encoding.writeVarString(e, reason);
      }),
    );
    expect(out.kind).toBe("close");
    if (out.kind !== "close") return;
    // Exactly what y-protocols/auth's readAuthMessage reads as permission denied.
    const decoder = decoding.createDecoder(out.last ?? new Uint8Array());
    expect(decoding.readVarUint(decoder)).toBe(YMessageType.Auth);
    expect(decoding.readVarUint(decoder)).toBe(0);
    expect(decoding.readVarString(decoder)).toBe(reason);
    expect(out.close.code).toBe(4403);
    expect(reason.startsWith(out.close.reason.slice(0, -3))).toBe(true);
    expect(Buffer.byteLength(out.close.reason)).toBeLessThanOrEqual(123);
  });

  it("[YWS4] a Hocuspocus Close becomes a retryable 4500 close; an idle timeout moves out of 4400-4499", () => {
    expect(
      fromHocuspocus(
        hocuspocus("doc", MessageType.Close, (e) => encoding.writeVarString(e, "bye")),
      ),
    ).toEqual({ kind: "close", last: null, close: { code: 4500, reason: "bye" } });
    expect(yWebSocketClose({ code: 4408, reason: "Connection Timeout" })).toEqual({
      code: 4508,
      reason: "Connection Timeout",
    });
    for (const code of [1001, 1002, 1009, 4205, 4401]) {
      expect(yWebSocketClose({ code, reason: "r" })).toEqual({ code, reason: "r" });
    }
  });

  it("[YWS3] only the client's own awareness goes in: echoes and relays of other clients are dropped", () => {
    const filter = new AwarenessEchoFilter();
    const mine = awareness([7, 1, '{"user":"Y"}']);
    expect(filter.incoming(mine)).toBe(mine);
    // The server sends its state back re-clocked, and someone else's.
    filter.outgoing(awareness([7, 1000, '{"user":"Y"}'], [9, 1001, '{"user":"H"}']));
    // y-websocket re-sends whatever it applied: both are echoes.
    expect(filter.incoming(awareness([7, 1000, '{"user":"Y"}']))).toBeNull();
    expect(
      filter.incoming(awareness([9, 1001, '{"user":"H"}'], [7, 1000, '{"user":"Y"}'])),
    ).toBeNull();
    // Even after the other client left, a late echo of it never brings it back.
    filter.outgoing(awareness([9, 1002, "null"]));
    expect(filter.incoming(awareness([9, 1001, '{"user":"H"}']))).toBeNull();
    // A real change of its own state goes in, alone when mixed with echoes.
    expect(filter.incoming(awareness([7, 1001, '{"user":"Y2"}']))).toEqual(
      awareness([7, 1001, '{"user":"Y2"}']),
    );
    expect(filter.incoming(awareness([9, 1002, "null"], [7, 1002, '{"user":"Y3"}']))).toEqual(
      awareness([7, 1002, '{"user":"Y3"}']),
    );
    // A change that crosses an echo with the same clock differs in state, so it goes in.
    filter.outgoing(awareness([7, 1003, '{"user":"Y3"}']));
    expect(filter.incoming(awareness([7, 1003, '{"user":"Y4"}']))).not.toBeNull();
  });

  it("[YWS5] the echo filter leaves frames that are not well-formed awareness to the frame guard", () => {
    const filter = new AwarenessEchoFilter();
    filter.outgoing(awareness([7, 1, "{}"]));
    for (const frame of [
      Uint8Array.of(1, 5, 1, 9, 1, 1, 123),
      Uint8Array.of(1, 9, 1),
      plain(YMessageType.Sync, (e) => encoding.writeVarUint(e, SyncType.Step1)),
      new Uint8Array(),
    ]) {
      expect(filter.incoming(frame)).toBe(frame);
    }
    const translator = yWebSocketTranslator("d", "");
    expect(translator.incoming(Uint8Array.of(1, 5, 1, 9, 1, 1, 123))).toMatchObject({
      kind: "frame",
    });
  });
});
