/**
 * One callback per connection for when it opens and one for when it
 * finishes, for the library's own bookkeeping (a server's `onEstablish` and
 * its set of open connections): cheaper per connection than a listener on the
 * socket or a reaction on `conn.closed`, which would make every connection
 * build its `closed` promise (internal).
 *
 * @module
 */

/** Connection → what to run once its socket is open (after `open`). */
export const openCallbacks: WeakMap<object, () => void> = new WeakMap();

/** Connection → what to run once it has finished (after `finish`). */
export const finishCallbacks: WeakMap<object, () => void> = new WeakMap();

/** Runs and forgets `target`'s callback in `callbacks`, if any. */
export function runCallback(
  callbacks: WeakMap<object, () => void>,
  target: object,
): void {
  const callback = callbacks.get(target);
  if (callback) {
    callbacks.delete(target);
    callback();
  }
}
