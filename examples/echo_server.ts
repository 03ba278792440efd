/**
 * The Plack::App::WebSocket synopsis in anyws: echo every message back;
 * the text message "quit" closes the connection.
 *
 * From a clone of the repository (works without access to jsr.io):
 *
 * ```sh
 * deno task example:echo
 * PORT=9000 deno task example:echo
 * deno task example:client ws://127.0.0.1:8000/ hello quit   # in another shell
 * ```
 *
 * With access to jsr.io, the plain command works too:
 *
 * ```sh
 * deno run --allow-net --allow-env=PORT examples/echo_server.ts
 * ```
 *
 * Copied into a project of your own, import from `jsr:@anyws/anyws` (after
 * `deno add jsr:@anyws/anyws`, from `@anyws/anyws`) instead of `../mod.ts`.
 * Ctrl+C (or SIGTERM) shuts down gracefully: open connections are closed with
 * 1001 first.
 *
 * @module
 */

import { serve } from "../mod.ts";

const port = Number(Deno.env.get("PORT") ?? "8000");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(
    `echo_server: PORT must be an integer from 0 to 65535, got "${
      Deno.env.get("PORT")
    }"`,
  );
  Deno.exit(2);
}

const server = serve({
  port,
  hostname: "127.0.0.1",
  onListen({ hostname, port }) {
    console.log(`Echo server listening on ws://${hostname}:${port}/`);
  },
  onEstablish(conn) {
    const peer = `${conn.remoteAddr?.hostname}:${conn.remoteAddr?.port}`;
    console.log(`${peer} connected`);
    conn.on("message", (conn, message) => {
      if (message === "quit") conn.close();
      else conn.send(message); // text stays text, bytes stay bytes
    });
    conn.on("finish", (_conn, error) => {
      console.log(`${peer} closed${error ? `: ${error}` : ""}`);
    });
  },
});

// Graceful shutdown: close every connection with 1001, then stop listening.
const stop = () => server.shutdown();
Deno.addSignalListener("SIGINT", stop);
if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
await server.finished;
