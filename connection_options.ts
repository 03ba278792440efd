/**
 * The options of {@linkcode Connection} and its methods, their defaults, and
 * the range checks that `serve()`, `upgrade()` and `connect()` run up front.
 *
 * @module
 */

import type { Role } from "./close.ts";
import type { Reconnector } from "./reconnect.ts";
import type { Topics } from "./topics.ts";
import type {
  LIFECYCLE,
  Lifecycle,
  LIFECYCLE_CONTEXT,
} from "./_connection/lifecycle.ts";

export type { Role };

/**
 * Options for {@linkcode Connection}.
 *
 * @typeParam Data The type of {@linkcode Connection.data}.
 */
export interface ConnectionOptions<Data = unknown> {
  /**
   * Which side this is. Decides {@linkcode Connection.masked} and which close
   * codes {@linkcode Connection.close} may send.
   *
   * @default {"server" when `request` is given, else "client"}
   */
  role?: Role | undefined;
  /**
   * The upgrade request (server side), or a function that returns it when
   * {@linkcode Connection.request} is read: a server passes one, so that a
   * readable copy of the upgrade request is made only for code that reads
   * it rather than kept by every connection. Give `url` with a function.
   */
  request?: Request | (() => Request) | undefined;
  /**
   * The URL (server side) when `request` is a function.
   *
   * @default {the request's URL, else the socket's}
   */
  url?: string | undefined;
  /** The peer's address (server side), captured before upgrading. */
  remoteAddr?: Deno.NetAddr | undefined;
  /** The negotiated subprotocol, when the socket does not report it. */
  subprotocol?: string | undefined;
  /**
   * The largest message accepted, in bytes. A bigger one is not delivered:
   * `parse_error` fires and the connection closes with 1009 (server side) or
   * 4009 (client side, which may only send 1000 and 3000-4999). Deno has
   * already buffered the message when this check runs; Deno itself drops the
   * TCP connection on any single frame of 64 MiB or more.
   *
   * @default {16777216} (16 MiB)
   */
  maxMessageSize?: number | undefined;
  /**
   * How many received messages may wait unread: held while nothing reads
   * them (no handler, listener, pending `nextMessage()` or iterator), or
   * queued for a `for await` loop that has not caught up. One more, and
   * `parse_error` fires and the connection closes with 1008 (server side) or
   * 4008 (client side): nothing is dropped silently. Past the bound, no
   * later message reaches any consumer.
   *
   * @default {1024}
   */
  maxPendingMessages?: number | undefined;
  /**
   * How many bytes of received messages may wait unread, in the same places
   * as `maxPendingMessages` and with the same answer when exceeded. A text
   * message counts one byte per UTF-16 code unit (its `length`), a binary
   * one its byte length. The first unread message always fits, whatever its
   * size (`maxMessageSize` bounds it).
   *
   * @default {33554432} (32 MiB)
   */
  maxPendingBytes?: number | undefined;
  /**
   * How long, in milliseconds, `close()` waits for the peer's close frame.
   * Then the connection finishes anyway with code 1006 and an error, and
   * drops its references to the socket (Deno offers no way to force the TCP
   * connection shut; denoland/deno#27924).
   *
   * @default {5000}
   */
  closeTimeout?: number | undefined;
  /**
   * The most memory, in bytes, that sends may hold while they wait to reach
   * the kernel: Deno's `bufferedAmount` plus sends queued while connecting,
   * where every send still queued counts its payload plus 1 KiB, about what
   * Deno holds beside its copy (sends of 64 KiB or more: the payload alone),
   * so a flood of small messages is bounded too (the number queued is
   * estimated from the average size), checked after each
   * {@linkcode Connection.send}. Over it, the peer is not reading fast
   * enough: `parse_error` fires and the connection closes with 1008 (server
   * side) or 4008 (client side) instead of buffering without bound. Use
   * {@linkcode Connection.write} to wait for the buffer instead of hitting it.
   *
   * @default {16777216} (16 MiB)
   */
  maxBufferedAmount?: number | undefined;
  /**
   * The buffered amount, in bytes, that {@linkcode Connection.write} and
   * {@linkcode Connection.drained} wait to fall to. Keep it well below
   * `maxBufferedAmount`, so that one more message after a wait fits.
   *
   * @default {1048576} (1 MiB, or a quarter of `maxBufferedAmount` if smaller)
   */
  highWaterMark?: number | undefined;
  /**
   * Milliseconds without any incoming message after which the peer is taken
   * for dead: `parse_error` fires and the connection finishes at once with
   * 1006 and a `TimeoutError` (a close frame is sent, but not waited for).
   * Deno's ping and pong frames are invisible to JavaScript, so only text
   * and binary messages count: the peer must send something (an
   * application-level heartbeat) more often than this. The check runs every
   * half timeout, so silence is detected after 1 to 1.5 times the timeout.
   * `0` turns it off.
   *
   * @default {0} (off)
   */
  inactivityTimeout?: number | undefined;
  /** The initial value of {@linkcode Connection.data}. */
  data?: Data;
  /**
   * Makes the connection survive the loss of its socket (client side):
   * instead of finishing, it asks the {@linkcode Reconnector} for a new
   * socket and queues sends meanwhile. `connect(url, { reconnect })` sets
   * this; see {@linkcode ReconnectOptions}.
   *
   * @default {undefined} (a lost socket finishes the connection)
   */
  reconnect?: Reconnector | undefined;
  /**
   * The topic registry {@linkcode Connection.subscribe} and
   * {@linkcode Connection.publish} use. `serve()` and `createHandler()` give
   * their connections theirs.
   *
   * @default {undefined} (the topic methods throw)
   */
  topics?: Topics | undefined;
}

/** Options for {@linkcode Connection.write}. */
export interface WriteOptions {
  /** Stops waiting for the buffer, rejecting with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options for {@linkcode Connection.drained}. */
export interface DrainOptions {
  /**
   * Resolve once at most this many bytes are buffered.
   *
   * @default {ConnectionOptions.highWaterMark}
   */
  highWaterMark?: number;
  /** Stops waiting, rejecting with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options for {@linkcode Connection.nextMessage}. */
export interface NextMessageOptions {
  /** Rejects the wait with `signal.reason` when aborted. */
  signal?: AbortSignal;
  /**
   * Rejects the wait with a `TimeoutError` `DOMException` after this many
   * milliseconds.
   */
  timeout?: number;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
export const DEFAULT_MAX_PENDING_MESSAGES = 1024;
export const DEFAULT_MAX_PENDING_BYTES = 32 * 1024 * 1024;
export const DEFAULT_CLOSE_TIMEOUT = 5000;
export const DEFAULT_MAX_BUFFERED_AMOUNT = 16 * 1024 * 1024;
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

/**
 * The numeric limits of {@linkcode ConnectionOptions}, which `serve()`,
 * `createHandler()`, `upgrade()` and `connect()` take and pass on to each
 * connection.
 */
export type ConnectionLimits = Pick<
  ConnectionOptions,
  | "maxMessageSize"
  | "maxPendingMessages"
  | "maxPendingBytes"
  | "closeTimeout"
  | "maxBufferedAmount"
  | "highWaterMark"
  | "inactivityTimeout"
>;

// Each limit's minimum, as the constructor checks it. A Record, so that a
// limit added to ConnectionLimits without a minimum does not compile.
const MINIMUMS: Record<keyof ConnectionLimits, number> = {
  maxMessageSize: 1,
  maxPendingMessages: 1,
  maxPendingBytes: 1,
  closeTimeout: 0,
  maxBufferedAmount: 1,
  highWaterMark: 0,
  inactivityTimeout: 0,
};

/** Every limit, checked, with its default filled in (internal). */
export type ResolvedLimits = {
  readonly [K in keyof ConnectionLimits]-?: number;
};

/**
 * The key under which `serve()`, `upgrade()` and `connect()` hand a
 * Connection limits they have already resolved, so that each public call
 * checks its options once rather than once per connection (internal).
 */
export const RESOLVED_LIMITS: unique symbol = Symbol("anyws.resolvedLimits");

/** Connection options that may carry resolved limits (internal). */
export interface ResolvedOptions<Data = unknown>
  extends ConnectionOptions<Data> {
  [RESOLVED_LIMITS]?: ResolvedLimits;
  /** The library's bookkeeping of this connection (a server's). */
  [LIFECYCLE]?: Lifecycle;
  /** What {@linkcode Lifecycle.opened} receives for this connection. */
  [LIFECYCLE_CONTEXT]?: unknown;
}

/**
 * Checks the limits of `options` and fills in the defaults (internal).
 *
 * @param options Any options that include limits.
 * @returns The limits, checked and complete.
 * @throws {RangeError} If a limit is not a number or is below its minimum.
 */
export function resolveLimits(options: ConnectionLimits): ResolvedLimits {
  const given = (name: keyof ConnectionLimits, fallback: number) =>
    checkedLimit(name, options[name] ?? fallback, MINIMUMS[name]);
  const maxBufferedAmount = given(
    "maxBufferedAmount",
    DEFAULT_MAX_BUFFERED_AMOUNT,
  );
  return Object.freeze({
    maxMessageSize: given("maxMessageSize", DEFAULT_MAX_MESSAGE_SIZE),
    maxPendingMessages: given(
      "maxPendingMessages",
      DEFAULT_MAX_PENDING_MESSAGES,
    ),
    maxPendingBytes: given("maxPendingBytes", DEFAULT_MAX_PENDING_BYTES),
    closeTimeout: given("closeTimeout", DEFAULT_CLOSE_TIMEOUT),
    maxBufferedAmount,
    highWaterMark: given(
      "highWaterMark",
      Math.min(DEFAULT_HIGH_WATER_MARK, maxBufferedAmount / 4),
    ),
    inactivityTimeout: given("inactivityTimeout", 0),
  });
}

/**
 * Checks the numeric limits of {@linkcode ConnectionOptions} as the
 * {@linkcode Connection} constructor does. `serve()`, `createHandler()`,
 * `upgrade()` and `connect()` call it up front, so that a bad option fails the
 * call that received it instead of every connection later (a server would
 * otherwise answer each upgrade with an error, and a client would throw
 * inside an event listener).
 *
 * @param options The options to check; absent limits are fine.
 * @throws {RangeError} If a limit is not a number or is below its minimum.
 *
 * @example
 * ```ts
 * import { checkConnectionOptions } from "@anyws/anyws/connection";
 * import { assertThrows } from "@std/assert";
 *
 * checkConnectionOptions({ maxMessageSize: 1024 });
 * assertThrows(() => checkConnectionOptions({ maxMessageSize: 0 }), RangeError);
 * ```
 */
export function checkConnectionOptions(options: ConnectionLimits): void {
  resolveLimits(options);
}

/**
 * Returns `value` if it is a number of at least `min` (internal).
 *
 * @throws {RangeError} Naming the option otherwise.
 */
export function checkedLimit(name: string, value: number, min = 1): number {
  if (typeof value !== "number" || Number.isNaN(value) || value < min) {
    throw new RangeError(
      `Cannot create a Connection: ${name} must be a number >= ${min}, got ${value}`,
    );
  }
  return value;
}
