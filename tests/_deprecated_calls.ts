/**
 * Calls each deprecated Connection method twice on each of two connections,
 * in a fresh process, for the test that each warns once per process.
 * Prints `called each twice` on stdout; the warnings go to stderr.
 *
 * @module
 */

import { connect } from "../client.ts";
import { serve } from "../server.ts";

await using server = serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen() {},
  onEstablish: (conn) => conn.send("hi").close(1000),
});
for (let i = 0; i < 2; i++) {
  const conn = await connect(`ws://127.0.0.1:${server.addr.port}/`);
  for (let call = 0; call < 2; call++) {
    conn.onEachMessage(() => {}).onNextMessage(() => {}).onFinish(() => {});
  }
  await conn.closed;
}
console.log("called each twice");
