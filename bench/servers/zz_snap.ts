import v8 from "node:v8";
import { serve } from "/work/main/mod.ts";
let k = 0;
const server = serve({
  hostname: "127.0.0.1", port: 0,
  onListen: ({ port }) => console.log(`READY ${port}`),
  onEstablish(conn) { conn.on("message", (conn, data) => conn.send(data)); },
  fallback(request) {
    const path = new URL(request.url).pathname;
    if (path === "/broadcast") return new Response(String(server.broadcast("x")));
    if (path === "/gc") { (globalThis as any).gc?.(); v8.writeHeapSnapshot(`/tmp/snap${k++}.heapsnapshot`); return new Response(String(Deno.memoryUsage().heapUsed)); }
    return new Response("nf", { status: 404 });
  },
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
