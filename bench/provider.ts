/** Waits on a Hocuspocus provider, shared by the benchmarks that drive providers from Node. */
import type { HocuspocusProvider } from "@hocuspocus/provider";
import type * as Y from "yjs";

/** Resolves once `provider` has synced; rejects if the server refuses the document. */
export function whenSynced(provider: HocuspocusProvider): Promise<void> {
  return new Promise((resolve, reject) => {
    if (provider.isSynced) {
      resolve();
      return;
    }
    provider.on("synced", () => resolve());
    provider.on("authenticationFailed", ({ reason }: { reason: string }) =>
      reject(new Error(`the server refused the document: ${reason}`)),
    );
  });
}

/** Resolves with the time at which `provider` has no unacknowledged change left. */
export function whenAcknowledged(provider: HocuspocusProvider): Promise<number> {
  return new Promise((resolve) => {
    if (provider.unsyncedChanges === 0) {
      resolve(performance.now());
      return;
    }
    const onChange = ({ number }: { number: number }) => {
      if (number !== 0) return;
      provider.off("unsyncedChanges", onChange);
      resolve(performance.now());
    };
    provider.on("unsyncedChanges", onChange);
  });
}

/** Resolves once `predicate(doc)` holds, checked now and after every transaction. */
export function until(doc: Y.Doc, predicate: (doc: Y.Doc) => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (predicate(doc)) {
      resolve();
      return;
    }
    const check = () => {
      if (!predicate(doc)) return;
      doc.off("afterTransaction", check);
      resolve();
    };
    doc.on("afterTransaction", check);
  });
}
