/**
 * The `comment` mark: the text a thread is on (comments/model.ts). Part of the
 * document schema, so the server's conversions know it too.
 *
 * - Marks of several threads may cover the same text (`excludes: ""`); y-tiptap
 *   then stores each under its own hashed key.
 * - Typing at either edge does not extend it (`inclusive: false`); typing inside does.
 * - It has no parse rule: pasted HTML never brings a thread's mark along (a copy
 *   would anchor the same thread twice). Rendered as a `<span>` with the thread's id.
 * - Only the server adds or removes it, with the thread itself.
 */
import { Mark } from "@tiptap/core";
import { COMMENT_MARK } from "./model.ts";

export const CommentMark = Mark.create({
  name: COMMENT_MARK,
  excludes: "",
  inclusive: false,
  spanning: true,

  addAttributes() {
    return {
      thread: {
        default: null,
        renderHTML: (attributes: { thread?: unknown }) =>
          typeof attributes.thread === "string" ? { "data-thread": attributes.thread } : {},
      },
    };
  },

  parseHTML() {
    return [];
  },

  renderHTML({ HTMLAttributes }) {
    return ["span", { ...HTMLAttributes, class: "collab-comment" }, 0];
  },

  // Markdown has no comments: the text is written without them.
  renderMarkdown(node, helpers) {
    return helpers.renderChildren(node);
  },
});
