/**
 * Containment of failures inside Deno's own WebSocket code (internal).
 *
 * Deno runs each WebSocket's receive loop as an async method whose promise
 * nobody handles. When that loop throws, the rejection is unhandled and the
 * process exits. A peer can cause this: a fragmented text message longer
 * than the longest JavaScript string (about 512 Mi UTF-16 units; 560 MiB of
 * 1 MiB fragments, sent in about 1 s on loopback) makes Deno 2.9.6 fail with
 * "failed to allocate string; buffer exceeds maximum length" before any
 * message limit of ours can look at it, on both sides.
 *
 * {@linkcode watchSocket} marks a socket. The first call installs, once per
 * process, a wrapper around Deno's receive loop (the method keyed by the
 * symbol described `[[eventLoop]]` on `WebSocket.prototype`) that records
 * which loop promise belongs to a watched socket, and an `unhandledrejection`
 * listener that acts only on the rejection of such a promise, recognised by
 * identity. For it, the listener prevents the process exit, dispatches an
 * `error` event whose `error` is a {@linkcode RuntimeFailureError} on the
 * socket (its owner listens there already), and starts Deno's loop again
 * once, so that the socket goes on reading: its close handshake completes
 * and `close` fires as usual. Every other rejection, the application's own
 * included, is left alone, and so are sockets nobody watches.
 *
 * If a future Deno renames that method, the guard falls back to a listener
 * that prevents the exit only for errors whose every stack frame lies inside
 * `ext:deno_websocket` (no application code on the stack). It cannot tell
 * which socket failed: that socket stops receiving and waits for Deno's idle
 * timeout (server side) or its owner's own timeouts.
 *
 * {@linkcode forceShut} closes a socket's TCP connection at once, which
 * `WebSocket` itself cannot do (denoland/deno#27924): it frees what a peer
 * made Deno hold, such as an unfinished fragmented message, when the peer
 * does not answer our close frame.
 *
 * @module
 */

/**
 * How the guard contains failures: `"socket"` reports each one on its
 * socket; `"process"` only keeps the process alive (a Deno without the
 * receive-loop method the guard wraps).
 */
export type RuntimeGuardMode = "socket" | "process";

/**
 * Deno's WebSocket failed while receiving on this socket and dropped what it
 * was receiving. The `error` of the `error` event the guard dispatches.
 */
export class RuntimeFailureError extends Error {
  /**
   * @param cause Deno's rejection reason.
   */
  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    const hint = detail.includes("failed to allocate string")
      ? " (a text message longer than the longest JavaScript string, about 512 Mi characters)"
      : "";
    super(`Deno's WebSocket failed while receiving: ${detail}${hint}`, {
      cause,
    });
    this.name = "RuntimeFailureError";
  }
}

/** The descriptions of Deno's private symbols the guard relies on. */
const EVENT_LOOP_SYMBOL = "[[eventLoop]]";
const RID_SYMBOL = "[[rid]]";

/** A watched socket whose receive loop has not started yet. */
const WATCHED = 1;
/** A socket whose failure was reported and whose loop was restarted. */
const REPORTED = 2;

/**
 * A watched socket → {@linkcode WATCHED} until its receive loop starts; then
 * the loop's promise → the socket (and, after a failure, the socket →
 * {@linkcode REPORTED}). One weak entry per healthy watched socket, about 37
 * bytes, and no closure: idle memory per connection is a tracked figure.
 */
const registry = new WeakMap<object, WebSocket | number>();

let mode: RuntimeGuardMode | undefined;
let denoEventLoop: ((this: WebSocket) => unknown) | undefined;
let ridKey: symbol | undefined;

/**
 * Installs the guard, once per process; later calls return the mode chosen
 * the first time. {@linkcode watchSocket} calls it.
 *
 * @returns `"socket"` when failures are reported on their socket,
 * `"process"` when Deno's internals have changed and only the process is
 * protected.
 */
export function installRuntimeGuard(): RuntimeGuardMode {
  if (mode) return mode;
  if (wrapEventLoop()) {
    globalThis.addEventListener("unhandledrejection", onSocketLoopRejection);
    mode = "socket";
  } else {
    installProcessNet();
    mode = "process";
  }
  return mode;
}

/**
 * Contains a failure of Deno's WebSocket on `socket` and reports it there as
 * an `error` event carrying a {@linkcode RuntimeFailureError} (then close
 * the socket: its loop is running again, so the close handshake completes).
 * Call it in the same task as `Deno.upgradeWebSocket` or `new WebSocket`:
 * the receive loop starts when the socket opens. Costs one weak-map entry
 * for the socket's life; there is no unwatch, so a failure after the owner
 * has finished is still contained.
 *
 * @param socket A socket that is not open yet.
 * @returns `true` if a failure on this socket will be reported on it;
 * `false` when the socket is already open (too late) or the guard runs in
 * `"process"` mode (then the process survives, unreported).
 */
export function watchSocket(socket: WebSocket): boolean {
  if (installRuntimeGuard() !== "socket") return false;
  if (socket.readyState !== WebSocket.CONNECTING) return false;
  if (!registry.has(socket)) registry.set(socket, WATCHED);
  return true;
}

/**
 * Whether `event` is the report {@linkcode watchSocket} promised.
 *
 * @param event An event dispatched on a socket.
 * @returns `true` when it is the guard's `error` event.
 */
export function isRuntimeFailure(
  event: Event,
): event is ErrorEvent & { error: RuntimeFailureError } {
  return event instanceof ErrorEvent &&
    event.error instanceof RuntimeFailureError;
}

/**
 * Closes the socket's TCP connection now, without waiting for the peer's
 * close frame; Deno then dispatches `close` and frees the connection's
 * buffers. For a socket left `CLOSING` by a peer that never answers
 * (denoland/deno#27924). Uses Deno internals (`Deno[Deno.internal].core`
 * and the socket's resource id).
 *
 * @param socket The socket to shut.
 * @returns `false` if nothing was done: the socket is `CLOSED` already (Deno
 * released its resource), not open yet, or this Deno lacks the internals.
 */
export function forceShut(socket: WebSocket): boolean {
  const state = socket.readyState;
  if (state === WebSocket.CLOSED || state === WebSocket.CONNECTING) {
    return false;
  }
  const core = denoCore();
  const rid = resourceId(socket);
  if (!core || rid === undefined) return false;
  core.tryClose(rid);
  return true;
}

/**
 * Installs only the process-wide fallback (see the module doc). Used by
 * {@linkcode installRuntimeGuard} when Deno's internals differ, and by tests.
 */
export function installProcessNet(): void {
  globalThis.addEventListener("unhandledrejection", onInternalRejection);
}

/**
 * Whether `reason` is an error thrown by Deno's WebSocket code with no
 * application code on its stack: every frame lies in `ext:deno_websocket`.
 * An application's failing call into `WebSocket` (e.g. a `close()` reason
 * over 123 bytes inside an async function) has its own frames below it and
 * does not match.
 *
 * @param reason A rejection reason.
 * @returns `true` for a failure of Deno's WebSocket internals.
 */
export function isDenoWebSocketFailure(reason: unknown): boolean {
  if (!(reason instanceof Error) || typeof reason.stack !== "string") {
    return false;
  }
  const frames = reason.stack.split("\n").filter((line) =>
    /^\s+at /.test(line)
  );
  return frames.length > 0 &&
    frames.every((line) => line.includes("ext:deno_websocket/"));
}

/** Replaces Deno's receive loop by one that records its promise. */
function wrapEventLoop(): boolean {
  const prototype = WebSocket.prototype as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(prototype).find((symbol) =>
    symbol.description === EVENT_LOOP_SYMBOL
  );
  const descriptor = key && Object.getOwnPropertyDescriptor(prototype, key);
  if (
    !key || !descriptor || typeof descriptor.value !== "function" ||
    !descriptor.writable
  ) {
    return false;
  }
  denoEventLoop = descriptor.value;
  Object.defineProperty(prototype, key, { ...descriptor, value: guardedLoop });
  return true;
}

/** Deno's loop; for a watched socket, its promise is recorded. */
function guardedLoop(this: WebSocket): unknown {
  const loop = denoEventLoop!.call(this);
  if (registry.get(this) === WATCHED && loop instanceof Promise) {
    registry.delete(this);
    registry.set(loop, this);
  }
  return loop;
}

/** The `unhandledrejection` listener of the `"socket"` mode. */
function onSocketLoopRejection(event: PromiseRejectionEvent): void {
  const socket = registry.get(event.promise);
  if (!(socket instanceof WebSocket)) return; // not a watched socket's loop
  event.preventDefault();
  registry.delete(event.promise);
  if (registry.get(socket) === REPORTED) return; // its second failure
  registry.set(socket, REPORTED);
  const error = new RuntimeFailureError(event.reason);
  try {
    socket.dispatchEvent(
      new ErrorEvent("error", { error, message: error.message }),
    );
  } finally {
    // Deno's loop has ended; a new one reads on (the close handshake
    // included). A failure of that one is contained, not reported again.
    const loop = denoEventLoop!.call(socket);
    if (loop instanceof Promise) registry.set(loop, socket);
  }
}

/** The `unhandledrejection` listener of the `"process"` mode. */
function onInternalRejection(event: PromiseRejectionEvent): void {
  if (!isDenoWebSocketFailure(event.reason)) return;
  event.preventDefault();
  console.error(
    `anyws: contained a failure inside Deno's WebSocket; its socket stops receiving: ${
      (event.reason as Error).message
    }`,
  );
}

interface DenoCore {
  tryClose(rid: number): void;
}

/** `Deno[Deno.internal].core`, if this Deno exposes it. */
function denoCore(): DenoCore | undefined {
  const internal = Reflect.get(Deno, "internal");
  const internals = typeof internal === "symbol"
    ? Reflect.get(Deno, internal)
    : undefined;
  const core = internals && Reflect.get(internals, "core");
  return core && typeof Reflect.get(core, "tryClose") === "function"
    ? core as DenoCore
    : undefined;
}

/** The resource id Deno keeps on an open socket. */
function resourceId(socket: WebSocket): number | undefined {
  ridKey ??= Object.getOwnPropertySymbols(socket).find((symbol) =>
    symbol.description === RID_SYMBOL
  );
  const rid = ridKey && Reflect.get(socket, ridKey);
  return typeof rid === "number" ? rid : undefined;
}
