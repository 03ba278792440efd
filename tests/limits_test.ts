/**
 * Message size limits: anyws's maxMessageSize on both sides (1009 from a
 * server, 4009 from a client, with a reason and parse_error, the server
 * serving others meanwhile), and Deno's own fixed 64 MiB frame limit above
 * it, which drops TCP without any close frame.
 */

import { assert, assertEquals } from "@std/assert";
import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { droppablePair, openPair } from "./_pair.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { encodeFrame, RawPeer } from "./_raw_peer.ts";

const MiB = 1024 * 1024;
const DENO_FRAME_LIMIT = 64 * MiB;

Deno.test('maxMessageSize on the server closes with 1009 "message too big", fires parse_error, and the server keeps serving others', async () => {
  const errors: string[] = [];
  const finished = Promise.withResolvers<string | undefined>();
  await using server = listen({
    maxMessageSize: 1024,
    onEstablish(conn) {
      conn.on("message", (conn, message) => conn.send(message));
      conn.on("parse_error", (_conn, error) => errors.push(error));
      conn.on("finish", (_conn, error) => finished.resolve(error));
    },
  });
  await using other = await within(connect(wsUrl(server)), "a second client");
  const big = await within(connect(wsUrl(server)), "the client");
  big.send("a".repeat(1024)); // at the limit: delivered
  assertEquals((await within(big.nextMessage(), "the echo")).byteLength, 1024);
  big.send("é".repeat(513)); // 1026 bytes
  const info = await within(big.closed, "the close");
  assertEquals([info.code, info.reason], [1009, "message too big"]);
  const expected = "Received a message of 1026 bytes; maxMessageSize is 1024";
  assertEquals(errors, [expected]);
  assertEquals(
    await within(finished.promise, "the server side to finish"),
    expected,
  );
  other.send("still served");
  assertEquals(
    `${await within(other.nextMessage(), "the other echo")}`,
    "still served",
  );
});

Deno.test('maxMessageSize on the client closes with 4009 "message too big" (a client may not send 1009) and fires parse_error', async () => {
  await using pair = await openPair({ client: { maxMessageSize: 100 } });
  const { clientConn, serverConn } = pair;
  const errors: string[] = [];
  clientConn.on("parse_error", (_conn, error) => errors.push(error));
  serverConn.send(new Uint8Array(101));
  const info = await within(serverConn.closed, "the server side to see it");
  assertEquals([info.code, info.reason], [4009, "message too big"]);
  const clientInfo = await within(clientConn.closed, "the client to finish");
  assertEquals(
    clientInfo.error?.message,
    "Received a message of 101 bytes; maxMessageSize is 100",
  );
  assertEquals(errors, [
    "Received a message of 101 bytes; maxMessageSize is 100",
  ]);
});

Deno.test("maxMessageSize counts the assembled message: fragments that are each small but too big together close with 1009", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    maxMessageSize: 1000,
    onEstablish: (conn) => established.resolve(conn),
  });
  await using peer = await within(RawPeer.open(server.addr.port), "handshake");
  const conn = await within(established.promise, "onEstablish");
  conn.on("message", () => {});
  const part = new Uint8Array(400);
  await peer.sendFrame({ opcode: 2, payload: part, fin: false });
  await peer.sendFrame({ opcode: 0, payload: part, fin: false });
  await peer.sendFrame({ opcode: 0, payload: part, fin: true });
  assertEquals(await within(peer.readClose(), "the close frame"), {
    code: 1009,
    reason: "message too big",
  });
  peer.drop(); // a raw peer does not answer the close
  assertEquals(
    (await within(conn.closed, "the finish")).error?.message,
    "Received a message of 1200 bytes; maxMessageSize is 1000",
  );
});

Deno.test("Deno's own limit: a frame of 64 MiB is refused as soon as its header arrives, with no close frame (TCP dropped); the connection reports 1006", async () => {
  await using pair = await droppablePair("server");
  const { conn, peer } = pair;
  const errors: string[] = [];
  conn.on("parse_error", (_conn, error) => errors.push(error));
  await peer.sendFrame({
    opcode: 2,
    payload: new Uint8Array(16),
    claimedLength: BigInt(DENO_FRAME_LIMIT),
  });
  assertEquals(await within(peer.readClose(), "the end of the stream"), null);
  const info = await within(conn.closed, "the finish");
  assertEquals([info.code, info.wasClean], [1006, false]);
  assertEquals(info.error?.message, "Frame too large");
  assertEquals(errors, ["Frame too large"]);
});

Deno.test("just under Deno's frame limit (64 MiB - 1) Deno assembles the message, and anyws's maxMessageSize (16 MiB by default) closes with 1009", async () => {
  await using pair = await droppablePair("server");
  const { conn, peer } = pair;
  conn.on("message", () => {});
  const size = DENO_FRAME_LIMIT - 1;
  // Unmasked, which Deno accepts, to spare the test masking 64 MiB in JS.
  const header = encodeFrame({
    opcode: 2,
    mask: false,
    claimedLength: BigInt(size),
  });
  await peer.write(header);
  const chunk = new Uint8Array(MiB);
  for (let sent = 0; sent < size; sent += chunk.length) {
    await peer.write(chunk.subarray(0, Math.min(chunk.length, size - sent)));
  }
  assertEquals(await within(peer.readClose(), "the close frame", 20), {
    code: 1009,
    reason: "message too big",
  });
  peer.drop(); // a raw peer does not answer the close
  const info = await within(conn.closed, "the finish");
  assert(info.error instanceof RangeError);
  assertEquals(
    info.error.message,
    `Received a message of ${size} bytes; maxMessageSize is ${16 * MiB}`,
  );
});
