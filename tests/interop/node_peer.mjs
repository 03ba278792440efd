// Interop peer: Node.js with the `ws` package, client or server.
// Usage: node node_peer.mjs client <url> | node node_peer.mjs server
// Follows the fixed script in _scenarios.ts: print OPEN, echo, obey
// "cmd:close <code> <reason>", print CLOSED <code> <reason>.
import { createRequire } from "node:module";

// Loaded with require: Node finds it in ./node_modules, and `deno check`
// (which sees this file too) does not try to resolve it.
const { WebSocket, WebSocketServer } = createRequire(import.meta.url)("ws");

function echo(ws) {
  console.log(`OPEN ${ws.protocol}`);
  ws.on("message", (data, isBinary) => {
    const text = isBinary ? undefined : data.toString("utf8");
    if (text?.startsWith("cmd:close ")) {
      const [, code, ...reason] = text.split(" ");
      ws.close(Number(code), reason.join(" "));
    } else {
      ws.send(isBinary ? data : text, { binary: isBinary });
    }
  });
  ws.on("close", (code, reason) => {
    console.log(`CLOSED ${code} ${reason.toString("utf8")}`);
  });
}

if (process.argv[2] === "client") {
  const ws = new WebSocket(process.argv[3], ["chat.v2", "chat.v1"]);
  ws.on("open", () => echo(ws));
} else {
  const server = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (offered) => offered.has("chat.v1") ? "chat.v1" : false,
  });
  server.on("listening", () => console.log(`READY ${server.address().port}`));
  server.on("connection", echo);
}
