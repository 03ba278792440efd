/**
 * Waiting for a socket's outgoing buffer to drain.
 *
 * Deno's `WebSocket` has no `drain` event: the only signal is
 * `bufferedAmount`, which falls as frames reach the kernel. A
 * {@linkcode DrainWaiters} set polls it, but all of them share a single
 * timer that runs only while at least one promise is waiting, every
 * {@linkcode DRAIN_POLL_MS} milliseconds. An idle process polls nothing.
 *
 * @example Wait until a connection's buffer is below 64 KiB
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 *
 * await using server = serve({ port: 0, onListen() {}, onEstablish() {} });
 * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * conn.send(new Uint8Array(1024 * 1024));
 * await conn.drained({ highWaterMark: 64 * 1024 });
 * ```
 *
 * @module
 */

/**
 * How often, in milliseconds, the shared timer reads `bufferedAmount` while
 * a {@linkcode Connection.write} or {@linkcode Connection.drained} waits.
 */
export const DRAIN_POLL_MS = 5;

/** Every set with a waiting promise; the timer runs while it is non-empty. */
const active = new Set<DrainWaiters>();
let timer: ReturnType<typeof setInterval> | undefined;

function tick(): void {
  for (const waiters of active) waiters.poll();
  if (active.size === 0) {
    clearInterval(timer);
    timer = undefined;
  }
}

interface Waiter {
  limit: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The promises waiting for one socket's buffered amount to fall to a limit.
 * Used by {@linkcode Connection}; exported for wrappers of other sockets.
 *
 * @example
 * ```ts
 * import { DrainWaiters } from "./backpressure.ts";
 *
 * let buffered = 100;
 * const waiters = new DrainWaiters(() => buffered);
 * const drained = waiters.wait(10);
 * buffered = 5; // the shared timer sees it within a few milliseconds
 * await drained;
 * ```
 */
export class DrainWaiters {
  #read: () => number | undefined;
  #waiting = new Set<Waiter>();

  /**
   * Creates an empty set.
   *
   * @param read Returns the current buffered amount in bytes, or `undefined`
   * while the socket cannot drain (not open yet, or closing): waiters then
   * keep waiting until {@linkcode DrainWaiters.fail} settles them.
   *
   * @example
   * ```ts
   * import { DrainWaiters } from "./backpressure.ts";
   *
   * const waiters = new DrainWaiters(() => 0);
   * await waiters.wait(0);
   * ```
   */
  constructor(read: () => number | undefined) {
    this.#read = read;
  }

  /**
   * Resolves once the buffered amount is at most `limit` bytes.
   *
   * @param limit The threshold in bytes.
   * @param signal Rejects the wait with `signal.reason` when aborted.
   * @returns A promise that resolves when drained, rejects on abort or
   * {@linkcode DrainWaiters.fail}.
   *
   * @example
   * ```ts
   * import { DrainWaiters } from "./backpressure.ts";
   *
   * const waiters = new DrainWaiters(() => 10);
   * const controller = new AbortController();
   * const waiting = waiters.wait(0, controller.signal);
   * controller.abort(new Error("gave up"));
   * await waiting.catch((error) => console.log(error.message)); // gave up
   * ```
   */
  wait(limit: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const amount = this.#read();
    if (amount !== undefined && amount <= limit) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const onAbort = () => waiter.reject(signal?.reason);
    const settle = () => {
      this.#waiting.delete(waiter);
      if (this.#waiting.size === 0) active.delete(this);
      signal?.removeEventListener("abort", onAbort);
    };
    const waiter: Waiter = {
      limit,
      resolve: () => (settle(), resolve()),
      reject: (error) => (settle(), reject(error)),
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#waiting.add(waiter);
    active.add(this);
    timer ??= setInterval(tick, DRAIN_POLL_MS);
    return promise;
  }

  /**
   * Rejects every waiting promise (the socket closed).
   *
   * @param error The rejection reason.
   *
   * @example
   * ```ts
   * import { DrainWaiters } from "./backpressure.ts";
   *
   * const waiters = new DrainWaiters(() => undefined);
   * const waiting = waiters.wait(0);
   * waiters.fail(new Error("closed"));
   * await waiting.catch(() => {});
   * ```
   */
  fail(error: unknown): void {
    for (const waiter of [...this.#waiting]) waiter.reject(error);
  }

  /**
   * Reads the buffered amount once and resolves the waiters it satisfies;
   * called by the shared timer.
   *
   * @example
   * ```ts
   * import { DrainWaiters } from "./backpressure.ts";
   *
   * new DrainWaiters(() => 0).poll(); // nothing waits: does nothing
   * ```
   */
  poll(): void {
    if (this.#waiting.size === 0) return;
    const amount = this.#read();
    if (amount === undefined) return;
    for (const waiter of [...this.#waiting]) {
      if (amount <= waiter.limit) waiter.resolve();
    }
  }
}
