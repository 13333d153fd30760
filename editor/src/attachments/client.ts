/**
 * The editor's side of the attachment API (server/src/api/attachment-routes.ts):
 * uploads with progress, and URLs an `<img>` can load. With tokens, an image
 * cannot send one, so the client asks the server once for a signature that
 * opens this document's attachments for a while and appends it to every URL
 * (refreshed before it expires).
 */

/** An uploaded attachment as the server describes it. */
export interface AttachmentInfo {
  /** The SHA-256 of the bytes. */
  readonly id: string;
  /** Its path on the server, e.g. `/api/v1/documents/notes/attachments/<id>`. */
  readonly url: string;
  /** The type the server sniffed from the bytes. */
  readonly type: string;
  readonly size: number;
  readonly filename: string;
}

/**
 * An upload that failed. `permanent`: the server refused it (too large, not
 * allowed) and trying again will not help; otherwise (offline, the server
 * unreachable or failing) it may succeed later.
 */
export class AttachmentError extends Error {
  readonly permanent: boolean;
  readonly status: number;

  constructor(message: string, status: number) {
    super(message);
    this.name = "AttachmentError";
    this.status = status;
    this.permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
  }
}

export interface AttachmentClientOptions {
  /** The REST API, e.g. `https://docs.example.com/api/v1`. */
  readonly apiUrl: string;
  readonly document: string;
  /** The access token, or null without token auth. */
  readonly token: () => Promise<string | null>;
}

/** How long before a signature's expiry a new one is asked for. */
const REFRESH_BEFORE_MS = 5 * 60_000;

export class AttachmentClient {
  private readonly options: AttachmentClientOptions;
  private signature: Promise<{ query: string; expires: number } | null> | null = null;

  constructor(options: AttachmentClientOptions) {
    this.options = options;
  }

  /** The attachments endpoint of this document. */
  private get base(): string {
    return `${this.options.apiUrl.replace(/\/$/, "")}/documents/${encodeURIComponent(this.options.document)}/attachments`;
  }

  /**
   * Uploads `file`; `onProgress` hears the fraction sent (0 to 1). Rejects
   * with an {@link AttachmentError} saying why.
   */
  async upload(
    file: Blob,
    filename: string,
    onProgress: (fraction: number) => void = () => {},
  ): Promise<AttachmentInfo> {
    const token = await this.token();
    const url = `${this.base}?filename=${encodeURIComponent(filename)}`;
    return new Promise<AttachmentInfo>((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", url);
      request.setRequestHeader("content-type", file.type || "application/octet-stream");
      if (token !== null) request.setRequestHeader("authorization", `Bearer ${token}`);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
      });
      request.addEventListener("load", () => {
        let body: unknown = null;
        try {
          body = JSON.parse(request.responseText);
        } catch {
          // Not JSON: a proxy's error page.
        }
        if (request.status === 200 || request.status === 201) {
          onProgress(1);
          resolve(body as AttachmentInfo);
          return;
        }
        const message =
          (body as { error?: { message?: string } } | null)?.error?.message ??
          `the server answered ${request.status}`;
        reject(new AttachmentError(message, request.status));
      });
      const offline = () =>
        reject(new AttachmentError("the server could not be reached; it will be sent later", 0));
      request.addEventListener("error", offline);
      request.addEventListener("timeout", offline);
      request.addEventListener("abort", offline);
      request.send(file);
    });
  }

  /** A URL of attachment `id` that an `<img>` or a link can load. */
  async src(id: string): Promise<string> {
    const url = `${this.base}/${id}`;
    const signature = await this.sign();
    return signature === null ? url : `${url}?${signature.query}`;
  }

  /** The signature for this document's attachments, or null when none is needed or given. */
  private sign(): Promise<{ query: string; expires: number } | null> {
    const current = this.signature;
    if (current !== null) {
      return current.then((signature) =>
        signature !== null && signature.expires - Date.now() < REFRESH_BEFORE_MS
          ? this.fetchSignature()
          : signature,
      );
    }
    return this.fetchSignature();
  }

  private fetchSignature(): Promise<{ query: string; expires: number } | null> {
    const fetching = (async () => {
      const token = await this.token();
      // Without token auth attachments need no signature.
      if (token === null) return null;
      const response = await fetch(`${this.base}/links`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      if (!response.ok) return null;
      const body = (await response.json()) as { query: string; expires: string };
      return { query: body.query, expires: Date.parse(body.expires) };
    })().catch(() => null);
    this.signature = fetching;
    // A failure (offline) is not remembered: the next image asks again.
    void fetching.then((signature) => {
      if (signature === null && this.signature === fetching) this.signature = null;
    });
    return fetching;
  }

  private async token(): Promise<string | null> {
    try {
      return await this.options.token();
    } catch {
      return null;
    }
  }
}
