/**
 * The comparison schema: the document schema plus what a comparison of two
 * versions of a document marks (`GET .../versions/{id}/compare`, the history
 * panel's Compare).
 *
 * - Text (and line breaks) added between the two carries the `insertion` mark,
 *   rendered as `<ins class="collab-insertion">`; text removed carries the
 *   `deletion` mark, `<del class="collab-deletion">`.
 * - A block added or removed as a whole (a paragraph, a list item, a table
 *   row, a rule) has the `change` attribute `"inserted"` or `"deleted"`,
 *   rendered as `data-change`, and all its text is marked too.
 * - Code blocks may hold both marks, so a change inside code shows as in any
 *   other text.
 *
 * These exist only here: the live document's schema (`schemaExtensions`) has
 * none of them, so nothing an editor or the API writes can carry them, and a
 * comparison is only ever shown read-only. The server builds comparisons with
 * this schema and the app shows them with it.
 */
import { Extension, type Extensions, Mark } from "@tiptap/core";
import { CodeBlock } from "@tiptap/extension-code-block";
import { schemaExtensions } from "./extensions.ts";

/** The mark of text that the later document has and the earlier one had not. */
export const INSERTION_MARK = "insertion";
/** The mark of text that the earlier document had and the later one has not. */
export const DELETION_MARK = "deletion";
/** The node attribute of a block added or removed whole: {@link BlockChange} or null. */
export const CHANGE_ATTRIBUTE = "change";

/** How a block differs between the compared documents. */
export type BlockChange = "inserted" | "deleted";

const Insertion = Mark.create({
  name: INSERTION_MARK,
  inclusive: false,
  parseHTML() {
    return [{ tag: "ins" }];
  },
  renderHTML() {
    return ["ins", { class: "collab-insertion" }, 0];
  },
});

const Deletion = Mark.create({
  name: DELETION_MARK,
  inclusive: false,
  parseHTML() {
    return [{ tag: "del" }];
  },
  renderHTML() {
    return ["del", { class: "collab-deletion" }, 0];
  },
});

/** The `change` attribute on every node type; rendered only when set. */
const BlockChanges = Extension.create({
  name: "blockChanges",
  addGlobalAttributes() {
    return [
      {
        types: "nodes",
        attributes: {
          [CHANGE_ATTRIBUTE]: {
            default: null,
            parseHTML: (element: HTMLElement) => {
              const value = element.getAttribute("data-change");
              return value === "inserted" || value === "deleted" ? value : null;
            },
            renderHTML: (attributes: Record<string, unknown>) => {
              const value = attributes[CHANGE_ATTRIBUTE];
              return value === "inserted" || value === "deleted" ? { "data-change": value } : {};
            },
          },
        },
      },
    ];
  },
});

/** Code blocks that may hold insertions and deletions (the document schema's hold no marks). */
const ComparedCodeBlock = CodeBlock.extend({ marks: `${INSERTION_MARK} ${DELETION_MARK}` });

/**
 * The document schema's extensions ({@link schemaExtensions}) plus the
 * insertion and deletion marks and the `change` block attribute. A
 * document of the document schema is a document of this one.
 */
export function comparisonExtensions(): Extensions {
  const extensions = schemaExtensions().map((extension) =>
    // StarterKit's own code block gives way to one that allows the two marks.
    extension.name === "starterKit" ? extension.configure({ codeBlock: false }) : extension,
  );
  if (extensions.every((extension) => extension.name !== "starterKit")) {
    throw new Error("schemaExtensions() no longer has StarterKit: revisit the comparison schema");
  }
  return [...extensions, ComparedCodeBlock, Insertion, Deletion, BlockChanges];
}
