/**
 * Handler lists for a connection's events, and the rule that makes an
 * `async` handler a handler: its rejection is reported like a throw
 * (internal).
 *
 * @module
 */

import {
  type ConnectionHandlerName,
  HANDLER_EVENTS,
} from "../connection_events.ts";
import type { ReconnectInfo } from "../reconnect.ts";

/** A registered function; the lists never call it with `this`. */
// deno-lint-ignore no-explicit-any
type Fn = (...args: any[]) => unknown;

/** The one empty array every list starts with (never mutated). */
const NONE: readonly never[] = Object.freeze([]);

/**
 * A copy-on-write list: adding or removing replaces the array, so a caller
 * that is iterating `items` (a dispatch in progress) sees a snapshot
 * without a copy per dispatch.
 */
export class HandlerList<F extends Fn> {
  /** The current registrations, oldest first. Never mutated in place. */
  items: readonly F[] = NONE;

  /** The number of registrations. */
  get size(): number {
    return this.items.length;
  }

  /** Appends `fn`; returns a function that removes this registration once. */
  add(fn: F): () => void {
    this.items = [...this.items, fn];
    let registered = true;
    return () => {
      if (!registered) return;
      registered = false;
      this.remove(fn);
    };
  }

  /** Removes one registration of `fn` (the oldest), if any. */
  remove(fn: F): boolean {
    const i = this.items.indexOf(fn);
    if (i < 0) return false;
    this.items = this.items.length === 1
      ? NONE
      : [...this.items.slice(0, i), ...this.items.slice(i + 1)];
    return true;
  }
}

/**
 * Routes the rejection of a handler's returned promise to `onRejected`, so
 * that an `async` handler that fails is treated as one that threw. Anything
 * else a handler returns is ignored.
 *
 * @param result What the handler returned.
 * @param onRejected Called with the rejection reason.
 */
export function watchResult(
  result: unknown,
  onRejected: (error: unknown) => void,
): void {
  if (result instanceof Promise) result.then(undefined, onRejected);
}

/**
 * Calls `fn` with `args` for an event whose failure must not stop anything
 * (finish, parse_error, reconnecting): a throw or a rejection is logged,
 * never thrown.
 *
 * @param where Names the handler in the log line.
 * @param fn The handler.
 * @param args Its arguments.
 */
export function callReported<A extends unknown[]>(
  where: string,
  fn: (...args: A) => unknown,
  ...args: A
): void {
  try {
    watchResult(fn(...args), (error) => reportHandlerError(where, error));
  } catch (error) {
    reportHandlerError(where, error);
  }
}

/**
 * Logs an error from a handler that has nothing left to close: the
 * exception goes no further.
 *
 * @param where Names the handler.
 * @param error What it threw or rejected with.
 */
export function reportHandlerError(where: string, error: unknown): void {
  const article = /^[aeiou]/.test(where) ? "an" : "a";
  console.error(`anyws: ${article} ${where} failed; ignored:`, error);
}

/**
 * The `event, handler` pairs of a call to `on()` in any of its three forms
 * (`on(event, handler)`, `on({ event: handler })`, `on(e1, h1, e2, h2, ...)`),
 * all checked before any is registered, so a typo registers nothing.
 *
 * @param args The arguments of `on()`.
 * @returns The pairs, in order.
 * @throws {TypeError} For an odd number of arguments, an unknown event or a
 * handler that is not a function.
 */
export function registrations(
  args: unknown[],
): [ConnectionHandlerName, Fn][] {
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
  return pairs as [ConnectionHandlerName, Fn][];
}

/** The events other than message consumers, by the list they go to. */
type ListName = "finish" | "error" | "reconnecting" | "reconnect";
const LIST_OF: Partial<Record<ConnectionHandlerName, ListName>> = {
  finish: "finish",
  close: "finish",
  parse_error: "error",
  error: "error",
  reconnecting: "reconnecting",
  reconnect: "reconnect",
};
const WHERE: Record<ListName, string> = {
  finish: "finish handler",
  error: "parse_error handler",
  reconnecting: "reconnecting handler",
  reconnect: "reconnect handler",
};

/**
 * A connection's `finish`, `parse_error`, `reconnecting` and `reconnect`
 * handlers (made on the first registration of one of them); `C` is what
 * they receive as `conn`.
 */
export class EventHandlers<C> {
  readonly #lists: Record<ListName, HandlerList<Fn>> = {
    finish: new HandlerList(),
    error: new HandlerList(),
    reconnecting: new HandlerList(),
    reconnect: new HandlerList(),
  };

  /** Registers `fn` for `event` (not a message event). */
  add(event: ConnectionHandlerName, fn: Fn): () => void {
    return this.#lists[LIST_OF[event]!].add(fn);
  }

  /** Calls every handler of `list`; a throw or rejection is only logged. */
  emit(list: Exclude<ListName, "reconnect">, conn: C, arg: unknown): void {
    for (const handler of this.#lists[list].items) {
      callReported(WHERE[list], handler, conn, arg);
    }
  }

  /**
   * Calls the `reconnect` handlers.
   *
   * @returns The promises they returned, which the queue waits for.
   * @throws {unknown} What a handler threw (the rest are skipped).
   */
  runReconnect(conn: C, info: ReconnectInfo): Promise<unknown>[] {
    const waits: Promise<unknown>[] = [];
    for (const handler of this.#lists.reconnect.items) {
      const result = handler(conn, info);
      if (result instanceof Promise) waits.push(result);
    }
    return waits;
  }
}

/** Deprecated methods that have warned already (once per process each). */
const warned = new Set<string>();

/**
 * Warns, once per process and method, that a deprecated method was called
 * (as AnyEvent::WebSocket::Connection 0.30 did).
 *
 * @param method The deprecated method.
 * @param instead What to call instead.
 */
export function warnDeprecated(method: string, instead: string): void {
  if (warned.has(method)) return;
  warned.add(method);
  console.warn(
    `anyws: Connection.${method}() is deprecated (as in AnyEvent::WebSocket::Connection 0.30); use ${instead} instead`,
  );
}
