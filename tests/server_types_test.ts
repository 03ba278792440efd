/**
 * Type-level tests: `authorize` returning `{ data }` types `conn.data` in
 * `onEstablish`, `Server.connections` and `broadcast` filters, with no
 * annotation; without `authorize`, `data` is `unknown`. They fail at type
 * check time (`deno test` checks them), not at run time.
 *
 * @module
 */

import { assert } from "@std/assert";
import {
  type Connection,
  createHandler,
  serve,
  type ServeOptions,
  type Server,
} from "../mod.ts";

/** `true` when `A` and `B` are the same type, else `false`. */
type IsExact<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;

/** Compiles only when `T` is `true`. */
function assertType<T extends true>(_: T): void {}

interface User {
  name: string;
  admin: boolean;
}

Deno.test("authorize returning { data } types conn.data in onEstablish and on the server, without annotations", async () => {
  let seen: string | undefined;
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen() {},
    authorize: (request) =>
      new URL(request.url).searchParams.has("deny")
        ? new Response("no", { status: 401 })
        : { data: { name: "ann", admin: false } as User },
    onEstablish(conn) {
      assertType<IsExact<typeof conn.data, User>>(true);
      seen = conn.data.name;
    },
  });
  assertType<IsExact<typeof server, Server<User>>>(true);
  for (const conn of server.connections) {
    assertType<IsExact<typeof conn, Connection<User>>>(true);
  }
  server.broadcast("hi", (conn) => conn.data.admin);
  assert(seen === undefined);
});

Deno.test("an async authorize types conn.data too, and createHandler infers it the same way", () => {
  createHandler({
    async authorize() {
      await Promise.resolve();
      return { data: 42 };
    },
    onEstablish(conn) {
      assertType<IsExact<typeof conn.data, number>>(true);
    },
  });
});

Deno.test("without authorize, or with one that only accepts or refuses, conn.data is unknown", () => {
  createHandler({
    onEstablish(conn) {
      assertType<IsExact<typeof conn.data, unknown>>(true);
    },
  });
  createHandler({
    authorize: () => true,
    onEstablish(conn) {
      assertType<IsExact<typeof conn.data, unknown>>(true);
    },
  });
});

Deno.test("ServeOptions<Data> ties authorize's data to onEstablish's connection", () => {
  const options: ServeOptions<{ room: string }> = {
    authorize: () => ({ data: { room: "lobby" } }),
    onEstablish(conn) {
      assertType<IsExact<typeof conn.data, { room: string }>>(true);
    },
  };
  const wrong: ServeOptions<{ room: string }> = {
    // @ts-expect-error: data of another type than the options' Data
    authorize: () => ({ data: { room: 7 } }),
    onEstablish() {},
  };
  assert(options.authorize && wrong);
});
