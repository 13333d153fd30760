/**
 * Images and file cards in the document schema, shared by the editor and
 * the server's conversions. Their bytes are never in the document: a node
 * holds the attachment's id (the SHA-256 the server stores it under, see
 * server/src/attachments/) and the editor's node views (./views.ts) fetch
 * them. `src` keeps the attachment's path on the server it was uploaded to,
 * so HTML and Markdown exports link somewhere; the id is what counts.
 *
 * `pending` is set while an image or file is uploading (the uploader's
 * local id): others see a placeholder until the id arrives.
 */
import { mergeAttributes, Node } from "@tiptap/core";
import Image from "@tiptap/extension-image";

/** An attachment id in an attachment path (`.../attachments/<64 hex>`), or null. */
export function attachmentIdOf(src: string | null | undefined): string | null {
  const match = /\/attachments\/([0-9a-f]{64})(?:[?#]|$)/.exec(src ?? "");
  return match?.[1] ?? null;
}

/** A width attribute as a number of CSS pixels, or null when absent or nonsense. */
function widthOf(value: string | null): number | null {
  const width = Number.parseInt(value ?? "", 10);
  return Number.isFinite(width) && width >= 16 && width <= 10_000 ? width : null;
}

/** The attributes every attachment node has. */
const attachmentAttribute = {
  attachment: {
    default: null,
    parseHTML: (element: HTMLElement) =>
      element.getAttribute("data-attachment") ??
      attachmentIdOf(element.getAttribute("src") ?? element.getAttribute("href")),
    renderHTML: (attributes: Record<string, unknown>) =>
      typeof attributes.attachment === "string" ? { "data-attachment": attributes.attachment } : {},
  },
  pending: { default: null, rendered: false, parseHTML: () => null },
};

/**
 * A block image: alt text, width (resizing keeps it), and its attachment.
 * Only attachments: an `<img>` or Markdown image that is not one of this
 * server's attachments is left out when parsed (it would make every reader
 * fetch from a third party), as an unsafe link is.
 */
export const AttachmentImage = Image.extend({
  parseHTML() {
    return [
      {
        tag: "img[src]",
        getAttrs: (element: HTMLElement) =>
          (element.getAttribute("data-attachment") ??
            attachmentIdOf(element.getAttribute("src"))) === null
            ? false
            : null,
      },
    ];
  },

  parseMarkdown: (token, helpers) => {
    const attachment = attachmentIdOf(token.href);
    if (attachment === null) return [];
    return helpers.createNode("image", {
      src: token.href,
      title: token.title,
      alt: token.text,
      attachment,
    });
  },

  addAttributes() {
    return {
      ...this.parent?.(),
      ...attachmentAttribute,
      width: {
        default: null,
        parseHTML: (element: HTMLElement) => widthOf(element.getAttribute("width")),
        renderHTML: (attributes: Record<string, unknown>) =>
          typeof attributes.width === "number" ? { width: String(attributes.width) } : {},
      },
    };
  },
}).configure({ inline: false, allowBase64: false });

/** A file that is not shown inline: a card with its name and size that downloads it. */
export const AttachmentFile = Node.create({
  name: "file",
  group: "block",
  atom: true,
  draggable: true,
  selectable: true,

  addAttributes() {
    return {
      ...attachmentAttribute,
      src: {
        default: null,
        parseHTML: (element: HTMLElement) => element.getAttribute("href"),
        renderHTML: (attributes: Record<string, unknown>) =>
          typeof attributes.src === "string" ? { href: attributes.src } : {},
      },
      filename: {
        default: "",
        parseHTML: (element: HTMLElement) =>
          element.getAttribute("data-filename") ?? element.textContent ?? "",
        renderHTML: (attributes: Record<string, unknown>) => ({
          "data-filename": String(attributes.filename ?? ""),
        }),
      },
      size: {
        default: null,
        parseHTML: (element: HTMLElement) => {
          const size = Number(element.getAttribute("data-size"));
          return Number.isSafeInteger(size) && size >= 0 ? size : null;
        },
        renderHTML: (attributes: Record<string, unknown>) =>
          typeof attributes.size === "number" ? { "data-size": String(attributes.size) } : {},
      },
    };
  },

  parseHTML() {
    // Before the link mark's rule, which would take the card for a link.
    return [{ tag: "a[data-file]", priority: 100 }];
  },

  renderHTML({ node, HTMLAttributes }) {
    const name = String(node.attrs.filename || "file");
    return ["a", mergeAttributes({ "data-file": "", download: name }, HTMLAttributes), name];
  },

  renderMarkdown: (node) => {
    const name = String(node.attrs?.filename || "file").replace(/[[\]\\]/g, "\\$&");
    const src = String(node.attrs?.src ?? "");
    return `[${name}](${src})`;
  },
});

/** A size in bytes for people: "912 B", "14.2 KB", "3.1 MB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
