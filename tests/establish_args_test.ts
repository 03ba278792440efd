/**
 * `onEstablish(conn, request, info)`: the request copy is made only for a
 * function that can read it, and every other form still receives it, over a
 * real socket.
 */

import { assert, assertEquals } from "@std/assert";
import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { readsOnlyFirstArgument } from "../_server/establish_args.ts";
import { listen, within, wsUrl } from "./_fixture.ts";

type Establish = (conn: Connection, ...rest: never[]) => unknown;

Deno.test("readsOnlyFirstArgument: only one plain parameter, without `arguments`", () => {
  const only: Establish[] = [
    (conn) => conn,
    async (conn) => await conn.closed,
    function named(conn) {
      return conn;
    },
    {
      onEstablish(conn: Connection) {
        return conn;
      },
    }.onEstablish,
    {
      async onEstablish(conn: Connection) {
        return await conn.closed;
      },
    }.onEstablish,
  ];
  for (const fn of only) assert(readsOnlyFirstArgument(fn), String(fn));

  const more = [
    (conn: Connection, request: Request) => [conn, request],
    (...args: unknown[]) => args,
    (conn: Connection, ...rest: unknown[]) => [conn, rest],
    (conn: Connection, request: unknown = null) => [conn, request],
    function (conn: Connection) {
      return [conn, arguments[1]];
    },
    ({ data }: Connection) => data,
    ((conn: Connection) => conn).bind(null),
    () => undefined,
    (conn: Connection = undefined as never) => conn,
  ] as Establish[];
  for (const fn of more) assert(!readsOnlyFirstArgument(fn), String(fn));
});

Deno.test("onEstablish: every form that can read the request receives it whole", async () => {
  let landed = Promise.withResolvers<[string, unknown]>();
  const forms: Record<string, Establish> = {
    twoParameters: (conn: Connection, request: Request) =>
      landed.resolve([conn.url, request]),
    rest: (conn: Connection, ...rest: unknown[]) =>
      landed.resolve([conn.url, rest[0]]),
    argumentsObject: function (conn: Connection) {
      landed.resolve([conn.url, arguments[1]]);
    },
    defaulted: (conn: Connection, request: unknown = "default") =>
      landed.resolve([conn.url, request]),
  } as Record<string, Establish>;
  for (const [name, onEstablish] of Object.entries(forms)) {
    landed = Promise.withResolvers();
    await using server = listen({ onEstablish: onEstablish as never });
    const client = await connect(wsUrl(server, `/${name}`), {
      headers: { "X-Probe": name },
    });
    const [url, request] = await within(landed.promise, name);
    client.close();
    await client.closed;
    assert(request instanceof Request, `${name} got ${request}`);
    assertEquals(request.url, url);
    assertEquals(request.headers.get("x-probe"), name);
  }
});

Deno.test("onEstablish: (conn) => … still has conn.request with every header", async () => {
  const { promise, resolve } = Promise.withResolvers<Request | undefined>();
  await using server = listen({
    onEstablish: (conn) => resolve(conn.request),
  });
  const client = await connect(wsUrl(server, "/probe"), {
    headers: { "X-Probe": "yes" },
  });
  const kept = await within(promise, "onEstablish");
  client.close();
  await client.closed;
  assert(kept instanceof Request);
  assertEquals(kept.headers.get("x-probe"), "yes");
  assertEquals(new URL(kept.url).pathname, "/probe");
});
