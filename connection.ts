/**
 * {@linkcode Connection}: one WebSocket connection class for both the server
 * side ({@linkcode serve}) and the client side ({@linkcode connect}), with the
 * Perl `on()` API, DOM events, and pull-style reading.
 *
 * @example Wrap a standard WebSocket
 * ```ts
 * import { Connection } from "@anyws/anyws/connection";
 * import { serve } from "@anyws/anyws/server";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   onEstablish(conn) {
 *     conn.on("message", (conn, data) => conn.send(data));
 *   },
 * });
 * const conn = new Connection(new WebSocket(`ws://127.0.0.1:${server.addr.port}`));
 * conn.send("queued until open");
 * console.log(`${await conn.nextMessage()}`);
 * await conn.close().closed;
 * ```
 *
 * @module
 */

import {
  CLOSE_CODE,
  Message,
  sendableLength,
  type SendData,
  toSendable,
  utf8Length,
} from "./message.ts";
import {
  ReconnectEvent,
  ReconnectingEvent,
  type ReconnectingInfo,
  type Reconnector,
  type ReconnectStats,
} from "./reconnect.ts";
import { deadline } from "@std/async/deadline";
import type { PublishData, Topics } from "./topics.ts";
import { DrainWaiters } from "./backpressure.ts";
import { MessageIterator } from "./_message_iterator.ts";
import {
  checkCloseCode,
  type CloseInfo,
  ConnectionClosedError,
  MAX_REASON_BYTES,
} from "./close.ts";
import {
  checkConnectionOptions,
  type ConnectionLimits,
  type ConnectionOptions,
  type DrainOptions,
  type NextMessageOptions,
  RESOLVED_LIMITS,
  type ResolvedOptions,
  resolveLimits,
  type Role,
  type WriteOptions,
} from "./connection_options.ts";
import {
  type ConnectionEventMap,
  type ConnectionHandlerName,
  type ConnectionHandlers,
  type EachMessageHandler,
  type FinishHandler,
  HANDLER_EVENTS,
  type MessageHandler,
  type NextMessageHandler,
  type ParseErrorHandler,
  type ReconnectHandler,
  type ReconnectingHandler,
  type Unregister,
} from "./connection_events.ts";

// The public names of the files split off this one, so that
// "@anyws/anyws/connection" keeps offering everything about connections.
export { checkCloseCode, type CloseInfo, ConnectionClosedError };
export {
  checkConnectionOptions,
  type ConnectionLimits,
  type ConnectionOptions,
  type DrainOptions,
  type NextMessageOptions,
  type Role,
  type WriteOptions,
};
export type {
  ConnectionEventMap,
  ConnectionHandlerName,
  ConnectionHandlers,
  EachMessageHandler,
  FinishHandler,
  MessageHandler,
  NextMessageHandler,
  ParseErrorHandler,
  ReconnectHandler,
  ReconnectingHandler,
  Unregister,
} from "./connection_events.ts";

const SOCKET_EVENTS = ["message", "open", "error", "close"] as const;

/** A Set that stays empty: connections share it until they add (own()). */
class EmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error("anyws: internal error: adding to the shared empty Set");
  }
}
/** A Map that stays empty, shared as EmptySet is. */
class EmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error("anyws: internal error: setting in the shared empty Map");
  }
}
// deno-lint-ignore no-explicit-any
const EMPTY_SET: Set<any> = new EmptySet();
// deno-lint-ignore no-explicit-any
const EMPTY_MAP: Map<any, any> = new EmptyMap();

/** The set itself, or a new one in place of the shared empty one. */
function own<T>(set: Set<T>): Set<T> {
  return set === EMPTY_SET ? new Set<T>() : set;
}

interface MessageEntry {
  plack: boolean;
  fn: MessageHandler | EachMessageHandler;
  unregister: Unregister;
}
interface Waiter {
  resolve(message: Message): void;
  reject(error: unknown): void;
}

/**
 * A WebSocket connection, the same class on the server side and the client
 * side. It extends `EventTarget`, so DOM-style listeners work beside the Perl
 * style {@linkcode Connection.on} API and pull-style reading.
 *
 * Delivery rules:
 * - A connection handed to the application (resolved by `connect()`, passed
 *   to `onEstablish`, or just constructed) dispatches nothing, not even
 *   `finish`, before the current task ends: register handlers right after
 *   receiving it.
 * - Messages that arrive while nothing reads them are held (up to
 *   {@linkcode ConnectionOptions.maxPendingMessages}) and delivered, in
 *   order, to every consumer registered in the task that registers the first.
 * - Every consumer sees every message that arrives while it is registered;
 *   `next_message` handlers and `nextMessage()` see only one. Order per
 *   message: `next_message` handlers, then `each_message` and `message`
 *   handlers in registration order, then DOM `message` listeners; pending
 *   `nextMessage()` calls and iterators are resolved alongside.
 * - A handler or listener that throws skips the rest of that message's
 *   handlers, fires `parse_error`, and closes the connection with 1011
 *   (server side) or 4011 (client side). The exception goes no further.
 *
 * @example Perl style
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   onEstablish(conn) {
 *     conn.on("message", (conn, message) => {
 *       if (message === "quit") conn.close();
 *       else conn.send(`echo: ${message}`);
 *     });
 *   },
 * });
 * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * conn.on("each_message", (_conn, message) => console.log(message.decodedBody()));
 * conn.on("finish", () => console.log("closed"));
 * conn.send("hello").send("quit");
 * await conn.closed;
 * ```
 *
 * @example Pull style
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   onEstablish(conn) {
 *     conn.send("one").send("two").close(1000);
 *   },
 * });
 * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * for await (const message of conn) console.log(`${message}`);
 * ```
 */
export class Connection<Data = unknown> extends EventTarget {
  #socket: WebSocket;
  readonly #role: Role;
  readonly #request: Request | (() => Request) | undefined;
  readonly #remoteAddr: Deno.NetAddr | undefined;
  readonly #url: string;
  #subprotocol: string | undefined;
  readonly #maxMessageSize: number;
  readonly #maxPendingMessages: number;
  readonly #closeTimeout: number;
  readonly #topics: Topics | undefined;
  // Backpressure and liveness (backpressure.ts): sends subtract their
  // (upper-bound) size from #sendBudget, and bufferedAmount is read only when
  // it goes negative, so a send costs one subtraction and one branch.
  readonly #maxBufferedAmount: number;
  readonly #highWaterMark: number;
  #sendBudget: number;
  #drain: DrainWaiters | undefined;
  readonly #inactivityTimeout: number;
  #inactivityTimer: ReturnType<typeof setInterval> | undefined;
  #heard = true;
  #silentTicks = 0;

  /**
   * Application data: what a server's `authorize` hook attached, or anything
   * the application stores here.
   */
  data: Data;

  // Registrations made through on().
  #nextHandlers: NextMessageHandler[] = [];
  #messageHandlers: MessageEntry[] = [];
  #finishHandlers: FinishHandler[] = [];
  #errorHandlers: ParseErrorHandler[] = [];
  #reconnectingHandlers: ReconnectingHandler[] = [];
  #reconnectHandlers: ReconnectHandler[] = [];
  // Pull-style consumers.
  // The Sets and the Map start as shared empty ones and are made on first add
  // (see own()): most connections never use them, and each costs ~120 bytes.
  #waiters: Set<Waiter> = EMPTY_SET;
  #iterators: Set<MessageIterator> = EMPTY_SET;
  // DOM listeners, wrapped so that a throwing listener cannot crash Deno.
  #wrappers: Map<string, WeakMap<object, EventListener>> = EMPTY_MAP;
  #domMessageListeners: Set<EventListener> = EMPTY_SET;

  // Delivery state: see the class documentation.
  #held = true;
  #holdToken = 0;
  #releaseScheduled = false;
  #pumpScheduled = false;
  // Set while nextMessage() is the only way this connection is read: then a
  // call finds held messages its own (see nextMessage()).
  #pullOnly = false;
  #inbox: Message[] = [];
  #pendingErrors: Error[] = [];
  #pendingFinish: CloseInfo | undefined;
  #closeInfo: CloseInfo | undefined;
  #closedResolve!: (info: CloseInfo) => void;
  readonly #closed: Promise<CloseInfo>;

  // Sending and closing.
  #outbox: (string | Uint8Array | ArrayBuffer | Blob)[] | undefined;
  #closeRequested = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #failure: Error | undefined;
  #socketError: string | undefined;
  /** Stops listening to the current socket (set by #attach). */
  #detach: () => void = () => {};

  // Reconnection (see reconnect.ts): set while waiting for a new socket.
  readonly #reconnector: Reconnector | undefined;
  #reconnecting: AbortController | undefined;
  #socketGeneration = 0;

  /**
   * Wraps a standard `WebSocket` in the CONNECTING or OPEN state. Client
   * sockets are switched to `binaryType = "arraybuffer"`. Sends made while
   * CONNECTING are queued and flushed on open.
   *
   * @param socket The socket: from `Deno.upgradeWebSocket` or `new WebSocket`.
   * @param options Role, limits and server-side details.
   * @throws {TypeError} If the socket is already closing or closed.
   * @throws {RangeError} If an option is out of range.
   *
   * @example
   * ```ts
   * import { Connection } from "@anyws/anyws/connection";
   * import { assertEquals } from "@std/assert";
   *
   * const socket = new WebSocket("ws://127.0.0.1:9"); // nothing listens there
   * const conn = new Connection(socket, { closeTimeout: 1000 });
   * assertEquals(conn.masked, true);
   * assertEquals((await conn.closed).code, 1006);
   * ```
   */
  constructor(socket: WebSocket, options: ConnectionOptions<Data> = {}) {
    super();
    if (!(socket instanceof WebSocket)) {
      throw new TypeError(
        "Cannot create a Connection: expected a WebSocket",
      );
    }
    if (socket.readyState >= WebSocket.CLOSING) {
      throw new TypeError(
        `Cannot create a Connection: the WebSocket is already ${
          socket.readyState === WebSocket.CLOSING ? "closing" : "closed"
        }`,
      );
    }
    this.#socket = socket;
    this.#role = options.role ?? (options.request ? "server" : "client");
    this.#request = options.request;
    this.#remoteAddr = options.remoteAddr;
    this.#url = options.url ??
      (typeof options.request === "function"
        ? undefined
        : options.request?.url) ??
      socket.url;
    this.#subprotocol = options.subprotocol;
    const limits = (options as ResolvedOptions<Data>)[RESOLVED_LIMITS] ??
      resolveLimits(options);
    this.#maxMessageSize = limits.maxMessageSize;
    this.#maxPendingMessages = limits.maxPendingMessages;
    this.#closeTimeout = limits.closeTimeout;
    this.#topics = options.topics;
    this.#reconnector = options.reconnect;
    this.#maxBufferedAmount = limits.maxBufferedAmount;
    this.#sendBudget = this.#maxBufferedAmount;
    this.#highWaterMark = limits.highWaterMark;
    this.#inactivityTimeout = limits.inactivityTimeout;
    this.data = options.data as Data;
    this.#closed = new Promise((resolve) => this.#closedResolve = resolve);
    this.#attach(socket);
    if (socket.readyState === WebSocket.OPEN) {
      this.#holdForThisTask();
      this.#watchInactivity();
    }
  }

  /** The underlying standard `WebSocket` (Perl: `handle`). */
  get socket(): WebSocket {
    return this.#socket;
  }

  /** `true` on the client side, whose frames are masked; `false` on the server side. */
  get masked(): boolean {
    return this.#role === "client";
  }

  /** Which side of the socket this connection is. */
  get role(): Role {
    return this.#role;
  }

  /** The negotiated subprotocol, or `undefined` when none was. */
  get subprotocol(): string | undefined {
    return this.#subprotocol ?? (this.#socket.protocol || undefined);
  }

  /** The close code once finished (see {@linkcode CloseInfo.code}). */
  get closeCode(): number | undefined {
    return this.#closeInfo?.code;
  }

  /** The close reason once finished. */
  get closeReason(): string | undefined {
    return this.#closeInfo?.reason;
  }

  /** Why the connection ended badly, once finished (see {@linkcode CloseInfo.error}). */
  get closeError(): Error | undefined {
    return this.#closeInfo?.error;
  }

  /**
   * `WebSocket.CONNECTING` (0), `OPEN` (1), `CLOSING` (2) or `CLOSED` (3).
   * Reads CLOSED once the connection has finished, even when Deno's socket is
   * still waiting for a peer that never answered the close, and CONNECTING
   * while a reconnecting connection waits for a new socket.
   */
  get readyState(): number {
    if (this.#closeInfo) return WebSocket.CLOSED;
    return this.#reconnecting ? WebSocket.CONNECTING : this.#socket.readyState;
  }

  /**
   * Bytes accepted by {@linkcode Connection.send} but not yet handed to the
   * kernel, including sends queued while connecting or reconnecting. Deno's own counter is
   * an i32 that wraps past 2 GiB; this one is read unsigned.
   */
  get bufferedAmount(): number {
    let queued = 0;
    for (const data of this.#outbox ?? []) queued += sendableLength(data);
    queued += this.#reconnector?.stats.queuedBytes ?? 0;
    return (this.#socket.bufferedAmount >>> 0) + queued;
  }

  /**
   * The reconnection counters (queue, drops, reconnections), or `undefined`
   * for a connection that does not reconnect.
   */
  get reconnectStats(): ReconnectStats | undefined {
    return this.#reconnector?.stats;
  }

  /** The URL: the upgrade request's on the server side, the socket's on the client side. */
  get url(): string {
    return this.#url;
  }

  /** The upgrade `Request` (server side only). */
  get request(): Request | undefined {
    const request = this.#request;
    return typeof request === "function" ? request() : request;
  }

  /** The peer's address (server side only). */
  get remoteAddr(): Deno.NetAddr | undefined {
    return this.#remoteAddr;
  }

  /**
   * Settles once, when the connection finishes, with how it ended. Never
   * rejects.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.close(4000, "done"); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * const { code, reason } = await conn.closed;
   * console.log(code, reason); // 4000 done
   * ```
   */
  get closed(): Promise<CloseInfo> {
    return this.#closed;
  }

  /**
   * Registers one handler.
   *
   * @param event One of {@linkcode ConnectionHandlers}' names.
   * @param handler The handler.
   * @returns A function that unregisters the handler (safe to call twice).
   * @throws {TypeError} For an unknown event or a handler that is not a function.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   onEstablish(conn) {
   *     conn.on("message", (conn, _message, unregister) => {
   *       conn.send("This will only be sent once");
   *       unregister();
   *     });
   *   },
   * });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.send("a").send("b");
   * console.log(`${await conn.nextMessage()}`);
   * ```
   */
  on<K extends ConnectionHandlerName>(
    event: K,
    handler: ConnectionHandlers[K],
  ): Unregister;
  /**
   * Registers several handlers at once, given as an object.
   *
   * @param handlers Event names mapped to handlers.
   * @returns The unregister functions, in the object's key order.
   * @throws {TypeError} For an unknown event or a non-function handler; then
   * nothing is registered.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi").close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.on({
   *   message: (_conn, data) => console.log(data),
   *   finish: () => console.log("closed"),
   * });
   * await conn.closed;
   * ```
   */
  on(handlers: Partial<ConnectionHandlers>): Unregister[];
  /**
   * Registers several handlers as `event, handler` pairs (Plack's
   * `$conn->on(message => ..., finish => ...)`).
   *
   * @param pairs Alternating event names and handlers.
   * @returns The unregister functions, in order.
   * @throws {TypeError} For an unknown event, a non-function handler, or an
   * odd number of arguments; then nothing is registered.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi").close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * const [offMessage, offFinish] = conn.on(
   *   "message", (_conn: unknown, data: unknown) => console.log(data),
   *   "finish", () => console.log("closed"),
   * );
   * await conn.closed;
   * offMessage?.();
   * offFinish?.();
   * ```
   */
  on(
    ...pairs:
      (ConnectionHandlerName | ConnectionHandlers[ConnectionHandlerName])[]
  ): Unregister[];
  on(...args: unknown[]): Unregister | Unregister[] {
    const pairs: [string, unknown][] = [];
    if (args.length === 1 && typeof args[0] === "object" && args[0] !== null) {
      pairs.push(...Object.entries(args[0]));
    } else {
      if (args.length === 0 || args.length % 2 !== 0) {
        throw new TypeError(
          `Cannot register handlers: expected event/handler pairs, got ${args.length} argument(s)`,
        );
      }
      for (let i = 0; i < args.length; i += 2) {
        pairs.push([String(args[i]), args[i + 1]]);
      }
    }
    // Validate every pair before registering any, so a typo registers nothing.
    for (const [event, handler] of pairs) {
      if (!Object.hasOwn(HANDLER_EVENTS, event)) {
        throw new TypeError(
          `Cannot register a handler for "${event}": unknown event (expected one of ${
            Object.keys(HANDLER_EVENTS).join(", ")
          })`,
        );
      }
      if (typeof handler !== "function") {
        throw new TypeError(
          `Cannot register a handler for "${event}": the handler is ${typeof handler}, not a function`,
        );
      }
    }
    const unregisters = pairs.map(([event, handler]) =>
      this.#register(event as ConnectionHandlerName, handler as () => unknown)
    );
    return args.length === 2 && typeof args[0] === "string"
      ? unregisters[0]!
      : unregisters;
  }

  /**
   * Sends a message. A string goes as a text message; an `ArrayBuffer`, any
   * typed array or `DataView` (just the viewed bytes) or a `Blob` as a binary
   * message; a {@linkcode Message} by its opcode. Sends made while connecting
   * are queued and flushed on open. Once the connection is closing or closed,
   * nothing is sent and nothing is thrown (as in Perl): check
   * {@linkcode Connection.readyState} or await {@linkcode Connection.closed}
   * when that matters. A reconnecting connection (`connect(url, { reconnect
   * })`) instead queues what is sent while its socket is lost or being
   * replaced, in a bounded queue sent after the `reconnect` handlers.
   *
   * @param data What to send.
   * @returns This connection, for chaining.
   * @throws {TypeError} For a close/ping/pong {@linkcode Message} (the
   * standard WebSocket API cannot send those) or an unsupported value.
   * @throws {QueueOverflowError} On a reconnecting connection, when a send
   * made while disconnected does not fit in the queue (see
   * {@linkcode ReconnectOptions.overflow}).
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.on("message", (c, d) => c.send(d)); } });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.send("text").send(new Uint8Array([1, 2, 3]));
   * console.log((await conn.nextMessage()).isText(), (await conn.nextMessage()).isBinary());
   * ```
   */
  send(data: SendData): this {
    const payload = toSendable(data);
    if (this.#closeRequested || this.#closeInfo) return this;
    const state = this.#socket.readyState;
    if (state === WebSocket.OPEN) {
      this.#socket.send(payload);
      if ((this.#sendBudget -= upperSize(payload)) < 0) this.#checkBuffered();
    } else if (state === WebSocket.CONNECTING) {
      (this.#outbox ??= []).push(payload);
      if ((this.#sendBudget -= upperSize(payload)) < 0) this.#checkBuffered();
    } else if (this.#reconnector) {
      // The socket is lost or being replaced: queue (bounded; may throw).
      this.#reconnector.enqueue(payload);
    }
    return this;
  }

  /**
   * Sends a message and waits until the socket can take more: resolves once
   * the data is handed to the socket and the buffered amount is at most
   * {@linkcode ConnectionOptions.highWaterMark} (1 MiB by default). Awaiting
   * each `write()` keeps a slow peer from filling memory; a plain
   * {@linkcode Connection.send} to such a peer is closed by
   * {@linkcode ConnectionOptions.maxBufferedAmount} instead.
   *
   * Deno has no `drain` event, so a waiting write polls `bufferedAmount` on
   * a timer shared by every waiting connection, every few milliseconds.
   *
   * @param data What to send, as for {@linkcode Connection.send}.
   * @param options `signal` stops the wait (the data may already be sent).
   * @returns Resolves when the buffer is below the high-water mark.
   * @throws {ConnectionClosedError} If the connection is closing or closes
   * before the buffer drains (the error carries the close code).
   * @throws {TypeError} For data {@linkcode Connection.send} refuses.
   * @throws {unknown} The signal's reason when it aborts.
   *
   * @example Stream to a peer at the pace it reads
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   async onEstablish(conn) {
   *     for (let i = 0; i < 100; i++) await conn.write(new Uint8Array(64 * 1024));
   *     conn.close(1000);
   *   },
   * });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * let received = 0;
   * for await (const message of conn) received += message.byteLength;
   * console.log(received); // 6553600
   * ```
   */
  async write(data: SendData, options: WriteOptions = {}): Promise<void> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.#closeInfo) throw new ConnectionClosedError(this.#closeInfo);
    if (this.#closeRequested) {
      throw new ConnectionClosedError(await this.#closed);
    }
    this.send(data);
    await this.drained(signal ? { signal } : {});
  }

  /**
   * Waits until the outgoing buffer holds at most `highWaterMark` bytes.
   *
   * @param options The threshold (default
   * {@linkcode ConnectionOptions.highWaterMark}) and an abort signal.
   * @returns Resolves when drained; at once if it already is.
   * @throws {ConnectionClosedError} If the connection is closing or closes
   * first.
   * @throws {unknown} The signal's reason when it aborts.
   *
   * @example Wait until everything has reached the kernel
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.send(new Uint8Array(4 * 1024 * 1024));
   * await conn.drained({ highWaterMark: 0 });
   * console.log(conn.bufferedAmount); // 0
   * ```
   */
  async drained(options: DrainOptions = {}): Promise<void> {
    if (this.#closeInfo) throw new ConnectionClosedError(this.#closeInfo);
    this.#drain ??= new DrainWaiters(() =>
      this.#closeRequested || this.#closeInfo ||
        this.#socket.readyState !== WebSocket.OPEN
        ? undefined
        : this.#socket.bufferedAmount >>> 0
    );
    await this.#drain.wait(
      options.highWaterMark ?? this.#highWaterMark,
      options.signal,
    );
  }

  /**
   * Finishes the connection now, without waiting for the closing handshake:
   * sends a close frame if none was sent (1001 from a server, 4001 from a
   * client), then `finish` fires with code 1006 and `error`. For peers that
   * are gone or stuck; {@linkcode Server.shutdown} uses it after its timeout.
   * Deno offers no way to cut the TCP connection itself
   * (denoland/deno#27924): it ends when the peer or the kernel ends it.
   *
   * @param error Why, reported as {@linkcode CloseInfo.error}.
   * @returns This connection.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * const { code, error } = await conn.terminate(new Error("peer is gone")).closed;
   * console.log(code, error?.message); // 1006 peer is gone
   * ```
   */
  terminate(
    error: Error = new Error("Connection terminated without a close handshake"),
  ): this {
    if (this.#closeInfo) return this;
    this.#failure ??= error;
    this.#startClose(
      this.#sideCode(CLOSE_CODE.GOING_AWAY),
      "terminated",
    );
    if (this.#closeInfo) return this; // a reconnecting connection finished
    clearTimeout(this.#closeTimer);
    this.#finishWhenDelivered({
      code: CLOSE_CODE.ABNORMAL,
      reason: "",
      wasClean: false,
      error: this.#failure,
    });
    this.#held = false;
    this.#pump();
    return this;
  }

  /**
   * Starts the closing handshake. Without a code, the close frame carries no
   * status and the peer sees 1005 (as with Perl's default). With only a
   * reason, the code is 1000. Calling it again does nothing. If the peer does
   * not answer within {@linkcode ConnectionOptions.closeTimeout}, the
   * connection finishes with 1006 and an error.
   *
   * @param code The close code. The server side may send 1000-1003,
   * 1007-1014 and 3000-4999; the client side 1000 and 3000-4999.
   * @param reason At most 123 UTF-8 bytes.
   * @returns This connection (await {@linkcode Connection.closed} for the end).
   * @throws {RangeError} For a code the side may not send or a reason over
   * 123 bytes; nothing is sent then.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * const { code, reason } = await conn.close(4000, "bye").closed;
   * console.log(code, reason); // 4000 bye
   * ```
   */
  close(code?: number, reason?: string): this {
    if (code !== undefined) checkCloseCode(code, this.#role);
    if (reason !== undefined) {
      const bytes = utf8Length(reason);
      if (bytes > MAX_REASON_BYTES) {
        throw new RangeError(
          `Cannot close: the reason is ${bytes} UTF-8 bytes, the limit is ${MAX_REASON_BYTES}`,
        );
      }
      code ??= CLOSE_CODE.NORMAL;
    }
    this.#startClose(code, reason);
    return this;
  }

  /**
   * Waits for the next message.
   *
   * @param options A signal and/or a timeout in milliseconds.
   * While `nextMessage()` is the only reader, messages that arrive between
   * two calls wait for the next call, which gets the oldest at once.
   *
   * @returns The next message (or one held since before any consumer existed).
   * @throws {ConnectionClosedError} If the connection finishes first.
   * @throws {DOMException} `TimeoutError` after `timeout`; the signal's reason
   * on abort.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("welcome"); } });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * console.log(`${await conn.nextMessage({ timeout: 5000 })}`);
   * ```
   */
  nextMessage(options: NextMessageOptions = {}): Promise<Message> {
    const { signal, timeout } = options;
    if (this.#closeInfo) {
      const held = this.#inbox.shift();
      return held
        ? Promise.resolve(held)
        : Promise.reject(new ConnectionClosedError(this.#closeInfo));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    // A reader that only pulls owns what arrived since its last call: hand it
    // over now instead of a macrotask later (which costs ~2 ms per message
    // under the timer clamp). The same-task rule still applies to the first
    // consumer after a time with none, and whenever other consumers exist.
    if (
      this.#pullOnly && this.#inbox.length > 0 && !this.#held &&
      !this.#pumpScheduled && !this.#hasPushConsumers()
    ) {
      return Promise.resolve(this.#inbox.shift()!);
    }
    return new Promise<Message>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = () => {
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        resolve: (message) => (settle(), resolve(message)),
        reject: (error) => (settle(), reject(error)),
      };
      const onAbort = () => waiter.reject(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(
          () =>
            waiter.reject(
              new DOMException(
                `No message arrived within ${timeout} ms`,
                "TimeoutError",
              ),
            ),
          timeout,
        );
      }
      (this.#waiters = own(this.#waiters)).add(waiter);
      this.#consumerAdded();
    });
  }

  /**
   * Iterates over every message until the connection finishes: the loop ends
   * normally after a clean close and throws {@linkcode ConnectionClosedError}
   * after an abnormal one. Breaking out of the loop stops reading but leaves
   * the connection open; messages the loop had received but not yet yielded
   * go to the next reader (unless another consumer already saw them).
   *
   * @returns An async iterator of messages.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("a").send("b").close(1000); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * for await (const message of conn) console.log(message.decodedBody());
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    const iterator = new MessageIterator((unread) => {
      this.#iterators.delete(iterator);
      // Messages this iterator took but never yielded (the loop broke early)
      // are read by the next consumer, unless another one already saw them.
      if (unread.length > 0 && !this.#hasConsumers()) {
        this.#inbox.unshift(...unread);
        this.#consumerAdded();
      }
      this.#checkConsumers();
    });
    if (this.#closeInfo) {
      for (const message of this.#inbox.splice(0)) iterator.push(message);
      iterator.end(this.#closeInfo);
    } else {
      (this.#iterators = own(this.#iterators)).add(iterator);
      this.#consumerAdded();
    }
    return iterator;
  }

  // ---- topics (see topics.ts) ---------------------------------------------

  /**
   * Joins `topic`: every publish to it, from this process or (through the
   * server's broker) another, is sent to this connection. The connection
   * leaves all its topics when it finishes.
   *
   * @param topic A non-empty string.
   * @returns Settles once publishes from other processes reach this
   * connection; local ones do at once. Rejects if the broker failed to
   * subscribe (an unawaited rejection crashes nothing).
   * @throws {TypeError} If the connection has no topic registry (client side,
   * or `upgrade()` without `topics`), or `topic` is not a non-empty string.
   *
   * @example A room
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   async onEstablish(conn) {
   *     await conn.subscribe("room");
   *     conn.on("message", (conn, data) => conn.publish("room", data));
   *   },
   * });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * ```
   */
  subscribe(topic: string): Promise<void> {
    return this.#registry("subscribe to", topic).subscribe(this, topic);
  }

  /**
   * Leaves `topic`; does nothing if not subscribed.
   *
   * @param topic The topic.
   * @returns Settles once the broker has been told (when this was the last
   * local subscriber). Never rejects.
   * @throws {TypeError} If the connection has no topic registry, or `topic`
   * is not a non-empty string.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   async onEstablish(conn) {
   *     await conn.subscribe("room");
   *     await conn.unsubscribe("room");
   *   },
   * });
   * ```
   */
  unsubscribe(topic: string): Promise<void> {
    return this.#registry("unsubscribe from", topic).unsubscribe(this, topic);
  }

  /** The topics this connection subscribes to (a snapshot; empty without a registry). */
  get topics(): ReadonlySet<string> {
    return this.#topics?.topicsOf(this) ?? new Set();
  }

  /**
   * Sends `data` to every other subscriber of `topic` (not to this
   * connection), in this process and, through the broker, in others. This
   * connection need not be subscribed. Text stays text, binary stays binary.
   *
   * @param topic A non-empty string.
   * @param data A string, binary data (not a `Blob`) or a text/binary
   * {@linkcode Message}.
   * @returns Settles once the broker has the message; rejects if the broker
   * could not send it (local subscribers got it anyway; an unawaited
   * rejection crashes nothing).
   * @throws {TypeError} If the connection has no topic registry, for a bad
   * topic, or for data that cannot be published.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   onEstablish(conn) {
   *     conn.on("message", (conn, data) => conn.publish("room", data));
   *   },
   * });
   * ```
   */
  publish(topic: string, data: PublishData): Promise<void> {
    return this.#registry("publish to", topic).publish(topic, data, this);
  }

  #registry(what: string, topic: string): Topics {
    if (this.#topics) return this.#topics;
    throw new TypeError(
      `Cannot ${what} "${topic}": this ${this.#role}-side connection has no topic registry (connections from serve() and createHandler() have one; pass the topics option to upgrade() or new Connection())`,
    );
  }

  /**
   * Closes with 1000 (unless already closing) and waits for the connection to
   * finish, bounded by {@linkcode ConnectionOptions.closeTimeout}; for
   * `await using`.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * {
   *   await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   *   conn.send("bye");
   * } // closed with 1000 here
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#startClose(CLOSE_CODE.NORMAL, undefined);
    await this.#closed;
  }

  /**
   * Registers a callback for each message's decoded text.
   *
   * @deprecated Use `on("each_message", (conn, message) => ...)` instead
   * (AnyEvent::WebSocket::Connection 0.30 deprecated this method).
   * @param callback Receives the message's decoded text.
   * @returns This connection.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi").close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.onEachMessage((text) => console.log(text));
   * await conn.closed;
   * ```
   */
  onEachMessage(callback: (text: string) => unknown): this {
    this.on(
      "each_message",
      (_conn, message) => callback(message.decodedBody()),
    );
    return this;
  }

  /**
   * Registers a callback for the next message's decoded text.
   *
   * @deprecated Use `on("next_message", (conn, message) => ...)` instead.
   * @param callback Receives the message's decoded text.
   * @returns This connection.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi").close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.onNextMessage((text) => console.log(text));
   * await conn.closed;
   * ```
   */
  onNextMessage(callback: (text: string) => unknown): this {
    this.on(
      "next_message",
      (_conn, message) => callback(message.decodedBody()),
    );
    return this;
  }

  /**
   * Registers a callback for when the connection finishes.
   *
   * @deprecated Use `on("finish", (conn) => ...)` instead.
   * @param callback Called once, with no arguments.
   * @returns This connection.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.onFinish(() => console.log("closed"));
   * await conn.closed;
   * ```
   */
  onFinish(callback: () => unknown): this {
    this.on("finish", () => callback());
    return this;
  }

  /**
   * Adds a DOM listener. A throwing listener does not crash Deno: for
   * `message` it is treated like a throwing handler (see the class docs).
   *
   * @param type `open`, `message`, `error` or `close`.
   * @param listener The listener.
   * @param options Standard listener options.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.close(4000, "bye"); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.addEventListener("close", (event) => console.log(event.code, event.reason));
   * await conn.closed;
   * ```
   */
  override addEventListener<K extends keyof ConnectionEventMap>(
    type: K,
    listener: (this: Connection, event: ConnectionEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Adds a DOM listener for any event type.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options Standard listener options.
   *
   * @example
   * ```ts
   * import { Connection } from "@anyws/anyws/connection";
   *
   * const conn = new Connection(new WebSocket("ws://127.0.0.1:9"), { closeTimeout: 1000 });
   * conn.addEventListener("custom", () => {});
   * await conn.closed;
   * ```
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (listener === null) return;
    const wrapper = this.#wrapperFor(type, listener, options, true)!;
    if (type === "message") {
      (this.#domMessageListeners = own(this.#domMessageListeners)).add(wrapper);
      const forget = () => {
        this.#domMessageListeners.delete(wrapper);
        this.#checkConsumers();
      };
      if (typeof options === "object" && options.signal) {
        options.signal.addEventListener("abort", forget, { once: true });
      }
      this.#consumerAdded();
    }
    super.addEventListener(type, wrapper, options);
  }

  /**
   * Removes a DOM listener added with {@linkcode Connection.addEventListener}.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options Standard listener options (`capture` must match).
   *
   * @example
   * ```ts
   * import { Connection } from "@anyws/anyws/connection";
   *
   * const conn = new Connection(new WebSocket("ws://127.0.0.1:9"), { closeTimeout: 1000 });
   * const listener = () => {};
   * conn.addEventListener("close", listener);
   * conn.removeEventListener("close", listener);
   * await conn.closed;
   * ```
   */
  override removeEventListener<K extends keyof ConnectionEventMap>(
    type: K,
    listener: (this: Connection, event: ConnectionEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a DOM listener for any event type.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options Standard listener options.
   *
   * @example
   * ```ts
   * import { Connection } from "@anyws/anyws/connection";
   *
   * const conn = new Connection(new WebSocket("ws://127.0.0.1:9"), { closeTimeout: 1000 });
   * conn.removeEventListener("custom", () => {});
   * await conn.closed;
   * ```
   */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    if (listener === null) return;
    const wrapper = this.#wrapperFor(type, listener, options, false);
    if (!wrapper) return;
    super.removeEventListener(type, wrapper, options);
    if (type === "message" && this.#domMessageListeners.delete(wrapper)) {
      this.#checkConsumers();
    }
  }

  // ---- socket events -------------------------------------------------------

  #attach(socket: WebSocket): void {
    socket.binaryType = "arraybuffer";
    // One listener object for the four events, removed by #detach, rather
    // than four listeners with an AbortSignal: about 1 KiB less per idle
    // connection (bench/: memory per idle connection).
    const listener = {
      handleEvent: (event: Event) => {
        switch (event.type) {
          case "message":
            return this.#onMessage((event as MessageEvent).data);
          case "open":
            return this.#onOpen();
          case "error":
            this.#socketError ??= (event as ErrorEvent).message ||
              "WebSocket error";
            return;
          case "close":
            return this.#onClose(event as CloseEvent);
        }
      },
    };
    for (const type of SOCKET_EVENTS) socket.addEventListener(type, listener);
    this.#detach = () => {
      for (const type of SOCKET_EVENTS) {
        socket.removeEventListener(type, listener);
      }
    };
  }

  #onOpen(): void {
    this.#watchInactivity();
    if (this.#outbox) {
      const queued = this.#outbox;
      this.#outbox = undefined;
      for (const data of queued) this.#socket.send(data);
    }
    this.#holdForThisTask();
    this.#dispatchDom(new Event("open"));
  }

  #onMessage(data: unknown): void {
    this.#heard = true;
    let message: Message;
    if (typeof data === "string") {
      message = new Message(data);
    } else if (data instanceof ArrayBuffer) {
      message = new Message(new Uint8Array(data));
    } else {
      // Only possible if someone set socket.binaryType = "blob" behind our back.
      this.#fail(
        CLOSE_CODE.UNSUPPORTED_DATA,
        "unsupported data",
        new TypeError(
          'Cannot read a Blob message: keep socket.binaryType as "arraybuffer"',
        ),
      );
      return;
    }
    // A string of n UTF-16 units is at most 3n UTF-8 bytes: counting them
    // walks the whole string (a third of the CPU of a 16 KiB text echo), so
    // count only when that bound exceeds the limit.
    if (
      (typeof data !== "string" || data.length * 3 > this.#maxMessageSize) &&
      message.byteLength > this.#maxMessageSize
    ) {
      this.#fail(
        CLOSE_CODE.MESSAGE_TOO_BIG,
        "message too big",
        new RangeError(
          `Received a message of ${message.byteLength} bytes; maxMessageSize is ${this.#maxMessageSize}`,
        ),
      );
      return;
    }
    if (!this.#held && this.#inbox.length === 0 && this.#hasConsumers()) {
      this.#dispatchMessage(message);
      return;
    }
    this.#inbox.push(message);
    if (this.#inbox.length > this.#maxPendingMessages) {
      this.#inbox.pop();
      this.#fail(
        CLOSE_CODE.POLICY_VIOLATION,
        "too many unread messages",
        new RangeError(
          `More than ${this.#maxPendingMessages} messages arrived with nothing reading them (maxPendingMessages)`,
        ),
      );
    }
  }

  #onClose(event: CloseEvent): void {
    if (this.#pendingFinish || this.#closeInfo) return; // Deno's second close after an idle timeout
    // Deno reports abnormal closures as 0; RFC 6455 calls them 1006.
    const code = event.code === 0 ? CLOSE_CODE.ABNORMAL : event.code;
    const error = this.#failure ??
      (event.wasClean && code !== CLOSE_CODE.ABNORMAL ? undefined : new Error(
        this.#socketError ?? `Connection closed abnormally (code ${code})`,
      ));
    if (this.#reconnector && !this.#closeRequested && !this.#failure) {
      this.#lost({
        code,
        reason: event.reason,
        wasClean: event.wasClean,
        ...(error ? { error } : {}),
      });
      return;
    }
    if (this.#socketError && !this.#failure) {
      this.#pendingErrors.push(new Error(this.#socketError));
    }
    // A socket that closed before it ever opened was never released.
    if (this.#held && !this.#releaseScheduled) this.#holdForThisTask();
    this.#finishWhenDelivered({
      code,
      reason: event.reason,
      wasClean: event.wasClean,
      ...(error ? { error } : {}),
    });
  }

  // ---- reconnection (policy, backoff and queue: reconnect.ts) ---------------

  /** The socket was lost without this side asking: reconnect, or finish. */
  #lost(info: CloseInfo): void {
    this.#detach(); // nothing more from the old socket
    this.#socketError = undefined;
    clearInterval(this.#inactivityTimer); // re-armed for the next socket
    this.#inactivityTimer = undefined;
    this.#socketGeneration++;
    const abort = new AbortController();
    this.#reconnecting = abort;
    this.#reconnector!.reopen(info, new ConnectionClosedError(info), {
      reconnecting: (next) => this.#emitReconnecting(next),
      adopt: (socket, attempt) => this.#adopt(socket, attempt),
    }, abort.signal).then(
      (end) => end,
      // Not expected (reopen() turns failures into a CloseInfo), but an
      // unhandled rejection would end the process: finish with it instead.
      (error) => ({
        ...info,
        error: error instanceof Error ? error : new Error(String(error)),
      }),
    ).then((end) => {
      if (!end || this.#reconnecting !== abort) return;
      this.#reconnecting = undefined;
      if (this.#held && !this.#releaseScheduled) this.#holdForThisTask();
      this.#finishWhenDelivered(end);
    });
  }

  /** The peer went silent (inactivityTimeout): drop its socket, reconnect. */
  #abandonSocket(error: Error): void {
    const socket = this.#socket;
    this.#lost({
      code: CLOSE_CODE.ABNORMAL,
      reason: "",
      wasClean: false,
      error,
    });
    socket.close(); // Deno may keep it CLOSING (denoland/deno#27924): detached
  }

  #emitReconnecting(info: ReconnectingInfo): void {
    for (const handler of this.#reconnectingHandlers.slice()) {
      try {
        handler(this, info);
      } catch (thrown) {
        reportHandlerError("reconnecting handler", thrown);
      }
    }
    this.#dispatchDom(new ReconnectingEvent(info));
  }

  /** Called inside the new socket's open event: swap it in, run the hooks, flush. */
  #adopt(socket: WebSocket, attempt: number): void {
    this.#reconnecting = undefined;
    this.#socket = socket;
    this.#attach(socket);
    this.#watchInactivity();
    // A connection whose first socket never opened was never released.
    if (this.#held && !this.#releaseScheduled) this.#holdForThisTask();
    const generation = ++this.#socketGeneration;
    const { queuedMessages, droppedMessages } = this.#reconnector!.stats;
    const info = { attempt, queuedMessages, droppedMessages };
    const waits: Promise<unknown>[] = [];
    try {
      for (const handler of this.#reconnectHandlers.slice()) {
        const result = handler(this, info);
        if (result instanceof Promise) waits.push(result);
      }
    } catch (error) {
      this.#handlerFailed(error);
      return;
    }
    const event = new ReconnectEvent(info);
    this.#dispatchDom(event);
    waits.push(...event.pending());
    if (this.#closeRequested) return; // a listener threw or closed
    if (waits.length === 0) {
      this.#flushQueued();
      return;
    }
    const { hookTimeout } = this.#reconnector!.policy;
    deadline(Promise.all(waits), hookTimeout).then(() => {
      if (generation === this.#socketGeneration) this.#flushQueued();
    }, (error) => {
      if (generation !== this.#socketGeneration) return;
      this.#handlerFailed(
        error instanceof DOMException && error.name === "TimeoutError"
          ? new Error(
            `The reconnect handlers did not settle within ${hookTimeout} ms (hookTimeout)`,
          )
          : error,
      );
    });
  }

  /** Sends what was queued while disconnected, oldest first. */
  #flushQueued(): void {
    if (this.#closeRequested || this.#socket.readyState !== WebSocket.OPEN) {
      return; // lost again: the queue waits for the next socket
    }
    const outbox = this.#outbox ?? [];
    this.#outbox = undefined;
    for (const data of outbox) this.#socket.send(data);
    for (const data of this.#reconnector!.drain()) this.#socket.send(data);
  }

  /** close() while waiting for a new socket: stop and finish now. */
  #stopReconnecting(code: number | undefined, reason: string | undefined) {
    this.#reconnecting!.abort();
    this.#reconnecting = undefined;
    this.#socketGeneration++;
    if (this.#held && !this.#releaseScheduled) this.#holdForThisTask();
    this.#finishWhenDelivered({
      code: code ?? CLOSE_CODE.NO_STATUS,
      reason: reason ?? "",
      wasClean: !this.#failure,
      ...(this.#failure ? { error: this.#failure } : {}),
    });
  }

  // ---- delivery ------------------------------------------------------------

  /** Dispatches nothing until the current task has ended (see class docs). */
  #holdForThisTask(): void {
    this.#held = true;
    this.#releaseScheduled = true;
    const token = ++this.#holdToken;
    setTimeout(() => {
      if (token !== this.#holdToken) return;
      this.#releaseScheduled = false;
      this.#held = false;
      this.#pump();
    }, 0);
  }

  #hasConsumers(): boolean {
    return this.#waiters.size > 0 || this.#hasPushConsumers();
  }

  #hasPushConsumers(): boolean {
    return this.#messageHandlers.length > 0 || this.#nextHandlers.length > 0 ||
      this.#iterators.size > 0 || this.#domMessageListeners.size > 0;
  }

  #consumerAdded(): void {
    if (this.#inbox.length > 0 || this.#pendingFinish) this.#schedulePump();
  }

  #checkConsumers(): void {
    if (this.#pendingFinish) this.#schedulePump();
  }

  // Held messages go to every consumer registered in the same task as the
  // first, hence a macrotask rather than a microtask.
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setTimeout(() => {
      this.#pumpScheduled = false;
      this.#pump();
    }, 0);
  }

  #pump(): void {
    if (this.#held || this.#closeInfo) return;
    while (this.#inbox.length > 0 && this.#hasConsumers()) {
      this.#dispatchMessage(this.#inbox.shift()!);
    }
    for (const error of this.#pendingErrors.splice(0)) this.#emitError(error);
    const info = this.#pendingFinish;
    if (info) this.#finish(info);
  }

  #dispatchMessage(message: Message): void {
    // Guarded: iterating even an empty Set allocates an iterator per message.
    if (this.#waiters.size > 0) {
      this.#pullOnly = !this.#hasPushConsumers();
      for (const waiter of this.#waiters) waiter.resolve(message);
    } else {
      this.#pullOnly = false;
    }
    if (this.#iterators.size > 0) {
      for (const iterator of this.#iterators) iterator.push(message);
    }
    const next = this.#nextHandlers;
    if (next.length > 0) this.#nextHandlers = [];
    // A snapshot (see class docs) without a copy per message: registering
    // and unregistering replace the array rather than change it.
    const handlers = this.#messageHandlers;
    try {
      for (const handler of next) handler(this, message);
      for (const { plack, fn, unregister } of handlers) {
        if (plack) {
          (fn as MessageHandler)(
            this,
            message.isText() ? message.decodedBody() : message.body,
            unregister,
          );
        } else {
          (fn as EachMessageHandler)(this, message, unregister);
        }
      }
    } catch (error) {
      this.#handlerFailed(error);
      return;
    }
    if (this.#domMessageListeners.size > 0) {
      this.#dispatchDom(new MessageEvent("message", { data: message }));
    }
  }

  #handlerFailed(error: unknown): void {
    this.#fail(
      CLOSE_CODE.INTERNAL_ERROR,
      "handler error",
      error instanceof Error ? error : new Error(String(error)),
    );
  }

  /** Over the send budget: read the real buffered amount, fail if too much. */
  #checkBuffered(): void {
    const amount = this.bufferedAmount;
    const room = this.#maxBufferedAmount - amount;
    if (room >= 0) {
      this.#sendBudget = room;
      return;
    }
    this.#sendBudget = Infinity; // fail once; sends are dropped from now on
    this.#fail(
      CLOSE_CODE.POLICY_VIOLATION,
      "send buffer full",
      new RangeError(
        `Cannot buffer more for a peer that is not reading: ${amount} bytes are waiting to be sent; maxBufferedAmount is ${this.#maxBufferedAmount}`,
      ),
    );
  }

  /** Starts the inactivity check (see ConnectionOptions.inactivityTimeout). */
  #watchInactivity(): void {
    if (this.#inactivityTimeout === 0 || this.#inactivityTimer) return;
    this.#heard = true;
    this.#inactivityTimer = setInterval(() => {
      if (this.#heard) {
        this.#heard = false;
        this.#silentTicks = 0;
        return;
      }
      // Two silent half-periods in a row: at least one full timeout.
      if (++this.#silentTicks < 2) return;
      clearInterval(this.#inactivityTimer);
      const error = new DOMException(
        `No message from the peer for ${this.#inactivityTimeout} ms (inactivityTimeout): it is gone or not sending`,
        "TimeoutError",
      );
      if (this.#reconnector && !this.#closeRequested && !this.#failure) {
        this.#abandonSocket(error); // a silent peer is a lost one
        return;
      }
      if (this.#held) this.#pendingErrors.push(error);
      else this.#emitError(error);
      this.terminate(error);
    }, this.#inactivityTimeout / 2);
  }

  /**
   * Reports an error, then closes with `code` (a registered 10xx code, sent
   * as its 40xx counterpart on the client side: see `#sideCode`).
   */
  #fail(code: number, reason: string, error: Error): void {
    if (this.#failure || this.#closeInfo) return;
    this.#failure = error;
    if (this.#held) this.#pendingErrors.push(error);
    else this.#emitError(error);
    this.#startClose(this.#sideCode(code), reason);
  }

  /**
   * `code` on the server side; 3000 more on the client side, since a client
   * may only send 1000 and 3000-4999 (1009 "too big" becomes 4009).
   */
  #sideCode(code: number): number {
    return this.#role === "server" ? code : code + 3000;
  }

  #emitError(error: Error): void {
    for (const handler of this.#errorHandlers.slice()) {
      try {
        handler(this, error.message);
      } catch (thrown) {
        reportHandlerError("parse_error", thrown);
      }
    }
    this.#dispatchDom(
      new ErrorEvent("error", { message: error.message, error }),
    );
  }

  #finishWhenDelivered(info: CloseInfo): void {
    this.#pendingFinish = info;
    this.#pump();
  }

  #finish(info: CloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    this.#pendingFinish = undefined;
    clearTimeout(this.#closeTimer);
    this.#detach();
    clearInterval(this.#inactivityTimer);
    // An Error captures a stack trace: make one only when someone waits.
    if (this.#drain || this.#waiters.size > 0) {
      const closedError = new ConnectionClosedError(info);
      this.#drain?.fail(closedError);
      for (const waiter of this.#waiters) waiter.reject(closedError);
    }
    for (const iterator of this.#iterators) iterator.end(info);
    this.#iterators.clear();
    const finishHandlers = this.#finishHandlers;
    // Drop every registration: nothing can fire again.
    this.#finishHandlers = [];
    this.#messageHandlers = [];
    this.#nextHandlers = [];
    this.#errorHandlers = [];
    this.#reconnectingHandlers = [];
    this.#reconnectHandlers = [];
    for (const handler of finishHandlers) {
      try {
        handler(this, info.error?.message);
      } catch (thrown) {
        reportHandlerError("finish", thrown);
      }
    }
    this.#dispatchDom(
      new CloseEvent("close", {
        code: info.code,
        reason: info.reason,
        wasClean: info.wasClean,
      }),
    );
    this.#domMessageListeners.clear();
    this.#closedResolve(info);
  }

  #startClose(code: number | undefined, reason: string | undefined): void {
    if (this.#closeRequested || this.#closeInfo) return;
    this.#closeRequested = true;
    this.#outbox = undefined;
    if (this.#reconnecting) {
      this.#stopReconnecting(code, reason);
      return;
    }
    try {
      this.#socket.close(code, reason);
    } catch (error) {
      // Codes and reasons are checked before we get here; this is Deno
      // refusing for a reason of its own. Finish rather than hang.
      this.#failure ??= error instanceof Error
        ? error
        : new Error(String(error));
    }
    this.#closeTimer = setTimeout(() => {
      this.#finishWhenDelivered({
        code: CLOSE_CODE.ABNORMAL,
        reason: "",
        wasClean: false,
        error: this.#failure ?? new Error(
          `The peer did not answer the close within ${this.#closeTimeout} ms`,
        ),
      });
      // Give held messages and pending consumers no chance to keep us alive.
      this.#held = false;
      this.#pump();
    }, this.#closeTimeout);
  }

  // ---- registration helpers -------------------------------------------------

  #register(
    event: ConnectionHandlerName,
    handler: (...args: never[]) => unknown,
  ): Unregister {
    if (this.#closeInfo) return () => {};
    switch (event) {
      case "message":
      case "each_message": {
        const entry: MessageEntry = {
          plack: event === "message",
          fn: handler as MessageHandler,
          // Copy on write: the array dispatch holds is never mutated.
          unregister: () => {
            if (!this.#messageHandlers.includes(entry)) return;
            this.#messageHandlers = this.#messageHandlers.filter((e) =>
              e !== entry
            );
          },
        };
        this.#messageHandlers = [...this.#messageHandlers, entry];
        this.#consumerAdded();
        return entry.unregister;
      }
      case "next_message":
        this.#nextHandlers.push(handler as NextMessageHandler);
        this.#consumerAdded();
        return removeFrom(
          () => this.#nextHandlers,
          handler as NextMessageHandler,
        );
      case "finish":
      case "close":
        this.#finishHandlers.push(handler as FinishHandler);
        return removeFrom(() => this.#finishHandlers, handler as FinishHandler);
      case "parse_error":
      case "error":
        this.#errorHandlers.push(handler as ParseErrorHandler);
        return removeFrom(
          () => this.#errorHandlers,
          handler as ParseErrorHandler,
        );
      case "reconnecting":
        this.#reconnectingHandlers.push(handler as ReconnectingHandler);
        return removeFrom(
          () => this.#reconnectingHandlers,
          handler as ReconnectingHandler,
        );
      case "reconnect":
        this.#reconnectHandlers.push(handler as ReconnectHandler);
        return removeFrom(
          () => this.#reconnectHandlers,
          handler as ReconnectHandler,
        );
    }
  }

  #wrapperFor(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options: boolean | EventListenerOptions | undefined,
    create: boolean,
  ): EventListener | undefined {
    const capture = typeof options === "boolean" ? options : !!options?.capture;
    const key = `${capture}:${type}`;
    let byListener = this.#wrappers.get(key);
    if (!byListener) {
      if (!create) return undefined;
      byListener = new WeakMap();
      if (this.#wrappers === EMPTY_MAP) this.#wrappers = new Map();
      this.#wrappers.set(key, byListener);
    }
    let wrapper = byListener.get(listener);
    if (!wrapper && create) {
      const once = typeof options === "object" &&
        !!(options as AddEventListenerOptions).once;
      wrapper = (event: Event) => {
        if (once && type === "message") {
          this.#domMessageListeners.delete(wrapper!);
        }
        try {
          if (typeof listener === "function") listener.call(this, event);
          else listener.handleEvent(event);
        } catch (error) {
          if (type === "message") {
            // As for a throwing handler: skip the rest of this message's
            // consumers. Other events still reach every listener.
            event.stopImmediatePropagation();
            this.#handlerFailed(error);
          } else if (type === "reconnect") {
            // As for a throwing on("reconnect") handler.
            this.#handlerFailed(error);
          } else {
            reportHandlerError(`${type} listener`, error);
          }
        }
      };
      byListener.set(listener, wrapper);
    }
    return wrapper;
  }

  #dispatchDom(event: Event): void {
    this.dispatchEvent(event);
  }
}

/**
 * An upper bound of a sendable's size in bytes, without scanning strings: a
 * UTF-16 unit never takes more than 3 UTF-8 bytes.
 */
function upperSize(data: string | Uint8Array | ArrayBuffer | Blob): number {
  return typeof data === "string"
    ? data.length * 3
    : (data as ArrayBuffer).byteLength ?? (data as Blob).size;
}

function removeFrom<T>(list: () => T[], item: T): Unregister {
  return () => {
    const items = list();
    const i = items.indexOf(item);
    if (i >= 0) items.splice(i, 1);
  };
}

function reportHandlerError(where: string, error: unknown): void {
  console.error(`anyws: a ${where} threw; ignored:`, error);
}
