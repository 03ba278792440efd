/**
 * Reconnection over real loopback sockets: a server restarted on the same
 * port, servers that close with chosen codes or refuse the handshake with an
 * HTTP status (a plain `Deno.serve` that answers instead of upgrading), a
 * raw TCP server that drops the connection, the queue and close().
 *
 * Backoff delays are a few milliseconds; every wait is an awaited event under
 * `within()`.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { connect, ConnectError } from "../client.ts";
import {
  type CloseInfo,
  type Connection,
  ConnectionClosedError,
} from "../connection.ts";
import {
  QueueOverflowError,
  ReconnectEvent,
  type ReconnectInfo,
  ReconnectingEvent,
  type ReconnectingInfo,
  type ReconnectOptions,
} from "../reconnect.ts";
import { serve, type Server } from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { RawServer } from "./_raw_server.ts";

/** Short delays, so that tests wait milliseconds for each attempt. */
const FAST: ReconnectOptions = { initialDelay: 10, maxDelay: 50 };
/** A first wait of 30 s: the connection stays disconnected for the test. */
const SLOW: ReconnectOptions = {
  initialDelay: 60_000,
  maxDelay: 60_000,
  random: () => 0.5,
};

/** Resolves with the next `type` event of `conn`. */
function nextEvent<K extends "reconnecting" | "reconnect">(
  conn: Connection,
  type: K,
): Promise<K extends "reconnect" ? ReconnectEvent : ReconnectingEvent> {
  return new Promise((resolve) =>
    conn.addEventListener(type, resolve as never, { once: true })
  );
}

/** Records every `reconnecting` and `reconnect` through on(). */
function record(conn: Connection) {
  const reconnecting: ReconnectingInfo[] = [];
  const reconnected: ReconnectInfo[] = [];
  conn.on("reconnecting", (_conn, info) => void reconnecting.push(info));
  conn.on("reconnect", (_conn, info) => void reconnected.push(info));
  return { reconnecting, reconnected };
}

/** What a {@linkcode scripted} server does with its n-th request. */
type Step =
  | number // answer this HTTP status instead of upgrading
  | { close: number; reason?: string } // upgrade, then close at once
  | "echo"; // upgrade and answer each message with `echo <message>`

/**
 * A plain `Deno.serve` that handles request n with `steps[n]` (the last step
 * repeats), recording what its echo sockets receive.
 */
function scripted(steps: Step[]) {
  const received: string[] = [];
  let requests = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const step = steps[Math.min(requests++, steps.length - 1)]!;
      if (typeof step === "number") {
        return new Response("refused", { status: step });
      }
      const { socket, response } = Deno.upgradeWebSocket(request);
      if (step === "echo") {
        socket.onmessage = (event) => {
          received.push(String(event.data));
          socket.send(`echo ${event.data}`);
        };
      } else {
        socket.onopen = () => socket.close(step.close, step.reason ?? "");
      }
      return response;
    },
  );
  return {
    url: `ws://127.0.0.1:${server.addr.port}/`,
    received,
    get requests() {
      return requests;
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** An anyws server on `port` that echoes and records what it receives. */
function echoServer(port: number, received: string[]): Server {
  return serve({
    port,
    hostname: "127.0.0.1",
    onListen() {},
    onEstablish(conn) {
      conn.on("message", (conn, data) => {
        const text = typeof data === "string"
          ? data
          : `binary ${new TextDecoder().decode(data)}`;
        received.push(text);
        conn.send(`echo ${text}`);
      });
    },
  });
}

Deno.test("a client reconnects to a server restarted on the same port; the reconnect hook's send and the queue follow, in order, on the same Connection", async () => {
  const first: string[] = [];
  const second: string[] = [];
  let server = echoServer(0, first);
  const port = server.addr.port;
  try {
    const conn = await connect(wsUrl(server), { reconnect: FAST });
    const seen = record(conn);
    conn.on("reconnect", (conn) => void conn.send("hello again"));
    let finished = false;
    conn.closed.then(() => finished = true);
    const messages = conn[Symbol.asyncIterator]();
    const read = async () =>
      `${(await within(messages.next(), "a message")).value}`;

    conn.send("m1").send("m2");
    assertEquals([await read(), await read()], ["echo m1", "echo m2"]);

    const lost = nextEvent(conn, "reconnecting");
    await server.shutdown();
    const { cause } = await within(lost, "the reconnecting event");
    assertInstanceOf(cause, ConnectionClosedError);
    assertEquals([cause.code, cause.reason], [1001, "server shutting down"]);
    assertEquals(conn.readyState, WebSocket.CONNECTING);

    conn.send("q1").send("q2").send(new TextEncoder().encode("q3"));
    assertEquals(conn.reconnectStats?.queuedMessages, 3);
    assertEquals(conn.bufferedAmount, 6);

    const back = nextEvent(conn, "reconnect");
    server = echoServer(port, second);
    const event = await within(back, "the reconnect event");
    assertEquals(event.queuedMessages, 3);
    const echoes = [];
    for (let i = 0; i < 4; i++) echoes.push(await read());
    assertEquals(echoes, [
      "echo hello again",
      "echo q1",
      "echo q2",
      "echo binary q3",
    ]);
    assertEquals(first, ["m1", "m2"]);
    assertEquals(second, ["hello again", "q1", "q2", "binary q3"]);
    assertEquals(seen.reconnected.length, 1);
    assert(seen.reconnecting.length >= 1);
    assertEquals(conn.reconnectStats, {
      reconnects: 1,
      queuedMessages: 0,
      queuedBytes: 0,
      droppedMessages: 0,
    });
    assertEquals(conn.readyState, WebSocket.OPEN);
    assertEquals(finished, false);

    const info = await within(conn.close(1000, "done").closed, "the close");
    assertEquals([info.code, info.reason, info.wasClean], [1000, "done", true]);
    assertEquals((await messages.next()).done, true);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a pending nextMessage() and a registered handler keep working across a reconnection", async () => {
  await using scriptedServer = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(scriptedServer.url, { reconnect: FAST });
  const handled: string[] = [];
  conn.on("message", (_conn, data) => void handled.push(String(data)));
  const pending = conn.nextMessage();
  await within(nextEvent(conn, "reconnect"), "the reconnect event");
  conn.send("ping");
  assertEquals(
    `${await within(pending, "the pending nextMessage()")}`,
    "echo ping",
  );
  assertEquals(handled, ["echo ping"]);
  await within(conn.close().closed, "the close");
});

Deno.test("a close with 1000, 1008 or a code in stopCodes finishes the connection without reconnecting", async () => {
  const cases: [number, ReconnectOptions][] = [
    [1000, FAST],
    [1008, FAST],
    [4001, { ...FAST, stopCodes: [4001] }],
  ];
  for (const [code, options] of cases) {
    await using server = scripted([{ close: code, reason: "go away" }, "echo"]);
    const conn = await connect(server.url, { reconnect: options });
    const seen = record(conn);
    const info = await within(conn.closed, `the close with ${code}`);
    assertEquals<CloseInfo>(info, { code, reason: "go away", wasClean: true });
    assertEquals(seen.reconnecting, [], `no reconnecting after ${code}`);
    assertEquals(server.requests, 1);
    assertEquals(conn.reconnectStats?.reconnects, 0);
  }
});

Deno.test("closes with 1001, 1011, 1012, 1013 and an application code are each followed by a reconnection", async () => {
  const codes = [1001, 1011, 1012, 1013, 4000];
  await using server = scripted([
    ...codes.map((code) => ({ close: code, reason: `code ${code}` })),
    "echo",
  ]);
  const conn = await connect(server.url, { reconnect: FAST });
  const seen = record(conn);
  for (let i = 0; i < codes.length; i++) {
    await within(nextEvent(conn, "reconnect"), `reconnection ${i + 1}`);
  }
  conn.send("still here");
  assertEquals(
    `${await within(conn.nextMessage(), "the echo")}`,
    "echo still here",
  );
  assertEquals(
    seen.reconnecting.map((
      { attempt, cause },
    ) => [attempt, (cause as ConnectionClosedError).code, cause.message]),
    codes.map((
      code,
    ) => [1, code, `Connection closed with code ${code} "code ${code}"`]),
  );
  assertEquals(seen.reconnected.map(({ attempt }) => attempt), [1, 1, 1, 1, 1]);
  assertEquals(server.requests, codes.length + 1);
  await within(conn.close().closed, "the close");
});

Deno.test("a connection dropped without a close frame (1006) is reconnected", async () => {
  await using raw = new RawServer();
  const accepted = raw.acceptWebSocket();
  const conn = await connect(raw.url, { reconnect: FAST, closeTimeout: 1000 });
  const { peer } = await within(accepted, "the first connection");
  const lost = nextEvent(conn, "reconnecting");
  const second = raw.acceptWebSocket();
  peer.drop();
  const { cause } = await within(lost, "the reconnecting event");
  assertInstanceOf(cause, ConnectionClosedError);
  assertEquals([cause.code, cause.wasClean], [1006, false]);
  const { peer: again } = await within(second, "the second connection");
  await again.sendFrame({ opcode: 1, payload: "back", mask: false });
  assertEquals(`${await within(conn.nextMessage(), "the message")}`, "back");
  conn.close(1000);
  assertEquals(await within(again.readClose(), "the close frame"), {
    code: 1000,
    reason: "",
  });
  await again.sendFrame({
    opcode: 8,
    payload: new Uint8Array([0x03, 0xe8]),
    mask: false,
  });
  const info = await within(conn.closed, "the end");
  assertEquals([info.code, info.wasClean], [1000, true]);
});

Deno.test("a handshake refused with HTTP 401 stops reconnecting; closed carries the ConnectError", async () => {
  await using server = scripted([
    { close: 1012, reason: "restart" },
    401,
    "echo",
  ]);
  const conn = await connect(server.url, { reconnect: FAST });
  const seen = record(conn);
  const info = await within(conn.closed, "the end");
  assertEquals([info.code, info.reason], [1012, "restart"]);
  assertInstanceOf(info.error, ConnectError);
  assertEquals(info.error.status, 401);
  assertEquals(
    info.error.message,
    `unable to connect to ${server.url}: the server refused the handshake with HTTP 401`,
  );
  assertEquals(seen.reconnecting.map(({ attempt }) => attempt), [1]);
  assertEquals(server.requests, 2);
  await assertRejects(
    () => conn.nextMessage(),
    ConnectionClosedError,
    `Connection closed with code 1012 "restart": unable to connect to ${server.url}: the server refused the handshake with HTTP 401`,
  );
});

Deno.test("handshakes refused with HTTP 503 are retried with the ConnectError as cause, until one succeeds", async () => {
  await using server = scripted([{ close: 1013 }, 503, 503, "echo"]);
  const conn = await connect(server.url, {
    reconnect: { ...FAST, maxAttempts: 5 },
  });
  const seen = record(conn);
  const event = await within(nextEvent(conn, "reconnect"), "the reconnection");
  assertEquals(event.attempt, 3);
  const causes = seen.reconnecting.map((
    { attempt, cause },
  ) => [attempt, cause.name, (cause as ConnectError).status]);
  assertEquals(causes, [
    [1, "ConnectionClosedError", undefined],
    [2, "ConnectError", 503],
    [3, "ConnectError", 503],
  ]);
  conn.send("ok?");
  assertEquals(`${await within(conn.nextMessage(), "the echo")}`, "echo ok?");
  await within(conn.close().closed, "the close");
});

Deno.test("with reconnect, a first handshake refused with HTTP 503 is retried until one succeeds", async () => {
  await using server = scripted([503, 503, "echo"]);
  await using conn = await within(
    connect(server.url, { reconnect: { ...FAST, maxAttempts: 5 } }),
    "the first connection",
  );
  assertEquals(server.requests, 3);
  conn.send("first");
  assertEquals(`${await within(conn.nextMessage(), "the echo")}`, "echo first");
});

Deno.test("with reconnect, a first handshake refused with HTTP 401 rejects at once", async () => {
  await using server = scripted([401, "echo"]);
  const error = await assertRejects(
    () => connect(server.url, { reconnect: FAST }),
    ConnectError,
    `unable to connect to ${server.url}: the server refused the handshake with HTTP 401`,
  );
  assertEquals(error.status, 401);
  assertEquals(server.requests, 1);
});

Deno.test("with reconnect, a first connection refused maxAttempts times rejects with the last failure", async () => {
  await using server = scripted([503]);
  const error = await assertRejects(
    () => connect(server.url, { reconnect: { ...FAST, maxAttempts: 3 } }),
    ConnectError,
    `unable to connect to ${server.url}: the server refused the handshake with HTTP 503`,
  );
  assertEquals(error.status, 503);
  assertEquals(server.requests, 3);
});

Deno.test("with reconnect, aborting the signal during the first connection's backoff rejects with ConnectError", async () => {
  await using server = scripted([503]);
  const controller = new AbortController();
  // The policy draws the jitter exactly when a backoff begins: abort there.
  const random = () => (controller.abort(), 0.5);
  await assertRejects(
    () =>
      within(
        connect(server.url, {
          reconnect: { ...SLOW, random },
          signal: controller.signal,
        }),
        "the rejection",
      ),
    ConnectError,
    `unable to connect to ${server.url}: aborted`,
  );
  assertEquals(server.requests, 1);
});

Deno.test("after maxAttempts failed handshakes the connection gives up with an error naming the last failure", async () => {
  await using server = scripted([{ close: 1011 }, 503]);
  const conn = await connect(server.url, {
    reconnect: { ...FAST, maxAttempts: 2 },
  });
  const seen = record(conn);
  const info = await within(conn.closed, "the end");
  assertEquals([info.code, info.wasClean], [1011, true]);
  assertInstanceOf(info.error, Error);
  assertEquals(
    info.error.message,
    `Gave up reconnecting after 2 attempts: unable to connect to ${server.url}: the server refused the handshake with HTTP 503`,
  );
  assertInstanceOf(info.error.cause, ConnectError);
  assertEquals(seen.reconnecting.map(({ attempt }) => attempt), [1, 2]);
  assertEquals(server.requests, 3);
});

Deno.test("refused TCP connections are retried, then given up after maxAttempts", async () => {
  const server = listen({ onEstablish() {} });
  const url = wsUrl(server);
  const conn = await connect(url, { reconnect: { ...FAST, maxAttempts: 3 } });
  const seen = record(conn);
  await server.shutdown(); // nothing listens on the port any more
  const info = await within(conn.closed, "the end");
  assertEquals([info.code, info.reason], [1001, "server shutting down"]);
  const cause = info.error?.cause;
  assertInstanceOf(cause, ConnectError);
  assertEquals(cause.status, undefined);
  assert(
    cause.message.startsWith(`unable to connect to ${url}: `),
    cause.message,
  );
  assertEquals(
    info.error?.message,
    `Gave up reconnecting after 3 attempts: ${cause.message}`,
  );
  assertEquals(seen.reconnecting.map(({ attempt }) => attempt), [1, 2, 3]);
});

Deno.test('with overflow "reject", a send that does not fit the queue throws QueueOverflowError and queues nothing', async () => {
  await using server = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(server.url, {
    reconnect: { ...SLOW, maxQueuedMessages: 2, maxQueuedBytes: 5 },
  });
  await within(nextEvent(conn, "reconnecting"), "the reconnecting event");
  conn.send("ab").send("cd");
  assertThrows(
    () => conn.send("e"),
    QueueOverflowError,
    "Cannot queue a message of 1 bytes while reconnecting: the queue holds 2 messages and 4 bytes (maxQueuedMessages 2, maxQueuedBytes 5)",
  );
  assertEquals(conn.reconnectStats?.queuedMessages, 2);
  await within(conn.close().closed, "the close");
  // Unsent messages stay counted once the connection has finished.
  assertEquals(conn.reconnectStats?.queuedMessages, 2);
});

Deno.test('with overflow "drop-oldest", the oldest queued messages are dropped and counted, and the newest are delivered', async () => {
  await using server = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(server.url, {
    reconnect: { ...FAST, maxQueuedMessages: 3, overflow: "drop-oldest" },
  });
  // Sent in the handler, before the backoff wait starts: surely queued.
  conn.on("reconnecting", (conn) => {
    for (let i = 1; i <= 5; i++) conn.send(`m${i}`);
  });
  const event = await within(nextEvent(conn, "reconnect"), "the reconnection");
  assertEquals([event.queuedMessages, event.droppedMessages], [3, 2]);
  const echoes = [];
  for (let i = 0; i < 3; i++) {
    echoes.push(`${await within(conn.nextMessage(), "an echo")}`);
  }
  assertEquals(echoes, ["echo m3", "echo m4", "echo m5"]);
  assertEquals(server.received, ["m3", "m4", "m5"]);
  assertEquals(conn.reconnectStats?.droppedMessages, 2);
  await within(conn.close().closed, "the close");
});

Deno.test("close() during the backoff wait stops reconnecting and finishes at once with the given code", async () => {
  await using server = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(server.url, { reconnect: SLOW });
  const seen = record(conn);
  const { delay } = await within(
    nextEvent(conn, "reconnecting"),
    "the reconnecting event",
  );
  assertEquals(delay, 30_000);
  const info = await within(conn.close(4000, "bye").closed, "the close", 1);
  assertEquals<CloseInfo>(info, { code: 4000, reason: "bye", wasClean: true });
  assertEquals(conn.readyState, WebSocket.CLOSED);
  assertEquals(seen.reconnecting.length, 1);
  assertEquals(server.requests, 1);
  await assertRejects(
    () => conn.nextMessage(),
    ConnectionClosedError,
    'Connection closed with code 4000 "bye"',
  );
});

Deno.test("close() while a reconnection handshake is pending abandons it and finishes", async () => {
  await using raw = new RawServer();
  const first = raw.acceptWebSocket();
  const conn = await connect(raw.url, {
    reconnect: { initialDelay: 0 },
    closeTimeout: 1000,
  });
  const { peer } = await within(first, "the first connection");
  const pending = raw.accept(); // accepts the TCP connection, never answers
  peer.drop();
  const silent = await within(pending, "the reconnection attempt");
  assertEquals(conn.readyState, WebSocket.CONNECTING);
  const info = await within(conn.close().closed, "the close", 1);
  assertEquals<CloseInfo>(info, { code: 1005, reason: "", wasClean: true });
  await within(silent.waitForEof(), "the abandoned attempt to be closed");
});

Deno.test("an async reconnect handler delays the queue until it settles, and its own sends go first", async () => {
  await using server = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(server.url, { reconnect: FAST });
  conn.on("reconnecting", (conn) => void conn.send("queued"));
  conn.on("reconnect", async (conn) => {
    conn.send("auth");
    assertEquals(`${await conn.nextMessage()}`, "echo auth");
    conn.send("subscribe");
  });
  await within(nextEvent(conn, "reconnect"), "the reconnection");
  // Every pending nextMessage() sees a message: this one sees "echo auth"
  // beside the handler's.
  const echoes = [];
  for (let i = 0; i < 3; i++) {
    echoes.push(`${await within(conn.nextMessage(), "an echo")}`);
  }
  assertEquals(echoes, ["echo auth", "echo subscribe", "echo queued"]);
  assertEquals(server.received, ["auth", "subscribe", "queued"]);
  await within(conn.close().closed, "the close");
});

Deno.test("a DOM reconnect listener can hold the queue with waitUntil(); a rejection closes the connection with 4011 for good", async () => {
  await using server = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(server.url, { reconnect: FAST });
  const seen = record(conn);
  conn.addEventListener("reconnecting", (event) => {
    assertInstanceOf(event, ReconnectingEvent);
    conn.send("never sent");
  });
  conn.addEventListener("reconnect", (event) => {
    assertInstanceOf(event, ReconnectEvent);
    event.waitUntil(
      Promise.reject(new Error("Cannot re-authenticate: token expired")),
    );
  });
  const errors: string[] = [];
  conn.on("error", (_conn, message) => void errors.push(message));
  const info = await within(conn.closed, "the end");
  assertEquals([info.code, info.reason], [4011, "handler error"]);
  assertEquals(info.error?.message, "Cannot re-authenticate: token expired");
  assertEquals(errors, ["Cannot re-authenticate: token expired"]);
  assertEquals(server.received, []);
  assertEquals(seen.reconnected.length, 1);
  assertEquals(server.requests, 2);
});

Deno.test("a reconnect handler that never settles closes the connection with 4011 after hookTimeout", async () => {
  await using server = scripted([{ close: 1012 }, "echo"]);
  const conn = await connect(server.url, {
    reconnect: { ...FAST, hookTimeout: 50 },
  });
  conn.on("reconnecting", (conn) => void conn.send("never sent"));
  conn.on("reconnect", () => new Promise(() => {}));
  const info = await within(conn.closed, "the end");
  assertEquals([info.code, info.reason], [4011, "handler error"]);
  assertEquals(
    info.error?.message,
    "The reconnect handlers did not settle within 50 ms (hookTimeout)",
  );
  assertEquals(server.received, []);
});

Deno.test("connect() rejects bad reconnect options before opening a socket", async () => {
  await using server = scripted(["echo"]);
  await assertRejects(
    () => connect(server.url, { reconnect: { maxAttempts: 0 } }),
    RangeError,
    "Cannot reconnect: maxAttempts must be an integer >= 1 or Infinity, got 0",
  );
  await assertRejects(
    () => connect(server.url, { reconnect: { overflow: "drop" as never } }),
    TypeError,
    'Cannot reconnect: overflow must be "reject" or "drop-oldest", got "drop"',
  );
  assertEquals(server.requests, 0);
});

Deno.test("without the reconnect option a lost connection finishes as before, and reconnect handlers never run", async () => {
  await using server = scripted([{ close: 1012, reason: "restart" }, "echo"]);
  const conn = await connect(server.url);
  const seen = record(conn);
  const info = await within(conn.closed, "the end");
  assertEquals<CloseInfo>(info, {
    code: 1012,
    reason: "restart",
    wasClean: true,
  });
  assertEquals(seen, { reconnecting: [], reconnected: [] });
  assertEquals(conn.reconnectStats, undefined);
  assertEquals(server.requests, 1);
});

Deno.test("a peer that goes silent past inactivityTimeout counts as lost (1006): the connection reconnects and watches the new socket too", async () => {
  await using raw = new RawServer();
  const first = raw.acceptWebSocket();
  const conn = await connect(raw.url, {
    reconnect: FAST,
    inactivityTimeout: 100,
    closeTimeout: 1000,
  });
  await within(first, "the first connection");
  const seen = record(conn);
  const second = raw.acceptWebSocket();
  const lost = nextEvent(conn, "reconnecting");
  const { cause } = await within(lost, "the first silence");
  assertInstanceOf(cause, ConnectionClosedError);
  assertEquals(cause.code, 1006);
  assertEquals(
    cause.message,
    "Connection closed with code 1006: No message from the peer for 100 ms (inactivityTimeout): it is gone or not sending",
  );
  await within(second, "the second connection");
  // The new socket is watched as well: its silence starts another round.
  await within(nextEvent(conn, "reconnecting"), "the second silence");
  assertEquals(seen.reconnected.length, 1);
  assertEquals(conn.closeCode, undefined);
  const info = await within(conn.close(4000, "enough").closed, "the close", 1);
  assertEquals<CloseInfo>(info, {
    code: 4000,
    reason: "enough",
    wasClean: true,
  });
});
