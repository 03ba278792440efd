/**
 * Contender "raw Deno": `Deno.serve` + `Deno.upgradeWebSocket`, no wrapper.
 * This is the ceiling anyws is measured against.
 *
 * - WebSocket upgrade on any path: echoes every message (`onmessage`).
 * - `GET /broadcast`: sends one 64-byte text message to every open socket,
 *   with a plain loop over a `Set<WebSocket>`.
 * - `GET /stats`, `GET /exit`: see `_stats.ts`.
 *
 * Prints `READY <port>` once listening on 127.0.0.1.
 *
 * @module
 */

import { answer, BROADCAST } from "./_stats.ts";

const sockets = new Set<WebSocket>();

function broadcast(): number {
  let sent = 0;
  for (const socket of sockets) {
    if (socket.readyState !== WebSocket.OPEN) continue;
    socket.send(BROADCAST);
    sent++;
  }
  return sent;
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`READY ${port}`),
}, (request) => {
  if (request.headers.get("upgrade") === "websocket") {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => sockets.add(socket);
    socket.onmessage = (event) => socket.send(event.data);
    socket.onclose = () => sockets.delete(socket);
    return response;
  }
  return answer(request, () => sockets.size, broadcast) ??
    new Response("not found", { status: 404 });
});
