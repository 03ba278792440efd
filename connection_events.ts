/**
 * The events of a {@linkcode Connection}: the names `on()` accepts and the
 * DOM events it dispatches. The handler types, which take the connection,
 * live beside it in `connection.ts`.
 *
 * @module
 */

import type { Message } from "./message.ts";
import type { ReconnectEvent, ReconnectingEvent } from "./reconnect.ts";

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

/** An event name accepted by {@linkcode Connection.on}. */
export type ConnectionHandlerName =
  | "message"
  | "each_message"
  | "next_message"
  | "finish"
  | "close"
  | "parse_error"
  | "error"
  | "reconnecting"
  | "reconnect";

/** The events `on()` accepts (internal: the names, for validation). */
export const HANDLER_EVENTS: Readonly<Record<ConnectionHandlerName, true>> =
  Object.freeze({
    message: true,
    each_message: true,
    next_message: true,
    finish: true,
    close: true,
    parse_error: true,
    error: true,
    reconnecting: true,
    reconnect: true,
  });
