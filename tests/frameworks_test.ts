/**
 * The recipes of docs/frameworks.md, run as printed against the real framework
 * packages: each code block under a `<!-- recipe: NAME -->` marker is written
 * to tests/artifacts/recipes/NAME.ts, then imported here or served by a child
 * `deno serve` / `deno run`, and driven over loopback sockets. The pitfalls
 * the page states (Hono's `mount()`) are asserted as they are.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Hono } from "npm:hono@4.13.19";
import { cors } from "npm:hono@4.13.19/cors";
import { logger } from "npm:hono@4.13.19/logger";
import { secureHeaders } from "npm:hono@4.13.19/secure-headers";
import {
  connect,
  ConnectError,
  type Connection,
  createHandler,
} from "../mod.ts";
import { DenoProcess } from "./_deno_process.ts";
import { within } from "./_fixture.ts";
import { RedisServer, skipRedis } from "./_redis.ts";

const PAGE = new URL("../docs/frameworks.md", import.meta.url);
const RECIPES = new URL("./artifacts/recipes/", import.meta.url);
// A child's start-up includes loading the library and the framework.
const START_UNITS = 30;

/** Writes the recipe `name` of docs/frameworks.md to a file; returns its path from the repository root. */
async function recipe(name: string): Promise<string> {
  const page = await Deno.readTextFile(PAGE);
  const found = new RegExp(
    `<!-- recipe: ${name} -->\\n+\`\`\`ts(?: ignore)?\\n([\\s\\S]*?)\`\`\``,
  ).exec(page);
  if (!found) throw new Error(`docs/frameworks.md has no recipe "${name}"`);
  await Deno.mkdir(RECIPES, { recursive: true });
  await Deno.writeTextFile(new URL(`${name}.ts`, RECIPES), found[1]!);
  return `tests/artifacts/recipes/${name}.ts`;
}

/** Imports a recipe whose default export is a Hono application. */
async function honoRecipe(name: string): Promise<Hono> {
  const file = new URL(`../${await recipe(name)}`, import.meta.url);
  const module = await import(file.href) as { default: Hono };
  return module.default;
}

/** Serves `fetch` on 127.0.0.1, port 0. */
function serveFetch(fetch: Deno.ServeHandler): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, fetch);
}

function base(server: Deno.HttpServer<Deno.NetAddr>): string {
  return `127.0.0.1:${server.addr.port}`;
}

async function nextText(conn: Connection, what: string): Promise<string> {
  return (await within(conn.nextMessage(), what)).decodedBody();
}

/** How a connection refused at the handshake failed: its HTTP status. */
async function refusedStatus(url: string): Promise<number | undefined> {
  try {
    const conn = await connect(url);
    await conn.close().closed;
  } catch (error) {
    if (error instanceof ConnectError) return error.status;
    throw error;
  }
  throw new Error(`${url} was not refused`);
}

// ---- Hono -------------------------------------------------------------------

Deno.test("hono route recipe: echoes with the client's address, serves its other routes, answers a plain GET with 426", async () => {
  const app = await honoRecipe("hono-route");
  await using server = serveFetch(app.fetch);

  await using conn = await connect(`ws://${base(server)}/ws`);
  conn.send("hello");
  assertEquals(await nextText(conn, "the echo"), "hello (from 127.0.0.1)");

  const page = await fetch(`http://${base(server)}/`);
  assertEquals(await page.text(), "Hello from Hono");
  const plain = await fetch(`http://${base(server)}/ws`);
  await plain.body?.cancel();
  assertEquals(plain.status, 426);
});

Deno.test("hono route recipe works behind logger(), cors() and secureHeaders() and under app.route()", async () => {
  const outer = new Hono();
  const logged: string[] = [];
  outer.use(logger((line) => logged.push(line)));
  outer.use(cors());
  outer.use(secureHeaders());
  outer.route("/api", await honoRecipe("hono-route"));
  await using server = serveFetch(outer.fetch);

  await using conn = await connect(`ws://${base(server)}/api/ws`);
  conn.send("through middleware");
  assertEquals(
    await nextText(conn, "the echo"),
    "through middleware (from 127.0.0.1)",
  );
  assert(
    logged.some((line) => line.includes("GET /api/ws") && line.includes("101")),
    `logger() saw the 101: ${logged.join(" | ")}`,
  );
});

Deno.test("hono middleware recipe: 401 without the token; with it, lines go to the other subscribers; a plain GET gets the next handler", async () => {
  // The recipe's logger() prints each request with the console.log it finds
  // when the module is imported: hand it one that records.
  const logged: string[] = [];
  const originalLog = console.log;
  console.log = (...args: unknown[]) => void logged.push(args.join(" "));
  let app: Hono;
  try {
    app = await honoRecipe("hono-middleware");
  } finally {
    console.log = originalLog;
  }
  {
    await using server = serveFetch(app.fetch);
    const url = `ws://${base(server)}/chat`;

    assertEquals(await refusedStatus(url), 401);
    await using alice = await connect(`${url}?token=s3cret`);
    assertEquals(await nextText(alice, "alice's welcome"), "joined chat");
    await using bob = await connect(`${url}?token=s3cret`);
    assertEquals(await nextText(bob, "bob's welcome"), "joined chat");

    alice.send("hi bob");
    assertEquals(await nextText(bob, "alice's line"), "hi bob");
    bob.send("hi alice"); // alice gets this, and never her own line
    assertEquals(await nextText(alice, "bob's line"), "hi alice");

    const page = await fetch(`http://${base(server)}/chat?token=s3cret`);
    assertEquals(await page.text(), "Connect with a WebSocket client");
  }
  assert(logged.some((line) => line.includes("401")), logged.join(" | "));
  assert(logged.some((line) => line.includes("101")), logged.join(" | "));
});

Deno.test("hono mount(): an upgrade inside a mounted handler dies after its 101, anyws's and Deno's alike; replaceRequest: false works", async () => {
  const echo = createHandler({
    onEstablish(conn) {
      conn.on("message", (conn, message) => conn.send(message));
    },
  });
  const app = new Hono();
  app.mount("/copied", echo);
  app.mount("/plain", (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    return response;
  });
  app.mount("/original", echo, { replaceRequest: false });
  await using server = serveFetch(app.fetch);

  for (const path of ["/copied/ws", "/plain/ws"]) {
    const conn = await connect(`ws://${base(server)}${path}`); // the 101 came
    conn.send("lost");
    const info = await within(conn.closed, `the end of ${path}`);
    assertEquals([info.code, info.wasClean], [1006, false], path);
    assertStringIncludes(String(info.error), "Reserved bits are not zero");
  }

  await using conn = await connect(`ws://${base(server)}/original/ws`);
  conn.send("kept");
  assertEquals(await nextText(conn, "the echo"), "kept");
});

// ---- deno serve, --parallel, Deno Deploy ------------------------------------

/** `deno serve` of a recipe on 127.0.0.1, port 0. */
async function denoServe(
  name: string,
  flags: string[] = [],
  env: Record<string, string> = {},
): Promise<DenoProcess> {
  const file = await recipe(name);
  return new DenoProcess([
    "serve",
    "--allow-net",
    ...flags,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    file,
  ], env);
}

/** Opens `count` connections that have each been told they joined `room`. */
async function joinAll(
  url: string,
  count: number,
  room: string,
): Promise<Connection[]> {
  const conns: Connection[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await within(connect(url), "a connection");
    conns.push(conn);
    assertEquals(await nextText(conn, "the welcome"), `joined ${room}`);
  }
  return conns;
}

/** The first connection publishes; every other one receives it. */
async function assertFanOut(conns: Connection[]): Promise<void> {
  const [publisher, ...others] = conns;
  publisher!.send("to the room");
  for (const conn of others) {
    assertEquals(await nextText(conn, "the publish"), "to the room");
  }
}

Deno.test("deno serve recipe: the fallback answers at /, and connections at /ws share the room", async () => {
  await using server = await denoServe("deno-serve");
  const address = await within(server.address, "deno serve", START_UNITS);
  const conns: Connection[] = [];
  try {
    const page = await fetch(address);
    assertEquals(await page.text(), "WebSocket endpoint at /ws");
    conns.push(...await joinAll(`ws://${address.host}/ws`, 3, "room"));
    await assertFanOut(conns);
  } finally {
    for (const conn of conns) await conn.close().closed;
    // An open BroadcastChannel keeps `deno serve` from finishing a SIGTERM
    // shutdown (Deno 2.9.6), as the page says.
    await server.stop("SIGKILL");
  }
});

Deno.test("deno serve recipe runs under --parallel with two workers", async () => {
  // Which worker takes a connection is up to the kernel: this shows that the
  // recipe serves under --parallel; broadcast_channel_test.ts proves that a
  // publish crosses workers.
  await using server = await denoServe("deno-serve", ["--parallel"], {
    DENO_JOBS: "2",
  });
  const address = await within(server.address, "deno serve", START_UNITS);
  const conns: Connection[] = [];
  try {
    conns.push(...await joinAll(`ws://${address.host}/ws`, 4, "room"));
    await assertFanOut(conns);
  } finally {
    for (const conn of conns) await conn.close().closed;
    await server.stop("SIGKILL");
  }
});

Deno.test("deploy recipe: one instance without REDIS_URL", async () => {
  await using server = await denoServe("deploy", ["--allow-env=REDIS_URL"]);
  const address = await within(server.address, "deno serve", START_UNITS);
  const conns = await joinAll(`ws://${address.host}/`, 2, "room");
  try {
    await assertFanOut(conns);
  } finally {
    for (const conn of conns) await conn.close().closed;
  }
});

Deno.test({
  name: "deploy recipe: two instances share the room through REDIS_URL",
  ignore: skipRedis(),
  async fn() {
    await using redis = await RedisServer.start();
    const flags = ["--allow-env=REDIS_URL,REDIS_DEBUG_MAINTENANCE"];
    const env = { REDIS_URL: redis.url };
    await using one = await denoServe("deploy", flags, env);
    await using two = await denoServe("deploy", flags, env);
    const [a, b] = await Promise.all(
      [one, two].map((it) => within(it.address, "deno serve", START_UNITS)),
    );
    // "joined room" comes once Redis has confirmed the subscription.
    const conns = [
      ...await joinAll(`ws://${a!.host}/`, 1, "room"),
      ...await joinAll(`ws://${b!.host}/`, 2, "room"),
    ];
    try {
      await assertFanOut(conns);
    } finally {
      for (const conn of conns) await conn.close().closed;
      // Once connected, the RedisBroker keeps `deno serve` from finishing a
      // SIGTERM shutdown (Deno 2.9.6), as the page says.
      await one.stop("SIGKILL");
      await two.stop("SIGKILL");
    }
  },
});

// ---- Oak --------------------------------------------------------------------

// Oak 17 is published only on JSR. Offline, tools/with_std.ts points Deno at a
// local @std mirror through JSR_URL, which has no Oak: the recipe cannot run.
const OAK_UNREACHABLE = Deno.env.get("JSR_URL") !== undefined;
if (OAK_UNREACHABLE) {
  console.log(
    "Skipping the Oak recipe: Oak 17 is published only on JSR, and this run reads JSR packages from a local mirror (JSR_URL) that has no Oak",
  );
}

Deno.test({
  name:
    "oak recipe: echoes through ctx.request.source and ctx.response.with(), with ctx.request.ip",
  ignore: OAK_UNREACHABLE,
  async fn() {
    const file = await recipe("oak");
    await using server = new DenoProcess(
      ["run", "--allow-net", "--allow-env=PORT", file],
      { PORT: "0" },
    );
    const address = await within(server.address, "Oak", START_UNITS);
    await using conn = await connect(`ws://${address.host}/ws`);
    conn.send("hello");
    assertEquals(await nextText(conn, "the echo"), "hello (from 127.0.0.1)");
  },
});
