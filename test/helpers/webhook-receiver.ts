/**
 * A webhook receiver on 127.0.0.1, port 0: records every delivery with
 * whether its signature verifies; closed when the test finishes.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { onTestFinished } from "vitest";
import { verifySignature } from "../../server/src/webhooks/signature.ts";

export interface ReceivedEvent {
  readonly type: string;
  readonly data: { document: string } & Record<string, unknown>;
  /** Whether `x-collab-signature` verifies with the receiver's secret. */
  readonly valid: boolean;
}

export async function signedReceiver(
  secret: string,
): Promise<{ url: string; received: ReceivedEvent[] }> {
  const received: ReceivedEvent[] = [];
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString("utf8")) as Omit<ReceivedEvent, "valid">;
      const header = request.headers["x-collab-signature"];
      received.push({
        ...body,
        valid: verifySignature(raw, Array.isArray(header) ? header[0] : header, secret),
      });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, received };
}
