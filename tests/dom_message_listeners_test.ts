/**
 * DOM `message` listeners are called from the connection's own list, not
 * through `dispatchEvent` (see _connection/dom_listeners.ts). These tests
 * hold that list to what `dispatchEvent` does, over a real socket, on both
 * sides: the event a listener sees, the order, duplicates, `once`,
 * `signal`, removal and addition during a dispatch,
 * `stopImmediatePropagation()`, `handleEvent` objects, and an event the
 * application dispatches itself.
 */

import { assertEquals, assertStrictEquals } from "@std/assert";
import type { Connection } from "../connection.ts";
import { Message } from "../message.ts";
import { openPair, SIDES } from "./_pair.ts";
import { within } from "./_fixture.ts";

/**
 * Listeners that change the list while a message is dispatched: the first
 * removes a later one and adds one on message "1", and one stops the
 * dispatch on message "1".
 */
function register<T extends EventTarget>(target: T) {
  const calls: string[] = [];
  const later = (e: Event) => calls.push(`later ${(e as MessageEvent).data}`);
  const added = (e: Event) => calls.push(`added ${(e as MessageEvent).data}`);
  target.addEventListener("message", (e) => {
    const data = String((e as MessageEvent).data);
    calls.push(`first ${data}`);
    if (data === "1") {
      target.removeEventListener("message", later);
      target.addEventListener("message", added);
    }
  });
  target.addEventListener("message", later);
  target.addEventListener("message", (e) => {
    const data = String((e as MessageEvent).data);
    calls.push(`stopper ${data}`);
    if (data === "1") e.stopImmediatePropagation();
  });
  target.addEventListener("message", (e) => {
    calls.push(`after the stopper ${(e as MessageEvent).data}`);
  });
  return { target, calls };
}

/** Resolves with the next `n` texts a listener added last sees. */
function lastSeen(conn: Connection, n: number): Promise<string[]> {
  const texts: string[] = [];
  const { promise, resolve } = Promise.withResolvers<string[]>();
  conn.addEventListener("message", (event) => {
    texts.push(String(event.data));
    if (texts.length === n) resolve(texts);
  });
  return promise;
}

for (const side of SIDES) {
  Deno.test(`DOM message listeners on the ${side} side see the event dispatchEvent would make`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const seen: Record<string, unknown>[] = [];
    let kept: MessageEvent | undefined;
    conn.addEventListener("message", function (this: unknown, event) {
      kept = event;
      seen.push({
        isMessageEvent: event instanceof MessageEvent,
        isMessage: event.data instanceof Message,
        text: String(event.data),
        type: event.type,
        target: event.target === conn,
        currentTarget: event.currentTarget === conn,
        srcElement: (event as Event & { srcElement: unknown }).srcElement ===
          conn,
        thisIsConn: this === conn,
        phase: event.eventPhase,
        path: event.composedPath().length === 1 &&
          event.composedPath()[0] === conn,
        bubbles: event.bubbles,
        cancelable: event.cancelable,
      });
    });
    const done = lastSeen(conn, 1);
    peer.send("hello");
    await within(done, "the message");
    assertEquals(seen, [{
      isMessageEvent: true,
      isMessage: true,
      text: "hello",
      type: "message",
      target: true,
      currentTarget: true,
      srcElement: true,
      thisIsConn: true,
      phase: Event.AT_TARGET,
      path: true,
      bubbles: false,
      cancelable: false,
    }]);
    // After the dispatch, as after dispatchEvent.
    assertStrictEquals(kept!.target, conn);
    assertStrictEquals(kept!.currentTarget, null);
    assertEquals(kept!.eventPhase, Event.NONE);
    assertEquals(kept!.composedPath(), []);
  });

  Deno.test(`DOM message listeners on the ${side} side: order, duplicates, capture, handleEvent`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const order: string[] = [];
    const twice = () => order.push("twice");
    conn.addEventListener("message", () => order.push("a"));
    conn.addEventListener("message", () => order.push("b-capture"), true);
    conn.addEventListener("message", twice);
    conn.addEventListener("message", twice); // a duplicate: ignored
    conn.addEventListener("message", twice, { capture: true }); // not one
    conn.addEventListener("message", {
      handleEvent(event: Event) {
        order.push(`object ${event.currentTarget === conn}`);
      },
    });
    const done = lastSeen(conn, 1);
    peer.send("x");
    await within(done, "the message");
    assertEquals(order, ["a", "b-capture", "twice", "twice", "object true"]);
  });

  Deno.test(`DOM message listeners on the ${side} side: once, signal, removal`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const calls: string[] = [];
    conn.addEventListener("message", (e) => calls.push(`once ${e.data}`), {
      once: true,
    });
    const controller = new AbortController();
    conn.addEventListener("message", (e) => calls.push(`signal ${e.data}`), {
      signal: controller.signal,
    });
    const removed = (e: MessageEvent) => calls.push(`removed ${e.data}`);
    conn.addEventListener("message", removed);
    const aborted = AbortSignal.abort();
    conn.addEventListener("message", () => calls.push("never"), {
      signal: aborted,
    });
    let done = lastSeen(conn, 1);
    peer.send("1");
    await within(done, "message 1");
    controller.abort();
    conn.removeEventListener("message", removed);
    done = lastSeen(conn, 1);
    peer.send("2");
    await within(done, "message 2");
    assertEquals(calls, ["once 1", "signal 1", "removed 1"]);
  });

  Deno.test(`DOM message listeners on the ${side} side: changes during a dispatch count from the next message`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    // The same listeners on a plain EventTarget, through dispatchEvent,
    // give the order to expect.
    const expected = register(new EventTarget());
    for (const data of ["1", "2"]) {
      expected.target.dispatchEvent(new MessageEvent("message", { data }));
    }
    const actual = register(conn);
    const done = Promise.withResolvers<void>();
    conn.on("message", (_conn, data) => {
      if (data === "2") done.resolve();
    });
    peer.send("1").send("2");
    await within(done.promise, "both messages");
    assertEquals(actual.calls, expected.calls);
    assertEquals(actual.calls, [
      "first 1",
      "stopper 1",
      "first 2",
      "stopper 2",
      "after the stopper 2",
      "added 2",
    ]);
  });

  Deno.test(`DOM message listeners on the ${side} side: an event the application dispatches reaches them, once included`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const calls: string[] = [];
    conn.addEventListener("message", (e) => calls.push(`once ${e.data}`), {
      once: true,
    });
    conn.addEventListener("message", (e) => {
      calls.push(`always ${e.data} ${e.target === conn}`);
    });
    conn.dispatchEvent(new MessageEvent("message", { data: "local" }));
    const done = lastSeen(conn, 1);
    peer.send("remote");
    await within(done, "the message");
    assertEquals(calls, [
      "once local",
      "always local true",
      "always remote true",
    ]);
  });
}

Deno.test("a removed or fired-once DOM listener no longer counts as a reader: later messages wait for one", async () => {
  await using pair = await openPair();
  const { serverConn, clientConn } = pair;
  const first = Promise.withResolvers<string>();
  serverConn.addEventListener("message", (e) => first.resolve(`${e.data}`), {
    once: true,
  });
  clientConn.send("one");
  assertEquals(await within(first.promise, "the first message"), "one");
  // Nothing reads now: the next message must be held, then handed to the
  // reader registered after it arrived, rather than lost. A listener on the
  // socket itself, added after the connection's own, runs once the
  // connection has taken the message.
  const arrived = Promise.withResolvers<void>();
  serverConn.socket.addEventListener("message", () => arrived.resolve(), {
    once: true,
  });
  clientConn.send("two");
  await within(arrived.promise, "the second message to arrive");
  const held = Promise.withResolvers<string>();
  serverConn.on("message", (_conn, data) => held.resolve(`${data}`));
  assertEquals(await within(held.promise, "the held message"), "two");
});
