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

/**
 * At most `limit` holders at once; the rest wait in arrival order. Each
 * `acquire` resolves with the function that gives the slot back (once).
 */
export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(limit: number) {
    this.free = limit;
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    };
  }
}
