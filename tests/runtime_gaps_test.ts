/**
 * What Deno 2.9.6 does not let anyws see or refuse, recorded over real
 * sockets so that the docs (README Limits, docs/threat_model.md) stay true:
 * each test asserts today's behaviour and fails when Deno changes it.
 *
 * - Deno's client opens a connection whose 101 has a wrong or missing
 *   `Sec-WebSocket-Accept` (the response headers never reach JavaScript), or
 *   names an extension it never offered (visible in `socket.extensions`).
 * - Control frames over RFC 6455's 125 bytes: pongs of any size are
 *   accepted; a close frame with a long reason is accepted, handed to
 *   JavaScript whole and echoed back just as long.
 */

import { assertEquals } from "@std/assert";
import { within } from "./_fixture.ts";
import { closePayload, RawPeer } from "./_raw_peer.ts";
import { RawServer } from "./_raw_server.ts";

const CLOSE = 8;
const PONG = 10;
const TEXT = 1;
const decoder = new TextDecoder();

/** How a client socket's handshake ended: `open`, or `close <code>`. */
function outcome(socket: WebSocket): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      socket.onopen = () => resolve("open");
      socket.onclose = (event) => resolve(`close ${event.code}`);
    }),
    "the handshake's outcome",
  );
}

/** Closes the client, `peer` (the raw server side) answering the close. */
async function closeClient(socket: WebSocket, peer: RawPeer): Promise<void> {
  const closed = Promise.withResolvers<void>();
  socket.onclose = () => closed.resolve();
  socket.close();
  await within(peer.readClose(), "the client's close frame");
  await peer.sendFrame({
    opcode: CLOSE,
    payload: closePayload(1000),
    mask: false,
  });
  await within(closed.promise, "the client to close");
}

/** Answers the handshake read from `peer` with `head` (no final blank line). */
async function answer(peer: RawPeer, head: string[]): Promise<Headers> {
  const request = (await peer.readResponse()).headers;
  await peer.write(`${head.join("\r\n")}\r\n\r\n`);
  return request;
}

for (
  const [what, accept] of [
    ["a wrong", ["sec-websocket-accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA="]],
    ["no", []],
  ] as const
) {
  Deno.test(`Deno's client opens a connection whose 101 has ${what} Sec-WebSocket-Accept (RFC 6455 4.1: it must fail it)`, async () => {
    await using server = new RawServer();
    const socket = new WebSocket(server.url);
    const opened = outcome(socket);
    const peer = await within(server.accept(), "the client");
    await answer(peer, [
      "HTTP/1.1 101 Switching Protocols",
      "upgrade: websocket",
      "connection: Upgrade",
      ...accept,
    ]);
    assertEquals(await opened, "open");
    await closeClient(socket, peer);
  });
}

Deno.test("Deno's client offers no extension, yet opens when the 101 names one; socket.extensions shows it", async () => {
  await using server = new RawServer();
  const socket = new WebSocket(server.url);
  const opened = outcome(socket);
  const { peer, request } = await within(
    server.acceptWebSocket({
      "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
    }),
    "the client",
  );
  assertEquals(request.get("sec-websocket-extensions"), null);
  assertEquals(await opened, "open");
  assertEquals(
    socket.extensions,
    "permessage-deflate; client_max_window_bits",
  );
  await closeClient(socket, peer);
});

/** A raw Deno.upgradeWebSocket echo server that records its close events. */
function rawServer() {
  const closes: { code: number; reason: string }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => socket.send(event.data);
      socket.onclose = ({ code, reason }) => closes.push({ code, reason });
      return response;
    },
  );
  return { server, closes };
}

for (const size of [126, 1024 * 1024]) {
  Deno.test(`Deno's server accepts a pong of ${size} bytes (RFC 6455 5.5: control frames carry at most 125) and keeps the connection`, async () => {
    const { server } = rawServer();
    await using peer = await RawPeer.open(server.addr.port);
    await peer.sendFrame({ opcode: PONG, payload: new Uint8Array(size) });
    await peer.sendFrame({ opcode: TEXT, payload: "still open" });
    const frame = await within(peer.readFrame(), "the echo");
    assertEquals(frame?.opcode, TEXT);
    assertEquals(decoder.decode(frame?.payload), "still open");
    peer.drop();
    await server.shutdown();
  });
}

for (const reasonBytes of [198, 70_000]) {
  Deno.test(
    `Deno's server accepts a close frame with a ${reasonBytes}-byte reason, hands it to JavaScript whole, and echoes a ${
      reasonBytes + 2
    }-byte close frame`,
    async () => {
      const { server, closes } = rawServer();
      const reason = "r".repeat(reasonBytes);
      const peer = await RawPeer.open(server.addr.port);
      await peer.sendFrame({
        opcode: CLOSE,
        payload: closePayload(1000, reason),
      });
      const frame = await within(peer.readFrame(), "the close answer");
      assertEquals(frame?.opcode, CLOSE);
      assertEquals(frame?.payload.length, reasonBytes + 2);
      await within(peer.waitForEof(), "the end of the connection");
      peer.drop();
      await server.shutdown();
      assertEquals(closes, [{ code: 1000, reason }]);
    },
  );
}

Deno.test("Deno's client accepts a 126-byte pong and a close frame with a 198-byte reason, which it echoes as a 200-byte close frame", async () => {
  await using server = new RawServer();
  const socket = new WebSocket(server.url);
  const opened = outcome(socket);
  const { peer } = await within(server.acceptWebSocket(), "the client");
  assertEquals(await opened, "open");
  const messages: string[] = [];
  const closed = Promise.withResolvers<CloseEvent>();
  socket.onmessage = (event) => messages.push(event.data);
  socket.onclose = (event) => closed.resolve(event);
  await peer.sendFrame({
    opcode: PONG,
    payload: new Uint8Array(126),
    mask: false,
  });
  await peer.sendFrame({
    opcode: TEXT,
    payload: "after the pong",
    mask: false,
  });
  const reason = "r".repeat(198);
  await peer.sendFrame({
    opcode: CLOSE,
    payload: closePayload(1000, reason),
    mask: false,
  });
  const frame = await within(peer.readFrame(), "the close answer");
  assertEquals(frame?.opcode, CLOSE);
  assertEquals(frame?.payload.length, 200);
  const event = await within(closed.promise, "the close event");
  assertEquals(messages, ["after the pong"]);
  assertEquals([event.code, event.reason, event.wasClean], [
    1000,
    reason,
    true,
  ]);
});
