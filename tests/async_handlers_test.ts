/**
 * Async handlers are handlers: a rejected promise from any handler or
 * listener is treated like a throw. While the connection is open:
 * `parse_error` with the error's text and a close with 1011 (4011 on the
 * client side). Once it is closing or finished: logged with console.error,
 * never fatal. In every case the process and the other connections go on,
 * and nothing reaches the event loop: Deno's test runner fails a test on an
 * unhandled rejection, and a child-process server keeps serving.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { connect } from "../client.ts";
import { type CloseInfo, Connection } from "../connection.ts";
import type { ReconnectOptions } from "../reconnect.ts";
import { DenoProcess } from "./_deno_process.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { openPair, sideCode, SIDES } from "./_pair.ts";

/**
 * Replaces `console.error` while `fn` runs; `fn` gets the lines logged so
 * far, to wait for one.
 */
async function capturingConsoleError<T>(
  fn: (logged: unknown[][]) => Promise<T>,
): Promise<{ result: T; logged: unknown[][] }> {
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    return { result: await fn(logged), logged };
  } finally {
    console.error = original;
  }
}

/** What every failing handler rejects with. */
const TEXT = "rejected on purpose";

/** Rejects with {@linkcode TEXT} after a real wait, as a handler would. */
async function reject(): Promise<never> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  throw new Error(TEXT);
}

/** The texts `conn`'s parse_error handlers receive. */
function parseErrors(conn: Connection): string[] {
  const seen: string[] = [];
  conn.on("parse_error", (_conn, text) => void seen.push(text));
  return seen;
}

/** A second connection to `url` gets its message echoed. */
async function assertStillEchoes(url: string): Promise<void> {
  await using conn = await within(connect(url), "a second connection");
  conn.send("still there?");
  assertEquals(
    `${await within(conn.nextMessage(), "the second connection's echo")}`,
    "still there?",
  );
}

/** An echo for every connection `onEstablish` gets but the first. */
function echoAfterFirst(first: (conn: Connection) => void) {
  let count = 0;
  return (conn: Connection) => {
    if (count++ === 0) first(conn);
    else conn.on("message", (conn, data) => conn.send(data));
  };
}

// ---- while open: parse_error, then 1011/4011 --------------------------------

/** A consumer that rejects on the message "fail". */
interface Consumer {
  name: string;
  register(conn: Connection): void;
}

const CONSUMERS: Consumer[] = [
  {
    name: 'an async on("message") handler',
    register: (conn) =>
      conn.on("message", async (_conn, data) => {
        if (data === "fail") await reject();
      }),
  },
  {
    name: 'an async on("each_message") handler',
    register: (conn) =>
      conn.on("each_message", async (_conn, message) => {
        if (`${message}` === "fail") await reject();
      }),
  },
  {
    name: 'an async on("next_message") handler',
    register: (conn) => conn.on("next_message", () => reject()),
  },
  {
    name: "an async DOM message listener",
    register: (conn) => conn.addEventListener("message", () => reject()),
  },
];

for (const consumer of CONSUMERS) {
  for (const side of SIDES) {
    Deno.test(
      `${side} side: ${consumer.name} that rejects fires parse_error with its text and closes with ${
        sideCode(side, 1011)
      }; the server still serves`,
      async () => {
        const { result: seen, logged } = await capturingConsoleError(
          async () => {
            await using pair = await openPair({
              onEstablish: echoAfterFirst((conn) => {
                if (side === "server") consumer.register(conn);
              }),
            });
            const { conn, peer } = pair.sides(side);
            if (side === "client") consumer.register(conn);
            const errors = parseErrors(conn);
            peer.send("fail");
            const [ours, theirs] = await within(
              Promise.all([conn.closed, peer.closed]),
              "both ends to finish",
            );
            await assertStillEchoes(wsUrl(pair.server));
            return { errors, ours, theirs };
          },
        );
        const code = sideCode(side, 1011);
        assertEquals(seen.errors, [TEXT]);
        assertEquals([seen.theirs.code, seen.theirs.reason], [
          code,
          "handler error",
        ]);
        assertEquals(
          [seen.ours.code, seen.ours.error?.message],
          [code, TEXT],
        );
        // Reported through parse_error: nothing to log.
        assertEquals(logged, []);
      },
    );
  }
}

Deno.test("client side: an async DOM open listener that rejects fires parse_error with its text and closes with 4011", async () => {
  await using server = listen({
    onEstablish: (conn) => conn.on("message", (conn, data) => conn.send(data)),
  });
  const established = Promise.withResolvers<CloseInfo>();
  // The open event is seen only by a Connection made on a connecting
  // socket: connect() resolves once open.
  const conn = new Connection(new WebSocket(wsUrl(server)));
  const errors = parseErrors(conn);
  conn.addEventListener("open", () => reject());
  const { logged } = await capturingConsoleError(async () => {
    const info = await within(conn.closed, "the client to finish");
    established.resolve(info);
    await assertStillEchoes(wsUrl(server));
  });
  const info = await established.promise;
  assertEquals(errors, [TEXT]);
  assertEquals([info.code, info.reason, info.error?.message], [
    4011,
    "handler error",
    TEXT,
  ]);
  assertEquals(logged, []);
});

// ---- closing or finished: logged, never fatal -----------------------------

/** A registration that rejects once the connection is closing or closed. */
interface Late {
  name: string;
  /** The line console.error gets, before the error. */
  logs: string;
  register(conn: Connection): void;
  /** Makes the registration fire: by a close, or by a failing handler. */
  by: "close" | "throw";
}

const LATE: Late[] = [
  {
    name: 'an async on("finish") handler',
    logs: "anyws: a finish handler failed; ignored:",
    register: (conn) => conn.on("finish", () => reject()),
    by: "close",
  },
  {
    name: "an async DOM close listener",
    logs: "anyws: a close listener failed; ignored:",
    register: (conn) => conn.addEventListener("close", () => reject()),
    by: "close",
  },
  {
    name: 'an async on("parse_error") handler',
    logs: "anyws: a parse_error handler failed; ignored:",
    register: (conn) => conn.on("parse_error", () => reject()),
    by: "throw",
  },
  {
    name: "an async DOM error listener",
    logs: "anyws: an error listener failed; ignored:",
    register: (conn) => conn.addEventListener("error", () => reject()),
    by: "throw",
  },
];

/** Waits until `logged` has `count` entries (console.error is synchronous). */
async function loggedLines(
  logged: unknown[][],
  count: number,
): Promise<void> {
  // Bounded by within(): each pass waits one timer tick for the rejection.
  await within(
    (async () => {
      while (logged.length < count) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })(),
    `${count} console.error line(s)`,
  );
}

for (const late of LATE) {
  for (const side of SIDES) {
    const trigger = late.by === "close"
      ? "after the peer's close 1000"
      : `while a throwing handler closes with ${sideCode(side, 1011)}`;
    Deno.test(`${side} side: ${late.name} that rejects ${trigger} is logged, and nothing else changes`, async () => {
      const { result, logged } = await capturingConsoleError(async (logged) => {
        await using pair = await openPair({
          onEstablish: echoAfterFirst((conn) => {
            if (side === "server") register(conn);
          }),
        });
        const { conn, peer } = pair.sides(side);
        function register(conn: Connection) {
          late.register(conn);
          conn.on("message", () => {
            throw new Error("the handler that fails first");
          });
        }
        if (side === "client") register(conn);
        if (late.by === "close") peer.close(1000);
        else peer.send("fail");
        const [ours, theirs] = await within(
          Promise.all([conn.closed, peer.closed]),
          "both ends to finish",
        );
        await loggedLines(logged, 1);
        await assertStillEchoes(wsUrl(pair.server));
        return { ours, theirs };
      });
      const code = late.by === "close" ? 1000 : sideCode(side, 1011);
      assertEquals(result.theirs.code, code);
      assertEquals(result.ours.code, code);
      assertEquals(logged.length, 1, "one line logged");
      const [prefix, error] = logged[0]!;
      assertEquals(prefix, late.logs);
      assert(error instanceof Error);
      assertEquals(error.message, TEXT);
    });
  }
}

// ---- reconnecting clients ------------------------------------------------

const FAST: ReconnectOptions = { initialDelay: 10, maxDelay: 50 };

/**
 * A server whose first connection is closed with 1012 (which the client
 * retries); later ones echo.
 */
function restartingServer() {
  let count = 0;
  return listen({
    onEstablish(conn) {
      if (count++ === 0) conn.close(1012, "restarting");
      else conn.on("message", (conn, data) => conn.send(data));
    },
  });
}

for (
  const hook of [
    {
      name: 'an async on("reconnect") handler',
      register: (conn: Connection) => conn.on("reconnect", () => reject()),
    },
    {
      name: "an async DOM reconnect listener",
      register: (conn: Connection) =>
        conn.addEventListener("reconnect", () => reject()),
    },
  ]
) {
  Deno.test(`client side: ${hook.name} that rejects fires parse_error with its text and closes the new socket with 4011, for good`, async () => {
    await using server = restartingServer();
    const { result, logged } = await capturingConsoleError(async () => {
      const conn = await within(
        connect(wsUrl(server), { reconnect: FAST }),
        "the client to connect",
      );
      const errors = parseErrors(conn);
      hook.register(conn);
      const info = await within(conn.closed, "the client to finish");
      await assertStillEchoes(wsUrl(server));
      return { errors, info, reconnects: conn.reconnectStats?.reconnects };
    });
    assertEquals(result.errors, [TEXT]);
    assertEquals(
      [result.info.code, result.info.reason, result.info.error?.message],
      [4011, "handler error", TEXT],
    );
    assertEquals(result.reconnects, 1);
    assertEquals(logged, []);
  });
}

for (
  const hook of [
    {
      name: 'an async on("reconnecting") handler',
      logs: "anyws: a reconnecting handler failed; ignored:",
      register: (conn: Connection) => conn.on("reconnecting", () => reject()),
    },
    {
      name: "an async DOM reconnecting listener",
      logs: "anyws: a reconnecting listener failed; ignored:",
      register: (conn: Connection) =>
        conn.addEventListener("reconnecting", () => reject()),
    },
  ]
) {
  Deno.test(`client side: ${hook.name} that rejects is logged, and the client reconnects`, async () => {
    await using server = restartingServer();
    const { logged } = await capturingConsoleError(async (logged) => {
      await using conn = await within(
        connect(wsUrl(server), { reconnect: FAST }),
        "the client to connect",
      );
      hook.register(conn);
      const back = new Promise((resolve) =>
        conn.addEventListener("reconnect", resolve, { once: true })
      );
      await within(back, "the reconnection");
      conn.send("echo me");
      assertEquals(
        `${await within(conn.nextMessage(), "the echo")}`,
        "echo me",
      );
      await loggedLines(logged, 1);
    });
    assertEquals(logged.length, 1);
    const [prefix, error] = logged[0]!;
    assertEquals(prefix, hook.logs);
    assertEquals((error as Error).message, TEXT);
  });
}

// ---- the process goes on -------------------------------------------------

Deno.test("a server process whose async handler rejects closes that connection with 1011 and keeps serving", async () => {
  await using server = new DenoProcess([
    "run",
    "--allow-net",
    "tests/_rejecting_server.ts",
  ]);
  const url = await within(server.wsUrl, "the server's address", 15);
  for (let round = 1; round <= 3; round++) {
    await using conn = await within(connect(url), `connection ${round}`);
    conn.send("fail");
    const info = await within(conn.closed, `connection ${round} to finish`);
    assertEquals([info.code, info.reason], [1011, "handler error"]);
    await assertStillEchoes(url);
  }
  const ended = await server.stop();
  // It was still running when told to stop, and said nothing about an
  // uncaught error.
  assertEquals(ended.status.signal, "SIGTERM");
  for (const word of ["Uncaught", "error:"]) {
    assert(!ended.stderr.includes(word), `stderr: ${ended.stderr}`);
  }
  assertStringIncludes(ended.stdout, "ws://127.0.0.1:");
});
