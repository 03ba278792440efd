/**
 * The server of the request memory test, run in a child process so that its
 * RSS is its own: anyws's `serve()` on 127.0.0.1, port 0. It prints
 * `listening on ws://127.0.0.1:<port>/`; a connection whose URL path is
 * `/rss` is answered with one text message, the process's RSS in bytes
 * and its V8 heap use, after a full garbage collection (run it with
 * `--v8-flags=--expose-gc`), and the number of other live connections:
 * `memory <rss> <heapUsed> <connections>`.
 * Every other connection stays open and idle. SIGTERM shuts the server down.
 *
 * @module
 */

import { serve } from "../server.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("Run with --v8-flags=--expose-gc");

const server = serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen({ port }) {
    console.log(`listening on ws://127.0.0.1:${port}/`);
  },
  onEstablish(conn) {
    if (new URL(conn.url).pathname !== "/rss") return;
    gc();
    gc();
    const { rss, heapUsed } = Deno.memoryUsage();
    conn.send(`memory ${rss} ${heapUsed} ${server.connections.size - 1}`);
  },
});
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
Deno.exit(0);
