/**
 * Security: the `origins` allowlist answers 403 before upgrading
 * (cross-site WebSocket hijacking), `authorize` can refuse with any
 * Response or accept with data, and nothing sent to a peer carries an
 * error's message or stack.
 */

import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { connect, ConnectError } from "../client.ts";
import type { Connection } from "../connection.ts";
import { checkOrigin } from "../handshake.ts";
import { type HandlerOptions, upgrade } from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { capturingConsoleError } from "./_pair.ts";
import { RawPeer } from "./_raw_peer.ts";

const SECRET = "postgres://admin:hunter2@db";

/** Sends one handshake with `headers` and returns the HTTP answer. */
async function handshake(
  port: number,
  headers: Record<string, string | null> = {},
  path = "/",
) {
  await using peer = await within(RawPeer.connect(port), "TCP");
  return await within(peer.handshake({ headers, path }), "the answer");
}

const ORIGINS: HandlerOptions["origins"] = [
  "https://app.example",
  /^https:\/\/[a-z]+\.example\.org$/,
];

Deno.test("origins: an allowed Origin (exact string, case-insensitive, or RegExp) upgrades with 101", async () => {
  await using server = listen({ origins: ORIGINS, onEstablish() {} });
  for (
    const origin of [
      "https://app.example",
      "HTTPS://APP.EXAMPLE",
      "https://chat.example.org",
    ]
  ) {
    const response = await handshake(server.addr.port, { origin });
    assertEquals(response.status, 101, origin);
  }
});

Deno.test("origins: a disallowed Origin gets 403 Forbidden before upgrading, and onEstablish never runs", async () => {
  let established = 0;
  await using server = listen({
    origins: ORIGINS,
    onEstablish: () => void established++,
  });
  for (
    const origin of [
      "https://evil.example",
      "http://app.example", // scheme matters
      "https://app.example.evil", // no prefix match
      "https://a.b.example.org", // the RegExp is anchored
      "null", // sandboxed iframes and file: pages
    ]
  ) {
    const response = await handshake(server.addr.port, { origin });
    assertEquals([response.status, response.body], [403, "Forbidden"], origin);
  }
  assertEquals(established, 0);
  assertEquals(server.connections.size, 0);
});

Deno.test("origins: a missing Origin is allowed by default (non-browser clients) and refused with 403 under requireOrigin", async () => {
  await using lenient = listen({ origins: ORIGINS, onEstablish() {} });
  assertEquals((await handshake(lenient.addr.port)).status, 101);
  await using strict = listen({
    origins: ORIGINS,
    requireOrigin: true,
    onEstablish() {},
  });
  const refused = await handshake(strict.addr.port);
  assertEquals([refused.status, refused.body], [403, "Forbidden"]);
  // A Deno client sends no Origin: connect() sees the 403.
  const error = await assertRejects(
    () => connect(wsUrl(strict)),
    ConnectError,
    "the server refused the handshake with HTTP 403",
  );
  assertEquals(error.status, 403);
});

Deno.test("checkOrigin() and upgrade() report why an Origin is refused (for logs, not for the peer)", () => {
  const request = new Request("http://x/", {
    headers: {
      origin: "https://evil.example",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assertEquals(
    checkOrigin(request, { origins: ORIGINS }),
    'Origin "https://evil.example" is not allowed',
  );
  assertEquals(checkOrigin(request, {}), undefined);
  const result = upgrade(request, { origins: ORIGINS });
  assertEquals(result.error?.status, 403);
  assertEquals(
    result.error?.message,
    'Origin "https://evil.example" is not allowed',
  );
  assertEquals(result.response.status, 403);
  assertEquals(
    checkOrigin(new Request("http://x/"), {
      origins: ORIGINS,
      requireOrigin: true,
    }),
    "The request has no Origin header and requireOrigin is set",
  );
});

Deno.test("authorize: a returned Response (401 with WWW-Authenticate) is sent as is, and false answers 403", async () => {
  await using server = listen({
    authorize(request) {
      const token = request.headers.get("authorization");
      if (token === null) {
        return new Response("login first", {
          status: 401,
          headers: { "www-authenticate": "Bearer" },
        });
      }
      return token === "Bearer good";
    },
    onEstablish() {},
  });
  const missing = await handshake(server.addr.port);
  assertEquals(missing.status, 401);
  assertEquals(missing.headers.get("www-authenticate"), "Bearer");
  assertEquals(missing.body, "login first");
  const wrong = await handshake(server.addr.port, {
    authorization: "Bearer bad",
  });
  assertEquals([wrong.status, wrong.body], [403, "Forbidden"]);
  const good = await handshake(server.addr.port, {
    authorization: "Bearer good",
  });
  assertEquals(good.status, 101);
});

Deno.test("authorize: an async hook that accepts with { data } attaches it as conn.data before onEstablish", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    async authorize(request) {
      await Promise.resolve(); // e.g. a session lookup
      return { data: { user: new URL(request.url).searchParams.get("u") } };
    },
    onEstablish: (conn) => established.resolve(conn),
  });
  await using client = await within(
    connect(`ws://127.0.0.1:${server.addr.port}/?u=alice`),
    "the client",
  );
  const conn = await within(established.promise, "onEstablish");
  assertEquals(conn.data, { user: "alice" });
  assertEquals(client.data, undefined);
});

Deno.test("authorize runs only for valid upgrades from allowed origins: a bad handshake is answered without calling it", async () => {
  let calls = 0;
  await using server = listen({
    origins: ["https://app.example"],
    authorize: () => void calls++,
    onEstablish() {},
  });
  assertEquals(
    (await handshake(server.addr.port, { "sec-websocket-key": "short" }))
      .status,
    400,
  );
  assertEquals(
    (await handshake(server.addr.port, { origin: "https://evil.example" }))
      .status,
    403,
  );
  assertEquals(calls, 0);
});

Deno.test("errors reach peers without messages or stacks: a throwing authorize, fallback (sync or async), protocols chooser, onEstablish and message handler", async () => {
  const { result, logged } = await capturingConsoleError(async () => {
    const answers: { status: number; body: string }[] = [];
    {
      await using server = listen({
        authorize: () => {
          throw new Error(SECRET);
        },
        onEstablish() {},
      });
      answers.push(await handshake(server.addr.port));
    }
    {
      await using server = listen({
        path: "/ws",
        fallback: () => {
          throw new Error(SECRET);
        },
        onEstablish() {},
      });
      await using peer = await RawPeer.connect(server.addr.port);
      await peer.write("GET /other HTTP/1.1\r\nhost: x\r\n\r\n");
      answers.push(await within(peer.readResponse(), "the fallback answer"));
    }
    {
      await using server = listen({
        path: "/ws",
        fallback: () => Promise.reject(new Error(SECRET)),
        onEstablish() {},
      });
      await using peer = await RawPeer.connect(server.addr.port);
      await peer.write("GET /other HTTP/1.1\r\nhost: x\r\n\r\n");
      answers.push(await within(peer.readResponse(), "the async fallback"));
    }
    {
      await using server = listen({
        protocols: () => {
          throw new Error(SECRET);
        },
        onEstablish() {},
      });
      answers.push(
        await handshake(server.addr.port, { "sec-websocket-protocol": "chat" }),
      );
    }
    const closes: { code: number; reason: string }[] = [];
    {
      await using server = listen({
        onEstablish() {
          throw new Error(SECRET);
        },
      });
      await using peer = await RawPeer.open(server.addr.port);
      closes.push((await within(peer.readClose(), "the close"))!);
    }
    {
      await using server = listen({
        onEstablish(conn) {
          conn.on("message", () => {
            throw new Error(SECRET);
          });
        },
      });
      await using peer = await RawPeer.open(server.addr.port);
      await peer.sendFrame({ opcode: 1, payload: "boom" });
      closes.push((await within(peer.readClose(), "the close"))!);
    }
    return { answers, closes };
  });
  assertEquals(
    result.answers.map(({ status, body }) => ({ status, body })),
    Array(4).fill({ status: 500, body: "Internal Server Error" }),
  );
  assertEquals(result.closes, [
    { code: 1011, reason: "internal error" },
    { code: 1011, reason: "handler error" },
  ]);
  for (const { body } of result.answers) assert(!body.includes("hunter2"));
  // The details went to the server's log instead.
  assertStringIncludes(Deno.inspect(logged), "hunter2");
});
