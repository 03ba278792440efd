/**
 * serve(), Server, upgrade(), createHandler() and HandshakeError: options,
 * handshakes answered over HTTP, and the server object.
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { connect, ConnectError } from "../client.ts";
import type { Connection } from "../connection.ts";
import {
  createHandler,
  HandshakeError,
  isUpgradeRequest,
  parseProtocols,
  serve,
  type ServeOptions,
  upgrade,
} from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { capturingConsoleError, Collector, openPair } from "./_pair.ts";
import { RawPeer } from "./_raw_peer.ts";

const INVALID_BODY = "The request is invalid for a WebSocket request.";
const UPGRADE_BODY =
  "Upgrade Required: this endpoint speaks WebSocket version 13.";

/** A server whose established connections are handed out in order. */
function recordingServer(
  options: Omit<
    ServeOptions,
    "port" | "hostname" | "onListen" | "onEstablish"
  > = {},
) {
  const established: PromiseWithResolvers<
    [Connection, Request, Deno.ServeHandlerInfo | undefined]
  >[] = [];
  let next = 0;
  const slot = (i: number) => established[i] ??= Promise.withResolvers();
  const server = listen({
    ...options,
    onEstablish(conn, request, info) {
      slot(next++).resolve([conn, request, info]);
    },
  });
  let taken = 0;
  return {
    server,
    /** The next connection given to onEstablish. */
    established: () => within(slot(taken++).promise, "onEstablish"),
  };
}

/** Sends a raw handshake and returns the HTTP answer. */
async function rawHandshake(
  port: number,
  request: Parameters<typeof RawPeer.request>[0],
) {
  await using peer = await RawPeer.connect(port);
  return await within(peer.handshake(request), "the handshake answer");
}

Deno.test("serve() without an onEstablish function throws a TypeError", () => {
  const message =
    "Cannot create a WebSocket handler: onEstablish must be a function (it receives each connection)";
  assertThrows(() => serve({ port: 0 } as ServeOptions), TypeError, message);
  assertThrows(
    () => serve({ port: 0, onEstablish: "nope" } as unknown as ServeOptions),
    TypeError,
    message,
  );
  assertThrows(() => createHandler({} as ServeOptions), TypeError, message);
  assertThrows(
    () => createHandler(undefined as unknown as ServeOptions),
    TypeError,
    message,
  );
});

Deno.test("serve(), createHandler() and upgrade() refuse an out-of-range connection limit when called, not per connection", () => {
  assertThrows(
    () => serve({ port: 0, maxMessageSize: 0, onEstablish() {} }),
    RangeError,
    "Cannot create a Connection: maxMessageSize must be a number >= 1, got 0",
  );
  assertThrows(
    () => createHandler({ maxPendingMessages: NaN, onEstablish() {} }),
    RangeError,
    "Cannot create a Connection: maxPendingMessages must be a number >= 1, got NaN",
  );
  assertThrows(
    () => upgrade(new Request("http://localhost/"), { closeTimeout: -1 }),
    RangeError,
    "Cannot create a Connection: closeTimeout must be a number >= 0, got -1",
  );
});

Deno.test("serve() answers a non-upgrade request with 426 and Sec-WebSocket-Version: 13 by default", async () => {
  await using server = listen({ onEstablish() {} });
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  assertEquals(response.status, 426);
  assertEquals(response.headers.get("sec-websocket-version"), "13");
  assertEquals(await response.text(), UPGRADE_BODY);
});

Deno.test("serve() hands ordinary HTTP requests to fallback with the serve info", async () => {
  const infos: Deno.NetAddr[] = [];
  await using server = listen({
    onEstablish() {},
    fallback(request, info) {
      infos.push(info!.remoteAddr as Deno.NetAddr);
      return new Response(`fallback for ${new URL(request.url).pathname}`, {
        status: 200,
      });
    },
  });
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/page`);
  assertEquals(response.status, 200);
  assertEquals(await response.text(), "fallback for /page");
  assertEquals(infos[0]!.hostname, "127.0.0.1");
});

Deno.test("serve() with a path upgrades only there; other paths get 404 or the fallback", async () => {
  const { server, established } = recordingServer({ path: "/ws" });
  await using _server = server;
  await using conn = await within(
    connect(wsUrl(server, "/ws?room=1")),
    "connect",
  );
  const [serverConn] = await established();
  assertEquals(new URL(serverConn.url).pathname, "/ws");
  const error = await assertRejects(
    () => connect(wsUrl(server, "/other")),
    ConnectError,
    "the server refused the handshake with HTTP 404",
  );
  assertEquals(error.status, 404);
  const plain = await fetch(`http://127.0.0.1:${server.addr.port}/other`);
  assertEquals(plain.status, 404);
  assertEquals(await plain.text(), "Not Found");
  assertEquals(conn.readyState, WebSocket.OPEN);

  await using withFallback = listen({
    path: "/ws",
    onEstablish() {},
    fallback: () => new Response("elsewhere", { status: 200 }),
  });
  const answer = await rawHandshake(withFallback.addr.port, { path: "/nope" });
  assertEquals([answer.status, answer.body], [200, "elsewhere"]);
});

Deno.test("serve() answers malformed upgrades with 400 and the Plack body", async () => {
  await using server = listen({ onEstablish() {} });
  const port = server.addr.port;
  const cases: [string, Parameters<typeof RawPeer.request>[0]][] = [
    ["missing key", { headers: { "sec-websocket-key": null } }],
    ["invalid key", { headers: { "sec-websocket-key": "not-a-nonce" } }],
    ["short key", { headers: { "sec-websocket-key": "c2hvcnQ=" } }],
    ["wrong method", { method: "POST", headers: { "content-length": "0" } }],
    ["no Connection: upgrade", { headers: { connection: "keep-alive" } }],
    ["no Connection header", { headers: { connection: null } }],
  ];
  for (const [what, request] of cases) {
    const response = await rawHandshake(port, request);
    assertEquals(response.status, 400, what);
    if (what !== "wrong method") {
      assertEquals(response.body, INVALID_BODY, what);
    }
  }
});

Deno.test("serve() answers an unsupported or missing Sec-WebSocket-Version with 426 and Sec-WebSocket-Version: 13", async () => {
  await using server = listen({ onEstablish() {} });
  for (const version of ["8", "14", null]) {
    const response = await rawHandshake(server.addr.port, {
      headers: { "sec-websocket-version": version },
    });
    assertEquals(response.status, 426, `version ${version}`);
    assertEquals(response.headers.get("sec-websocket-version"), "13");
    assertEquals(response.body, UPGRADE_BODY);
  }
});

Deno.test("serve() answers a request without Upgrade: websocket with 426 even with other upgrade headers", async () => {
  await using server = listen({ onEstablish() {} });
  const response = await rawHandshake(server.addr.port, {
    headers: { upgrade: "h2c" },
  });
  assertEquals(response.status, 426);
});

Deno.test("onError receives the request and a HandshakeError and its Response is sent", async () => {
  const seen: [string, HandshakeError][] = [];
  await using server = listen({
    onEstablish() {},
    onError(request, error) {
      seen.push([new URL(request.url).pathname, error]);
      return new Response(`custom ${error.status}`, {
        status: error.status === 426 ? 418 : 499,
      });
    },
  });
  const port = server.addr.port;
  const version = await rawHandshake(port, {
    path: "/v",
    headers: { "sec-websocket-version": "8" },
  });
  assertEquals([version.status, version.body], [418, "custom 426"]);
  const key = await rawHandshake(port, {
    path: "/k",
    headers: { "sec-websocket-key": null },
  });
  assertEquals([key.status, key.body], [499, "custom 400"]);
  assertEquals(seen.map(([path, e]) => [path, e.status, e.message]), [
    ["/v", 426, "Unsupported Sec-WebSocket-Version: 8 (expected 13)"],
    ["/k", 400, "Missing Sec-WebSocket-Key"],
  ]);
  for (const [, error] of seen) assertInstanceOf(error, HandshakeError);
});

Deno.test("an onError that throws is logged and answered with 500", async () => {
  const { logged } = await capturingConsoleError(async () => {
    await using server = listen({
      onEstablish() {},
      onError() {
        throw new Error("onError exploded");
      },
    });
    const response = await rawHandshake(server.addr.port, {
      headers: { "sec-websocket-key": "bad" },
    });
    assertEquals([response.status, response.body], [
      500,
      "Internal Server Error",
    ]);
  });
  assert(
    logged.some((args) =>
      args.some((arg) => String(arg).includes("onError exploded"))
    ),
  );
});

Deno.test("protocols as a list: the server's first preference the client offered is echoed, exactly one", async () => {
  await using server = listen({ protocols: ["v2", "v1"], onEstablish() {} });
  await using peer = await RawPeer.connect(server.addr.port);
  const response = await peer.handshake({
    headers: { "sec-websocket-protocol": "v1, v2, v3" },
  });
  assertEquals(response.status, 101);
  assertEquals(response.headers.get("sec-websocket-protocol"), "v2");
  await using conn = await within(
    connect(wsUrl(server), { protocols: ["v1", "v2"] }),
    "connect",
  );
  assertEquals(conn.subprotocol, "v2");
});

Deno.test("protocols split a comma list without spaces (as Node's ws sends it), trimming whitespace", async () => {
  const { server, established } = recordingServer({ protocols: ["json"] });
  await using _server = server;
  for (const offer of ["chat,json", " chat ,  json "]) {
    await using peer = await RawPeer.connect(server.addr.port);
    const response = await peer.handshake({
      headers: { "sec-websocket-protocol": offer },
    });
    assertEquals(response.status, 101, offer);
    assertEquals(response.headers.get("sec-websocket-protocol"), "json", offer);
    const [conn] = await established();
    assertEquals(conn.subprotocol, "json");
  }
  assertEquals(parseProtocols("chat,json , v2,,"), ["chat", "json", "v2"]);
  assertEquals(parseProtocols(null), []);
});

Deno.test("protocols with no match: the handshake goes ahead without Sec-WebSocket-Protocol", async () => {
  const { server, established } = recordingServer({ protocols: ["json"] });
  await using _server = server;
  await using peer = await RawPeer.connect(server.addr.port);
  const response = await peer.handshake({
    headers: { "sec-websocket-protocol": "xml" },
  });
  assertEquals(response.status, 101);
  assertEquals(response.headers.get("sec-websocket-protocol"), null);
  const [conn] = await established();
  assertEquals(conn.subprotocol, undefined);
});

Deno.test("a protocols chooser gets the offered list and the request, and its choice is echoed", async () => {
  const calls: [string[], string | null][] = [];
  await using server = listen({
    protocols(offered, request) {
      calls.push([offered, request.headers.get("x-pick")]);
      return request.headers.get("x-pick") ?? undefined;
    },
    onEstablish() {},
  });
  await using peer = await RawPeer.connect(server.addr.port);
  const picked = await peer.handshake({
    headers: { "sec-websocket-protocol": "a,b", "x-pick": "b" },
  });
  assertEquals(picked.headers.get("sec-websocket-protocol"), "b");
  await using peer2 = await RawPeer.connect(server.addr.port);
  const none = await peer2.handshake({
    headers: { "sec-websocket-protocol": "a, b" },
  });
  assertEquals(none.status, 101);
  assertEquals(none.headers.get("sec-websocket-protocol"), null);
  assertEquals(calls, [[["a", "b"], "b"], [["a", "b"], null]]);
});

Deno.test("a protocols chooser that picks an unoffered protocol or throws is answered 500 through onError", async () => {
  const errors: HandshakeError[] = [];
  await using server = listen({
    protocols(offered) {
      if (offered.includes("boom")) throw new Error("chooser exploded");
      return "c";
    },
    onEstablish() {},
    onError(_request, error) {
      errors.push(error);
      return error.toResponse();
    },
  });
  const unoffered = await rawHandshake(server.addr.port, {
    headers: { "sec-websocket-protocol": "a, b" },
  });
  assertEquals([unoffered.status, unoffered.body], [
    500,
    "Internal Server Error",
  ]);
  const thrown = await rawHandshake(server.addr.port, {
    headers: { "sec-websocket-protocol": "boom" },
  });
  assertEquals(thrown.status, 500);
  assertEquals(errors.map((e) => [e.status, e.message]), [
    [
      500,
      'The protocols chooser failed: it chose "c", which the client did not offer (a, b)',
    ],
    [500, "The protocols chooser failed: chooser exploded"],
  ]);
});

Deno.test("onEstablish gets the connection, the upgrade request and the serve info; the connection has remoteAddr, request, url", async () => {
  const { server, established } = recordingServer({ protocols: ["chat"] });
  await using _server = server;
  await using client = await within(
    connect(wsUrl(server, "/room/7?user=ann"), {
      protocols: ["chat"],
      headers: { "x-token": "secret" },
    }),
    "connect",
  );
  const [conn, request, info] = await established();
  assertInstanceOf(request, Request);
  assertStrictEquals(conn.request, request);
  // Read after the 101 went out: Deno has closed the original by then.
  assertEquals(request.headers.get("x-token"), "secret");
  assertEquals(request.headers.get("upgrade"), "websocket");
  assertEquals(request.method, "GET");
  assertEquals(
    conn.url,
    `http://127.0.0.1:${server.addr.port}/room/7?user=ann`,
  );
  assertEquals(conn.subprotocol, "chat");
  assertEquals(conn.remoteAddr?.transport, "tcp");
  assertEquals(conn.remoteAddr?.hostname, "127.0.0.1");
  assert(conn.remoteAddr!.port > 0);
  assertEquals((info?.remoteAddr as Deno.NetAddr).port, conn.remoteAddr!.port);
  assertEquals(conn.role, "server");
  assertEquals(client.subprotocol, "chat");
});

Deno.test("an onEstablish that throws or rejects closes that connection with 1011 and the server keeps serving", async () => {
  let calls = 0;
  const { logged } = await capturingConsoleError(async () => {
    await using server = listen({
      onEstablish(conn) {
        calls++;
        if (calls === 1) throw new Error("sync failure");
        if (calls === 2) return Promise.reject(new Error("async failure"));
        conn.on("message", (c, data) => c.send(data));
      },
    });
    for (const failure of ["sync failure", "async failure"]) {
      const conn = await within(connect(wsUrl(server)), "connect");
      const info = await within(conn.closed, `the close after ${failure}`);
      assertEquals(info.code, 1011, failure);
    }
    await using conn = await within(connect(wsUrl(server)), "connect");
    conn.send("still serving");
    assertEquals(
      `${await within(conn.nextMessage(), "the echo")}`,
      "still serving",
    );
  });
  const text = logged.flat().map(String).join("\n");
  assert(text.includes("sync failure"), text);
  assert(text.includes("async failure"), text);
});

Deno.test("maxMessageSize on the server closes with 1009 and fires parse_error for a bigger message", async () => {
  await using pair = await openPair({ server: { maxMessageSize: 10 } });
  const { serverConn, clientConn } = pair;
  const errors = new Collector<string>(1);
  serverConn.on("parse_error", (_c, text) => errors.push(text));
  const messages: string[] = [];
  serverConn.on("message", (_c, data) => messages.push(String(data)));
  clientConn.send("0123456789"); // exactly the limit
  clientConn.send("é".repeat(5) + "x"); // 11 bytes
  const text = "Received a message of 11 bytes; maxMessageSize is 10";
  assertEquals(await errors.full(), [text]);
  assertEquals((await within(clientConn.closed, "the close")).code, 1009);
  assertEquals(messages, ["0123456789"]);
  const info = await within(serverConn.closed, "the finish");
  assertInstanceOf(info.error, RangeError);
  assertEquals(info.error.message, text);
});

Deno.test("Server.connections holds the live connections and drops finished ones", async () => {
  const { server, established } = recordingServer();
  await using _server = server;
  assertEquals(server.connections.size, 0);
  const a = await within(connect(wsUrl(server)), "connect a");
  const [serverA] = await established();
  await using b = await within(connect(wsUrl(server)), "connect b");
  const [serverB] = await established();
  assertEquals(new Set(server.connections), new Set([serverA, serverB]));
  await within(a.close(1000).closed, "a to close");
  await within(serverA.closed, "the server side of a to finish");
  assertEquals(new Set(server.connections), new Set([serverB]));
  assertEquals(b.readyState, WebSocket.OPEN);
});

Deno.test("Server.broadcast() sends to every open connection, or those the filter accepts, and counts them", async () => {
  const { server, established } = recordingServer({
    protocols: (offered) => offered[0],
  });
  await using _server = server;
  const clients: Connection[] = [];
  for (const protocol of ["red", "blue", "red"]) {
    clients.push(
      await within(
        connect(wsUrl(server), { protocols: [protocol] }),
        "connect",
      ),
    );
    await established();
  }
  try {
    assertEquals(
      server.broadcast("for red", (conn) => conn.subprotocol === "red"),
      2,
    );
    assertEquals(server.broadcast(new Uint8Array([1])), 3);
    const firsts = await Promise.all(
      clients.map((c) => within(c.nextMessage(), "a message")),
    );
    assertEquals(firsts.map((m) => m.isText() ? `${m}` : "binary"), [
      "for red",
      "binary",
      "for red",
    ]);
    const seconds = await Promise.all(
      [clients[0]!, clients[2]!].map((c) =>
        within(c.nextMessage(), "the binary")
      ),
    );
    assertEquals(seconds.map((m) => [...m.body]), [[1], [1]]);
  } finally {
    for (const client of clients) {
      await within(client.close(1000).closed, "close");
    }
  }
});

Deno.test("Server.shutdown() closes every connection with 1001, resolves, and settles finished", async () => {
  const server = listen({ onEstablish() {} });
  const conns = [
    await within(connect(wsUrl(server)), "connect"),
    await within(connect(wsUrl(server)), "connect"),
  ];
  const shutdown = server.shutdown();
  assertStrictEquals(
    server.shutdown(),
    shutdown,
    "a second call returns the same promise",
  );
  await within(shutdown, "the shutdown");
  await within(server.finished, "finished");
  for (const conn of conns) {
    const info = await within(conn.closed, "the client to finish");
    assertEquals([info.code, info.reason], [1001, "server shutting down"]);
  }
  assertEquals(server.connections.size, 0);
  await assertRejects(
    () => connect(wsUrl(server)),
    ConnectError,
    "unable to connect",
  );
});

Deno.test("await using a Server shuts it down at the end of the block", async () => {
  let conn: Connection;
  let port: number;
  {
    await using server = listen({ onEstablish() {} });
    port = server.addr.port;
    conn = await within(connect(wsUrl(server)), "connect");
  }
  assertEquals((await within(conn.closed, "the close")).code, 1001);
  await assertRejects(
    () => connect(`ws://127.0.0.1:${port}/`),
    ConnectError,
    "unable to connect",
  );
});

Deno.test("aborting the signal passed to serve() shuts the server down", async () => {
  const controller = new AbortController();
  const server = listen({ signal: controller.signal, onEstablish() {} });
  const conn = await within(connect(wsUrl(server)), "connect");
  controller.abort();
  assertEquals((await within(conn.closed, "the close")).code, 1001);
  await within(server.finished, "the server to stop");
});

Deno.test("upgrade() inside Deno.serve returns the 101 response and a server-side connection", async () => {
  const established = Promise.withResolvers<Connection>();
  const httpServer = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen() {},
  }, (request, info) => {
    if (new URL(request.url).pathname !== "/ws") return new Response("plain");
    const result = upgrade(request, { protocols: ["v1"] }, info);
    if (result.connection) {
      established.resolve(result.connection);
      result.connection.on("message", (c, data) => c.send(`echo ${data}`));
    }
    return result.response;
  });
  try {
    const port = httpServer.addr.port;
    await using conn = await within(
      connect(`ws://127.0.0.1:${port}/ws`, { protocols: ["v1"] }),
      "connect",
    );
    const serverConn = await within(established.promise, "the upgrade");
    assertEquals(serverConn.role, "server");
    assertEquals(serverConn.subprotocol, "v1");
    assertEquals(serverConn.remoteAddr?.hostname, "127.0.0.1");
    conn.send("hi");
    assertEquals(`${await within(conn.nextMessage(), "the echo")}`, "echo hi");
    assertEquals(
      await (await fetch(`http://127.0.0.1:${port}/`)).text(),
      "plain",
    );
  } finally {
    await httpServer.shutdown();
  }
});

Deno.test("upgrade() returns an error and the HTTP answer instead of throwing for a bad handshake", async () => {
  const plain = upgrade(new Request("http://localhost/"));
  assertEquals(plain.connection, undefined);
  assertInstanceOf(plain.error, HandshakeError);
  assertEquals([plain.error.status, plain.error.message], [
    426,
    "Not a WebSocket upgrade request",
  ]);
  assertEquals(plain.response.status, 426);
  const noKey = upgrade(
    new Request("http://localhost/", {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-version": "13",
      },
    }),
  );
  assertEquals([noKey.error?.status, noKey.error?.message], [
    400,
    "Missing Sec-WebSocket-Key",
  ]);
  assertEquals(await noKey.response.text(), INVALID_BODY);
  assertEquals(
    isUpgradeRequest(
      new Request("http://x/", { headers: { upgrade: "WebSocket" } }),
    ),
    true,
  );
});

Deno.test("createHandler() works as the fetch handler of Deno.serve, with fallback", async () => {
  const handler = createHandler({
    onEstablish(conn) {
      conn.on("message", (c, data) => c.send(`handled ${data}`));
    },
    fallback: () => new Response("not a websocket"),
  });
  const httpServer = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen() {},
  }, handler);
  try {
    const port = httpServer.addr.port;
    await using conn = await within(
      connect(`ws://127.0.0.1:${port}/`),
      "connect",
    );
    conn.send("x");
    assertEquals(
      `${await within(conn.nextMessage(), "the reply")}`,
      "handled x",
    );
    assertEquals(
      await (await fetch(`http://127.0.0.1:${port}/`)).text(),
      "not a websocket",
    );
    // Without serve info (as some routers call it), a bad request is still an HTTP answer.
    const response = await handler(
      new Request("http://localhost/", { headers: { upgrade: "websocket" } }),
    );
    assertEquals(response.status, 400);
  } finally {
    await httpServer.shutdown();
  }
});

Deno.test("HandshakeError carries its status and answers with a fixed body per status", async () => {
  const cases: [number, string][] = [
    [400, INVALID_BODY],
    [403, "Forbidden"],
    [404, "Not Found"],
    [426, UPGRADE_BODY],
    [500, "Internal Server Error"],
    [503, "Service Unavailable"],
    [599, "Internal Server Error"],
  ];
  for (const [status, body] of cases) {
    const error = new HandshakeError(status, "details stay in logs", {
      cause: "x",
    });
    assertInstanceOf(error, Error);
    assertEquals([error.name, error.status, error.message, error.cause], [
      "HandshakeError",
      status,
      "details stay in logs",
      "x",
    ]);
    const response = error.toResponse();
    assertEquals(response.status, status);
    assertEquals(await response.text(), body);
  }
});

Deno.test("an upgrade without Host, or with an empty Host, is answered 400 with the Plack body (RFC 6455 section 4.2.1)", async () => {
  const errors: HandshakeError[] = [];
  const { server } = recordingServer({
    onError(_request, error) {
      errors.push(error);
      return error.toResponse();
    },
  });
  await using _server = server;
  for (const host of [null, ""]) {
    const answer = await rawHandshake(server.addr.port, { headers: { host } });
    assertEquals([answer.status, answer.body], [400, INVALID_BODY]);
  }
  assertEquals(errors.map((error) => [error.status, error.message]), [
    [400, "Missing Host header (RFC 6455 section 4.2.1 requires it)"],
    [400, "Missing Host header (RFC 6455 section 4.2.1 requires it)"],
  ]);
  const valid = await rawHandshake(server.addr.port, {});
  assertEquals(valid.status, 101);
});

Deno.test("an HTTP/1.0 upgrade without Host gets 400; with Host it gets 101, as Deno.serve does not tell the HTTP version (a documented gap)", async () => {
  const { server, established } = recordingServer();
  await using _server = server;
  const http10 = (host: string | null) =>
    RawPeer.request({ headers: { host } }).replace("HTTP/1.1", "HTTP/1.0");
  {
    await using peer = await RawPeer.connect(server.addr.port);
    await peer.write(http10(null));
    const answer = await within(peer.readResponse(), "the answer");
    assertEquals([answer.status, answer.body], [400, INVALID_BODY]);
  }
  await using peer = await RawPeer.connect(server.addr.port);
  await peer.write(http10("127.0.0.1"));
  const answer = await within(peer.readResponse(), "the answer");
  assertEquals(answer.status, 101);
  const [conn] = await established();
  assertEquals(conn.request?.headers.get("host"), "127.0.0.1");
});

Deno.test("checkHandshake() runs the RFC checks, then Origin, then Host, and upgrade() answers what it returns", () => {
  const valid = {
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
  };
  const noHost = new Request("http://localhost/", { headers: valid });
  const result = upgrade(noHost);
  assertEquals([result.error?.status, result.error?.message], [
    400,
    "Missing Host header (RFC 6455 section 4.2.1 requires it)",
  ]);
  const foreign = new Request("http://localhost/", {
    headers: { ...valid, origin: "https://evil.example" },
  });
  assertEquals(
    upgrade(foreign, { origins: ["https://app.example"] }).error?.status,
    403,
  );
  const post = new Request("http://localhost/", {
    method: "POST",
    headers: { ...valid, host: "localhost" },
  });
  assertEquals(
    upgrade(post).error?.message,
    "A WebSocket upgrade must use GET, not POST",
  );
});

Deno.test("serve(), createHandler() and upgrade() refuse malformed protocols, origins, idleTimeout, path and hooks when called", () => {
  const onEstablish = () => {};
  const request = new Request("http://localhost/");
  const cases: [
    Record<string, unknown>,
    typeof TypeError | typeof RangeError,
    string,
  ][] = [
    [
      { protocols: "chat" },
      TypeError,
      'protocols must be an array of non-empty strings or a function, got "chat"',
    ],
    [
      { protocols: ["chat", ""] },
      TypeError,
      "protocols must be an array of non-empty strings or a function, got an array with other values",
    ],
    [
      { origins: "https://app.example" },
      TypeError,
      'origins must be an array of strings and RegExps, got "https://app.example"',
    ],
    [
      { idleTimeout: -1 },
      RangeError,
      "idleTimeout must be a number of seconds >= 0, got -1",
    ],
    [
      { idleTimeout: NaN },
      RangeError,
      "idleTimeout must be a number of seconds >= 0, got NaN",
    ],
  ];
  for (const [options, ErrorClass, message] of cases) {
    assertThrows(
      () => createHandler({ onEstablish, ...options }),
      ErrorClass,
      `Cannot create a WebSocket handler: ${message}`,
    );
    assertThrows(
      () => serve({ port: 0, onListen() {}, onEstablish, ...options }),
      ErrorClass,
      `Cannot create a WebSocket handler: ${message}`,
    );
    assertThrows(
      () => upgrade(request, options),
      ErrorClass,
      `Cannot upgrade: ${message}`,
    );
  }
  assertThrows(
    () => createHandler({ onEstablish, path: "ws" }),
    TypeError,
    'Cannot create a WebSocket handler: path must be a string starting with "/", got "ws"',
  );
  for (const hook of ["authorize", "onError", "fallback"]) {
    assertThrows(
      () => createHandler({ onEstablish, [hook]: "yes" }),
      TypeError,
      `Cannot create a WebSocket handler: ${hook} must be a function, got "yes"`,
    );
  }
});

Deno.test("conn.request keeps at most 8 KiB of headers, whole, skipping big ones; onEstablish's request has every header", async () => {
  const { server, established } = recordingServer({ protocols: ["chat"] });
  await using _server = server;
  const big = "b".repeat(6000);
  await using _peer = await RawPeer.open(server.addr.port, {
    "sec-websocket-protocol": "chat",
    "cookie": big, // sorted first among these, and over what is left
    "x-a": "a".repeat(3000),
    "x-b": "b".repeat(3000),
    "x-c": "c".repeat(3000),
    "x-small": "kept",
    "user-agent": "raw-peer",
  });
  const [conn, request] = await established();
  assertEquals(request.headers.get("cookie"), big);
  assertEquals(request.headers.get("x-c"), "c".repeat(3000));
  const kept = conn.request!;
  let bytes = 0;
  for (const [name, value] of kept.headers) bytes += name.length + value.length;
  assert(bytes <= 8 * 1024, `conn.request keeps ${bytes} bytes of headers`);
  // In name order, whole or not at all: cookie (6 KiB) fits first, then
  // x-a/x-b/x-c do not, and the small ones after them still do.
  assertEquals(kept.headers.get("cookie"), big);
  assertEquals(kept.headers.get("x-a"), null);
  assertEquals(kept.headers.get("x-c"), null);
  assertEquals(kept.headers.get("x-small"), "kept");
  assertEquals(kept.headers.get("user-agent"), "raw-peer");
  assertEquals(kept.headers.get("sec-websocket-protocol"), "chat");
  assertEquals(kept.headers.get("upgrade"), "websocket");
  assertEquals(kept.url, conn.url);
  assertStrictEquals(conn.request, kept);
});

Deno.test("Server.broadcast() skips a connection that is closing: not sent, not counted, not shown to the filter", async () => {
  const { server, established } = recordingServer();
  await using _server = server;
  const leaving = await within(connect(wsUrl(server)), "connect");
  const leavingGot: string[] = [];
  leaving.on("message", (_conn, data) => leavingGot.push(`${data}`));
  const [closing] = await established();
  const staying = await within(connect(wsUrl(server)), "connect");
  await established();
  closing.close(1000, "bye");
  assertEquals(closing.readyState, WebSocket.CLOSING);
  const filtered: Connection[] = [];
  assertEquals(server.broadcast("one", (conn) => !!filtered.push(conn)), 1);
  assertEquals(filtered.length, 1);
  assertEquals(server.broadcast("two"), 1);
  assertEquals(`${await within(staying.nextMessage(), "one")}`, "one");
  assertEquals(`${await within(staying.nextMessage(), "two")}`, "two");
  // The closing side's peer gets the close and nothing else.
  const info = await within(leaving.closed, "the close");
  assertEquals([info.code, info.reason], [1000, "bye"]);
  assertEquals(leavingGot, []);
  staying.close();
  await staying.closed;
});
