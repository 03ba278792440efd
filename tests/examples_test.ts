/**
 * The examples, run as users run them: each is spawned as its own Deno
 * process with the permissions its documentation gives, on a free port
 * (`PORT=0` or `--port 0`), and driven over real loopback sockets.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { connect, type Connection } from "../mod.ts";
import { testConnect, testServer } from "../testing.ts";
import deploy from "../examples/deploy.ts";
import { DenoProcess } from "./_deno_process.ts";
import { UNIT_MS, within } from "./_fixture.ts";

// Our examples shut down gracefully on SIGTERM; Windows has no SIGTERM
// listener, so there the exit status is not checked.
const GRACEFUL = Deno.build.os !== "windows";
// A child's start-up includes loading and transpiling the library.
const START_UNITS = 30;

function runExample(
  file: string,
  permissions: string[],
  env: Record<string, string> = {},
  args: string[] = [],
): DenoProcess {
  return new DenoProcess(
    ["run", ...permissions, `examples/${file}`, ...args],
    env,
  );
}

function echoServer(): DenoProcess {
  return runExample("echo_server.ts", ["--allow-net", "--allow-env=PORT"], {
    PORT: "0",
  });
}

function chatServer(): DenoProcess {
  return runExample("chat_server.ts", [
    "--allow-net",
    "--allow-env=PORT",
    "--allow-read",
  ], { PORT: "0" });
}

function client(...args: string[]): DenoProcess {
  return runExample("client.ts", ["--allow-net"], {}, args);
}

/** A port nothing listens on: bound, then released. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

function wsOf(address: URL, path = "/"): string {
  return `ws://${address.host}${path}`;
}

// ---- echo_server.ts ---------------------------------------------------------

Deno.test("echo_server.ts prints a ws:// address for PORT=0 and echoes text and bytes", async () => {
  await using example = echoServer();
  const address = await within(example.address, "the address", START_UNITS);
  assertEquals(address.protocol, "ws:");
  assert(address.port !== "" && address.port !== "0");

  await using ws = await testConnect(wsOf(address));
  ws.send("héllo");
  await ws.messageIs("héllo");
  ws.send(new Uint8Array([0, 1, 255]));
  await ws.messageIs(new Uint8Array([0, 1, 255]));
});

Deno.test("echo_server.ts closes the connection when it receives quit", async () => {
  await using example = echoServer();
  const address = await within(example.address, "the address", START_UNITS);
  await using ws = await testConnect(wsOf(address));
  ws.send("quit");
  // Plack's close() sends no status code: the peer sees 1005.
  const info = await ws.closedWith(1005);
  assertEquals([info.wasClean, info.error], [true, undefined]);
});

Deno.test({
  name:
    "echo_server.ts closes open connections with 1001 on SIGTERM and exits with 0",
  ignore: !GRACEFUL,
  async fn() {
    await using example = echoServer();
    const address = await within(example.address, "the address", START_UNITS);
    await using ws = await testConnect(wsOf(address));
    ws.send("ping");
    await ws.messageIs("ping"); // the server side is up
    const ended = example.stop();
    await ws.closedWith(1001, "server shutting down");
    const { status } = await within(ended, "the exit");
    assertEquals(status.code, 0);
  },
});

// ---- chat_server.ts ---------------------------------------------------------

interface Said {
  type: "said";
  name: string;
  text: string;
  at: number;
  mine?: true;
  id?: string;
}

async function nextJson(conn: Connection, what: string): Promise<unknown> {
  const message = await within(conn.nextMessage(), what);
  assert(message.isText(), `${what} should be a text message`);
  return message.json();
}

Deno.test("chat_server.ts serves the page with every element id its script uses, and no icon request fails", async () => {
  await using example = chatServer();
  const address = await within(example.address, "the address", START_UNITS);
  assertEquals(address.protocol, "http:");

  const response = await fetch(new URL("/", address));
  assertEquals(response.status, 200);
  assertEquals(
    response.headers.get("content-type"),
    "text/html; charset=utf-8",
  );
  const html = await response.text();
  const script = /<script type="module">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert(script, "the page has an inline module script");
  const ids = [...script.matchAll(/\$\("([\w-]+)"\)/g)].map((match) =>
    match[1]
  );
  assert(ids.length >= 10, `the script looks up ${ids.length} elements`);
  for (const id of ids) assertStringIncludes(html, `id="${id}"`);
  assertStringIncludes(html, ">connecting<");
  // User text must reach the page as text, never as markup.
  assertStringIncludes(html, "textContent");
  assert(!html.includes("innerHTML"), "the page must not use innerHTML");
  // The icon is inline; a request for the classic one gets 204, not 404.
  assertMatch(html, /<link rel="icon"\s+href="data:image\/svg\+xml,/);
  const icon = await fetch(new URL("/favicon.ico", address));
  assertEquals([icon.status, await icon.text()], [204, ""]);

  const missing = await fetch(new URL("/nope", address));
  assertEquals([missing.status, await missing.text()], [404, "Not Found\n"]);
  const plain = await fetch(new URL("/ws", address));
  await plain.body?.cancel();
  assertEquals(plain.status, 426);
});

Deno.test("chat_server.ts broadcasts each chat line verbatim, and gives the sender its own copy marked with its id", async () => {
  await using example = chatServer();
  const address = await within(example.address, "the address", START_UNITS);
  await using alice = await connect(wsOf(address, "/ws"));
  await using bob = await connect(wsOf(address, "/ws"));

  const text = `<img src=x onerror="alert(1)"> & "quotes" ✓`;
  const before = Date.now();
  alice.send(JSON.stringify({ type: "say", name: "alice", text, id: "a1" }));
  const toAlice = await nextJson(alice, "alice's copy") as Said;
  const toBob = await nextJson(bob, "bob's copy") as Said;
  const after = Date.now();

  assertEquals({ ...toBob, at: 0 }, {
    type: "said",
    name: "alice",
    text,
    at: 0,
  });
  assertEquals(toAlice, { ...toBob, mine: true, id: "a1" });
  assert(
    toBob.at >= before - UNIT_MS && toBob.at <= after + UNIT_MS,
    `"at" should be the server's clock in ms, got ${toBob.at}`,
  );

  // Without an id, the sender's copy has none.
  bob.send(JSON.stringify({ type: "say", name: "bob", text: "hi alice" }));
  assertEquals(
    (await nextJson(alice, "bob's line") as Said).text,
    "hi alice",
  );
  const own = await nextJson(bob, "bob's own line") as Said;
  assertEquals([own.name, own.mine, "id" in own], ["bob", true, false]);
});

Deno.test("chat_server.ts answers a ping with a pong, and a join of the current room with joined", async () => {
  await using example = chatServer();
  const address = await within(example.address, "the address", START_UNITS);
  await using conn = await connect(wsOf(address, "/ws"));
  conn.send('{"type":"ping"}');
  assertEquals(await nextJson(conn, "the pong"), { type: "pong" });
  conn.send(JSON.stringify({ type: "join", room: "lobby" }));
  assertEquals(await nextJson(conn, "the answer"), {
    type: "joined",
    room: "lobby",
  });
});

Deno.test("chat_server.ts answers bad input with an error to the sender only and stays open", async () => {
  await using example = chatServer();
  const address = await within(example.address, "the address", START_UNITS);
  await using alice = await connect(wsOf(address, "/ws"));
  await using bob = await connect(wsOf(address, "/ws"));

  const say = (fields: Record<string, unknown>) =>
    JSON.stringify({ type: "say", ...fields });
  const cases: [string | Uint8Array, Record<string, unknown>][] = [
    ["[1, 2]", { message: "Cannot chat: expected a JSON object" }],
    ["null", { message: "Cannot chat: expected a JSON object" }],
    ['{"type":"shout","name":"a","text":"b"}', {
      message:
        'Cannot chat: unknown message type "shout" (expected "say", "join" or "ping")',
    }],
    ['{"name":"a","text":"b"}', {
      message:
        'Cannot chat: unknown message type undefined (expected "say", "join" or "ping")',
    }],
    ['{"type":"say","text":"b"}', {
      message: 'Cannot chat: "name" must be a non-empty string',
    }],
    [say({ name: "a", text: "   " }), {
      message: 'Cannot chat: "text" must be a non-empty string',
    }],
    [say({ name: "a", text: 42, id: "7" }), {
      message: 'Cannot chat: "text" must be a non-empty string',
      id: "7",
    }],
    [say({ name: "n".repeat(65), text: "b" }), {
      message: 'Cannot chat: "name" is 65 characters long, the limit is 64',
    }],
    [say({ name: "a", text: "t".repeat(2001), id: "long" }), {
      message: 'Cannot chat: "text" is 2001 characters long, the limit is 2000',
      id: "long",
    }],
    // A name on two lines could pose as a second chat line.
    [say({ name: "eve\nbob", text: "b" }), {
      message:
        'Cannot chat: "name" must be one line without control characters',
    }],
    [say({ name: "a", text: "b", id: 7 }), {
      message: 'Cannot chat: "id" must be a string of 1 to 64 characters',
    }],
    [say({ name: "a", text: "b", id: "i".repeat(65) }), {
      message: 'Cannot chat: "id" must be a string of 1 to 64 characters',
    }],
    [JSON.stringify({ type: "join", room: "a\u2028b" }), {
      message:
        'Cannot join: "room" must be one line without control characters',
    }],
    [new Uint8Array([123, 125]), {
      message: "Cannot chat: send JSON text, not binary data",
    }],
  ];
  for (const [sent, expected] of cases) {
    alice.send(sent);
    assertEquals(
      await nextJson(alice, `the error for ${String(sent).slice(0, 40)}`),
      { type: "error", ...expected },
    );
  }
  alice.send("{not json");
  const invalid = await nextJson(alice, "the error for bad JSON") as {
    type: string;
    message: string;
  };
  assertEquals(invalid.type, "error");
  assertMatch(invalid.message, /^Cannot chat: invalid JSON \(.+\)$/);

  // Still open; and bob got none of alice's errors: his next message is this.
  alice.send(
    JSON.stringify({ type: "say", name: "alice", text: "still here" }),
  );
  assertEquals(
    (await nextJson(alice, "alice's line") as Said).text,
    "still here",
  );
  assertEquals((await nextJson(bob, "bob's copy") as Said).text, "still here");
});

Deno.test("chat_server.ts takes 20 messages at once, answers the first one over with retryIn, ignores the rest, and takes more after retryIn", async () => {
  await using example = chatServer();
  const address = await within(example.address, "the address", START_UNITS);
  await using alice = await connect(wsOf(address, "/ws"));
  await using bob = await connect(wsOf(address, "/ws"));

  const line = (i: number) =>
    JSON.stringify({
      type: "say",
      name: "alice",
      text: `line ${i}`,
      id: `${i}`,
    });
  for (let i = 1; i <= 30; i++) alice.send(line(i));
  for (let i = 1; i <= 20; i++) {
    assertEquals((await nextJson(alice, `line ${i}`) as Said).id, `${i}`);
    assertEquals(
      (await nextJson(bob, `bob's line ${i}`) as Said).text,
      `line ${i}`,
    );
  }
  const refusal = await nextJson(alice, "the refusal") as {
    message: string;
    id: string;
    retryIn: number;
  };
  assertEquals(refusal.id, "21");
  assertMatch(
    refusal.message,
    /^Slow down: at most 5 messages a second \(20 at once\)\. Try again in 0\.[12] s\.$/,
  );
  assert(
    refusal.retryIn > 0 && refusal.retryIn <= 200,
    `retryIn is ${refusal.retryIn} ms`,
  );

  // Waiting as told is enough (this wait is what the test checks, not a
  // synchronization): line 31 goes through. Alice's next message is its
  // copy, so lines 22 to 30 got no answer (answers come in order), and
  // Bob's next line is line 31, so none of them reached the room either.
  await new Promise((resolve) => setTimeout(resolve, refusal.retryIn));
  alice.send(line(31));
  assertEquals((await nextJson(alice, "line 31") as Said).id, "31");
  assertEquals((await nextJson(bob, "bob's line 31") as Said).text, "line 31");
});

Deno.test("chat_server.ts closes a connection that sends a message over 64 KiB with 1009", async () => {
  await using example = chatServer();
  const address = await within(example.address, "the address", START_UNITS);
  const conn = await connect(wsOf(address, "/ws"));
  conn.send("x".repeat(64 * 1024 + 1));
  const info = await within(conn.closed, "the close");
  assertEquals([info.code, info.reason], [1009, "message too big"]);
});

Deno.test({
  name:
    "chat_server.ts closes open connections with 1001 on SIGTERM and exits with 0",
  ignore: !GRACEFUL,
  async fn() {
    await using example = chatServer();
    const address = await within(example.address, "the address", START_UNITS);
    const conn = await connect(wsOf(address, "/ws"));
    conn.send(JSON.stringify({ type: "say", name: "a", text: "b" }));
    await nextJson(conn, "the broadcast"); // the server side is up
    const ended = example.stop();
    const info = await within(conn.closed, "the shutdown close");
    assertEquals([info.code, info.reason], [1001, "server shutting down"]);
    assertEquals((await within(ended, "the exit")).status.code, 0);
  },
});

// ---- client.ts --------------------------------------------------------------

/** An in-process echo server ("quit" closes) that records how connections ended. */
function recordingEchoServer() {
  const closes: Promise<{ code: number; reason: string }>[] = [];
  const server = testServer({
    onEstablish(conn) {
      closes.push(conn.closed);
      conn.on("message", (conn, message) => {
        if (message === "quit") conn.close(1000, "bye");
        else conn.send(message);
      });
    },
  });
  return { server, closes };
}

Deno.test("client.ts sends each argument, prints each reply and closes with 1000", async () => {
  const { server, closes } = recordingEchoServer();
  await using _server = server;
  await using run = client(server.url(), "one", "twø");
  const { status, stdout, stderr } = await within(
    run.ended(),
    "the client's exit",
    START_UNITS,
  );
  assertEquals(status.code, 0, stderr);
  assertEquals(stdout, "one\ntwø\n");
  assertStringIncludes(stderr, `client: connected to ${server.url()}`);
  assertEquals(closes.length, 1);
  const info = await within(closes[0]!, "the server-side close");
  assertEquals(info.code, 1000);
});

Deno.test("client.ts sends one default line when given only a URL", async () => {
  const { server } = recordingEchoServer();
  await using _server = server;
  await using run = client(server.url());
  const { status, stdout } = await within(
    run.ended(),
    "the client's exit",
    START_UNITS,
  );
  assertEquals([status.code, stdout], [0, "hello from anyws\n"]);
});

Deno.test("client.ts exits with 0 when the server closes cleanly after quit", async () => {
  const { server } = recordingEchoServer();
  await using _server = server;
  await using run = client(server.url(), "a", "quit", "never sent");
  const { status, stdout, stderr } = await within(
    run.ended(),
    "the client's exit",
    START_UNITS,
  );
  assertEquals([status.code, stdout], [0, "a\n"]);
  assertStringIncludes(
    stderr,
    'client: the server closed the connection (Connection closed with code 1000 "bye")',
  );
});

Deno.test("client.ts exits with 1 and says why when nothing listens", async () => {
  const url = `ws://127.0.0.1:${freePort()}/`;
  await using run = client(url, "hello");
  const { status, stdout, stderr } = await within(
    run.ended(),
    "the client's exit",
    START_UNITS,
  );
  assertEquals([status.code, stdout], [1, ""]);
  assertStringIncludes(stderr, `client: unable to connect to ${url}: `);
});

Deno.test("client.ts exits with 1 for a URL that is not a WebSocket URL", async () => {
  await using run = client("ftp://example.com/", "hello");
  const { status, stdout, stderr } = await within(
    run.ended(),
    "the client's exit",
    START_UNITS,
  );
  assertEquals([status.code, stdout], [1, ""]);
  assertEquals(stderr, "client: URI is not a websocket: ftp://example.com/\n");
});

// ---- deploy.ts --------------------------------------------------------------

Deno.test("deploy.ts under deno serve echoes over WebSocket and answers plain HTTP", async () => {
  await using example = new DenoProcess([
    "serve",
    "--allow-net",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "examples/deploy.ts",
  ]);
  const address = await within(example.address, "the address", START_UNITS);
  assertEquals(address.protocol, "http:");

  const response = await fetch(address);
  assertEquals(response.status, 200);
  assertStringIncludes(await response.text(), "anyws echo endpoint");

  await using ws = await testConnect(wsOf(address, "/any/path"));
  ws.send("over deploy");
  await ws.messageIs("over deploy");
});

Deno.test("deploy.ts's default export, wrapped by testServer(), echoes and answers plain HTTP", async () => {
  await using server = testServer(deploy);
  const response = await fetch(server.url().replace("ws:", "http:"));
  assertStringIncludes(await response.text(), "anyws echo endpoint");
  await using ws = await server.connect("/any/path");
  ws.send("in process").send(new Uint8Array([1, 2]));
  await ws.messageIs("in process");
  await ws.messageIs(new Uint8Array([1, 2]));
});
