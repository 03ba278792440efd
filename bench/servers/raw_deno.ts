/**
 * Contender "raw Deno": `Deno.serve` + `Deno.upgradeWebSocket`, no wrapper.
 * This is the ceiling anyws is measured against.
 *
 * - WebSocket upgrade on any path: echoes every message.
 * - `GET /broadcast`: sends one 64-byte text message to every open socket,
 *   with a plain loop over a `Set<WebSocket>`; answers how many.
 * - `GET /gc`: runs a full garbage collection (with `--v8-flags=--expose-gc`)
 *   and answers the JS heap in use, in bytes.
 *
 * Prints `READY <port>` once listening on 127.0.0.1.
 *
 * @module
 */

const BROADCAST = "b".repeat(64);
const sockets = new Set<WebSocket>();
const gc = (globalThis as { gc?: () => void }).gc;

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
  const path = new URL(request.url).pathname;
  if (path === "/broadcast") {
    let sent = 0;
    for (const socket of sockets) {
      if (socket.readyState !== WebSocket.OPEN) continue;
      socket.send(BROADCAST);
      sent++;
    }
    return new Response(String(sent));
  }
  if (path === "/gc") {
    gc?.();
    return new Response(String(Deno.memoryUsage().heapUsed));
  }
  return new Response("not found", { status: 404 });
});
