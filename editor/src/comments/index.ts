/**
 * @collab-docs/editor/comments: comments for plain Hocuspocus providers, with
 * no DOM or Tiptap code (it loads in Node too).
 *
 * - Open a document's threads beside it: a provider for
 *   `threadsDocumentName(name)` on the same socket, with the same token
 *   (read-only: only the server writes threads), and `readThreads(doc)` of
 *   its document.
 * - Ask for changes with `commentClient(provider)` on the document's own
 *   provider: `send({ op: "create" | "reply" | ... })` settles once the
 *   server stored it, or rejects with {@link CommentRefused}.
 */
export {
  type CommentClient,
  CommentRefused,
  commentClient,
} from "./client.ts";
export {
  COMMENT_MARK,
  commentMarkKey,
  documentOfThreads,
  getThread,
  type Mention,
  type Person,
  readThreads,
  THREADS,
  type Thread,
  type ThreadComment,
  type ThreadStatus,
  threadsDocumentName,
} from "./model.ts";
export type { AccessInfo, CommentOperation } from "./protocol.ts";
