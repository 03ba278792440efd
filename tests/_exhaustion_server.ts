/**
 * The server of the descriptor exhaustion tests, meant to run under
 * `_fd_limited.ts`. `ANYWS_EXHAUSTION_SERVER` picks what serves:
 *
 * - `serve` (default): anyws's `serve()`;
 * - `listener`: the private `Listener` of `_server/listener.ts` with a bare
 *   `Deno.upgradeWebSocket` handler;
 * - `deno`: plain `Deno.serve`, to measure what happens without either.
 *
 * It prints `listening on ws://127.0.0.1:<port>/`, then speaks over each
 * WebSocket: `watch` → `watching`, after which that socket receives
 * `listen-error <message>` for every report of exhaustion; `count` →
 * `listen-errors <n>`; anything else is echoed. SIGTERM shuts the server
 * down; the process then prints `finished` and exits (with 1 if `finished`
 * rejected: an uncaught error).
 *
 * @module
 */

import { Listener } from "../_server/listener.ts";
import { serve } from "../server.ts";

const mode = Deno.env.get("ANYWS_EXHAUSTION_SERVER") ?? "serve";
const watchers = new Set<{ send(text: string): unknown }>();
let listenErrors = 0;

function onListenError(error: Error): void {
  listenErrors++;
  console.log(`listen error ${listenErrors}: ${error.message}`);
  for (const watcher of watchers) watcher.send(`listen-error ${error.message}`);
}

function answer(
  socket: { send(text: string): unknown },
  data: string | Uint8Array,
): void {
  if (data === "watch") {
    watchers.add(socket);
    socket.send("watching");
  } else if (data === "count") {
    socket.send(`listen-errors ${listenErrors}`);
  } else {
    socket.send(typeof data === "string" ? data : `${data.byteLength} bytes`);
  }
}

function onListen({ port }: Deno.NetAddr): void {
  console.log(`listening on ws://127.0.0.1:${port}/`);
}

/** A bare WebSocket echo handler, for `listener` and `deno`. */
function handler(request: Request): Response {
  if (request.headers.get("upgrade") !== "websocket") {
    return new Response("WebSocket only\n", { status: 426 });
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onmessage = (event) => answer(socket, event.data);
  socket.onclose = () => watchers.delete(socket);
  return response;
}

let server: { finished: Promise<void>; shutdown(): Promise<void> };
const address = { hostname: "127.0.0.1", port: 0, onListen };
if (mode === "listener") {
  server = new Listener({ ...address, handler }, { onListenError });
} else if (mode === "deno") {
  server = Deno.serve({ ...address, handler });
} else {
  server = serve({
    ...address,
    onListenError,
    onEstablish(conn) {
      conn.on("message", answer);
      conn.on("finish", (conn) => watchers.delete(conn));
    },
  });
}
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
console.log("finished");
Deno.exit(0);
