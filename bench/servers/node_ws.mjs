// Contender "Node + ws": node:http and the `ws` package (without its optional
// native addons), used the way ws documents.
// - WebSocket upgrade on any path: echoes every message.
// - GET /broadcast: one 64-byte text message to every open client, with the
//   loop over `wss.clients` that ws documents; the loop is timed.
// - GET /stats, GET /exit: as in _stats.ts (CPU from process.cpuUsage()).
// Prints `READY <port>` once listening on 127.0.0.1.
import { createServer } from "node:http";
import { createRequire } from "node:module";

// ws is installed in bench/peers/ (a package.json beside Deno's sources would
// change how Deno resolves them), so it is required from there.
const require = createRequire(
  new URL("../peers/package.json", import.meta.url),
);
const { WebSocket, WebSocketServer } = require("ws");

const BROADCAST = "b".repeat(64);
const cpuFigures = () => {
  const { user, system } = process.cpuUsage();
  return { cpu: user + system, system };
};
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

function broadcast() {
  const cpu = cpuMicros();
  const start = performance.now();
  let sent = 0;
  for (const client of wss.clients) {
    if (client.readyState !== WebSocket.OPEN) continue;
    client.send(BROADCAST);
    sent++;
  }
  const loopMicros = (performance.now() - start) * 1000;
  return { sent, loopMicros, loopCpuMicros: cpuMicros() - cpu };
}

const server = createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (url.pathname === "/broadcast") {
    response.end(JSON.stringify(broadcast()));
  } else if (url.pathname === "/stats") {
    const kind = url.searchParams.get("gc");
    if (kind === "minor") globalThis.gc?.({ type: "minor" });
    else if (kind === "full") globalThis.gc?.();
    const memory = process.memoryUsage();
    response.end(JSON.stringify({
      ...cpuFigures(),
      heap: memory.heapUsed,
      rss: memory.rss,
      open: wss.clients.size,
    }));
  } else if (url.pathname === "/exit") {
    response.end("bye", () => process.exit(0));
  } else {
    response.statusCode = 404;
    response.end("not found");
  }
});
const wss = new WebSocketServer({ server });
wss.on("connection", (socket) => {
  socket.on(
    "message",
    (data, isBinary) => socket.send(data, { binary: isBinary }),
  );
});
server.listen(0, "127.0.0.1", () => {
  console.log(`READY ${server.address().port}`);
});
