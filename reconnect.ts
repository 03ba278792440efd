/**
 * Reconnection for client connections: the policy (backoff, attempts, which
 * closes and handshake failures are worth retrying), the bounded queue of
 * messages sent while disconnected, and the loop that opens new sockets.
 *
 * Nothing here touches a `Connection`'s state: the connection asks
 * {@linkcode Reconnector.reopen} for a new socket and adopts it, as
 * python-websockets keeps protocol decisions apart from I/O. Most
 * applications only pass {@linkcode ReconnectOptions} to `connect()`.
 *
 * @example Reconnect with the defaults
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 *
 * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hello"); } });
 * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`, {
 *   reconnect: { initialDelay: 500, maxDelay: 10_000 },
 * });
 * conn.on("reconnecting", (_conn, { attempt, delay }) => console.log(`retry #${attempt} in ${delay} ms`));
 * conn.on("reconnect", (conn) => conn.send("subscribe"));
 * console.log(`${await conn.nextMessage()}`);
 * ```
 *
 * @module
 */

import { delay as sleep } from "@std/async/delay";
import { asError, type CloseInfo } from "./close.ts";
import { sendableLength } from "./message.ts";

// The types this entry's signatures name, so that it works on its own.
export type { CloseInfo } from "./close.ts";

/** What {@linkcode Reconnector} queues: a value returned by `toSendable()`. */
export type QueuedData = string | Uint8Array | ArrayBuffer | Blob;

/** What happens when a send does not fit in the reconnect queue. */
export type OverflowPolicy = "reject" | "drop-oldest";

/**
 * How a client connection reconnects (`connect(url, { reconnect })`).
 *
 * Close codes (sent by the server, or 1006 for a dropped connection):
 * - never retried: 1000 (normal), 1008 (policy violation), and
 *   {@linkcode ReconnectOptions.stopCodes};
 * - retried: 1001 (going away), 1006 (abnormal), 1011 (internal error),
 *   1012 (service restart), 1013 (try again later), 1014 (bad gateway), every
 *   application code 3000-4999 not in `stopCodes`, and
 *   {@linkcode ReconnectOptions.retryCodes};
 * - not retried unless in `retryCodes`: 1002, 1003, 1007, 1009, 1010 (the
 *   same bytes would fail the same way), 1005 (the server closed on purpose
 *   without a code), 1015 and any other code.
 *
 * Handshake failures: HTTP 4xx stops, except 408 and 429, which are
 * "try later" by definition; HTTP 5xx, refused or dropped TCP, timeouts and
 * subprotocol mismatches are retried. Closes this side makes (`close()`, a
 * throwing handler, a message over a limit) are never retried.
 */
export interface ReconnectOptions {
  /**
   * The backoff base in milliseconds: attempt `n` waits a uniformly random
   * time in `[0, min(maxDelay, initialDelay * multiplier ** (n - 1)))`
   * ("full jitter").
   *
   * @default {1000}
   */
  initialDelay?: number;
  /**
   * The cap of the backoff, in milliseconds.
   *
   * @default {30000}
   */
  maxDelay?: number;
  /**
   * The backoff growth factor per attempt, at least 1.
   *
   * @default {2}
   */
  multiplier?: number;
  /**
   * How many handshakes to try after one loss before giving up; counting
   * starts over after each successful reconnection. `Infinity` never gives
   * up.
   *
   * @default {Infinity}
   */
  maxAttempts?: number;
  /**
   * How long, in milliseconds, a socket must stay open for its loss to
   * start the backoff over. A socket that lived less (a server that accepts
   * and then closes at once: a crash loop, or 1011/1001 on every
   * connection) continues the escalation where the last wait left off, so
   * that every client of such a server slows down to the `maxDelay` cap
   * instead of reconnecting about twice a second forever. A close with 1013
   * ("Try Again Later") never starts the backoff over, whatever the uptime,
   * and its first wait is at least half the current ceiling.
   *
   * @default {5000}
   */
  minUptime?: number;
  /**
   * The random source of the jitter: returns a number in `[0, 1)`. Inject a
   * seeded one for reproducible delays.
   *
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * Close codes that end the connection instead of reconnecting, besides
   * 1000 and 1008 (e.g. 4001 for "unauthorized").
   *
   * @default {[]}
   */
  stopCodes?: Iterable<number>;
  /**
   * Close codes to retry that are not retried by default (e.g. 1005). 1000
   * and 1008 are not allowed.
   *
   * @default {[]}
   */
  retryCodes?: Iterable<number>;
  /**
   * How many messages `send()` queues while disconnected.
   *
   * @default {1024}
   */
  maxQueuedMessages?: number;
  /**
   * How many bytes (payload, UTF-8 for text) `send()` queues while
   * disconnected.
   *
   * @default {1048576} (1 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * What a send that does not fit in the queue does: `"reject"` throws a
   * {@linkcode QueueOverflowError} from `send()` and queues nothing;
   * `"drop-oldest"` discards the oldest queued messages until it fits and
   * counts them in {@linkcode ReconnectStats.droppedMessages}. A message
   * bigger than `maxQueuedBytes` is rejected either way.
   *
   * @default {"reject"}
   */
  overflow?: OverflowPolicy;
  /**
   * How long, in milliseconds, the queue waits for the promises returned by
   * `reconnect` handlers (or given to {@linkcode ReconnectEvent.waitUntil}).
   * Past it, or when one rejects, the connection fails with 4011.
   *
   * @default {30000}
   */
  hookTimeout?: number;
}

/** Given to `reconnecting` handlers and carried by {@linkcode ReconnectingEvent}. */
export interface ReconnectingInfo {
  /** The attempt about to be made: 1 for the first after a loss. */
  readonly attempt: number;
  /** How long, in milliseconds, before the attempt starts. */
  readonly delay: number;
  /**
   * Why: a `ConnectionClosedError` for the loss (with its `code`), then the
   * `ConnectError` of the previous failed attempt (with its `status`).
   */
  readonly cause: Error;
}

/** Given to `reconnect` handlers and carried by {@linkcode ReconnectEvent}. */
export interface ReconnectInfo {
  /** The attempt that succeeded: 1 for the first after a loss. */
  readonly attempt: number;
  /** How many messages wait in the queue, to be sent once the handlers settle. */
  readonly queuedMessages: number;
  /** How many queued messages `"drop-oldest"` has discarded, in total. */
  readonly droppedMessages: number;
}

/** A snapshot of a reconnecting connection's counters. */
export interface ReconnectStats {
  /** Successful reconnections so far. */
  readonly reconnects: number;
  /** Messages waiting in the queue (left unsent once the connection has finished). */
  readonly queuedMessages: number;
  /** Bytes waiting in the queue. */
  readonly queuedBytes: number;
  /** Queued messages discarded by the `"drop-oldest"` overflow policy, in total. */
  readonly droppedMessages: number;
}

/**
 * Thrown by `send()` on a reconnecting connection when the message does not
 * fit in the queue (see {@linkcode ReconnectOptions.overflow}). Nothing was
 * queued.
 *
 * @example
 * ```ts
 * import { QueueOverflowError } from "@anyws/anyws/reconnect";
 * import { assertEquals } from "@std/assert";
 *
 * const error = new QueueOverflowError("Cannot queue: full", 10);
 * assertEquals(error.byteLength, 10);
 * ```
 */
export class QueueOverflowError extends Error {
  /** The size of the refused message in bytes. */
  readonly byteLength: number;

  /**
   * Creates the error.
   *
   * @param message What happened.
   * @param byteLength The size of the refused message in bytes.
   *
   * @example
   * ```ts
   * import { QueueOverflowError } from "@anyws/anyws/reconnect";
   *
   * console.log(new QueueOverflowError("Cannot queue: full", 3).name);
   * ```
   */
  constructor(message: string, byteLength: number) {
    super(message);
    this.name = "QueueOverflowError";
    this.byteLength = byteLength;
  }
}

/**
 * Dispatched by a reconnecting `Connection` before it waits to
 * reconnect (DOM event `reconnecting`).
 *
 * @example
 * ```ts
 * import { ReconnectingEvent } from "@anyws/anyws/reconnect";
 *
 * const event = new ReconnectingEvent({ attempt: 1, delay: 250, cause: new Error("lost") });
 * console.log(event.type, event.attempt, event.delay);
 * ```
 */
export class ReconnectingEvent extends Event implements ReconnectingInfo {
  /** As in {@linkcode ReconnectingInfo.attempt}. */
  readonly attempt: number;
  /** As in {@linkcode ReconnectingInfo.delay}. */
  readonly delay: number;
  /** As in {@linkcode ReconnectingInfo.cause}. */
  readonly cause: Error;

  /**
   * Creates the event.
   *
   * @param info The attempt, delay and cause.
   *
   * @example
   * ```ts
   * import { ReconnectingEvent } from "@anyws/anyws/reconnect";
   *
   * console.log(new ReconnectingEvent({ attempt: 2, delay: 10, cause: new Error("x") }).attempt);
   * ```
   */
  constructor(info: ReconnectingInfo) {
    super("reconnecting");
    this.attempt = info.attempt;
    this.delay = info.delay;
    this.cause = info.cause;
  }
}

/**
 * Dispatched by a reconnecting `Connection` once a new socket is
 * open, before the queue is flushed (DOM event `reconnect`). A listener that
 * re-authenticates asynchronously passes its promise to
 * {@linkcode ReconnectEvent.waitUntil}; the queue waits for it.
 *
 * @example
 * ```ts
 * import { ReconnectEvent } from "@anyws/anyws/reconnect";
 *
 * const event = new ReconnectEvent({ attempt: 1, queuedMessages: 0, droppedMessages: 0 });
 * event.waitUntil(Promise.resolve());
 * console.log(event.type, event.attempt);
 * ```
 */
export class ReconnectEvent extends Event implements ReconnectInfo {
  /** As in {@linkcode ReconnectInfo.attempt}. */
  readonly attempt: number;
  /** As in {@linkcode ReconnectInfo.queuedMessages}. */
  readonly queuedMessages: number;
  /** As in {@linkcode ReconnectInfo.droppedMessages}. */
  readonly droppedMessages: number;
  readonly #waits: Promise<unknown>[] = [];

  /**
   * Creates the event.
   *
   * @param info The attempt and queue counters.
   *
   * @example
   * ```ts
   * import { ReconnectEvent } from "@anyws/anyws/reconnect";
   *
   * console.log(new ReconnectEvent({ attempt: 3, queuedMessages: 1, droppedMessages: 0 }).queuedMessages);
   * ```
   */
  constructor(info: ReconnectInfo) {
    super("reconnect");
    this.attempt = info.attempt;
    this.queuedMessages = info.queuedMessages;
    this.droppedMessages = info.droppedMessages;
  }

  /**
   * Makes the queue wait for `promise` before it is flushed. Sends made
   * meanwhile go out at once, ahead of the queue.
   *
   * @param promise Settles when the listener's work (e.g. authentication) is done.
   *
   * @example
   * ```ts
   * import { ReconnectEvent } from "@anyws/anyws/reconnect";
   *
   * const event = new ReconnectEvent({ attempt: 1, queuedMessages: 0, droppedMessages: 0 });
   * event.waitUntil(new Promise((resolve) => setTimeout(resolve, 1)));
   * ```
   */
  waitUntil(promise: Promise<unknown>): void {
    this.#waits.push(promise);
  }

  /**
   * The promises given to {@linkcode ReconnectEvent.waitUntil} so far.
   *
   * @returns A copy of the list.
   *
   * @example
   * ```ts
   * import { ReconnectEvent } from "@anyws/anyws/reconnect";
   *
   * const event = new ReconnectEvent({ attempt: 1, queuedMessages: 0, droppedMessages: 0 });
   * console.log(event.pending().length); // 0
   * ```
   */
  pending(): Promise<unknown>[] {
    return [...this.#waits];
  }
}

const ALWAYS_STOP = new Set([1000, 1008]);
const RETRIED_BY_DEFAULT = new Set([1001, 1006, 1011, 1012, 1013, 1014]);

/**
 * The pure part of reconnecting: option checks, backoff delays and the
 * retry decisions. No timers, no sockets.
 *
 * @example Delays and decisions
 * ```ts
 * import { ReconnectPolicy } from "@anyws/anyws/reconnect";
 * import { assert, assertEquals } from "@std/assert";
 *
 * const policy = new ReconnectPolicy({ initialDelay: 100, maxDelay: 1000, random: () => 0.5 });
 * assertEquals(policy.delay(1), 50);
 * assertEquals(policy.delay(10), 500); // capped at 1000, then halved by the jitter
 * assert(policy.retriesClose(1006));
 * assert(!policy.retriesClose(1000));
 * ```
 */
export class ReconnectPolicy {
  /** See {@linkcode ReconnectOptions.initialDelay}. */
  readonly initialDelay: number;
  /** See {@linkcode ReconnectOptions.maxDelay}. */
  readonly maxDelay: number;
  /** See {@linkcode ReconnectOptions.multiplier}. */
  readonly multiplier: number;
  /** See {@linkcode ReconnectOptions.maxAttempts}. */
  readonly maxAttempts: number;
  /** See {@linkcode ReconnectOptions.minUptime}. */
  readonly minUptime: number;
  /** See {@linkcode ReconnectOptions.maxQueuedMessages}. */
  readonly maxQueuedMessages: number;
  /** See {@linkcode ReconnectOptions.maxQueuedBytes}. */
  readonly maxQueuedBytes: number;
  /** See {@linkcode ReconnectOptions.overflow}. */
  readonly overflow: OverflowPolicy;
  /** See {@linkcode ReconnectOptions.hookTimeout}. */
  readonly hookTimeout: number;
  readonly #random: () => number;
  readonly #stopCodes: ReadonlySet<number>;
  readonly #retryCodes: ReadonlySet<number>;

  /**
   * Checks and completes the options.
   *
   * @param options As for `connect(url, { reconnect })`.
   * @throws {RangeError} For an option out of range, a code in both
   * `stopCodes` and `retryCodes`, or 1000/1008 in `retryCodes`.
   * @throws {TypeError} For an `overflow` other than "reject" or
   * "drop-oldest", or a `random` that is not a function.
   *
   * @example
   * ```ts
   * import { ReconnectPolicy } from "@anyws/anyws/reconnect";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(() => new ReconnectPolicy({ retryCodes: [1000] }), RangeError);
   * ```
   */
  constructor(options: ReconnectOptions = {}) {
    this.initialDelay = check("initialDelay", options.initialDelay ?? 1000, 0);
    this.maxDelay = check("maxDelay", options.maxDelay ?? 30_000, 0);
    this.multiplier = check("multiplier", options.multiplier ?? 2, 1);
    const maxAttempts = options.maxAttempts ?? Infinity;
    if (
      maxAttempts !== Infinity &&
      (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    ) {
      throw new RangeError(
        `Cannot reconnect: maxAttempts must be an integer >= 1 or Infinity, got ${maxAttempts}`,
      );
    }
    this.maxAttempts = maxAttempts;
    this.minUptime = check("minUptime", options.minUptime ?? 5000, 0);
    this.maxQueuedMessages = check(
      "maxQueuedMessages",
      options.maxQueuedMessages ?? 1024,
      0,
    );
    this.maxQueuedBytes = check(
      "maxQueuedBytes",
      options.maxQueuedBytes ?? 1024 * 1024,
      0,
    );
    this.hookTimeout = check("hookTimeout", options.hookTimeout ?? 30_000, 0);
    const overflow = options.overflow ?? "reject";
    if (overflow !== "reject" && overflow !== "drop-oldest") {
      throw new TypeError(
        `Cannot reconnect: overflow must be "reject" or "drop-oldest", got ${
          JSON.stringify(overflow)
        }`,
      );
    }
    this.overflow = overflow;
    const random = options.random ?? Math.random;
    if (typeof random !== "function") {
      throw new TypeError(
        `Cannot reconnect: random must be a function, got ${typeof random}`,
      );
    }
    this.#random = random;
    this.#stopCodes = new Set(options.stopCodes ?? []);
    this.#retryCodes = new Set(options.retryCodes ?? []);
    for (const code of this.#retryCodes) {
      if (ALWAYS_STOP.has(code) || this.#stopCodes.has(code)) {
        throw new RangeError(
          `Cannot reconnect: retryCodes contains ${code}, which ${
            ALWAYS_STOP.has(code) ? "is never retried" : "is also in stopCodes"
          }`,
        );
      }
    }
  }

  /**
   * The wait before attempt `attempt`: full jitter over an exponential,
   * capped backoff, `random() * min(maxDelay, initialDelay * multiplier **
   * (attempt - 1))`, in whole milliseconds. (`@std/async`'s `retry()` uses
   * the same formula, but keeps it private, with `Math.random`, around a
   * single function call: a connection needs the attempt count to start over
   * after each reconnection and the decision to depend on the close code.)
   *
   * @param attempt 1 for the first attempt after a loss.
   * @param floor The lowest fraction of the ceiling to wait, from 0 (full
   * jitter, the default) to 1.
   * @returns The delay in milliseconds, in `[0, maxDelay]`.
   * @throws {RangeError} If `attempt` is not an integer >= 1.
   *
   * @example
   * ```ts
   * import { ReconnectPolicy } from "@anyws/anyws/reconnect";
   * import { assertEquals } from "@std/assert";
   *
   * const policy = new ReconnectPolicy({ initialDelay: 100, random: () => 0.999 });
   * assertEquals(policy.delay(3), 399); // just under 100 * 2 ** 2
   * ```
   */
  delay(attempt: number, floor = 0): number {
    if (!Number.isInteger(attempt) || attempt < 1) {
      throw new RangeError(
        `Cannot compute a backoff delay: attempt must be an integer >= 1, got ${attempt}`,
      );
    }
    // The power overflows to Infinity for large attempts; min() caps it.
    const ceiling = Math.min(
      this.maxDelay,
      this.initialDelay * this.multiplier ** (attempt - 1),
    );
    const r = this.#random();
    // A random source outside [0, 1) must not break the cap.
    const jitter = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
    const low = Math.min(Math.max(floor, 0), 1);
    return Math.floor((low + (1 - low) * jitter) * ceiling);
  }

  /**
   * Whether a connection that ended with `code` should reconnect (see
   * {@linkcode ReconnectOptions} for the table).
   *
   * @param code The close code as anyws reports it (1006 for a drop).
   * @returns `true` to reconnect.
   *
   * @example
   * ```ts
   * import { ReconnectPolicy } from "@anyws/anyws/reconnect";
   * import { assertEquals } from "@std/assert";
   *
   * const policy = new ReconnectPolicy({ stopCodes: [4001] });
   * assertEquals([1001, 1008, 4000, 4001].map((code) => policy.retriesClose(code)), [true, false, true, false]);
   * ```
   */
  retriesClose(code: number): boolean {
    if (ALWAYS_STOP.has(code) || this.#stopCodes.has(code)) return false;
    if (this.#retryCodes.has(code) || RETRIED_BY_DEFAULT.has(code)) return true;
    return code >= 3000 && code <= 4999;
  }

  /**
   * Whether a failed handshake should be retried: not for HTTP 4xx other
   * than 408 and 429; yes for 5xx and for failures without a status
   * (refused or dropped TCP, timeouts, subprotocol mismatches).
   *
   * @param error The failure, usually a `ConnectError`.
   * @returns `true` to try again.
   *
   * @example
   * ```ts
   * import { ConnectError } from "@anyws/anyws/client";
   * import { ReconnectPolicy } from "@anyws/anyws/reconnect";
   * import { assertEquals } from "@std/assert";
   *
   * const policy = new ReconnectPolicy();
   * assertEquals(policy.retriesError(new ConnectError("refused", "ws://x/", 401)), false);
   * assertEquals(policy.retriesError(new ConnectError("refused", "ws://x/", 503)), true);
   * ```
   */
  retriesError(error: unknown): boolean {
    const status = (error as { status?: unknown } | null)?.status;
    if (typeof status !== "number") return true;
    if (status === 408 || status === 429) return true;
    return status < 400 || status >= 500;
  }
}

/**
 * Opens one socket for {@linkcode Reconnector}: resolves once the socket is
 * open and `adopt` has been called with it (inside its `open` event, so no
 * frame is missed); rejects (usually with a `ConnectError`) when the attempt
 * fails; gives up when `signal` aborts.
 */
export type OpenSocket = (
  adopt: (socket: WebSocket) => void,
  signal: AbortSignal,
) => Promise<unknown>;

/** The callbacks a `Connection` gives {@linkcode Reconnector.reopen}. */
export interface ReopenHooks {
  /** Called before each wait. */
  reconnecting(info: ReconnectingInfo): void;
  /** Called with the new socket inside its `open` event. */
  adopt(socket: WebSocket, attempt: number): void;
}

/**
 * The reconnect loop and the queue of one client connection. `connect(url,
 * { reconnect })` creates it; a `Connection` given one in
 * `ConnectionOptions.reconnect` calls {@linkcode Reconnector.reopen} instead
 * of finishing when its socket is lost, and queues sends meanwhile. It holds
 * that connection's queue and counters: give each connection its own.
 *
 * @example Reconnect around your own socket factory
 * ```ts
 * import { Connection, Reconnector, serve } from "@anyws/anyws";
 *
 * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi"); } });
 * const url = `ws://127.0.0.1:${server.addr.port}`;
 * const reconnector = new Reconnector((adopt, signal) =>
 *   new Promise((resolve, reject) => {
 *     const socket = new WebSocket(url);
 *     signal.addEventListener("abort", () => socket.close(), { once: true });
 *     socket.onopen = () => resolve(adopt(socket));
 *     socket.onclose = () => reject(new Error("unable to connect"));
 *   }), { initialDelay: 100 });
 * await using conn = new Connection(new WebSocket(url), { reconnect: reconnector });
 * console.log(`${await conn.nextMessage()}`);
 * ```
 */
export class Reconnector {
  /** The checked options. */
  readonly policy: ReconnectPolicy;
  readonly #open: OpenSocket;
  #queue: QueuedData[] = [];
  #head = 0;
  #queuedBytes = 0;
  #dropped = 0;
  #reconnects = 0;
  // The backoff carried over from earlier outages (see minUptime), and
  // when the current socket opened.
  #escalation = 0;
  #openedAt: number | undefined;

  /**
   * Creates the loop.
   *
   * @param open Opens one socket per attempt (see {@linkcode OpenSocket}).
   * @param options The policy.
   * @throws {RangeError} As {@linkcode ReconnectPolicy}'s constructor does.
   * @throws {TypeError} As {@linkcode ReconnectPolicy}'s constructor does.
   *
   * @example
   * ```ts
   * import { Reconnector } from "@anyws/anyws/reconnect";
   *
   * const reconnector = new Reconnector(() => Promise.reject(new Error("offline")), { maxAttempts: 3 });
   * console.log(reconnector.policy.maxAttempts);
   * ```
   */
  constructor(open: OpenSocket, options: ReconnectOptions = {}) {
    this.policy = new ReconnectPolicy(options);
    this.#open = open;
  }

  /**
   * The counters.
   *
   * @example
   * ```ts
   * import { Reconnector } from "@anyws/anyws/reconnect";
   *
   * const reconnector = new Reconnector(() => Promise.reject(new Error("offline")));
   * reconnector.enqueue("hello");
   * console.log(reconnector.stats.queuedBytes); // 5
   * ```
   */
  get stats(): ReconnectStats {
    return {
      reconnects: this.#reconnects,
      queuedMessages: this.#queue.length - this.#head,
      queuedBytes: this.#queuedBytes,
      droppedMessages: this.#dropped,
    };
  }

  /**
   * Queues a message sent while disconnected. Bytes are copied, so the
   * caller may reuse its buffer.
   *
   * @param data A value returned by `toSendable()`.
   * @throws {QueueOverflowError} When it does not fit and the policy is
   * "reject", or when it is bigger than `maxQueuedBytes`.
   *
   * @example
   * ```ts
   * import { QueueOverflowError, Reconnector } from "@anyws/anyws/reconnect";
   * import { assertThrows } from "@std/assert";
   *
   * const reconnector = new Reconnector(() => Promise.reject(new Error("offline")), { maxQueuedMessages: 1 });
   * reconnector.enqueue("one");
   * assertThrows(() => reconnector.enqueue("two"), QueueOverflowError);
   * ```
   */
  enqueue(data: QueuedData): void {
    const bytes = sendableLength(data);
    const { maxQueuedMessages, maxQueuedBytes, overflow } = this.policy;
    const fits = () =>
      this.#queue.length - this.#head < maxQueuedMessages &&
      this.#queuedBytes + bytes <= maxQueuedBytes;
    if (!fits()) {
      if (overflow === "reject" || bytes > maxQueuedBytes) {
        const stats = this.stats;
        throw new QueueOverflowError(
          `Cannot queue a message of ${bytes} bytes while reconnecting: the queue holds ${stats.queuedMessages} messages and ${stats.queuedBytes} bytes (maxQueuedMessages ${maxQueuedMessages}, maxQueuedBytes ${maxQueuedBytes})`,
          bytes,
        );
      }
      while (!fits() && this.#head < this.#queue.length) {
        this.#queuedBytes -= sendableLength(this.#queue[this.#head]!);
        this.#head++;
        this.#dropped++;
      }
      // Dropped entries stay in the array until it is compacted: do so once
      // they are half of it, so a long outage cannot grow it (amortised O(1)).
      if (this.#head * 2 >= this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (!fits()) {
        // maxQueuedMessages is 0: nothing can ever be queued.
        throw new QueueOverflowError(
          `Cannot queue a message while reconnecting: maxQueuedMessages is ${maxQueuedMessages}`,
          bytes,
        );
      }
    }
    this.#queue.push(
      data instanceof Uint8Array || data instanceof ArrayBuffer
        ? data.slice(0)
        : data,
    );
    this.#queuedBytes += bytes;
  }

  /**
   * Takes every queued message, oldest first, and empties the queue.
   *
   * @returns The messages to send.
   *
   * @example
   * ```ts
   * import { Reconnector } from "@anyws/anyws/reconnect";
   * import { assertEquals } from "@std/assert";
   *
   * const reconnector = new Reconnector(() => Promise.reject(new Error("offline")));
   * reconnector.enqueue("a");
   * reconnector.enqueue("b");
   * assertEquals(reconnector.drain(), ["a", "b"]);
   * ```
   */
  drain(): QueuedData[] {
    const taken = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    return taken;
  }

  /**
   * Reconnects after a loss: decides from the close code, then waits and
   * opens sockets until one is adopted, the policy gives up, or `signal`
   * aborts.
   *
   * @param lost How the last socket ended.
   * @param cause The same, as an error (for `reconnecting`).
   * @param hooks Called before each wait and with the new socket.
   * @param signal Aborted by `close()`.
   * @returns `undefined` once a socket was adopted or `signal` aborted; else
   * the {@linkcode CloseInfo} to finish with (`lost` itself when the close
   * code is not retried; with an `error` when the policy gave up).
   *
   * @example
   * ```ts
   * import { Reconnector } from "@anyws/anyws/reconnect";
   * import { assertEquals } from "@std/assert";
   *
   * const reconnector = new Reconnector(() => Promise.reject(new Error("offline")), { maxAttempts: 2, initialDelay: 1 });
   * const lost = { code: 1006, reason: "", wasClean: false };
   * const hooks = { reconnecting() {}, adopt() {} };
   * const info = await reconnector.reopen(lost, new Error("lost"), hooks, new AbortController().signal);
   * assertEquals(info?.error?.message, "Gave up reconnecting after 2 attempts: offline");
   * ```
   */
  async reopen(
    lost: CloseInfo,
    cause: Error,
    hooks: ReopenHooks,
    signal: AbortSignal,
  ): Promise<CloseInfo | undefined> {
    if (!this.policy.retriesClose(lost.code)) return lost;
    const later = lost.code === TRY_AGAIN_LATER;
    const uptime = this.#openedAt === undefined
      ? 0
      : performance.now() - this.#openedAt;
    this.#openedAt = undefined;
    if (!later && uptime >= this.policy.minUptime) this.#escalation = 0;
    const outcome = await this.#attempts(
      (attempt) =>
        this.#open((socket) => {
          if (signal.aborted) {
            socket.close();
            return;
          }
          this.#reconnects++;
          hooks.adopt(socket, attempt);
        }, signal),
      { signal, cause, later, reconnecting: hooks.reconnecting },
    );
    switch (outcome.kind) {
      case "done":
      case "aborted":
        return undefined;
      case "refused":
        return { ...lost, error: outcome.error };
      case "exhausted":
        return {
          ...lost,
          error: new Error(
            `Gave up reconnecting after ${this.policy.maxAttempts} attempts: ${outcome.error.message}`,
            { cause: outcome.error },
          ),
        };
    }
  }

  /**
   * The first connection under the same policy as the reconnections:
   * `open` at once, then, while it fails for a reason the policy retries
   * (5xx, refused TCP, timeouts), again after a backoff, up to
   * `maxAttempts` attempts in all. No `reconnecting` event fires: no
   * connection exists yet.
   *
   * @param open Makes one attempt.
   * @param signal Stops the waits.
   * @returns What the successful attempt returned.
   * @throws {unknown} The last attempt's error, or the signal's reason when
   * it aborts a wait.
   *
   * @example
   * ```ts
   * import { Reconnector } from "@anyws/anyws/reconnect";
   * import { assertEquals } from "@std/assert";
   *
   * let tries = 0;
   * const reconnector = new Reconnector(() => Promise.reject(new Error("unused")), { initialDelay: 1 });
   * const value = await reconnector.first(() => ++tries < 3 ? Promise.reject(new Error("offline")) : Promise.resolve("open"));
   * assertEquals([value, tries], ["open", 3]);
   * ```
   */
  async first<T>(open: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const outcome = await this.#attempts(open, {
      first: true,
      ...(signal ? { signal } : {}),
    });
    if (outcome.kind === "done") return outcome.value;
    throw outcome.error;
  }

  /**
   * Records that a socket is open (its uptime decides whether its loss
   * starts the backoff over; see {@linkcode ReconnectOptions.minUptime}).
   *
   * @example
   * ```ts
   * import { Reconnector } from "@anyws/anyws/reconnect";
   *
   * const reconnector = new Reconnector(() => Promise.reject(new Error("offline")));
   * reconnector.opened();
   * ```
   */
  opened(): void {
    this.#openedAt = performance.now();
  }

  /**
   * The one retry loop: waits (full jitter, escalating across short-lived
   * sockets) and attempts until one attempt succeeds, the policy refuses
   * the error, the attempts run out, or the signal aborts.
   */
  async #attempts<T>(
    attempt: (n: number) => Promise<T>,
    options: {
      first?: boolean;
      signal?: AbortSignal;
      cause?: Error;
      later?: boolean;
      reconnecting?: (info: ReconnectingInfo) => void;
    },
  ): Promise<Outcome<T>> {
    const { policy } = this;
    const { signal } = options;
    let last = options.cause ?? new Error("not connected");
    for (let n = 1; n <= policy.maxAttempts; n++) {
      if (n > 1 || !options.first) {
        // A first connection waits after its first failure as a
        // reconnection does before its first attempt.
        const step = this.#escalation + (options.first ? n - 1 : n);
        const wait = policy.delay(step, options.later && n === 1 ? 0.5 : 0);
        options.reconnecting?.({ attempt: n, delay: wait, cause: last });
        try {
          await sleep(wait, signal ? { signal } : {});
        } catch (aborted) {
          return { kind: "aborted", error: asError(aborted) };
        }
      }
      try {
        const value = await attempt(n);
        // Carried into the next outage if this socket dies young.
        this.#escalation += options.first ? n - 1 : n;
        return { kind: "done", value };
      } catch (error) {
        if (signal?.aborted) return { kind: "aborted", error: asError(error) };
        last = asError(error);
        if (!policy.retriesError(error)) {
          return { kind: "refused", error: last };
        }
      }
    }
    return { kind: "exhausted", error: last };
  }
}

/** How {@linkcode Reconnector}'s retry loop ended. */
type Outcome<T> =
  | { kind: "done"; value: T }
  | { kind: "aborted" | "refused" | "exhausted"; error: Error };

/** The close code of "Try Again Later" (RFC 6455 registry). */
const TRY_AGAIN_LATER = 1013;

function check(name: string, value: number, min: number): number {
  if (typeof value !== "number" || !(value >= min) || value === Infinity) {
    throw new RangeError(
      `Cannot reconnect: ${name} must be a finite number >= ${min}, got ${value}`,
    );
  }
  return value;
}
