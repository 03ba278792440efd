/**
 * Running out of file descriptors must not end a server. Each test runs its
 * server in a child process whose open-file limit is a few dozen descriptors
 * above what it holds at start (`_fd_limited.ts`), fills them with idle TCP
 * connections (Deno never times out a request head that is never sent),
 * frees them, and checks that the server is still there.
 *
 * Linux only (`/proc/self/fd` and `prlimit`); skipped elsewhere with a
 * printed reason, unless `ANYWS_REQUIRE_PEERS=1`.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { delay } from "@std/async/delay";
import { connect, type Connection } from "../mod.ts";
import { DenoProcess } from "./_deno_process.ts";
import { UNIT_MS, within } from "./_fixture.ts";
import { expectText } from "./_topic_client.ts";

/** Descriptors the child may open beyond those it holds at start. */
const HEADROOM = 40;
/** More idle connections than that would mean the limit did not apply. */
const MAX_IDLE = 400;
/** Time to accept again once descriptors are free: the promise under test. */
const RECOVERY_MS = 1000;
const START_UNITS = 30;

function whyNotHere(): string | undefined {
  if (Deno.build.os !== "linux") return `they need Linux, not ${Deno.build.os}`;
  try {
    const { success } = new Deno.Command("prlimit", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success ? undefined : '"prlimit --version" failed';
  } catch {
    return "prlimit is not installed (util-linux)";
  }
}

function skip(): boolean {
  const reason = whyNotHere();
  if (!reason) return false;
  if (Deno.env.get("ANYWS_REQUIRE_PEERS") === "1") return false; // fail instead
  console.log(`Skipping the descriptor exhaustion tests: ${reason}`);
  return true;
}

const ignore = skip();

function exhaustionServer(mode: "serve" | "listener"): DenoProcess {
  return new DenoProcess([
    "run",
    "-A",
    "tests/_fd_limited.ts",
    String(HEADROOM),
    "tests/_exhaustion_server.ts",
  ], { ANYWS_EXHAUSTION_SERVER: mode });
}

/**
 * Opens idle TCP connections to `port` until one fails: the server's accept
 * loop met EMFILE and closed its socket. Depending on where the connection
 * was when that happened, the failure is a refusal, a reset or "not
 * connected" (all seen); whichever it is, the listen error the test awaits
 * next tells whether the server really ran out.
 */
async function exhaust(port: number): Promise<Deno.Conn[]> {
  const idle: Deno.Conn[] = [];
  for (let i = 0; i < MAX_IDLE; i++) {
    try {
      idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      return idle;
    }
  }
  release(idle);
  throw new Error(
    `${MAX_IDLE} idle connections were accepted: the descriptor limit did not apply`,
  );
}

function release(idle: Deno.Conn[]): void {
  for (const conn of idle) conn.close();
  idle.length = 0;
}

/**
 * Opens a WebSocket and checks that it echoes, trying again every 20 ms while
 * the port refuses (nothing tells the client when it listens again).
 * Resolves with the connection and the milliseconds it took.
 */
async function reconnect(
  url: string,
): Promise<{ conn: Connection; ms: number }> {
  const start = performance.now();
  const stop = start + 5 * UNIT_MS;
  for (let attempt = 1;; attempt++) {
    try {
      const conn = await within(connect(url), "a new connection");
      conn.send("hello again");
      await expectText(conn, "hello again");
      return { conn, ms: performance.now() - start };
    } catch (error) {
      if (performance.now() > stop) {
        throw new Error(
          `No new connection within ${5 * UNIT_MS} ms (${attempt} attempts)`,
          { cause: error },
        );
      }
      await delay(20);
    }
  }
}

async function expectListenError(watcher: Connection): Promise<void> {
  const message = await within(watcher.nextMessage(), "the listen error");
  assert(message.isText());
  assertStringIncludes(message.decodedBody(), "listen-error ");
  assertStringIncludes(message.decodedBody(), "Too many open files");
}

for (const mode of ["listener", "serve"] as const) {
  Deno.test({
    name: `at the descriptor limit, ${
      mode === "serve" ? "serve()" : "the Listener"
    } keeps its connections, reports once per episode and accepts again within ${RECOVERY_MS} ms of descriptors freeing`,
    ignore,
    async fn() {
      await using child = exhaustionServer(mode);
      const url = await within(
        child.wsUrl,
        "the server to listen",
        START_UNITS,
      );
      const port = Number(new URL(url).port);
      const open: Connection[] = [];
      const idle: Deno.Conn[] = [];
      try {
        const watcher = await connect(url);
        open.push(watcher);
        watcher.send("watch");
        await expectText(watcher, "watching");
        const talker = await connect(url);
        open.push(talker);

        for (const episode of [1, 2]) {
          idle.push(...await exhaust(port));
          await expectListenError(watcher);
          // Connections made before go on.
          talker.send(`during ${episode}`);
          await expectText(talker, `during ${episode}`);
          if (episode === 2) {
            // While descriptors are still exhausted, each connection attempt
            // that reaches a listener bound again ends it again: still the
            // same episode, not reported again.
            for (let i = 0; i < 10; i++) {
              await Deno.connect({ hostname: "127.0.0.1", port }).then(
                (conn) => conn.close(),
                () => {},
              );
              await delay(50);
            }
          }
          release(idle);
          const { conn, ms } = await reconnect(url);
          open.push(conn);
          console.log(
            `episode ${episode}: accepting again after ${ms.toFixed(0)} ms`,
          );
          assert(
            ms <= RECOVERY_MS * (UNIT_MS / 1000),
            `accepting again took ${ms.toFixed(0)} ms`,
          );
        }
        // One report per episode; the next message on the watcher is the
        // answer, so nothing else was reported.
        watcher.send("count");
        await expectText(watcher, "listen-errors 2");
        talker.send("after");
        await expectText(talker, "after");
      } finally {
        release(idle);
        for (const conn of open) await conn.close().closed;
      }
      const { status, stdout, stderr } = await child.stop();
      assertEquals(status.code, 0, child.output);
      assertStringIncludes(stdout, "finished");
      assert(!stderr.includes("Uncaught"), stderr);
    },
  });
}

Deno.test({
  name:
    "examples/echo_server.ts keeps running at the descriptor limit, logs it once, and exits with 0 on SIGTERM",
  ignore,
  async fn() {
    await using child = new DenoProcess([
      "run",
      "-A",
      "tests/_fd_limited.ts",
      String(HEADROOM),
      "examples/echo_server.ts",
    ], { PORT: "0" });
    const url = await within(child.wsUrl, "the example to listen", START_UNITS);
    const port = Number(new URL(url).port);
    const open: Connection[] = [];
    const idle: Deno.Conn[] = [];
    try {
      const talker = await connect(url);
      open.push(talker);
      idle.push(...await exhaust(port));
      talker.send("still here");
      await expectText(talker, "still here");
      release(idle);
      const { conn, ms } = await reconnect(url);
      open.push(conn);
      assert(
        ms <= RECOVERY_MS * (UNIT_MS / 1000),
        `accepting again took ${ms.toFixed(0)} ms`,
      );
    } finally {
      release(idle);
      for (const conn of open) await conn.close().closed;
    }
    const { status, stderr } = await child.stop();
    assertEquals(status.code, 0, child.output);
    assertEquals(
      stderr.split("anyws: the server stopped accepting connections").length -
        1,
      1,
      stderr,
    );
  },
});

Deno.test({
  name:
    "serve() shuts down promptly while descriptors are exhausted (no retry left behind)",
  ignore,
  async fn() {
    await using child = exhaustionServer("serve");
    const url = await within(child.wsUrl, "the server to listen", START_UNITS);
    const idle: Deno.Conn[] = [];
    try {
      await using watcher = await connect(url);
      watcher.send("watch");
      await expectText(watcher, "watching");
      idle.push(...await exhaust(Number(new URL(url).port)));
      await expectListenError(watcher);
      // SIGTERM now: shutdown() closes the watcher with 1001, shuts down the
      // dead server that still holds the idle connections, and cancels the
      // pending attempt to listen again, so the process can end.
      const { status, stdout } = await child.stop();
      assertEquals(status.code, 0, child.output);
      assertStringIncludes(stdout, "finished");
      assertEquals((await watcher.closed).code, 1001);
    } finally {
      release(idle);
    }
  },
});
