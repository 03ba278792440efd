/**
 * Perl parity of the Connection API: a read-only getter per limit (Perl's
 * `max_payload_size` accessor and friends), and the runtime deprecation
 * warning of `onEachMessage`, `onNextMessage` and `onFinish`, once per
 * process and method.
 *
 * @module
 */

import { assertEquals, assertThrows } from "@std/assert";
import type { ConnectionLimits } from "../connection.ts";
import { DenoProcess } from "./_deno_process.ts";
import { within } from "./_fixture.ts";
import { openPair, SIDES } from "./_pair.ts";

const MIB = 1024 * 1024;

/** Every limit getter, with its documented default. */
const DEFAULTS: Required<ConnectionLimits> = {
  maxMessageSize: 16 * MIB,
  maxPendingMessages: 1024,
  maxPendingBytes: 32 * MIB,
  maxBufferedAmount: 16 * MIB,
  highWaterMark: 1 * MIB,
  closeTimeout: 5000,
  inactivityTimeout: 0,
};

/** A value other than the default for each. */
const GIVEN: Required<ConnectionLimits> = {
  maxMessageSize: 1000,
  maxPendingMessages: 7,
  maxPendingBytes: 4096,
  maxBufferedAmount: 65536,
  highWaterMark: 123,
  closeTimeout: 2500,
  inactivityTimeout: 60_000,
};

const NAMES = Object.keys(DEFAULTS) as (keyof ConnectionLimits)[];

/** The limits a connection reports through its getters. */
function limitsOf(conn: ConnectionLimits): Required<ConnectionLimits> {
  return Object.fromEntries(
    NAMES.map((name) => [name, conn[name]]),
  ) as Required<ConnectionLimits>;
}

for (const side of SIDES) {
  Deno.test(`${side} side: each limit getter reports the default when no option is given`, async () => {
    await using pair = await openPair();
    assertEquals(limitsOf(pair.sides(side).conn), DEFAULTS);
  });

  Deno.test(`${side} side: each limit getter reports the option given`, async () => {
    await using pair = await openPair(
      side === "server" ? { server: GIVEN } : { client: GIVEN },
    );
    const { conn, peer } = pair.sides(side);
    assertEquals(limitsOf(conn), GIVEN);
    assertEquals(limitsOf(peer), DEFAULTS, "the other side keeps its own");
  });

  Deno.test(`${side} side: highWaterMark defaults to a quarter of a maxBufferedAmount under 4 MiB`, async () => {
    const options = { maxBufferedAmount: 2 * MIB };
    await using pair = await openPair(
      side === "server" ? { server: options } : { client: options },
    );
    const { conn } = pair.sides(side);
    assertEquals([conn.maxBufferedAmount, conn.highWaterMark], [
      2 * MIB,
      MIB / 2,
    ]);
  });

  Deno.test(`${side} side: the limit getters are read-only: assigning throws TypeError (modules are strict) and changes nothing`, async () => {
    await using pair = await openPair();
    const { conn } = pair.sides(side);
    for (const name of NAMES) {
      assertThrows(
        () => {
          (conn as unknown as Record<string, number>)[name] = 1;
        },
        TypeError,
        name,
      );
      assertEquals(conn[name], DEFAULTS[name], name);
    }
  });
}

for (const event of ["message", "each_message", "finish"] as const) {
  Deno.test(`unregistering a function registered twice for ${event} removes one registration (Perl removes both)`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides("client");
    let calls = 0;
    const handler = () => void calls++;
    const unregister = conn.on(event, handler);
    conn.on(event, handler);
    unregister();
    unregister(); // harmless: still one registration left
    const done = Promise.withResolvers<void>();
    // Registered last, so it runs after both registrations of handler.
    conn.on(event, () => done.resolve());
    if (event === "finish") peer.close(1000);
    else peer.send("one");
    await within(done.promise, `the ${event} handlers`);
    assertEquals(calls, 1);
  });
}

Deno.test("onEachMessage, onNextMessage and onFinish each warn once per process, however often they are called", async () => {
  // A fresh process: the warnings are per process, so this one may have
  // printed them already.
  await using child = new DenoProcess([
    "run",
    "--allow-net",
    "tests/_deprecated_calls.ts",
  ]);
  const ended = await child.ended();
  assertEquals(ended.status.code, 0, ended.stderr);
  assertEquals(ended.stdout, "called each twice\n");
  const warnings = ended.stderr.split("\n").filter((line) =>
    line.includes("deprecated")
  );
  assertEquals(warnings, [
    'anyws: Connection.onEachMessage() is deprecated (as in AnyEvent::WebSocket::Connection 0.30); use on("each_message", ...) instead',
    'anyws: Connection.onNextMessage() is deprecated (as in AnyEvent::WebSocket::Connection 0.30); use on("next_message", ...) instead',
    'anyws: Connection.onFinish() is deprecated (as in AnyEvent::WebSocket::Connection 0.30); use on("finish", ...) instead',
  ]);
});
