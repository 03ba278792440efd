/**
 * One set of bounds: the most memory one connection can make the process
 * hold, path by path, pushed by a hostile peer over a real socket. The
 * server runs in a child process (`_bounds_server.ts`) with the default
 * limits, so that its RSS is its own; each attack checks the close code the
 * peer receives, the `parse_error` the server saw, and that the server's
 * peak RSS grew by no more than the per-connection formula of
 * docs/limits.md plus a margin, whatever the message size. The figures are
 * printed; docs/limits.md has them before and after the bounds.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  BoundsServer,
  exact,
  feed,
  flood,
  KiB,
  MiB,
  mib,
  type Outcome,
} from "./_bounds_peer.ts";
import { within } from "./_fixture.ts";

// The defaults (connection_options.ts).
const MAX_MESSAGE_SIZE = 16 * MiB;
const MAX_PENDING_MESSAGES = 1024;
const MAX_PENDING_BYTES = 32 * MiB;
const MAX_BUFFERED_AMOUNT = 16 * MiB;

/**
 * The formula of docs/limits.md for one server connection with the
 * defaults. Receiving: unread messages (twice maxPendingBytes: text counts
 * UTF-16 units, and V8 may keep 2 bytes per unit), the message the
 * application is handling, and the one Deno assembles, twice while it is
 * handed to JavaScript (that copy is the one that crosses a bound).
 * Sending: the send buffer twice (Deno's copies with their per-send cost,
 * which the budget counts, and the payloads they came from until
 * collected). Then the kept request headers and the connection itself.
 */
const PER_CONNECTION = 2 * MAX_PENDING_BYTES + MAX_MESSAGE_SIZE +
  2 * MAX_MESSAGE_SIZE +
  2 * MAX_BUFFERED_AMOUNT + 8 * KiB + 40 * KiB;
/**
 * Per process: dropped messages not yet collected, and allocator slack (a
 * peer flooding 8 MiB messages past the bound: up to ~60 MiB measured).
 */
const MARGIN = 64 * MiB;

const UNREAD =
  /More than 1024 messages arrived with nothing reading them \(maxPendingMessages\)/;
const UNREAD_BYTES =
  /More than 33554432 bytes of messages arrived with nothing reading them \(maxPendingBytes\)/;
const ITERATOR =
  /A for await loop fell more than 1024 messages or 33554432 bytes behind \(maxPendingMessages, maxPendingBytes\)/;
const SEND_BUFFER =
  /^Cannot buffer more for a peer that is not reading: .* maxBufferedAmount is 16777216$/;

/** Messages of `size` bytes that a queue takes before it is over the bounds. */
function fitting(size: number): number {
  return Math.min(
    MAX_PENDING_MESSAGES,
    Math.max(1, Math.floor(MAX_PENDING_BYTES / size)),
  );
}

function check(
  what: string,
  outcome: Outcome,
  expected: { close: { code: number; reason: string } | null; error: RegExp },
): void {
  const { report, close } = outcome;
  const growth = report.peak - report.baseline;
  console.log(
    `${what}: peak RSS +${mib(growth)} MiB (bound ${
      mib(PER_CONNECTION + MARGIN)
    }), close ${close ? `${close.code} ${close.reason}` : "none"}`,
  );
  assertEquals(report.errors.length, 1, `${what}: ${report.errors}`);
  assertMatch(report.errors[0]!, expected.error);
  if (expected.close) assertEquals(close, expected.close, what);
  assert(
    growth <= PER_CONNECTION + MARGIN,
    `${what}: the server grew by ${mib(growth)} MiB`,
  );
}

async function started(): Promise<BoundsServer> {
  const server = new BoundsServer();
  await within(server.warmUp(), "the warm-up", 60);
  return server;
}

const POLICY = { code: 1008, reason: "too many unread messages" };

Deno.test({
  name:
    "for await: a peer that sends past the unread bounds to a loop that does not keep up gets 1008, parse_error fires, the server's RSS stays within the formula (16 B to 16 MiB)",
  async fn() {
    await using server = await started();
    for (const size of [16, KiB, MiB, 8 * MiB, MAX_MESSAGE_SIZE]) {
      // One message taken by the loop, the queue full, one more.
      const count = 1 + fitting(size) + 1;
      check(
        `for await, ${count} x ${size} B`,
        await exact(server, "/iterate-stuck", size, count),
        { close: POLICY, error: ITERATOR },
      );
    }
  },
});

Deno.test({
  name:
    "for await: a peer sending as fast as it can to a loop that awaits 10 ms per message is stopped by parse_error within the formula (1 KiB, 8 MiB)",
  async fn() {
    await using server = await started();
    for (const size of [KiB, 8 * MiB]) {
      const outcome = await flood(server, {
        path: "/iterate",
        size,
        maxBytes: 1024 * MiB,
      });
      // Frames in flight behind the close frame make Deno drop the TCP
      // connection, so a flooding peer may see a reset instead of the code.
      check(`for await flood, ${size} B`, outcome, {
        close: null,
        error: ITERATOR,
      });
      assert(
        outcome.close === null || outcome.close.code === 1008,
        `closed with ${outcome.close?.code}`,
      );
    }
  },
});

Deno.test({
  name:
    "unread bytes: big messages sent while an async onEstablish awaits get 1008 at maxPendingBytes, parse_error fires, the server's RSS stays within the formula (1, 8, 16 MiB binary, 1 MiB text)",
  async fn() {
    await using server = await started();
    for (const size of [MiB, 8 * MiB, MAX_MESSAGE_SIZE]) {
      const count = fitting(size) + 1;
      check(
        `unread, ${count} x ${size} B`,
        await exact(server, "/unread", size, count),
        { close: POLICY, error: UNREAD_BYTES },
      );
    }
    // Text of 2-byte characters: 1 MiB of UTF-8 is 512 Ki units, kept at
    // 2 bytes each: 64 messages fit, 64 MiB of memory.
    const count = fitting(MiB / 2) + 1;
    check(
      `unread, ${count} x ${MiB} B of text`,
      await exact(server, "/unread", MiB, count, true),
      { close: POLICY, error: UNREAD_BYTES },
    );
  },
});

Deno.test({
  name:
    "unread count: small messages sent while an async onEstablish awaits get 1008 at maxPendingMessages, parse_error fires, the server's RSS stays within the formula (16 B, 1 KiB)",
  async fn() {
    await using server = await started();
    for (const size of [16, KiB]) {
      check(
        `unread, 1025 x ${size} B`,
        await exact(server, "/unread", size, MAX_PENDING_MESSAGES + 1),
        { close: POLICY, error: UNREAD },
      );
    }
  },
});

Deno.test({
  name:
    "send buffer: a peer that never reads gets 1008 'send buffer full' behind what was queued, parse_error fires, the server's RSS stays within the formula with Deno's per-send cost (16 B to 1 MiB)",
  async fn() {
    await using server = await started();
    for (const size of [16, 128, KiB, MiB]) {
      check(
        `send buffer, ${size} B sends`,
        await feed(server, size, size < MiB ? 2_000_000 : 1000),
        {
          close: { code: 1008, reason: "send buffer full" },
          error: SEND_BUFFER,
        },
      );
    }
  },
});

Deno.test({
  name:
    "sends queued while connecting are bounded by maxBufferedAmount with the per-send cost: parse_error after about 16 Ki sends of 16 B, within the formula",
  async fn() {
    await using server = await started();
    // A listener that accepts and never answers the handshake.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    try {
      for (const size of [16, KiB]) {
        const result = await server.get<{
          sent: number;
          errors: string[];
          baseline: number;
          peak: number;
        }>(`/connecting?port=${listener.addr.port}&size=${size}&count=2000000`);
        const growth = result.peak - result.baseline;
        console.log(
          `connecting, ${size} B sends: ${result.sent} queued, peak RSS +${
            mib(growth)
          } MiB`,
        );
        assertEquals(result.errors.length, 1, `${result.errors}`);
        assertMatch(result.errors[0]!, SEND_BUFFER);
        assert(
          result.sent <= MAX_BUFFERED_AMOUNT / (size + 1024) + 1,
          `${result.sent} sends were queued`,
        );
        assert(growth <= PER_CONNECTION + MARGIN, `grew by ${mib(growth)}`);
      }
    } finally {
      listener.close();
      await accepting;
      for (const conn of held) conn.close();
    }
  },
});
