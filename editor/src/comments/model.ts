/**
 * Comment threads as they live in a document's Y.Doc (SPEC.md, COM1-COM3).
 * Shared by the editor, which reads them, and the server, which alone writes
 * them (server/src/comments/).
 *
 * - Threads live in a companion Y.Doc, the document's threads document
 *   ({@link threadsDocumentName}), stored, synced, trashed, restored and
 *   exported with the document, so the text loads without them.
 * - A thread is a Y.Map in the root map {@link THREADS}, under its id. Its
 *   own fields are keys of that map (`id`, `author`, `created`, `quote`,
 *   `status`, `statusBy`, `statusAt`); each comment is a key `c:<comment id>`
 *   holding the comment as one JSON value. So a reply written on one server
 *   and a resolve on another both survive: they are different keys.
 * - Where a thread sits in the text is a mark in the content: the text it
 *   covers carries the `comment` mark with `{ thread: id }`. A mark moves
 *   with its text through every edit (typing inside, deleting part, splitting
 *   or joining its paragraph), since the editor's binding copies marks with
 *   the text it moves. A thread whose text is all deleted keeps its `quote`
 *   and is shown detached.
 * - The mark is stored as y-tiptap stores marks that may overlap (several
 *   threads on the same words): a formatting attribute
 *   `comment--<hash of the mark's JSON>` ({@link commentMarkKey}).
 */
import * as buffer from "lib0/buffer";
import { digest } from "lib0/hash/sha256";
import * as Y from "yjs";

/** The root map of threads, in the document's threads document ({@link threadsDocumentName}). */
export const THREADS = "threads";

/**
 * What ends the name of a document's threads document: a control character,
 * which no document name may hold, so it never names a document of its own.
 */
export const THREADS_DOCUMENT_SUFFIX = "\u001fthreads";

/**
 * The name of the Yjs document holding the threads of document `name`. The
 * text and its marks are in `name`; the threads in this companion, opened
 * beside it, so opening a document never waits for its discussion. Only the
 * server writes it: every client connection to it is read-only.
 */
export function threadsDocumentName(name: string): string {
  return name + THREADS_DOCUMENT_SUFFIX;
}

/** The document whose threads document `name` is, or null when it is not one. */
export function documentOfThreads(name: string): string | null {
  return name.endsWith(THREADS_DOCUMENT_SUFFIX) && name.length > THREADS_DOCUMENT_SUFFIX.length
    ? name.slice(0, -THREADS_DOCUMENT_SUFFIX.length)
    : null;
}
/** The mark (and its ProseMirror name) that anchors a thread in the text. */
export const COMMENT_MARK = "comment";
/** Key prefix of a comment inside its thread's map. */
export const COMMENT_KEY_PREFIX = "c:";

/** Someone who wrote, resolved or is mentioned. */
export interface Person {
  readonly id: string;
  readonly name: string;
}

/** A mention inside a comment: who, and the label shown for them (`@label` in the body). */
export interface Mention {
  readonly id: string;
  readonly label: string;
}

export interface ThreadComment {
  readonly id: string;
  readonly author: Person;
  /** Plain text; a mention appears in it as `@label`. */
  readonly body: string;
  readonly mentions: readonly Mention[];
  /** ms since the epoch. */
  readonly created: number;
  /** When the body was last edited, or null. */
  readonly edited: number | null;
}

export type ThreadStatus = "open" | "resolved";

export interface Thread {
  readonly id: string;
  readonly author: Person;
  readonly created: number;
  /** The text the thread was made on, kept for when that text is gone. */
  readonly quote: string;
  readonly status: ThreadStatus;
  /** Who resolved or reopened it last, and when (null when never). */
  readonly statusBy: Person | null;
  readonly statusAt: number | null;
  /** Oldest first. */
  readonly comments: readonly ThreadComment[];
}

/** Longest comment body, in characters. */
export const MAX_BODY_CHARS = 10_000;
/** Most mentions in one comment. */
export const MAX_MENTIONS = 50;
/** Most threads one document keeps, open and resolved; more are refused with COMMENT_LIMIT. */
export const MAX_THREADS = 5_000;
/** Most comments one thread keeps; more are refused with COMMENT_LIMIT. */
export const MAX_COMMENTS_PER_THREAD = 500;
/** Longest quote kept with a thread, in characters. */
export const MAX_QUOTE_CHARS = 2_000;
/** Ids: chosen by clients, so threads and comments made offline keep theirs. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const textEncoder = new TextEncoder();

/**
 * The formatting attribute that carries thread `threadId`'s mark: y-tiptap's key for
 * a mark of a type that may overlap itself (`<name>--` and 8 characters of base64 of the
 * mark's JSON hashed), so the editor reads it as a `comment` mark and writes the same key
 * back. Depends on y-tiptap's hashing (docs/patches.md, guarded by a test).
 */
export function commentMarkKey(threadId: string): string {
  const hash = digest(buffer.encodeAny({ type: COMMENT_MARK, attrs: { thread: threadId } }));
  // y-tiptap folds the SHA-256 digest into 6 bytes (8 characters of base64).
  const folded = hash.slice(0, 6);
  for (let i = 6; i < hash.length; i++) folded[i % 6] = (folded[i % 6] ?? 0) ^ (hash[i] ?? 0);
  return `${COMMENT_MARK}--${buffer.toBase64(folded)}`;
}

/** Whether formatting attribute `key` is a thread's mark (whatever its value: null ends it). */
export function isThreadMarkKey(key: string): boolean {
  return key === COMMENT_MARK || key.startsWith(`${COMMENT_MARK}--`);
}

/** The thread whose mark a formatting attribute is, or null for any other attribute. */
export function threadOfAttribute(key: string, value: unknown): string | null {
  if (!isThreadMarkKey(key)) return null;
  const thread = (value as { thread?: unknown } | null)?.thread;
  return typeof thread === "string" ? thread : null;
}

/** Every thread of `doc`, oldest first. Malformed entries are skipped. */
export function readThreads(doc: Y.Doc): Thread[] {
  const threads: Thread[] = [];
  for (const value of doc.getMap(THREADS).values()) {
    const thread = value instanceof Y.Map ? readThread(value) : null;
    if (thread !== null) threads.push(thread);
  }
  return threads.sort((a, b) => a.created - b.created || compare(a.id, b.id));
}

/** One thread, or null when `doc` has none with that id. */
export function getThread(doc: Y.Doc, id: string): Thread | null {
  const value = doc.getMap(THREADS).get(id);
  return value instanceof Y.Map ? readThread(value) : null;
}

/** A thread's fields from its map, or null when they are not a thread's. */
export function readThread(map: Y.Map<unknown>): Thread | null {
  const id = map.get("id");
  const author = person(map.get("author"));
  const created = map.get("created");
  const quote = map.get("quote");
  const status = map.get("status");
  if (typeof id !== "string" || author === null || typeof created !== "number") return null;
  const comments: ThreadComment[] = [];
  for (const [key, value] of map.entries()) {
    if (!key.startsWith(COMMENT_KEY_PREFIX)) continue;
    const comment = readComment(value);
    if (comment !== null) comments.push(comment);
  }
  comments.sort((a, b) => a.created - b.created || compare(a.id, b.id));
  const statusAt = map.get("statusAt");
  return {
    id,
    author,
    created,
    quote: typeof quote === "string" ? quote : "",
    status: status === "resolved" ? "resolved" : "open",
    statusBy: person(map.get("statusBy")),
    statusAt: typeof statusAt === "number" ? statusAt : null,
    comments,
  };
}

function readComment(value: unknown): ThreadComment | null {
  if (typeof value !== "object" || value === null) return null;
  const { id, author, body, mentions, created, edited } = value as Record<string, unknown>;
  const by = person(author);
  if (typeof id !== "string" || by === null || typeof body !== "string") return null;
  if (typeof created !== "number") return null;
  return {
    id,
    author: by,
    body,
    mentions: Array.isArray(mentions) ? mentions.flatMap((m) => mention(m)) : [],
    created,
    edited: typeof edited === "number" ? edited : null,
  };
}

function person(value: unknown): Person | null {
  if (typeof value !== "object" || value === null) return null;
  const { id, name } = value as Record<string, unknown>;
  return typeof id === "string" && typeof name === "string" ? { id, name } : null;
}

function mention(value: unknown): Mention[] {
  if (typeof value !== "object" || value === null) return [];
  const { id, label } = value as Record<string, unknown>;
  return typeof id === "string" && typeof label === "string" ? [{ id, label }] : [];
}

/** Byte order, so every replica sorts ties alike. */
function compare(a: string, b: string): number {
  const x = textEncoder.encode(a);
  const y = textEncoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return x.length - y.length;
}
