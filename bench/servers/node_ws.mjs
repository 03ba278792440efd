// Contender "Node + ws": node:http and the `ws` package (without its optional
// native addons), used the way ws documents.
// - WebSocket upgrade on any path: echoes every message.
// - GET /broadcast: one 64-byte text message to every open client, with the
//   loop over `wss.clients` that ws documents; answers how many.
// - GET /gc: a full garbage collection (with --expose-gc).
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

const server = createServer((request, response) => {
  if (request.url === "/broadcast") {
    let sent = 0;
    for (const client of wss.clients) {
      if (client.readyState !== WebSocket.OPEN) continue;
      client.send(BROADCAST);
      sent++;
    }
    response.end(String(sent));
  } else if (request.url === "/gc") {
    globalThis.gc?.();
    response.end(String(process.memoryUsage().heapUsed));
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
