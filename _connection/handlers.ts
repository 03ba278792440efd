/**
 * Handler lists for a connection's events, and the rule that makes an
 * `async` handler a handler: its rejection is reported like a throw
 * (internal).
 *
 * @module
 */

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

  /** Empties the list and returns what it held. */
  take(): readonly F[] {
    const items = this.items;
    this.items = NONE;
    return items;
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
 * An `Error` for anything thrown: handlers may throw any value.
 *
 * @param thrown What was thrown or rejected.
 * @returns `thrown` itself when it is an Error, else a new Error of its text.
 */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
