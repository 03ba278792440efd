/**
 * The client side, after Perl's AnyEvent::WebSocket::Client:
 * {@linkcode connect} opens a standard `WebSocket` and resolves with a
 * {@linkcode Connection} once it is open, adding what Deno's client lacks (a
 * handshake timeout, a subprotocol check, typed errors).
 *
 * @example
 * ```ts
 * import { connect } from "@anyws/anyws/client";
 * import { serve } from "@anyws/anyws/server";
 *
 * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hello"); } });
 * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * console.log(`${await conn.nextMessage()}`);
 * ```
 *
 * @module
 */

import { Connection } from "./connection.ts";
import { watchSocket } from "./_connection/runtime_guard.ts";
import {
  type ConnectionLimits,
  RESOLVED_LIMITS,
  type ResolvedOptions,
  resolveLimits,
} from "./connection_options.ts";
import { type ReconnectOptions, Reconnector } from "./reconnect.ts";

// The types this entry's signatures name, so that it works on its own.
export { Connection } from "./connection.ts";
export type { ConnectionLimits } from "./connection_options.ts";
export type { ReconnectOptions } from "./reconnect.ts";

/** Options for {@linkcode connect} and {@linkcode Client}. */
export interface ConnectOptions extends ConnectionLimits {
  /**
   * Subprotocols to offer, in order of preference. When given, the server
   * must choose one of them, or `connect()` fails.
   */
  protocols?: string | readonly string[];
  /**
   * Extra handshake headers (e.g. `authorization`). Deno drops the ones it
   * manages itself (`host`, `upgrade`, `connection`, `sec-websocket-*`).
   */
  headers?: HeadersInit;
  /**
   * Milliseconds to wait for the handshake to complete. Deno's own client
   * has no timeout and would wait forever.
   *
   * @default {30000}
   */
  timeout?: number;
  /** Aborts the attempt: `connect()` rejects with a {@linkcode ConnectError}. */
  signal?: AbortSignal;
  /**
   * Reconnect after the connection is lost, keeping the same
   * {@linkcode Connection}: `true` for the defaults, or the policy. The first
   * connection is not retried (`connect()` rejects as usual). Every attempt
   * uses this call's URL, protocols, headers and `timeout`; `signal` only
   * guards the first.
   *
   * @default {false}
   */
  reconnect?: boolean | ReconnectOptions;
}

/**
 * Why {@linkcode connect} failed. The message says what happened; `status`
 * holds the HTTP status when the server refused the handshake and Deno
 * revealed it.
 *
 * @example
 * ```ts
 * import { connect, ConnectError } from "@anyws/anyws/client";
 * import { assertRejects } from "@std/assert";
 *
 * await assertRejects(() => connect("ftp://example.com/"), ConnectError, "URI is not a websocket");
 * ```
 */
export class ConnectError extends Error {
  /** The URL that was being connected to. */
  readonly url: string;
  /** The HTTP status of a refused handshake, when known. */
  readonly status: number | undefined;

  /**
   * Creates the error.
   *
   * @param message What happened.
   * @param url The URL being connected to.
   * @param status The HTTP status of a refused handshake, when known.
   * @param options Standard error options (`cause`).
   *
   * @example
   * ```ts
   * import { ConnectError } from "@anyws/anyws/client";
   *
   * console.log(new ConnectError("unable to connect", "ws://x/", 403).status);
   * ```
   */
  constructor(
    message: string,
    url: string,
    status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConnectError";
    this.url = url;
    this.status = status;
  }
}

const DEFAULT_TIMEOUT = 30_000;
const SCHEMES = new Set(["ws:", "wss:", "http:", "https:"]);

/**
 * Connects to a WebSocket server. `http:`/`https:` URLs mean `ws:`/`wss:`.
 *
 * @param url The server's URL.
 * @param options Subprotocols, headers, timeout, signal and limits.
 * @returns The open connection. It dispatches nothing before the awaiting
 * task ends, so handlers registered right after `await` miss nothing.
 * @throws {ConnectError} "URI is not a websocket" for another scheme or an
 * invalid URL; "unable to connect" when the connection is refused, times
 * out, is aborted, or the server refuses the handshake (with `status`);
 * "no subprotocol in response" or "subprotocol mismatch, requested: ...,
 * got: ..." when the server's choice does not fit `protocols`.
 * @throws {RangeError} For a `reconnect` option or a connection limit
 * (`maxMessageSize`, ...) out of range.
 * @throws {TypeError} For a `reconnect.overflow` or `reconnect.random` of
 * the wrong kind.
 *
 * @example
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   protocols: ["v2", "v1"],
 *   onEstablish(conn) { conn.send(`you speak ${conn.subprotocol}`); },
 * });
 * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`, {
 *   protocols: ["v1", "v2"],
 *   timeout: 5000,
 * });
 * console.log(conn.subprotocol, `${await conn.nextMessage()}`);
 * ```
 */
export function connect(
  url: string | URL,
  options: ConnectOptions = {},
): Promise<Connection> {
  // Not async: without a reconnect policy, the promise returned here is the
  // one the open event resolves, so the caller's `await connect()` resumes
  // before Deno's receive loop dispatches a first message that came with
  // the 101 (one more promise hop, and handlers registered after the await
  // would only see it held, after Deno answered a close that followed it).
  try {
    return connectOnce(url, options);
  } catch (error) {
    return Promise.reject(error);
  }
}

function connectOnce(
  url: string | URL,
  options: ConnectOptions,
): Promise<Connection> {
  const target = String(url);
  let parsed: URL | undefined;
  try {
    parsed = new URL(target);
  } catch {
    // reported below
  }
  if (!parsed || !SCHEMES.has(parsed.protocol)) {
    throw new ConnectError(`URI is not a websocket: ${target}`, target);
  }
  const limits = resolveLimits(options);
  const protocols = options.protocols === undefined
    ? []
    : typeof options.protocols === "string"
    ? [options.protocols]
    : [...options.protocols];
  const reconnector = options.reconnect
    ? new Reconnector(
      (adopt, signal) =>
        openSocket(target, parsed, protocols, { ...options, signal }, adopt),
      options.reconnect === true ? {} : options.reconnect,
    )
    : undefined;
  const first = () =>
    openSocket(
      target,
      parsed,
      protocols,
      options,
      (socket) =>
        new Connection(socket, {
          role: "client",
          [RESOLVED_LIMITS]: limits,
          reconnect: reconnector,
        } as ResolvedOptions),
    );
  if (!reconnector) return first();
  // With `reconnect`, a first attempt that fails for a reason the policy
  // retries (5xx, refused TCP, timeout) is retried like a reconnection, by
  // the same loop: backoff, then up to maxAttempts attempts in all.
  return reconnector.first(first, options.signal).catch((error) => {
    if (error instanceof ConnectError) throw error;
    throw new ConnectError(
      `unable to connect to ${target}: aborted`,
      target,
      undefined,
      { cause: error },
    );
  });
}

/**
 * Opens one client socket and calls `adopt` with it inside its `open` event
 * (so the adopter's listeners see every frame); rejects with a
 * {@linkcode ConnectError}. Used for the first connection and reconnections.
 */
function openSocket<T>(
  target: string,
  parsed: URL,
  protocols: string[],
  options: ConnectOptions,
  adopt: (socket: WebSocket) => T,
): Promise<T> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  const { signal } = options;
  if (signal?.aborted) {
    return Promise.reject(
      new ConnectError(
        `unable to connect to ${target}: aborted`,
        target,
        undefined,
        { cause: signal.reason },
      ),
    );
  }

  let socket: WebSocket;
  try {
    socket = new WebSocket(parsed, {
      protocols,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    });
    // Before it opens: a failure inside Deno's receive loop is then
    // reported on the socket instead of ending the process.
    watchSocket(socket);
  } catch (error) {
    return Promise.reject(
      new ConnectError(
        `unable to connect to ${target}: ${(error as Error).message}`,
        target,
        undefined,
        { cause: error },
      ),
    );
  }

  // One promise, settled by the socket's events, the timer or the signal,
  // and resolved inside the open event itself: the Connection is created
  // there, so its listeners are attached before any frame that arrives in
  // the same task is dispatched, and whoever awaits this promise resumes
  // before Deno dispatches that frame (see connect()).
  // Not @std/async's deadline(): its AbortSignal.timeout() keeps each
  // attempt's timer and closures alive for the whole timeout (30 s by
  // default) after the handshake succeeded, ~600 bytes per connect.
  return new Promise<T>((resolve, reject) => {
    let failure = "";
    const onAbort = () => giveUp("aborted", signal?.reason);
    const timer = setTimeout(
      () =>
        giveUp(
          `no handshake response within ${timeout} ms`,
          new DOMException("Handshake timed out", "TimeoutError"),
        ),
      timeout,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    const settled = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const giveUp = (why: string, cause: unknown) => {
      settled();
      socket.close();
      reject(
        new ConnectError(
          `unable to connect to ${target}: ${why}`,
          target,
          undefined,
          { cause },
        ),
      );
    };
    socket.addEventListener("error", (event) => {
      failure ||= (event as ErrorEvent).message;
    }, { once: true });
    socket.addEventListener("close", () => {
      settled();
      const status = /status code:?\s*(\d{3})/i.exec(failure)?.[1];
      reject(
        new ConnectError(
          status
            ? `unable to connect to ${target}: the server refused the handshake with HTTP ${status}`
            : `unable to connect to ${target}: ${
              failure || "connection closed"
            }`,
          target,
          status ? Number(status) : undefined,
        ),
      );
    }, { once: true });
    socket.addEventListener("open", () => {
      settled();
      const problem = checkSubprotocol(protocols, socket.protocol) ??
        checkExtensions(socket.extensions);
      if (problem) {
        socket.close();
        reject(new ConnectError(problem, target));
        return;
      }
      try {
        resolve(adopt(socket));
      } catch (error) {
        socket.close();
        reject(error);
      }
    }, { once: true });
  });
}

/**
 * A reusable client configuration, for ports of
 * `AnyEvent::WebSocket::Client->new(...)->connect($url)`.
 *
 * @example
 * ```ts
 * import { Client, serve } from "@anyws/anyws";
 *
 * await using server = serve({ port: 0, onListen() {}, onEstablish(conn) { conn.send("hi"); } });
 * const client = new Client({ timeout: 5000 });
 * await using conn = await client.connect(`ws://127.0.0.1:${server.addr.port}`);
 * console.log(`${await conn.nextMessage()}`);
 * ```
 */
export class Client {
  /** The options every {@linkcode Client.connect} uses. */
  readonly options: ConnectOptions;

  /**
   * Creates a client.
   *
   * @param options As for {@linkcode connect}.
   *
   * @example
   * ```ts
   * import { Client } from "@anyws/anyws/client";
   *
   * const client = new Client({ protocols: ["chat"], timeout: 10_000 });
   * console.log(client.options.timeout);
   * ```
   */
  constructor(options: ConnectOptions = {}) {
    this.options = { ...options };
  }

  /**
   * Connects with this client's options.
   *
   * @param url The server's URL.
   * @returns The open connection.
   * @throws {ConnectError} As {@linkcode connect} does.
   *
   * @example
   * ```ts
   * import { Client, ConnectError } from "@anyws/anyws/client";
   * import { assertRejects } from "@std/assert";
   *
   * await assertRejects(() => new Client().connect("mailto:x@y"), ConnectError);
   * ```
   */
  connect(url: string | URL): Promise<Connection> {
    return connect(url, this.options);
  }
}

/**
 * RFC 6455 4.1: the client must fail a connection whose 101 names an
 * extension it did not offer. Deno offers none, yet opens such a connection
 * (the frames it then reads would be misunderstood); the name shows in
 * `socket.extensions`.
 */
function checkExtensions(extensions: string): string | undefined {
  return extensions === ""
    ? undefined
    : `the server chose an extension the client never offered: ${extensions}`;
}

function checkSubprotocol(
  requested: string[],
  got: string,
): string | undefined {
  if (requested.length === 0) return undefined;
  if (got === "") return "no subprotocol in response";
  if (!requested.includes(got)) {
    return `subprotocol mismatch, requested: ${
      requested.join(", ")
    }, got: ${got}`;
  }
  return undefined;
}
