/**
 * The iterator behind `for await (const message of conn)` (internal).
 *
 * @module
 */

import { type CloseInfo, ConnectionClosedError } from "./close.ts";
import { CLOSE_CODE, type Message } from "./message.ts";

/** The iterator behind `for await (const message of conn)`. */
export class MessageIterator implements AsyncIterableIterator<Message> {
  #queue: Message[] = [];
  #waiting: PromiseWithResolvers<IteratorResult<Message>> | undefined;
  #end: CloseInfo | undefined;
  #onReturn: (unread: Message[]) => void;

  constructor(onReturn: (unread: Message[]) => void) {
    this.#onReturn = onReturn;
  }

  push(message: Message): void {
    if (this.#waiting) {
      this.#waiting.resolve({ value: message, done: false });
      this.#waiting = undefined;
    } else {
      this.#queue.push(message);
    }
  }

  end(info: CloseInfo): void {
    this.#end = info;
    if (this.#waiting && this.#queue.length === 0) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      this.#settleEnd(waiting);
    }
  }

  next(): Promise<IteratorResult<Message>> {
    const message = this.#queue.shift();
    if (message) return Promise.resolve({ value: message, done: false });
    const waiting = Promise.withResolvers<IteratorResult<Message>>();
    if (this.#end) this.#settleEnd(waiting);
    else this.#waiting = waiting;
    return waiting.promise;
  }

  return(): Promise<IteratorResult<Message>> {
    const unread = this.#queue;
    this.#queue = [];
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
