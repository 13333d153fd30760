/**
 * Raw protocol access for tests that must send what no provider would:
 * message builders (lib0 encoding, the Hocuspocus wire format) and a bare
 * WebSocket whose close code and reason can be awaited.
 */
import * as encoding from "lib0/encoding";
import { onTestFinished } from "vitest";
import WebSocket from "ws";
import * as Y from "yjs";
import { AuthType, MessageType, SyncType } from "../../server/src/protocol/messages.ts";

function message(
  documentName: string,
  type: number,
  body: (encoder: encoding.Encoder) => void,
): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, documentName);
  encoding.writeVarUint(encoder, type);
  body(encoder);
  return encoding.toUint8Array(encoder);
}

export const wire = {
  auth: (documentName: string, token = "") =>
    message(documentName, MessageType.Auth, (e) => {
      encoding.writeVarUint(e, AuthType.Token);
      encoding.writeVarString(e, token);
    }),
  syncStep1: (documentName: string, doc: Y.Doc = new Y.Doc()) =>
    message(documentName, MessageType.Sync, (e) => {
      encoding.writeVarUint(e, SyncType.Step1);
      encoding.writeVarUint8Array(e, Y.encodeStateVector(doc));
    }),
  update: (documentName: string, update: Uint8Array) =>
    message(documentName, MessageType.Sync, (e) => {
      encoding.writeVarUint(e, SyncType.Update);
      encoding.writeVarUint8Array(e, update);
    }),
  awareness: (documentName: string, clientId: number, state: string) =>
    message(documentName, MessageType.Awareness, (e) => {
      const inner = encoding.createEncoder();
      encoding.writeVarUint(inner, 1);
      encoding.writeVarUint(inner, clientId);
      encoding.writeVarUint(inner, 1);
      encoding.writeVarString(inner, state);
      encoding.writeVarUint8Array(e, encoding.toUint8Array(inner));
    }),
  /** A message whose address bytes are not valid UTF-8. */
  badUtf8Address: () => Uint8Array.from([2, 0xc3, 0x28, MessageType.QueryAwareness]),
};

export interface RawSocket {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  /** Resolves with the close code and reason the server sent. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Every binary message received. */
  readonly received: Uint8Array[];
}

/** A bare WebSocket to the server, closed when the test finishes. */
export function rawSocket(url: string): RawSocket {
  const ws = new WebSocket(url);
  const received: Uint8Array[] = [];
  ws.on("message", (data: Buffer) => received.push(new Uint8Array(data)));
  ws.on("error", () => {});
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code: number, reason: Buffer) =>
      resolve({ code, reason: reason.toString() }),
    ),
  );
  onTestFinished(() => ws.terminate());
  return { ws, opened, closed, received };
}
