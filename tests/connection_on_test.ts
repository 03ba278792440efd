/**
 * The Perl registration API, `on()`, and the DOM events beside it, run for
 * both the server-side and the client-side Connection.
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { Connection } from "../connection.ts";
import { Message } from "../message.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import {
  capturingConsoleError,
  Collector,
  openPair,
  sideCode,
  SIDES,
} from "./_pair.ts";

for (const side of SIDES) {
  Deno.test(`on("message") on the ${side} side passes text as a string and binary as bytes`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const got = new Collector<[Connection, string | Uint8Array, unknown]>(2);
    const off = conn.on(
      "message",
      (c, data, unregister) => got.push([c, data, unregister]),
    );
    assertEquals(typeof off, "function");
    peer.send("héllo").send(new Uint8Array([0, 1, 255]));
    const [first, second] = await got.full();
    const [c1, text, unregister] = first!;
    const [c2, bytes] = second!;
    assertStrictEquals(c1, conn);
    assertStrictEquals(c2, conn);
    assertEquals(text, "héllo");
    assertEquals(bytes, new Uint8Array([0, 1, 255]));
    assertInstanceOf(bytes, Uint8Array);
    assertEquals(typeof unregister, "function");
  });

  Deno.test(`on("each_message") on the ${side} side passes Message objects`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const got = new Collector<Message>(2);
    conn.on("each_message", (c, message, unregister) => {
      assertStrictEquals(c, conn);
      assertEquals(typeof unregister, "function");
      got.push(message);
    });
    peer.send("text").send(new Uint8Array([7]));
    const [text, binary] = await got.full();
    assertInstanceOf(text, Message);
    assert(text!.isText());
    assertEquals(text!.decodedBody(), "text");
    assert(binary!.isBinary());
    assertEquals(binary!.body, new Uint8Array([7]));
  });

  Deno.test(`on("next_message") on the ${side} side runs once, for the next message only`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const next: string[] = [];
    const each = new Collector<string>(2);
    conn.on("next_message", (c, message) => {
      assertStrictEquals(c, conn);
      next.push(`${message}`);
    });
    conn.on("each_message", (_c, message) => each.push(`${message}`));
    peer.send("first").send("second");
    assertEquals(await each.full(), ["first", "second"]);
    assertEquals(next, ["first"]);
  });

  Deno.test(`on() on the ${side} side dispatches next_message first, then each_message/message in registration order, then DOM listeners`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const order: string[] = [];
    const done = new Collector<string>(2);
    conn.on("each_message", (_c, m) => order.push(`A:${m}`));
    conn.on("message", (_c, data) => order.push(`B:${data}`));
    conn.addEventListener("message", (event) => {
      order.push(`DOM:${event.data}`);
      done.push(`${event.data}`);
    });
    conn.on("next_message", (_c, m) => order.push(`C:${m}`));
    conn.on("each_message", (_c, m) => order.push(`D:${m}`));
    conn.on("next_message", (_c, m) => order.push(`E:${m}`));
    peer.send("x").send("y");
    await done.full();
    assertEquals(order, [
      "C:x",
      "E:x",
      "A:x",
      "B:x",
      "D:x",
      "DOM:x",
      "A:y",
      "B:y",
      "D:y",
      "DOM:y",
    ]);
  });

  Deno.test(`on() on the ${side} side dispatches from a snapshot: removed handlers see the current message, added ones start at the next`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const seen: string[] = [];
    const done = new Collector<string>(2);
    let offB: () => void = () => {};
    let added = false;
    conn.on("each_message", (_c, m) => {
      seen.push(`A:${m}`);
      if (!added) {
        added = true;
        offB();
        offB(); // idempotent
        conn.on("each_message", (_c, m) => seen.push(`C:${m}`));
      }
    });
    offB = conn.on("each_message", (_c, m) => seen.push(`B:${m}`));
    conn.on("each_message", (_c, m) => done.push(`${m}`));
    peer.send("1").send("2");
    await done.full();
    assertEquals(seen, ["A:1", "B:1", "A:2", "C:2"]);
  });

  Deno.test(`the unregister argument on the ${side} side removes the handler from inside it`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const plack: string[] = [];
    const anyevent: string[] = [];
    const done = new Collector<string>(3);
    conn.on("message", (_c, data, unregister) => {
      plack.push(String(data));
      unregister();
      unregister();
    });
    conn.on("each_message", (_c, m, unregister) => {
      anyevent.push(`${m}`);
      if (anyevent.length === 2) unregister();
    });
    conn.on("each_message", (_c, m) => done.push(`${m}`));
    peer.send("a").send("b").send("c");
    await done.full();
    assertEquals(plack, ["a"]);
    assertEquals(anyevent, ["a", "b"]);
  });

  Deno.test(`on(event, handler) on the ${side} side returns an unregister function that stops delivery`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const removed: string[] = [];
    const kept = new Collector<string>(1);
    const off = conn.on("message", (_c, data) => removed.push(String(data)));
    conn.on("message", (_c, data) => kept.push(String(data)));
    off();
    peer.send("only kept");
    await kept.full();
    assertEquals(removed, []);
  });

  Deno.test(`on({...}) and on(event, handler, ...) on the ${side} side register several and return the unregister functions in order`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const log: string[] = [];
    const done = new Collector<string>(2);
    const fromObject = conn.on({
      message: (_c, data) => log.push(`obj-message:${data}`),
      each_message: (_c, m) => log.push(`obj-each:${m}`),
    });
    assert(Array.isArray(fromObject));
    assertEquals(fromObject.length, 2);
    const fromPairs = conn.on(
      "message",
      ((_c: Connection, data: string) =>
        log.push(`pair-message:${data}`)) as never,
      "each_message",
      ((_c: Connection, m: Message) => done.push(`${m}`)) as never,
    );
    assert(Array.isArray(fromPairs));
    assertEquals(fromPairs.length, 2);
    peer.send("1");
    await within(
      new Promise<void>((resolve) => conn.on("next_message", () => resolve())),
      "the first message",
    );
    // Remove the first of each list: the object's message handler and the
    // pairs' message handler.
    fromObject[0]!();
    fromPairs[0]!();
    peer.send("2");
    await done.full();
    assertEquals(log, [
      "obj-message:1",
      "obj-each:1",
      "pair-message:1",
      "obj-each:2",
    ]);
  });

  Deno.test(`on("finish") and its alias "close" on the ${side} side fire once, without an error after a clean close`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const calls: [string, Connection, string | undefined][] = [];
    conn.on("finish", (c, error) => calls.push(["finish", c, error]));
    conn.on("close", (c, error) => calls.push(["close", c, error]));
    conn.onFinish(() => calls.push(["onFinish", conn, undefined]));
    peer.close(side === "server" ? 4000 : 4001, "done");
    const info = await within(conn.closed, "the close");
    assertEquals(info.code, side === "server" ? 4000 : 4001);
    assertEquals(info.reason, "done");
    assert(info.wasClean);
    assertEquals(info.error, undefined);
    assertEquals(calls.map(([name]) => name), ["finish", "close", "onFinish"]);
    for (const [, c, error] of calls) {
      assertStrictEquals(c, conn);
      assertEquals(error, undefined);
    }
    assertEquals(conn.closeCode, info.code);
    assertEquals(conn.closeReason, "done");
    assertEquals(conn.closeError, undefined);
    // Both sides shut and the server stopped: every socket event has been
    // dispatched by then, so a second finish would have come.
    await within(Promise.resolve(pair[Symbol.asyncDispose]()), "the shutdown");
    assertEquals(calls.length, 3, "finish fires exactly once");
  });

  Deno.test(`registering a finish handler on the ${side} side after finish is a no-op; closed still answers`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    peer.close(4002, "late");
    await within(conn.closed, "the close");
    let called = false;
    const off = conn.on("finish", () => called = true);
    assertEquals(typeof off, "function");
    off();
    const [offMessage] = conn.on(
      "message",
      () => called = true,
      "error",
      () => called = true,
    );
    offMessage!();
    await within(Promise.resolve(pair[Symbol.asyncDispose]()), "the shutdown");
    assertEquals(called, false);
    assertEquals((await conn.closed).reason, "late");
  });

  Deno.test(`a throwing message handler on the ${side} side skips the rest, fires parse_error and closes with ${sideCode(side, 1011)}`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const errors = new Collector<[string, Connection, string]>(2);
    const after: string[] = [];
    conn.on("parse_error", (c, text) => errors.push(["parse_error", c, text]));
    conn.on("error", (c, text) => errors.push(["error", c, text]));
    const domErrors: ErrorEvent[] = [];
    conn.addEventListener("error", (event) => domErrors.push(event));
    conn.on("message", () => {
      throw new Error("handler exploded");
    });
    conn.on("message", (_c, data) => after.push(String(data)));
    peer.send("boom");
    assertEquals(
      (await errors.full()).map(([name, c, text]) => [name, c === conn, text]),
      [["parse_error", true, "handler exploded"], [
        "error",
        true,
        "handler exploded",
      ]],
    );
    const peerInfo = await within(peer.closed, "the peer to see the close");
    const info = await within(conn.closed, "the connection to finish");
    assertEquals(peerInfo.code, sideCode(side, 1011));
    assertEquals(info.code, sideCode(side, 1011));
    assertEquals(info.error?.message, "handler exploded");
    assertEquals(conn.closeError?.message, "handler exploded");
    assertEquals(after, [], "the handlers after the throwing one were skipped");
    assertEquals(domErrors.length, 1);
    assertInstanceOf(domErrors[0], ErrorEvent);
    assertEquals(domErrors[0]!.message, "handler exploded");
  });

  Deno.test(`a throwing DOM message listener on the ${side} side is handled like a throwing handler`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const errors = new Collector<string>(1);
    conn.on("parse_error", (_c, text) => errors.push(text));
    const later: unknown[] = [];
    conn.addEventListener("message", () => {
      throw new TypeError("listener exploded");
    });
    conn.addEventListener("message", (event) => later.push(event.data));
    peer.send("boom");
    assertEquals(await errors.full(), ["listener exploded"]);
    assertEquals(
      (await within(peer.closed, "the peer to see the close")).code,
      sideCode(side, 1011),
    );
    assertEquals(
      (await within(conn.closed, "the finish")).error?.message,
      "listener exploded",
    );
    assertEquals(later, []);
  });

  Deno.test(`a throwing next_message handler on the ${side} side closes with ${sideCode(side, 1011)} too`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const errors = new Collector<string>(1);
    conn.on("parse_error", (_c, text) => errors.push(text));
    conn.on("next_message", () => {
      throw "a string, not an Error";
    });
    peer.send("boom");
    assertEquals(await errors.full(), ["a string, not an Error"]);
    assertEquals(
      (await within(peer.closed, "the close")).code,
      sideCode(side, 1011),
    );
  });

  Deno.test(`throwing finish, parse_error and DOM close listeners on the ${side} side are logged, not thrown, and the others still run`, async () => {
    const { logged } = await capturingConsoleError(async () => {
      await using pair = await openPair();
      const { conn, peer } = pair.sides(side);
      const ran: string[] = [];
      conn.on("parse_error", () => {
        throw new Error("parse_error handler exploded");
      });
      conn.on("parse_error", () => ran.push("parse_error 2"));
      conn.on("finish", () => {
        throw new Error("finish handler exploded");
      });
      conn.on("finish", () => ran.push("finish 2"));
      conn.addEventListener("close", () => {
        throw new Error("close listener exploded");
      });
      conn.addEventListener("close", () => ran.push("close 2"));
      conn.on("message", () => {
        throw new Error("trigger");
      });
      peer.send("x");
      await within(conn.closed, "the finish");
      assertEquals(ran, ["parse_error 2", "finish 2", "close 2"]);
    });
    const text = logged.map((args) => args.map(String).join(" ")).join("\n");
    assert(text.includes("parse_error handler exploded"), text);
    assert(text.includes("finish handler exploded"), text);
    assert(text.includes("close listener exploded"), text);
  });

  Deno.test(`the deprecated onEachMessage/onNextMessage on the ${side} side pass decoded text and return the connection`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const each = new Collector<unknown>(2);
    const next: unknown[] = [];
    assertStrictEquals(conn.onEachMessage(each.push), conn);
    assertStrictEquals(conn.onNextMessage((text) => next.push(text)), conn);
    assertStrictEquals(conn.onFinish(() => {}), conn);
    peer.send("one").send(new TextEncoder().encode("twö"));
    assertEquals(await each.full(), ["one", "twö"]);
    assertEquals(next, ["one"]);
  });

  Deno.test(`DOM events on the ${side} side: message carries the Message, close is a CloseEvent with the code`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const messages = new Collector<MessageEvent<Message>>(1);
    conn.addEventListener("message", messages.push);
    const closes: CloseEvent[] = [];
    conn.addEventListener("close", (event) => {
      // Typed from the event map: no casts needed.
      closes.push(event);
    });
    peer.send("dom");
    const [event] = await messages.full();
    assertInstanceOf(event, MessageEvent);
    assertInstanceOf(event.data, Message);
    assertEquals(event.data.decodedBody(), "dom");
    peer.close(4005, "dom close");
    await within(conn.closed, "the close");
    assertEquals(closes.length, 1);
    assertInstanceOf(closes[0], CloseEvent);
    assertEquals([closes[0]!.code, closes[0]!.reason, closes[0]!.wasClean], [
      4005,
      "dom close",
      true,
    ]);
  });

  Deno.test(`removeEventListener and once on the ${side} side stop DOM delivery`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const removed: string[] = [];
    const once: string[] = [];
    const all = new Collector<string>(2);
    const listener = (event: MessageEvent<Message>) =>
      removed.push(`${event.data}`);
    conn.addEventListener("message", listener);
    conn.removeEventListener("message", listener);
    conn.removeEventListener("message", listener); // twice is harmless
    conn.addEventListener("message", (event) => once.push(`${event.data}`), {
      once: true,
    });
    conn.addEventListener("message", {
      handleEvent: (event: Event) =>
        all.push(`${(event as MessageEvent).data}`),
    });
    peer.send("1").send("2");
    assertEquals(await all.full(), ["1", "2"]);
    assertEquals(removed, []);
    assertEquals(once, ["1"]);
  });
}

Deno.test("on() rejects unknown events and non-functions with a TypeError naming the event, registering nothing", async () => {
  await using pair = await openPair();
  const conn = pair.clientConn;
  assertThrows(
    () => conn.on("mesage" as "message", () => {}),
    TypeError,
    'Cannot register a handler for "mesage": unknown event (expected one of message, each_message, next_message, finish, close, parse_error, error, reconnecting, reconnect)',
  );
  assertThrows(
    () => conn.on("finish", "not a function" as never),
    TypeError,
    'Cannot register a handler for "finish": the handler is string, not a function',
  );
  assertThrows(
    () => conn.on({ message: () => {}, nope: () => {} } as never),
    TypeError,
    'Cannot register a handler for "nope": unknown event',
  );
  assertThrows(
    () => conn.on("message" as never),
    TypeError,
    "Cannot register handlers: expected event/handler pairs, got 1 argument(s)",
  );
  assertThrows(
    () => (conn.on as (...args: unknown[]) => unknown)(),
    TypeError,
    "Cannot register handlers: expected event/handler pairs, got 0 argument(s)",
  );
  // The valid first pair of a failed call must not have been registered.
  let registered = false;
  assertThrows(
    () =>
      conn.on(
        "message",
        (() => registered = true) as never,
        "each_message",
        null as never,
      ),
    TypeError,
    'Cannot register a handler for "each_message": the handler is object, not a function',
  );
  const got = new Collector<string>(1);
  conn.on("message", (_c, data) => got.push(String(data)));
  pair.serverConn.send("probe");
  await got.full();
  assertEquals(registered, false);
});

Deno.test("a Connection built from a new WebSocket dispatches open to DOM listeners and flushes sends queued while connecting", async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.on("message", (c, data) => c.send(`echo ${data}`));
    },
  });
  const conn = new Connection(new WebSocket(wsUrl(server)));
  assertEquals(conn.readyState, WebSocket.CONNECTING);
  assertEquals(conn.masked, true);
  const opened = new Promise<Event>((resolve) =>
    conn.addEventListener("open", resolve)
  );
  conn.send("queued");
  assert(conn.bufferedAmount >= 6, "queued bytes count as buffered");
  assertInstanceOf(await within(opened, "open"), Event);
  assertEquals(
    `${await within(conn.nextMessage(), "the echo")}`,
    "echo queued",
  );
  await within(conn.close(1000).closed, "the close");
});
