/**
 * When messages and `finish` are delivered: held until the receiving task
 * ends, buffered until a consumer exists, bounded by maxPendingMessages; and
 * the pull-style readers (nextMessage, for await, await using).
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
} from "@std/assert";
import { connect } from "../client.ts";
import { ConnectionClosedError } from "../connection.ts";
import type { Message } from "../message.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { closePayload, encodeFrame, RawPeer } from "./_raw_peer.ts";
import { RawServer } from "./_raw_server.ts";
import {
  Collector,
  droppablePair,
  openPair,
  sideCode,
  SIDES,
} from "./_pair.ts";

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Enough rounds to make an ordering race show up, few enough to stay fast. */
const ROUNDS = 10;

Deno.test("a finish handler registered right after await connect() fires when the server sends and closes at once", async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.send("hello").close(1000, "bye");
    },
  });
  for (let round = 0; round < ROUNDS; round++) {
    const conn = await within(connect(wsUrl(server)), "connect");
    const events: string[] = [];
    conn.on("message", (_c, data) => events.push(`message:${data}`));
    conn.on("finish", (_c, error) => events.push(`finish:${error}`));
    const info = await within(conn.closed, "the close");
    assertEquals(
      events,
      ["message:hello", "finish:undefined"],
      `round ${round}`,
    );
    assertEquals([info.code, info.reason, info.wasClean], [1000, "bye", true]);
  }
});

for (const ending of ["a close frame", "a dropped TCP connection"] as const) {
  Deno.test(`a finish handler registered right after await connect() fires when the 101, a message and ${ending} arrive in one TCP segment`, async () => {
    // Deno then fires open, message and close within one task: only the
    // hold keeps finish from firing before the handlers exist.
    const clean = ending === "a close frame";
    const trailing = concat(
      encodeFrame({ opcode: 1, payload: "hello", mask: false }),
      clean
        ? encodeFrame({
          opcode: 8,
          payload: closePayload(1000, "bye"),
          mask: false,
        })
        : new Uint8Array(),
    );
    for (let round = 0; round < ROUNDS; round++) {
      await using raw = new RawServer();
      const served = raw.acceptWebSocket({}, trailing).then(({ peer }) =>
        peer.drop()
      );
      const conn = await within(connect(raw.url), "connect");
      const events: string[] = [];
      conn.on("message", (_c, data) => events.push(`message:${data}`));
      conn.on(
        "finish",
        (_c, error) =>
          events.push(error === undefined ? "finish" : "finish with error"),
      );
      await within(served, "the raw server");
      const info = await within(conn.closed, "the finish");
      assertEquals(events, [
        "message:hello",
        clean ? "finish" : "finish with error",
      ], `round ${round}`);
      assertEquals(info.code, clean ? 1000 : 1006);
    }
  });
}

Deno.test("handlers registered after microtask hops in the task that got the connection still see everything", async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.send("hello").close(4000);
    },
  });
  for (let round = 0; round < ROUNDS; round++) {
    const conn = await within(connect(wsUrl(server)), "connect");
    for (let hop = 0; hop < 5; hop++) await Promise.resolve();
    const events: string[] = [];
    conn.on("message", (_c, data) => events.push(`message:${data}`));
    conn.on("finish", () => events.push("finish"));
    await within(conn.closed, "the close");
    assertEquals(events, ["message:hello", "finish"], `round ${round}`);
  }
});

Deno.test("a connection whose messages nobody read keeps them after finish for nextMessage() and for await", async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.send("kept").send("also kept").close(1000);
    },
  });
  const conn = await within(connect(wsUrl(server)), "connect");
  let finished = 0;
  conn.on("finish", () => finished++);
  const info = await within(conn.closed, "the close");
  assertEquals(finished, 1);
  assertEquals(`${await conn.nextMessage()}`, "kept");
  const rest: string[] = [];
  for await (const message of conn) rest.push(`${message}`);
  assertEquals(rest, ["also kept"]);
  const error = await assertRejects(
    () => conn.nextMessage(),
    ConnectionClosedError,
    "Connection closed with code 1000",
  );
  assertEquals(error.code, info.code);
});

Deno.test("handlers registered in onEstablish see every message and the finish of a client that sends and closes at once", async () => {
  const seen = new Collector<string[]>(ROUNDS);
  let returnedFromEstablish = true;
  await using server = listen({
    async onEstablish(conn) {
      returnedFromEstablish = false;
      const events: string[] = [];
      conn.on("message", (_c, data) => {
        assert(returnedFromEstablish, "dispatched inside onEstablish's task");
        events.push(String(data));
      });
      // An await inside onEstablish is still the same task.
      await Promise.resolve();
      conn.on("finish", () => {
        events.push("finish");
        seen.push(events);
      });
      returnedFromEstablish = true;
    },
  });
  for (let round = 0; round < ROUNDS; round++) {
    const conn = await within(connect(wsUrl(server)), "connect");
    conn.send("1").send("2").send("3").close(1000);
    await within(conn.closed, "the close");
  }
  for (const events of await seen.full("every server-side finish")) {
    assertEquals(events, ["1", "2", "3", "finish"]);
  }
});

for (const ending of ["a close frame", "a dropped TCP connection"] as const) {
  Deno.test(`handlers registered in onEstablish after an await see the message and finish of a client that pipelines its handshake, a message and ${ending}`, async () => {
    const clean = ending === "a close frame";
    const seen = new Collector<string[]>(ROUNDS);
    await using server = listen({
      async onEstablish(conn) {
        const events: string[] = [];
        conn.on("message", (_c, data) => events.push(`message:${data}`));
        await Promise.resolve();
        await Promise.resolve();
        conn.on("finish", (_c, error) => {
          events.push(error === undefined ? "finish" : "finish with error");
          seen.push(events);
        });
      },
    });
    const pipelined = concat(
      new TextEncoder().encode(RawPeer.request()),
      encodeFrame({ opcode: 1, payload: "early" }),
      clean
        ? encodeFrame({ opcode: 8, payload: closePayload(1000) })
        : new Uint8Array(),
    );
    for (let round = 0; round < ROUNDS; round++) {
      await using peer = await within(
        RawPeer.connect(server.addr.port),
        "TCP connect",
      );
      await peer.write(pipelined);
      if (clean) await within(peer.readClose(), "the server's close reply");
      else peer.drop();
    }
    for (const events of await seen.full("every server-side finish")) {
      assertEquals(events, [
        "message:early",
        clean ? "finish" : "finish with error",
      ]);
    }
  });
}

for (const side of SIDES) {
  Deno.test(`messages that arrive on the ${side} side before any consumer are held and delivered in order to every consumer registered in that task`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    // Watch the raw socket (not a consumer) to know when all three arrived.
    const arrived = new Collector<unknown>(3);
    conn.socket.addEventListener("message", arrived.push);
    peer.send("a").send(new Uint8Array([2])).send("c");
    await arrived.full("three messages on the raw socket");

    const handler = new Collector<string>(3);
    const dom = new Collector<string>(3);
    conn.on(
      "message",
      (_c, data) => handler.push(typeof data === "string" ? data : `[${data}]`),
    );
    conn.addEventListener("message", (event) => dom.push(`${event.data}`));
    const iterator = conn[Symbol.asyncIterator]();
    const first = conn.nextMessage();
    assertEquals(await handler.full(), ["a", "[2]", "c"]);
    assertEquals(await dom.full(), ["a", "\u0002", "c"]);
    assertEquals(`${await first}`, "a");
    const pulled: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { value } = await iterator.next();
      pulled.push(`${value}`);
    }
    assertEquals(pulled, ["a", "\u0002", "c"]);
    await iterator.return!();
  });

  Deno.test(`more than maxPendingMessages unread messages on the ${side} side fire parse_error and close with ${sideCode(side, 1008)}`, async () => {
    await using pair = await openPair({
      server: { maxPendingMessages: 2 },
      client: { maxPendingMessages: 2 },
    });
    const { conn, peer } = pair.sides(side);
    const errors = new Collector<string>(1);
    conn.on("parse_error", (_c, text) => errors.push(text)); // not a message consumer
    peer.send("1").send("2").send("3");
    const text =
      "More than 2 messages arrived with nothing reading them (maxPendingMessages)";
    assertEquals(await errors.full(), [text]);
    assertEquals(
      (await within(peer.closed, "the peer to see the close")).code,
      sideCode(side, 1008),
    );
    const info = await within(conn.closed, "the finish");
    assertInstanceOf(info.error, RangeError);
    assertEquals(info.error.message, text);
    assertEquals(conn.closeError, info.error);
  });

  Deno.test(`nextMessage() on the ${side} side resolves with the next message`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const next = conn.nextMessage();
    peer.send("one").send(new Uint8Array([1, 2]));
    const first = await within(next, "the first message");
    assert(first.isText());
    assertEquals(`${first}`, "one");
    const second = await within(
      conn.nextMessage({ timeout: 5000 }),
      "the second message",
    );
    assertEquals(second.body, new Uint8Array([1, 2]));
  });

  Deno.test(`a pull-only reader on the ${side} side gets a message that arrived between two nextMessage() calls before the next macrotask`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const first = conn.nextMessage();
    peer.send("one");
    assertEquals(`${await within(first, "the first message")}`, "one");
    // The socket listener added now runs after the Connection's own, so once
    // it sees "two", the Connection holds it with no reader waiting.
    const held = new Promise((resolve) =>
      conn.socket.addEventListener("message", resolve, { once: true })
    );
    peer.send("two");
    await within(held, "the second message to arrive");
    const order: string[] = [];
    const macrotask = new Promise<void>((resolve) =>
      setTimeout(() => resolve(void order.push("macrotask")), 0)
    );
    const second = conn.nextMessage().then((message) => {
      order.push(`${message}`);
    });
    await within(Promise.all([second, macrotask]), "both");
    assertEquals(order, ["two", "macrotask"]);
  });

  Deno.test(`nextMessage() on the ${side} side rejects with a TimeoutError after timeout and loses nothing`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const error = await assertRejects(
      () => conn.nextMessage({ timeout: 20 }),
      DOMException,
      "No message arrived within 20 ms",
    );
    assertEquals(error.name, "TimeoutError");
    peer.send("after");
    assertEquals(`${await within(conn.nextMessage(), "the message")}`, "after");
  });

  Deno.test(`nextMessage() on the ${side} side rejects with the signal's reason when aborted`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const controller = new AbortController();
    const waiting = conn.nextMessage({ signal: controller.signal });
    const reason = new Error("gave up");
    controller.abort(reason);
    const error = await assertRejects(() => waiting);
    assertStrictEquals(error, reason);
    await assertRejects(
      () =>
        conn.nextMessage({
          signal: AbortSignal.abort(new RangeError("already")),
        }),
      RangeError,
      "already",
    );
    peer.send("still delivered");
    assertEquals(
      `${await within(conn.nextMessage(), "the message")}`,
      "still delivered",
    );
  });

  Deno.test(`nextMessage() on the ${side} side rejects with ConnectionClosedError carrying code and reason when the connection finishes`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const waiting = conn.nextMessage();
    peer.close(4321, "no more");
    const error = await within(
      assertRejects(
        () => waiting,
        ConnectionClosedError,
        'Connection closed with code 4321 "no more"',
      ),
      "the rejection",
    );
    assertEquals([error.code, error.reason, error.wasClean], [
      4321,
      "no more",
      true,
    ]);
    await assertRejects(
      () => conn.nextMessage(),
      ConnectionClosedError,
      'Connection closed with code 4321 "no more"',
    );
  });

  Deno.test(`for await on the ${side} side yields every message and ends normally on a clean close`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    peer.send("a").send("b").send(new Uint8Array([3]));
    peer.close(1000);
    const got: Message[] = [];
    await within(
      (async () => {
        for await (const message of conn) got.push(message);
      })(),
      "the loop to end",
    );
    assertEquals(got.map((m) => m.isText() ? `${m}` : [...m.body]), ["a", "b", [
      3,
    ]]);
  });

  Deno.test(`breaking out of for await on the ${side} side leaves the connection open and the unread messages to the next reader`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    // Both have arrived before the loop starts, so the iterator takes both.
    const arrived = new Collector<unknown>(2);
    conn.socket.addEventListener("message", arrived.push);
    peer.send("first").send("second");
    await arrived.full("two messages on the raw socket");
    for await (const message of conn) {
      assertEquals(`${message}`, "first");
      break;
    }
    assertEquals(conn.readyState, WebSocket.OPEN);
    assertEquals(
      `${await within(conn.nextMessage(), "the second message")}`,
      "second",
    );
  });

  Deno.test(`for await on the ${side} side throws ConnectionClosedError when the peer drops the TCP connection`, async () => {
    await using pair = await droppablePair(side);
    const { conn } = pair;
    const loop = (async () => {
      const got: string[] = [];
      for await (const message of conn) got.push(`${message}`);
      return got;
    })();
    pair.drop();
    const error = await within(
      assertRejects(
        () => loop,
        ConnectionClosedError,
        "Connection closed with code 1006",
      ),
      "the loop to throw",
    );
    assertEquals([error.code, error.wasClean], [1006, false]);
    assertInstanceOf(error.cause, Error);
  });

  Deno.test(`await using on the ${side} side closes with 1000 and waits for the finish`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    {
      await using _conn = conn;
      conn.send("last words");
    }
    assertEquals(conn.readyState, WebSocket.CLOSED);
    assertEquals(conn.closeCode, 1000);
    assertEquals(
      `${await within(peer.nextMessage(), "the last message")}`,
      "last words",
    );
    assertEquals((await within(peer.closed, "the peer's finish")).code, 1000);
  });
}
