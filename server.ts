/**
 * The server side, after Perl's Plack::App::WebSocket: {@linkcode serve}
 * starts `Deno.serve` and hands each upgraded socket to `onEstablish` as a
 * {@linkcode Connection}. {@linkcode createHandler} and {@linkcode upgrade} are
 * the same machinery for `deno serve`, Deno Deploy and existing routers.
 *
 * @example An echo server
 * ```ts
import { serve } from "@anyws/anyws/server";
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

import { sendIfOpen } from "./_connection/send_if_open.ts";
import {
  LIFECYCLE,
  type Lifecycle,
  LIFECYCLE_CONTEXT,
} from "./_connection/lifecycle.ts";
import { Connection } from "./connection.ts";
import { RESOLVED_LIMITS, type ResolvedOptions } from "./connection_options.ts";
import {
  checkHandshake,
  chooseProtocol,
  HandshakeError,
  isUpgradeRequest,
  parseProtocols,
  runAuthorize,
} from "./handshake.ts";
import { CLOSE_CODE, type SendData, toSendable } from "./message.ts";
import { type PublishData, Topics } from "./topics.ts";
import { upgradeWithDeno } from "./_server/deno_upgrade.ts";
import { KeptRequest } from "./_server/kept_request.ts";
import { readsOnlyFirstArgument } from "./_server/establish_args.ts";
import { Listener, type ServeWithHandler } from "./_server/listener.ts";
import {
  checkHandlerOptions,
  type HandlerOptions,
  type PreparedUpgrade,
  prepareUpgrade,
  type ServeOptions,
  type ShutdownOptions,
  type UpgradeOptions,
} from "./_server/options.ts";

export {
  type Authorize,
  type AuthorizeResult,
  checkHandshake,
  checkOrigin,
  chooseProtocol,
  HandshakeError,
  isUpgradeRequest,
  type OriginAllowlist,
  type OriginOptions,
  parseProtocols,
  type ProtocolChooser,
  runAuthorize,
  type Verdict,
} from "./handshake.ts";
// The types this entry's signatures name, so that it works on its own.
export { Connection } from "./connection.ts";
export type { ConnectionLimits } from "./connection_options.ts";
export type { SendData } from "./message.ts";
export { type Broker, type PublishData, Topics } from "./topics.ts";
export type {
  HandlerOptions,
  ServeOptions,
  ShutdownOptions,
  UpgradeOptions,
} from "./_server/options.ts";

// WebSocket.OPEN, read once per recipient of a broadcast: `WebSocket` is a
// getter on Deno's global object (~8 ns a read).
const OPEN = 1;

/** What {@linkcode upgrade} returns. */
export type UpgradeResult =
  | { response: Response; connection: Connection; error?: undefined }
  | { response: Response; connection?: undefined; error: HandshakeError };

const UPGRADE = "Cannot upgrade";
const HANDLER = "Cannot create a WebSocket handler";

/**
 * Upgrades one request, for routers and hand-written handlers. It never
 * throws for a bad handshake: it returns an error and the HTTP response to
 * send instead. The connection's sends are queued until the socket opens.
 *
 * @param request The incoming request.
 * @param options Subprotocols, limits and `idleTimeout`.
 * @param info The serve handler info, for {@linkcode Connection.remoteAddr}.
 * @returns The response to return, and the connection or the error.
 * @throws {RangeError} If a connection limit (`maxMessageSize`, ...) or
 * `idleTimeout` is out of range: a programming error, not a bad handshake.
 * @throws {TypeError} If `protocols` or `origins` has the wrong type.
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
  const prepared = prepareUpgrade(options, UPGRADE);
  const refused = checkHandshake(request, prepared.origins);
  if (refused) return { response: refused.toResponse(), error: refused };
  const result = upgradeChecked<unknown>(request, prepared, info, undefined);
  if (result instanceof HandshakeError) {
    return { response: result.toResponse(), error: result };
  }
  return { response: result.response, connection: result.connection };
}

/**
 * Builds a fetch handler that upgrades WebSocket requests and hands each
 * connection to `onEstablish`: for `export default { fetch }` under
 * `deno serve` and on Deno Deploy, or inside another router.
 *
 * @typeParam Data The type of each connection's `data`, inferred from what
 * `authorize` returns.
 * @param options `onEstablish` (required) and the other handler options.
 * @returns A handler `(request, info?) => Promise<Response>` that never throws.
 * @throws {TypeError} If `onEstablish` is missing or not a function, another
 * hook is not a function, `path` does not start with "/", `protocols` or
 * `origins` has the wrong type, or both `broker` and `topics` are given.
 * @throws {RangeError} If a connection limit (`maxMessageSize`, ...) or
 * `idleTimeout` is out of range.
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
export function createHandler<Data = unknown>(
  options: HandlerOptions<Data>,
): (request: Request, info?: Deno.ServeHandlerInfo) => Promise<Response> {
  checkHandlerOptions(options as HandlerOptions<never>, HANDLER);
  const handler = buildHandler(options, handlerTopics(options), undefined);
  return (request, info) => Promise.resolve(handler(request, info));
}

/**
 * Starts `Deno.serve` and upgrades WebSocket requests, handing each
 * connection to `onEstablish`.
 *
 * @typeParam Data The type of each connection's `data`, inferred from what
 * `authorize` returns.
 * @param options Listening options and the handler options.
 * @returns The running server.
 * @throws {TypeError} If an option has the wrong type (as for
 * {@linkcode createHandler}).
 * @throws {RangeError} If a connection limit (`maxMessageSize`, ...) or
 * `idleTimeout` is out of range.
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
export function serve<Data = unknown>(
  options: ServeOptions<Data>,
): Server<Data> {
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
export class Server<Data = unknown> implements AsyncDisposable {
  readonly #http: Listener;
  #connections = new Set<Connection<Data>>();
  #shutdown: Promise<void> | undefined;
  readonly #topics: Topics;
  readonly #ownsTopics: boolean;

  /**
   * Starts the server; prefer {@linkcode serve}.
   *
   * @param options As for {@linkcode serve}.
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If a connection limit or `idleTimeout` is out of
   * range.
   *
   * @example
   * ```ts
   * import { Server } from "@anyws/anyws/server";
   *
   * await using server = new Server({ port: 0, onListen() {}, onEstablish() {} });
   * ```
   */
  constructor(options: ServeOptions<Data>) {
    checkHandlerOptions(options as HandlerOptions<never>, HANDLER);
    this.#topics = handlerTopics(options);
    this.#ownsTopics = options.topics === undefined;
    const handler = buildHandler(options, this.#topics, this.#connections);
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
  get connections(): ReadonlySet<Connection<Data>> {
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
  broadcast(
    data: SendData,
    filter?: (conn: Connection<Data>) => boolean,
  ): number {
    const payload = toSendable(data);
    let sent = 0;
    for (const conn of this.#connections) {
      // The filter sees open connections only.
      if (filter && (conn.readyState !== OPEN || !filter(conn))) continue;
      if (sendIfOpen(conn, payload)) sent++;
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

function buildHandler<Data>(
  options: HandlerOptions<Data>,
  topics: Topics,
  connections: Set<Connection<Data>> | undefined,
): (
  request: Request,
  info?: Deno.ServeHandlerInfo,
) => Response | Promise<Response> {
  const { onEstablish, onError, path, fallback, authorize } = options;
  const prepared = prepareUpgrade(options, HANDLER, topics);
  const answerError = async (request: Request, error: HandshakeError) => {
    if (!onError) return error.toResponse();
    try {
      return await onError(request, error);
    } catch (thrown) {
      console.error("anyws: onError threw:", thrown);
      return new HandshakeError(500, "onError threw").toResponse();
    }
  };

  // `(conn) => …` never sees the request copy: do not build it.
  const connOnly = readsOnlyFirstArgument(onEstablish);
  // One object for every connection of this handler.
  const lifecycle: Lifecycle = {
    opened: connOnly
      ? (conn) => establishConnection(onEstablish, conn as Connection<Data>)
      : (conn, context) => {
        const { kept, info } = context as EstablishContext;
        establish(
          onEstablish,
          conn as Connection<Data>,
          kept.establish(),
          info,
        );
      },
    finished: (conn) => connections?.delete(conn as Connection<Data>),
  };
  const failed = (error: unknown): Response => {
    console.error("anyws: the request handler failed:", error);
    return new HandshakeError(500, "handler failed").toResponse();
  };
  const upgradeNow = (
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    data: Data | undefined,
  ): Response | Promise<Response> => {
    // Read before upgrading: Deno closes the request's info afterwards.
    const establishInfo = connOnly ? undefined : info && readableInfo(info);
    const result = upgradeChecked(
      request,
      prepared,
      info,
      data,
      lifecycle,
      !connOnly,
      establishInfo,
    );
    if (result instanceof HandshakeError) return answerError(request, result);
    connections?.add(result.connection);
    return result.response;
  };
  const authorized = async (
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> => {
    let verdict;
    try {
      verdict = await runAuthorize(authorize!, request, info);
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
    try {
      return await upgradeNow(request, info, verdict.data);
    } catch (error) {
      return failed(error);
    }
  };
  // Synchronous unless something on the way is async (fallback, onError,
  // authorize): an async handler cost every handshake a promise and its
  // reactions.
  return (request, info) => {
    try {
      const wrongPath = path !== undefined &&
        new URL(request.url).pathname !== path;
      if (wrongPath || !isUpgradeRequest(request)) {
        if (fallback) {
          const answer = fallback(request, info);
          return answer instanceof Promise ? answer.catch(failed) : answer;
        }
        return answerError(
          request,
          wrongPath
            ? new HandshakeError(404, `No WebSocket endpoint at this path`)
            : new HandshakeError(426, "Not a WebSocket upgrade request"),
        );
      }
      const refused = checkHandshake(request, prepared.origins);
      if (refused) return answerError(request, refused);
      if (authorize) return authorized(request, info);
      return upgradeNow(request, info, undefined);
    } catch (error) {
      return failed(error);
    }
  };
}

/**
 * Upgrades a request that passed {@linkcode checkHandshake}: chooses the
 * subprotocol, keeps a bounded copy of the request (Deno closes it once the
 * 101 is sent) and makes the connection.
 */
function upgradeChecked<Data>(
  request: Request,
  prepared: PreparedUpgrade,
  info: Deno.ServeHandlerInfo | undefined,
  data: Data | undefined,
  lifecycle?: Lifecycle,
  keepAll = false,
  establishInfo?: Deno.ServeHandlerInfo,
):
  | { response: Response; connection: Connection<Data> }
  | HandshakeError {
  const offered = parseProtocols(request.headers.get("sec-websocket-protocol"));
  let protocol: string | undefined;
  try {
    protocol = chooseProtocol(prepared.protocols, offered, request);
  } catch (error) {
    if (error instanceof HandshakeError) return error;
    throw error;
  }
  // Deno throws "Request closed" if the info is read after upgrading.
  const remoteAddr = info?.remoteAddr as Deno.NetAddr | undefined;
  const kept = new KeptRequest(request, keepAll);
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = upgradeWithDeno(request, {
      protocol,
      offered,
      idleTimeout: prepared.idleTimeout,
    });
  } catch (error) {
    return new HandshakeError(
      400,
      `Deno refused the upgrade: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const connection = new Connection<Data>(upgraded.socket, {
    role: "server",
    request: kept.read,
    url: kept.url,
    remoteAddr,
    subprotocol: protocol,
    [RESOLVED_LIMITS]: prepared.limits,
    topics: prepared.topics,
    ...(data === undefined ? {} : { data }),
    [LIFECYCLE]: lifecycle,
    [LIFECYCLE_CONTEXT]: keepAll
      ? { kept, info: establishInfo } satisfies EstablishContext
      : undefined,
  } as ResolvedOptions<Data>);
  return { response: upgraded.response, connection };
}

/** What a connection keeps until its socket opens, for `onEstablish`. */
interface EstablishContext {
  kept: KeptRequest;
  info: Deno.ServeHandlerInfo | undefined;
}

/** The handler's topic registry: the one given, or a new one over `broker`. */
function handlerTopics(options: HandlerOptions<unknown>): Topics {
  if (options.topics && options.broker) {
    throw new TypeError(
      `${HANDLER}: give either broker or topics, not both (a topic registry has its own broker)`,
    );
  }
  return options.topics ?? new Topics({ broker: options.broker });
}

function readableInfo(info: Deno.ServeHandlerInfo): Deno.ServeHandlerInfo {
  return { remoteAddr: info.remoteAddr, completed: info.completed };
}

function establish<Data>(
  onEstablish: HandlerOptions<Data>["onEstablish"],
  conn: Connection<Data>,
  request: Request,
  info: Deno.ServeHandlerInfo | undefined,
): void {
  try {
    const result = onEstablish(conn, request, info);
    if (result instanceof Promise) result.catch((error) => failed(conn, error));
  } catch (error) {
    failed(conn, error);
  }
}

/** {@linkcode establish} for an `onEstablish` that reads only `conn`. */
function establishConnection<Data>(
  onEstablish: HandlerOptions<Data>["onEstablish"],
  conn: Connection<Data>,
): void {
  try {
    // It reads only its first argument (see readsOnlyFirstArgument).
    const result = (onEstablish as (conn: Connection<Data>) => unknown)(conn);
    if (result instanceof Promise) result.catch((error) => failed(conn, error));
  } catch (error) {
    failed(conn, error);
  }
}

function failed(conn: Connection<unknown>, error: unknown): void {
  console.error("anyws: onEstablish threw; closing with 1011:", error);
  conn.close(CLOSE_CODE.INTERNAL_ERROR, "internal error");
}
