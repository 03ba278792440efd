/**
 * A child-process anyws `serve()` whose async message handler rejects on the
 * message "fail" and echoes anything else, for the test that such a server
 * keeps running and serving. Prints `ws://127.0.0.1:PORT/`.
 *
 * @module
 */

import { serve } from "../server.ts";

serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`ws://127.0.0.1:${port}/`),
  onEstablish(conn) {
    conn.on("message", async (conn, data) => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (data === "fail") throw new Error("rejected on purpose");
      conn.send(data);
    });
  },
});
