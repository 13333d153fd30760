/**
 * Deleting a document in a cluster. The instance that deletes a document
 * closes only its own clients; another instance with the document open
 * would keep storing its clients' edits, and store the whole document again
 * when it unloads, so the deletion would not hold. Before deleting, the
 * deleting instance therefore tells every other instance (one Redis
 * channel) to let go of the document: refuse it meanwhile, close its
 * clients with `document-deleted`, finish its pending writes and unload it
 * without storing it again. Each answers when done; the deleting instance
 * waits for as many answers as there are other subscribers (bounded), then
 * deletes from the store and says so, and the others accept the name again.
 */
import { randomUUID } from "node:crypto";
import type { LetGoPurpose } from "../documents/service.ts";
import type { Logger } from "../observability/logger.ts";
import type { RedisConnections } from "./redis.ts";

/** What an instance does when another deletes a document (or restores one into its name). */
export interface DeletionHandlers {
  /** Let go of `name`: refuse it, close its clients, store what is pending, unload it. */
  readonly release: (name: string, purpose: LetGoPurpose) => Promise<void>;
  /** The deletion is over: accept `name` again. */
  readonly released: (name: string) => void;
}

type Message =
  | {
      readonly kind: "begin";
      readonly id: string;
      readonly name: string;
      readonly from: string;
      /** Absent from instances older than the trash: a deletion. */
      readonly purpose?: LetGoPurpose;
    }
  | { readonly kind: "ready"; readonly id: string; readonly from: string }
  | { readonly kind: "end"; readonly id: string; readonly name: string; readonly from: string };

/** How long a deletion waits for the other instances to let go. */
const RELEASE_TIMEOUT_MS = 10_000;

export class DeletionCoordinator {
  private readonly redis: RedisConnections;
  private readonly logger: Logger;
  private readonly channel: string;
  private handlers: DeletionHandlers | null = null;
  /** Deletions of ours waiting for answers, by id. */
  private readonly waiting = new Map<string, { missing: number; done: () => void }>();

  constructor(options: { redis: RedisConnections; logger: Logger; prefix?: string }) {
    this.redis = options.redis;
    this.logger = options.logger;
    this.channel = `${options.prefix ?? "collab"}#deletions`;
    this.redis.presence.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      if (channel.toString() === this.channel) void this.receive(message.toString());
    });
  }

  /** Starts answering other instances' deletions. */
  async start(handlers: DeletionHandlers): Promise<void> {
    this.handlers = handlers;
    await this.redis.presence.subscribe(this.channel);
  }

  /**
   * Asks every other instance to let go of `name` and waits until they all
   * have (or RELEASE_TIMEOUT_MS, logged). Returns the id to pass to {@link finish}.
   */
  async prepare(name: string, purpose: LetGoPurpose = "delete"): Promise<string> {
    const id = randomUUID();
    const subscribers = await this.subscribers();
    const others = Math.max(0, subscribers - 1);
    if (others === 0) return id;
    const answered = new Promise<void>((resolve) => {
      this.waiting.set(id, { missing: others, done: resolve });
    });
    await this.publish({ kind: "begin", id, name, from: this.redis.instance, purpose });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), RELEASE_TIMEOUT_MS);
    });
    const late = await Promise.race([answered.then(() => false), timedOut]);
    clearTimeout(timer);
    const missing = this.waiting.get(id)?.missing ?? 0;
    this.waiting.delete(id);
    if (late) {
      this.logger.warn(
        { document: name, missing },
        "deleting although some instances did not confirm they let go of the document",
      );
    }
    return id;
  }

  /** Tells the other instances the deletion is over. */
  async finish(id: string, name: string): Promise<void> {
    await this.publish({ kind: "end", id, name, from: this.redis.instance }).catch(
      (error: unknown) => this.logger.warn({ err: error, document: name }, "deletion end not sent"),
    );
  }

  private async subscribers(): Promise<number> {
    const reply = (await this.redis.publisher.pubsub("NUMSUB", this.channel)) as unknown[];
    return Number(reply[1] ?? 0);
  }

  private async publish(message: Message): Promise<void> {
    await this.redis.send(this.channel, new TextEncoder().encode(JSON.stringify(message)));
  }

  private async receive(text: string): Promise<void> {
    let message: Message;
    try {
      message = JSON.parse(text) as Message;
    } catch {
      return;
    }
    if (message.from === this.redis.instance) return;
    switch (message.kind) {
      case "begin":
        try {
          await this.handlers?.release(message.name, message.purpose ?? "delete");
        } catch (error) {
          this.logger.error(
            { err: error, document: message.name },
            "could not let go of a deleted document",
          );
        }
        await this.publish({ kind: "ready", id: message.id, from: this.redis.instance }).catch(
          (error: unknown) => this.logger.warn({ err: error }, "deletion answer not sent"),
        );
        return;
      case "ready": {
        const waiting = this.waiting.get(message.id);
        if (waiting === undefined) return;
        waiting.missing--;
        if (waiting.missing <= 0) waiting.done();
        return;
      }
      case "end":
        this.handlers?.released(message.name);
        return;
    }
  }
}
