/**
 * Refuses a document whose name breaks the naming rule (protocol/names.ts)
 * before anything is loaded for it. The threads document of a valid name is
 * valid (clients open it beside the document; comments/). The refusal is per document: other
 * documents on the same socket are unaffected.
 */
import type { Extension, onConnectPayload } from "@hocuspocus/server";
import { CollabError, Refusal } from "../errors.ts";
import { checkStoredName } from "../protocol/names.ts";

export class DocumentNameGuard implements Extension {
  readonly extensionName = "document-name-guard";
  /** Before every other extension: nothing should see an invalid name. */
  readonly priority = 10_000;
  private readonly onRefused: (reason: string) => void;

  constructor(onRefused: (reason: string) => void = () => {}) {
    this.onRefused = onRefused;
  }

  async onConnect({ documentName }: onConnectPayload): Promise<void> {
    const problem = checkStoredName(documentName);
    if (problem === null) return;
    this.onRefused(Refusal.invalidName);
    throw new CollabError("DOCUMENT_NAME_INVALID", problem, {
      reason: `${Refusal.invalidName}: ${problem}`,
    });
  }
}
