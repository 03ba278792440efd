/**
 * close(), send() after close, the closed promise and close details, and the
 * Deno platform facts the Connection smooths over.
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { checkCloseCode, type Connection } from "../connection.ts";
import { listen, within } from "./_fixture.ts";
import {
  Collector,
  droppablePair,
  openPair,
  type Side,
  SIDES,
} from "./_pair.ts";
import { RawPeer } from "./_raw_peer.ts";

/** One macrotask turn: only to prove that something did NOT happen. */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const ALLOWED: Record<Side, number[]> = {
  server: [
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    4999,
  ],
  client: [1000, 3000, 3999, 4000, 4999],
};
const REFUSED: Record<Side, number[]> = {
  server: [
    0,
    999,
    1004,
    1005,
    1006,
    1015,
    1016,
    2999,
    5000,
    65535,
    1000.5,
    NaN,
    -1000,
  ],
  client: [
    0,
    999,
    1001,
    1002,
    1003,
    1005,
    1006,
    1007,
    1008,
    1009,
    1011,
    1014,
    2999,
    5000,
    1000.5,
    NaN,
  ],
};
const RULE: Record<Side, string> = {
  server: "1000-1003, 1007-1014 or 3000-4999",
  client: "1000 or 3000-4999",
};

for (const side of SIDES) {
  Deno.test(`checkCloseCode() lets the ${side} side send only ${RULE[side]}`, () => {
    for (const code of ALLOWED[side]) checkCloseCode(code, side);
    for (const code of REFUSED[side]) {
      assertThrows(
        () => checkCloseCode(code, side),
        RangeError,
        `Cannot close with code ${code}: the ${side} side may send ${
          RULE[side]
        }`,
      );
    }
  });

  Deno.test(`close() on the ${side} side throws RangeError for a code it may not send, before sending anything`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    for (const code of REFUSED[side]) {
      assertThrows(
        () => conn.close(code),
        RangeError,
        `Cannot close with code ${code}: the ${side} side may send ${
          RULE[side]
        }`,
      );
    }
    assertEquals(conn.readyState, WebSocket.OPEN);
    // Still open both ways: nothing went on the wire.
    conn.send("still open");
    assertEquals(
      `${await within(peer.nextMessage(), "the message")}`,
      "still open",
    );
    const code = side === "server" ? 1013 : 3000;
    conn.close(code, "valid");
    assertEquals((await within(peer.closed, "the close")).code, code);
  });

  Deno.test(`close() on the ${side} side throws RangeError for a reason over 123 UTF-8 bytes`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    assertThrows(
      () => conn.close(1000, "é".repeat(62)),
      RangeError,
      "Cannot close: the reason is 124 UTF-8 bytes, the limit is 123",
    );
    assertThrows(
      () => conn.close(undefined, "x".repeat(200)),
      RangeError,
      "Cannot close: the reason is 200 UTF-8 bytes, the limit is 123",
    );
    assertEquals(conn.readyState, WebSocket.OPEN);
    const longest = "é".repeat(61) + "x"; // 123 bytes
    conn.close(4000, longest);
    const info = await within(peer.closed, "the close");
    assertEquals([info.code, info.reason], [4000, longest]);
  });

  Deno.test(`close() without a code on the ${side} side sends a close frame without status: the peer sees 1005`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    assertStrictEquals(conn.close(), conn);
    const info = await within(peer.closed, "the peer's finish");
    assertEquals([info.code, info.reason, info.wasClean], [1005, "", true]);
    assertEquals(info.error, undefined);
    assertEquals((await within(conn.closed, "the finish")).code, 1005);
  });

  Deno.test(`close() with only a reason on the ${side} side closes with 1000`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    conn.close(undefined, "just a reason");
    const info = await within(peer.closed, "the peer's finish");
    assertEquals([info.code, info.reason], [1000, "just a reason"]);
  });

  Deno.test(`close() on the ${side} side is idempotent: the first code wins and it returns the connection`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    assertStrictEquals(conn.close(4001, "first"), conn);
    assertStrictEquals(conn.close(4002, "second"), conn);
    assertStrictEquals(conn.close(), conn);
    const info = await within(peer.closed, "the peer's finish");
    assertEquals([info.code, info.reason], [4001, "first"]);
    const own = await within(conn.closed, "the finish");
    assertEquals([own.code, own.reason, own.wasClean], [4001, "first", true]);
    assertStrictEquals(conn.close(4003), conn, "after finish too");
  });

  Deno.test(`send() on the ${side} side after close() sends nothing and does not throw`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    conn.send("before");
    conn.close(1000);
    assertStrictEquals(conn.send("after close"), conn);
    const received: string[] = [];
    for await (const message of peer) received.push(`${message}`);
    assertEquals(received, ["before"]);
    await within(conn.closed, "the finish");
    assertStrictEquals(conn.send("after finish"), conn);
    // Bad data is still a TypeError: the caller's bug, not the connection's state.
    assertThrows(
      () => conn.send(42 as unknown as string),
      TypeError,
      "Cannot send number",
    );
  });

  Deno.test(`closed on the ${side} side resolves once with code, reason and wasClean, and the close details follow`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    assertEquals(conn.closeCode, undefined);
    assertEquals(conn.closeReason, undefined);
    assertEquals(conn.closeError, undefined);
    assertStrictEquals(conn.closed, conn.closed);
    peer.close(4100, "details");
    const info = await within(conn.closed, "the finish");
    assertEquals(info, { code: 4100, reason: "details", wasClean: true });
    assertStrictEquals(await conn.closed, info);
    assertEquals(conn.closeCode, 4100);
    assertEquals(conn.closeReason, "details");
    assertEquals(conn.closeError, undefined);
    assertEquals(conn.readyState, WebSocket.CLOSED);
  });

  Deno.test(`a peer dropping TCP on the ${side} side is reported as 1006, not Deno's 0, with an error`, async () => {
    await using pair = await droppablePair(side);
    const { conn } = pair;
    const finishes = new Collector<string | undefined>(1);
    conn.on("finish", (_c, error) => finishes.push(error));
    const closes: CloseEvent[] = [];
    conn.addEventListener("close", (event) => closes.push(event));
    pair.drop();
    const info = await within(conn.closed, "the finish");
    assertEquals([info.code, info.wasClean], [1006, false]);
    assertInstanceOf(info.error, Error);
    assert(info.error.message.length > 0);
    const [error] = await finishes.full();
    assertEquals(error, info.error.message);
    assertEquals(conn.closeCode, 1006);
    assertStrictEquals(conn.closeError, info.error);
    assertEquals(closes.map((e) => e.code), [1006]);
  });

  Deno.test(`a close the peer never answers on the ${side} side finishes after closeTimeout with 1006 and an error`, async () => {
    await using pair = await droppablePair(side, { closeTimeout: 100 });
    const { conn } = pair;
    const finishes = new Collector<string | undefined>(1);
    conn.on("finish", (_c, error) => finishes.push(error));
    conn.close(1000, "are you there?");
    // The raw peer reads our close frame but never answers it.
    assertEquals(await within(pair.peer.readClose(), "our close frame"), {
      code: 1000,
      reason: "are you there?",
    });
    const info = await within(conn.closed, "the close timeout");
    assertEquals([info.code, info.wasClean], [1006, false]);
    assertEquals(
      info.error?.message,
      "The peer did not answer the close within 100 ms",
    );
    assertEquals(await finishes.full(), [
      "The peer did not answer the close within 100 ms",
    ]);
    assertEquals(conn.readyState, WebSocket.CLOSED);
  });

  Deno.test(`the ${side}-side socket delivers binary as ArrayBuffer (binaryType "arraybuffer")`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    assertEquals(conn.socket.binaryType, "arraybuffer");
    const raw = new Collector<unknown>(1);
    conn.socket.addEventListener("message", (event) => raw.push(event.data));
    peer.send(new Uint8Array([1, 2, 3]));
    const [data] = await raw.full();
    assertInstanceOf(data, ArrayBuffer);
    assertEquals(
      (await within(conn.nextMessage(), "the message")).body,
      new Uint8Array([1, 2, 3]),
    );
  });
}

Deno.test("properties of the two sides: masked, role, url, subprotocol", async () => {
  await using pair = await openPair({
    server: { protocols: ["chat"] },
    client: { protocols: ["chat"] },
  });
  const { serverConn, clientConn } = pair;
  assertEquals([serverConn.masked, clientConn.masked], [false, true]);
  assertEquals([serverConn.role, clientConn.role], ["server", "client"]);
  assertEquals([serverConn.subprotocol, clientConn.subprotocol], [
    "chat",
    "chat",
  ]);
  const port = pair.server.addr.port;
  assertEquals(new URL(serverConn.url).port, String(port));
  assertEquals(clientConn.url, `ws://127.0.0.1:${port}/`);
  assertEquals(clientConn.request, undefined);
  assertEquals(clientConn.remoteAddr, undefined);
  assertEquals(serverConn.bufferedAmount, 0);
  assertEquals(clientConn.bufferedAmount, 0);
});

Deno.test("an idle-timeout close (a peer that never pongs) fires finish exactly once despite Deno's duplicate close event", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    idleTimeout: 1,
    onEstablish: (conn) => established.resolve(conn),
  });
  // The raw peer never reads, so it never answers Deno's ping.
  await using _peer = await within(
    RawPeer.open(server.addr.port),
    "the handshake",
  );
  const conn = await within(established.promise, "onEstablish");
  const rawCloses = new Collector<CloseEvent>(2);
  conn.socket.addEventListener(
    "close",
    (event) => rawCloses.push(event as CloseEvent),
  );
  let finishes = 0;
  conn.on("finish", () => finishes++);
  let closeEvents = 0;
  conn.addEventListener("close", () => closeEvents++);
  const info = await within(conn.closed, "the idle timeout", 5);
  assertEquals(info.code, 1001);
  assertEquals(info.reason, "No response from ping frame.");
  assertEquals(info.wasClean, false);
  assertInstanceOf(info.error, Error);
  // Deno dispatches a second, spurious close event; wait for it, then check.
  const [first, second] = await rawCloses.full("both of Deno's close events");
  assertEquals(first!.code, 1001);
  assertMatch(String(second!.code), /^\d+$/);
  await nextTask();
  assertEquals(finishes, 1);
  assertEquals(closeEvents, 1);
});
