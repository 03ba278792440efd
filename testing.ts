/**
 * A test kit for WebSocket servers and clients under `deno test`, after the
 * WebSocket methods of Perl's Test::Mojo.
 *
 * Start the server an application ships, from the same options or fetch
 * handler, on a free loopback port ({@linkcode testServer}); connect to a path;
 * send; then assert each message as it comes, under a deadline. A failure
 * says what was expected and what came instead, or that nothing came, or
 * that the connection closed first, and with which code and reason.
 *
 * | Test::Mojo         | anyws/testing                                        |
 * | ------------------ | ---------------------------------------------------- |
 * | `websocket_ok`     | `server.connect(path)`, {@linkcode testConnect}      |
 * | `send_ok`          | `ws.send(data)`, `ws.sendJSON(value)`                |
 * | `message_ok`       | `ws.nextMessage()`                                   |
 * | `message_is`       | `ws.messageIs(text)`, `ws.messageIs(bytes)`          |
 * | `message_like`     | `ws.messageMatches(/regexp/)`                        |
 * | `json_message_is`  | `ws.jsonMessageIs(value)`, `ws.jsonMessage<T>()`     |
 * | `json_message_has` | `ws.jsonMessageMatches(partialObject)`               |
 * | `finished_ok`      | `ws.closedWith(code, reason)`                        |
 * | `finish_ok`        | `ws.close(code, reason)`                             |
 *
 * Everything is closed by `await using` (the server closes the connections
 * it made first), every wait is bounded by `timeout` and leaves no timer
 * behind, and nothing is shared between servers: tests that use the kit pass
 * Deno's op, resource and exit sanitizers and may run side by side.
 *
 * @example Test an echo server
 * ```ts
 * import { testServer } from "@anyws/anyws/testing";
 *
 * await using server = testServer({
 *   onEstablish(conn) {
 *     conn.on("message", (conn, message) => {
 *       if (message === "quit") conn.close(1000, "bye");
 *       else conn.send(message);
 *     });
 *   },
 * });
 * await using ws = await server.connect("/");
 * ws.send("hello");
 * await ws.messageIs("hello");
 * ws.send(new Uint8Array([1, 2, 3]));
 * await ws.messageIs(new Uint8Array([1, 2, 3]));
 * ws.sendJSON({ n: 1 });
 * await ws.jsonMessageIs({ n: 1 });
 * ws.send("quit");
 * await ws.closedWith(1000, "bye");
 * ```
 *
 * @module
 */

import { assertEquals, AssertionError, assertObjectMatch } from "@std/assert";
import { connect, ConnectError, type ConnectOptions } from "./client.ts";
import {
  type CloseInfo,
  type Connection,
  ConnectionClosedError,
} from "./connection.ts";
import { Message, type SendData } from "./message.ts";
import { serve, type ServeOptions, type Server } from "./server.ts";
import {
  describeBytes,
  describeClose,
  describeMessage,
  firstByteDifference,
  firstDifference,
  quoteText,
} from "./_testing/describe.ts";

// The types this entry's signatures name, so that it works on its own.
export { ConnectError, type ConnectOptions } from "./client.ts";
export type { CloseInfo, Connection } from "./connection.ts";
export { Message, type SendData } from "./message.ts";
export type { ServeOptions, Server } from "./server.ts";

/** The default bound of each wait, in milliseconds. */
const DEFAULT_TIMEOUT = 5000;
/** The default quiet period of {@linkcode TestConnection.noMessage}. */
const DEFAULT_QUIET = 100;

/** Options that every part of the kit takes. */
export interface TestOptions {
  /**
   * Milliseconds to wait for each thing the kit waits for: the handshake,
   * each message, the close. A wait that runs out fails the test with what
   * it was waiting for.
   *
   * @default {5000}
   */
  timeout?: number;
}

/** Options for {@linkcode testServer}. */
export interface TestServerOptions extends TestOptions {
  /**
   * The loopback address to listen on: `"127.0.0.1"` or `"::1"`.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
}

/**
 * Options for {@linkcode TestServer.connect} and {@linkcode testConnect}: the
 * client options of {@linkcode connect} (subprotocols, headers, limits),
 * with the kit's `timeout` bounding the handshake too.
 */
export interface TestConnectOptions
  extends TestOptions, Omit<ConnectOptions, "timeout" | "reconnect"> {}

/** A fetch handler, as `Deno.serve` and `deno serve` take it. */
export type FetchHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/**
 * What {@linkcode testServer} starts: the options an application passes to
 * `serve()` (`port`, `hostname`, `onListen`, `signal`, `cert` and `key` are
 * replaced: the kit serves plain `ws:` on a free loopback port), a fetch
 * handler (e.g. from `createHandler()`), or a `deno serve` module's default
 * export (`{ fetch }`).
 */
export type TestApp = ServeOptions | FetchHandler | { fetch: FetchHandler };

/**
 * A server started for a test on a free loopback port; `await using` closes
 * the connections it made, then stops it. Made by {@linkcode testServer}.
 *
 * @example
 * ```ts
 * import { testServer } from "@anyws/anyws/testing";
 *
 * await using server = testServer({ onEstablish(conn) { conn.send("hi"); } });
 * await using ws = await server.connect();
 * await ws.messageIs("hi");
 * ```
 */
export class TestServer implements AsyncDisposable {
  /**
   * The anyws server, when started from `serve()` options (for
   * `server.server.connections`, `broadcast()`, `publish()`); `undefined`
   * for a fetch handler.
   */
  readonly server: Server | undefined;
  readonly #http: Deno.HttpServer | undefined;
  readonly #options: TestServerOptions;
  readonly #clients = new Set<TestConnection>();
  #stopped: Promise<void> | undefined;

  /**
   * Starts the server; {@linkcode testServer} is the same.
   *
   * @param app The application: `serve()` options, a fetch handler, or an
   * object with a `fetch` method.
   * @param options The wait bound and the loopback address.
   * @throws {TypeError} If `app` is none of those (as `serve()` throws for
   * options without `onEstablish`).
   *
   * @example
   * ```ts
   * import { createHandler } from "@anyws/anyws";
   * import { TestServer } from "@anyws/anyws/testing";
   *
   * await using server = new TestServer(
   *   createHandler({ onEstablish(conn) { conn.send("hi"); } }),
   * );
   * await using ws = await server.connect();
   * await ws.messageIs("hi");
   * ```
   */
  constructor(app: TestApp, options: TestServerOptions = {}) {
    this.#options = options;
    const listen = {
      port: 0,
      hostname: options.hostname ?? "127.0.0.1",
      onListen() {},
    };
    const handler = typeof app === "function"
      ? app
      : typeof (app as { fetch?: unknown }).fetch === "function"
      ? (request: Request, info: Deno.ServeHandlerInfo) =>
        (app as { fetch: FetchHandler }).fetch(request, info)
      : undefined;
    if (handler) {
      this.server = undefined;
      this.#http = Deno.serve(listen, handler);
    } else {
      const {
        port: _port,
        hostname: _hostname,
        onListen: _onListen,
        signal: _signal,
        cert: _cert,
        key: _key,
        ...rest
      } = app as ServeOptions;
      this.server = serve({ ...rest, ...listen });
      this.#http = undefined;
    }
  }

  /** The address the server listens on. */
  get addr(): Deno.NetAddr {
    return this.server?.addr ?? this.#http!.addr as Deno.NetAddr;
  }

  /**
   * The `ws:` URL of a path on this server.
   *
   * @param path The path (and query), starting with `/`.
   * @returns E.g. `ws://127.0.0.1:41234/chat`.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({ onEstablish() {} });
   * console.log(server.url("/chat")); // ws://127.0.0.1:<port>/chat
   * ```
   */
  url(path = "/"): string {
    const { hostname, port } = this.addr;
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    return `ws://${host}:${port}${path}`;
  }

  /**
   * Opens a WebSocket to a path and fails the test if the handshake fails
   * (Test::Mojo's `websocket_ok`).
   *
   * @param path The path (and query), starting with `/`.
   * @param options Subprotocols, headers, limits and the wait bound
   * (defaults to the server's).
   * @returns The connection to assert on; the server closes it when it stops.
   * @throws {AssertionError} When the handshake fails: refused (with the
   * HTTP status), timed out, or a subprotocol mismatch. `cause` is the
   * {@linkcode ConnectError}.
   *
   * @example With a subprotocol and a header
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   protocols: ["v1"],
   *   onEstablish(conn, request) {
   *     conn.send(`${conn.subprotocol} ${request.headers.get("x-user")}`);
   *   },
   * });
   * await using ws = await server.connect("/", {
   *   protocols: ["v1"],
   *   headers: { "x-user": "ann" },
   * });
   * await ws.messageIs("v1 ann");
   * ```
   */
  async connect(
    path = "/",
    options: TestConnectOptions = {},
  ): Promise<TestConnection> {
    const ws = await testConnect(this.url(path), {
      ...this.#waitOptions(),
      ...options,
    });
    this.#clients.add(ws);
    ws.connection.closed.then(() => this.#clients.delete(ws));
    return ws;
  }

  /**
   * Asserts that the server refuses a WebSocket handshake at a path, and with
   * which HTTP status.
   *
   * @param path The path (and query), starting with `/`.
   * @param status The HTTP status expected; any refusal passes without it.
   * @param options Subprotocols, headers and the wait bound.
   * @returns The {@linkcode ConnectError} the client got.
   * @throws {AssertionError} When the handshake succeeds (the connection is
   * closed again), or fails with another status.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   path: "/ws",
   *   authorize: (request) => request.headers.get("x-token") === "secret",
   *   onEstablish() {},
   * });
   * await server.refuses("/elsewhere", 404);
   * await server.refuses("/ws", 403, { headers: { "x-token": "guess" } });
   * ```
   */
  async refuses(
    path: string,
    status?: number,
    options: TestConnectOptions = {},
  ): Promise<ConnectError> {
    const url = this.url(path);
    const timeout = checkTimeout(
      options.timeout ?? this.#options.timeout ?? DEFAULT_TIMEOUT,
    );
    let conn: Connection;
    try {
      conn = await connect(url, { ...options, timeout });
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      if (status !== undefined && error.status !== status) {
        throw new AssertionError(
          `Expected the handshake at ${url} to be refused with HTTP ${status}, but it failed otherwise: ${error.message}`,
          { cause: error },
        );
      }
      return error;
    }
    await conn.close(1000).closed;
    throw new AssertionError(
      `Expected the handshake at ${url} to be refused${
        status === undefined ? "" : ` with HTTP ${status}`
      }, but it succeeded`,
    );
  }

  /**
   * Closes every connection this server's {@linkcode TestServer.connect}
   * made (with 1000), then stops the server. Calling it again returns the
   * same promise.
   *
   * @returns Settles once everything is closed.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * const server = testServer({ onEstablish() {} });
   * await server.connect();
   * await server.close();
   * ```
   */
  close(): Promise<void> {
    return this.#stopped ??= (async () => {
      await Promise.all([...this.#clients].map((ws) => ws.close()));
      if (this.server) await this.server.shutdown();
      else await this.#http!.shutdown();
    })();
  }

  /**
   * Closes as {@linkcode TestServer.close} does, for `await using`.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * {
   *   await using server = testServer({ onEstablish() {} });
   *   await server.connect();
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #waitOptions(): TestOptions {
    return this.#options.timeout === undefined
      ? {}
      : { timeout: this.#options.timeout };
  }
}

/**
 * A client connection with assertions: each waits for what it expects under
 * the `timeout` and fails the test with an {@linkcode AssertionError} that
 * says what came instead. Made by {@linkcode TestServer.connect} and
 * {@linkcode testConnect}; `await using` closes it with 1000.
 *
 * Messages are read in order, one per assertion, so every message the peer
 * sends must be asserted or read: {@linkcode TestConnection.closedWith}
 * fails if one is left before the close.
 *
 * @example
 * ```ts
 * import { testServer } from "@anyws/anyws/testing";
 *
 * await using server = testServer({
 *   onEstablish(conn) { conn.send("welcome").close(4000, "done"); },
 * });
 * await using ws = await server.connect();
 * await ws.messageMatches(/^wel/);
 * await ws.closedWith(4000, "done");
 * ```
 */
export class TestConnection implements AsyncDisposable {
  /** The connection under test, for anything the kit does not cover. */
  readonly connection: Connection;
  readonly #timeout: number;

  /**
   * Wraps a connection made some other way (e.g. a reconnecting client).
   *
   * @param connection The connection to read from; nothing else should read
   * from it (handlers, listeners, other readers).
   * @param options The wait bound.
   * @throws {RangeError} If `timeout` is not a positive number.
   *
   * @example
   * ```ts
   * import { connect } from "@anyws/anyws";
   * import { TestConnection, testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({ onEstablish(conn) { conn.send("hi"); } });
   * const conn = await connect(server.url(), { protocols: [] });
   * await using ws = new TestConnection(conn, { timeout: 2000 });
   * await ws.messageIs("hi");
   * ```
   */
  constructor(connection: Connection, options: TestOptions = {}) {
    this.connection = connection;
    this.#timeout = checkTimeout(options.timeout ?? DEFAULT_TIMEOUT);
  }

  /**
   * Sends a message (Test::Mojo's `send_ok`): a string as text, binary data
   * as binary, a {@linkcode Message} by its opcode.
   *
   * @param data What to send.
   * @returns This connection, to chain sends.
   * @throws {TypeError} For data that cannot be sent.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   onEstablish(conn) { conn.on("message", (conn, m) => conn.send(m)); },
   * });
   * await using ws = await server.connect();
   * ws.send("a").send("b");
   * await ws.messageIs("a");
   * await ws.messageIs("b");
   * ```
   */
  send(data: SendData): this {
    this.connection.send(data);
    return this;
  }

  /**
   * Sends a value as a JSON text message ({@linkcode Message.fromJSON}).
   *
   * @param value The value.
   * @returns This connection, to chain sends.
   * @throws {TypeError} If JSON cannot represent the value.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   onEstablish(conn) {
   *     conn.on("each_message", (conn, m) => conn.send(`${m.json<{ n: number }>().n}`));
   *   },
   * });
   * await using ws = await server.connect();
   * ws.sendJSON({ n: 42 });
   * await ws.messageIs("42");
   * ```
   */
  sendJSON(value: unknown): this {
    this.connection.send(Message.fromJSON(value));
    return this;
  }

  /**
   * Waits for the next message (Test::Mojo's `message_ok`).
   *
   * @param description What the message is, for the failure message.
   * @returns The message.
   * @throws {AssertionError} When nothing arrives within the timeout, or the
   * connection closes first (with its code and reason).
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   * import { assertEquals } from "@std/assert";
   *
   * await using server = testServer({ onEstablish(conn) { conn.send("hi"); } });
   * await using ws = await server.connect();
   * const message = await ws.nextMessage("the greeting");
   * assertEquals(message.decodedBody(), "hi");
   * ```
   */
  async nextMessage(description?: string): Promise<Message> {
    return await this.#receive("a message", description);
  }

  /**
   * Asserts that the next message is this text (for a string) or these bytes
   * (for binary data), and of that type (Test::Mojo's `message_is`).
   *
   * @param expected A string for a text message, or the bytes of a binary
   * message.
   * @param description What the message is, for the failure message.
   * @returns The message.
   * @throws {AssertionError} When another message comes (shown, with where
   * it first differs), nothing comes, or the connection closes first.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   onEstablish(conn) { conn.send("text").send(new Uint8Array([0xff])); },
   * });
   * await using ws = await server.connect();
   * await ws.messageIs("text");
   * await ws.messageIs(new Uint8Array([0xff]));
   * ```
   */
  async messageIs(
    expected: string | ArrayBuffer | ArrayBufferView,
    description?: string,
  ): Promise<Message> {
    if (typeof expected === "string") {
      const want = `text ${quoteText(expected)}`;
      const message = await this.#receive(want, description);
      const got = message.isText() ? message.decodedBody() : undefined;
      if (got !== expected) {
        const at = got === undefined ? -1 : firstDifference(got, expected);
        this.#fail(
          want,
          `got ${describeMessage(message)}${
            at < 0 ? "" : ` (they differ from character ${at})`
          }`,
          description,
        );
      }
      return message;
    }
    const bytes = toBytes(expected);
    const want = describeBytes(bytes);
    const message = await this.#receive(want, description);
    const got = message.isBinary() ? message.body : undefined;
    const at = got === undefined ? -2 : firstByteDifference(got, bytes);
    if (at !== -1) {
      this.#fail(
        want,
        `got ${describeMessage(message)}${
          at < 0 ? "" : ` (they differ from byte ${at})`
        }`,
        description,
      );
    }
    return message;
  }

  /**
   * Asserts that the next message is text that matches `pattern`
   * (Test::Mojo's `message_like`).
   *
   * @param pattern The regular expression.
   * @param description What the message is, for the failure message.
   * @returns The message.
   * @throws {AssertionError} When a binary message or text that does not
   * match comes, nothing comes, or the connection closes first.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({ onEstablish(conn) { conn.send(`id ${crypto.randomUUID()}`); } });
   * await using ws = await server.connect();
   * await ws.messageMatches(/^id [0-9a-f-]{36}$/);
   * ```
   */
  async messageMatches(
    pattern: RegExp,
    description?: string,
  ): Promise<Message> {
    const want = `text matching ${pattern}`;
    const message = await this.#receive(want, description);
    if (!message.isText() || !matches(pattern, message.decodedBody())) {
      this.#fail(want, `got ${describeMessage(message)}`, description);
    }
    return message;
  }

  /**
   * Reads the next message as JSON text.
   *
   * @typeParam T The expected shape; not checked at run time.
   * @param description What the message is, for the failure message.
   * @returns The parsed value.
   * @throws {AssertionError} When the message is not JSON text (binary, or
   * text that does not parse: shown, with the parser's complaint), nothing
   * comes, or the connection closes first.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   * import { assert } from "@std/assert";
   *
   * await using server = testServer({
   *   onEstablish(conn) { conn.send(JSON.stringify({ at: Date.now() })); },
   * });
   * await using ws = await server.connect();
   * const { at } = await ws.jsonMessage<{ at: number }>();
   * assert(at > 0);
   * ```
   */
  async jsonMessage<T = unknown>(description?: string): Promise<T> {
    const want = "a JSON text message";
    const message = await this.#receive(want, description);
    return this.#parse<T>(message, want, description);
  }

  /**
   * Asserts that the next message is JSON text equal to `expected` (deep
   * equality; Test::Mojo's `json_message_is`).
   *
   * @param expected The value the JSON should parse to.
   * @param description What the message is, for the failure message.
   * @returns The parsed value.
   * @throws {AssertionError} With a diff when the value differs; as
   * {@linkcode TestConnection.jsonMessage} otherwise.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   onEstablish(conn) { conn.send('{"type":"hello","v":[1,2]}'); },
   * });
   * await using ws = await server.connect();
   * await ws.jsonMessageIs({ type: "hello", v: [1, 2] });
   * ```
   */
  async jsonMessageIs<T>(expected: T, description?: string): Promise<T> {
    const want = `the JSON ${
      showJSON(JSON.stringify(expected) ?? "undefined")
    }`;
    const message = await this.#receive(want, description);
    const value = this.#parse<T>(message, want, description);
    assertEquals(
      value,
      expected,
      `${prefix(description)}Expected ${want}, got ${
        showJSON(message.decodedBody())
      }`,
    );
    return value;
  }

  /**
   * Asserts that the next message is a JSON object holding at least the
   * properties of `expected`, compared deeply (others are ignored; after
   * Test::Mojo's `json_message_has`). Handy for messages with timestamps or
   * ids.
   *
   * @param expected The properties the object must have.
   * @param description What the message is, for the failure message.
   * @returns The whole parsed object.
   * @throws {AssertionError} With a diff when a property differs or is
   * missing; as {@linkcode TestConnection.jsonMessage} otherwise.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   onEstablish(conn) {
   *     conn.send(JSON.stringify({ type: "said", text: "hi", at: Date.now() }));
   *   },
   * });
   * await using ws = await server.connect();
   * const said = await ws.jsonMessageMatches({ type: "said", text: "hi" });
   * console.log(said.at);
   * ```
   */
  async jsonMessageMatches(
    expected: Record<PropertyKey, unknown>,
    description?: string,
  ): Promise<Record<PropertyKey, unknown>> {
    const want = `a JSON object with ${showJSON(JSON.stringify(expected))}`;
    const message = await this.#receive(want, description);
    const value = this.#parse<unknown>(message, want, description);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.#fail(want, `got ${showJSON(message.decodedBody())}`, description);
    }
    const object = value as Record<PropertyKey, unknown>;
    assertObjectMatch(
      object,
      expected,
      `${prefix(description)}Expected ${want}, got ${
        showJSON(message.decodedBody())
      }`,
    );
    return object;
  }

  /**
   * Asserts that no message arrives for a while. A connection that closes
   * meanwhile passes (nothing can arrive any more). To assert that nothing
   * arrives before the end, {@linkcode TestConnection.closedWith} is
   * exact and needs no quiet period.
   *
   * @param quiet How long to listen, in milliseconds.
   * @param description What should not come, for the failure message.
   * @returns Settles after `quiet` ms of silence, or at the close.
   * @throws {AssertionError} When a message arrives (it is shown).
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({ onEstablish() {} });
   * await using ws = await server.connect();
   * await ws.noMessage(50);
   * ```
   */
  async noMessage(
    quiet: number = DEFAULT_QUIET,
    description?: string,
  ): Promise<void> {
    checkTimeout(quiet, "quiet");
    let message: Message;
    try {
      message = await this.connection.nextMessage({ timeout: quiet });
    } catch (error) {
      if (error instanceof ConnectionClosedError) return;
      if (isTimeout(error)) return;
      throw error;
    }
    this.#fail(
      `no message for ${quiet} ms`,
      `got ${describeMessage(message)}`,
      description,
    );
  }

  /**
   * Waits for the connection to close and asserts how (Test::Mojo's
   * `finished_ok`), and that no message was left unread before the close.
   * Does not close it: the peer must.
   *
   * @param code The close code expected; any passes without it.
   * @param reason The close reason expected (a string, or a pattern); any
   * passes without it.
   * @returns How the connection closed.
   * @throws {AssertionError} When a message comes first (shown), the code or
   * reason differs, or the connection is still open after the timeout.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({
   *   maxMessageSize: 4,
   *   onEstablish() {},
   * });
   * await using ws = await server.connect();
   * ws.send("too long");
   * await ws.closedWith(1009, "message too big");
   * ```
   */
  async closedWith(
    code?: number,
    reason?: string | RegExp,
  ): Promise<CloseInfo> {
    const want = `the close${code === undefined ? "" : ` with ${code}`}${
      reason === undefined
        ? ""
        : typeof reason === "string"
        ? ` ${JSON.stringify(reason)}`
        : ` and a reason matching ${reason}`
    }`;
    let message: Message;
    try {
      message = await this.connection.nextMessage({ timeout: this.#timeout });
    } catch (error) {
      if (isTimeout(error)) {
        this.#fail(
          want,
          `but the connection is still open after ${this.#timeout} ms`,
        );
      }
      if (!(error instanceof ConnectionClosedError)) throw error;
      const info = await this.connection.closed;
      const reasonOk = reason === undefined ||
        (typeof reason === "string"
          ? info.reason === reason
          : matches(reason, info.reason));
      if ((code !== undefined && info.code !== code) || !reasonOk) {
        this.#fail(want, `but it closed with ${describeClose(info)}`);
      }
      return info;
    }
    this.#fail(want, `but a message came first: ${describeMessage(message)}`);
  }

  /**
   * Closes the connection and waits for the close handshake (Test::Mojo's
   * `finish_ok`). Messages still unread are dropped.
   *
   * @param code The close code; the client side may send 1000 or 3000-4999.
   * @default {1000}
   * @param reason The close reason (at most 123 UTF-8 bytes).
   * @returns How the connection closed (the code the peer answered with).
   * @throws {RangeError} For a code the client may not send or a reason too
   * long.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   * import { assertEquals } from "@std/assert";
   *
   * await using server = testServer({ onEstablish() {} });
   * const ws = await server.connect();
   * const { code, reason } = await ws.close(4000, "done");
   * assertEquals([code, reason], [4000, "done"]);
   * ```
   */
  async close(code = 1000, reason?: string): Promise<CloseInfo> {
    return await this.connection.close(code, reason).closed;
  }

  /**
   * Closes with 1000, for `await using`.
   *
   * @example
   * ```ts
   * import { testServer } from "@anyws/anyws/testing";
   *
   * await using server = testServer({ onEstablish() {} });
   * {
   *   await using ws = await server.connect();
   *   ws.send("bye");
   * } // closed here
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The next message, or a failure saying nothing came or the close did. */
  async #receive(want: string, description?: string): Promise<Message> {
    try {
      return await this.connection.nextMessage({ timeout: this.#timeout });
    } catch (error) {
      if (isTimeout(error)) {
        this.#fail(
          want,
          `but nothing arrived within ${this.#timeout} ms`,
          description,
        );
      }
      if (error instanceof ConnectionClosedError) {
        const info = await this.connection.closed;
        this.#fail(
          want,
          `but the connection closed first, with ${describeClose(info)}`,
          description,
        );
      }
      throw error;
    }
  }

  #parse<T>(message: Message, want: string, description?: string): T {
    try {
      return message.json<T>();
    } catch (error) {
      this.#fail(
        want,
        message.isText()
          ? `but the text is not JSON: ${(error as Error).message}`
          : `got ${describeMessage(message)}`,
        description,
        error,
      );
    }
  }

  #fail(
    want: string,
    got: string,
    description?: string,
    cause?: unknown,
  ): never {
    // `got` is "got <what came>" or "but <what happened>".
    throw new AssertionError(
      `${prefix(description)}Expected ${want}, ${got}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Starts a server for a test, on a free loopback port: from the options an
 * application passes to `serve()`, a fetch handler (e.g. `createHandler()`'s),
 * or a `deno serve` module's default export. `await using` stops it.
 *
 * @param app The application (see {@linkcode TestApp}).
 * @param options The wait bound of its connections, and the address.
 * @returns The running server.
 * @throws {TypeError} For options without `onEstablish`, as `serve()`.
 *
 * @example The `deno serve` module an application ships
 * ```ts
 * import { createHandler } from "@anyws/anyws";
 * import { testServer } from "@anyws/anyws/testing";
 *
 * // main.ts would say: export default app;
 * const app = {
 *   fetch: createHandler({
 *     path: "/echo",
 *     onEstablish(conn) { conn.on("message", (conn, m) => conn.send(m)); },
 *     fallback: () => new Response("hello"),
 *   }),
 * };
 *
 * await using server = testServer(app);
 * await using ws = await server.connect("/echo");
 * ws.send("ping");
 * await ws.messageIs("ping");
 * ```
 */
export function testServer(
  app: TestApp,
  options: TestServerOptions = {},
): TestServer {
  return new TestServer(app, options);
}

/**
 * Connects to a WebSocket URL for a test (Test::Mojo's `websocket_ok`), for
 * servers the test did not start in its own process (e.g. a spawned
 * example).
 *
 * @param url The `ws:` or `wss:` URL.
 * @param options Subprotocols, headers, limits and the wait bound (which
 * also bounds the handshake).
 * @returns The connection to assert on; `await using` closes it.
 * @throws {AssertionError} When the handshake fails; `cause` is the
 * {@linkcode ConnectError}.
 *
 * @example
 * ```ts
 * import { serve } from "@anyws/anyws";
 * import { testConnect } from "@anyws/anyws/testing";
 *
 * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi"); } });
 * await using ws = await testConnect(`ws://127.0.0.1:${server.addr.port}/`);
 * await ws.messageIs("hi");
 * ```
 */
export async function testConnect(
  url: string | URL,
  options: TestConnectOptions = {},
): Promise<TestConnection> {
  const timeout = checkTimeout(options.timeout ?? DEFAULT_TIMEOUT);
  let conn: Connection;
  try {
    conn = await connect(url, { ...options, timeout });
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    throw new AssertionError(
      `Expected a WebSocket handshake at ${url}, but it failed: ${error.message}`,
      { cause: error },
    );
  }
  return new TestConnection(conn, { timeout });
}

/** JSON text as it is (it needs no quoting), cut when long. */
function showJSON(text: string): string {
  return text.length <= 200
    ? text
    : `${text.slice(0, 200)}… (${text.length} characters)`;
}

function prefix(description: string | undefined): string {
  return description ? `${description}: ` : "";
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

function matches(pattern: RegExp, text: string): boolean {
  // A global or sticky pattern keeps lastIndex between calls: start afresh.
  pattern.lastIndex = 0;
  return pattern.test(text);
}

function toBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  throw new TypeError(
    "Cannot compare a message: expected a string, an ArrayBuffer or an ArrayBufferView",
  );
}

function checkTimeout(ms: number, name = "timeout"): number {
  if (typeof ms !== "number" || !(ms > 0) || !Number.isFinite(ms)) {
    throw new RangeError(
      `Cannot wait: ${name} must be a positive number of milliseconds, got ${ms}`,
    );
  }
  return ms;
}
