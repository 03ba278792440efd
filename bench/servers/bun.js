// Contender "Bun": Bun.serve with its native websocket handlers.
// - WebSocket upgrade on any path: echoes every message.
// - GET /broadcast: one 64-byte text message to every client with Bun's own
//   pub/sub (`server.publish` to a topic every socket joined), the way Bun
//   documents broadcasting; the call is timed.
// - GET /stats, GET /exit: as in _stats.ts (CPU from process.cpuUsage();
//   Bun has no separate minor GC, so ?gc=minor does nothing).
// Prints `READY <port>` once listening on 127.0.0.1.
const BROADCAST = "b".repeat(64);
let open = 0;
const cpuFigures = () => {
  const { user, system } = process.cpuUsage();
  return { cpu: user + system, system };
};
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request, server) {
    const url = new URL(request.url);
    if (url.pathname === "/broadcast") {
      const cpu = cpuMicros();
      const start = performance.now();
      server.publish("all", BROADCAST);
      const loopMicros = (performance.now() - start) * 1000;
      return Response.json({
        sent: server.subscriberCount("all"),
        loopMicros,
        loopCpuMicros: cpuMicros() - cpu,
      });
    }
    if (url.pathname === "/stats") {
      if (url.searchParams.get("gc") === "full") Bun.gc(true);
      const memory = process.memoryUsage();
      return Response.json({
        ...cpuFigures(),
        heap: memory.heapUsed,
        rss: memory.rss,
        open,
      });
    }
    if (url.pathname === "/exit") {
      setTimeout(() => process.exit(0), 10);
      return new Response("bye");
    }
    if (server.upgrade(request)) return undefined;
    return new Response("not found", { status: 404 });
  },
  websocket: {
    open(socket) {
      open++;
      socket.subscribe("all");
    },
    message(socket, message) {
      socket.send(message);
    },
    close() {
      open--;
    },
  },
});
console.log(`READY ${server.port}`);
