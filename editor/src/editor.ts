/**
 * createCollabEditor: a Tiptap editor bound to a Yjs document that a
 * Hocuspocus provider keeps in sync with a collab-docs server, with presence,
 * carets, a toolbar, a status line and an offline copy in IndexedDB.
 */
import { HocuspocusProvider } from "@hocuspocus/provider";
import { Editor, Extension } from "@tiptap/core";
import Collaboration from "@tiptap/extension-collaboration";
import CollaborationCaret from "@tiptap/extension-collaboration-caret";
import { Placeholder } from "@tiptap/extensions";
import { ySyncPluginKey } from "@tiptap/y-tiptap";
import { ObservableV2 } from "lib0/observable";
import { IndexeddbPersistence } from "y-indexeddb";
import * as Y from "yjs";
import { AttachmentClient } from "./attachments/client.ts";
import { Uploads } from "./attachments/uploads.ts";
import { attachmentViews } from "./attachments/views.ts";
import { commentClient } from "./comments/client.ts";
import { MarkKeeper } from "./comments/keep-marks.ts";
import { THREADS, threadsDocumentName } from "./comments/model.ts";
import { keepPending } from "./comments/pending.ts";
import { type AccessInfo, type CommentOperation, parseAccess } from "./comments/protocol.ts";
import { download, fileNameFor, htmlFile, type SaveCopyResult, saveCopy } from "./copy.ts";
import { FIELD, repairTablesNow, schemaExtensions } from "./extensions.ts";
import { type CollabEditorOptions, type CollabUser, resolveOptions } from "./options.ts";
import { RECONNECT } from "./reconnect.ts";
import { trackSaves } from "./saves.ts";
import type { ConnectionState, SaveState } from "./status.ts";
import { EDITING_FIELD, isRepairer, watchRepairer } from "./table-repairer.ts";
import { mountChrome } from "./ui/chrome.ts";
import { activeThreadExtension, mountComments } from "./ui/comments.ts";

/**
 * This browser's user id for anonymous mode (with tokens the server uses the token's):
 * random, kept in localStorage, so "your" comments stay yours across reloads.
 */
function localUserId(doc: Document): string {
  const key = "collab-docs:user-id";
  const storage = storageOf(doc);
  let id: string | null = null;
  try {
    id = storage?.getItem(key) ?? null;
    if (id === null) {
      id = `local-${crypto.randomUUID()}`;
      storage?.setItem(key, id);
    }
  } catch {
    // Storage refused (private mode, a sandboxed frame): an id for this page only.
    id ??= `local-${crypto.randomUUID()}`;
  }
  return id;
}

/** The page's localStorage, or undefined where reading it throws (a sandboxed frame). */
function storageOf(doc: Document): Storage | undefined {
  try {
    return doc.defaultView?.localStorage;
  } catch {
    return undefined;
  }
}

/** First delay before opening a document again that the server closed or called busy. */
const REOPEN_FIRST_MS = 300;
/** Longest delay between such attempts. */
const REOPEN_MAX_MS = 8_000;

/** Someone in the document, as presence shows them. */
export interface Participant extends CollabUser {
  /** The Yjs client id; unique per open editor. */
  readonly clientId: number;
  /** True for this editor's own user. */
  readonly self: boolean;
}

export type CollabEditorEvents = {
  connection: (state: ConnectionState) => void;
  /**
   * Whether this user can change the document changed: true with the `readOnly` option, or
   * while the server grants only read access (a read-only token).
   */
  readOnly: (readOnly: boolean) => void;
  /** What the server granted changed: `perm` (`read`, `comment`, `write`) and who this user is. */
  access: (access: AccessInfo) => void;
  /** A comment operation of this user was stored (a thread created, a reply, a resolve, ...). */
  comment: (event: { readonly op: CommentOperation["op"]; readonly thread: string }) => void;
  save: (state: SaveState) => void;
  presence: (participants: readonly Participant[]) => void;
  /** The document's content changed (locally or remotely). */
  change: () => void;
  /** The copy of a deleted document was saved as the new document `name` ({@link CollabEditorHandle.saveCopyAs}). */
  copySaved: (name: string) => void;
  /** The copy on this device was discarded ({@link CollabEditorHandle.discardLocalCopy}). */
  discarded: () => void;
  /** Something the user should know that is not the connection's or save's state: a file that could not be added. */
  notice: (message: string) => void;
};

/** What {@link createCollabEditor} returns. */
export interface CollabEditorHandle {
  readonly editor: Editor;
  readonly provider: HocuspocusProvider;
  /** The current connection and save states. */
  readonly connection: ConnectionState;
  readonly save: SaveState;
  /**
   * True when this user cannot change the document: the `readOnly` option, or the server
   * granting only read access. The `readOnly` event says when it changes.
   */
  readonly readOnly: boolean;
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof CollabEditorEvents>(event: E, listener: CollabEditorEvents[E]): () => void;
  /** Changes the local user's name and colour (caret and presence follow). */
  setUser(user: CollabUser): void;
  /** Downloads the document as this device has it, as an HTML file. */
  downloadCopy(): void;
  /**
   * Saves the document as this device has it as a new document `name`, through the REST API
   * (`apiUrl`, with the token), only if that name is free: for a copy of a deleted document.
   */
  saveCopyAs(name: string): Promise<SaveCopyResult>;
  /**
   * Removes this device's copy of the document (the IndexedDB copies of the document and of
   * its threads) and emits `discarded`;
   * the editor then holds nothing worth keeping: destroy it and create a new one to open the
   * document afresh (`<collab-editor>` and the app do).
   */
  discardLocalCopy(): Promise<void>;
  /** Removes every listener, timer, socket and DOM node the editor made. */
  destroy(): void;
}

/**
 * Mounts a collaborative editor into `element`.
 *
 * @example
 * const handle = createCollabEditor(document.querySelector("#editor"), {
 *   url: "ws://localhost:1234",
 *   document: "team/notes",
 *   user: { name: "Ada", color: "#7c3aed" },
 * });
 * handle.on("save", (s) => console.log(s.kind));
 */
export function createCollabEditor(
  element: HTMLElement,
  options: CollabEditorOptions,
): CollabEditorHandle {
  const resolved = resolveOptions(options);
  const events = new ObservableV2<CollabEditorEvents>();
  const on: CollabEditorHandle["on"] = (event, listener) => {
    events.on(event, listener);
    return () => events.off(event, listener);
  };
  const ydoc = new Y.Doc();
  const cleanups: Array<() => void> = [];

  const root = element.ownerDocument.createElement("div");
  root.className = "collab-editor";
  root.dataset.readonly = String(resolved.readOnly);
  element.append(root);
  cleanups.push(() => root.remove());

  const offline = resolved.offline
    ? new IndexeddbPersistence(`collab-docs:${resolved.url}:${resolved.document}`, ydoc)
    : null;
  if (offline !== null) cleanups.push(() => void offline.destroy());

  const provider = new HocuspocusProvider({
    url: resolved.url,
    name: resolved.document,
    document: ydoc,
    token: resolved.token ?? null,
    ...RECONNECT,
  });
  cleanups.push(() => provider.destroy());

  let connection: ConnectionState = { kind: "connecting" };
  // "Saved" is what the server confirms it stored, not the provider's acknowledgement count,
  // which reaches 0 early after a reconnect (see saves.ts).
  // Until the IndexedDB copy is loaded, it may hold offline edits the server has not seen.
  const saves = trackSaves(provider, offline === null ? {} : { loading: offline.whenSynced });
  cleanups.push(() => saves.destroy());
  let save: SaveState = saves.state;
  // Comments are asked of the server (comments/protocol.ts); made offline, they wait for it.
  const comments = commentClient(provider);
  cleanups.push(() => comments.destroy());
  let access: AccessInfo | null = null;
  const onAccess = ({ payload }: { payload: string }) => {
    const next = parseAccess(payload);
    if (next === null) return;
    access = next;
    events.emit("access", [next]);
  };
  provider.on("stateless", onAccess);
  cleanups.push(() => provider.off("stateless", onAccess));
  // What the server last granted; kept across reconnects until it says otherwise, so a reader
  // who goes offline cannot type edits the server would refuse.
  let serverReadOnly = false;
  let readOnly = resolved.readOnly;
  // Makes the editor editable or not from the two above; assigned once the editor exists. Until
  // then the provider can only report "connecting", which changes nothing.
  let applyEditable = () => {};
  // Whether this editor repairs malformed tables now; assigned once the editor exists.
  let repairsTables = () => false;
  const setConnection = (next: ConnectionState) => {
    connection = next;
    applyEditable();
    events.emit("connection", [next]);
  };
  const setReadOnly = (next: boolean) => {
    if (next === readOnly) return;
    readOnly = next;
    applyEditable();
    events.emit("readOnly", [next]);
  };
  cleanups.push(
    saves.on((state) => {
      save = state;
      events.emit("save", [state]);
    }),
  );
  const onStatus = ({ status }: { status: string }) => {
    // A refusal stands until the server authenticates this document again; socket events
    // (which keep coming as the provider reconnects) do not lift it.
    if (connection.kind === "denied") return;
    if (status === "connected") setConnection({ kind: "connected", readOnly: serverReadOnly });
    else if (status === "connecting") setConnection({ kind: "connecting" });
    else setConnection({ kind: "offline", keptOnDevice: offline !== null });
  };
  const onAuthenticated = ({ scope }: { scope: string }) => {
    reopenDelay = REOPEN_FIRST_MS;
    serverReadOnly = scope !== "read-write";
    setReadOnly(resolved.readOnly || serverReadOnly);
    setConnection({ kind: "connected", readOnly: serverReadOnly });
  };
  // Opens the document again on the same socket, after a delay that doubles up to 8 s while
  // the server says it is busy (a deletion or a restore is running this moment).
  let reopenTimer: ReturnType<typeof setTimeout> | undefined;
  let reopenDelay = REOPEN_FIRST_MS;
  const reopen = () => {
    clearTimeout(reopenTimer);
    reopenTimer = setTimeout(() => {
      void provider.sendToken().then(() => provider.startSync());
    }, reopenDelay);
    reopenDelay = Math.min(reopenDelay * 2, REOPEN_MAX_MS);
  };
  cleanups.push(() => clearTimeout(reopenTimer));
  const onDenied = ({ reason }: { reason: string }) => {
    if (reason.startsWith("document-busy")) {
      setConnection({ kind: "connecting" });
      reopen();
      return;
    }
    setConnection({ kind: "denied", reason });
  };
  // The server closed this document (the socket stays open): deleted while open, or a trashed
  // document was restored into the name this editor has open (it now holds the restored content).
  const onDocumentClosed = ({ event }: { event: { reason?: string } }) => {
    if (event.reason === "document-deleted") {
      setConnection({ kind: "denied", reason: "document-deleted" });
    } else if (event.reason === "document-restored") {
      setConnection({ kind: "connecting" });
      reopen();
    }
  };
  provider.on("status", onStatus);
  provider.on("authenticated", onAuthenticated);
  provider.on("authenticationFailed", onDenied);
  provider.on("close", onDocumentClosed);
  cleanups.push(() => {
    provider.off("close", onDocumentClosed);
    provider.off("status", onStatus);
    provider.off("authenticated", onAuthenticated);
    provider.off("authenticationFailed", onDenied);
  });
  // The browser knows about a network drop before the socket times out; when the network is
  // back, the socket may never have closed, so read its state instead of waiting for an event.
  const onBrowserOffline = () => onStatus({ status: "disconnected" });
  const onBrowserOnline = () =>
    onStatus({ status: provider.configuration.websocketProvider.status });
  const view = element.ownerDocument.defaultView;
  view?.addEventListener("offline", onBrowserOffline);
  view?.addEventListener("online", onBrowserOnline);
  cleanups.push(() => {
    view?.removeEventListener("offline", onBrowserOffline);
    view?.removeEventListener("online", onBrowserOnline);
  });

  const withComments = resolved.comments && resolved.chrome;
  let commentsUi: ReturnType<typeof mountComments> | null = null;
  // The threads live in the document's threads document (comments/model.ts), opened beside it
  // on the same socket, read-only, once the document has synced: the text never waits for its
  // discussion to load (the IndexedDB copy shows the threads known here meanwhile).
  const threadsDoc = new Y.Doc();
  /** The IndexedDB copy of the threads: a cache of what the server wrote, safe to drop. */
  let threadsOffline: IndexeddbPersistence | null = null;
  if (withComments) {
    threadsOffline = resolved.offline
      ? new IndexeddbPersistence(
          `collab-docs:${resolved.url}:${threadsDocumentName(resolved.document)}`,
          threadsDoc,
        )
      : null;
    const threadsProvider = new HocuspocusProvider({
      websocketProvider: provider.configuration.websocketProvider,
      name: threadsDocumentName(resolved.document),
      document: threadsDoc,
      token: resolved.token ?? null,
      awareness: null,
    });
    let attached = false;
    /** The server closed the threads document on this socket (restored, busy): open it again. */
    let closedByServer = false;
    let threadsTimer: ReturnType<typeof setTimeout> | undefined;
    const openThreads = () => {
      clearTimeout(threadsTimer);
      if (!attached) {
        attached = true;
        threadsProvider.attach();
      } else if (closedByServer) {
        closedByServer = false;
        void threadsProvider.sendToken().then(() => threadsProvider.startSync());
      }
    };
    // First once the document has synced; then each time it is opened again (after the server
    // closed it: restored, or busy), which reopens a threads document the server closed too.
    const onTextSynced = () => openThreads();
    const onTextAuthenticated = () => {
      if (closedByServer) openThreads();
    };
    // A copy of a deleted document's threads is refused (documents/deleted-state.ts), and an open
    // document's threads are closed when it is deleted: drop the copy, so the next visit starts
    // from what the server has. Busy (a deletion or restore running): try again shortly.
    const onThreadsRefused = ({ reason }: { reason: string }) => {
      if (reason.startsWith("document-deleted")) void threadsOffline?.clearData();
      if (reason.startsWith("document-busy")) {
        closedByServer = true;
        clearTimeout(threadsTimer);
        threadsTimer = setTimeout(openThreads, REOPEN_MAX_MS);
      }
    };
    const onThreadsClosed = ({ event }: { event: { reason?: string } }) => {
      if (event.reason === "document-deleted") void threadsOffline?.clearData();
      if (event.reason === "document-restored") closedByServer = true;
    };
    threadsProvider.on("authenticationFailed", onThreadsRefused);
    threadsProvider.on("close", onThreadsClosed);
    // Text this editor moves (a split, a join) keeps its threads' marks through concurrent
    // deletions by others (comments/keep-marks.ts). Only once the threads have synced: a
    // deleted thread's mark is never put back.
    const keeper = new MarkKeeper(ydoc, {
      isWrite: (transaction) => transaction.origin === ySyncPluginKey,
      threadExists: (id) => threadsProvider.synced && threadsDoc.getMap(THREADS).has(id),
    });
    // check() never throws (a fault is reported, as for every keeper call): the provider's
    // `synced` handling goes on.
    const onThreadsSynced = () => keeper.check();
    threadsProvider.on("synced", onThreadsSynced);
    // A deleted thread's text is forgotten, and a mark put back on it before the deletion
    // arrived here (the text's unmarking came first) is taken off again.
    const threadsMap = threadsDoc.getMap<unknown>(THREADS);
    const onThreadsChanged = (event: Y.YMapEvent<unknown>) => {
      for (const [id, change] of event.changes.keys) {
        if (change.action === "delete") keeper.threadDeleted(id);
      }
    };
    threadsMap.observe(onThreadsChanged);
    if (provider.isSynced) openThreads();
    provider.on("synced", onTextSynced);
    provider.on("authenticated", onTextAuthenticated);
    // Before the document's provider, which closes the shared socket.
    const cache = threadsOffline;
    cleanups.push(() => {
      clearTimeout(threadsTimer);
      provider.off("synced", onTextSynced);
      provider.off("authenticated", onTextAuthenticated);
      threadsProvider.off("authenticationFailed", onThreadsRefused);
      threadsProvider.off("close", onThreadsClosed);
      threadsProvider.off("synced", onThreadsSynced);
      threadsMap.unobserve(onThreadsChanged);
      keeper.destroy();
      threadsProvider.destroy();
      void cache?.destroy();
      threadsDoc.destroy();
    });
  }
  // Images and files: uploaded to the server as attachments, the document holds their ids.
  const attachmentClient = new AttachmentClient({
    apiUrl: resolved.apiUrl,
    document: resolved.document,
    token: async () =>
      (typeof resolved.token === "function" ? await resolved.token() : resolved.token) ?? null,
  });
  const uploads = new Uploads({
    client: attachmentClient,
    key: `${resolved.url}:${resolved.document}`,
    notify: (message) => events.emit("notice", [message]),
    persist: resolved.offline,
  });
  cleanups.push(() => uploads.destroy());
  const surface = element.ownerDocument.createElement("div");
  surface.className = "collab-editor__surface";
  let user = resolved.user;
  const editor = new Editor({
    element: surface,
    // Tiptap's own stylesheet is global; the equivalent rules live in styles.css under .collab-editor.
    injectCSS: false,
    editable: !resolved.readOnly,
    extensions: [
      ...schemaExtensions({
        repairTables: () => repairsTables(),
        attachmentViews: attachmentViews(attachmentClient, uploads),
      }),
      Extension.create({
        name: "attachmentUploads",
        addProseMirrorPlugins: () => [uploads.plugin()],
      }),
      Placeholder.configure({ placeholder: resolved.placeholder }),
      Collaboration.configure({ document: ydoc, field: FIELD }),
      CollaborationCaret.configure({ provider, user: { ...user } }),
      ...(withComments
        ? [
            activeThreadExtension((thread) => commentsUi?.activate(thread)).extend({
              addKeyboardShortcuts() {
                return {
                  "Mod-Alt-m": () => {
                    commentsUi?.compose();
                    return true;
                  },
                };
              },
            }),
          ]
        : []),
    ],
    editorProps: { attributes: { class: "collab-editor__content", "aria-label": "Document" } },
  });
  cleanups.push(() => editor.destroy());
  uploads.attach(editor);
  // Files left waiting by an earlier page of this document, and those waiting for the connection.
  const onUploadsSynced = () => void uploads.resume();
  const onUploadsStatus = ({ status }: { status: string }) => {
    if (status === "connected") uploads.retry();
  };
  const onBrowserOnlineUploads = () => uploads.retry();
  provider.on("synced", onUploadsSynced);
  provider.on("status", onUploadsStatus);
  view?.addEventListener("online", onBrowserOnlineUploads);
  cleanups.push(() => {
    provider.off("synced", onUploadsSynced);
    provider.off("status", onUploadsStatus);
    view?.removeEventListener("online", onBrowserOnlineUploads);
  });
  applyEditable = () => {
    const editable = !readOnly && connection.kind !== "denied";
    // false: becoming read-only is not a change to the document.
    if (editor.isEditable !== editable) editor.setEditable(editable, false);
    // Who may edit, for the others choosing who repairs tables (below).
    if (provider.awareness?.getLocalState()?.[EDITING_FIELD] !== editable) {
      provider.awareness?.setLocalStateField(EDITING_FIELD, editable);
    }
    root.dataset.readonly = String(readOnly);
  };
  applyEditable();
  /**
   * Tables concurrent edits left malformed are repaired by one editor (extensions.ts,
   * `repairsWhen`; table-repairer.ts): of those present who may edit, the one with the lowest
   * awareness client id. Alone (offline too), this editor repairs; read-only, never (the
   * server would refuse it). Decided again on every awareness change: when the editor that
   * repaired leaves, the next one repairs at once.
   */
  repairsTables = () => {
    const awareness = provider.awareness;
    if (awareness === null) return editor.isEditable;
    return isRepairer(awareness.getStates(), awareness.clientID, editor.isEditable);
  };
  if (provider.awareness !== null) {
    // After the awareness event, not inside it: a repair is an edit of its own.
    let repairTimer: ReturnType<typeof setTimeout> | undefined;
    const repairSoon = () => {
      clearTimeout(repairTimer);
      repairTimer = setTimeout(() => {
        if (repairsTables()) repairTablesNow(editor.view);
      }, 0);
    };
    cleanups.push(watchRepairer(provider.awareness, () => repairsTables(), repairSoon));
    cleanups.push(() => clearTimeout(repairTimer));
  }
  const onChange = () => events.emit("change", []);
  editor.on("update", onChange);
  cleanups.push(() => editor.off("update", onChange));

  const participants = (): Participant[] => {
    const states = provider.awareness?.getStates() ?? new Map();
    const list: Participant[] = [];
    for (const [clientId, state] of states) {
      const u = (state as { user?: Partial<CollabUser> }).user;
      if (typeof u?.name !== "string") continue;
      list.push({
        clientId,
        name: u.name,
        color: u.color ?? "#888",
        self: clientId === provider.awareness?.clientID,
      });
    }
    return list.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
  };
  const onAwareness = () => events.emit("presence", [participants()]);
  provider.awareness?.on("change", onAwareness);
  cleanups.push(() => provider.awareness?.off("change", onAwareness));

  const copies = {
    downloadCopy() {
      download(
        element.ownerDocument,
        fileNameFor(resolved.document, "html"),
        "text/html",
        htmlFile(resolved.document, editor.getHTML()),
      );
    },
    async saveCopyAs(name: string): Promise<SaveCopyResult> {
      let token: string | undefined;
      try {
        token = typeof resolved.token === "function" ? await resolved.token() : resolved.token;
      } catch {
        return { ok: false, problem: "denied", message: "Could not get an access token." };
      }
      const result = await saveCopy({
        apiUrl: resolved.apiUrl,
        name,
        content: editor.getJSON(),
        token: token ?? null,
      });
      if (result.ok) events.emit("copySaved", [result.name]);
      return result;
    },
    async discardLocalCopy(): Promise<void> {
      await Promise.all([offline?.clearData(), threadsOffline?.clearData()]);
      events.emit("discarded", []);
    },
  };

  if (resolved.chrome) {
    cleanups.push(
      mountChrome({
        root,
        surface,
        editor,
        on,
        toolbar: !resolved.readOnly,
        accessNotice: resolved.accessNotice,
        participants,
        readOnly: () => readOnly,
        commenter: () => access?.perm === "comment",
        save: () => save,
        attach: (files) => uploads.insert(files),
        deleted: resolved.deletedNotice
          ? {
              document: resolved.document,
              download: () => copies.downloadCopy(),
              saveAs: (name) => copies.saveCopyAs(name),
              discard: () => copies.discardLocalCopy(),
            }
          : null,
      }),
    );
    if (withComments) {
      // With tokens the server records the token's user; this names the user in anonymous mode.
      const me = () =>
        access?.user ?? { id: localUserId(element.ownerDocument), name: user.name ?? "Guest" };
      if (resolved.offline) {
        cleanups.push(
          keepPending(
            comments,
            storageOf(element.ownerDocument),
            `collab-docs:pending-comments:${resolved.url}:${resolved.document}`,
            me,
          ),
        );
      }
      commentsUi = mountComments({
        root,
        surface,
        header: root.querySelector<HTMLElement>(".collab-editor__bar"),
        editor,
        threads: threadsDoc,
        client: comments,
        me,
        // The `readOnly` option is a view only; otherwise what the server grants (a `comment`
        // token may comment; until the server says, anyone may, and it decides).
        canComment: () =>
          !resolved.readOnly &&
          connection.kind !== "denied" &&
          (access === null || access.perm !== "read"),
        present: () => participants().map((p) => ({ id: `name:${p.name}`, name: p.name })),
        ...(resolved.mentions === undefined ? {} : { mentions: resolved.mentions }),
        onStored: (op) => events.emit("comment", [{ op: op.op, thread: op.thread }]),
      });
      const ui = commentsUi;
      cleanups.push(() => ui.destroy());
      // What the user may do follows the server's grant and the connection.
      cleanups.push(
        on("access", () => ui.refresh()),
        on("connection", () => ui.refresh()),
      );
    }
  } else {
    root.append(surface);
  }

  let destroyed = false;
  return {
    editor,
    provider,
    get connection() {
      return connection;
    },
    get save() {
      return save;
    },
    get readOnly() {
      return readOnly;
    },
    on,
    setUser(next) {
      user = next;
      editor.commands.updateUser({ ...next });
    },
    ...copies,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      events.destroy();
      for (const cleanup of cleanups.reverse()) cleanup();
      ydoc.destroy();
    },
  };
}
