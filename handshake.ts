/**
 * Handshake admission for the server: the `Origin` allowlist that stops
 * cross-site WebSocket hijacking, and the `authorize` hook's verdicts.
 * `serve()`, `createHandler()` and `upgrade()` apply them before upgrading.
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
 *     conn.send(`hello ${(conn.data as { user: string }).user}`);
 *   },
 * });
 * ```
 *
 * @module
 */

/**
 * Allowed `Origin` values: exact strings (scheme, host and port, as browsers
 * send them, e.g. `"https://app.example"`) or regular expressions tested
 * against the whole header value.
 */
export type OriginAllowlist = readonly (string | RegExp)[];

/** The `Origin` options of {@linkcode UpgradeOptions}. */
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
 * import { checkOrigin } from "@anyws/anyws";
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
 * {@linkcode Connection.data}.
 */
export type AuthorizeResult =
  | Response
  | boolean
  | undefined
  | void
  | { data: unknown };

/**
 * Decides whether a valid, allowed-origin upgrade request may connect; may
 * be async. If it throws, the request is answered 500 with a fixed body (the
 * error is logged, never sent).
 */
export type Authorize = (
  request: Request,
  info?: Deno.ServeHandlerInfo,
) => AuthorizeResult | Promise<AuthorizeResult>;

/** The outcome of running an {@linkcode Authorize} hook. */
export type Verdict =
  | { accepted: true; data: unknown }
  | { accepted: false; response?: Response };

/**
 * Runs an `authorize` hook and normalises its answer.
 *
 * @param authorize The hook.
 * @param request The upgrade request.
 * @param info The serve handler info.
 * @returns Accepted (with data), or refused (with the hook's response, or
 * none for a plain `false`).
 * @throws {unknown} Whatever the hook throws.
 *
 * @example
 * ```ts
 * import { runAuthorize } from "@anyws/anyws";
 * import { assertEquals } from "@std/assert";
 *
 * const verdict = await runAuthorize(() => ({ data: 42 }), new Request("http://x/"));
 * assertEquals(verdict, { accepted: true, data: 42 });
 * ```
 */
export async function runAuthorize(
  authorize: Authorize,
  request: Request,
  info?: Deno.ServeHandlerInfo,
): Promise<Verdict> {
  const result = await authorize(request, info);
  if (result instanceof Response) return { accepted: false, response: result };
  if (result === false) return { accepted: false };
  if (typeof result === "object" && result !== null && "data" in result) {
    return { accepted: true, data: result.data };
  }
  return { accepted: true, data: undefined };
}
