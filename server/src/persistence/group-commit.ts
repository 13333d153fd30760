/**
 * Group commit: writes are gathered into batches and one batch is written at
 * a time. While a batch is in flight the next one gathers, so at low load a
 * write goes out at once (no fixed delay) and at high load each write call
 * carries many updates. A failed batch is retried with capped exponential
 * backoff, in order, until it succeeds or the queue is aborted: a write is
 * never dropped and never overtaken by a later one.
 */
import { CollabError } from "../errors.ts";

export interface GroupCommitOptions<Op> {
  /** Writes one batch atomically; rejects when nothing of it was written. */
  readonly write: (batch: readonly Op[]) => Promise<void>;
  /** Bytes an operation adds to a batch, for `maxBatchBytes`. */
  readonly sizeOf: (op: Op) => number;
  /**
   * Operations that must be written in a batch of their own (they read what
   * the store holds, so nothing of theirs may be staged in the same batch).
   * @default none
   */
  readonly alone?: (op: Op) => boolean;
  /** Upper bound on operations per batch. @default 10_000 */
  readonly maxBatchOps?: number;
  /** Upper bound on bytes per batch (a single larger operation still goes alone). @default 8 MiB */
  readonly maxBatchBytes?: number;
  /** First retry delay after a failed batch, doubling up to `maxRetryMs`. @default 50 */
  readonly initialRetryMs?: number;
  /** @default 5_000 */
  readonly maxRetryMs?: number;
  /** Runs before each retry, e.g. to reopen a database that entered an error state. */
  readonly beforeRetry?: () => Promise<void>;
  /** `beforeRetry` failed; the write is retried anyway (and counted again if it fails). */
  readonly onRecoveryFailed?: (error: unknown) => void;
  readonly onWritten?: (info: { operations: number; bytes: number; seconds: number }) => void;
  readonly onFailed?: (info: { error: unknown; attempt: number; retryInMs: number }) => void;
}

interface Batch<Op> {
  readonly ops: Op[];
  bytes: number;
  sealed: boolean;
  /** Holds one operation that must be written alone: nothing joins it. */
  alone: boolean;
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommitQueue<Op> {
  private readonly batches: Batch<Op>[] = [];
  private running = false;
  private closed = false;
  private aborted: unknown = null;
  private failingSince: { since: number; error: unknown } | null = null;
  private wakeRetry: (() => void) | null = null;
  private queued = 0;
  private abandonedOps = 0;
  private readonly maxOps: number;
  private readonly maxBytes: number;

  private readonly options: GroupCommitOptions<Op>;

  constructor(options: GroupCommitOptions<Op>) {
    this.options = options;
    this.maxOps = options.maxBatchOps ?? 10_000;
    this.maxBytes = options.maxBatchBytes ?? 8 * 1024 * 1024;
  }

  /** Queues `op`; resolves once the batch holding it is durable. */
  push(op: Op): Promise<void> {
    if (this.closed) {
      return Promise.reject(new CollabError("STORE_CLOSED", "the store is closed"));
    }
    const size = this.options.sizeOf(op);
    const alone = this.options.alone?.(op) ?? false;
    let batch = this.batches.at(-1);
    if (
      batch === undefined ||
      batch.sealed ||
      batch.alone ||
      (alone && batch.ops.length > 0) ||
      batch.ops.length >= this.maxOps ||
      (batch.ops.length > 0 && batch.bytes + size > this.maxBytes)
    ) {
      batch = newBatch<Op>();
      this.batches.push(batch);
    }
    batch.alone = alone;
    batch.ops.push(op);
    batch.bytes += size;
    this.queued++;
    if (!this.running) {
      this.running = true;
      // A microtask, not a timer: a synchronous burst lands in one batch at no added latency.
      queueMicrotask(() => void this.run());
    }
    return batch.done;
  }

  /**
   * Queues `ops` as one batch of their own, written atomically: all of them or
   * none. Resolves once that batch is durable.
   */
  pushGroup(ops: readonly Op[]): Promise<void> {
    if (this.closed) {
      return Promise.reject(new CollabError("STORE_CLOSED", "the store is closed"));
    }
    const batch = newBatch<Op>();
    batch.alone = true;
    for (const op of ops) {
      batch.ops.push(op);
      batch.bytes += this.options.sizeOf(op);
    }
    this.batches.push(batch);
    this.queued += ops.length;
    if (!this.running) {
      this.running = true;
      queueMicrotask(() => void this.run());
    }
    return batch.done;
  }

  /** Resolves once every operation pushed so far is durable. */
  flush(): Promise<void> {
    return this.batches.at(-1)?.done ?? Promise.resolve();
  }

  /** Operations pushed but not yet durable. */
  get pending(): number {
    return this.queued;
  }

  /** Operations rejected by {@link abort} (never written). */
  get abandoned(): number {
    return this.abandonedOps;
  }

  /** When and why the batch in flight last failed, or null while writes succeed. */
  get failing(): { since: number; error: unknown } | null {
    return this.failingSince;
  }

  /** Refuses new operations and waits until the queued ones are durable. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** Stops retrying and rejects every queued operation with `reason`. */
  abort(reason: unknown): void {
    this.closed = true;
    this.aborted = reason;
    this.wakeRetry?.();
    if (!this.running) this.rejectAll(reason);
  }

  private rejectAll(reason: unknown): void {
    for (const batch of this.batches.splice(0)) {
      this.abandonedOps += batch.ops.length;
      batch.reject(reason);
    }
    this.queued = 0;
  }

  private async run(): Promise<void> {
    const { initialRetryMs = 50, maxRetryMs = 5_000 } = this.options;
    while (this.batches.length > 0) {
      const batch = this.batches[0] as Batch<Op>;
      batch.sealed = true;
      for (let attempt = 1; ; attempt++) {
        if (this.aborted !== null) {
          this.running = false;
          this.rejectAll(this.aborted);
          return;
        }
        const started = performance.now();
        try {
          await this.options.write(batch.ops);
          this.options.onWritten?.({
            operations: batch.ops.length,
            bytes: batch.bytes,
            seconds: (performance.now() - started) / 1000,
          });
          break;
        } catch (error) {
          const retryInMs = Math.min(maxRetryMs, initialRetryMs * 2 ** (attempt - 1));
          this.failingSince ??= { since: Date.now(), error };
          this.failingSince = { since: this.failingSince.since, error };
          this.options.onFailed?.({ error, attempt, retryInMs });
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, retryInMs);
            this.wakeRetry = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wakeRetry = null;
          if (this.aborted === null) {
            try {
              await this.options.beforeRetry?.();
            } catch (recoveryError) {
              this.options.onRecoveryFailed?.(recoveryError);
            }
          }
        }
      }
      this.failingSince = null;
      this.batches.shift();
      this.queued -= batch.ops.length;
      batch.resolve();
    }
    this.running = false;
  }
}

function newBatch<Op>(): Batch<Op> {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers may drop the promise of a batch they only flush through; never report it as unhandled.
  done.catch(() => {});
  return { ops: [], bytes: 0, sealed: false, alone: false, done, resolve, reject };
}
