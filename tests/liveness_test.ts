/**
 * Liveness: a peer that vanishes (a proxy that stops forwarding) is detected
 * on both sides — by Deno's ping/pong `idleTimeout` on the server side, by
 * `inactivityTimeout` on incoming messages on the client side — and `finish`
 * fires once with a clear error. Healthy quiet connections are left alone.
 */

import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { listen, UNIT_MS, within } from "./_fixture.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

/** Resolves with the server-side connection of the first client. */
function firstConnection() {
  const established = Promise.withResolvers<Connection>();
  return {
    established,
    onEstablish: (conn: Connection) => established.resolve(conn),
  };
}

/** Counts `finish` calls and records the errors `parse_error` reports. */
function watch(conn: Connection) {
  const seen = {
    finishes: [] as (string | undefined)[],
    errors: [] as string[],
  };
  conn.on("finish", (_conn, error) => seen.finishes.push(error));
  conn.on("parse_error", (_conn, error) => seen.errors.push(error));
  return seen;
}

Deno.test('idleTimeout on the server closes a client that vanished with 1001 "No response from ping frame." and finish fires once', async () => {
  const { established, onEstablish } = firstConnection();
  await using server = listen({ idleTimeout: 1, onEstablish });
  await using proxy = new TcpProxy(server.addr.port);
  const client = await within(
    connect(`ws://127.0.0.1:${proxy.port}/`, { closeTimeout: 500 }),
    "the client to connect",
  );
  const conn = await within(established.promise, "onEstablish");
  const seen = watch(conn);
  const started = performance.now();
  proxy.blackhole();
  const info = await within(conn.closed, "the idle timeout");
  const elapsed = performance.now() - started;
  assertEquals(info.code, 1001);
  assertEquals(info.wasClean, false);
  assertEquals(info.error?.message, "No response from ping frame.");
  assertEquals(seen.finishes, ["No response from ping frame."]);
  assertEquals(seen.errors, ["No response from ping frame."]);
  assertEquals(server.connections.size, 0);
  // Deno pings after idleTimeout / 2 of silence and gives up after as long
  // again: between 1 and about 2 seconds here.
  assert(elapsed >= 900, `closed after ${elapsed} ms`);
  console.log(`server: vanished client closed after ${elapsed.toFixed(0)} ms`);
  await within(client.terminate().closed, "the client to finish");
});

Deno.test("idleTimeout leaves a quiet but healthy client open: Deno's pings are answered", async () => {
  const { established, onEstablish } = firstConnection();
  await using server = listen({ idleTimeout: 1, onEstablish });
  await using client = await within(
    connect(`ws://127.0.0.1:${server.addr.port}/`),
    "the client to connect",
  );
  const conn = await within(established.promise, "onEstablish");
  // Nobody sends anything for 2.5 idle timeouts.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assertEquals(conn.readyState, WebSocket.OPEN);
  assertEquals(client.readyState, WebSocket.OPEN);
  client.send("still here");
  conn.on("message", (conn, message) => conn.send(message));
  assertEquals(
    `${await within(client.nextMessage(), "the echo")}`,
    "still here",
  );
});

Deno.test("inactivityTimeout on the client finishes once with a TimeoutError when the server vanishes", async () => {
  const { established, onEstablish } = firstConnection();
  await using server = listen({
    idleTimeout: 0,
    closeTimeout: 500,
    onEstablish,
  });
  await using proxy = new TcpProxy(server.addr.port);
  const timeout = UNIT_MS / 2;
  const client = await within(
    connect(`ws://127.0.0.1:${proxy.port}/`, { inactivityTimeout: timeout }),
    "the client to connect",
  );
  const seen = watch(client);
  const serverConn = await within(established.promise, "onEstablish");
  // The server talks for a while; the client stays open past its timeout.
  const ticker = setInterval(() => serverConn.send("tick"), timeout / 5);
  let ticks = 0;
  const enough = Promise.withResolvers<void>();
  client.on("message", () => {
    if (++ticks === 15) enough.resolve(); // three timeouts' worth of ticks
  });
  try {
    await within(enough.promise, "the ticks");
  } finally {
    clearInterval(ticker);
  }
  assertEquals(client.readyState, WebSocket.OPEN);
  const started = performance.now();
  proxy.blackhole();
  const info = await within(client.closed, "the inactivity timeout");
  const elapsed = performance.now() - started;
  const message =
    `No message from the peer for ${timeout} ms (inactivityTimeout): it is gone or not sending`;
  assertEquals(info.code, 1006);
  assertEquals(info.wasClean, false);
  assertInstanceOf(info.error, DOMException);
  assertEquals(info.error.name, "TimeoutError");
  assertEquals(info.error.message, message);
  assertEquals(seen.finishes, [message]);
  assertEquals(seen.errors, [message]);
  assert(elapsed >= timeout * 0.9, `detected after ${elapsed} ms`);
  assert(
    elapsed <= timeout * 1.5 + 2 * UNIT_MS,
    `detected after ${elapsed} ms`,
  );
  console.log(
    `client: vanished server detected after ${
      elapsed.toFixed(0)
    } ms (inactivityTimeout ${timeout} ms)`,
  );
  await within(serverConn.terminate().closed, "the server side to finish");
});

Deno.test("inactivityTimeout on the server side finishes a client that connected and never sent anything", async () => {
  const { established, onEstablish } = firstConnection();
  await using server = listen({ inactivityTimeout: 300, onEstablish });
  await using client = await within(
    connect(`ws://127.0.0.1:${server.addr.port}/`),
    "the client to connect",
  );
  const conn = await within(established.promise, "onEstablish");
  const info = await within(conn.closed, "the inactivity timeout");
  assertEquals(info.code, 1006);
  assertEquals(
    info.error?.message,
    "No message from the peer for 300 ms (inactivityTimeout): it is gone or not sending",
  );
  // The client was alive: it got the close frame terminate() sends.
  const clientInfo = await within(client.closed, "the client to finish");
  assertEquals([clientInfo.code, clientInfo.reason], [1001, "terminated"]);
});
