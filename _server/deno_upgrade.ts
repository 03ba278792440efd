/**
 * `Deno.upgradeWebSocket`, with two of its quirks worked around (internal).
 *
 * @module
 */

/** Options for {@linkcode upgradeWithDeno}. */
export interface DenoUpgradeOptions {
  /** The subprotocol to echo, one of `offered`. */
  protocol: string | undefined;
  /** The protocols the client offered, as anyws parsed them. */
  offered: readonly string[];
  /** Deno's ping interval in seconds; `undefined` for Deno's default. */
  idleTimeout: number | undefined;
}

// The target of every request view: a Request-shaped object with no state,
// so that the view passes a Request prototype check and holds nothing.
const REQUEST_SHAPE: object = Object.create(Request.prototype);

/**
 * Upgrades `request` with `Deno.upgradeWebSocket`, handing Deno a view of it
 * rather than the request itself:
 *
 * - Deno splits the offered protocols only on ", " and refuses a protocol it
 *   does not find, so "chat,json" (as Node's `ws` sends it) would fail. The
 *   view lists them the way Deno splits them (the request's own headers are
 *   immutable, and `new Request(request)` makes `Deno.serve` print a warning
 *   about `request.signal`).
 * - When `idleTimeout` is not 0, Deno keeps the object it was given for as
 *   long as the socket lives (a `close` listener's closure holds it), and
 *   with it every header it has read: measured, 59 KiB of headers then cost
 *   about 115 KiB per connection. Once Deno has the socket, the view lets go
 *   of the request and answers only `url`, the one thing Deno reads later.
 *
 * @throws {TypeError} As `Deno.upgradeWebSocket` does.
 */
export function upgradeWithDeno(
  request: Request,
  options: DenoUpgradeOptions,
): { socket: WebSocket; response: Response } {
  const { protocol, offered, idleTimeout } = options;
  let headers: Headers | undefined;
  if (protocol !== undefined) {
    const canonical = offered.join(", ");
    if (request.headers.get("sec-websocket-protocol") !== canonical) {
      headers = new Headers(request.headers);
      headers.set("sec-websocket-protocol", canonical);
    }
  }
  let source: object = request;
  const view = new Proxy(REQUEST_SHAPE, {
    get: (_shape, key) =>
      key === "headers" && headers ? headers : Reflect.get(source, key),
  }) as Request;
  try {
    return Deno.upgradeWebSocket(view, {
      ...(protocol === undefined ? {} : { protocol }),
      ...(idleTimeout === undefined ? {} : { idleTimeout }),
    });
  } finally {
    source = { url: request.url };
    headers = undefined;
  }
}
