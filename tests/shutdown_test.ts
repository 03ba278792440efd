/**
 * Shutdown: server.shutdown() and an aborted serve() signal stop accepting
 * (503), send 1001 to every connection after what was already sent, wait
 * for the close handshakes under a timeout, finish the rest, and settle
 * `finished` — with 1 000 open connections.
 */

import { assertEquals, assertRejects } from "@std/assert";
import { connect, ConnectError } from "../client.ts";
import type { Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { RawPeer } from "./_raw_peer.ts";

/** Opens `count` clients, `batch` at a time, each recording what it receives. */
async function openClients(server: Server, count: number, batch = 100) {
  const clients: { conn: Connection; received: string[] }[] = [];
  for (let i = 0; i < count; i += batch) {
    const opened = await within(
      Promise.all(
        Array.from(
          { length: Math.min(batch, count - i) },
          () => connect(wsUrl(server)),
        ),
      ),
      "a batch of clients to connect",
      30,
    );
    for (const conn of opened) {
      const received: string[] = [];
      conn.on("message", (_conn, data) => received.push(String(data)));
      clients.push({ conn, received });
    }
  }
  return clients;
}

/** Waits until the server has established `count` connections. */
function establishedCount(count: number) {
  const all = Promise.withResolvers<void>();
  let seen = 0;
  return {
    promise: all.promise,
    onEstablish: () => {
      if (++seen === count) all.resolve();
    },
  };
}

Deno.test("shutdown() with 1 000 open connections delivers what was sent before, closes each with 1001, and settles finished", async () => {
  const count = 1000;
  const established = establishedCount(count);
  const server = listen({ onEstablish: established.onEstablish });
  const clients = await openClients(server, count);
  await within(established.promise, "every connection to be established", 30);
  assertEquals(server.connections.size, count);
  // Sent just before shutting down: must arrive before the close frame.
  for (const conn of server.connections) conn.send("first").send("last words");
  const started = performance.now();
  await within(server.shutdown({ timeout: 10_000 }), "the shutdown", 30);
  const elapsed = performance.now() - started;
  await within(server.finished, "finished");
  assertEquals(server.connections.size, 0);
  const infos = await within(
    Promise.all(clients.map(({ conn }) => conn.closed)),
    "every client to finish",
  );
  for (const [i, info] of infos.entries()) {
    assertEquals([info.code, info.reason], [1001, "server shutting down"]);
    assertEquals(clients[i]!.received, ["first", "last words"]);
  }
  console.log(
    `shutdown of ${count} connections took ${elapsed.toFixed(0)} ms`,
  );
});

Deno.test("shutdown() refuses new connections with 503 while it waits, finishes a peer that never answers after the timeout with 1006, and resolves", async () => {
  const established = Promise.withResolvers<Connection>();
  const server = listen({ onEstablish: (conn) => established.resolve(conn) });
  await using stubborn = await within(
    RawPeer.open(server.addr.port),
    "the raw peer",
  );
  const conn = await within(established.promise, "onEstablish");
  const timeout = 500;
  const shutdown = server.shutdown({ timeout });
  // The raw peer receives the close but never answers it.
  assertEquals(await within(stubborn.readClose(), "the close frame"), {
    code: 1001,
    reason: "server shutting down",
  });
  const error = await assertRejects(
    () => connect(wsUrl(server)),
    ConnectError,
    "unable to connect to",
  );
  assertEquals(error.status, 503);
  await within(shutdown, "the shutdown");
  const info = await within(conn.closed, "the stubborn connection");
  assertEquals([info.code, info.wasClean], [1006, false]);
  assertEquals(
    info.error?.message,
    `The peer did not answer the server's close within ${timeout} ms (shutdown timeout)`,
  );
  assertEquals(server.connections.size, 0);
  await within(server.finished, "finished");
});

Deno.test("aborting serve()'s signal shuts down like shutdown(): messages first, 1001 to each, finished settles", async () => {
  const count = 50;
  const controller = new AbortController();
  const established = establishedCount(count);
  const server = listen({
    signal: controller.signal,
    onEstablish: established.onEstablish,
  });
  const clients = await openClients(server, count);
  await within(established.promise, "every connection to be established");
  server.broadcast("before abort");
  controller.abort();
  await within(server.finished, "finished");
  for (const { conn, received } of clients) {
    const info = await within(conn.closed, "a client to finish");
    assertEquals(info.code, 1001);
    assertEquals(received, ["before abort"]);
  }
  assertEquals(server.connections.size, 0);
  // shutdown() after the abort returns the same, settled, shutdown.
  await within(server.shutdown(), "shutdown after abort");
});
