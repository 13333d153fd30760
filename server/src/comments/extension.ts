/**
 * Answers the editor's comment requests (editor/src/comments/protocol.ts),
 * sent as Hocuspocus stateless messages on the document's connection.
 *
 * Who asks is the connection's: with tokens, the token's user and permission
 * (`read` may not comment; `comment` and `write` may); in anonymous mode,
 * the name the client gives (`as`), with `write` standing.
 */
import type {
  afterLoadDocumentPayload,
  connectedPayload,
  Extension,
  onStatelessPayload,
} from "@hocuspocus/server";
import { documentOfThreads, type Person } from "../../../editor/src/comments/model.ts";
import { encodeAccess, encodeCommentAnswer } from "../../../editor/src/comments/protocol.ts";
import type { UserContext } from "../auth/extension.ts";
import { isCollabError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import { type Comments, hasLegacyThreads } from "./comments.ts";
import type { Commenter } from "./threads.ts";
import { parseCommentRequest } from "./wire.ts";

/** The author of a comment written in anonymous mode without a name. */
export const ANONYMOUS: Person = { id: "anonymous", name: "Anonymous" };

export class CommentRequests implements Extension {
  readonly extensionName = "comment-requests";
  private readonly comments: () => Comments | null;
  private readonly logger: Logger;

  /** `comments` is read per request: the service is built after the core that runs this. */
  constructor(comments: () => Comments | null, logger: Logger) {
    this.comments = comments;
    this.logger = logger;
  }

  /**
   * A document opened with threads stored the first way (in its own Y.Doc) has them moved to
   * its threads document, so editors see them; after the load, not awaited by it.
   */
  async afterLoadDocument({ document, documentName }: afterLoadDocumentPayload): Promise<void> {
    const comments = this.comments();
    if (comments === null || documentOfThreads(documentName) !== null) return;
    if (!hasLegacyThreads(document)) return;
    setImmediate(() => {
      comments
        .migrate(documentName)
        .catch((error: unknown) =>
          this.logger.error({ err: error, document: documentName }, "moving threads failed"),
        );
    });
  }

  /** Tells the client what it may do and who it is (editor/src/comments/protocol.ts, AccessInfo). */
  async connected({ connection, context }: connectedPayload<UserContext>): Promise<void> {
    const grant = context?.grant ?? null;
    connection.sendStateless(
      encodeAccess(
        grant === null
          ? { perm: "write", user: null }
          : { perm: grant.perm, user: { id: grant.userId, name: grant.name ?? grant.userId } },
      ),
    );
  }

  async onStateless({ connection, documentName, payload }: onStatelessPayload): Promise<void> {
    const request = parseCommentRequest(payload);
    if (request === null) return;
    const answer = (error: { code: string; message: string } | null) =>
      connection.sendStateless(encodeCommentAnswer({ id: request.id, error }));
    if ("error" in request) {
      answer({ code: request.error.code, message: request.error.message });
      return;
    }
    const by = commenterOf(connection.context as UserContext | undefined, request.as);
    const comments = this.comments();
    if (by === null || comments === null) {
      answer({
        code: "COMMENT_FORBIDDEN",
        message: "this connection may read the document but not comment on it",
      });
      return;
    }
    try {
      await comments.apply(documentName, request.op, by);
      answer(null);
    } catch (error) {
      if (isCollabError(error)) {
        answer({ code: error.code, message: error.message });
        return;
      }
      this.logger.error({ err: error, document: documentName }, "comment request failed");
      answer({ code: "INTERNAL", message: "the server could not apply the comment; see its log" });
    }
  }
}

/** Who a connection comments as, or null when it may not comment. */
export function commenterOf(context: UserContext | undefined, as: Person | null): Commenter | null {
  const grant = context?.grant ?? null;
  if (grant === null) return { person: as ?? ANONYMOUS, role: "write" };
  if (grant.perm === "read") return null;
  return {
    person: { id: grant.userId, name: grant.name ?? grant.userId },
    role: grant.perm,
  };
}
