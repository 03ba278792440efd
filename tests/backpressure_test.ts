/**
 * Backpressure: write()/drained() wait for a peer that reads slowly, and
 * maxBufferedAmount closes a connection whose peer does not read at all
 * instead of buffering without bound, on both sides and in broadcast().
 */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { connect } from "../client.ts";
import { Connection, ConnectionClosedError } from "../connection.ts";
import { droppablePair, sideCode, SIDES } from "./_pair.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { RawPeer } from "./_raw_peer.ts";

const CHUNK = new Uint8Array(64 * 1024);
const MiB = 1024 * 1024;

/** Sends 64 KiB messages until `conn`'s buffer exceeds `bytes` (bounded). */
function fillBeyond(conn: Connection, bytes: number): number {
  for (let i = 1; i <= 4096; i++) {
    conn.send(CHUNK);
    if (conn.bufferedAmount > bytes) return i;
  }
  throw new Error(`The buffer stayed under ${bytes} bytes after 256 MiB`);
}

/** Whether `promise` settles within `ms` milliseconds. */
async function settlesWithin(promise: Promise<unknown>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => timer = setTimeout(resolve, ms, false)),
  ]);
  clearTimeout(timer);
  return settled;
}

for (const side of SIDES) {
  Deno.test(`write() on the ${side} side waits while a peer does not read, and resolves under the high-water mark once it reads`, async () => {
    await using pair = await droppablePair(side);
    const { conn, peer } = pair;
    // Write until one write() is still waiting after 20 drain polls (proving
    // a negative needs time): the kernel's buffers are full and the peer
    // reads nothing. Earlier writes resolve as the kernel takes the data.
    let pending: Promise<void> | undefined;
    for (let i = 0; i < 4096 && !pending; i++) {
      const write = conn.write(CHUNK);
      if (!await settlesWithin(write, 100)) pending = write;
    }
    assert(pending, "write() never waited although the peer reads nothing");
    const waitingAt = conn.bufferedAmount;
    // Now the peer reads everything; the write resolves below the mark.
    const reading = (async () => {
      while (await peer.readFrame());
    })();
    await within(pending, "the write to resolve");
    assert(conn.bufferedAmount <= MiB, `${conn.bufferedAmount} buffered`);
    console.log(
      `${side}: a write waited at ${waitingAt} buffered bytes and resolved once the peer read`,
    );
    peer.drop();
    await reading;
  });

  Deno.test(`write() on the ${side} side rejects with ConnectionClosedError when the connection ends before the buffer drains`, async () => {
    await using pair = await droppablePair(side, { closeTimeout: 500 });
    const { conn } = pair;
    fillBeyond(conn, 2 * MiB);
    const write = conn.write(CHUNK);
    pair.drop();
    const error = await within(
      assertRejects(() => write, ConnectionClosedError),
      "the write to reject",
    );
    assertEquals(error.code, 1006);
    assert(
      error.message.startsWith("Connection closed with code 1006"),
      error.message,
    );
    // And a write after the end rejects at once with the same class.
    await assertRejects(
      () => conn.write("late"),
      ConnectionClosedError,
      "Connection closed with code 1006",
    );
  });

  Deno.test(
    `send() on the ${side} side past maxBufferedAmount to a peer that does not read fires parse_error and closes with ${
      sideCode(side, 1008)
    }`,
    async () => {
      await using pair = await droppablePair(side, { closeTimeout: 300 });
      const { conn, peer } = pair;
      // The option is per connection; the pair uses the default (16 MiB).
      const cap = 16 * MiB;
      const errors: string[] = [];
      conn.on("parse_error", (_conn, error) => errors.push(error));
      let peak = 0;
      let sent = 0;
      for (; sent < 4096 && conn.readyState === WebSocket.OPEN; sent++) {
        conn.send(CHUNK);
        peak = Math.max(peak, conn.bufferedAmount);
      }
      assert(sent < 4096, "the policy never fired");
      assert(peak <= cap + CHUNK.length, `peak ${peak}`);
      const info = await within(conn.closed, "the connection to finish");
      assertEquals(errors.length, 1);
      assert(
        errors[0]!.startsWith(
          "Cannot buffer more for a peer that is not reading:",
        ),
        errors[0],
      );
      assert(errors[0]!.endsWith("maxBufferedAmount is 16777216"), errors[0]);
      assert(info.error instanceof RangeError);
      assertEquals(info.error.message, errors[0]);
      // The close frame is queued behind what the peer never read: reading now
      // finds it, with the policy's code.
      const close = await within(peer.readClose(), "the close frame");
      assertEquals(close, {
        code: sideCode(side, 1008),
        reason: "send buffer full",
      });
      console.log(
        `${side}: ${sent} x 64 KiB sent, peak buffered ${peak} bytes (cap ${cap})`,
      );
    },
  );
}

Deno.test("write() rejects with the signal's reason when aborted while waiting", async () => {
  await using pair = await droppablePair("server");
  const { conn } = pair;
  fillBeyond(conn, 2 * MiB);
  const controller = new AbortController();
  const write = conn.write(CHUNK, { signal: controller.signal });
  controller.abort(new Error("stop waiting"));
  await assertRejects(() => write, Error, "stop waiting");
  await assertRejects(
    () => conn.write("x", { signal: controller.signal }),
    Error,
    "stop waiting",
  );
});

Deno.test("broadcast() closes a reader that stopped with 1008 while a fast reader on the same server receives every message", async () => {
  const cap = MiB;
  const established: Connection[] = [];
  const twoOpen = Promise.withResolvers<void>();
  await using server = listen({
    maxBufferedAmount: cap,
    closeTimeout: 300,
    onEstablish(conn) {
      established.push(conn);
      if (established.length === 2) twoOpen.resolve();
    },
  });
  await using slow = await within(
    RawPeer.open(server.addr.port),
    "the slow peer",
  );
  const fast = await within(connect(wsUrl(server)), "the fast peer");
  await within(twoOpen.promise, "both connections");
  const [slowConn, fastConn] = established as [Connection, Connection];
  const slowErrors: string[] = [];
  slowConn.on("parse_error", (_conn, error) => slowErrors.push(error));

  const count = 800; // 50 MiB in all, far more than the cap plus kernel buffers
  let received = 0;
  const all = Promise.withResolvers<void>();
  fast.on("message", () => {
    if (++received === count) all.resolve();
  });
  const rssBefore = Deno.memoryUsage().rss;
  let peakSlow = 0;
  let slowClosedAt = -1;
  for (let i = 0; i < count; i++) {
    server.broadcast(CHUNK);
    peakSlow = Math.max(peakSlow, slowConn.bufferedAmount);
    if (slowClosedAt < 0 && slowConn.readyState !== WebSocket.OPEN) {
      slowClosedAt = i;
    }
    await within(fastConn.drained(), "the fast reader to keep up"); // cap / 4
  }
  await within(all.promise, "the fast reader to receive everything");
  const rssAfter = Deno.memoryUsage().rss;
  assertEquals(received, count);
  assert(slowClosedAt > 0, "the slow reader was never closed");
  assert(peakSlow <= cap + CHUNK.length, `peak ${peakSlow}`);
  const info = await within(slowConn.closed, "the slow connection to finish");
  assertEquals(slowErrors.length, 1);
  assert(info.error instanceof RangeError);
  assertEquals(
    await within(slow.readClose(), "the slow peer's close frame"),
    { code: 1008, reason: "send buffer full" },
  );
  console.log(
    `broadcast: slow reader closed after ${slowClosedAt} of ${count} x 64 KiB (peak ${peakSlow} buffered, cap ${cap}); RSS ${
      (rssBefore / MiB).toFixed(1)
    } -> ${(rssAfter / MiB).toFixed(1)} MiB`,
  );
  assert(
    rssAfter - rssBefore < 48 * MiB,
    `RSS grew by ${rssAfter - rssBefore} bytes for 50 MiB broadcast`,
  );
  await fast.close(1000).closed;
});

Deno.test("write() on a connection still connecting resolves once it is open and the queued data has been handed to the socket", async () => {
  const received = Promise.withResolvers<string>();
  await using server = listen({
    onEstablish(conn) {
      conn.on("message", (_conn, data) => received.resolve(String(data)));
    },
  });
  await using conn = new Connection(new WebSocket(wsUrl(server)));
  assertEquals(conn.readyState, WebSocket.CONNECTING);
  await within(conn.write("queued while connecting"), "the write");
  assertEquals(conn.readyState, WebSocket.OPEN);
  assertEquals(
    await within(received.promise, "the server to receive it"),
    "queued while connecting",
  );
});

Deno.test("write() on a connection that never opens rejects with ConnectionClosedError 1006", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // nothing listens there any more
  const conn = new Connection(new WebSocket(`ws://127.0.0.1:${port}/`));
  const error = await within(
    assertRejects(() => conn.write("never sent"), ConnectionClosedError),
    "the write to reject",
  );
  assertEquals(error.code, 1006);
  assert(error.message.startsWith("Connection closed with code 1006"));
});
