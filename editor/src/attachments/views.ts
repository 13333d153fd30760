/**
 * How the editor shows images and file cards: from the server by their
 * attachment id (with a signed URL where tokens are on), from the local file
 * while this editor uploads it (with progress), or as a placeholder while
 * someone else's upload is on its way. A selected image has a field for its
 * alt text and a handle that resizes it; both are stored in the document.
 */
import type { Editor, NodeViewRenderer } from "@tiptap/core";
import type { Node as PmNode } from "@tiptap/pm/model";
import type { AttachmentClient } from "./client.ts";
import { formatBytes } from "./nodes.ts";
import type { Uploads } from "./uploads.ts";

/** Narrowest an image may be resized to, in CSS pixels. */
const MIN_WIDTH = 48;

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  node.className = className;
  return node;
}

/** Sets attributes of the node at `getPos()`, outside the undo history when `history` is false. */
function setAttrs(
  editor: Editor,
  getPos: () => number | undefined,
  attrs: Record<string, unknown>,
): void {
  const pos = getPos();
  if (pos === undefined || !editor.isEditable) return;
  const node = editor.state.doc.nodeAt(pos);
  if (node === null) return;
  editor.view.dispatch(editor.state.tr.setNodeMarkup(pos, undefined, { ...node.attrs, ...attrs }));
}

/** The node views of images and file cards, for `schemaExtensions({ attachmentViews })`. */
export function attachmentViews(
  client: AttachmentClient,
  uploads: Uploads,
): { readonly image: NodeViewRenderer; readonly file: NodeViewRenderer } {
  const image: NodeViewRenderer = ({ editor, node: initial, getPos }) => {
    const doc = editor.view.dom.ownerDocument;
    let node = initial;
    const dom = el(doc, "figure", "collab-image");
    const frame = el(doc, "div", "collab-image__frame");
    const img = el(doc, "img", "collab-image__img");
    img.draggable = false;
    const status = el(doc, "div", "collab-image__status");
    const bar = el(doc, "div", "collab-image__progress");
    const fill = el(doc, "span", "collab-image__progress-fill");
    bar.append(fill);
    const handle = el(doc, "span", "collab-image__handle");
    handle.title = "Drag to resize";
    handle.setAttribute("aria-hidden", "true");
    const alt = el(doc, "input", "collab-image__alt");
    alt.type = "text";
    alt.placeholder = "Describe this image (alt text)";
    alt.setAttribute("aria-label", "Alt text");
    frame.append(img, bar, status, handle);
    dom.append(frame, alt);

    let shown: string | null = null;
    let unwatch = () => {};
    let watching: string | null = null;
    const render = () => {
      const { attachment, pending, width } = node.attrs as {
        attachment: string | null;
        pending: string | null;
        width: number | null;
      };
      img.alt = String(node.attrs.alt ?? "");
      if (doc.activeElement !== alt) alt.value = String(node.attrs.alt ?? "");
      frame.style.width = typeof width === "number" ? `${width}px` : "";
      const local = pending === null ? null : uploads.state(pending);
      if (pending !== watching) {
        unwatch();
        watching = pending;
        unwatch = pending === null ? () => {} : uploads.watch(pending, render);
      }
      dom.dataset.state =
        local !== null
          ? local.state
          : pending !== null
            ? "elsewhere"
            : attachment
              ? "ready"
              : "link";
      fill.style.width = `${Math.round((local?.progress ?? 0) * 100)}%`;
      status.textContent =
        local?.state === "waiting"
          ? "Waiting for the connection to upload"
          : local !== null
            ? `Uploading… ${Math.round(local.progress * 100)}%`
            : pending !== null
              ? "Someone is uploading this image…"
              : typeof attachment === "string"
                ? ""
                : "An image from elsewhere is not shown";
      if (local !== null) {
        show(local.preview);
      } else if (typeof attachment === "string") {
        const wanted = attachment;
        void client.src(wanted).then((url) => {
          if (node.attrs.attachment === wanted) show(url);
        });
      }
      // An image that is not an attachment (only an old document could hold one) is never
      // fetched: it would tell a third party who reads the document.
    };
    const show = (url: string) => {
      if (shown === url) return;
      shown = url;
      // Keep showing the local copy until the server's has loaded: no flash of nothing.
      const next = new Image();
      next.onload = () => {
        if (shown === url) img.src = url;
      };
      next.onerror = () => {
        if (shown === url) {
          img.removeAttribute("src");
          dom.dataset.state = "broken";
          status.textContent = "This image could not be loaded";
        }
      };
      next.src = url;
    };

    alt.addEventListener("change", () =>
      setAttrs(editor, getPos, { alt: alt.value.trim() || null }),
    );
    alt.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        alt.blur();
        editor.commands.focus();
      }
    });
    handle.addEventListener("pointerdown", (event) => {
      if (!editor.isEditable) return;
      event.preventDefault();
      const start = event.clientX;
      const from = frame.getBoundingClientRect().width;
      const max = editor.view.dom.getBoundingClientRect().width;
      let width = from;
      handle.setPointerCapture(event.pointerId);
      const move = (e: PointerEvent) => {
        width = Math.round(Math.min(max, Math.max(MIN_WIDTH, from + e.clientX - start)));
        frame.style.width = `${width}px`;
      };
      const up = () => {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        handle.removeEventListener("pointercancel", up);
        if (width !== from) setAttrs(editor, getPos, { width });
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
      handle.addEventListener("pointercancel", up);
    });
    render();
    return {
      dom,
      update(next: PmNode) {
        if (next.type !== node.type) return false;
        node = next;
        render();
        return true;
      },
      selectNode() {
        dom.classList.add("is-selected");
        alt.disabled = !editor.isEditable;
      },
      deselectNode() {
        dom.classList.remove("is-selected");
      },
      // The alt field and the handle are the view's own: ProseMirror leaves their events alone.
      stopEvent: (event: Event) => event.target === alt || event.target === handle,
      ignoreMutation: () => true,
      destroy() {
        unwatch();
      },
    };
  };

  const file: NodeViewRenderer = ({ editor, node: initial }) => {
    const doc = editor.view.dom.ownerDocument;
    let node = initial;
    const dom = el(doc, "div", "collab-file");
    dom.contentEditable = "false";
    const icon = el(doc, "span", "collab-file__icon");
    icon.setAttribute("aria-hidden", "true");
    const text = el(doc, "span", "collab-file__text");
    const name = el(doc, "span", "collab-file__name");
    const meta = el(doc, "span", "collab-file__meta");
    text.append(name, meta);
    const link = el(doc, "a", "collab-file__download");
    link.textContent = "Download";
    link.rel = "noopener";
    const bar = el(doc, "div", "collab-file__progress");
    const fill = el(doc, "span", "collab-file__progress-fill");
    bar.append(fill);
    dom.append(icon, text, link, bar);
    let unwatch = () => {};
    let watching: string | null = null;
    const render = () => {
      const { attachment, pending, filename, size } = node.attrs as {
        attachment: string | null;
        pending: string | null;
        filename: string;
        size: number | null;
      };
      name.textContent = filename || "file";
      const extension = /\.([a-z0-9]{1,5})$/i.exec(filename ?? "")?.[1]?.toUpperCase() ?? "FILE";
      icon.textContent = extension;
      if (pending !== watching) {
        unwatch();
        watching = pending;
        unwatch = pending === null ? () => {} : uploads.watch(pending, render);
      }
      const local = pending === null ? null : uploads.state(pending);
      const sizeText = typeof size === "number" ? formatBytes(size) : "";
      meta.textContent =
        local?.state === "waiting"
          ? `${sizeText} · waiting for the connection`
          : local !== null
            ? `${sizeText} · uploading ${Math.round(local.progress * 100)}%`
            : pending !== null
              ? `${sizeText} · being uploaded`
              : sizeText;
      fill.style.width = `${Math.round((local?.progress ?? 0) * 100)}%`;
      dom.dataset.state = local !== null ? local.state : pending !== null ? "elsewhere" : "ready";
      link.hidden = typeof attachment !== "string";
      link.download = filename || "file";
      if (typeof attachment === "string") {
        const wanted = attachment;
        void client.src(wanted).then((url) => {
          if (node.attrs.attachment === wanted) link.href = url;
        });
      }
    };
    render();
    return {
      dom,
      update(next: PmNode) {
        if (next.type !== node.type) return false;
        node = next;
        render();
        return true;
      },
      selectNode: () => dom.classList.add("is-selected"),
      deselectNode: () => dom.classList.remove("is-selected"),
      stopEvent: (event: Event) => event.target === link,
      ignoreMutation: () => true,
      destroy: () => unwatch(),
    };
  };

  return { image, file };
}
