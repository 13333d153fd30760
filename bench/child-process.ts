/**
 * The benchmark side of every child process the benchmarks drive over
 * Node's IPC channel: the server children (bench/server.ts) and the load
 * generators (bench/scale-load.ts, bench/peers/load.ts,
 * bench/peers/ingest-load.ts). A child runs in a process of its own so its
 * CPU and memory are not the benchmark's; this module spawns it, waits for
 * the JSON line `{"bench":"<tag>",...}` it prints on stdout once ready,
 * matches replies to requests by id, keeps the last lines of its output for
 * error messages, stops it (SIGTERM, then SIGKILL) and kills whatever is
 * still running when the benchmark exits ({@link startChild}). The load
 * generators' own side is here too: the request loop and the ready line
 * ({@link serveRequests}), and the `{ id, type }` message convention that
 * bench/scale-load.ts and bench/peers/load.ts share ({@link startLoadProcess},
 * {@link serveLoadRequests}). One implementation, so every child is started,
 * answered, timed out and cleaned up the same way.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { withTimeout } from "./lib.ts";

/** The repository root: every child runs there. */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Lines of output kept for error messages. */
const OUTPUT_LINES = 40;

/** The line a child prints on stdout once it is ready: `bench` names it, the rest is its own. */
export interface ReadyLine {
  readonly bench: string;
  readonly [field: string]: unknown;
}

/** A message without its `id` (which {@link Child.request} assigns), member by member of a union. */
export type WithoutId<M> = M extends unknown ? Omit<M, "id"> : never;

/** How to start a child. */
export interface ChildOptions<Reply> {
  /** The `bench` field of the line the child prints on stdout once ready. */
  readonly ready: string;
  /** Node flags before the script. @default ["--expose-gc"] */
  readonly nodeFlags?: readonly string[];
  /** The child's whole environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The longest to wait for the ready line (the child is stopped after). @default 30_000 */
  readonly startTimeoutMs?: number;
  /** The longest to wait for an exit after SIGTERM, and again after SIGKILL. @default 10_000 */
  readonly stopTimeoutMs?: number;
  /** The message of a reply that reports a failure, or undefined for a success. */
  readonly failure: (reply: Reply) => string | undefined;
}

/** A running child, as the benchmark sees it. */
export interface Child<Request, Reply> {
  readonly label: string;
  /** The child's process id (e.g. to read its /proc/<pid>/status). */
  readonly pid: number;
  /** The ready line it printed. */
  readonly readyLine: ReadyLine;
  /** From spawn until the ready line arrived. */
  readonly startupMs: number;
  /**
   * Sends `request` with a fresh id and resolves with the reply of that id;
   * rejects when the reply reports a failure, after `timeoutMs`, or when the
   * child exits first (with its last lines of output).
   */
  request(request: WithoutId<Request>, timeoutMs: number): Promise<Reply>;
  /** SIGTERM, then SIGKILL if it has not exited in time. Idempotent. */
  stop(): Promise<void>;
  /**
   * SIGKILL at once, with no chance to shut down (what a crash or an
   * out-of-memory kill looks like); resolves once the process is gone.
   * Idempotent, and a no-op after `stop()`.
   */
  kill(): Promise<void>;
  /** Resolves, once the child has exited, with how ("exit code 0", "signal SIGKILL"). */
  readonly exited: Promise<string>;
}

/** Every child not yet known to have exited, killed if this process exits first. */
const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function killChildrenOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of children) child.kill("SIGKILL");
  });
}

/** `line` as a ready line tagged `tag`, or undefined (a log line, or another tag). */
function parseReady(line: string, tag: string): ReadyLine | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === "object" && parsed !== null && "bench" in parsed) {
      if (parsed.bench === tag) return parsed as ReadyLine;
    }
  } catch {
    // A log line that is not JSON.
  }
  return undefined;
}

/**
 * Starts `script` with an IPC channel, in the repository root, and waits
 * until it prints its ready line. `label` names it in every error message.
 * Requests are sent with an `id` added; replies must carry the same `id`.
 */
export async function startChild<Request extends object, Reply extends { readonly id: number }>(
  label: string,
  script: string,
  options: ChildOptions<Reply>,
): Promise<Child<Request, Reply>> {
  killChildrenOnExit();
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const started = performance.now();
  const child = spawn(process.execPath, [...(options.nodeFlags ?? ["--expose-gc"]), script], {
    cwd: ROOT,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  children.add(child);
  /** The last lines of output, for error messages. */
  const output: string[] = [];
  const remember = (line: string) => {
    output.push(line);
    if (output.length > OUTPUT_LINES) output.shift();
  };
  const lastOutput = () => output.join("\n");
  // A failed IPC send or kill is reported here; the exit (or a timeout) is what callers see.
  child.on("error", (error) => remember(`process error: ${String(error)}`));
  const exited = new Promise<string>((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve(signal === null ? `exit code ${code}` : `signal ${signal}`);
    }),
  );
  const pending = new Map<number, { resolve(reply: Reply): void; reject(e: Error): void }>();
  child.on("message", (reply: Reply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    waiter?.resolve(reply);
  });
  void exited.then((how) => {
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`${label} exited (${how}):\n${lastOutput()}`));
    }
    pending.clear();
  });
  if (child.stderr !== null) {
    createInterface({ input: child.stderr }).on("line", (line) => {
      if (line !== "") remember(`stderr: ${line}`);
    });
  }
  const ready = new Promise<ReadyLine>((resolve, reject) => {
    if (child.stdout !== null) {
      createInterface({ input: child.stdout }).on("line", (line) => {
        remember(line);
        const parsed = parseReady(line, options.ready);
        if (parsed !== undefined) resolve(parsed);
      });
    }
    void exited.then((how) =>
      reject(new Error(`${label} exited (${how}) before it was ready:\n${lastOutput()}`)),
    );
  });

  const running = () => child.exitCode === null && child.signalCode === null;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!running()) return;
      child.kill("SIGTERM");
      try {
        await withTimeout(exited, stopTimeoutMs, `${label} to exit`);
      } catch {
        child.kill("SIGKILL");
        await withTimeout(exited, stopTimeoutMs, `${label} to die`);
      }
    })();
    return stopping;
  };
  const kill = async (): Promise<void> => {
    if (running()) child.kill("SIGKILL");
    await withTimeout(exited, stopTimeoutMs, `${label} to die`);
  };

  let nextId = 1;
  const request = async (command: WithoutId<Request>, timeoutMs: number): Promise<Reply> => {
    const id = nextId++;
    const reply = new Promise<Reply>((resolve, reject) => pending.set(id, { resolve, reject }));
    child.send({ ...command, id });
    const type = "type" in command ? String(command.type) : "a request";
    const answer = await withTimeout(reply, timeoutMs, `${label} to answer ${type}`);
    const failure = options.failure(answer);
    if (failure !== undefined) throw new Error(`${label}: ${failure}`);
    return answer;
  };

  let readyLine: ReadyLine;
  try {
    readyLine = await withTimeout(ready, options.startTimeoutMs ?? 30_000, `${label} to start`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    label,
    pid: child.pid ?? -1,
    readyLine,
    startupMs: performance.now() - started,
    request,
    stop,
    kill,
    exited,
  };
}

// --- The child's side ------------------------------------------------------------------------

/** One handler per request type: what {@link dispatch} calls for a request of that type. */
export type Handlers<Request extends { readonly type: string }, Reply> = {
  readonly [T in Request["type"]]: (
    request: Extract<Request, { readonly type: T }>,
  ) => Reply | Promise<Reply>;
};

/** An `answer` for {@link serveRequests} that hands each request to the handler of its type. */
export function dispatch<Request extends { readonly type: string }, Reply>(
  handlers: Handlers<Request, Reply>,
): (request: Request) => Promise<Reply> {
  return async (request) => {
    // TypeScript cannot relate a request's type to its handler's parameter: the mapped type does.
    const handler = handlers[request.type as Request["type"]] as (
      request: Request,
    ) => Reply | Promise<Reply>;
    return handler(request);
  };
}

/**
 * The child's side of {@link startChild}, for a load generator run with an
 * IPC channel: answers every request with `answer`'s reply (or, when
 * `answer` fails, with `failed`'s reply carrying the error's message);
 * calls `leave` and exits when the benchmark goes away (the channel closes)
 * or asks it to stop (SIGTERM); and prints the ready line `{"bench": tag}`.
 */
export function serveRequests<Request extends { readonly id: number }, Reply>(
  tag: string,
  answer: (request: Request) => Promise<Reply>,
  failed: (request: Request, message: string) => Reply,
  leave: () => void,
): void {
  process.on("message", (request: Request) => {
    answer(request).then(
      (reply) => process.send?.(reply),
      (error: unknown) =>
        process.send?.(failed(request, error instanceof Error ? error.message : String(error))),
    );
  });
  const exit = () => {
    leave();
    process.exit(0);
  };
  process.on("disconnect", exit);
  process.on("SIGTERM", exit);
  process.stdout.write(`${JSON.stringify({ bench: tag })}\n`);
}

// --- The load generators' convention --------------------------------------------------------

/** The ready line's tag of a load generator (bench/scale-load.ts, bench/peers/load.ts). */
const LOAD_READY = "load-ready";

/** A load generator's reply to a request it could not carry out. */
export interface ErrorReply {
  readonly id: number;
  readonly type: "error";
  readonly message: string;
}

/** A request or reply of a load generator: `type` says which. */
interface Typed {
  readonly id: number;
  readonly type: string;
}

/**
 * Starts a load generator (`script`, which calls {@link serveLoadRequests})
 * and waits until it is ready; an {@link ErrorReply} rejects the request.
 */
export function startLoadProcess<Request extends Typed, Reply extends Typed>(
  script: string,
): Promise<Child<Request, Reply>> {
  return startChild<Request, Reply>("the load generator", script, {
    ready: LOAD_READY,
    failure: (reply) =>
      reply.type === "error" && "message" in reply ? String(reply.message) : undefined,
  });
}

/**
 * The load generator's side of {@link startLoadProcess}: {@link serveRequests}
 * with one handler per request type, a failure answered with an
 * {@link ErrorReply}.
 */
export function serveLoadRequests<Request extends Typed, Reply extends Typed>(
  handlers: Handlers<Request, Reply>,
  leave: () => void,
): void {
  serveRequests<Request, Reply | ErrorReply>(
    LOAD_READY,
    dispatch(handlers),
    ({ id }, message) => ({ id, type: "error", message }),
    leave,
  );
}
