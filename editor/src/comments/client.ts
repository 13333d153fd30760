/**
 * commentClient: sends comment operations for a Hocuspocus provider's
 * document (protocol.ts) and settles each once the server stored it or said
 * why not. Operations made while offline wait, in order, and are sent once
 * the provider has synced on a connection (so a thread on text typed offline
 * follows that text to the server); an operation whose connection closed
 * before the answer is sent again on the next one (ids make that safe: the
 * server applies an operation once). `pending` lists what waits, so a page can
 * keep it across a reload (`restore`).
 *
 * No DOM or Tiptap: plain provider users import it from
 * `@collab-docs/editor/comments`.
 */
import type { HocuspocusProvider } from "@hocuspocus/provider";
import type { Person } from "./model.ts";
import { type CommentOperation, encodeCommentRequest, parseCommentAnswer } from "./protocol.ts";

/** Why the server refused an operation: a code (COMMENT_FORBIDDEN, THREAD_NOT_FOUND, ...) and a message. */
export class CommentRefused extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "CommentRefused";
    this.code = code;
  }
}

export interface CommentClient {
  /**
   * Sends `op` (as `as` in anonymous mode; the token's user otherwise). Resolves once the
   * server stored it; rejects with {@link CommentRefused}, or when the client is destroyed.
   */
  send(op: CommentOperation, as?: Person): Promise<void>;
  /** Operations not yet answered, oldest first. */
  readonly pending: readonly CommentOperation[];
  /** Called when {@link pending} changes; returns the function that unsubscribes. */
  onPending(listener: (pending: readonly CommentOperation[]) => void): () => void;
  /** Stops; operations still pending reject. */
  destroy(): void;
}

interface Waiting {
  readonly op: CommentOperation;
  readonly as: Person | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** The request id it was sent under on the current connection, or null when not sent there. */
  sentAs: number | null;
}

export function commentClient(provider: HocuspocusProvider): CommentClient {
  const queue: Waiting[] = [];
  const listeners = new Set<(pending: readonly CommentOperation[]) => void>();
  let synced = provider.isSynced;
  let nextId = 0;
  let destroyed = false;

  const changed = () => {
    const pending = queue.map((w) => w.op);
    for (const listener of listeners) listener(pending);
  };
  const flush = () => {
    if (!synced || destroyed) return;
    for (const waiting of queue) {
      if (waiting.sentAs !== null) continue;
      waiting.sentAs = nextId++;
      provider.sendStateless(
        encodeCommentRequest({
          id: waiting.sentAs,
          op: waiting.op,
          ...(waiting.as === undefined ? {} : { as: waiting.as }),
        }),
      );
    }
  };
  const onSynced = ({ state }: { state: boolean }) => {
    synced = state;
    flush();
  };
  // A closed connection answers nothing more: everything unanswered goes again on the next.
  const onGone = () => {
    synced = false;
    for (const waiting of queue) waiting.sentAs = null;
  };
  const onStateless = ({ payload }: { payload: string }) => {
    const answer = parseCommentAnswer(payload);
    if (answer === null) return;
    const index = queue.findIndex((w) => w.sentAs === answer.id);
    const waiting = queue[index];
    if (waiting === undefined) return;
    queue.splice(index, 1);
    changed();
    if (answer.error === null) waiting.resolve();
    else waiting.reject(new CommentRefused(answer.error.code, answer.error.message));
  };
  provider.on("synced", onSynced);
  provider.on("disconnect", onGone);
  provider.on("close", onGone);
  provider.on("authenticationFailed", onGone);
  provider.on("stateless", onStateless);

  return {
    send(op, as) {
      if (destroyed) return Promise.reject(new Error("the comment client is destroyed"));
      return new Promise<void>((resolve, reject) => {
        queue.push({ op, as, resolve, reject, sentAs: null });
        changed();
        flush();
      });
    },
    get pending() {
      return queue.map((w) => w.op);
    },
    onPending(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      provider.off("synced", onSynced);
      provider.off("disconnect", onGone);
      provider.off("close", onGone);
      provider.off("authenticationFailed", onGone);
      provider.off("stateless", onStateless);
      for (const waiting of queue.splice(0)) {
        waiting.reject(new Error("the comment client was destroyed before the server answered"));
      }
      listeners.clear();
    },
  };
}
