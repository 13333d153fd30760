/**
 * Loading on first use (dynamic imports of modules most processes never
 * need), shared by every caller, without keeping a failure: a load that
 * failed (a file missing mid-upgrade, too many open files) is tried again
 * by the next caller instead of failing every later request.
 */
export function lazily<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
