/**
 * Transaction origins: every change applied to a server-side document says
 * where it came from, so persistence can tell new edits (store them) from
 * state read back from the store or relayed by another instance (do not).
 * These are Hocuspocus' own origin shapes; we only name the ones we create.
 */
import { isTransactionOrigin, type LocalTransactionOrigin } from "@hocuspocus/server";

/** State read from the store while a document loads. */
export const loadOrigin: LocalTransactionOrigin = Object.freeze({
  source: "local",
  skipStoreHooks: true,
  context: { reason: "load" },
});

/**
 * Whether a change with this origin is already stored (or will be by another
 * instance) and must not be appended again.
 */
export function isAlreadyStored(origin: unknown): boolean {
  if (!isTransactionOrigin(origin)) return false;
  switch (origin.source) {
    case "connection":
      return false;
    case "redis":
      return true;
    case "local":
      return origin.skipStoreHooks === true;
  }
}
