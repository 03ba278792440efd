// Contender "Bun": Bun.serve with its native websocket handlers.
// - WebSocket upgrade on any path: echoes every message.
// - GET /broadcast: one 64-byte text message to every client with Bun's own
//   pub/sub (`server.publish` to a topic every socket joined), the way Bun
//   documents broadcasting; answers how many subscribers.
// - GET /gc: Bun.gc(true).
// Prints `READY <port>` once listening on 127.0.0.1.
const BROADCAST = "b".repeat(64);

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request, server) {
    const path = new URL(request.url).pathname;
    if (path === "/broadcast") {
      server.publish("all", BROADCAST);
      return new Response(String(server.subscriberCount("all")));
    }
    if (path === "/gc") {
      Bun.gc(true);
      return new Response(String(process.memoryUsage().heapUsed));
    }
    if (server.upgrade(request)) return undefined;
    return new Response("not found", { status: 404 });
  },
  websocket: {
    open(socket) {
      socket.subscribe("all");
    },
    message(socket, message) {
      socket.send(message);
    },
  },
});
console.log(`READY ${server.port}`);
