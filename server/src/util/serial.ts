/**
 * Runs tasks one at a time per key: a task starts once the one queued before
 * it under the same key has settled (whether it succeeded or not). Keys with
 * nothing queued are forgotten, so the map holds only keys with work.
 */
export class SerialByKey<K> {
  private readonly last = new Map<K, Promise<unknown>>();

  /** Queues `task` behind the tasks of `key`; resolves or rejects as it does. */
  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const previous = this.last.get(key) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(task);
    this.last.set(key, next);
    const forget = () => {
      if (this.last.get(key) === next) this.last.delete(key);
    };
    next.then(forget, forget);
    return next;
  }

  /** Resolves once every task queued so far has settled. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.last.values()]);
  }
}
