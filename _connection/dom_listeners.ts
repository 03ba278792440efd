/**
 * DOM listeners of a connection (internal):
 * - each is wrapped, so that one that throws or rejects cannot reach Deno
 *   (where an uncaught listener error ends the process);
 * - which event types have listeners, so that nobody's events are not even
 *   created;
 * - `message` listeners are also kept in a list of our own, in registration
 *   order, and called directly for each received message.
 *
 * Why the list: `dispatchEvent` (Deno's event path, phases and listener
 * bookkeeping) cost ~0.25 µs per message, on top of the dispatch Deno
 * already made on the socket; the DOM style of echo paid ~6% more server
 * CPU than `on("message")`. Calling the listeners from our list keeps what a
 * listener can see: a `MessageEvent` whose `target` and `currentTarget` are
 * the connection, `eventPhase` AT_TARGET, listeners in the order they were
 * added (capture or not: at the target, Deno does the same), `once`,
 * `signal`, `handleEvent` objects, `stopImmediatePropagation()`, a listener
 * removed during a dispatch not called, one added during it not called for
 * that message. The wrappers stay registered on the `EventTarget` too, so a
 * `message` event the application dispatches itself reaches them as usual.
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

/** One `message` registration in our list. */
interface MessageRegistration {
  readonly wrapper: EventListener;
  readonly capture: boolean;
  removed: boolean;
}

/**
 * The `message` event our list hands to listeners: a real `MessageEvent`
 * whose target is the connection, as `dispatchEvent` would have made it.
 */
class ConnectionMessageEvent<T> extends MessageEvent<T> {
  #target: EventTarget;
  #dispatching = true;
  stopped = false;

  constructor(target: EventTarget, data: T) {
    super("message", { data });
    this.#target = target;
  }

  /** The dispatch is over: no current target any more. */
  done(): void {
    this.#dispatching = false;
  }

  override stopImmediatePropagation(): void {
    this.stopped = true;
    super.stopImmediatePropagation();
  }

  override composedPath(): EventTarget[] {
    return this.#dispatching ? [this.#target] : [];
  }

  static {
    // Accessors, as on Event.prototype (TypeScript types them as fields).
    const target = function (this: ConnectionMessageEvent<unknown>) {
      return this.#target;
    };
    Object.defineProperties(this.prototype, {
      target: { get: target, configurable: true, enumerable: true },
      srcElement: { get: target, configurable: true, enumerable: true },
      currentTarget: {
        get(this: ConnectionMessageEvent<unknown>) {
          return this.#dispatching ? this.#target : null;
        },
        configurable: true,
        enumerable: true,
      },
      eventPhase: {
        get(this: ConnectionMessageEvent<unknown>) {
          return this.#dispatching ? Event.AT_TARGET : Event.NONE;
        },
        configurable: true,
        enumerable: true,
      },
    });
  }
}

const NO_REGISTRATIONS: readonly MessageRegistration[] = Object.freeze([]);

/** The wrappers of one connection's listeners. */
export class DomListeners {
  #wrappers: Map<string, WeakMap<object, EventListener>> | undefined;
  #listened = 0;
  // Copied on write: a dispatch iterates the array it started with.
  #message: readonly MessageRegistration[] = NO_REGISTRATIONS;

  /** Whether `type` has ever had a listener (message is counted elsewhere). */
  listened(type: string): boolean {
    return (this.#listened & (BITS[type] ?? 0)) !== 0;
  }

  /** How many `message` listeners are registered. */
  get messageListeners(): number {
    return this.#message.length;
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
      const message = type === "message";
      wrapper = (event: Event) => {
        // `once`: EventTarget drops its own registration before calling;
        // ours goes too, whichever of the two dispatched.
        if (message) this.#onceFired(wrapper!, capture);
        try {
          const result: unknown = typeof listener === "function"
            ? listener.call(target, event)
            : listener.handleEvent(event);
          watchResult(result, failed);
        } catch (error) {
          // As for a throwing handler: skip the rest of this message's
          // consumers. Other events still reach every listener.
          if (message) event.stopImmediatePropagation();
          failed(error);
        }
      };
      byListener.set(listener, wrapper);
    }
    return wrapper;
  }

  /**
   * Adds `wrapper` to the `message` list (after EventTarget took it).
   *
   * @returns Whether it was added: `false` for a duplicate, or an aborted
   * signal, as EventTarget decides.
   */
  addMessage(
    wrapper: EventListener,
    options: boolean | AddEventListenerOptions | undefined,
    removed: () => void,
  ): boolean {
    const capture = typeof options === "boolean" ? options : !!options?.capture;
    const signal = typeof options === "object" ? options.signal : undefined;
    if (signal?.aborted) return false;
    if (this.#find(wrapper, capture)) return false;
    const registration: MessageRegistration = {
      wrapper,
      capture,
      removed: false,
    };
    this.#message = [...this.#message, registration];
    if (typeof options === "object" && options.once) {
      this.#once ??= new WeakSet();
      this.#once.add(registration);
    }
    signal?.addEventListener("abort", () => {
      if (this.#drop(registration)) removed();
    }, { once: true });
    return true;
  }

  /** Removes `wrapper` from the `message` list; `true` if it was there. */
  removeMessage(wrapper: EventListener, capture: boolean): boolean {
    const registration = this.#find(wrapper, capture);
    return registration !== undefined && this.#drop(registration);
  }

  /**
   * Calls every `message` listener with a `MessageEvent` of `data` whose
   * target is `target`, as `target.dispatchEvent` would.
   */
  dispatchMessage<T>(target: EventTarget, data: T): void {
    const registrations = this.#message;
    const event = new ConnectionMessageEvent(target, data);
    for (const registration of registrations) {
      if (registration.removed) continue;
      registration.wrapper(event);
      if (event.stopped) break;
    }
    event.done();
  }

  // `once` registrations, to drop when they fire.
  #once: WeakSet<MessageRegistration> | undefined;
  // Told when a `once` registration fired and was dropped.
  onceRemoved: ((wrapper: EventListener, capture: boolean) => void) | undefined;

  #onceFired(wrapper: EventListener, capture: boolean): void {
    if (!this.#once) return;
    const registration = this.#find(wrapper, capture);
    if (!registration || !this.#once.has(registration)) return;
    if (this.#drop(registration)) this.onceRemoved?.(wrapper, capture);
  }

  #find(
    wrapper: EventListener,
    capture: boolean,
  ): MessageRegistration | undefined {
    for (const registration of this.#message) {
      if (
        registration.wrapper === wrapper && registration.capture === capture
      ) {
        return registration;
      }
    }
    return undefined;
  }

  #drop(registration: MessageRegistration): boolean {
    if (registration.removed) return false;
    registration.removed = true;
    this.#message = this.#message.filter((r) => r !== registration);
    return true;
  }
}
