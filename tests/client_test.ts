/**
 * connect(), Client and ConnectError: what Deno's client does not do by
 * itself (handshake timeout, subprotocol check, typed errors).
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
} from "@std/assert";
import { Client, connect, ConnectError } from "../client.ts";
import type { Connection } from "../connection.ts";
import { serve } from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { Collector } from "./_pair.ts";
import { RawServer } from "./_raw_server.ts";

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

Deno.test("connect() resolves with an open client-side connection", async () => {
  await using server = listen({
    onEstablish: (conn) => void conn.send("welcome"),
  });
  const url = wsUrl(server, "/path?q=1");
  await using conn = await within(connect(url), "connect");
  assertEquals(conn.readyState, WebSocket.OPEN);
  assertEquals([conn.role, conn.masked], ["client", true]);
  assertEquals(conn.url, url);
  assertEquals(conn.subprotocol, undefined);
  assertEquals(`${await within(conn.nextMessage(), "the welcome")}`, "welcome");
});

Deno.test("connect() accepts a URL object and http: URLs", async () => {
  await using server = listen({ onEstablish() {} });
  await using viaHttp = await within(
    connect(`http://127.0.0.1:${server.addr.port}/x`),
    "connect over http:",
  );
  assertEquals(viaHttp.url, `ws://127.0.0.1:${server.addr.port}/x`);
  await using viaUrl = await within(
    connect(new URL(wsUrl(server))),
    "connect with a URL",
  );
  assertEquals(viaUrl.readyState, WebSocket.OPEN);
});

Deno.test('connect() rejects a URL that is not ws, wss, http or https with "URI is not a websocket"', async () => {
  for (
    const url of [
      "ftp://example.com/",
      "mailto:someone@example.com",
      "not a url",
      "",
    ]
  ) {
    const error = await assertRejects(
      () => connect(url),
      ConnectError,
      `URI is not a websocket: ${url}`,
    );
    assertEquals([error.name, error.url, error.status], [
      "ConnectError",
      url,
      undefined,
    ]);
  }
});

Deno.test('connect() rejects a refused TCP connection with "unable to connect"', async () => {
  const url = `ws://127.0.0.1:${closedPort()}/`;
  const error = await within(
    assertRejects(
      () => connect(url),
      ConnectError,
      `unable to connect to ${url}: `,
    ),
    "the refusal",
  );
  assertEquals(error.url, url);
  assertEquals(error.status, undefined);
});

Deno.test("connect() rejects a handshake the server refuses with its HTTP status", async () => {
  const httpServer = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("go away", { status: 403 }),
  );
  try {
    const url = `ws://127.0.0.1:${httpServer.addr.port}/`;
    const error = await within(
      assertRejects(
        () => connect(url),
        ConnectError,
        `unable to connect to ${url}: the server refused the handshake with HTTP 403`,
      ),
      "the refusal",
    );
    assertEquals(error.status, 403);
  } finally {
    await httpServer.shutdown();
  }
});

Deno.test("connect() times out against a server that accepts TCP and never answers", async () => {
  await using raw = new RawServer();
  const accepted = raw.accept();
  const error = await within(
    assertRejects(
      () => connect(raw.url, { timeout: 100 }),
      ConnectError,
      `unable to connect to ${raw.url}: no handshake response within 100 ms`,
    ),
    "the timeout",
  );
  assertInstanceOf(error.cause, DOMException);
  assertEquals(error.cause.name, "TimeoutError");
  await accepted;
});

Deno.test("connect() rejects when its signal is aborted, before or during the handshake", async () => {
  await using raw = new RawServer();
  const reason = new Error("user gave up");
  const early = await assertRejects(
    () => connect(raw.url, { signal: AbortSignal.abort(reason) }),
    ConnectError,
    `unable to connect to ${raw.url}: aborted`,
  );
  assertStrictEquals(early.cause, reason);

  const controller = new AbortController();
  const attempt = connect(raw.url, { signal: controller.signal });
  await within(raw.accept(), "the TCP connection");
  controller.abort(reason);
  await within(
    assertRejects(
      () => attempt,
      ConnectError,
      `unable to connect to ${raw.url}: aborted`,
    ),
    "the abort",
  );
});

Deno.test('connect() with protocols rejects a server that chose none: "no subprotocol in response"', async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    onEstablish: (conn) => established.resolve(conn),
  });
  const error = await within(
    assertRejects(
      () => connect(wsUrl(server), { protocols: ["chat"] }),
      ConnectError,
      "no subprotocol in response",
    ),
    "the rejection",
  );
  assertEquals(error.url, wsUrl(server));
  // The client closed the socket it would not use.
  const serverConn = await within(established.promise, "onEstablish");
  await within(serverConn.closed, "the server side to finish");
});

Deno.test('connect() rejects a server that chose a protocol it was not offered: "subprotocol mismatch"', async () => {
  await using raw = new RawServer();
  const accepted = raw.acceptWebSocket({ "sec-websocket-protocol": "c" });
  await within(
    assertRejects(
      () => connect(raw.url, { protocols: ["a", "b"] }),
      ConnectError,
      "subprotocol mismatch, requested: a, b, got: c",
    ),
    "the rejection",
  );
  const { peer, request } = await accepted;
  assertEquals(request.get("sec-websocket-protocol"), "a, b");
  // And the client closed the socket.
  assertEquals(
    (await within(peer.readClose(), "the client's close"))?.code,
    1005,
  );
});

Deno.test("connect() rejects an out-of-range connection limit with a RangeError before connecting", async () => {
  await using raw = new RawServer();
  await assertRejects(
    () => connect(raw.url, { maxMessageSize: -1 }),
    RangeError,
    "Cannot create a Connection: maxMessageSize must be a number >= 1, got -1",
  );
  await assertRejects(
    () => new Client({ closeTimeout: Number.NaN }).connect(raw.url),
    RangeError,
    "Cannot create a Connection: closeTimeout must be a number >= 0, got NaN",
  );
});

Deno.test("connect() accepts protocols as a string or a list and exposes the chosen one", async () => {
  await using server = listen({ protocols: ["b", "a"], onEstablish() {} });
  await using single = await within(
    connect(wsUrl(server), { protocols: "a" }),
    "connect",
  );
  assertEquals(single.subprotocol, "a");
  await using listed = await within(
    connect(wsUrl(server), { protocols: ["a", "b"] }),
    "connect",
  );
  assertEquals(listed.subprotocol, "b");
});

Deno.test("connect() sends the headers option with the handshake", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    onEstablish: (conn) => established.resolve(conn),
  });
  await using _conn = await within(
    connect(wsUrl(server), {
      headers: { authorization: "Bearer t0ken", "x-trace": "42" },
    }),
    "connect",
  );
  const serverConn = await within(established.promise, "onEstablish");
  assertEquals(
    serverConn.request?.headers.get("authorization"),
    "Bearer t0ken",
  );
  assertEquals(serverConn.request?.headers.get("x-trace"), "42");
});

Deno.test("maxMessageSize on the client closes with 4009 and fires parse_error for a bigger message", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    onEstablish: (conn) => established.resolve(conn),
  });
  const conn = await within(
    connect(wsUrl(server), { maxMessageSize: 5 }),
    "connect",
  );
  const serverConn = await within(established.promise, "onEstablish");
  const errors = new Collector<string>(1);
  conn.on("parse_error", (_c, text) => errors.push(text));
  const delivered: unknown[] = [];
  conn.on("message", (_c, data) => delivered.push(data));
  serverConn.send(new Uint8Array(5)).send(new Uint8Array(6));
  const text = "Received a message of 6 bytes; maxMessageSize is 5";
  assertEquals(await errors.full(), [text]);
  assertEquals(
    (await within(serverConn.closed, "the server side to finish")).code,
    4009,
  );
  const info = await within(conn.closed, "the client to finish");
  assertEquals(info.code, 4009);
  assertInstanceOf(info.error, RangeError);
  assertEquals(info.error.message, text);
  assertEquals(delivered, [new Uint8Array(5)]);
});

Deno.test("Client connects with its options and keeps a copy of them", async () => {
  await using server = listen({ protocols: ["v1"], onEstablish() {} });
  const options = { protocols: ["v1"], timeout: 5000 };
  const client = new Client(options);
  options.protocols = ["changed"];
  assertEquals(client.options.protocols, ["v1"]);
  await using conn = await within(client.connect(wsUrl(server)), "connect");
  assertEquals(conn.subprotocol, "v1");
  await assertRejects(
    () => new Client().connect("gopher://x/"),
    ConnectError,
    "URI is not a websocket: gopher://x/",
  );
  assert(new Client().options !== new Client().options);
});

Deno.test("serve() and connect() work over IPv6 loopback and remoteAddr says so", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = serve({
    port: 0,
    hostname: "::1",
    onListen() {},
    onEstablish: (conn) => established.resolve(conn),
  });
  await using conn = await within(
    connect(`ws://[::1]:${server.addr.port}/`),
    "connect",
  );
  const serverConn = await within(established.promise, "onEstablish");
  assertEquals(serverConn.remoteAddr?.hostname, "::1");
  serverConn.send("over v6");
  assertEquals(`${await within(conn.nextMessage(), "the message")}`, "over v6");
});

Deno.test("connect() fails a connection whose 101 names an extension the client never offered (RFC 6455 4.1), which Deno's WebSocket would open", async () => {
  await using raw = new RawServer();
  const attempt = connect(raw.url);
  const { peer } = await within(
    raw.acceptWebSocket({ "sec-websocket-extensions": "permessage-deflate" }),
    "the handshake",
  );
  await within(
    assertRejects(
      () => attempt,
      ConnectError,
      "the server chose an extension the client never offered: permessage-deflate",
    ),
    "the refusal",
  );
  // The client closes the socket it refused.
  const frame = await within(peer.readFrame(), "the client's close frame");
  assertEquals(frame?.opcode, 8);
});
