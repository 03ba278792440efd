/**
 * The options of `upgrade()`, `createHandler()` and `serve()`, and their
 * checks, run once per public call.
 *
 * Each options interface declares every option it takes, inherited ones
 * included, so that its documentation page lists them all (a page shows an
 * interface's own members only). The compiler keeps the copies in step: an
 * interface may only redeclare an inherited option with a compatible type.
 *
 * @module
 */

import type { Connection } from "../connection.ts";
import {
  type ConnectionLimits,
  type ResolvedLimits,
  resolveLimits,
} from "../connection_options.ts";
import type {
  Authorize,
  HandshakeError,
  OriginAllowlist,
  OriginOptions,
  ProtocolChooser,
} from "../handshake.ts";
import type { Broker, Topics } from "../topics.ts";

/** Options for `upgrade()`. */
export interface UpgradeOptions extends ConnectionLimits, OriginOptions {
  /**
   * Subprotocols this server speaks, in order of preference, or a function
   * that picks one of those the client offered. Exactly one is echoed in
   * `Sec-WebSocket-Protocol`; when none matches, the handshake goes ahead
   * without one (RFC 6455 lets the client decide).
   *
   * @default {undefined} (none is echoed)
   */
  protocols?: readonly string[] | ProtocolChooser | undefined;
  /**
   * Seconds without any received frame before Deno sends a ping; after as
   * long again with no answer, Deno closes with 1001 "No response from ping
   * frame." and the connection finishes with an error. `0` turns it off.
   *
   * @default {30} (Deno's default)
   */
  idleTimeout?: number | undefined;
  /**
   * The topic registry of the connection's `subscribe()` and `publish()`.
   *
   * @default {undefined} (the topic methods throw)
   */
  topics?: Topics | undefined;
  /**
   * Browsers always send `Origin`, and a page cannot change it: a request
   * whose `Origin` matches none of these is answered 403 (cross-site
   * WebSocket hijacking). See {@linkcode OriginOptions.origins}.
   *
   * @default {undefined} (every origin is accepted)
   */
  origins?: OriginAllowlist | undefined;
  /**
   * Whether a request without `Origin` is refused (403) when `origins` is
   * set. See {@linkcode OriginOptions.requireOrigin}.
   *
   * @default {false}
   */
  requireOrigin?: boolean | undefined;
  /**
   * The largest message accepted, in bytes; a bigger one closes the
   * connection with 1009. See {@linkcode ConnectionOptions.maxMessageSize}.
   *
   * @default {16777216} (16 MiB)
   */
  maxMessageSize?: number | undefined;
  /**
   * How many received messages may wait unread before the connection closes
   * with 1008. See {@linkcode ConnectionOptions.maxPendingMessages}.
   *
   * @default {1024}
   */
  maxPendingMessages?: number | undefined;
  /**
   * How many bytes of received messages may wait unread before the
   * connection closes with 1008. See
   * {@linkcode ConnectionOptions.maxPendingBytes}.
   *
   * @default {33554432} (32 MiB)
   */
  maxPendingBytes?: number | undefined;
  /**
   * Milliseconds `close()` waits for the peer's close frame before finishing
   * with 1006. See {@linkcode ConnectionOptions.closeTimeout}.
   *
   * @default {5000}
   */
  closeTimeout?: number | undefined;
  /**
   * The most bytes sends may hold while waiting for the kernel; over it the
   * connection closes with 1008. See
   * {@linkcode ConnectionOptions.maxBufferedAmount}.
   *
   * @default {16777216} (16 MiB)
   */
  maxBufferedAmount?: number | undefined;
  /**
   * The buffered amount, in bytes, that `write()` and `drained()` wait to
   * fall to. See {@linkcode ConnectionOptions.highWaterMark}.
   *
   * @default {1048576} (1 MiB, or a quarter of `maxBufferedAmount` if smaller)
   */
  highWaterMark?: number | undefined;
  /**
   * Milliseconds without an incoming message after which the peer is taken
   * for dead (1006, `TimeoutError`); `0` turns it off. See
   * {@linkcode ConnectionOptions.inactivityTimeout}.
   *
   * @default {0} (off)
   */
  inactivityTimeout?: number | undefined;
}

/**
 * Options for `createHandler()`.
 *
 * @typeParam Data The type of each connection's `data`, inferred from what
 * `authorize` returns.
 */
export interface HandlerOptions<Data = unknown> extends UpgradeOptions {
  /**
   * Admits or refuses each valid upgrade request (after the RFC 6455 and
   * `origins` checks, which run once per request), before upgrading; may be
   * async. Return a `Response` to refuse with it (e.g. 401), `false` for
   * 403, or `{ data }` to accept and set `Connection.data` (its type becomes
   * `Data`). A throw is answered 500 with a fixed body.
   *
   * @default {undefined} (every valid request is accepted)
   */
  authorize?: Authorize<Data> | undefined;
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
   * socket is open, with the upgrade request (every header of it; the
   * connection's `request` keeps at most 8 KiB of headers) and the serve
   * info. Register handlers right away: nothing is dispatched before this
   * task ends. If it throws (or its promise rejects), that connection is
   * closed with 1011 and the error is logged; the server goes on.
   *
   * A function written with one plain parameter, `(conn) => …`, is called
   * with the connection alone: the copy of the request is not built for it
   * (that saves ~6 µs of a handshake); `conn.request` still has it. Any other
   * form (a second parameter, `...rest`, `arguments`) gets all three.
   */
  onEstablish(
    conn: Connection<Data>,
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): unknown;
  /**
   * Answers a request that could not be upgraded (Plack `on_error`). The
   * default answers with the error's status: 400 "The request is invalid for
   * a WebSocket request.", 426 with `Sec-WebSocket-Version: 13`, or 500.
   *
   * @default {(request, error) => error.toResponse()}
   */
  onError?:
    | ((
      request: Request,
      error: HandshakeError,
    ) => Response | Promise<Response>)
    | undefined;
  /**
   * Upgrade only at this path (e.g. `"/ws"`); other paths go to `fallback`
   * (or get 404). It must start with "/".
   *
   * @default {undefined} (every path)
   */
  path?: string | undefined;
  /**
   * Answers ordinary HTTP requests (not upgrades, or other paths). Without
   * it, a non-upgrade request gets 426 Upgrade Required.
   *
   * @default {undefined} (426, or 404 for another path)
   */
  fallback?:
    | ((
      request: Request,
      info?: Deno.ServeHandlerInfo,
    ) => Response | Promise<Response>)
    | undefined;
  /** Subprotocols, as for `upgrade()`: see {@linkcode UpgradeOptions.protocols}. @default {undefined} */
  protocols?: readonly string[] | ProtocolChooser | undefined;
  /** Deno's ping interval in seconds, `0` for none: see {@linkcode UpgradeOptions.idleTimeout}. @default {30} */
  idleTimeout?: number | undefined;
  /**
   * The connections' topic registry; `serve()` and `createHandler()` make one
   * over `broker` when not given. Give `broker` or `topics`, not both.
   *
   * @default {a new Topics over `broker`}
   */
  topics?: Topics | undefined;
  /** Allowed `Origin` values (else 403): see {@linkcode OriginOptions.origins}. @default {undefined} (any) */
  origins?: OriginAllowlist | undefined;
  /** Refuse requests without `Origin` when `origins` is set: see {@linkcode OriginOptions.requireOrigin}. @default {false} */
  requireOrigin?: boolean | undefined;
  /** The largest message accepted, in bytes: see {@linkcode ConnectionOptions.maxMessageSize}. @default {16777216} */
  maxMessageSize?: number | undefined;
  /** Unread messages allowed: see {@linkcode ConnectionOptions.maxPendingMessages}. @default {1024} */
  maxPendingMessages?: number | undefined;
  /** Unread bytes allowed: see {@linkcode ConnectionOptions.maxPendingBytes}. @default {33554432} */
  maxPendingBytes?: number | undefined;
  /** Milliseconds `close()` waits for the peer: see {@linkcode ConnectionOptions.closeTimeout}. @default {5000} */
  closeTimeout?: number | undefined;
  /** Bytes sends may hold: see {@linkcode ConnectionOptions.maxBufferedAmount}. @default {16777216} */
  maxBufferedAmount?: number | undefined;
  /** What `write()` waits for: see {@linkcode ConnectionOptions.highWaterMark}. @default {1048576} */
  highWaterMark?: number | undefined;
  /** Milliseconds of silence before the peer is dead: see {@linkcode ConnectionOptions.inactivityTimeout}. @default {0} (off) */
  inactivityTimeout?: number | undefined;
}

/**
 * Options for `serve()`.
 *
 * @typeParam Data The type of each connection's `data`, inferred from what
 * `authorize` returns.
 */
export interface ServeOptions<Data = unknown> extends HandlerOptions<Data> {
  /** The port to listen on; `0` picks a free one. @default {8000} */
  port?: number | undefined;
  /** The address to listen on. @default {"0.0.0.0"} */
  hostname?: string | undefined;
  /**
   * Aborting it shuts the server down as `Server.shutdown()` does.
   *
   * @default {undefined}
   */
  signal?: AbortSignal | undefined;
  /**
   * Called once listening.
   *
   * @default {Deno logs the address}
   */
  onListen?: ((addr: Deno.NetAddr) => void) | undefined;
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
  onListenError?: ((error: Error) => void) | undefined;
  /** A PEM certificate chain, to serve `wss:` (with `key`). @default {undefined} */
  cert?: string | undefined;
  /** The PEM private key for `cert`. @default {undefined} */
  key?: string | undefined;
  /** See {@linkcode HandlerOptions.authorize}: admits or refuses each request; `{ data }` types `conn.data`. @default {undefined} */
  authorize?: Authorize<Data> | undefined;
  /** See {@linkcode HandlerOptions.broker}: carries publishes beyond this process; `shutdown()` closes it. @default {new MemoryBroker()} */
  broker?: Broker | undefined;
  /**
   * Called with each established connection, the upgrade request and the
   * serve info. See {@linkcode HandlerOptions.onEstablish}.
   */
  onEstablish(
    conn: Connection<Data>,
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): unknown;
  /** See {@linkcode HandlerOptions.onError}: answers a request that could not be upgraded. @default {(request, error) => error.toResponse()} */
  onError?:
    | ((
      request: Request,
      error: HandshakeError,
    ) => Response | Promise<Response>)
    | undefined;
  /** See {@linkcode HandlerOptions.path}: upgrade only at this path. @default {undefined} (every path) */
  path?: string | undefined;
  /** See {@linkcode HandlerOptions.fallback}: answers ordinary HTTP requests. @default {undefined} (426, or 404) */
  fallback?:
    | ((
      request: Request,
      info?: Deno.ServeHandlerInfo,
    ) => Response | Promise<Response>)
    | undefined;
  /** Subprotocols: see {@linkcode UpgradeOptions.protocols}. @default {undefined} */
  protocols?: readonly string[] | ProtocolChooser | undefined;
  /** Deno's ping interval in seconds, `0` for none: see {@linkcode UpgradeOptions.idleTimeout}. @default {30} */
  idleTimeout?: number | undefined;
  /** The connections' topic registry: see {@linkcode HandlerOptions.topics}. @default {a new Topics over `broker`} */
  topics?: Topics | undefined;
  /** Allowed `Origin` values (else 403): see {@linkcode OriginOptions.origins}. @default {undefined} (any) */
  origins?: OriginAllowlist | undefined;
  /** Refuse requests without `Origin` when `origins` is set: see {@linkcode OriginOptions.requireOrigin}. @default {false} */
  requireOrigin?: boolean | undefined;
  /** The largest message accepted, in bytes: see {@linkcode ConnectionOptions.maxMessageSize}. @default {16777216} */
  maxMessageSize?: number | undefined;
  /** Unread messages allowed: see {@linkcode ConnectionOptions.maxPendingMessages}. @default {1024} */
  maxPendingMessages?: number | undefined;
  /** Unread bytes allowed: see {@linkcode ConnectionOptions.maxPendingBytes}. @default {33554432} */
  maxPendingBytes?: number | undefined;
  /** Milliseconds `close()` waits for the peer: see {@linkcode ConnectionOptions.closeTimeout}. @default {5000} */
  closeTimeout?: number | undefined;
  /** Bytes sends may hold: see {@linkcode ConnectionOptions.maxBufferedAmount}. @default {16777216} */
  maxBufferedAmount?: number | undefined;
  /** What `write()` waits for: see {@linkcode ConnectionOptions.highWaterMark}. @default {1048576} */
  highWaterMark?: number | undefined;
  /** Milliseconds of silence before the peer is dead: see {@linkcode ConnectionOptions.inactivityTimeout}. @default {0} (off) */
  inactivityTimeout?: number | undefined;
}

/** Options for `Server.shutdown()`. */
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

/** The upgrade options, checked and resolved once (internal). */
export interface PreparedUpgrade {
  readonly limits: ResolvedLimits;
  readonly protocols: readonly string[] | ProtocolChooser | undefined;
  readonly idleTimeout: number | undefined;
  readonly topics: Topics | undefined;
  readonly origins: OriginOptions;
}

/**
 * Checks the upgrade options and resolves their defaults (internal).
 *
 * @param options The options as given.
 * @param what The start of an error message: "Cannot upgrade" ...
 * @throws {RangeError} For an out-of-range limit or `idleTimeout`.
 * @throws {TypeError} For `protocols`, `origins` or `topics` of a wrong type.
 */
export function prepareUpgrade(
  options: UpgradeOptions,
  what: string,
  topics: Topics | undefined = options.topics,
): PreparedUpgrade {
  const { protocols, idleTimeout, origins, requireOrigin } = options;
  if (protocols !== undefined && typeof protocols !== "function") {
    if (
      !Array.isArray(protocols) ||
      !protocols.every((p) => typeof p === "string" && p !== "")
    ) {
      throw new TypeError(
        `${what}: protocols must be an array of non-empty strings or a function, got ${
          describe(protocols)
        }`,
      );
    }
  }
  if (
    idleTimeout !== undefined &&
    (typeof idleTimeout !== "number" || !(idleTimeout >= 0) ||
      !Number.isFinite(idleTimeout))
  ) {
    throw new RangeError(
      `${what}: idleTimeout must be a number of seconds >= 0, got ${idleTimeout}`,
    );
  }
  if (
    origins !== undefined &&
    (!Array.isArray(origins) ||
      !origins.every((o) => typeof o === "string" || o instanceof RegExp))
  ) {
    throw new TypeError(
      `${what}: origins must be an array of strings and RegExps, got ${
        describe(origins)
      }`,
    );
  }
  return Object.freeze({
    limits: resolveLimits(options),
    protocols: Array.isArray(protocols) ? [...protocols] : protocols,
    idleTimeout,
    topics,
    origins: { origins, requireOrigin },
  });
}

/**
 * Checks the options only `createHandler()` and `serve()` take (internal).
 *
 * @throws {TypeError} If `onEstablish` is not a function, a hook is not a
 * function, or `path` does not start with "/".
 */
export function checkHandlerOptions(
  options: HandlerOptions<never>,
  what: string,
): void {
  if (typeof options?.onEstablish !== "function") {
    throw new TypeError(
      `${what}: onEstablish must be a function (it receives each connection)`,
    );
  }
  for (const hook of ["authorize", "onError", "fallback"] as const) {
    const value = options[hook];
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(
        `${what}: ${hook} must be a function, got ${describe(value)}`,
      );
    }
  }
  const { path } = options;
  if (path !== undefined && (typeof path !== "string" || path[0] !== "/")) {
    throw new TypeError(
      `${what}: path must be a string starting with "/", got ${describe(path)}`,
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "an array with other values";
  return value === null ? "null" : typeof value;
}
