/**
 * One callback per connection, run when it finishes, for the library's own
 * bookkeeping (a server's set of open connections): cheaper per connection
 * than a reaction on `conn.closed`, which would make every connection build
 * its `closed` promise (internal).
 *
 * @module
 */

/** Connection → what to run once it has finished. */
export const finishCallbacks: WeakMap<object, () => void> = new WeakMap();
