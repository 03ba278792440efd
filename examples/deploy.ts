/**
 * An echo endpoint as a fetch handler, for `deno serve` and Deno Deploy:
 * WebSocket upgrades echo every message; plain HTTP requests get a short text
 * answer.
 *
 * From a clone of the repository (works without access to jsr.io), on
 * http://127.0.0.1:8000/:
 *
 * ```sh
 * deno task example:deploy
 * ```
 *
 * With access to jsr.io, the plain commands work too:
 *
 * ```sh
 * deno serve --allow-net --port 8000 examples/deploy.ts
 * deno serve --parallel --allow-net examples/deploy.ts # one worker per core
 * ```
 *
 * `deno serve` prints the address it listens on. It takes the port from
 * `--port` (0 picks a free one), not from `PORT`. Copied into a project of
 * your own, import from `jsr:@anyws/anyws` (after `deno add jsr:@anyws/anyws`,
 * from `@anyws/anyws`) instead of `../mod.ts`; docs/frameworks.md has more
 * recipes (Hono, Oak, Deno Deploy with Redis).
 *
 * @module
 */

import { createHandler } from "../mod.ts";

export default {
  fetch: createHandler({
    onEstablish(conn) {
      conn.on("message", (conn, message) => conn.send(message));
    },
    fallback: () =>
      new Response(
        "anyws echo endpoint: connect with a WebSocket client to echo messages.\n",
        { headers: { "content-type": "text/plain; charset=utf-8" } },
      ),
  }),
} satisfies Deno.ServeDefaultExport;
