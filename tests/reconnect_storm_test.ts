/**
 * Reconnect storms: a server that accepts and then closes at once (a crash
 * loop) must see its clients slow down to the backoff cap, not reconnect
 * about twice a second forever; and 1013 "Try Again Later" means later.
 *
 * Times are scaled down (delays of milliseconds); the backoff with the
 * defaults is checked on the policy itself.
 *
 * @module
 */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import {
  type ReconnectingInfo,
  type ReconnectOptions,
  ReconnectPolicy,
} from "../reconnect.ts";
import { listen, within, wsUrl } from "./_fixture.ts";

/** Collects the delays of `count` waits, then closes the connection. */
function delaysOf(conn: Connection, count: number): Promise<number[]> {
  const delays: number[] = [];
  const { promise, resolve } = Promise.withResolvers<number[]>();
  conn.on("reconnecting", (conn, info: ReconnectingInfo) => {
    delays.push(info.delay);
    if (delays.length === count) {
      conn.close();
      resolve(delays);
    }
  });
  return promise;
}

const SCALED: ReconnectOptions = {
  initialDelay: 8,
  maxDelay: 64,
  // The top of each jitter window: the delay shows the backoff's ceiling.
  random: () => 0.999,
};

Deno.test("a crash-looping server (accepts, then closes with 1011) gets clients that back off to the cap instead of resetting at each handshake", async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.close(1011, "crashed");
    },
  });
  const conn = await within(
    connect(wsUrl(server), {
      reconnect: { ...SCALED, minUptime: 60_000 },
    }),
    "the first connection",
  );
  const delays = await within(delaysOf(conn, 7), "seven reconnections");
  // Each wait is longer than the one before until the cap: 8, 16, 32, 64 ms
  // ceilings. Before minUptime, every successful handshake started over at
  // the first ceiling (8 ms), forever.
  assertEquals(
    delays.map((delay) => Math.ceil(delay / 8) * 8),
    [8, 16, 32, 64, 64, 64, 64],
  );
  await within(conn.closed, "the close");
});

Deno.test("a socket that stayed open for minUptime starts the backoff over", async () => {
  let connections = 0;
  const later = Promise.withResolvers<void>();
  await using server = listen({
    onEstablish(conn) {
      connections++;
      // The first three die at once; the fourth lives until told.
      if (connections <= 3) conn.close(1011, "crashed");
      else later.promise.then(() => conn.close(1011, "crashed later"));
    },
  });
  const conn = await within(
    connect(wsUrl(server), { reconnect: { ...SCALED, minUptime: 50 } }),
    "the first connection",
  );
  const delays: number[] = [];
  const reconnected = Promise.withResolvers<void>();
  const fourthLoss = Promise.withResolvers<void>();
  conn.on("reconnect", () => {
    if (connections === 4) reconnected.resolve();
  });
  conn.on("reconnecting", (_conn, { delay }) => {
    delays.push(delay);
    if (delays.length === 4) fourthLoss.resolve();
  });
  await within(reconnected.promise, "the long-lived fourth socket");
  // It outlives minUptime (50 ms): nothing arrives on it for 100 ms.
  await assertRejects(
    () => conn.nextMessage({ timeout: 100 }),
    DOMException,
    "No message arrived within 100 ms",
  );
  later.resolve();
  await within(fourthLoss.promise, "the loss of the fourth socket");
  conn.close();
  await within(conn.closed, "the close");
  const ceilings = delays.map((delay) => Math.ceil(delay / 8) * 8);
  // Three short-lived sockets escalated; the long-lived one reset it.
  assertEquals(ceilings, [8, 16, 32, 8]);
});

Deno.test('a 1013 "Try Again Later" close never starts the backoff over, and waits at least half the ceiling', async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.close(1013, "try again later");
    },
  });
  const conn = await within(
    connect(wsUrl(server), {
      // Every socket would count as long-lived (minUptime 0), and the
      // jitter picks the bottom of each window: only 1013 keeps the backoff.
      reconnect: { ...SCALED, minUptime: 0, random: () => 0 },
    }),
    "the first connection",
  );
  const delays = await within(delaysOf(conn, 5), "five reconnections");
  assertEquals(delays, [4, 8, 16, 32, 32]);
  await within(conn.closed, "the close");
});

Deno.test("with the default policy, a crash loop costs each client at most 8 attempts in the first minute and 4 a minute after that (mean jitter)", () => {
  const policy = new ReconnectPolicy({ random: () => 0.5 });
  assertEquals(policy.minUptime, 5000);
  // Against a server that closes at once, every socket dies young: the
  // attempt number keeps growing across losses.
  let elapsed = 0;
  let inFirstMinute = 0;
  let step = 1;
  for (; elapsed < 60_000; step++) {
    elapsed += policy.delay(step);
    if (elapsed < 60_000) inFirstMinute++;
  }
  assert(inFirstMinute <= 8, `${inFirstMinute} attempts in the first minute`);
  // From then on the cap rules: 30 s ceiling, 15 s mean wait.
  assertEquals(policy.delay(step + 10), 15_000);
});
