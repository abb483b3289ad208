/**
 * Workers on Deno, Bun and Node alike, as a small request/response channel: `RpcWorker.spawn(url)` starts a module
 * worker (the Web `Worker` on Deno and Bun, `node:worker_threads` on Node), `call(op, args, transfer)` sends one
 * request and resolves with its reply. Transferable ArrayBuffers move without a copy.
 *
 * Failure is never a hang: an uncaught error or an exit in the worker rejects every pending and every later call
 * with `WorkerError("crashed")`; an error thrown by a handler comes back as `WorkerError("remote")` carrying the
 * remote error's name and code (a `BackendError("out_of_memory")` inside the worker stays recognisable). A worker
 * that goes silent is the remaining way to hang: with `stallMs`, a worker that owes replies and sends nothing (no
 * reply, no progress report: `context.progress()`, which long handlers call between steps) for that long is stopped
 * with `WorkerError("stalled")`, like a crash. Any message counts, since the worker answers requests in order: a call
 * queued behind a long one is not blamed for its wait.
 *
 * The worker side is `serveRequests(handlers)`, run at the top of the worker module.
 */

export type WorkerErrorCode = "crashed" | "remote" | "terminated" | "spawn" | "stalled";

export class WorkerError extends Error {
  override name = "WorkerError";
  constructor(
    readonly code: WorkerErrorCode,
    message: string,
    /** For "remote": the error's name and code inside the worker. */
    readonly remote?: { name: string; code?: string },
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

interface Request {
  id: number;
  op: string;
  args: unknown;
}

interface Reply {
  id: number;
  /** A progress report of a request still running (no result yet). */
  progress?: true;
  result?: unknown;
  error?: { name: string; code?: string; message: string };
}

/** What a handler returns: a value, or a value plus the buffers to transfer with it. */
export type HandlerResult = unknown | { value: unknown; transfer: ArrayBuffer[] };
/** What a handler gets besides its arguments. */
export interface RequestContext {
  /** Tells the caller this worker is alive (its stall clock restarts); cheap to call often (sent ≤ 4 times/s). */
  progress(): void;
}
export type Handlers = Record<string, (args: never, context: RequestContext) => HandlerResult | Promise<HandlerResult>>;

/** Marks a handler's result as transferring `transfer` (each buffer is detached on this side). */
export function transferring(value: unknown, transfer: ArrayBuffer[]): HandlerResult {
  return { [TRANSFER]: true, value, transfer };
}
const TRANSFER = "__transfer__";
/** The id of the message a worker sends once it listens. */
const READY = 0;

interface Channel {
  post(message: unknown, transfer?: ArrayBuffer[]): void;
  terminate(): void;
}

type Pending = { op: string; resolve(value: unknown): void; reject(error: Error): void };

export interface SpawnOptions {
  /** Names the worker in errors (default: the module's file name). */
  label?: string;
  /** A worker that owes replies and sends nothing (reply or progress) for this long is stopped as "stalled"; 0 or
   * absent: never. */
  stallMs?: number;
}

export class RpcWorker {
  #next = 1;
  #pending = new Map<number, Pending>();
  #failure: WorkerError | null = null;
  /** Settled by the worker's first message (serveRequests is listening) or by its failure before that. */
  #started = resolvers();
  /** When the worker was last heard from (or began to owe a reply), and the watchdog's timer while it owes one. */
  #heard = 0;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #channel!: Channel;
  /** Called once when the worker crashes (not on `terminate`). */
  onCrash?: (error: WorkerError) => void;

  private constructor(readonly label: string, readonly stallMs: number) {}

  static async spawn(url: URL, options: SpawnOptions = {}): Promise<RpcWorker> {
    const label = options.label ?? url.pathname.split("/").pop() ?? "worker";
    const stallMs = options.stallMs ?? 0;
    if (!(Number.isFinite(stallMs) && stallMs >= 0)) {
      throw new WorkerError("spawn", `stallMs must be a finite number ≥ 0 (0 = no watchdog), got ${stallMs}`);
    }
    const worker = new RpcWorker(label, stallMs);
    const onMessage = (reply: Reply) => worker.#settle(reply);
    const onFailure = (message: string) => worker.#fail(new WorkerError("crashed", `worker ${label}: ${message}`));
    try {
      const WebWorker = (globalThis as { Worker?: typeof Worker }).Worker;
      if (typeof WebWorker === "function" && !isNode()) {
        const w = new WebWorker(url, { type: "module" });
        w.onmessage = (event) => onMessage(event.data as Reply);
        w.onerror = (event) => {
          event.preventDefault(); // Deno would otherwise rethrow it in this thread and end the process.
          onFailure(`uncaught error: ${event.message}`);
        };
        w.onmessageerror = () => onFailure("a message could not be deserialised");
        worker.#channel = { post: (m, t) => w.postMessage(m, t ?? []), terminate: () => w.terminate() };
      } else {
        const { Worker: NodeWorker } = await import("node:worker_threads");
        const w = new NodeWorker(url);
        w.on("message", (reply: Reply) => onMessage(reply));
        w.on("error", (error: Error) => onFailure(`uncaught error: ${error.message}`));
        w.on("exit", (code: number) => onFailure(`exited with code ${code}`));
        // Not unref'd: a pending call must keep Node's event loop alive (else it exits with 13, "unsettled
        // top-level await"); `terminate()` (model.dispose()) lets the process end.
        worker.#channel = {
          post: (m, t) => w.postMessage(m, t ?? []),
          terminate: () => void w.terminate(),
        };
      }
    } catch (cause) {
      throw new WorkerError("spawn", `cannot start worker ${label}: ${String(cause)}`, undefined, { cause });
    }
    try {
      // Requests are only timed once the worker listens: loading (and, on Deno, type-checking) its module can take
      // seconds, which is no stall.
      await worker.#started.promise;
    } catch (cause) {
      throw new WorkerError("spawn", `cannot start worker ${label}: ${(cause as Error).message}`, undefined, { cause });
    }
    return worker;
  }

  get failed(): WorkerError | null {
    return this.#failure;
  }

  /** Sends `op(args)`; `transfer` lists buffers of `args` to move rather than copy. */
  call<T>(op: string, args?: unknown, transfer?: ArrayBuffer[]): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      if (this.#pending.size === 0) this.#heard = performance.now();
      this.#pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject });
      this.#arm(this.stallMs);
      try {
        this.#channel.post({ id, op, args } satisfies Request, transfer);
      } catch (cause) {
        this.#pending.delete(id);
        reject(new WorkerError("remote", `worker ${this.label}: cannot send ${op}: ${String(cause)}`));
      }
    });
  }

  /** Stops the worker; pending and later calls fail with `WorkerError("terminated")`. Idempotent. */
  terminate(): void {
    if (this.#failure) return;
    this.#failure = new WorkerError("terminated", `worker ${this.label} was terminated`);
    this.#channel.terminate();
    this.#rejectAll(this.#failure);
  }

  /** Checks in `ms` that the worker spoke within the last stallMs while it owed a reply. */
  #arm(ms: number): void {
    if (this.stallMs === 0 || this.#watchdog !== undefined || this.#failure) return;
    const due = performance.now() + ms;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      if (this.#pending.size === 0 || this.#failure) return;
      const now = performance.now();
      // A timer that fires late means this thread was busy (a long synchronous op): the worker's messages may be
      // queued unread behind it, so give them one more period rather than blame the worker.
      if (now - due > Math.min(1000, this.stallMs)) return this.#arm(this.stallMs);
      const silent = now - this.#heard;
      if (silent < this.stallMs) return this.#arm(this.stallMs - silent);
      const owed = [...this.#pending.values()][0].op;
      this.#fail(
        new WorkerError(
          "stalled",
          `worker ${this.label}: silent for ${this.stallMs} ms while owing a reply to ${owed}; the worker was stopped`,
        ),
      );
    }, ms);
  }

  #settle(reply: Reply): void {
    this.#heard = performance.now();
    if (reply.id === READY) return this.#started.resolve();
    const pending = this.#pending.get(reply.id);
    if (!pending || reply.progress) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) {
      clearTimeout(this.#watchdog); // owes nothing: no timer left to keep an event loop alive
      this.#watchdog = undefined;
    }
    if (reply.error) {
      const { name, code, message } = reply.error;
      pending.reject(
        new WorkerError("remote", `worker ${this.label}: ${name}${code ? ` (${code})` : ""}: ${message}`, {
          name,
          code,
        }),
      );
    } else {
      pending.resolve(reply.result);
    }
  }

  #fail(error: WorkerError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#started.reject(error);
    try {
      this.#channel.terminate();
    } catch {
      // already gone
    }
    this.#rejectAll(error);
    this.onCrash?.(error);
  }

  #rejectAll(error: WorkerError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    for (const p of pending) p.reject(error);
  }
}

/** Promise.withResolvers, which Node 20 lacks. */
function resolvers(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => [resolve, reject] = [res, rej]);
  return { promise, resolve, reject };
}

function isNode(): boolean {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  return !g.Deno && !g.Bun && typeof g.process?.versions?.node === "string";
}

/** Worker side: answers requests with `handlers[op](args)`, one at a time, in arrival order. */
export async function serveRequests(handlers: Handlers): Promise<void> {
  let post: (message: Reply, transfer?: ArrayBuffer[]) => void;
  let listen: (handler: (request: Request) => void) => void;
  if (isNode()) {
    const { parentPort } = await import("node:worker_threads");
    if (!parentPort) throw new Error("serveRequests must run inside a worker");
    post = (m, t) => parentPort.postMessage(m, t ?? []);
    listen = (handler) => parentPort.on("message", handler);
  } else {
    const scope = globalThis as unknown as {
      postMessage(m: unknown, t?: Transferable[]): void;
      onmessage: ((e: MessageEvent) => void) | null;
    };
    post = (m, t) => scope.postMessage(m, t ?? []);
    listen = (handler) => (scope.onmessage = (event) => handler(event.data as Request));
  }
  // Requests run strictly in order (a later one may depend on an earlier one, e.g. open session → forward).
  let queue: Promise<void> = Promise.resolve();
  queueMicrotask(() => post({ id: READY, progress: true }));
  listen((request) => {
    queue = queue.then(async () => {
      try {
        const handler = handlers[request.op];
        if (!handler) throw new Error(`unknown op ${request.op}`);
        let reported = 0;
        const context: RequestContext = {
          progress() {
            const now = performance.now();
            if (now - reported < 250) return;
            reported = now;
            post({ id: request.id, progress: true });
          },
        };
        const out = await handler(request.args as never, context);
        if (out !== null && typeof out === "object" && TRANSFER in out) {
          const { value, transfer } = out as unknown as { value: unknown; transfer: ArrayBuffer[] };
          post({ id: request.id, result: value }, transfer);
        } else {
          post({ id: request.id, result: out });
        }
      } catch (error) {
        const e = error as { name?: string; code?: unknown; message?: string };
        post({
          id: request.id,
          error: {
            name: e?.name ?? "Error",
            code: typeof e?.code === "string" ? e.code : undefined,
            message: e?.message ?? String(error),
          },
        });
      }
    });
  });
}

/** Handlers the model's workers serve for tests (`...TEST_HANDLERS`): the two ways a worker fails a caller. */
export const TEST_HANDLERS: Handlers = {
  /** Never answers again, as a deadlock or a runaway loop would. */
  hang() {
    for (;;) {
      // spins until terminated
    }
  },
  /** Dies of an uncaught error while this request (and whatever was queued behind it) is still open, as a crash in
   * the middle of a forward would. */
  crash() {
    setTimeout(() => {
      throw new Error("deliberate crash (test)");
    }, 0);
    return new Promise<never>(() => {});
  },
};
