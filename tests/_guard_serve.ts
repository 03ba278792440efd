/**
 * A child-process anyws `serve()` for the runtime-guard tests.
 *
 * `deno run -A tests/_guard_serve.ts '<options as JSON>'` starts `serve()`
 * with those options (`inactivityTimeout`, `idleTimeout`, `closeTimeout`,
 * `maxMessageSize`, ...) and an echo handler, prints `ws://127.0.0.1:PORT/`,
 * then one JSON line per finished connection on stdout:
 * `{"event":"finish","error":...,"ms":since its establishment}`.
 * `GET /stats` answers `{"rss":bytes,"open":connections}`.
 *
 * @module
 */

import { serve } from "../server.ts";

const options = JSON.parse(Deno.args[0] ?? "{}");

const server = serve({
  ...options,
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`ws://127.0.0.1:${port}/`),
  onEstablish(conn) {
    const established = performance.now();
    conn.on("message", (conn, data) => conn.send(data));
    conn.on("finish", (_conn, error) =>
      console.log(JSON.stringify({
        event: "finish",
        error: error ?? null,
        ms: Math.round(performance.now() - established),
      })));
  },
  fallback: () =>
    Response.json({
      rss: Deno.memoryUsage().rss,
      open: server.connections.size,
    }),
});
