/**
 * Which attachments a document shows: the `attachment` attribute of its
 * image and file nodes (editor/src/attachments.ts), read straight from the
 * Yjs document without converting it.
 */
import * as Y from "yjs";
import { FIELD } from "../../../editor/src/field.ts";
import { isAttachmentId } from "./store.ts";

/** Every attachment id the document's content refers to. */
export function attachmentsIn(doc: Y.Doc, into = new Set<string>()): Set<string> {
  const walk = (node: Y.XmlElement | Y.XmlFragment) => {
    if (node instanceof Y.XmlElement) {
      const id = node.getAttribute("attachment");
      if (typeof id === "string" && isAttachmentId(id)) into.add(id);
    }
    for (const child of node.toArray()) {
      if (child instanceof Y.XmlElement) walk(child);
    }
  };
  walk(doc.getXmlFragment(FIELD));
  return into;
}
