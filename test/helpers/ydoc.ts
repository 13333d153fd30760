/** Small builders for Yjs documents and updates used across tests. */
import * as Y from "yjs";

/** Applies `updates` to a fresh document and returns it. */
export function docFrom(updates: readonly Uint8Array[]): Y.Doc {
  const doc = new Y.Doc();
  Y.transact(doc, () => {
    for (const update of updates) Y.applyUpdate(doc, update);
  });
  return doc;
}

/** The text of the shared type `name` ("text" by default). */
export function textOf(doc: Y.Doc, name = "text"): string {
  return doc.getText(name).toString();
}

/**
 * A writer that types into a Y.Text and hands out each edit as its own update,
 * the way a client sends them.
 */
export class Typist {
  readonly doc = new Y.Doc();
  private readonly pending: Uint8Array[] = [];

  constructor() {
    this.doc.on("update", (update: Uint8Array) => this.pending.push(update));
  }

  /** Inserts `text` at `index` (default: the end) and returns the update. */
  type(text: string, index?: number): Uint8Array {
    const ytext = this.doc.getText("text");
    ytext.insert(index ?? ytext.length, text);
    return this.take();
  }

  /** Deletes `length` characters at `index` and returns the update. */
  erase(index: number, length: number): Uint8Array {
    this.doc.getText("text").delete(index, length);
    return this.take();
  }

  get text(): string {
    return this.doc.getText("text").toString();
  }

  private take(): Uint8Array {
    const update = this.pending.shift();
    if (update === undefined) throw new Error("the edit produced no update");
    return update;
  }
}
