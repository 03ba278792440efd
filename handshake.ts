/**
 * Every answer to a WebSocket upgrade request: the RFC 6455 checks
 * ({@linkcode checkHandshake}), the `Origin` allowlist that stops cross-site
 * WebSocket hijacking ({@linkcode checkOrigin}), the subprotocol choice
 * ({@linkcode chooseProtocol}), the `authorize` hook's verdicts
 * ({@linkcode runAuthorize}) and the HTTP answer to a refused request
 * ({@linkcode HandshakeError}). `serve()`, `createHandler()` and `upgrade()`
 * apply them before upgrading.
 *
 * @example Accept only pages from one site, and require a token
 * ```ts
 * import { serve } from "@anyws/anyws";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   origins: ["https://app.example", /^https:\/\/[a-z]+\.example\.org$/],
 *   authorize(request) {
 *     const token = new URL(request.url).searchParams.get("token");
 *     if (token !== "s3cret") return new Response("Unauthorized", { status: 401 });
 *     return { data: { user: "alice" } };
 *   },
 *   onEstablish(conn) {
 *     conn.send(`hello ${conn.data.user}`);
 *   },
 * });
 * ```
 *
 * @module
 */

import { STATUS_CODE, STATUS_TEXT } from "@std/http/status";

/**
 * Why a request could not be upgraded. `status` is the HTTP status it is
 * answered with.
 *
 * @example
 * ```ts
 * import { HandshakeError } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * const error = new HandshakeError(426, "Unsupported Sec-WebSocket-Version: 8");
 * assertEquals((await error.toResponse().text()).length > 0, true);
 * ```
 */
export class HandshakeError extends Error {
  /** The HTTP status this error is answered with. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param status The HTTP status to answer with.
   * @param message What was wrong, for logs (never sent to the peer).
   * @param options Standard error options (`cause`).
   *
   * @example
   * ```ts
   * import { HandshakeError } from "@anyws/anyws/server";
   *
   * console.log(new HandshakeError(400, "Missing Sec-WebSocket-Key").status);
   * ```
   */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HandshakeError";
    this.status = status;
  }

  /**
   * The default answer: a fixed body per status, never the error's details.
   * 400 says "The request is invalid for a WebSocket request." (Plack's
   * body); 426 adds `Upgrade: websocket` and `Sec-WebSocket-Version: 13`;
   * other statuses carry their standard reason phrase ("Forbidden", "Not
   * Found", ...), and a status without one "Internal Server Error".
   *
   * @returns The HTTP response.
   *
   * @example
   * ```ts
   * import { HandshakeError } from "@anyws/anyws/server";
   * import { assertEquals } from "@std/assert";
   *
   * const response = new HandshakeError(426, "old client").toResponse();
   * assertEquals(response.headers.get("sec-websocket-version"), "13");
   * ```
   */
  toResponse(): Response {
    const headers = new Headers({ "content-type": "text/plain;charset=utf-8" });
    if (this.status === STATUS_CODE.UpgradeRequired) {
      headers.set("upgrade", "websocket");
      headers.set("sec-websocket-version", "13");
    }
    return new Response(defaultBody(this.status), {
      status: this.status,
      headers,
    });
  }
}

/** The body of {@linkcode HandshakeError.toResponse} for a status. */
function defaultBody(status: number): string {
  if (status === STATUS_CODE.BadRequest) {
    return "The request is invalid for a WebSocket request.";
  }
  if (status === STATUS_CODE.UpgradeRequired) {
    return "Upgrade Required: this endpoint speaks WebSocket version 13.";
  }
  const texts: Readonly<Record<number, string | undefined>> = STATUS_TEXT;
  return texts[status] ?? texts[STATUS_CODE.InternalServerError]!;
}

/**
 * Whether a request asks to be upgraded to WebSocket (`Upgrade: websocket`).
 *
 * @param request The request.
 * @returns `true` when the `Upgrade` header names `websocket`.
 *
 * @example
 * ```ts
 * import { isUpgradeRequest } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(isUpgradeRequest(new Request("http://x/")), false);
 * ```
 */
export function isUpgradeRequest(request: Request): boolean {
  return hasToken(request.headers.get("upgrade"), "websocket");
}

const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/**
 * Runs the checks RFC 6455 §4.2.1 asks of a server, and the `Origin`
 * allowlist, in this order, and returns the first failure:
 *
 * 1. `Upgrade: websocket`, else 426;
 * 2. method `GET`, else 400;
 * 3. `Connection` includes `Upgrade`, else 400;
 * 4. `Sec-WebSocket-Key` is a base64-encoded 16-byte nonce, else 400;
 * 5. `Sec-WebSocket-Version: 13`, else 426 (with `Sec-WebSocket-Version: 13`);
 * 6. `Origin` allowed by `options` (see {@linkcode checkOrigin}), else 403;
 * 7. a non-empty `Host` header, else 400.
 *
 * The RFC also requires HTTP/1.1 or later. `Deno.serve` does not tell a
 * handler the HTTP version, so an HTTP/1.0 upgrade that carries a `Host`
 * header cannot be told apart and is accepted; one without `Host` is
 * refused by step 7. (`Deno.serve` itself answers 400 to a request with two
 * `Host` headers, and fills `request.url` from its own address when `Host`
 * is missing, so the URL does not tell either.)
 *
 * @param request The upgrade request.
 * @param options The `Origin` allowlist; none by default.
 * @returns The error to answer with, or `undefined` when the request may be
 * upgraded.
 *
 * @example
 * ```ts
 * import { checkHandshake } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * const request = new Request("http://127.0.0.1/", {
 *   headers: { upgrade: "websocket", connection: "Upgrade" },
 * });
 * assertEquals(checkHandshake(request)?.status, 400);
 * assertEquals(checkHandshake(request)?.message, "Missing Sec-WebSocket-Key");
 * ```
 */
export function checkHandshake(
  request: Request,
  options: OriginOptions = {},
): HandshakeError | undefined {
  const headers = request.headers;
  if (!isUpgradeRequest(request)) {
    return new HandshakeError(
      STATUS_CODE.UpgradeRequired,
      "Not a WebSocket upgrade request",
    );
  }
  if (request.method !== "GET") {
    return new HandshakeError(
      STATUS_CODE.BadRequest,
      `A WebSocket upgrade must use GET, not ${request.method}`,
    );
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    return new HandshakeError(
      STATUS_CODE.BadRequest,
      'The Connection header must include "Upgrade"',
    );
  }
  const key = headers.get("sec-websocket-key");
  if (key === null || !KEY_PATTERN.test(key)) {
    return new HandshakeError(
      STATUS_CODE.BadRequest,
      key === null
        ? "Missing Sec-WebSocket-Key"
        : "Sec-WebSocket-Key is not a base64-encoded 16-byte nonce",
    );
  }
  const version = headers.get("sec-websocket-version");
  if (version?.trim() !== "13") {
    return new HandshakeError(
      STATUS_CODE.UpgradeRequired,
      version === null
        ? "Missing Sec-WebSocket-Version (expected 13)"
        : `Unsupported Sec-WebSocket-Version: ${version} (expected 13)`,
    );
  }
  const refused = checkOrigin(request, options);
  if (refused !== undefined) {
    return new HandshakeError(STATUS_CODE.Forbidden, refused);
  }
  // Checked last: a Request built in code (a router's test, a unit test)
  // has no Host, and still gets the answer of the checks above.
  if (!headers.get("host")) {
    return new HandshakeError(
      STATUS_CODE.BadRequest,
      "Missing Host header (RFC 6455 section 4.2.1 requires it)",
    );
  }
  return undefined;
}

/**
 * Splits a `Sec-WebSocket-Protocol` header on commas, trimming whitespace
 * (Deno itself splits only on `", "`).
 *
 * @param header The header value, or `null`.
 * @returns The offered protocols, in order.
 *
 * @example
 * ```ts
 * import { parseProtocols } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(parseProtocols("chat,json , v2"), ["chat", "json", "v2"]);
 * ```
 */
export function parseProtocols(header: string | null): string[] {
  if (!header) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/** Chooses a subprotocol from the ones the client offered, or none. */
export type ProtocolChooser = (
  offered: string[],
  request: Request,
) => string | undefined;

/**
 * Picks the subprotocol to echo: the first of `protocols` (the server's
 * preference) that the client offered, or what a {@linkcode ProtocolChooser}
 * returns. `undefined` means none: RFC 6455 lets the handshake go ahead
 * without one, and the client decide.
 *
 * @param protocols The server's protocols in order of preference, or a
 * chooser; `undefined` for none.
 * @param offered The client's offer, from {@linkcode parseProtocols}.
 * @param request The upgrade request, for a chooser.
 * @returns The protocol to echo, or `undefined`.
 * @throws {HandshakeError} With status 500 if the chooser throws or picks a
 * protocol the client did not offer (the cause is the chooser's error).
 *
 * @example
 * ```ts
 * import { chooseProtocol } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * const request = new Request("http://x/");
 * assertEquals(chooseProtocol(["v2", "v1"], ["v1", "v2"], request), "v2");
 * assertEquals(chooseProtocol(["v3"], ["v1"], request), undefined);
 * ```
 */
export function chooseProtocol(
  protocols: readonly string[] | ProtocolChooser | undefined,
  offered: string[],
  request: Request,
): string | undefined {
  if (!protocols || offered.length === 0) return undefined;
  if (typeof protocols !== "function") {
    return protocols.find((protocol) => offered.includes(protocol));
  }
  let chosen: string | undefined;
  try {
    chosen = protocols(offered, request);
  } catch (error) {
    throw new HandshakeError(
      STATUS_CODE.InternalServerError,
      `The protocols chooser failed: ${(error as Error)?.message}`,
      { cause: error },
    );
  }
  if (chosen !== undefined && !offered.includes(chosen)) {
    throw new HandshakeError(
      STATUS_CODE.InternalServerError,
      `The protocols chooser failed: it chose "${chosen}", which the client did not offer (${
        offered.join(", ")
      })`,
    );
  }
  return chosen;
}

/**
 * Allowed `Origin` values: exact strings (scheme, host and port, as browsers
 * send them, e.g. `"https://app.example"`) or regular expressions tested
 * against the whole header value.
 */
export type OriginAllowlist = readonly (string | RegExp)[];

/** The `Origin` options of `upgrade()`, `createHandler()` and `serve()`. */
export interface OriginOptions {
  /**
   * Browsers always send `Origin` with a WebSocket handshake and never let a
   * page change it, so checking it stops other sites' pages from opening
   * connections with your users' cookies (cross-site WebSocket hijacking).
   * A request whose `Origin` matches none of these is answered 403 before
   * upgrading. Strings compare exactly (case-insensitively); RegExps are
   * tested against the header value.
   *
   * @default {undefined} (every origin is accepted)
   */
  origins?: OriginAllowlist | undefined;
  /**
   * Whether a request without an `Origin` header is refused (403) when
   * `origins` is set. Non-browser clients (Deno, Node, curl) send none, and a
   * browser page cannot omit it, so the default lets them through.
   *
   * @default {false}
   */
  requireOrigin?: boolean | undefined;
}

/**
 * Checks a request's `Origin` against the options.
 *
 * @param request The upgrade request.
 * @param options The allowlist and whether `Origin` is required.
 * @returns Why the request is refused (for logs and
 * {@linkcode HandshakeError}), or `undefined` when it is allowed.
 *
 * @example
 * ```ts
 * import { checkOrigin } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * const request = new Request("http://x/", { headers: { origin: "https://evil.example" } });
 * assertEquals(
 *   checkOrigin(request, { origins: ["https://app.example"] }),
 *   'Origin "https://evil.example" is not allowed',
 * );
 * ```
 */
export function checkOrigin(
  request: Request,
  options: OriginOptions,
): string | undefined {
  const { origins } = options;
  if (!origins) return undefined;
  const origin = request.headers.get("origin");
  if (origin === null) {
    return options.requireOrigin
      ? "The request has no Origin header and requireOrigin is set"
      : undefined;
  }
  const lower = origin.toLowerCase();
  for (const allowed of origins) {
    if (typeof allowed === "string") {
      if (allowed.toLowerCase() === lower) return undefined;
    } else {
      allowed.lastIndex = 0; // a /g or /y RegExp keeps state between tests
      if (allowed.test(origin)) return undefined;
    }
  }
  return `Origin ${JSON.stringify(origin)} is not allowed`;
}

/**
 * What an `authorize` hook returns: a `Response` refuses the handshake with
 * it (any status, e.g. 401 with a `WWW-Authenticate` header); `false`
 * refuses with 403; `true`, `undefined` or `{ data }` accept, `data` becoming
 * `Connection.data`.
 *
 * @typeParam Data The type of `data`, and so of the connection's `data`.
 */
export type AuthorizeResult<Data = unknown> =
  | Response
  | boolean
  | undefined
  | void
  | { data: Data };

/**
 * Decides whether a valid, allowed-origin upgrade request may connect; may
 * be async. If it throws, the request is answered 500 with a fixed body (the
 * error is logged, never sent). The type of the `data` it returns types
 * `conn.data` in `onEstablish`, with no annotation.
 *
 * @typeParam Data The type of the `data` it accepts with.
 */
export type Authorize<Data = unknown> = (
  request: Request,
  info?: Deno.ServeHandlerInfo,
) => AuthorizeResult<Data> | Promise<AuthorizeResult<Data>>;

/**
 * The outcome of running an {@linkcode Authorize} hook.
 *
 * @typeParam Data The type of the accepted `data`.
 */
export type Verdict<Data = unknown> =
  | { accepted: true; data: Data | undefined }
  | { accepted: false; response?: Response };

/**
 * Runs an `authorize` hook and normalises its answer.
 *
 * @typeParam Data The type of the `data` the hook accepts with.
 * @param authorize The hook.
 * @param request The upgrade request.
 * @param info The serve handler info.
 * @returns Accepted (with data), or refused (with the hook's response, or
 * none for a plain `false`).
 * @throws {unknown} Whatever the hook throws.
 *
 * @example
 * ```ts
 * import { runAuthorize } from "@anyws/anyws/server";
 * import { assertEquals } from "@std/assert";
 *
 * const verdict = await runAuthorize(() => ({ data: 42 }), new Request("http://x/"));
 * assertEquals(verdict, { accepted: true, data: 42 });
 * ```
 */
export async function runAuthorize<Data = unknown>(
  authorize: Authorize<Data>,
  request: Request,
  info?: Deno.ServeHandlerInfo,
): Promise<Verdict<Data>> {
  const result = await authorize(request, info);
  if (result instanceof Response) return { accepted: false, response: result };
  if (result === false) return { accepted: false };
  if (typeof result === "object" && result !== null && "data" in result) {
    return { accepted: true, data: result.data };
  }
  return { accepted: true, data: undefined };
}

function hasToken(header: string | null, token: string): boolean {
  if (!header) return false;
  return header.toLowerCase().split(",").some((part) => part.trim() === token);
}
