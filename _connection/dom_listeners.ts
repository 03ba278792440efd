/**
 * DOM listeners of a connection, wrapped so that one that throws or rejects
 * cannot reach Deno (where an uncaught listener error ends the process), and
 * which event types have listeners, so that nobody's events are not even
 * created (internal).
 *
 * @module
 */

import { watchResult } from "./handlers.ts";

// Event types that have had a listener, as bits.
const BITS: Record<string, number> = {
  open: 1,
  error: 2,
  close: 4,
  reconnecting: 8,
  reconnect: 16,
};

/** The wrappers of one connection's listeners. */
export class DomListeners {
  #wrappers: Map<string, WeakMap<object, EventListener>> | undefined;
  #listened = 0;

  /** Whether `type` has ever had a listener (message is counted elsewhere). */
  listened(type: string): boolean {
    return (this.#listened & (BITS[type] ?? 0)) !== 0;
  }

  /**
   * The wrapper of `listener` for `type` (made when `create`), which calls
   * it with `target` as `this` and hands a throw or a rejection to
   * `failed`. A `message` listener that throws also stops the event there.
   */
  wrapperFor(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options: boolean | EventListenerOptions | undefined,
    create: boolean,
    target: EventTarget,
    failed: (error: unknown) => void,
    onceFired?: () => void,
  ): EventListener | undefined {
    const capture = typeof options === "boolean" ? options : !!options?.capture;
    const key = `${capture}:${type}`;
    let byListener = this.#wrappers?.get(key);
    if (!byListener) {
      if (!create) return undefined;
      byListener = new WeakMap();
      (this.#wrappers ??= new Map()).set(key, byListener);
    }
    let wrapper = byListener.get(listener);
    if (!wrapper && create) {
      this.#listened |= BITS[type] ?? 0;
      const once = typeof options === "object" &&
        !!(options as AddEventListenerOptions).once;
      wrapper = (event: Event) => {
        if (once) onceFired?.();
        try {
          const result: unknown = typeof listener === "function"
            ? listener.call(target, event)
            : listener.handleEvent(event);
          watchResult(result, failed);
        } catch (error) {
          // As for a throwing handler: skip the rest of this message's
          // consumers. Other events still reach every listener.
          if (type === "message") event.stopImmediatePropagation();
          failed(error);
        }
      };
      byListener.set(listener, wrapper);
    }
    return wrapper;
  }
}
