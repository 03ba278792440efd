/**
 * Micro-benchmarks of message dispatch: one message event from the socket
 * to N handlers registered with `conn.on("message")`, against the same N
 * listeners on a bare `WebSocket` (what anyws adds on top of Deno).
 *
 * The sockets are real (a loopback server and clients); each iteration
 * dispatches a `MessageEvent` on the socket, the event Deno itself
 * dispatches when a frame arrives, so no network time is measured.
 *
 * ```sh
 * deno run -A tools/with_std.ts bench bench/
 * ```
 *
 * @module
 */

import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { serve } from "../server.ts";

const TEXT = "x".repeat(64);
const COUNTS = [1, 10, 100];

const established: Connection[] = [];
const arrived = Promise.withResolvers<void>();
const server = serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen() {},
  onEstablish(conn) {
    established.push(conn);
    if (established.length === COUNTS.length) arrived.resolve();
  },
});
const url = `ws://127.0.0.1:${server.addr.port}`;
await Promise.all(COUNTS.map(() => connect(url)));
await arrived.promise;

let sink = 0;
for (const [i, n] of COUNTS.entries()) {
  // A bare WebSocket, as raw Deno code would use it, with n listeners.
  const bare = new WebSocket(url);
  await new Promise((resolve) => bare.addEventListener("open", resolve));
  const conn = established[i]!;
  for (let h = 0; h < n; h++) {
    bare.addEventListener("message", (event) => {
      sink += (event.data as string).length;
    });
    conn.on("message", (_conn, data) => {
      sink += (data as string).length;
    });
  }
  Deno.bench(`bare WebSocket, ${n} message listener(s)`, {
    group: `${n} handler(s)`,
    baseline: true,
  }, () => {
    bare.dispatchEvent(new MessageEvent("message", { data: TEXT }));
  });
  Deno.bench(`anyws Connection, ${n} on("message") handler(s)`, {
    group: `${n} handler(s)`,
  }, () => {
    conn.socket.dispatchEvent(new MessageEvent("message", { data: TEXT }));
  });
}

// Dispatch waits for the task that handed a connection over to end.
await new Promise((resolve) => setTimeout(resolve, 0));

// The sockets and server stay open until the bench process exits: Deno.bench
// has no hook after the last benchmark, and nothing here outlives the process.
if (import.meta.main && sink < 0) console.log(sink);
