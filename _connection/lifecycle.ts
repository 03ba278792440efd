/**
 * The library's own bookkeeping of a connection (internal): a server's
 * `onEstablish` once the socket is open, and its set of connections once
 * the connection has finished.
 *
 * One `Lifecycle` object serves every connection of a server; a connection
 * carries it and a small per-connection context (what `onEstablish` will
 * receive), and calls it. This replaced a closure per connection in each of
 * two `WeakMap`s, which cost more memory and ~1 µs per connection, and is
 * cheaper than a listener on the socket or a reaction on `conn.closed`
 * (which would make every connection build its `closed` promise).
 *
 * @module
 */

/** What a connection calls, with itself, at the two moments. */
export interface Lifecycle {
  /** The socket opened; `context` is what the connection was given. */
  opened(conn: object, context: unknown): void;
  /** The connection finished (whether or not it ever opened). */
  finished(conn: object): void;
}

/** The option key of a connection's {@linkcode Lifecycle}. */
export const LIFECYCLE: unique symbol = Symbol("anyws.lifecycle");

/** The option key of the context handed to {@linkcode Lifecycle.opened}. */
export const LIFECYCLE_CONTEXT: unique symbol = Symbol(
  "anyws.lifecycleContext",
);
