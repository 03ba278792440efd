/**
 * The iterator behind `for await (const message of conn)`, and the size a
 * held message counts against the unread bounds (internal).
 *
 * @module
 */

import { type CloseInfo, ConnectionClosedError } from "../close.ts";
import { CLOSE_CODE, type Message } from "../message.ts";

/**
 * What a held message counts against `maxPendingBytes`: a binary message its
 * byte length, a text message its UTF-16 length (no scan of the string; it is
 * at most its UTF-8 size, so a message within `maxMessageSize` always fits).
 *
 * @param message A received message.
 * @returns Its counted size.
 */
export function heldSize(message: Message): number {
  return message.isText()
    ? message.decodedBody().length
    : message.body.byteLength;
}

/** The limits of one queue of unread messages. */
export interface QueueLimits {
  readonly maxPendingMessages: number;
  readonly maxPendingBytes: number;
}

/**
 * The iterator behind `for await (const message of conn)`. Its queue holds
 * what arrived while the loop body was busy, within the connection's unread
 * bounds: {@linkcode MessageIterator.push} reports an overflow instead of
 * growing without end.
 */
export class MessageIterator implements AsyncIterableIterator<Message> {
  #queue: Message[] = [];
  #queuedBytes = 0;
  #overflowed = false;
  #waiting: PromiseWithResolvers<IteratorResult<Message>> | undefined;
  #end: CloseInfo | undefined;
  readonly #limits: QueueLimits;
  readonly #onReturn: (unread: Message[]) => void;

  constructor(limits: QueueLimits, onReturn: (unread: Message[]) => void) {
    this.#limits = limits;
    this.#onReturn = onReturn;
  }

  /**
   * Hands a message to the loop, or queues it.
   *
   * @returns `false` when the message does not fit in the connection's
   * unread bounds. It is not queued, nor is any later one: the connection is
   * about to close, and the loop gets what came before, then the error
   * (without this, a peer kept the queue growing until Deno stopped reading:
   * 14 messages of 8 MiB for a 32 MiB bound, measured).
   */
  push(message: Message): boolean {
    if (this.#overflowed) return false;
    if (this.#waiting) {
      this.#waiting.resolve({ value: message, done: false });
      this.#waiting = undefined;
      return true;
    }
    const queue = this.#queue;
    const size = heldSize(message);
    if (queue.length === 0) {
      queue.push(message);
      this.#queuedBytes = size;
      return true; // the first unread message always fits
    }
    if (
      queue.length >= this.#limits.maxPendingMessages ||
      this.#queuedBytes + size > this.#limits.maxPendingBytes
    ) {
      this.#overflowed = true;
      return false;
    }
    queue.push(message);
    this.#queuedBytes += size;
    return true;
  }

  /** The loop ends (or throws, for an abnormal end) once the queue is read. */
  end(info: CloseInfo): void {
    this.#end = info;
    if (this.#waiting && this.#queue.length === 0) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      this.#settleEnd(waiting);
    }
  }

  /** The next message: at once when one is queued, else when it arrives. */
  next(): Promise<IteratorResult<Message>> {
    const message = this.#queue.shift();
    if (message) {
      this.#queuedBytes -= heldSize(message);
      return Promise.resolve({ value: message, done: false });
    }
    const waiting = Promise.withResolvers<IteratorResult<Message>>();
    if (this.#end) this.#settleEnd(waiting);
    else this.#waiting = waiting;
    return waiting.promise;
  }

  /** Stops the loop; what it had not yielded goes back to the connection. */
  return(): Promise<IteratorResult<Message>> {
    const unread = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#end ??= { code: CLOSE_CODE.NORMAL, reason: "", wasClean: true };
    this.#onReturn(unread);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }

  #settleEnd(waiting: PromiseWithResolvers<IteratorResult<Message>>): void {
    const info = this.#end!;
    if (info.error) {
      // Throw once, then behave as a finished iterator.
      const { error: _thrown, ...rest } = info;
      this.#end = rest;
      waiting.reject(new ConnectionClosedError(info));
    } else {
      waiting.resolve({ value: undefined, done: true });
    }
  }
}
