/**
 * Delivery: where each received message goes, in which order, and how much
 * may wait unread (internal).
 *
 * The rules, which the public documentation of `Connection` states:
 * - A message goes at once to the consumers registered when it arrives:
 *   `next_message` handlers, then `each_message`/`message` handlers in
 *   registration order, then DOM listeners; pending `nextMessage()` calls
 *   and iterators alongside. So a reply sent from a handler leaves before
 *   Deno answers a close frame that followed the message.
 * - A message that arrives while nothing reads it is held, and the held
 *   messages go, in order, to every consumer registered in the task that
 *   registers the first one (delivered after that task).
 * - Errors and the finish wait until held messages are delivered, and never
 *   fire in the task that handed the connection to the application.
 * - Unread messages (held, or queued for an iterator) are bounded in count
 *   and bytes; past the bounds the host is told, once, to close.
 *
 * @module
 */

import { type CloseInfo, ConnectionClosedError } from "../close.ts";
import type { NextMessageOptions } from "../connection_options.ts";
import { CLOSE_CODE, type Message } from "../message.ts";
import { watchResult } from "./handlers.ts";
import {
  heldSize,
  MessageIterator,
  type QueueLimits,
} from "./message_iterator.ts";

/** What delivery asks of the connection it serves. */
export interface DeliveryHost {
  /** A consumer threw or its promise rejected. */
  handlerFailed(error: unknown): void;
  /** Ends the connection for `error` (unread messages over the bounds). */
  fail(code: number, reason: string, error: Error): void;
  /** Dispatches the DOM `message` event (listeners exist). */
  dispatchDomMessage(message: Message): void;
  /** Fires `parse_error` handlers and the DOM `error` event. */
  emitError(error: Error): void;
  /** Everything before the end was delivered: finish now. */
  finish(info: CloseInfo): void;
}

/** A `message` (Plack) or `each_message` (AnyEvent) registration. */
interface MessageEntry<C> {
  readonly plack: boolean;
  readonly fn: (conn: C, data: never, unregister: () => void) => unknown;
  readonly unregister: () => void;
}

interface Waiter {
  resolve(message: Message): void;
  reject(error: unknown): void;
}

const NONE: readonly never[] = Object.freeze([]);

/** Delivery for one connection; `C` is what handlers receive as `conn`. */
export class Delivery<C> {
  readonly #conn: C;
  readonly #host: DeliveryHost;
  readonly #limits: QueueLimits;
  // Consumers. Handler arrays are copied on write, so a dispatch iterates a
  // snapshot; the Sets are made on first use (most connections use none).
  #next: readonly ((conn: C, message: Message) => unknown)[] = NONE;
  #each: readonly MessageEntry<C>[] = NONE;
  #waiters: Set<Waiter> | undefined;
  #iterators: Set<MessageIterator> | undefined;
  #domListeners = 0;
  // Held messages and what waits behind them.
  #inbox: Message[] = [];
  #inboxBytes = 0;
  #pendingErrors: Error[] | undefined;
  #pendingFinish: CloseInfo | undefined;
  #ended: CloseInfo | undefined;
  // Set while nextMessage() is the only reader: a call then takes what
  // arrived since the last one at once.
  #pullOnly = false;
  #held = false;
  #overflowed = false;
  #scheduled = false;
  #onRejected: ((error: unknown) => void) | undefined;

  constructor(conn: C, host: DeliveryHost, limits: QueueLimits) {
    this.#conn = conn;
    this.#host = host;
    this.#limits = limits;
  }

  // ---- the hold and the after-task pass ----------------------------------

  /** Nothing but messages is delivered before the current task ends. */
  hold(): void {
    this.#held = true;
    this.#schedule();
  }

  /** One timer for every delivery that waits for the end of this task. */
  static #due: Delivery<unknown>[] = [];

  static #runDue(): void {
    const due = Delivery.#due;
    Delivery.#due = [];
    for (const delivery of due) {
      delivery.#scheduled = false;
      delivery.#held = false;
      delivery.#pump();
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (Delivery.#due.push(this as Delivery<unknown>) === 1) {
      // setImmediate runs once this task and its microtasks are done, like
      // setTimeout(0), without its 1 ms clamp, and costs ~1.1 µs where a
      // setTimeout(0) costs ~4.5 µs (one per handshake under load).
      setImmediate(Delivery.#runDue);
    }
  }

  #pump(): void {
    if (this.#held || this.#ended) return;
    const inbox = this.#inbox;
    while (inbox.length > 0 && this.#hasConsumers()) {
      const message = inbox.shift()!;
      this.#inboxBytes -= heldSize(message);
      this.#dispatch(message);
    }
    const errors = this.#pendingErrors;
    if (errors) {
      this.#pendingErrors = undefined;
      for (const error of errors) this.#host.emitError(error);
    }
    const info = this.#pendingFinish;
    if (info) this.#host.finish(info);
  }

  // ---- arrivals --------------------------------------------------------------

  /** A message arrived: deliver it now, or hold it within the bounds. */
  received(message: Message): void {
    // Past a bound the connection is closing with an error: later messages
    // reach no one (rather than some consumers, after a gap).
    if (this.#ended || this.#overflowed) return;
    if (this.#inbox.length === 0 && this.#hasConsumers()) {
      this.#dispatch(message);
      return;
    }
    const inbox = this.#inbox;
    inbox.push(message);
    this.#inboxBytes += heldSize(message);
    const { maxPendingMessages, maxPendingBytes } = this.#limits;
    if (
      inbox.length > 1 &&
      (inbox.length > maxPendingMessages || this.#inboxBytes > maxPendingBytes)
    ) {
      inbox.pop(); // what is held stays within the bounds
      this.#inboxBytes -= heldSize(message);
      this.#overflowed = true;
      this.#host.fail(
        CLOSE_CODE.POLICY_VIOLATION,
        "too many unread messages",
        new RangeError(
          inbox.length >= maxPendingMessages
            ? `More than ${maxPendingMessages} messages arrived with nothing reading them (maxPendingMessages)`
            : `More than ${maxPendingBytes} bytes of messages arrived with nothing reading them (maxPendingBytes)`,
        ),
      );
    }
  }

  /** An error to report: now, or after the held messages. */
  error(error: Error): void {
    if (this.#held || this.#inbox.length > 0) {
      (this.#pendingErrors ??= []).push(error);
    } else {
      this.#host.emitError(error);
    }
  }

  /** The connection ends: finish once the held messages are delivered. */
  end(info: CloseInfo): void {
    this.#pendingFinish = info;
    this.#pump();
  }

  /** The connection ends now: held messages stay for readers after the end. */
  endNow(info: CloseInfo): void {
    this.#pendingFinish = info;
    this.#held = false;
    this.#pump();
  }

  /** The connection finished: readers are told, registrations dropped. */
  finished(info: CloseInfo): void {
    this.#ended = info;
    this.#pendingFinish = undefined;
    const waiters = this.#waiters;
    if (waiters && waiters.size > 0) {
      const error = new ConnectionClosedError(info);
      for (const waiter of waiters) waiter.reject(error);
    }
    if (this.#iterators) {
      for (const iterator of this.#iterators) iterator.end(info);
      this.#iterators.clear();
    }
    this.#next = NONE;
    this.#each = NONE;
    this.#domListeners = 0;
  }

  /** Whether errors or the finish wait behind held messages. */
  get pending(): boolean {
    return this.#pendingFinish !== undefined;
  }

  // ---- consumers -------------------------------------------------------------

  /** Registers a `message` (plack) or `each_message` handler. */
  addMessageHandler(
    plack: boolean,
    fn: MessageEntry<C>["fn"],
  ): () => void {
    const entry: MessageEntry<C> = {
      plack,
      fn,
      unregister: () => {
        if (this.#each.includes(entry)) {
          this.#each = this.#each.filter((e) => e !== entry);
        }
      },
    };
    this.#each = [...this.#each, entry];
    this.#consumerAdded();
    return entry.unregister;
  }

  /** Registers a `next_message` handler. */
  addNextHandler(fn: (conn: C, message: Message) => unknown): () => void {
    this.#next = [...this.#next, fn];
    this.#consumerAdded();
    return () => {
      const i = this.#next.indexOf(fn);
      if (i >= 0) this.#next = this.#next.toSpliced(i, 1);
    };
  }

  /** A DOM `message` listener was added. */
  domListenerAdded(): void {
    this.#domListeners++;
    this.#consumerAdded();
  }

  /** A DOM `message` listener was removed. */
  domListenerRemoved(): void {
    if (this.#domListeners > 0) this.#domListeners--;
    this.#consumerRemoved();
  }

  /** See `Connection.nextMessage`. */
  next(options: NextMessageOptions): Promise<Message> {
    const { signal, timeout } = options;
    if (this.#ended) return this.#takeAfterEnd();
    if (signal?.aborted) return Promise.reject(signal.reason);
    // A reader that only pulls owns what arrived since its last call: hand
    // it over now rather than after a macrotask (~2 ms per message under the
    // timer clamp).
    if (
      this.#pullOnly && this.#inbox.length > 0 && !this.#held &&
      !this.#scheduled && !this.#hasPushConsumers()
    ) {
      const message = this.#inbox.shift()!;
      this.#inboxBytes -= heldSize(message);
      return Promise.resolve(message);
    }
    return new Promise<Message>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = () => {
        this.#waiters!.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        resolve: (message) => (settle(), resolve(message)),
        reject: (error) => (settle(), reject(error)),
      };
      const onAbort = () => waiter.reject(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(
          () =>
            waiter.reject(
              new DOMException(
                `No message arrived within ${timeout} ms`,
                "TimeoutError",
              ),
            ),
          timeout,
        );
      }
      (this.#waiters ??= new Set()).add(waiter);
      this.#consumerAdded();
    });
  }

  /** See `Connection[Symbol.asyncIterator]`. */
  iterate(): MessageIterator {
    const iterator = new MessageIterator(this.#limits, (unread) => {
      this.#iterators?.delete(iterator);
      // Messages this iterator took but never yielded (the loop broke early)
      // go to the next reader, unless another consumer already saw them.
      if (unread.length > 0 && !this.#hasConsumers() && !this.#ended) {
        this.#inbox.unshift(...unread);
        for (const message of unread) this.#inboxBytes += heldSize(message);
      }
      this.#consumerRemoved();
      this.#consumerAdded();
    });
    if (this.#ended) {
      for (const message of this.#inbox.splice(0)) iterator.push(message);
      this.#inboxBytes = 0;
      iterator.end(this.#ended);
    } else {
      (this.#iterators ??= new Set()).add(iterator);
      this.#consumerAdded();
    }
    return iterator;
  }

  #takeAfterEnd(): Promise<Message> {
    const held = this.#inbox.shift();
    if (!held) return Promise.reject(new ConnectionClosedError(this.#ended!));
    this.#inboxBytes -= heldSize(held);
    return Promise.resolve(held);
  }

  #hasConsumers(): boolean {
    return (this.#waiters !== undefined && this.#waiters.size > 0) ||
      this.#hasPushConsumers();
  }

  #hasPushConsumers(): boolean {
    return this.#each.length > 0 || this.#next.length > 0 ||
      this.#domListeners > 0 ||
      (this.#iterators !== undefined && this.#iterators.size > 0);
  }

  #consumerAdded(): void {
    if (this.#inbox.length > 0 || this.#pendingFinish) this.#schedule();
  }

  #consumerRemoved(): void {
    if (this.#pendingFinish) this.#schedule();
  }

  // ---- one message to every consumer ---------------------------------------

  #dispatch(message: Message): void {
    const waiters = this.#waiters;
    if (waiters !== undefined && waiters.size > 0) {
      this.#pullOnly = !this.#hasPushConsumers();
      for (const waiter of waiters) waiter.resolve(message);
    } else {
      this.#pullOnly = false;
    }
    const iterators = this.#iterators;
    if (iterators !== undefined && iterators.size > 0) {
      let fits = true;
      for (const iterator of iterators) fits = iterator.push(message) && fits;
      if (!fits) this.#iteratorOverflow();
    }
    const next = this.#next;
    if (next.length > 0) this.#next = NONE;
    // Snapshots: a handler registered while this message is dispatched
    // starts with the next one.
    const each = this.#each;
    const conn = this.#conn;
    try {
      for (const handler of next) this.#watch(handler(conn, message));
      for (const { plack, fn, unregister } of each) {
        this.#watch(
          plack
            ? fn(
              conn,
              (message.isText()
                ? message.decodedBody()
                : message.body) as never,
              unregister,
            )
            : fn(conn, message as never, unregister),
        );
      }
    } catch (error) {
      // A throwing handler skips the rest of this message's consumers.
      this.#host.handlerFailed(error);
      return;
    }
    if (this.#domListeners > 0) this.#host.dispatchDomMessage(message);
  }

  /** An async handler is a handler: its rejection is a failure too. */
  #watch(result: unknown): void {
    watchResult(
      result,
      this.#onRejected ??= (error) => this.#host.handlerFailed(error),
    );
  }

  #iteratorOverflow(): void {
    this.#overflowed = true;
    const { maxPendingMessages, maxPendingBytes } = this.#limits;
    this.#host.fail(
      CLOSE_CODE.POLICY_VIOLATION,
      "too many unread messages",
      new RangeError(
        `A for await loop fell more than ${maxPendingMessages} messages or ${maxPendingBytes} bytes behind (maxPendingMessages, maxPendingBytes)`,
      ),
    );
  }
}
