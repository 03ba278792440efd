/**
 * Contender "anyws": {@linkcode serve} from the package, used the way its
 * documentation shows, in one of its three API styles:
 *
 * ```sh
 * deno run -A bench/servers/anyws.ts perl|dom|iter [path/to/checkout]
 * ```
 *
 * - `perl`: `conn.on("message", (conn, data) => conn.send(data))`;
 * - `dom`: `conn.addEventListener("message", (e) => conn.send(e.data))`;
 * - `iter`: `for await (const message of conn) conn.send(message)`.
 *
 * The package is imported from the checkout given (default: this one), so
 * that one bench run can hold two versions of the library side by side.
 *
 * - `GET /broadcast`: `server.broadcast()` of one 64-byte text message.
 * - `GET /stats`, `GET /exit`: see `_stats.ts`.
 *
 * Prints `READY <port>` once listening on 127.0.0.1.
 *
 * @module
 */

import { answer, BROADCAST } from "./_stats.ts";

type Anyws = typeof import("../../mod.ts");
type Connection = import("../../mod.ts").Connection;

const [style = "perl", checkout] = Deno.args;
const library = checkout
  ? new URL("mod.ts", `file://${checkout.replace(/\/?$/, "/")}`)
  : new URL("../../mod.ts", import.meta.url);
const { serve }: Anyws = await import(library.href);

const establish: Record<string, (conn: Connection) => void> = {
  perl(conn) {
    conn.on("message", (conn, data) => conn.send(data));
  },
  dom(conn) {
    conn.addEventListener("message", (event) => conn.send(event.data));
  },
  iter(conn) {
    (async () => {
      for await (const message of conn) conn.send(message);
    })().catch(() => {
      // An abnormal close ends the loop with ConnectionClosedError: the
      // load generator drops its connections without a close frame.
    });
  },
};
const onEstablish = establish[style];
if (!onEstablish) throw new TypeError(`Unknown API style: ${style}`);

const server = serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`READY ${port}`),
  onEstablish,
  fallback: (request): Response =>
    answer(
      request,
      () => server.connections.size,
      () => server.broadcast(BROADCAST),
    ) ?? new Response("not found", { status: 404 }),
});
