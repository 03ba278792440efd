/**
 * The events of a {@linkcode Connection}: the Perl-style handlers that
 * `on()` accepts, and the DOM events it dispatches.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import type { Message } from "./message.ts";
import type {
  ReconnectEvent,
  ReconnectInfo,
  ReconnectingEvent,
  ReconnectingInfo,
} from "./reconnect.ts";

/** Called by `on("message")` (Plack): text as a string, binary as bytes. */
export type MessageHandler = (
  conn: Connection,
  data: string | Uint8Array,
  unregister: () => void,
) => unknown;
/** Called by `on("each_message")` (AnyEvent) with a {@linkcode Message}. */
export type EachMessageHandler = (
  conn: Connection,
  message: Message,
  unregister: () => void,
) => unknown;
/** Called by `on("next_message")` (AnyEvent) for the next message only. */
export type NextMessageHandler = (
  conn: Connection,
  message: Message,
) => unknown;
/**
 * Called once by `on("finish")`/`on("close")`; `error` is `undefined` after
 * a clean close.
 */
export type FinishHandler = (conn: Connection, error?: string) => unknown;
/** Called by `on("parse_error")`/`on("error")` with the error's text. */
export type ParseErrorHandler = (conn: Connection, error: string) => unknown;
/**
 * Called by `on("reconnecting")` before each wait to reconnect. A throw is
 * logged and ignored.
 */
export type ReconnectingHandler = (
  conn: Connection,
  info: ReconnectingInfo,
) => unknown;
/**
 * Called by `on("reconnect")` once a new socket is open, before the queued
 * messages are sent: sends made here go first (re-authenticate, re-subscribe).
 * When it returns a promise, the queue waits for it (at most
 * {@linkcode ReconnectOptions.hookTimeout}); a throw or a rejection closes
 * the connection with 4011, for good.
 */
export type ReconnectHandler = (
  conn: Connection,
  info: ReconnectInfo,
) => unknown;

/** The events {@linkcode Connection.on} accepts, with their handler types. */
export interface ConnectionHandlers {
  /** Each message: text as a `string`, binary as a `Uint8Array` (Plack). */
  message: MessageHandler;
  /** Each message as a {@linkcode Message} (AnyEvent). */
  each_message: EachMessageHandler;
  /** The next message only (AnyEvent). */
  next_message: NextMessageHandler;
  /** The connection finished (both Perl libraries). Fires once. */
  finish: FinishHandler;
  /** Alias of `finish` (Plack). */
  close: FinishHandler;
  /** A protocol or handler error; the connection is closing (AnyEvent). */
  parse_error: ParseErrorHandler;
  /** Alias of `parse_error`. */
  error: ParseErrorHandler;
  /** A reconnecting connection lost its socket or an attempt failed, and waits. */
  reconnecting: ReconnectingHandler;
  /** A reconnecting connection has a new socket; the queue is sent next. */
  reconnect: ReconnectHandler;
}

/** An event name accepted by {@linkcode Connection.on}. */
export type ConnectionHandlerName = keyof ConnectionHandlers;

/** The DOM events a {@linkcode Connection} dispatches. */
export interface ConnectionEventMap {
  /** The socket opened. */
  open: Event;
  /** A message arrived; `event.data` is the {@linkcode Message}. */
  message: MessageEvent<Message>;
  /** A protocol or handler error; the connection is closing. */
  error: ErrorEvent;
  /** The connection finished; fires once, with the code as anyws reports it. */
  close: CloseEvent;
  /** A reconnecting connection waits to reconnect. */
  reconnecting: ReconnectingEvent;
  /** A reconnecting connection has a new socket; see {@linkcode ReconnectEvent.waitUntil}. */
  reconnect: ReconnectEvent;
}

/** Removes a handler registered with {@linkcode Connection.on}; calling it again does nothing. */
export type Unregister = () => void;

export const HANDLER_EVENTS: Record<ConnectionHandlerName, true> = {
  message: true,
  each_message: true,
  next_message: true,
  finish: true,
  close: true,
  parse_error: true,
  error: true,
  reconnecting: true,
  reconnect: true,
};
