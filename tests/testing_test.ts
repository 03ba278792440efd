/**
 * The test kit (testing.ts) over real loopback sockets: each assertion passes
 * on what it expects, and fails with a message that shows what came instead.
 * Every test here runs with Deno's op and resource sanitizers on, the failing
 * paths included, and a child `deno test` shows that a user's suite does too.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  AssertionError,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  type CloseInfo,
  connect,
  ConnectError,
  createHandler,
  Message,
  serve,
} from "../mod.ts";
import {
  testConnect,
  type TestConnection,
  TestServer,
  testServer,
} from "../testing.ts";
import { UNIT_MS, within } from "./_fixture.ts";

/** Echoes every message; "quit" closes with 1000 "bye"; "json" sends JSON. */
function echoApp() {
  return {
    onEstablish(conn: import("../mod.ts").Connection) {
      conn.on("message", (conn, message) => {
        if (message === "quit") conn.close(1000, "bye");
        else conn.send(message);
      });
    },
  };
}

/** Awaits an assertion expected to fail; returns its message. */
async function failure(promise: Promise<unknown>): Promise<string> {
  const error = await assertRejects(() => promise, AssertionError);
  return error.message;
}

// A wait that is meant to run out: short, since the test asserts absence.
const SHORT = { timeout: UNIT_MS / 5 };

// Deno 2.9 runs the op and resource sanitizers only when asked (the
// --sanitize-ops and --sanitize-resources flags, or these options): ask, so
// that a leaked timer, op or socket fails the test that leaked it.
const SANITIZED = { sanitizeOps: true, sanitizeResources: true };

/** `Deno.test()` with the sanitizers on. */
function test(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name, ...SANITIZED, fn });
}

// ---- passing paths ------------------------------------------------------

test("testServer() runs serve() options on a free loopback port and the assertions pass on what comes", async () => {
  await using server = testServer(echoApp());
  assertEquals(server.addr.hostname, "127.0.0.1");
  assert(server.addr.port > 0);
  assertEquals(
    server.url("/x?y=1"),
    `ws://127.0.0.1:${server.addr.port}/x?y=1`,
  );
  assert(server.server !== undefined, "the anyws Server is exposed");

  await using ws = await server.connect("/");
  ws.send("héllo").send(new Uint8Array([0, 1, 255]));
  assertEquals((await ws.messageIs("héllo")).decodedBody(), "héllo");
  await ws.messageIs(new Uint8Array([0, 1, 255]));
  ws.send(new Uint16Array([1, 2]).subarray(1));
  await ws.messageIs(new Uint8Array([2, 0]));
  ws.send(new Uint8Array([7]));
  await ws.messageIs(new Uint8Array([7]).buffer);

  ws.sendJSON({ a: [1, "é"], b: null });
  assertEquals(await ws.jsonMessageIs({ a: [1, "é"], b: null }), {
    a: [1, "é"],
    b: null,
  });
  ws.sendJSON({ type: "said", text: "hi", at: 123 });
  const said = await ws.jsonMessageMatches({ type: "said", text: "hi" });
  assertEquals(said.at, 123);
  ws.send('{"n":5}');
  assertEquals((await ws.jsonMessage<{ n: number }>()).n, 5);
  ws.send("id 42");
  await ws.messageMatches(/^id \d+$/);
  ws.send("anything");
  assertEquals((await ws.nextMessage()).decodedBody(), "anything");

  ws.send("quit");
  const info = await ws.closedWith(1000, "bye");
  assertEquals([info.code, info.reason, info.wasClean], [1000, "bye", true]);
});

test("testServer() wraps a fetch handler and a deno serve default export", async () => {
  const handler = createHandler({
    path: "/ws",
    ...echoApp(),
    fallback: () => new Response("plain"),
  });
  for (const app of [handler, { fetch: handler }]) {
    await using server = testServer(app);
    assertEquals(server.server, undefined);
    const plain = await fetch(server.url("/").replace("ws:", "http:"));
    assertEquals(await plain.text(), "plain");
    await using ws = await server.connect("/ws");
    ws.send("through the handler");
    await ws.messageIs("through the handler");
  }
});

test("testServer() wraps a fetch handler that upgrades with Deno.upgradeWebSocket itself", async () => {
  await using server = testServer((request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(`raw: ${event.data}`);
    return response;
  });
  await using ws = await server.connect("/");
  ws.send("hi");
  await ws.messageIs("raw: hi");
});

test("testServer() replaces the port, address and onListen of an application's options", async () => {
  let listened = false;
  await using server = testServer({
    ...echoApp(),
    port: 8000,
    hostname: "0.0.0.0",
    onListen() {
      listened = true;
    },
  });
  assertEquals(server.addr.hostname, "127.0.0.1");
  assert(server.addr.port !== 8000);
  assertEquals(listened, false);
  await using ws = await server.connect();
  ws.send("x");
  await ws.messageIs("x");
});

Deno.test({
  ...SANITIZED,
  name: "testServer() listens on ::1 when asked, with a bracketed URL",
  ignore: !ipv6Loopback(),
  async fn() {
    await using server = testServer(echoApp(), { hostname: "::1" });
    assertEquals(server.url("/a"), `ws://[::1]:${server.addr.port}/a`);
    await using ws = await server.connect("/a");
    ws.send("over v6");
    await ws.messageIs("over v6");
  },
});

test("server.connect() passes subprotocols and headers", async () => {
  await using server = testServer({
    protocols: ["v2", "v1"],
    onEstablish(conn, request) {
      conn.send(`${conn.subprotocol} ${request.headers.get("x-user")}`);
    },
  });
  await using ws = await server.connect("/", {
    protocols: ["v1"],
    headers: { "x-user": "ann" },
  });
  assertEquals(ws.connection.subprotocol, "v1");
  await ws.messageIs("v1 ann");
});

test("testConnect() tests a server the test did not start through the kit", async () => {
  await using plain = serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen() {},
    onEstablish(conn) {
      conn.send("welcome").close(4000, "done");
    },
  });
  await using ws = await testConnect(
    `ws://127.0.0.1:${plain.addr.port}/`,
  );
  await ws.messageIs("welcome");
  await ws.closedWith(4000, /^do/);
});

test("ws.close() closes with a code and reason and returns how it ended", async () => {
  const seen = Promise.withResolvers<CloseInfo>();
  await using server = testServer({
    onEstablish(conn) {
      conn.closed.then(seen.resolve);
    },
  });
  const ws = await server.connect();
  const info = await ws.close(4001, "enough");
  assertEquals([info.code, info.reason], [4001, "enough"]);
  const serverSide = await within(seen.promise, "the server-side close");
  assertEquals([serverSide.code, serverSide.reason], [4001, "enough"]);
  assertThrows(() => ws.connection.close(1011), RangeError);
});

test("ws.noMessage() passes when nothing comes, and when the connection closes meanwhile", async () => {
  await using server = testServer({
    onEstablish(conn) {
      conn.on("message", (conn) => conn.close(1000));
    },
  });
  await using ws = await server.connect();
  const started = performance.now();
  await ws.noMessage(50);
  assert(performance.now() - started >= 45, "it listened for the period");
  ws.send("close now");
  await ws.noMessage(10 * UNIT_MS); // returns at the close, not after 10 units
  assertEquals((await ws.connection.closed).code, 1000);
});

// ---- failing paths: each says what was expected and what came -----------

test("ws.messageIs() shows the text that came and where it differs", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  ws.send("hullo");
  assertEquals(
    await failure(ws.messageIs("hello")),
    'Expected text "hello", got text "hullo" (they differ from character 1)',
  );
  ws.send("hello world");
  assertEquals(
    await failure(ws.messageIs("hello", "the greeting")),
    'the greeting: Expected text "hello", got text "hello world" (they differ from character 5)',
  );
});

test("ws.messageIs() tells a text message from a binary one, both ways", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  ws.send(new TextEncoder().encode("hi"));
  assertEquals(
    await failure(ws.messageIs("hi")),
    'Expected text "hi", got binary (2 bytes: 68 69)',
  );
  ws.send("hi");
  assertEquals(
    await failure(ws.messageIs(new TextEncoder().encode("hi"))),
    'Expected binary (2 bytes: 68 69), got text "hi"',
  );
  ws.send(new Uint8Array([1, 2, 3]));
  assertEquals(
    await failure(ws.messageIs(new Uint8Array([1, 2, 4]))),
    "Expected binary (3 bytes: 01 02 04), got binary (3 bytes: 01 02 03) (they differ from byte 2)",
  );
  ws.send(new Uint8Array(40));
  assertEquals(
    await failure(ws.messageIs(new Uint8Array(0))),
    `Expected binary (0 bytes), got binary (40 bytes: ${
      "00 ".repeat(32)
    }…) (they differ from byte 0)`,
  );
});

test("a long text that came is shown cut, with its length", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  const long = "x".repeat(5000);
  ws.send(long);
  const message = await failure(ws.messageIs("y"));
  assertEquals(
    message,
    `Expected text "y", got text "${
      "x".repeat(200)
    }"… (5000 characters) (they differ from character 0)`,
  );
});

test("an assertion that waits in vain says nothing arrived, and within how long", async () => {
  await using server = testServer({ onEstablish() {} }, SHORT);
  await using ws = await server.connect();
  assertEquals(
    await failure(ws.messageIs("hello")),
    `Expected text "hello", but nothing arrived within ${SHORT.timeout} ms`,
  );
  assertEquals(
    await failure(ws.nextMessage("the welcome")),
    `the welcome: Expected a message, but nothing arrived within ${SHORT.timeout} ms`,
  );
  assertEquals(
    await failure(ws.closedWith(1000)),
    `Expected the close with 1000, but the connection is still open after ${SHORT.timeout} ms`,
  );
});

test("an assertion on a connection that closed says with which code and reason", async () => {
  await using server = testServer({
    onEstablish(conn) {
      conn.on("message", () => conn.close(4000, "done"));
    },
  });
  await using ws = await server.connect();
  ws.send("go");
  assertEquals(
    await failure(ws.messageIs("reply")),
    'Expected text "reply", but the connection closed first, with 4000 "done"',
  );
  assertEquals(
    await failure(ws.jsonMessage()),
    'Expected a JSON text message, but the connection closed first, with 4000 "done"',
  );
});

test("ws.closedWith() fails when a message was left unread before the close", async () => {
  await using server = testServer({
    onEstablish(conn) {
      conn.send("one more").close(1000, "bye");
    },
  });
  await using ws = await server.connect();
  await within(ws.connection.closed, "the close"); // the message waits unread
  assertEquals(
    await failure(ws.closedWith(1000, "bye")),
    'Expected the close with 1000 "bye", but a message came first: text "one more"',
  );
  // Once it is read, the close is what is left.
  await ws.closedWith(1000, "bye");
});

test("ws.closedWith() fails on another code or reason, and shows them", async () => {
  await using server = testServer({
    maxMessageSize: 4,
    onEstablish() {},
  });
  for (
    const [code, reason, expected] of [
      [1000, undefined, "Expected the close with 1000"],
      [1009, "too big", 'Expected the close with 1009 "too big"'],
      [
        1009,
        /^big/,
        "Expected the close with 1009 and a reason matching /^big/",
      ],
      [undefined, "x", 'Expected the close "x"'],
    ] as const
  ) {
    await using ws = await server.connect();
    ws.send("12345");
    const message = await failure(ws.closedWith(code, reason));
    assertStringIncludes(message, expected);
    assertStringIncludes(
      message,
      ', but it closed with 1009 "message too big"',
    );
  }
});

test("ws.messageMatches() shows what did not match", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  ws.send("id x");
  assertEquals(
    await failure(ws.messageMatches(/^id \d+$/)),
    'Expected text matching /^id \\d+$/, got text "id x"',
  );
  ws.send(new Uint8Array([105, 100]));
  assertEquals(
    await failure(ws.messageMatches(/id/)),
    "Expected text matching /id/, got binary (2 bytes: 69 64)",
  );
  // A global pattern matches each time, whatever its lastIndex was.
  const global = /a/g;
  ws.send("a").send("a");
  await ws.messageMatches(global);
  await ws.messageMatches(global);
});

test("ws.jsonMessage() fails on text that is not JSON and on binary, with the cause", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  ws.send("{oops");
  const notJson = await assertRejects(() => ws.jsonMessage(), AssertionError);
  assertStringIncludes(
    notJson.message,
    "Expected a JSON text message, but the text is not JSON: Cannot parse the message as JSON: ",
  );
  assertStringIncludes(notJson.message, 'the text was "{oops"');
  assertInstanceOf(notJson.cause, SyntaxError);

  ws.send(new TextEncoder().encode("{}"));
  const binary = await assertRejects(() => ws.jsonMessage(), AssertionError);
  assertEquals(
    binary.message,
    "Expected a JSON text message, got binary (2 bytes: 7b 7d)",
  );
  assertInstanceOf(binary.cause, TypeError);
});

test("ws.jsonMessageIs() and jsonMessageMatches() fail with what came and a diff", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  ws.sendJSON({ a: 1 });
  const differs = await failure(ws.jsonMessageIs({ a: 2 }));
  assert(
    differs.startsWith(
      'Values are not equal: Expected the JSON {"a":2}, got {"a":1}',
    ),
    differs,
  );
  assertStringIncludes(differs, "[Diff]"); // @std/assert's diff follows

  ws.sendJSON({ type: "said" });
  const missing = await failure(ws.jsonMessageMatches({ text: "hi" }));
  assert(
    missing.includes(
      'Expected a JSON object with {"text":"hi"}, got {"type":"said"}',
    ),
    missing,
  );

  ws.sendJSON([1, 2]);
  assertEquals(
    await failure(ws.jsonMessageMatches({ text: "hi" })),
    'Expected a JSON object with {"text":"hi"}, got [1,2]',
  );
});

test("ws.noMessage() fails when a message comes, and shows it", async () => {
  await using server = testServer(echoApp());
  await using ws = await server.connect();
  ws.send("surprise");
  assertEquals(
    await failure(ws.noMessage(5 * UNIT_MS, "after the echo")),
    `after the echo: Expected no message for ${
      5 * UNIT_MS
    } ms, got text "surprise"`,
  );
});

test("server.connect() fails with the handshake's error as the cause", async () => {
  await using server = testServer({ path: "/ws", onEstablish() {} });
  const error = await assertRejects(
    () => server.connect("/nope"),
    AssertionError,
  );
  assertEquals(
    error.message,
    `Expected a WebSocket handshake at ${
      server.url("/nope")
    }, but it failed: unable to connect to ${
      server.url("/nope")
    }: the server refused the handshake with HTTP 404`,
  );
  assertInstanceOf(error.cause, ConnectError);
  assertEquals(error.cause.status, 404);
});

test("server.refuses() passes on a refusal with the status, and fails otherwise", async () => {
  await using server = testServer({
    path: "/ws",
    authorize: (request) => request.headers.get("x-token") === "secret",
    onEstablish() {},
  });
  assertEquals((await server.refuses("/elsewhere", 404)).status, 404);
  await server.refuses("/ws", 403);
  await server.refuses("/ws");
  assertEquals(
    await failure(server.refuses("/ws", 401)),
    `Expected the handshake at ${
      server.url("/ws")
    } to be refused with HTTP 401, but it failed otherwise: unable to connect to ${
      server.url("/ws")
    }: the server refused the handshake with HTTP 403`,
  );
  assertEquals(
    await failure(
      server.refuses("/ws", 403, { headers: { "x-token": "secret" } }),
    ),
    `Expected the handshake at ${
      server.url("/ws")
    } to be refused with HTTP 403, but it succeeded`,
  );
});

test("the kit refuses a timeout that is not a positive number", async () => {
  await using server = testServer({ onEstablish() {} });
  for (const timeout of [0, -1, NaN, Infinity]) {
    await assertRejects(
      () => server.connect("/", { timeout }),
      RangeError,
      "timeout must be a positive number of milliseconds",
    );
  }
  await using ws = await server.connect();
  await assertRejects(() => ws.noMessage(0), RangeError, "quiet must be");
});

// ---- disposal and parallel use --------------------------------------------

test("await using a test server closes the connections it made with 1000, then stops listening", async () => {
  const closes: Promise<CloseInfo>[] = [];
  const bothEstablished = Promise.withResolvers<void>();
  let port: number;
  {
    await using server = testServer({
      onEstablish(conn) {
        if (closes.push(conn.closed) === 2) bothEstablished.resolve();
      },
    });
    port = server.addr.port;
    await server.connect();
    (await server.connect()).send("open");
    await within(bothEstablished.promise, "both server-side connections");
  }
  const infos = await within(Promise.all(closes), "the server-side closes");
  assertEquals(infos.map((info) => info.code), [1000, 1000]);
  await assertRejects(
    () => connect(`ws://127.0.0.1:${port}/`, { timeout: UNIT_MS }),
    ConnectError,
  );
});

test("a fetch-handler test server stops even with a connection the kit did not make", async () => {
  let port: number;
  {
    await using server = testServer(createHandler(echoApp()));
    port = server.addr.port;
    const outside = await connect(server.url());
    outside.send("x");
    await within(outside.nextMessage(), "the echo");
    await server.close();
    const info = await within(outside.closed, "the outside connection's end");
    assert(info.code !== 1000 || info.wasClean, JSON.stringify(info));
  }
  await assertRejects(
    () => connect(`ws://127.0.0.1:${port}/`, { timeout: UNIT_MS }),
    ConnectError,
  );
});

test("twenty test servers and connections side by side share nothing", async () => {
  const runs = Array.from({ length: 20 }, async (_, i) => {
    await using server = testServer(echoApp());
    await using ws = await server.connect(`/${i}`);
    ws.send(`message ${i}`);
    await ws.messageIs(`message ${i}`);
    ws.sendJSON({ i });
    await ws.jsonMessageIs({ i });
    return server.addr.port;
  });
  const ports = await within(Promise.all(runs), "twenty runs", 20);
  assertEquals(new Set(ports).size, 20);
});

test("a TestConnection wraps a connection made elsewhere", async () => {
  const { TestConnection } = await import("../testing.ts");
  await using server = testServer({
    onEstablish(conn) {
      conn.send(Message.fromJSON({ hello: "world" }));
    },
  });
  const conn = await connect(server.url());
  await using ws: TestConnection = new TestConnection(conn, {
    timeout: UNIT_MS,
  });
  await ws.jsonMessageIs({ hello: "world" });
  assertThrows(
    () => new TestConnection(conn, { timeout: -5 }),
    RangeError,
    "got -5",
  );
});

test("TestServer is testServer()", async () => {
  await using server = new TestServer(echoApp());
  await using ws = await server.connect();
  ws.send("same");
  await ws.messageIs("same");
});

/** Runs tests/_kit_user_suite.ts in a child `deno test` with the sanitizers. */
async function runUserSuite(env: Record<string, string>): Promise<string> {
  const lockArgs = Deno.env.get("JSR_URL") ? ["--no-lock"] : [];
  const { code, stdout, stderr } = await within(
    new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        ...lockArgs,
        "--sanitize-ops",
        "--sanitize-resources",
        "--allow-net",
        "--allow-env=ANYWS_KIT_LEAK_ON_PURPOSE",
        "tests/_kit_user_suite.ts",
      ],
      cwd: new URL("../", import.meta.url),
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output(),
    "the child deno test",
    30,
  );
  const output = new TextDecoder().decode(stdout) +
    new TextDecoder().decode(stderr);
  assertEquals(code, 1, `one test fails on purpose\n${output}`);
  return output;
}

test("a user's deno test suite with the kit passes the sanitizers, a failing assertion included", async () => {
  const output = await runUserSuite({});
  assertStringIncludes(output, "user: echo and close ... ok");
  assertStringIncludes(
    output,
    "user: a fetch handler, left open at the end ... ok",
  );
  assertStringIncludes(output, "user: this one fails on purpose ... FAILED");
  assertStringIncludes(
    output,
    'error: AssertionError: Expected text "a reply nobody sends", but nothing arrived within 200 ms',
  );
  assertStringIncludes(output, "2 passed | 1 failed");
  assert(!output.includes("Leaks detected"), output);

  // The control: the same suite with a timer leaked on purpose is caught.
  const leaky = await runUserSuite({ ANYWS_KIT_LEAK_ON_PURPOSE: "1" });
  assertStringIncludes(leaky, "Leaks detected");
  assertStringIncludes(leaky, "1 passed | 2 failed");
});

function ipv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}
