/**
 * {@linkcode Connection}: one WebSocket connection class for both the server
 * side ({@linkcode serve}) and the client side ({@linkcode connect}), with the
 * Perl `on()` API, DOM events, and pull-style reading.
 *
 * @example Wrap a standard WebSocket
 * ```ts
import { Connection } from "@anyws/anyws/connection";
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

import { provideSendIfOpen } from "./_connection/send_if_open.ts";
import {
  asError,
  checkCloseCode,
  checkCloseReason,
  type CloseInfo,
  ConnectionClosedError,
  type Role,
  sideCode,
} from "./close.ts";
import {
  checkConnectionOptions,
  type ConnectionLimits,
  type ConnectionOptions,
  type DrainOptions,
  type NextMessageOptions,
  RESOLVED_LIMITS,
  type ResolvedLimits,
  type ResolvedOptions,
  resolveLimits,
  type WriteOptions,
} from "./connection_options.ts";
import type {
  ConnectionEventMap,
  ConnectionHandlerName,
  Unregister,
} from "./connection_events.ts";
import { CLOSE_CODE, Message, type SendData, toSendable } from "./message.ts";
import {
  ReconnectEvent,
  type ReconnectInfo,
  ReconnectingEvent,
  type ReconnectingInfo,
  type Reconnector,
  type ReconnectStats,
} from "./reconnect.ts";
import type { PublishData, Topics } from "./topics.ts";
import { Delivery, type DeliveryHost } from "./_connection/delivery.ts";
import {
  EventHandlers,
  registrations,
  reportHandlerError,
  warnDeprecated,
} from "./_connection/handlers.ts";
import {
  ReconnectingWire,
  type ReconnectingWireHost,
} from "./_connection/reconnecting_wire.ts";
import { closeInfoOf, toMessage, Wire } from "./_connection/wire.ts";
import { DomListeners } from "./_connection/dom_listeners.ts";
import {
  LIFECYCLE,
  type Lifecycle,
  LIFECYCLE_CONTEXT,
} from "./_connection/lifecycle.ts";

// The public names of the files around this one, so that
// "@anyws/anyws/connection" offers everything about connections.
export { checkCloseCode, type CloseInfo, ConnectionClosedError, type Role };
export {
  checkConnectionOptions,
  type ConnectionLimits,
  type ConnectionOptions,
  type DrainOptions,
  type NextMessageOptions,
  type WriteOptions,
};
export type { ConnectionEventMap, ConnectionHandlerName, Unregister };
export { type BinaryData, Message, type SendData } from "./message.ts";
export { type PublishData, Topics } from "./topics.ts";
export {
  ReconnectEvent,
  type ReconnectInfo,
  ReconnectingEvent,
  type ReconnectingInfo,
  Reconnector,
  type ReconnectStats,
} from "./reconnect.ts";

/**
 * Called by `on("message")` (Plack): text as a string, binary as bytes. May
 * be `async`: a rejection is handled like a throw.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type MessageHandler<Data = unknown> = (
  conn: Connection<Data>,
  data: string | Uint8Array,
  unregister: () => void,
) => unknown;
/**
 * Called by `on("each_message")` (AnyEvent) with a {@linkcode Message}.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type EachMessageHandler<Data = unknown> = (
  conn: Connection<Data>,
  message: Message,
  unregister: () => void,
) => unknown;
/**
 * Called by `on("next_message")` (AnyEvent) for the next message only.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type NextMessageHandler<Data = unknown> = (
  conn: Connection<Data>,
  message: Message,
) => unknown;
/**
 * Called once by `on("finish")`/`on("close")`; `error` is `undefined` after
 * a clean close.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type FinishHandler<Data = unknown> = (
  conn: Connection<Data>,
  error?: string,
) => unknown;
/**
 * Called by `on("parse_error")`/`on("error")` with the error's text.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type ParseErrorHandler<Data = unknown> = (
  conn: Connection<Data>,
  error: string,
) => unknown;
/**
 * Called by `on("reconnecting")` before each wait to reconnect. A throw or a
 * rejection is logged and ignored.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type ReconnectingHandler<Data = unknown> = (
  conn: Connection<Data>,
  info: ReconnectingInfo,
) => unknown;
/**
 * Called by `on("reconnect")` once a new socket is open, before the queued
 * messages are sent: sends made here go first (re-authenticate, re-subscribe).
 * When it returns a promise, the queue waits for it (at most
 * {@linkcode ReconnectOptions.hookTimeout}); a throw or a rejection closes
 * the connection with 4011, for good.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export type ReconnectHandler<Data = unknown> = (
  conn: Connection<Data>,
  info: ReconnectInfo,
) => unknown;

/**
 * The events {@linkcode Connection.on} accepts, with their handler types.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export interface ConnectionHandlers<Data = unknown> {
  /** Each message: text as a `string`, binary as a `Uint8Array` (Plack). */
  message: MessageHandler<Data>;
  /** Each message as a {@linkcode Message} (AnyEvent). */
  each_message: EachMessageHandler<Data>;
  /** The next message only (AnyEvent). */
  next_message: NextMessageHandler<Data>;
  /** The connection finished (both Perl libraries). Fires once. */
  finish: FinishHandler<Data>;
  /** Alias of `finish` (Plack). */
  close: FinishHandler<Data>;
  /** A protocol or handler error; the connection is closing (AnyEvent). */
  parse_error: ParseErrorHandler<Data>;
  /** Alias of `parse_error`. */
  error: ParseErrorHandler<Data>;
  /** A reconnecting connection lost its socket or an attempt failed, and waits. */
  reconnecting: ReconnectingHandler<Data>;
  /** A reconnecting connection has a new socket; the queue is sent next. */
  reconnect: ReconnectHandler<Data>;
}

/**
 * A WebSocket connection, the same class on the server side and the client
 * side. It extends `EventTarget`, so DOM-style listeners work beside the Perl
 * style {@linkcode Connection.on} API and pull-style reading.
 *
 * Delivery rules:
 * - A message goes at once to the consumers registered when it arrives, so
 *   handlers registered in `onEstablish` or right after `await connect()`
 *   answer even a peer that sends a message and closes at once, when they
 *   send the reply synchronously: Deno answers a close frame that came in
 *   the same read as soon as the message's dispatch returns, so a reply
 *   made after an `await` (a `for await` body) goes nowhere.
 * - Messages that arrive while nothing reads them are held (up to
 *   {@linkcode ConnectionOptions.maxPendingMessages} and
 *   {@linkcode ConnectionOptions.maxPendingBytes}) and delivered, in order,
 *   to every consumer registered in the task that registers the first.
 * - A connection handed to the application (resolved by `connect()`, passed
 *   to `onEstablish`, or just constructed) fires no `finish` and no
 *   `parse_error` before the current task ends: register handlers right
 *   after receiving it.
 * - Every consumer sees every message that arrives while it is registered;
 *   `next_message` handlers and `nextMessage()` see only one. Order per
 *   message: `next_message` handlers, then `each_message` and `message`
 *   handlers in registration order, then DOM `message` listeners; pending
 *   `nextMessage()` calls and iterators are resolved alongside.
 * - A handler or listener that throws, or whose promise rejects, fires
 *   `parse_error` and closes the connection with 1011 (server side) or 4011
 *   (client side); a synchronous throw also skips the rest of that
 *   message's handlers. The error goes no further: not to `Deno.serve`, not
 *   to the event loop. After the end, such errors are logged.
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
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export class Connection<Data = unknown> extends EventTarget {
  readonly #role: Role;
  readonly #request: Request | (() => Request) | undefined;
  readonly #remoteAddr: Deno.NetAddr | undefined;
  readonly #url: string;
  readonly #subprotocol: string | undefined;
  readonly #limits: ResolvedLimits;
  readonly #topics: Topics | undefined;
  readonly #reconnector: Reconnector | undefined;
  // The parts: the socket(s) as this connection drives them, and where
  // received messages go.
  // Typed without Data, so that Connection stays covariant in Data (a
  // Connection<{ user: string }> is a Connection<unknown>).
  readonly #wire: Wire;
  // deno-lint-ignore no-explicit-any
  readonly #delivery: Delivery<Connection<any>>;
  // deno-lint-ignore no-explicit-any
  #handlers: EventHandlers<Connection<any>> | undefined;
  // DOM listeners, wrapped so that a throwing listener cannot crash Deno.
  #dom: DomListeners | undefined; // made with the first listener
  // Closing.
  #closeRequested = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #failure: Error | undefined;
  #closeInfo: CloseInfo | undefined;
  // Made on first read: most connections are never awaited.
  #closedResolve: ((info: CloseInfo) => void) | undefined;
  // A server's bookkeeping, and what it gets when the socket opens.
  readonly #lifecycle: Lifecycle | undefined;
  #lifecycleContext: unknown;
  #closed: Promise<CloseInfo> | undefined;

  /**
   * Application data: what a server's `authorize` hook attached, or anything
   * the application stores here.
   */
  data: Data;

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
    const limits = (options as ResolvedOptions<Data>)[RESOLVED_LIMITS] ??
      resolveLimits(options);
    this.#limits = limits;
    this.#role = options.role ?? (options.request ? "server" : "client");
    this.#request = options.request;
    this.#remoteAddr = options.remoteAddr;
    this.#url = options.url ??
      (typeof options.request === "function"
        ? undefined
        : options.request?.url) ??
      socket.url;
    this.#subprotocol = options.subprotocol;
    this.#topics = options.topics;
    this.data = options.data as Data;
    const resolved = options as ResolvedOptions<Data>;
    this.#lifecycle = resolved[LIFECYCLE];
    this.#lifecycleContext = resolved[LIFECYCLE_CONTEXT];
    const host = new Connection.#Host(this);
    this.#delivery = new Delivery<Connection<Data>>(this, host, limits);
    const reconnector = this.#reconnector = options.reconnect;
    // The wire is chosen once: the connection holds no reconnect branch.
    this.#wire = reconnector
      ? new ReconnectingWire(socket, host, limits, reconnector)
      : new Wire(socket, host, limits);
    if (socket.readyState === WebSocket.OPEN) this.#delivery.hold();
  }

  static {
    // For Server.broadcast (see _connection/send_if_open.ts).
    provideSendIfOpen((conn, payload) => {
      const c = conn as Connection<unknown>;
      if (c.#closeRequested || c.#closeInfo) return false;
      return c.#wire.sendIfOpen(payload);
    });
  }

  /** The underlying standard `WebSocket` (Perl: `handle`). */
  get socket(): WebSocket {
    return this.#wire.socket;
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
    return this.#subprotocol ?? (this.#wire.socket.protocol || undefined);
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
    return this.#closeInfo ? WebSocket.CLOSED : this.#wire.readyState;
  }

  /**
   * Bytes accepted by {@linkcode Connection.send} but not yet handed to the
   * kernel, including sends queued while connecting or reconnecting. Deno's own counter is
   * an i32 that wraps past 2 GiB; this one is read unsigned.
   */
  get bufferedAmount(): number {
    return this.#wire.bufferedAmount;
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
    return this.#closed ??= this.#closeInfo
      ? Promise.resolve(this.#closeInfo)
      : new Promise((resolve) => this.#closedResolve = resolve);
  }

  /**
   * {@linkcode ConnectionOptions.maxMessageSize} as in force (Perl:
   * `max_payload_size`).
   */
  get maxMessageSize(): number {
    return this.#limits.maxMessageSize;
  }

  /** {@linkcode ConnectionOptions.maxPendingMessages} as in force. */
  get maxPendingMessages(): number {
    return this.#limits.maxPendingMessages;
  }

  /** {@linkcode ConnectionOptions.maxPendingBytes} as in force. */
  get maxPendingBytes(): number {
    return this.#limits.maxPendingBytes;
  }

  /** {@linkcode ConnectionOptions.maxBufferedAmount} as in force. */
  get maxBufferedAmount(): number {
    return this.#limits.maxBufferedAmount;
  }

  /** {@linkcode ConnectionOptions.highWaterMark} as in force. */
  get highWaterMark(): number {
    return this.#limits.highWaterMark;
  }

  /** {@linkcode ConnectionOptions.closeTimeout} as in force. */
  get closeTimeout(): number {
    return this.#limits.closeTimeout;
  }

  /** {@linkcode ConnectionOptions.inactivityTimeout} as in force (0: off). */
  get inactivityTimeout(): number {
    return this.#limits.inactivityTimeout;
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
    handler: ConnectionHandlers<Data>[K],
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
  on(handlers: Partial<ConnectionHandlers<Data>>): Unregister[];
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
   *   "message", (_conn, data) => console.log(data),
   *   "finish", () => console.log("closed"),
   * );
   * await conn.closed;
   * offMessage?.();
   * offFinish?.();
   * ```
   */
  on<K1 extends ConnectionHandlerName, K2 extends ConnectionHandlerName>(
    event1: K1,
    handler1: ConnectionHandlers<Data>[K1],
    event2: K2,
    handler2: ConnectionHandlers<Data>[K2],
  ): Unregister[];
  /**
   * Registers three handlers as `event, handler` pairs.
   *
   * @param event1 The first event.
   * @param handler1 Its handler.
   * @param event2 The second event.
   * @param handler2 Its handler.
   * @param event3 The third event.
   * @param handler3 Its handler.
   * @returns The unregister functions, in order.
   * @throws {TypeError} As for the two-pair form.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi").close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.on(
   *   "message", (_conn, data) => console.log(data),
   *   "parse_error", (_conn, error) => console.error(error),
   *   "finish", (_conn, error) => console.log("closed", error ?? "cleanly"),
   * );
   * await conn.closed;
   * ```
   */
  on<
    K1 extends ConnectionHandlerName,
    K2 extends ConnectionHandlerName,
    K3 extends ConnectionHandlerName,
  >(
    event1: K1,
    handler1: ConnectionHandlers<Data>[K1],
    event2: K2,
    handler2: ConnectionHandlers<Data>[K2],
    event3: K3,
    handler3: ConnectionHandlers<Data>[K3],
  ): Unregister[];
  /**
   * Registers any number of handlers as `event, handler` pairs (handlers
   * are typed up to three pairs; past that, annotate them).
   *
   * @param pairs Alternating event names and handlers.
   * @returns The unregister functions, in order.
   * @throws {TypeError} As for the two-pair form.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   * import type { Connection } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi").close(); } });
   * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.on(
   *   "message", (_conn: Connection, data: string | Uint8Array) => console.log(data),
   *   "error", () => {},
   *   "reconnect", () => {},
   *   "finish", () => console.log("closed"),
   * );
   * await conn.closed;
   * ```
   */
  on(
    ...pairs: (
      | ConnectionHandlerName
      | ConnectionHandlers<Data>[ConnectionHandlerName]
    )[]
  ): Unregister[];
  on(...args: unknown[]): Unregister | Unregister[] {
    const pairs = registrations(args);
    const unregisters = pairs.map(([event, handler]) =>
      this.#register(event, handler as never)
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
    this.#wire.send(payload);
    return this;
  }

  /**
   * Sends a value as a JSON text message: `send(Message.fromJSON(value))`.
   * Read it with {@linkcode Message.json}.
   *
   * @param value The value; `JSON.stringify` rules apply (`toJSON()` is used,
   * `undefined` properties are left out, `NaN` becomes `null`).
   * @returns This connection, for chaining.
   * @throws {TypeError} If JSON cannot represent `value` (`undefined`, a
   * function, a symbol, a `BigInt`, a cycle); nothing is sent then.
   *
   * @example
   * ```ts
   * import { connect, serve } from "@anyws/anyws";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) {
   *   conn.on("each_message", (conn, m) => conn.sendJSON({ n: m.json<{ n: number }>().n + 1 }));
   * } });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * console.log((await conn.sendJSON({ n: 1 }).nextMessage()).json()); // { n: 2 }
   * ```
   */
  sendJSON(value: unknown): this {
    return this.send(Message.fromJSON(value));
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
      throw new ConnectionClosedError(await this.closed);
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
    await this.#wire.drained(
      options.highWaterMark ?? this.#limits.highWaterMark,
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
    this.#startClose(sideCode(CLOSE_CODE.GOING_AWAY, this.#role), "terminated");
    if (this.#closeInfo) return this; // a reconnecting connection finished
    clearTimeout(this.#closeTimer);
    // Give the close frame closeTimeout to be answered, then cut TCP; the
    // timer does not keep the process alive.
    const wire = this.#wire;
    Deno.unrefTimer(setTimeout(() => wire.shut(), this.#limits.closeTimeout));
    this.#delivery.endNow({
      code: CLOSE_CODE.ABNORMAL,
      reason: "",
      wasClean: false,
      error: this.#failure,
    });
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
      checkCloseReason(reason);
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
    return this.#delivery.next(options);
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
    return this.#delivery.iterate();
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
    await this.closed;
  }

  /**
   * Registers a callback for each message's decoded text.
   *
   * @deprecated Use `on("each_message", (conn, message) => ...)` instead
   * (AnyEvent::WebSocket::Connection 0.30 deprecated this method). The
   * first call in a process logs a warning, as AnyEvent 0.30 did.
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
    warnDeprecated("onEachMessage", 'on("each_message", ...)');
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
    warnDeprecated("onNextMessage", 'on("next_message", ...)');
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
    warnDeprecated("onFinish", 'on("finish", ...)');
    this.on("finish", () => callback());
    return this;
  }

  /**
   * Adds a DOM listener. A listener that throws or whose promise rejects
   * does not crash Deno: for `message` and `open` it is treated like a
   * throwing handler (see the class docs); for `error` and `close` it is
   * logged.
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
    listener: (this: Connection<Data>, event: ConnectionEventMap[K]) => unknown,
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
    if (listener !== null) this.#domListeners().add(type, listener, options);
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
    listener: (this: Connection<Data>, event: ConnectionEventMap[K]) => unknown,
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
    if (listener !== null) this.#dom?.remove(type, listener, options);
  }

  // ---- registration ----------------------------------------------------------

  #register(event: ConnectionHandlerName, handler: never): Unregister {
    if (this.#closeInfo) return () => {};
    if (event === "message" || event === "each_message") {
      return this.#delivery.addMessageHandler(event === "message", handler);
    }
    if (event === "next_message") return this.#delivery.addNextHandler(handler);
    return (this.#handlers ??= new EventHandlers()).add(event, handler);
  }

  /** The DOM listeners, made with the first one. */
  #domListeners(): DomListeners {
    return this.#dom ??= new DomListeners(this, {
      // A message, open or reconnect listener runs while the connection is
      // open: it fails like a handler (1011/4011). Error, close and
      // reconnecting listeners run while it is closing, finished or between
      // sockets: they only get logged.
      failed: (type, error) =>
        type === "message" || type === "open" || type === "reconnect"
          ? this.#handlerFailed(error)
          : reportHandlerError(`${type} listener`, error),
      messageListenerAdded: () => this.#delivery.domListenerAdded(),
      messageListenerRemoved: () => this.#delivery.domListenerRemoved(),
    });
  }

  /** Dispatches a DOM event, if the type ever had a listener. */
  #dispatchDom(type: string, make: () => Event): void {
    if (this.#dom?.listened(type)) this.dispatchEvent(make());
  }

  // ---- closing and finishing ---------------------------------------------------

  #startClose(code: number | undefined, reason: string | undefined): void {
    if (this.#closeRequested || this.#closeInfo) return;
    this.#closeRequested = true;
    const refused = this.#wire.close(code, reason);
    if (this.#closeInfo) return; // nothing to close: a reconnecting wire finished
    if (refused) this.#failure ??= refused; // finish rather than hang
    this.#closeTimer = setTimeout(() => {
      // The peer did not answer: cut the TCP connection so Deno frees what
      // it holds (an unfinished message, say), and finish. Held messages
      // and pending consumers get no chance to keep us alive.
      this.#wire.shut();
      this.#delivery.endNow({
        code: CLOSE_CODE.ABNORMAL,
        reason: "",
        wasClean: false,
        error: this.#failure ?? new Error(
          `The peer did not answer the close within ${this.#limits.closeTimeout} ms`,
        ),
      });
    }, this.#limits.closeTimeout);
  }

  /**
   * Reports an error, then closes with `code` (a registered 10xx code, sent
   * as its 40xx counterpart on the client side).
   */
  #fail(code: number, reason: string, error: Error): void {
    if (this.#failure || this.#closeInfo) return;
    this.#failure = error;
    this.#delivery.error(error);
    this.#startClose(sideCode(code, this.#role), reason);
  }

  /** A handler or listener threw or rejected. */
  #handlerFailed(thrown: unknown): void {
    if (this.#failure || this.#closeInfo) {
      // Closing already, or finished: nothing more to close. Say so.
      reportHandlerError("handler", thrown);
      return;
    }
    this.#fail(CLOSE_CODE.INTERNAL_ERROR, "handler error", asError(thrown));
  }

  #finish(info: CloseInfo): void {
    if (this.#closeInfo) return;
    if (this.#failure && !info.error) {
      info = { ...info, wasClean: false, error: this.#failure };
    }
    this.#closeInfo = info;
    clearTimeout(this.#closeTimer);
    this.#wire.detach(info);
    this.#delivery.finished(info);
    const handlers = this.#handlers;
    this.#handlers = undefined; // nothing can fire again
    handlers?.emit("finish", this, info.error?.message);
    this.#dispatchDom("close", () =>
      new CloseEvent("close", {
        code: info.code,
        reason: info.reason,
        wasClean: info.wasClean,
      }));
    this.#closedResolve?.(info);
    this.#lifecycleContext = undefined;
    this.#lifecycle?.finished(this);
  }

  /**
   * What the parts call back: one small object per connection whose methods
   * reach this connection's private members (a class declared inside the
   * class body may), so that none of them is public.
   */
  static #Host = class Host implements DeliveryHost, ReconnectingWireHost {
    // deno-lint-ignore no-explicit-any
    readonly #conn: Connection<any>;

    // deno-lint-ignore no-explicit-any
    constructor(conn: Connection<any>) {
      this.#conn = conn;
    }

    // -- from the wire --

    opened(): void {
      const conn = this.#conn;
      conn.#delivery.hold();
      conn.#dispatchDom("open", () => new Event("open"));
      const lifecycle = conn.#lifecycle;
      if (lifecycle) {
        const context = conn.#lifecycleContext;
        conn.#lifecycleContext = undefined; // once, and not kept
        lifecycle.opened(conn, context);
      }
    }

    received(data: unknown): void {
      const conn = this.#conn;
      const message = toMessage(data, conn.#limits.maxMessageSize);
      if (message instanceof Message) return conn.#delivery.received(message);
      const tooBig = message instanceof RangeError;
      conn.#fail(
        tooBig ? CLOSE_CODE.MESSAGE_TOO_BIG : CLOSE_CODE.UNSUPPORTED_DATA,
        tooBig ? "message too big" : "unsupported data",
        message,
      );
    }

    socketClosed(event: CloseEvent, socketError: string | undefined): void {
      const conn = this.#conn;
      // Deno's second close event after an idle timeout.
      if (conn.#delivery.pending || conn.#closeInfo) return;
      const failure = conn.#failure;
      const info = closeInfoOf(event, socketError);
      // Deno's error text goes to parse_error and stays on the close info:
      // one Error (a stack trace each) for both.
      if (socketError && !failure) {
        conn.#delivery.error(info.error ?? new Error(socketError));
      }
      conn.#delivery.end(failure ? { ...info, error: failure } : info);
    }

    fail(code: number, reason: string, error: Error): void {
      this.#conn.#fail(code, reason, error);
    }

    silent(error: DOMException): void {
      const conn = this.#conn;
      conn.#delivery.error(error);
      conn.terminate(error);
    }

    reconnecting(info: ReconnectingInfo): void {
      const conn = this.#conn;
      conn.#handlers?.emit("reconnecting", conn, info);
      conn.#dispatchDom("reconnecting", () => new ReconnectingEvent(info));
    }

    reconnected(info: ReconnectInfo): Promise<unknown>[] | undefined {
      const conn = this.#conn;
      conn.#delivery.hold();
      let waits: Promise<unknown>[];
      try {
        waits = conn.#handlers?.runReconnect(conn, info) ?? [];
      } catch (error) {
        conn.#handlerFailed(error);
        return undefined;
      }
      if (conn.#dom?.listened("reconnect")) {
        const event = new ReconnectEvent(info);
        conn.dispatchEvent(event);
        waits.push(...event.pending());
      }
      return conn.#closeRequested ? undefined : waits; // a listener failed
    }

    gaveUp(info: CloseInfo): void {
      this.#conn.#delivery.end(info);
    }

    // -- from delivery --

    handlerFailed(error: unknown): void {
      this.#conn.#handlerFailed(error);
    }

    dispatchDomMessage(message: Message): void {
      const conn = this.#conn;
      conn.#dom?.dispatchMessage(conn, message);
    }

    emitError(error: Error): void {
      const conn = this.#conn;
      conn.#handlers?.emit("error", conn, error.message);
      conn.#dispatchDom(
        "error",
        () => new ErrorEvent("error", { message: error.message, error }),
      );
    }

    finish(info: CloseInfo): void {
      this.#conn.#finish(info);
    }
  };
}
