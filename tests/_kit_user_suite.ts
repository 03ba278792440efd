/**
 * A suite as a user of the test kit writes it, run by tests/testing_test.ts
 * in a child `deno test --sanitize-ops --sanitize-resources`: two tests pass
 * and one fails on purpose (a message that never comes), so that the run
 * shows the kit leaves no op, timer or resource behind, even when an
 * assertion throws out of `await using` blocks. With
 * `ANYWS_KIT_LEAK_ON_PURPOSE=1` the second test leaks a timer, to show that
 * the sanitizers are on and would say so.
 *
 * @module
 */

import { createHandler } from "@anyws/anyws";
import { testServer } from "@anyws/anyws/testing";

const app = {
  onEstablish(conn: import("@anyws/anyws").Connection) {
    conn.send("welcome");
    conn.on("message", (conn, message) => {
      if (message === "bye") conn.close(4000, "see you");
      else conn.send(message);
    });
  },
};

Deno.test("user: echo and close", async () => {
  await using server = testServer(app);
  await using ws = await server.connect("/");
  await ws.messageIs("welcome");
  ws.sendJSON({ a: 1 });
  await ws.jsonMessageIs({ a: 1 });
  ws.send("bye");
  await ws.closedWith(4000, "see you");
});

Deno.test("user: a fetch handler, left open at the end", async () => {
  await using server = testServer(createHandler(app));
  const ws = await server.connect("/"); // no await using: the server closes it
  await ws.messageIs("welcome");
  if (Deno.env.get("ANYWS_KIT_LEAK_ON_PURPOSE") === "1") {
    setTimeout(() => {}, 60_000);
  }
});

Deno.test("user: this one fails on purpose", async () => {
  await using server = testServer(app, { timeout: 200 });
  await using ws = await server.connect("/");
  await ws.messageIs("welcome");
  await ws.messageIs("a reply nobody sends");
});
