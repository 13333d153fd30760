/**
 * Answers clients' stored-confirmation questions (editor/src/save-protocol.ts):
 * "is everything I sent on this connection before this question stored?".
 * Hocuspocus handles a connection's messages one at a time, in order, so when
 * the question is read every earlier change from that connection has been
 * applied, and its append queued; the answer waits until those writes are
 * durable. This is what the editor's "All changes saved" waits for, instead
 * of the provider's acknowledgement count (see editor/src/saves.ts).
 */
import type { Extension, onStatelessPayload } from "@hocuspocus/server";
import { encodeStoredAnswer, parseStoredQuestion } from "../../../editor/src/save-protocol.ts";
import type { DurablePersistence } from "./extension.ts";

export class StoredConfirmations implements Extension {
  readonly extensionName = "stored-confirmations";
  private readonly persistence: DurablePersistence;

  constructor(persistence: DurablePersistence) {
    this.persistence = persistence;
  }

  async onStateless({ connection, documentName, payload }: onStatelessPayload): Promise<void> {
    const question = parseStoredQuestion(payload);
    if (question === null) return;
    if (connection.readOnly) {
      // Its changes are refused, never stored: say so rather than leave the client waiting.
      connection.sendStateless(encodeStoredAnswer({ id: question.id, refused: "read-only" }));
      return;
    }
    // Null while the document is being deleted or unloaded: no answer; the connection closes.
    const stored = this.persistence.whenStored(documentName);
    stored?.then(
      () => connection.sendStateless(encodeStoredAnswer({ id: question.id, refused: null })),
      // A write given up at shutdown: never confirmed.
      () => {},
    );
  }
}
