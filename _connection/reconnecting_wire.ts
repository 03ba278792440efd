/**
 * The wire over a succession of sockets, for a reconnecting client
 * connection (internal): when the socket is lost, ask the
 * {@linkcode Reconnector} for a new one (its policy and backoff), queue
 * sends meanwhile, adopt the new socket, run the `reconnect` hooks, then
 * flush.
 *
 * @module
 */

import { deadline } from "@std/async/deadline";
import { type CloseInfo, ConnectionClosedError } from "../close.ts";
import type { ResolvedLimits } from "../connection_options.ts";
import { CLOSE_CODE } from "../message.ts";
import type {
  ReconnectInfo,
  ReconnectingInfo,
  Reconnector,
} from "../reconnect.ts";
import { closeInfoOf, type Sendable, Wire, type WireHost } from "./wire.ts";

/** What a reconnecting wire reports beyond a plain wire's events. */
export interface ReconnectingWireHost extends WireHost {
  /** The socket is lost (or an attempt failed) and a wait begins. */
  reconnecting(info: ReconnectingInfo): void;
  /**
   * A new socket is open: run the `reconnect` hooks. Returns what the queue
   * must wait for, or `undefined` when a hook failed (the connection is
   * closing).
   */
  reconnected(info: ReconnectInfo): Promise<unknown>[] | undefined;
  /** A hook's promise rejected or did not settle within `hookTimeout`. */
  handlerFailed(error: unknown): void;
  /** The reconnector gave up, or the connection was closed between sockets. */
  gaveUp(info: CloseInfo): void;
}

/** A wire that survives the loss of its socket. */
export class ReconnectingWire extends Wire {
  readonly #reconnector: Reconnector;
  declare protected readonly host: ReconnectingWireHost;
  #closing = false;
  /** Set while waiting for a new socket. */
  #between: AbortController | undefined;
  /** Bumped per socket, so that late hook results for an old one are ignored. */
  #generation = 0;

  constructor(
    socket: WebSocket,
    host: ReconnectingWireHost,
    limits: ResolvedLimits,
    reconnector: Reconnector,
  ) {
    super(socket, host, limits);
    this.#reconnector = reconnector;
    if (socket.readyState === WebSocket.OPEN) reconnector.opened();
  }

  override get readyState(): number {
    return this.#between ? WebSocket.CONNECTING : this.socket.readyState;
  }

  override get bufferedAmount(): number {
    return super.bufferedAmount + this.#reconnector.stats.queuedBytes;
  }

  /** The socket is lost or being replaced: queue (bounded; may throw). */
  protected override unsent(payload: Sendable): void {
    this.#reconnector.enqueue(payload);
  }

  override close(
    code: number | undefined,
    reason: string | undefined,
  ): Error | undefined {
    this.#closing = true;
    const between = this.#between;
    if (!between) return super.close(code, reason);
    // No socket to close: stop waiting and finish now.
    between.abort();
    this.#between = undefined;
    this.#generation++;
    this.host.gaveUp({
      code: code ?? CLOSE_CODE.NO_STATUS,
      reason: reason ?? "",
      wasClean: true,
    });
    return undefined;
  }

  protected override opened(): void {
    this.#reconnector.opened();
    super.opened();
  }

  protected override socketClosed(
    event: CloseEvent,
    error: string | undefined,
  ): void {
    if (this.#closing) {
      super.socketClosed(event, error);
      return;
    }
    this.#lost(closeInfoOf(event, error));
  }

  /** A silent peer is a lost one: drop its socket and reconnect. */
  protected override silent(error: DOMException): void {
    if (this.#closing) {
      super.silent(error);
      return;
    }
    const socket = this.socket;
    this.#lost({
      code: CLOSE_CODE.ABNORMAL,
      reason: "",
      wasClean: false,
      error,
    });
    socket.close(); // Deno may keep it CLOSING (denoland/deno#27924): detached
  }

  #lost(info: CloseInfo): void {
    this.detach(); // nothing more from the old socket
    this.#generation++;
    const between = new AbortController();
    this.#between = between;
    this.#reconnector.reopen(info, new ConnectionClosedError(info), {
      reconnecting: (next) => this.host.reconnecting(next),
      adopt: (socket, attempt) => this.#adopt(socket, attempt),
    }, between.signal).then(
      (end) => end,
      // Not expected (reopen() turns failures into a CloseInfo), but an
      // unhandled rejection would end the process: finish with it instead.
      (error) => ({
        ...info,
        error: error instanceof Error ? error : new Error(String(error)),
      }),
    ).then((end) => {
      if (!end || this.#between !== between) return;
      this.#between = undefined;
      this.host.gaveUp(end);
    });
  }

  /** Called inside the new socket's open event: swap it in, run the hooks, flush. */
  #adopt(socket: WebSocket, attempt: number): void {
    this.#between = undefined;
    this.attach(socket);
    this.#reconnector.opened();
    const generation = ++this.#generation;
    const { queuedMessages, droppedMessages } = this.#reconnector.stats;
    const waits = this.host.reconnected({
      attempt,
      queuedMessages,
      droppedMessages,
    });
    if (!waits || this.#closing) return; // a hook threw or closed
    if (waits.length === 0) {
      this.#flushQueued();
      return;
    }
    const { hookTimeout } = this.#reconnector.policy;
    deadline(Promise.all(waits), hookTimeout).then(() => {
      if (generation === this.#generation) this.#flushQueued();
    }, (error) => {
      if (generation !== this.#generation) return;
      this.host.handlerFailed(
        error instanceof DOMException && error.name === "TimeoutError"
          ? new Error(
            `The reconnect handlers did not settle within ${hookTimeout} ms (hookTimeout)`,
          )
          : error,
      );
    });
  }

  /** Sends what was queued while disconnected, oldest first. */
  #flushQueued(): void {
    if (this.#closing || this.socket.readyState !== WebSocket.OPEN) {
      return; // lost again: the queue waits for the next socket
    }
    this.flushOutbox();
    for (const data of this.#reconnector.drain()) this.socket.send(data);
  }
}
