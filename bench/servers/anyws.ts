/**
 * Contender "anyws": {@linkcode serve} from the package, used the way its
 * documentation shows.
 *
 * - WebSocket upgrade on any path: echoes every message with
 *   `conn.on("message", (conn, data) => conn.send(data))`.
 * - `GET /broadcast`: `server.broadcast()` of one 64-byte text message;
 *   answers how many connections it went to.
 * - `GET /gc`: runs a full garbage collection (with `--v8-flags=--expose-gc`)
 *   and answers the JS heap in use, in bytes.
 *
 * Prints `READY <port>` once listening on 127.0.0.1.
 *
 * @module
 */

import { serve } from "../../mod.ts";

const BROADCAST = "b".repeat(64);
const gc = (globalThis as { gc?: () => void }).gc;

const server = serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`READY ${port}`),
  onEstablish(conn) {
    conn.on("message", (conn, data) => conn.send(data));
  },
  fallback(request): Response {
    const path = new URL(request.url).pathname;
    if (path === "/broadcast") {
      return new Response(String(server.broadcast(BROADCAST)));
    }
    if (path === "/gc") {
      gc?.();
      return new Response(String(Deno.memoryUsage().heapUsed));
    }
    return new Response("not found", { status: 404 });
  },
});
