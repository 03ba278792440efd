/**
 * {@linkcode Listener}: `Deno.serve` that survives running out of file
 * descriptors.
 *
 * Deno 2.9.6 ends `Deno.serve`'s accept loop at the first EMFILE ("Too many
 * open files"): `finished` rejects, the listening socket is closed and the
 * port refuses connections for good, even once descriptors are free again.
 * The connections already open (WebSockets included) keep working. Idle TCP
 * connections reach that state on their own, since Deno never times out a
 * half-sent request head. Node's `net.Server` and Python's asyncio keep
 * accepting instead.
 *
 * A Listener keeps the server's address and its open connections, reports the
 * exhaustion once, and calls `Deno.serve` again on the same hostname and port
 * until the bind succeeds. Measured on Linux: a second `Deno.serve` binds the
 * port as soon as one descriptor is free (the old socket is really closed);
 * while none is free it throws EMFILE synchronously.
 *
 * @module
 */

/** What `Deno.serve` takes, with the handler inside. */
export type ServeWithHandler =
  & Deno.ServeTcpOptions
  & { handler: Deno.ServeHandler<Deno.NetAddr> };

/** Options of a {@linkcode Listener} beyond those of `Deno.serve`. */
export interface ListenerOptions {
  /**
   * Called when the server stops accepting because the process (or the
   * system) ran out of file descriptors: once per episode. An episode ends
   * when a server started after it served a request; until then, listeners
   * that bind and die again at once are not reported again.
   *
   * @default {logs one line with console.error}
   */
  onListenError?: ((error: Error) => void) | undefined;
}

/** First wait before listening again, in milliseconds. */
const FIRST_RETRY_MS = 100;
/**
 * Longest wait between attempts, in milliseconds: the port answers again at
 * most this long after descriptors free up. Backing off bounds how many
 * servers a sustained attack makes the listener start and lose.
 */
const MAX_RETRY_MS = 400;

/**
 * Runs `Deno.serve` and starts it again, on the same address, whenever its
 * accept loop ends because descriptors ran out.
 */
export class Listener {
  readonly #options: ServeWithHandler;
  readonly #onListenError: (error: Error) => void;
  readonly #addr: Deno.NetAddr;
  /** Every server started and not shut down: the dead ones keep connections. */
  readonly #servers = new Set<Deno.HttpServer<Deno.NetAddr>>();
  #current: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #finished = Promise.withResolvers<void>();
  #stopping: Promise<void> | undefined;
  /** How many servers were started, so a server knows its place. */
  #started = 0;
  /**
   * While descriptors are exhausted: the number of the first server started
   * after the loss. A request served by it or a later one ends the episode.
   */
  #episodeFrom: number | undefined;
  #retryMs = FIRST_RETRY_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Calls `Deno.serve` with `options`; errors of that first call (a port in
   * use, no permission) are thrown as they are.
   *
   * @param options As for `Deno.serve`, handler included.
   * @param hooks Where exhaustion is reported.
   */
  constructor(options: ServeWithHandler, hooks: ListenerOptions = {}) {
    this.#options = options;
    this.#onListenError = hooks.onListenError ?? reportToConsole;
    this.#current = this.#serve(options);
    this.#addr = this.#current.addr;
  }

  /** The address bound first; every later server binds the same one. */
  get addr(): Deno.NetAddr {
    return this.#addr;
  }

  /**
   * Settles when {@linkcode Listener.shutdown} has stopped every server, or
   * rejects when listening became impossible for another reason than
   * exhausted descriptors (the error `Deno.serve` gave). Like `Deno.serve`'s,
   * a rejection nobody handles ends the process; exhaustion never rejects it
   * (Deno 2.9.6 ends the process at EMFILE even when nothing awaits
   * `finished`: its rejection is unhandled).
   */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  /**
   * Stops listening again, shuts down the current server and those that
   * died of exhaustion (they may still hold connections). Later calls
   * return the same promise.
   */
  shutdown(): Promise<void> {
    return this.#stopping ??= (async () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      await Promise.all(
        [...this.#servers].map((server) => server.shutdown().catch(() => {})),
      );
      this.#servers.clear();
      this.#current = undefined;
      this.#finished.resolve();
    })();
  }

  #serve(options: ServeWithHandler): Deno.HttpServer<Deno.NetAddr> {
    const number = ++this.#started;
    const { handler } = this.#options;
    const server = Deno.serve({
      ...options,
      handler: (request, info) => {
        if (this.#episodeFrom !== undefined && number >= this.#episodeFrom) {
          // A server started after the loss served a request: recovered.
          this.#episodeFrom = undefined;
        }
        return handler(request, info);
      },
    });
    this.#servers.add(server);
    server.finished.catch((error: unknown) => this.#ended(server, error));
    return server;
  }

  #ended(server: Deno.HttpServer<Deno.NetAddr>, error: unknown): void {
    if (this.#stopping || server !== this.#current) return;
    this.#current = undefined;
    if (!isDescriptorExhaustion(error)) {
      this.#finished.reject(error);
      return;
    }
    if (this.#episodeFrom === undefined) {
      this.#episodeFrom = this.#started + 1;
      this.#retryMs = FIRST_RETRY_MS;
      try {
        this.#onListenError(error as Error);
      } catch (thrown) {
        console.error("anyws: onListenError threw; ignored:", thrown);
      }
    } else {
      // Bound and lost again in the same episode: wait longer.
      this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
    }
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    // Not unref'd: while it waits, this timer is the listener, which keeps
    // the process alive as the listening socket did.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopping) return;
      try {
        this.#current = this.#serve({
          ...this.#options,
          hostname: this.#addr.hostname,
          port: this.#addr.port,
          onListen() {}, // said once, by the first server
        });
      } catch (error) {
        if (!isDescriptorExhaustion(error)) {
          this.#finished.reject(error);
          return;
        }
        this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
        this.#scheduleRetry();
      }
    }, this.#retryMs);
  }
}

/**
 * Whether `error` says the process or the system is out of file
 * descriptors: EMFILE or ENFILE. `Deno.serve`'s `finished` rejects with a
 * `Deno.errors.Http` whose message ends "Too many open files (os error
 * 24)"; a `Deno.serve` call that cannot open a socket throws an error with
 * code "EMFILE".
 *
 * @param error Anything thrown or rejected.
 */
export function isDescriptorExhaustion(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return code === "EMFILE" || code === "ENFILE" ||
    /too many open files|\(os error (?:23|24|10024)\)/i.test(error.message);
}

function reportToConsole(error: Error): void {
  console.error(
    `anyws: the server stopped accepting connections: the process is out of file descriptors (${error.message}). Open connections go on; it listens again as soon as descriptors free up. Raise the limit (ulimit -n) or lower the connections per process.`,
  );
}
