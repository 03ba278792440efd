// Interop peer: Bun's own WebSocket client and Bun.serve's WebSocket server.
// Usage: bun bun_peer.js client <url> | bun bun_peer.js server
// Follows the fixed script in _scenarios.ts: print OPEN, echo, obey
// "cmd:close <code> <reason>", print CLOSED <code> <reason>.

/** Echoes `data`, or closes when it is a "cmd:close" command. */
function answer(ws, data) {
  if (typeof data === "string" && data.startsWith("cmd:close ")) {
    const [, code, ...reason] = data.split(" ");
    ws.close(Number(code), reason.join(" "));
  } else {
    ws.send(data);
  }
}

if (Bun.argv[2] === "client") {
  const ws = new WebSocket(Bun.argv[3], ["chat.v2", "chat.v1"]);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => console.log(`OPEN ${ws.protocol}`);
  ws.onmessage = (event) => answer(ws, event.data);
  ws.onclose = (event) => {
    console.log(`CLOSED ${event.code} ${event.reason}`);
    process.exit(0);
  };
} else {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request, server) {
      const offered = (request.headers.get("sec-websocket-protocol") ?? "")
        .split(",").map((protocol) => protocol.trim());
      const protocol = offered.includes("chat.v1") ? "chat.v1" : undefined;
      const upgraded = server.upgrade(request, {
        data: { protocol },
        headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {},
      });
      return upgraded
        ? undefined
        : new Response("WebSocket only", { status: 426 });
    },
    websocket: {
      // Well above the 8 MiB the scenarios send, whatever Bun's default is.
      maxPayloadLength: 64 * 1024 * 1024,
      open: (ws) => console.log(`OPEN ${ws.data.protocol}`),
      message: (ws, data) => answer(ws, data),
      close: (_ws, code, reason) => console.log(`CLOSED ${code} ${reason}`),
    },
  });
  console.log(`READY ${server.port}`);
}
