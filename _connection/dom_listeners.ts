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

/** What the listeners of a connection tell it. */
export interface DomListenersHost {
  /** A listener of `type` threw or rejected. */
  failed(type: string, error: unknown): void;
  /** A `message` listener was added to, or left, the list. */
  messageListenerAdded(): void;
  messageListenerRemoved(): void;
}

const addListener = EventTarget.prototype.addEventListener;
const removeListener = EventTarget.prototype.removeEventListener;

/** The listeners of one connection. */
export class DomListeners {
  readonly #target: EventTarget;
  readonly #host: DomListenersHost;
  #wrappers: Map<string, WeakMap<object, EventListener>> | undefined;
  #listened = 0;
  // Copied on write: a dispatch iterates the array it started with.
  #message: readonly MessageRegistration[] = NO_REGISTRATIONS;

  /**
   * @param target The connection: `this` of every listener, and the
   * `EventTarget` the wrappers are registered on.
   * @param host What to tell the connection.
   */
  constructor(target: EventTarget, host: DomListenersHost) {
    this.#target = target;
    this.#host = host;
  }

  /** `addEventListener`, for a listener that is not null. */
  add(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options: boolean | AddEventListenerOptions | undefined,
  ): void {
    const wrapper = this.#wrapperFor(type, listener, options, true)!;
    addListener.call(this.#target, type, wrapper, options);
    if (type === "message" && this.#addMessage(wrapper, options)) {
      this.#host.messageListenerAdded();
    }
  }

  /** `removeEventListener`, for a listener that is not null. */
  remove(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options: boolean | EventListenerOptions | undefined,
  ): void {
    const wrapper = this.#wrapperFor(type, listener, options, false);
    if (!wrapper) return;
    removeListener.call(this.#target, type, wrapper, options);
    const capture = typeof options === "boolean" ? options : !!options?.capture;
    const registration = type === "message"
      ? this.#find(wrapper, capture)
      : undefined;
    if (registration && this.#drop(registration)) {
      this.#host.messageListenerRemoved();
    }
  }

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
   * it with the target as `this` and hands a throw or a rejection to the
   * host. A `message` listener that throws also stops the event there.
   */
  #wrapperFor(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options: boolean | EventListenerOptions | undefined,
    create: boolean,
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
      const target = this.#target;
      const failed = (error: unknown) => this.#host.failed(type, error);
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
  #addMessage(
    wrapper: EventListener,
    options: boolean | AddEventListenerOptions | undefined,
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
      if (this.#drop(registration)) this.#host.messageListenerRemoved();
    }, { once: true });
    return true;
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

  #onceFired(wrapper: EventListener, capture: boolean): void {
    if (!this.#once) return;
    const registration = this.#find(wrapper, capture);
    if (!registration || !this.#once.has(registration)) return;
    if (!this.#drop(registration)) return;
    // Fired from our list: EventTarget still has it (or fired it itself, and
    // this removes nothing).
    removeListener.call(this.#target, "message", wrapper, capture);
    this.#host.messageListenerRemoved();
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
