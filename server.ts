/**
 * The server side, after Perl's Plack::App::WebSocket: {@linkcode serve}
 * starts `Deno.serve` and hands each upgraded socket to `onEstablish` as a
 * {@linkcode Connection}. {@linkcode createHandler} and {@linkcode upgrade} are
 * the same machinery for `deno serve`, Deno Deploy and existing routers.
 *
 * @example An echo server
 * ```ts
 * import { serve } from "@anyws/anyws/server";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen({ port }) { console.log(`ws://127.0.0.1:${port}`); },
 *   onEstablish(conn) {
 *     conn.on("message", (conn, message) => conn.send(message));
 *   },
 * });
 * ```
 *
 * @module
 */

import { Connection, type ConnectionOptions } from "./connection.ts";
import {
  type ConnectionLimits,
  RESOLVED_LIMITS,
  type ResolvedOptions,
  resolveLimits,
} from "./connection_options.ts";
import {
  type Authorize,
  checkOrigin,
  type OriginOptions,
  runAuthorize,
} from "./handshake.ts";
import { CLOSE_CODE, type SendData, toSendable } from "./message.ts";
import { type Broker, type PublishData, Topics } from "./topics.ts";
import { Listener, type ServeWithHandler } from "./_server/listener.ts";

/** Chooses a subprotocol from the ones the client offered, or none. */
export type ProtocolChooser = (
  offered: string[],
  request: Request,
) => string | undefined;

/** Options for {@linkcode upgrade}. */
export interface UpgradeOptions
  extends ConnectionLimits, Pick<ConnectionOptions, "topics">, OriginOptions {
  /**
   * Subprotocols this server speaks, in order of preference, or a function
   * that picks one of those the client offered. Exactly one is echoed in
   * `Sec-WebSocket-Protocol`; when none matches, the handshake goes ahead
   * without one (RFC 6455 lets the client decide).
   */
  protocols?: readonly string[] | ProtocolChooser;
  /**
   * Seconds without any received frame before Deno sends a ping; after as
   * long again with no answer, Deno closes with 1001 "No response from ping
   * frame." and the connection finishes with an error. `0` turns it off.
   *
   * @default {30} (Deno's default)
   */
  idleTimeout?: number;
}

/** What {@linkcode upgrade} returns. */
export type UpgradeResult =
  | { response: Response; connection: Connection; error?: undefined }
  | { response: Response; connection?: undefined; error: HandshakeError };

/** Options for {@linkcode createHandler}. */
export interface HandlerOptions extends UpgradeOptions {
  /**
   * Admits or refuses each valid upgrade request (after the `origins`
   * check), before upgrading; may be async. Return a `Response` to refuse
   * with it (e.g. 401), `false` for 403, or `{ data }` to accept and set
   * {@linkcode Connection.data}. A throw is answered 500 with a fixed body.
   */
  authorize?: Authorize;
  /**
   * Carries topic publishes beyond this process (see topics.ts): a
   * `BroadcastChannelBroker` for `deno serve --parallel` workers, a
   * `RedisBroker` (`@anyws/anyws/redis`) for several processes or machines.
   * The handler's registry owns it: `Server.shutdown()` closes it (a
   * `createHandler()` handler never closes it). Give `broker` or `topics`,
   * not both.
   *
   * @default {new MemoryBroker()} (this process only)
   */
  broker?: Broker | undefined;
  /**
   * Called with each established connection (Plack `on_establish`), once the
   * socket is open. Register handlers right away: nothing is dispatched
   * before this task ends. If it throws (or its promise rejects), that
   * connection is closed with 1011 and the error is logged; the server goes on.
   */
  onEstablish(
    conn: Connection,
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): unknown;
  /**
   * Answers a request that could not be upgraded (Plack `on_error`). The
   * default answers with the error's status: 400 "The request is invalid for
   * a WebSocket request.", 426 with `Sec-WebSocket-Version: 13`, or 500.
   */
  onError?(
    request: Request,
    error: HandshakeError,
  ): Response | Promise<Response>;
  /**
   * Upgrade only at this path (e.g. `"/ws"`); other paths go to `fallback`
   * (or get 404).
   */
  path?: string;
  /**
   * Answers ordinary HTTP requests (not upgrades, or other paths). Without
   * it, a non-upgrade request gets 426 Upgrade Required.
   */
  fallback?(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Response | Promise<Response>;
}

/** Options for {@linkcode serve}. */
export interface ServeOptions extends HandlerOptions {
  /** The port to listen on; `0` picks a free one. @default {8000} */
  port?: number;
  /** The address to listen on. @default {"0.0.0.0"} */
  hostname?: string;
  /** Aborting it shuts the server down as {@linkcode Server.shutdown} does. */
  signal?: AbortSignal;
  /** Called once listening. Without it, Deno logs the address. */
  onListen?(addr: Deno.NetAddr): void;
  /**
   * Called when the server stops accepting connections because the process
   * (or the system) ran out of file descriptors (EMFILE/ENFILE: `ulimit -n`
   * reached, e.g. by idle connections). The server keeps its open
   * connections and listens again on the same address, trying every
   * 100–400 ms, as soon as descriptors free up; `finished` does not settle.
   * Called once per episode: not again until the server has served a
   * request after listening again.
   *
   * @default {logs one line with console.error}
   */
  onListenError?(error: Error): void;
  /** A PEM certificate chain, to serve `wss:` (with `key`). */
  cert?: string;
  /** The PEM private key for `cert`. */
  key?: string;
}

/** Options for {@linkcode Server.shutdown}. */
export interface ShutdownOptions {
  /**
   * How long to wait, in milliseconds, for connections to finish their close
   * handshake before stopping anyway. Connections that did not answer are
   * then finished at once with 1006 and an error.
   *
   * @default {5000}
   */
  timeout?: number;
}

/**
 * Why a request could not be upgraded. `status` is the HTTP status it is
 * answered with.
 *
 * @example
 * ```ts
 * import { HandshakeError } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * const error = new HandshakeError(426, "Unsupported Sec-WebSocket-Version: 8");
 * assertEquals((await error.toResponse().text()).length > 0, true);
 * ```
 */
export class HandshakeError extends Error {
  /** The HTTP status this error is answered with. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param status The HTTP status to answer with.
   * @param message What was wrong, for logs (never sent to the peer).
   * @param options Standard error options (`cause`).
   *
   * @example
   * ```ts
   * import { HandshakeError } from "@anyws/anyws/server";
   *
   * console.log(new HandshakeError(400, "Missing Sec-WebSocket-Key").status);
   * ```
   */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HandshakeError";
    this.status = status;
  }

  /**
   * The default answer: a fixed body per status, never the error's details.
   *
   * @returns The HTTP response.
   *
   * @example
   * ```ts
   * import { HandshakeError } from "@anyws/anyws/server";
   * import { assertEquals } from "@std/assert";
   *
   * const response = new HandshakeError(426, "old client").toResponse();
   * assertEquals(response.headers.get("sec-websocket-version"), "13");
   * ```
   */
  toResponse(): Response {
    const headers = new Headers({ "content-type": "text/plain;charset=utf-8" });
    let body: string;
    if (this.status === 400) {
      body = "The request is invalid for a WebSocket request.";
    } else if (this.status === 426) {
      body = "Upgrade Required: this endpoint speaks WebSocket version 13.";
      headers.set("upgrade", "websocket");
      headers.set("sec-websocket-version", "13");
    } else if (this.status === 403) {
      body = "Forbidden";
    } else if (this.status === 404) {
      body = "Not Found";
    } else if (this.status === 503) {
      body = "Service Unavailable";
    } else {
      body = "Internal Server Error";
    }
    return new Response(body, { status: this.status, headers });
  }
}

const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/**
 * Whether a request asks to be upgraded to WebSocket (`Upgrade: websocket`).
 *
 * @param request The request.
 * @returns `true` when the `Upgrade` header names `websocket`.
 *
 * @example
 * ```ts
 * import { isUpgradeRequest } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(isUpgradeRequest(new Request("http://x/")), false);
 * ```
 */
export function isUpgradeRequest(request: Request): boolean {
  return hasToken(request.headers.get("upgrade"), "websocket");
}

/**
 * Splits a `Sec-WebSocket-Protocol` header on commas, trimming whitespace
 * (Deno itself splits only on `", "`).
 *
 * @param header The header value, or `null`.
 * @returns The offered protocols, in order.
 *
 * @example
 * ```ts
 * import { parseProtocols } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(parseProtocols("chat,json , v2"), ["chat", "json", "v2"]);
 * ```
 */
export function parseProtocols(header: string | null): string[] {
  if (!header) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * Upgrades one request, for routers and hand-written handlers. It never
 * throws for a bad handshake: it returns an error and the HTTP response to
 * send instead. The connection's sends are queued until the socket opens.
 *
 * @param request The incoming request.
 * @param options Subprotocols, limits and `idleTimeout`.
 * @param info The serve handler info, for {@linkcode Connection.remoteAddr}.
 * @returns The response to return, and the connection or the error.
 * @throws {RangeError} If a connection limit (`maxMessageSize`, ...) is out
 * of range: a programming error, not a bad handshake.
 *
 * @example With Deno.serve
 * ```ts
 * import { upgrade } from "@anyws/anyws/server";
 *
 * const server = Deno.serve({ port: 0, onListen() {} }, (request, info) => {
 *   if (new URL(request.url).pathname !== "/ws") return new Response("hello");
 *   const { response, connection } = upgrade(request, {}, info);
 *   connection?.on("message", (conn, message) => conn.send(message));
 *   return response;
 * });
 * await server.shutdown();
 * ```
 */
export function upgrade(
  request: Request,
  options: UpgradeOptions = {},
  info?: Deno.ServeHandlerInfo,
): UpgradeResult {
  const limits = (options as ResolvedOptions)[RESOLVED_LIMITS] ??
    resolveLimits(options);
  const problem = checkHandshake(request) ?? refuseOrigin(request, options);
  if (problem) return { response: problem.toResponse(), error: problem };

  const offered = parseProtocols(request.headers.get("sec-websocket-protocol"));
  let protocol: string | undefined;
  try {
    protocol = chooseProtocol(options.protocols, offered, request);
  } catch (error) {
    const failure = new HandshakeError(
      500,
      `The protocols chooser failed: ${(error as Error).message}`,
      { cause: error },
    );
    return { response: failure.toResponse(), error: failure };
  }

  // Deno throws "Request closed" if the info is read after upgrading.
  const remoteAddr = info?.remoteAddr as Deno.NetAddr | undefined;
  const readableRequest = readableCopy(request); // before upgrading: see there
  const url = request.url;
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(
      protocol === undefined ? request : offerAsDenoSplitsIt(request, offered),
      {
        ...(protocol === undefined ? {} : { protocol }),
        ...(options.idleTimeout === undefined
          ? {}
          : { idleTimeout: options.idleTimeout }),
      },
    );
  } catch (error) {
    const failure = new HandshakeError(
      400,
      `Deno refused the upgrade: ${(error as Error).message}`,
      { cause: error },
    );
    return { response: failure.toResponse(), error: failure };
  }
  const connection = new Connection(upgraded.socket, {
    role: "server",
    request: readableRequest,
    url,
    remoteAddr,
    subprotocol: protocol,
    [RESOLVED_LIMITS]: limits,
    topics: options.topics,
  } as ResolvedOptions);
  return { response: upgraded.response, connection };
}

/**
 * Builds a fetch handler that upgrades WebSocket requests and hands each
 * connection to `onEstablish`: for `export default { fetch }` under
 * `deno serve` and on Deno Deploy, or inside another router.
 *
 * @param options `onEstablish` (required) and the other handler options.
 * @returns A handler `(request, info?) => Promise<Response>` that never throws.
 * @throws {TypeError} If `onEstablish` is missing or not a function.
 * @throws {RangeError} If a connection limit (`maxMessageSize`, ...) is out
 * of range.
 *
 * @example Deno Deploy / deno serve
 * ```ts
 * import { createHandler } from "@anyws/anyws/server";
 *
 * export default {
 *   fetch: createHandler({
 *     onEstablish(conn) {
 *       conn.on("message", (conn, message) => conn.send(message));
 *     },
 *     fallback: () => new Response("WebSocket endpoint"),
 *   }),
 * };
 * ```
 */
export function createHandler(
  options: HandlerOptions,
): (request: Request, info?: Deno.ServeHandlerInfo) => Promise<Response> {
  return buildHandler(options, undefined);
}

/**
 * Starts `Deno.serve` and upgrades WebSocket requests, handing each
 * connection to `onEstablish`.
 *
 * @param options Listening options and the handler options.
 * @returns The running server.
 * @throws {TypeError} If `onEstablish` is missing or not a function.
 * @throws {RangeError} If a connection limit (`maxMessageSize`, ...) is out
 * of range.
 *
 * @example Echo, and "quit" closes (the Plack synopsis)
 * ```ts
 * import { serve } from "@anyws/anyws/server";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen({ port }) { console.log(`listening on ${port}`); },
 *   onEstablish(conn) {
 *     conn.on("message", (conn, message) => {
 *       if (message === "quit") conn.close();
 *       else conn.send(message);
 *     });
 *     conn.on("finish", () => console.log("closed"));
 *   },
 * });
 * ```
 */
export function serve(options: ServeOptions): Server {
  return new Server(options);
}

/**
 * A running WebSocket server, returned by {@linkcode serve}.
 *
 * @example Broadcast and shut down
 * ```ts
 * import { serve } from "@anyws/anyws/server";
 *
 * const server = serve({ port: 0, onListen() {}, onEstablish() {} });
 * server.broadcast("to everyone");
 * await server.shutdown();
 * ```
 */
export class Server implements AsyncDisposable {
  readonly #http: Listener;
  #connections = new Set<Connection>();
  #shutdown: Promise<void> | undefined;
  readonly #topics: Topics;
  readonly #ownsTopics: boolean;

  /**
   * Starts the server; prefer {@linkcode serve}.
   *
   * @param options As for {@linkcode serve}.
   * @throws {TypeError} If `onEstablish` is missing or not a function.
   * @throws {RangeError} If a connection limit is out of range.
   *
   * @example
   * ```ts
   * import { Server } from "@anyws/anyws/server";
   *
   * await using server = new Server({ port: 0, onListen() {}, onEstablish() {} });
   * ```
   */
  constructor(options: ServeOptions) {
    this.#topics = handlerTopics(options);
    this.#ownsTopics = options.topics === undefined;
    const withTopics = { ...options, topics: this.#topics, broker: undefined };
    const handler = buildHandler(withTopics, (conn) => {
      this.#connections.add(conn);
      conn.closed.then(() => this.#connections.delete(conn));
    });
    this.#http = new Listener(
      {
        ...(options.port === undefined ? {} : { port: options.port }),
        ...(options.hostname === undefined
          ? {}
          : { hostname: options.hostname }),
        ...(options.onListen === undefined
          ? {}
          : { onListen: options.onListen }),
        ...(options.cert === undefined ? {} : { cert: options.cert }),
        ...(options.key === undefined ? {} : { key: options.key }),
        // Once shutdown() starts, nothing new is accepted.
        handler: (request: Request, info: Deno.ServeHandlerInfo) =>
          this.#shutdown
            ? new HandshakeError(503, "the server is shutting down")
              .toResponse()
            : handler(request, info),
      } as ServeWithHandler,
      { onListenError: options.onListenError },
    );
    options.signal?.addEventListener("abort", () => this.shutdown(), {
      once: true,
    });
  }

  /** The address the server listens on (read `port` after `port: 0`). */
  get addr(): Deno.NetAddr {
    return this.#http.addr;
  }

  /** The live connections: added when upgraded, removed when finished. */
  get connections(): ReadonlySet<Connection> {
    return this.#connections;
  }

  /** Settles when the server has stopped. */
  get finished(): Promise<void> {
    return this.#http.finished;
  }

  /**
   * Sends one message to every open connection (or those `filter` accepts).
   * The data is normalised once, not once per connection. Each send goes
   * through {@linkcode Connection.send}, so a reader that stopped reading
   * holds at most its `maxBufferedAmount` and is then closed with 1008; the
   * others keep receiving.
   *
   * @param data What to send, as for {@linkcode Connection.send}.
   * @param filter Chooses the recipients.
   * @returns How many connections it was sent to.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws/server";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * console.log(server.broadcast("hi", (conn) => conn.subprotocol === "chat"));
   * ```
   */
  broadcast(data: SendData, filter?: (conn: Connection) => boolean): number {
    const payload = toSendable(data);
    let sent = 0;
    for (const conn of this.#connections) {
      if (conn.readyState !== WebSocket.OPEN) continue;
      if (filter && !filter(conn)) continue;
      conn.send(payload);
      sent++;
    }
    return sent;
  }

  /**
   * The topic registry of this server's connections (given as the `topics`
   * option, or made over the `broker` option).
   */
  get topics(): Topics {
    return this.#topics;
  }

  /**
   * Sends a message to every subscriber of `topic`: this server's at once,
   * other processes' through the broker. The data is normalised once; text
   * stays text, binary stays binary.
   *
   * @param topic A non-empty string.
   * @param data A string, binary data (not a `Blob`) or a text/binary
   * `Message`.
   * @returns Settles once the broker has the message; rejects if the broker
   * could not send it (an unawaited rejection crashes nothing).
   * @throws {TypeError} For a bad topic or data that cannot be published.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws/server";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   onEstablish: (conn) => conn.subscribe("news"),
   * });
   * await server.publish("news", "hello");
   * ```
   */
  publish(topic: string, data: PublishData): Promise<void> {
    return this.#topics.publish(topic, data);
  }

  /**
   * How many of this server's connections subscribe to `topic` (other
   * processes' subscribers are not counted).
   *
   * @param topic The topic.
   * @returns The number of local subscribers.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws/server";
   *
   * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * console.log(server.subscriberCount("news")); // 0
   * ```
   */
  subscriberCount(topic: string): number {
    return this.#topics.subscriberCount(topic);
  }

  /**
   * Stops accepting (new requests get 503), closes every connection with
   * 1001 "server shutting down", waits for their close handshakes (bounded
   * by `timeout`), finishes those that did not answer with 1006 and an error
   * ({@linkcode Connection.terminate}), then stops the HTTP server. Messages
   * sent before are delivered first: the close frame follows them. Calling
   * it again returns the same promise.
   *
   * @param options The wait bound.
   * @returns Settles once the server has stopped.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws/server";
   *
   * const server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * await server.shutdown({ timeout: 1000 });
   * ```
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    return this.#shutdown ??= this.#stop(options.timeout ?? 5000);
  }

  /**
   * Shuts down, for `await using`.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws/server";
   *
   * {
   *   await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
   * } // shut down here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #stop(timeout: number): Promise<void> {
    const open = [...this.#connections];
    for (const conn of open) {
      conn.close(CLOSE_CODE.GOING_AWAY, "server shutting down");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(open.map((conn) => conn.closed)),
      new Promise((resolve) => timer = setTimeout(resolve, timeout)),
    ]);
    clearTimeout(timer);
    // Peers that did not answer in time are finished now (1006, with an
    // error) rather than after their own close timeout.
    const late = new Error(
      `The peer did not answer the server's close within ${timeout} ms (shutdown timeout)`,
    );
    for (const conn of open) conn.terminate(late);
    await this.#http.shutdown();
    if (this.#ownsTopics) await this.#topics.close();
  }
}

function buildHandler(
  options: HandlerOptions,
  track: ((conn: Connection) => void) | undefined,
): (request: Request, info?: Deno.ServeHandlerInfo) => Promise<Response> {
  if (typeof options?.onEstablish !== "function") {
    throw new TypeError(
      "Cannot create a WebSocket handler: onEstablish must be a function (it receives each connection)",
    );
  }
  const { onEstablish, onError, path, fallback, authorize } = options;
  const upgradeOptions: UpgradeOptions = {
    ...options,
    topics: handlerTopics(options),
    [RESOLVED_LIMITS]: resolveLimits(options),
  } as ResolvedOptions & UpgradeOptions;
  const answerError = async (request: Request, error: HandshakeError) => {
    if (!onError) return error.toResponse();
    try {
      return await onError(request, error);
    } catch (thrown) {
      console.error("anyws: onError threw:", thrown);
      return new HandshakeError(500, "onError threw").toResponse();
    }
  };

  return async (request, info) => {
    try {
      const wrongPath = path !== undefined &&
        new URL(request.url).pathname !== path;
      if (wrongPath || !isUpgradeRequest(request)) {
        if (fallback) return await fallback(request, info);
        return await answerError(
          request,
          wrongPath
            ? new HandshakeError(404, `No WebSocket endpoint at this path`)
            : new HandshakeError(426, "Not a WebSocket upgrade request"),
        );
      }
      let data: unknown;
      if (authorize) {
        const refused = checkHandshake(request) ??
          refuseOrigin(request, options);
        if (refused) return await answerError(request, refused);
        let verdict;
        try {
          verdict = await runAuthorize(authorize, request, info);
        } catch (error) {
          console.error("anyws: authorize threw; answering 500:", error);
          return new HandshakeError(500, "authorize threw").toResponse();
        }
        if (!verdict.accepted) {
          return verdict.response ?? await answerError(
            request,
            new HandshakeError(403, "authorize refused the request"),
          );
        }
        data = verdict.data;
      }
      // Read before upgrading: Deno closes the request's info afterwards.
      const establishInfo = info && readableInfo(info);
      const result = upgrade(request, upgradeOptions, info);
      if (result.error) return await answerError(request, result.error);
      const conn = result.connection;
      if (authorize) conn.data = data;
      track?.(conn);
      conn.socket.addEventListener(
        "open",
        () => establish(onEstablish, conn, conn.request!, establishInfo),
        { once: true },
      );
      return result.response;
    } catch (error) {
      console.error("anyws: the request handler failed:", error);
      return new HandshakeError(500, "handler failed").toResponse();
    }
  };
}

/** The handler's topic registry: the one given, or a new one over `broker`. */
function handlerTopics(options: HandlerOptions): Topics {
  if (options.topics && options.broker) {
    throw new TypeError(
      "Cannot create a WebSocket handler: give either broker or topics, not both (a topic registry has its own broker)",
    );
  }
  return options.topics ?? new Topics({ broker: options.broker });
}

/**
 * Deno closes the upgrade request once the 101 response is returned: reading
 * its headers, or the serve info's `remoteAddr`, then throws "Request
 * closed". `onEstablish` and `conn.request` come later, so they get copies
 * made while the originals are still readable.
 */
function readableCopy(request: Request): () => Request {
  // Copying a Request costs about 4 KiB of heap, which every idle connection
  // would keep (bench/: memory per idle connection). Keep the header strings
  // (one flat array), build the copy when read, and hold it weakly: whoever
  // keeps it sees the same object each time; once nobody does, it goes.
  const { url, method } = request;
  const headers: string[] = [];
  for (const [name, value] of request.headers) headers.push(name, value);
  let copy: WeakRef<Request> | undefined;
  return () => {
    let readable = copy?.deref();
    if (!readable) {
      // Pairs are converted ~3x faster than a Headers built by append().
      const pairs: [string, string][] = [];
      for (let i = 0; i < headers.length; i += 2) {
        pairs.push([headers[i]!, headers[i + 1]!]);
      }
      readable = new Request(url, { method, headers: pairs });
      copy = new WeakRef(readable);
    }
    return readable;
  };
}

function readableInfo(info: Deno.ServeHandlerInfo): Deno.ServeHandlerInfo {
  return { remoteAddr: info.remoteAddr, completed: info.completed };
}

function establish(
  onEstablish: HandlerOptions["onEstablish"],
  conn: Connection,
  request: Request,
  info: Deno.ServeHandlerInfo | undefined,
): void {
  const failed = (error: unknown) => {
    console.error("anyws: onEstablish threw; closing with 1011:", error);
    conn.close(CLOSE_CODE.INTERNAL_ERROR, "internal error");
  };
  try {
    const result = onEstablish(conn, request, info);
    if (result instanceof Promise) result.catch(failed);
  } catch (error) {
    failed(error);
  }
}

function refuseOrigin(
  request: Request,
  options: OriginOptions,
): HandshakeError | undefined {
  const refused = checkOrigin(request, options);
  return refused === undefined ? undefined : new HandshakeError(403, refused);
}

function checkHandshake(request: Request): HandshakeError | undefined {
  const headers = request.headers;
  if (!isUpgradeRequest(request)) {
    return new HandshakeError(426, "Not a WebSocket upgrade request");
  }
  if (request.method !== "GET") {
    return new HandshakeError(
      400,
      `A WebSocket upgrade must use GET, not ${request.method}`,
    );
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    return new HandshakeError(
      400,
      'The Connection header must include "Upgrade"',
    );
  }
  const key = headers.get("sec-websocket-key");
  if (key === null || !KEY_PATTERN.test(key)) {
    return new HandshakeError(
      400,
      key === null
        ? "Missing Sec-WebSocket-Key"
        : "Sec-WebSocket-Key is not a base64-encoded 16-byte nonce",
    );
  }
  const version = headers.get("sec-websocket-version");
  if (version?.trim() !== "13") {
    return new HandshakeError(
      426,
      version === null
        ? "Missing Sec-WebSocket-Version (expected 13)"
        : `Unsupported Sec-WebSocket-Version: ${version} (expected 13)`,
    );
  }
  return undefined;
}

function chooseProtocol(
  protocols: UpgradeOptions["protocols"],
  offered: string[],
  request: Request,
): string | undefined {
  if (!protocols || offered.length === 0) return undefined;
  if (typeof protocols === "function") {
    const chosen = protocols(offered, request);
    if (chosen !== undefined && !offered.includes(chosen)) {
      throw new Error(
        `it chose "${chosen}", which the client did not offer (${
          offered.join(", ")
        })`,
      );
    }
    return chosen;
  }
  return protocols.find((protocol) => offered.includes(protocol));
}

/**
 * Deno splits the offered protocols only on ", " and refuses a protocol it
 * does not find, so "chat,json" (as Node's `ws` sends it) would fail. The
 * request's headers are immutable, and `new Request(request)` prints a
 * deprecation warning, so we hand Deno a view of the same request whose
 * headers list the protocols the way it splits them.
 */
function offerAsDenoSplitsIt(request: Request, offered: string[]): Request {
  const raw = request.headers.get("sec-websocket-protocol") ?? "";
  const canonical = offered.join(", ");
  if (raw === canonical) return request;
  const headers = new Headers(request.headers);
  headers.set("sec-websocket-protocol", canonical);
  return Object.create(request, { headers: { value: headers } });
}

function hasToken(header: string | null, token: string): boolean {
  if (!header) return false;
  return header.toLowerCase().split(",").some((part) => part.trim() === token);
}
