/**
 * The wire: one standard `WebSocket` as a connection drives it (internal).
 * It queues sends made while the socket connects, keeps the send budget
 * (with Deno's own per-send cost counted), reads `bufferedAmount` unsigned,
 * and watches for a silent peer.
 *
 * @module
 */

import type { ResolvedLimits } from "../connection_options.ts";
import { type CloseInfo, ConnectionClosedError } from "../close.ts";
import { DrainWaiters } from "../backpressure.ts";
import { CLOSE_CODE, Message, sendableLength } from "../message.ts";
import { forceShut, isRuntimeFailure, watchSocket } from "./runtime_guard.ts";

/** What `toSendable()` returns: what a socket's `send()` takes. */
export type Sendable = string | Uint8Array | ArrayBuffer | Blob;

/** What the wire reports to the connection it serves. */
export interface WireHost {
  /** The socket opened and the sends queued while connecting went out. */
  opened(): void;
  /** A text or binary message arrived (`data` as the socket gave it). */
  received(data: unknown): void;
  /** The socket closed; `error` is Deno's error event text, if any. */
  socketClosed(event: CloseEvent, error: string | undefined): void;
  /**
   * Something this side detected ends the connection: report `error`, close
   * with `code` (a registered 10xx code; the client side sends 40xx).
   */
  fail(code: number, reason: string, error: Error): void;
  /** Nothing arrived for `inactivityTimeout` milliseconds. */
  silent(error: DOMException): void;
}

/**
 * About how much memory Deno holds for each send still queued, beyond its
 * own copy of the payload (measured on Deno 2.9.6: 1.1-1.4 KiB, whatever the
 * payload size; tests/bounds_test.ts). Counting it for every queued send
 * bounds a flood of small sends to a peer that does not read, which payload
 * bytes alone miss by ~60x for 16-byte messages.
 */
export const SEND_COST = 1024;

// WebSocket ready states as constants: `WebSocket` is a getter on Deno's
// global object, and its constants cost ~8 ns a read on the per-send path.
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** The send size from which {@linkcode SEND_COST} is not counted. */
const LARGE_SEND = 64 * 1024;

const SOCKET_EVENTS = ["message", "open", "error", "close"] as const;

/**
 * One socket, driven for a connection. It is its own listener object (one
 * `handleEvent` for the four events rather than a closure each: smaller per
 * idle connection).
 */
export class Wire implements EventListenerObject {
  socket: WebSocket;
  protected readonly host: WireHost;
  readonly #maxBufferedAmount: number;
  readonly #inactivityTimeout: number;
  #outbox: Sendable[] | undefined;
  // The budget: each send subtracts an upper bound of what it costs, and
  // only when it goes negative is Deno's bufferedAmount read. Sends and
  // their sizes since the buffer was last seen empty give the average size
  // from which the number of sends still queued is estimated.
  #budget: number;
  #sends = 0;
  #sentUnits = 0;
  #socketError: string | undefined;
  #drain: DrainWaiters | undefined;
  #closing = false;
  #ended = false;
  #inactivityTimer: ReturnType<typeof setInterval> | undefined;
  #heard = true;
  #silentTicks = 0;

  constructor(socket: WebSocket, host: WireHost, limits: ResolvedLimits) {
    this.socket = socket;
    this.host = host;
    this.#maxBufferedAmount = limits.maxBufferedAmount;
    this.#budget = limits.maxBufferedAmount;
    this.#inactivityTimeout = limits.inactivityTimeout;
    this.attach(socket);
  }

  /** The socket's state (a reconnecting wire reads CONNECTING between sockets). */
  get readyState(): number {
    return this.socket.readyState;
  }

  /** Bytes accepted but not yet handed to the kernel (payload only). */
  get bufferedAmount(): number {
    let queued = 0;
    if (this.#outbox) {
      for (const data of this.#outbox) queued += sendableLength(data);
    }
    // Deno's counter is an i32 that wraps past 2 GiB.
    return (this.socket.bufferedAmount >>> 0) + queued;
  }

  /**
   * Waits until at most `highWaterMark` bytes are buffered (see
   * `Connection.drained`); rejects once the connection closes.
   */
  drained(
    highWaterMark: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.#drain ??= new DrainWaiters(() =>
      this.#closing || this.socket.readyState !== WebSocket.OPEN
        ? undefined
        : this.socket.bufferedAmount >>> 0
    );
    return this.#drain.wait(highWaterMark, signal);
  }

  /** Sends now, queues while connecting, or hands to `unsent()` otherwise. */
  send(payload: Sendable): void {
    const state = this.socket.readyState;
    if (state === OPEN) {
      this.socket.send(payload);
    } else if (state === CONNECTING) {
      (this.#outbox ??= []).push(payload);
    } else {
      this.unsent(payload);
      return;
    }
    this.#count(payload);
  }

  /**
   * Sends `payload` if the socket is open, else does nothing.
   *
   * @returns Whether it was sent.
   */
  sendIfOpen(payload: Sendable): boolean {
    if (this.socket.readyState !== OPEN) return false;
    this.socket.send(payload);
    this.#count(payload);
    return true;
  }

  /** Counts a send against the budget. */
  #count(payload: Sendable): void {
    let units: number, bound: number;
    if (typeof payload === "string") {
      units = payload.length;
      bound = units * 3; // a UTF-16 unit never takes more than 3 UTF-8 bytes
    } else {
      units = bound = (payload as ArrayBuffer).byteLength ??
        (payload as Blob).size;
    }
    this.#sends++;
    this.#sentUnits += units;
    if ((this.#budget -= bound + SEND_COST) < 0) this.#checkBuffered();
  }

  /** A send while the socket is closing or closed: nothing goes out. */
  protected unsent(_payload: Sendable): void {}

  /** Starts the closing handshake; returns Deno's refusal, if any. */
  close(
    code: number | undefined,
    reason: string | undefined,
  ): Error | undefined {
    this.#closing = true;
    this.#outbox = undefined;
    try {
      this.socket.close(code, reason);
      return undefined;
    } catch (error) {
      // Codes and reasons are checked before we get here; this is Deno
      // refusing for a reason of its own.
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  /**
   * Closes the TCP connection now, for a peer that did not answer the close
   * frame: Deno then frees what the socket held (denoland/deno#27924).
   */
  shut(): void {
    forceShut(this.socket);
  }

  /**
   * Stops listening to the socket and watching for silence; with `ended`, the
   * connection has finished and drain waiters get its error.
   */
  detach(ended?: CloseInfo): void {
    this.stopWatching();
    if (ended) {
      this.#closing = true;
      this.#ended = true;
      // An Error captures a stack trace: make one only when someone waits.
      this.#drain?.fail(new ConnectionClosedError(ended));
      // A closed socket dispatches nothing more but, after an idle timeout,
      // a second close, which handleEvent ignores: its listeners can stay,
      // and their removal (a quarter of the JS time of a close) is saved.
      if (this.socket.readyState === CLOSED) return;
    }
    for (const type of SOCKET_EVENTS) {
      this.socket.removeEventListener(type, this);
    }
  }

  handleEvent(event: Event): void {
    if (this.#ended) return;
    switch (event.type) {
      case "message":
        this.#heard = true;
        return this.host.received((event as MessageEvent).data);
      case "open":
        return this.opened();
      case "error":
        if (isRuntimeFailure(event)) {
          // Deno's own receive loop failed (see runtime_guard.ts).
          return this.host.fail(
            CLOSE_CODE.MESSAGE_TOO_BIG,
            "message too big",
            event.error,
          );
        }
        this.#socketError ??= (event as ErrorEvent).message ||
          "WebSocket error";
        return;
      case "close":
        return this.socketClosed(event as CloseEvent, this.#socketError);
    }
  }

  /** Listens to a socket; its sends and errors start afresh. */
  protected attach(socket: WebSocket): void {
    watchSocket(socket); // no-op once open: connect() watched it already
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.#socketError = undefined;
    for (const type of SOCKET_EVENTS) socket.addEventListener(type, this);
    if (socket.readyState === WebSocket.OPEN) this.watch();
  }

  protected opened(): void {
    this.watch();
    this.flushOutbox();
    this.host.opened();
  }

  protected socketClosed(event: CloseEvent, error: string | undefined): void {
    this.host.socketClosed(event, error);
  }

  /** Sends what was queued while connecting, oldest first. */
  protected flushOutbox(): void {
    const queued = this.#outbox;
    if (!queued) return;
    this.#outbox = undefined;
    for (const data of queued) this.socket.send(data);
  }

  /** Over the budget: estimate what the sends really hold, fail if too much. */
  #checkBuffered(): void {
    const payload = this.bufferedAmount;
    if (payload === 0) {
      this.#sends = this.#sentUnits = 0;
      this.#budget = this.#maxBufferedAmount;
      return;
    }
    const average = Math.max(this.#sentUnits / this.#sends, 1);
    const queued = Math.min(this.#sends, Math.ceil(payload / average));
    // Deno holds a copy of each queued payload plus SEND_COST of its own (a
    // 1 KiB send holds ~2 KiB: counting only the larger of the two let 16 MiB
    // of budget hold ~31 MiB). From LARGE_SEND up the cost is
    // under 2% and is left out, so that one message of maxBufferedAmount
    // (or two of half of it) still fits.
    const held = payload + (average < LARGE_SEND ? queued * SEND_COST : 0);
    const room = this.#maxBufferedAmount - held;
    if (room >= 0) {
      this.#budget = room;
      return;
    }
    this.#budget = Infinity; // fail once; the connection closes
    this.host.fail(
      CLOSE_CODE.POLICY_VIOLATION,
      "send buffer full",
      new RangeError(
        `Cannot buffer more for a peer that is not reading: ${payload} bytes in about ${queued} sends are waiting to be sent, about ${held} bytes with Deno's per-send cost; maxBufferedAmount is ${this.#maxBufferedAmount}`,
      ),
    );
  }

  // ---- inactivity (ConnectionOptions.inactivityTimeout) ---------------------

  /** Starts the inactivity check, if configured. */
  protected watch(): void {
    if (this.#inactivityTimeout === 0 || this.#inactivityTimer) return;
    this.#heard = true;
    this.#inactivityTimer = setInterval(() => {
      if (this.#heard) {
        this.#heard = false;
        this.#silentTicks = 0;
        return;
      }
      // Two silent half-periods in a row: at least one full timeout.
      if (++this.#silentTicks < 2) return;
      this.stopWatching();
      this.silent(
        new DOMException(
          `No message from the peer for ${this.#inactivityTimeout} ms (inactivityTimeout): it is gone or not sending`,
          "TimeoutError",
        ),
      );
    }, this.#inactivityTimeout / 2);
  }

  protected stopWatching(): void {
    clearInterval(this.#inactivityTimer);
    this.#inactivityTimer = undefined;
  }

  protected silent(error: DOMException): void {
    this.host.silent(error);
  }
}

/**
 * The {@linkcode Message} for what a socket's `message` event carried, or
 * the error that refuses it.
 *
 * @param data The event's `data`.
 * @param maxMessageSize The largest message accepted, in bytes.
 * @returns The message; a `RangeError` for one over the limit; a `TypeError`
 * for a Blob (only when someone set `binaryType = "blob"` behind our back).
 */
export function toMessage(
  data: unknown,
  maxMessageSize: number,
): Message | RangeError | TypeError {
  let message: Message;
  if (typeof data === "string") {
    message = new Message(data);
  } else if (data instanceof ArrayBuffer) {
    message = new Message(new Uint8Array(data));
  } else {
    return new TypeError(
      'Cannot read a Blob message: keep socket.binaryType as "arraybuffer"',
    );
  }
  // A string of n UTF-16 units is at most 3n UTF-8 bytes: counting them walks
  // the whole string (a third of the CPU of a 16 KiB text echo), so count
  // only when that bound exceeds the limit.
  if (
    (typeof data !== "string" || data.length * 3 > maxMessageSize) &&
    message.byteLength > maxMessageSize
  ) {
    return new RangeError(
      `Received a message of ${message.byteLength} bytes; maxMessageSize is ${maxMessageSize}`,
    );
  }
  return message;
}

/**
 * How a socket ended, as anyws reports it: Deno's code 0 for an abnormal
 * closure becomes 1006, and an unclean end carries an error (Deno's error
 * event text, if any).
 *
 * @param event The socket's close event.
 * @param socketError The text of its error event, if one came.
 * @returns The close details.
 */
export function closeInfoOf(
  event: CloseEvent,
  socketError: string | undefined,
): CloseInfo {
  const code = event.code === 0 ? CLOSE_CODE.ABNORMAL : event.code;
  const clean = event.wasClean && code !== CLOSE_CODE.ABNORMAL;
  return {
    code,
    reason: event.reason,
    wasClean: event.wasClean,
    ...(clean ? {} : {
      error: new Error(
        socketError ?? `Connection closed abnormally (code ${code})`,
      ),
    }),
  };
}
