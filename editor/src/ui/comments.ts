/**
 * The comments panel: threads in document order beside the text (a sheet
 * below it on a phone), each with its quote, comments, a reply box, resolve
 * and reopen, and edit and delete for one's own comments; a composer for a
 * new thread on the selection (toolbar button or Mod-Alt-m); `@` mentions;
 * a count of open threads in the header. The text of the active thread is
 * highlighted more strongly, and clicking a highlight opens its thread.
 *
 * Plain DOM, like the rest of the chrome. Reads threads from the document
 * (comments/model.ts) and changes them only through the comment client, so
 * the server decides (comments/protocol.ts).
 */
import { type Editor, Extension } from "@tiptap/core";
import type { Node as PmNode } from "@tiptap/pm/model";
import { Plugin, PluginKey } from "@tiptap/pm/state";
import { Decoration, DecorationSet } from "@tiptap/pm/view";
import { absolutePositionToRelativePosition, ySyncPluginKey } from "@tiptap/y-tiptap";
import * as Y from "yjs";
import type { CommentClient } from "../comments/client.ts";
import {
  COMMENT_MARK,
  type Mention,
  type Person,
  readThreads,
  THREADS,
  type Thread,
  type ThreadComment,
} from "../comments/model.ts";
import type { CommentOperation } from "../comments/protocol.ts";
import { colorFor } from "../options.ts";

/** Someone a comment may mention. */
export interface MentionCandidate {
  readonly id: string;
  readonly name: string;
}

export interface CommentsUiOptions {
  readonly root: HTMLElement;
  /** The document surface; the panel is placed beside it. */
  readonly surface: HTMLElement;
  /** Where the header's comment button and count go. */
  readonly header: HTMLElement | null;
  readonly editor: Editor;
  /** The document's threads document (comments/model.ts), which the client keeps in sync. */
  readonly threads: Y.Doc;
  readonly client: CommentClient;
  /** Who writes here (the token's user is what the server records; this is for display and anonymous mode). */
  readonly me: () => Person;
  /** Whether this user may comment now. */
  readonly canComment: () => boolean;
  /** People to suggest after `@`, besides those present and those who commented. */
  readonly mentions?: (query: string) => Promise<readonly MentionCandidate[]>;
  /** People present now. */
  readonly present: () => readonly MentionCandidate[];
  /** Called once an operation is stored. */
  readonly onStored?: (op: CommentOperation) => void;
}

/** Which thread is active, and the decorations that show it. */
const activeKey = new PluginKey<string | null>("collab-active-thread");

/** Highlights the active thread's text more strongly; a click on commented text opens its thread. */
export function activeThreadExtension(onClick: (thread: string) => void) {
  return Extension.create({
    name: "collabActiveThread",
    addProseMirrorPlugins() {
      return [
        new Plugin<string | null>({
          key: activeKey,
          state: {
            init: () => null,
            apply: (tr, value) => {
              const next = tr.getMeta(activeKey) as string | null | undefined;
              return next === undefined ? value : next;
            },
          },
          props: {
            decorations(state) {
              const active = activeKey.getState(state);
              if (active === null || active === undefined) return null;
              const decorations: Decoration[] = [];
              state.doc.descendants((node, pos) => {
                if (!node.isText) return;
                if (
                  node.marks.some((m) => m.type.name === COMMENT_MARK && m.attrs.thread === active)
                ) {
                  decorations.push(
                    Decoration.inline(pos, pos + node.nodeSize, { class: "is-active-thread" }),
                  );
                }
              });
              return DecorationSet.create(state.doc, decorations);
            },
            handleClick(view, pos) {
              const marks = view.state.doc.resolve(pos).marks();
              const mark = marks.find((m) => m.type.name === COMMENT_MARK);
              if (mark === undefined || typeof mark.attrs.thread !== "string") return false;
              onClick(mark.attrs.thread);
              return false;
            },
          },
        }),
      ];
    },
  });
}

/** Text ids: 16 characters of base64url from the browser's random source. */
function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_");
}

/** "just now", "5 min ago", "3 h ago", or a date. */
export function relativeTime(ms: number, now = Date.now()): string {
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(doc: Document, className: string, text: string, title?: string) {
  const b = el(doc, "button", className, text);
  b.type = "button";
  if (title !== undefined) {
    b.title = title;
    b.setAttribute("aria-label", title);
  }
  return b;
}

/** A thread's text in one top-level node: where it starts there (relative to the node) and its text. */
type NodeAnchors = ReadonlyArray<readonly [thread: string, at: number, text: string]>;

/**
 * The threads' texts per top-level node. ProseMirror nodes are immutable and an edit keeps
 * every node it did not change, so after a keystroke only the changed paragraph is walked
 * again, not the whole document.
 */
const anchorsByNode = new WeakMap<PmNode, NodeAnchors>();

/** The threads' texts in `node` (a top-level node), in document order; positions relative to it. */
function nodeAnchors(node: PmNode): NodeAnchors {
  const cached = anchorsByNode.get(node);
  if (cached !== undefined) return cached;
  const found = new Map<string, { at: number; text: string }>();
  const visit = (child: PmNode, pos: number) => {
    if (!child.isText) return;
    for (const mark of child.marks) {
      const thread = mark.attrs.thread;
      if (mark.type.name !== COMMENT_MARK || typeof thread !== "string") continue;
      const seen = found.get(thread);
      if (seen === undefined) found.set(thread, { at: pos, text: child.text ?? "" });
      else seen.text += child.text ?? "";
    }
  };
  visit(node, 0);
  // Positions inside `node` start after its opening token.
  node.descendants((child, pos) => visit(child, pos + 1));
  const anchors: NodeAnchors = [...found].map(([thread, { at, text }]) => [thread, at, text]);
  anchorsByNode.set(node, anchors);
  return anchors;
}

/**
 * Each thread's place and text in the document, in one walk: where its text starts and
 * what it covers now (threads with no text, detached, are absent).
 */
function threadTexts(editor: Editor): Map<string, { at: number; text: string }> {
  const found = new Map<string, { at: number; text: string }>();
  editor.state.doc.forEach((node, offset) => {
    for (const [thread, at, text] of nodeAnchors(node)) {
      const seen = found.get(thread);
      if (seen === undefined) found.set(thread, { at: offset + at, text });
      else seen.text += text;
    }
  });
  return found;
}

export function mountComments(options: CommentsUiOptions): {
  /** Opens the composer for the selection. */
  compose(): void;
  /** Opens and focuses a thread. */
  activate(thread: string | null): void;
  /** Renders again (what the user may do changed). */
  refresh(): void;
  destroy(): void;
} {
  const { root, surface, editor, threads: ydoc, client } = options;
  const doc = root.ownerDocument;
  const main = el(doc, "div", "collab-editor__main");
  surface.replaceWith(main);
  const panel = el(doc, "aside", "collab-comments");
  panel.setAttribute("aria-label", "Comments");
  main.append(surface, panel);

  const head = el(doc, "div", "collab-comments__head");
  const title = el(doc, "h2", "collab-comments__title", "Comments");
  const showResolvedLabel = el(doc, "label", "collab-comments__switch");
  const showResolved = el(doc, "input", "");
  showResolved.type = "checkbox";
  showResolvedLabel.append(showResolved, doc.createTextNode(" Show resolved"));
  head.append(title, showResolvedLabel);
  const composer = el(doc, "form", "collab-comments__composer");
  composer.hidden = true;
  const composerQuote = el(doc, "blockquote", "collab-comments__quote");
  const composerInput = el(doc, "textarea", "collab-comments__input");
  composerInput.placeholder = "Add a comment… (@ to mention)";
  composerInput.setAttribute("aria-label", "New comment");
  const composerActions = el(doc, "div", "collab-comments__actions");
  const composerCancel = button(doc, "collab-comments__button", "Cancel");
  const composerSubmit = button(doc, "collab-comments__button is-primary", "Comment");
  composerSubmit.type = "submit";
  composerActions.append(composerCancel, composerSubmit);
  composer.append(composerQuote, composerInput, composerActions);
  const list = el(doc, "ol", "collab-comments__list");
  const empty = el(
    doc,
    "p",
    "collab-comments__empty",
    "No comments yet. Select text and press Comment (Ctrl+Alt+M).",
  );
  const problem = el(doc, "p", "collab-comments__problem");
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  panel.append(head, problem, composer, list, empty);

  // Header: the comment button and the count of open threads.
  const headerButton = button(
    doc,
    "collab-comments__new",
    "Comment",
    "Comment on the selection (Ctrl+Alt+M)",
  );
  headerButton.addEventListener("mousedown", (event) => event.preventDefault());
  const count = el(doc, "span", "collab-comments__count");
  count.title = "Open comment threads";
  const headerGroup = el(doc, "span", "collab-comments__header");
  headerGroup.append(headerButton, count);
  // Before the people present, which sit at the end of the bar.
  const presence = options.header?.querySelector(".collab-editor__presence") ?? null;
  if (presence !== null) presence.before(headerGroup);
  else options.header?.append(headerGroup);

  let active: string | null = null;
  /** The relative positions and quote of the selection the composer is for. */
  let draft: {
    start: Record<string, unknown>;
    end: Record<string, unknown>;
    quote: string;
  } | null = null;
  /** Mentions chosen in each text box. */
  const chosen = new WeakMap<HTMLTextAreaElement, Mention[]>();
  /** Replies and edits the user is typing, kept across re-renders. */
  const typing = new Map<string, string>();
  let editing: { thread: string; comment: string } | null = null;

  const showProblem = (message: string | null) => {
    problem.hidden = message === null;
    problem.textContent = message ?? "";
  };
  const send = (op: CommentOperation) => {
    showProblem(null);
    const me = options.me();
    client.send(op, me).then(
      () => options.onStored?.(op),
      (error: Error) => showProblem(`The server did not take that: ${error.message}`),
    );
  };

  const relative = (pos: number): Record<string, unknown> | null => {
    const state = ySyncPluginKey.getState(editor.state) as
      | { binding?: { type: Y.XmlFragment; mapping: Map<unknown, unknown> } }
      | undefined;
    const binding = state?.binding;
    if (binding === undefined) return null;
    const relativePosition = absolutePositionToRelativePosition(
      pos,
      binding.type,
      binding.mapping as never,
    );
    return Y.relativePositionToJSON(relativePosition) as Record<string, unknown>;
  };

  const compose = () => {
    if (!options.canComment()) return;
    const { from, to, empty: nothing } = editor.state.selection;
    if (nothing) {
      showProblem("Select the text you want to comment on first.");
      return;
    }
    const start = relative(from);
    const end = relative(to);
    if (start === null || end === null) return;
    draft = { start, end, quote: editor.state.doc.textBetween(from, to, "\n") };
    composerQuote.textContent = draft.quote;
    composer.hidden = false;
    panel.dataset.open = "true";
    composerInput.focus();
  };
  const closeComposer = () => {
    draft = null;
    composer.hidden = true;
    composerInput.value = "";
    chosen.delete(composerInput);
  };
  composerCancel.addEventListener("click", () => {
    closeComposer();
    editor.commands.focus();
  });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = composerInput.value.trim();
    if (draft === null || body === "") return;
    const thread = newId();
    send({
      op: "create",
      thread,
      comment: newId(),
      anchor: { start: draft.start, end: draft.end },
      body,
      mentions: mentionsIn(composerInput, body),
    });
    closeComposer();
    activate(thread);
  });
  headerButton.addEventListener("click", compose);

  const mentionsIn = (input: HTMLTextAreaElement, body: string): Mention[] =>
    (chosen.get(input) ?? []).filter((m) => body.includes(`@${m.label}`));

  // Mentions: `@` followed by letters suggests people.
  const suggestions = el(doc, "ul", "collab-comments__suggestions");
  suggestions.setAttribute("role", "listbox");
  suggestions.id = `collab-mentions-${Math.random().toString(36).slice(2)}`;
  suggestions.hidden = true;
  panel.append(suggestions);
  let suggestFor: HTMLTextAreaElement | null = null;
  /** The suggestion Enter or Tab picks, moved with the arrow keys. */
  let highlighted = 0;
  const highlight = (index: number) => {
    const items = [...suggestions.querySelectorAll<HTMLElement>("li")];
    if (items.length === 0) return;
    highlighted = (index + items.length) % items.length;
    for (const [i, item] of items.entries()) {
      item.setAttribute("aria-selected", String(i === highlighted));
    }
    const current = items[highlighted];
    if (current !== undefined) {
      suggestFor?.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    }
  };
  const hideSuggestions = () => {
    suggestions.hidden = true;
    suggestFor?.removeAttribute("aria-activedescendant");
  };
  const candidates = async (query: string): Promise<MentionCandidate[]> => {
    const seen = new Map<string, MentionCandidate>();
    // Not the writer: nobody mentions themselves (people present are known by name only).
    const self = options.me();
    const isSelf = (c: MentionCandidate) =>
      c.id === self.id || (c.id.startsWith("name:") && c.name === self.name);
    const add = (c: MentionCandidate) => {
      if (isSelf(c) || seen.has(c.id)) return;
      if (c.name.toLowerCase().includes(query.toLowerCase())) seen.set(c.id, c);
    };
    for (const c of options.present()) add(c);
    for (const thread of readThreads(ydoc)) {
      for (const comment of thread.comments) add(comment.author);
    }
    try {
      for (const c of (await options.mentions?.(query)) ?? []) add(c);
    } catch {
      // The host's lookup failed: suggest who is known here.
    }
    return [...seen.values()].slice(0, 8);
  };
  const pick = (input: HTMLTextAreaElement, candidate: MentionCandidate) => {
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret).replace(/@([^\s@]*)$/u, `@${candidate.name} `);
    input.value = before + input.value.slice(caret);
    input.selectionStart = input.selectionEnd = before.length;
    chosen.set(input, [...(chosen.get(input) ?? []), { id: candidate.id, label: candidate.name }]);
    hideSuggestions();
    input.focus();
  };
  const suggest = async (input: HTMLTextAreaElement) => {
    const match = /@([^\s@]*)$/u.exec(input.value.slice(0, input.selectionStart));
    if (match === null) {
      hideSuggestions();
      return;
    }
    const found = await candidates(match[1] ?? "");
    suggestFor = input;
    input.setAttribute("aria-controls", suggestions.id);
    suggestions.replaceChildren(
      ...found.map((candidate, index) => {
        const item = el(doc, "li", "collab-comments__suggestion", candidate.name);
        item.setAttribute("role", "option");
        item.id = `${suggestions.id}-${index}`;
        item.addEventListener("mousedown", (event) => {
          event.preventDefault();
          pick(input, candidate);
        });
        return item;
      }),
    );
    suggestions.hidden = found.length === 0;
    highlight(0);
    const box = input.getBoundingClientRect();
    const frame = panel.getBoundingClientRect();
    suggestions.style.setProperty("--top", `${box.bottom - frame.top + panel.scrollTop}px`);
  };
  const onInput = (event: Event) => {
    const target = event.target;
    if (target instanceof HTMLTextAreaElement) void suggest(target);
  };
  const onKey = (event: KeyboardEvent) => {
    const target = event.target;
    if (!(target instanceof HTMLTextAreaElement)) return;
    const open = !suggestions.hidden && suggestFor === target;
    if (event.key === "Escape" && open) {
      // Closes the suggestions only, not the composer around them.
      event.stopPropagation();
      hideSuggestions();
      return;
    }
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      highlight(highlighted + (event.key === "ArrowDown" ? 1 : -1));
      return;
    }
    if (open && (event.key === "Enter" || event.key === "Tab")) {
      const item = suggestions.querySelectorAll("li")[highlighted];
      if (item !== undefined) {
        event.preventDefault();
        item.dispatchEvent(new MouseEvent("mousedown"));
      }
      return;
    }
    // Ctrl/Cmd+Enter sends.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      target.closest("form")?.requestSubmit();
    }
  };
  panel.addEventListener("input", onInput);
  panel.addEventListener("keydown", onKey);

  const renderBody = (comment: ThreadComment): HTMLElement => {
    const body = el(doc, "p", "collab-comments__body");
    const labels = comment.mentions.map((m) => `@${m.label}`);
    let rest = comment.body;
    while (rest.length > 0) {
      let next = -1;
      let found = "";
      for (const label of labels) {
        const at = rest.indexOf(label);
        if (at !== -1 && (next === -1 || at < next)) {
          next = at;
          found = label;
        }
      }
      if (next === -1) {
        body.append(doc.createTextNode(rest));
        break;
      }
      body.append(doc.createTextNode(rest.slice(0, next)));
      body.append(el(doc, "span", "collab-comments__mention", found));
      rest = rest.slice(next + found.length);
    }
    return body;
  };

  const renderComment = (thread: Thread, comment: ThreadComment): HTMLElement => {
    const item = el(doc, "li", "collab-comments__comment");
    const meta = el(doc, "div", "collab-comments__meta");
    const author = el(doc, "span", "collab-comments__author", comment.author.name);
    author.style.setProperty("--person-color", colorFor(comment.author.name));
    const time = el(doc, "time", "collab-comments__time", relativeTime(comment.created));
    time.dateTime = new Date(comment.created).toISOString();
    time.title = new Date(comment.created).toLocaleString();
    meta.append(author, time);
    if (comment.edited !== null) meta.append(el(doc, "span", "collab-comments__edited", "edited"));
    item.append(meta);
    const own = comment.author.id === options.me().id;
    if (editing?.thread === thread.id && editing.comment === comment.id) {
      const form = el(doc, "form", "collab-comments__edit");
      const input = el(doc, "textarea", "collab-comments__input");
      input.value = typing.get(`edit:${comment.id}`) ?? comment.body;
      input.setAttribute("aria-label", "Edit comment");
      chosen.set(input, [...comment.mentions]);
      input.addEventListener("input", () => typing.set(`edit:${comment.id}`, input.value));
      const actions = el(doc, "div", "collab-comments__actions");
      const cancel = button(doc, "collab-comments__button", "Cancel");
      const save = button(doc, "collab-comments__button is-primary", "Save");
      save.type = "submit";
      cancel.addEventListener("click", () => {
        editing = null;
        typing.delete(`edit:${comment.id}`);
        render();
      });
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const body = input.value.trim();
        if (body === "") return;
        send({
          op: "edit",
          thread: thread.id,
          comment: comment.id,
          body,
          mentions: mentionsIn(input, body),
        });
        editing = null;
        typing.delete(`edit:${comment.id}`);
        render();
      });
      actions.append(cancel, save);
      form.append(input, actions);
      item.append(form);
      queueMicrotask(() => input.focus());
      return item;
    }
    item.append(renderBody(comment));
    if (own && options.canComment()) {
      const actions = el(doc, "div", "collab-comments__own");
      const edit = button(doc, "collab-comments__link", "Edit");
      const remove = button(doc, "collab-comments__link", "Delete");
      edit.addEventListener("click", () => {
        editing = { thread: thread.id, comment: comment.id };
        render();
      });
      remove.addEventListener("click", () => {
        if (globalThis.confirm?.("Delete this comment?") === false) return;
        send({ op: "delete-comment", thread: thread.id, comment: comment.id });
      });
      actions.append(edit, remove);
      item.append(actions);
    }
    return item;
  };

  const renderThread = (thread: Thread, text: string): HTMLElement => {
    const card = el(doc, "li", "collab-comments__thread");
    card.dataset.thread = thread.id;
    card.dataset.status = thread.status;
    card.tabIndex = 0;
    card.setAttribute("aria-label", `Thread by ${thread.author.name}`);
    if (thread.id === active) card.classList.add("is-active");
    const quote = el(
      doc,
      "blockquote",
      "collab-comments__quote",
      text === "" ? thread.quote : text,
    );
    if (text === "") {
      quote.classList.add("is-detached");
      quote.title = "The text this thread was on has been deleted";
    }
    const top = el(doc, "div", "collab-comments__top");
    top.append(quote);
    if (options.canComment()) {
      const toggle = button(
        doc,
        "collab-comments__button",
        thread.status === "open" ? "Resolve" : "Reopen",
        thread.status === "open" ? "Mark this thread resolved" : "Reopen this thread",
      );
      toggle.addEventListener("click", (event) => {
        event.stopPropagation();
        send({ op: thread.status === "open" ? "resolve" : "reopen", thread: thread.id });
      });
      top.append(toggle);
    }
    card.append(top);
    if (thread.status === "resolved" && thread.statusBy !== null) {
      card.append(el(doc, "p", "collab-comments__resolved", `Resolved by ${thread.statusBy.name}`));
    }
    const comments = el(doc, "ol", "collab-comments__comments");
    comments.append(...thread.comments.map((comment) => renderComment(thread, comment)));
    card.append(comments);
    if (options.canComment() && thread.status === "open") {
      const form = el(doc, "form", "collab-comments__reply");
      const input = el(doc, "textarea", "collab-comments__input");
      input.placeholder = "Reply… (@ to mention)";
      input.setAttribute("aria-label", "Reply");
      input.rows = 1;
      input.value = typing.get(`reply:${thread.id}`) ?? "";
      input.addEventListener("input", () => typing.set(`reply:${thread.id}`, input.value));
      const submit = button(doc, "collab-comments__button is-primary", "Reply");
      submit.type = "submit";
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const body = input.value.trim();
        if (body === "") return;
        send({
          op: "reply",
          thread: thread.id,
          comment: newId(),
          body,
          mentions: mentionsIn(input, body),
        });
        typing.delete(`reply:${thread.id}`);
        input.value = "";
      });
      form.append(input, submit);
      card.append(form);
    }
    card.addEventListener("click", (event) => {
      if ((event.target as HTMLElement).closest("button, textarea, form") !== null) return;
      activate(thread.id, { scrollText: true });
    });
    card.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === card) activate(thread.id, { scrollText: true });
    });
    return card;
  };

  const render = () => {
    const threads = readThreads(ydoc);
    // With no threads there is nothing to place: the document is not walked.
    const anchors = threads.length === 0 ? new Map<string, never>() : threadTexts(editor);
    const open = threads.filter((t) => t.status === "open").length;
    // Rendered again after every edit: unchanged text and flags are not written again.
    if (count.textContent !== String(open)) count.textContent = String(open);
    if (count.hidden !== (open === 0)) count.hidden = open === 0;
    if (headerButton.hidden !== !options.canComment()) headerButton.hidden = !options.canComment();
    const shown = threads
      .filter((t) => showResolved.checked || t.status === "open" || t.id === active)
      // Document order; detached threads last, oldest first.
      .sort(
        (a, b) =>
          (anchors.get(a.id)?.at ?? Number.MAX_SAFE_INTEGER) -
            (anchors.get(b.id)?.at ?? Number.MAX_SAFE_INTEGER) || a.created - b.created,
      );
    // Keep focus and caret in a text box across the re-render.
    const focused = doc.activeElement;
    const focusKey =
      focused instanceof HTMLTextAreaElement && list.contains(focused)
        ? `${focused.closest<HTMLElement>("[data-thread]")?.dataset.thread}:${focused.getAttribute("aria-label")}`
        : null;
    const caret = focused instanceof HTMLTextAreaElement ? focused.selectionStart : 0;
    list.replaceChildren(...shown.map((t) => renderThread(t, anchors.get(t.id)?.text ?? "")));
    empty.hidden = threads.length > 0;
    panel.dataset.threads = String(threads.length);
    if (focusKey !== null) {
      const [thread, label] = focusKey.split(":");
      const again = list.querySelector<HTMLTextAreaElement>(
        `[data-thread="${CSS.escape(thread ?? "")}"] textarea[aria-label="${label}"]`,
      );
      again?.focus();
      again?.setSelectionRange(caret, caret);
    }
  };

  const activate = (thread: string | null, how: { scrollText?: boolean } = {}) => {
    active = thread;
    editor.view.dispatch(editor.state.tr.setMeta(activeKey, thread));
    render();
    if (thread === null) return;
    panel.dataset.open = "true";
    const card = list.querySelector<HTMLElement>(`[data-thread="${CSS.escape(thread)}"]`);
    card?.scrollIntoView({ block: "nearest" });
    if (how.scrollText) {
      const at = threadTexts(editor).get(thread)?.at;
      if (at !== undefined) {
        const node = editor.view.domAtPos(at).node;
        (node instanceof Element ? node : node.parentElement)?.scrollIntoView({ block: "center" });
      }
    } else {
      card?.focus({ preventScroll: true });
    }
  };

  showResolved.addEventListener("change", render);
  const threadsMap = ydoc.getMap(THREADS);
  const onThreads = () => render();
  threadsMap.observeDeep(onThreads);
  // Marks move with edits: document order and quotes follow the text.
  let pending = false;
  const onTransaction = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
    });
  };
  editor.on("update", onTransaction);
  render();

  return {
    compose,
    activate,
    refresh: render,
    destroy() {
      threadsMap.unobserveDeep(onThreads);
      editor.off("update", onTransaction);
      panel.remove();
      headerGroup.remove();
      main.replaceWith(surface);
    },
  };
}
