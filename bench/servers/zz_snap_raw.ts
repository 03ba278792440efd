import v8 from "node:v8";
let k = 0;
const sockets = new Set<WebSocket>();
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(`READY ${port}`) }, (request) => {
  if (request.headers.get("upgrade") === "websocket") {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => sockets.add(socket);
    socket.onmessage = (event) => socket.send(event.data);
    socket.onclose = () => sockets.delete(socket);
    return response;
  }
  const path = new URL(request.url).pathname;
  if (path === "/broadcast") { for (const s of sockets) s.send("x"); return new Response(String(sockets.size)); }
  if (path === "/gc") { (globalThis as any).gc?.(); v8.writeHeapSnapshot(`/tmp/rsnap${k++}.heapsnapshot`); return new Response(String(Deno.memoryUsage().heapUsed)); }
  return new Response("nf", { status: 404 });
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
