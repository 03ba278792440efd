/**
 * The pure half of reconnection (reconnect.ts): backoff delays with a seeded
 * random source, the close-code and handshake decisions, option checks, and
 * the bounded queue. No sockets here; reconnect_test.ts covers the wire.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertThrows,
} from "@std/assert";
import { ConnectError } from "../client.ts";
import {
  QueueOverflowError,
  Reconnector,
  ReconnectPolicy,
} from "../reconnect.ts";

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const offline = () => Promise.reject(new Error("offline"));

Deno.test("ReconnectPolicy.delay() stays under the exponential ceiling and the cap, and spreads over it (full jitter)", () => {
  const policy = new ReconnectPolicy({
    initialDelay: 100,
    multiplier: 2,
    maxDelay: 1000,
    random: seeded(42),
  });
  const samples = 4000;
  // Attempts 1..4 grow (100, 200, 400, 800); 5 and later hit the cap.
  for (
    const [attempt, ceiling] of [
      [1, 100],
      [2, 200],
      [3, 400],
      [4, 800],
      [5, 1000],
      [9, 1000],
      [60, 1000],
    ]
  ) {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < samples; i++) {
      const delay = policy.delay(attempt!);
      assert(Number.isInteger(delay), `delay ${delay} is whole milliseconds`);
      assert(
        delay >= 0 && delay < ceiling!,
        `attempt ${attempt}: ${delay} in [0, ${ceiling})`,
      );
      sum += delay;
      min = Math.min(min, delay);
      max = Math.max(max, delay);
    }
    // Uniform over [0, ceiling): mean ceiling/2 (standard error ~0.5% of the
    // ceiling with 4000 samples; 3% is more than 5 standard errors), and the
    // extremes reach both ends.
    const mean = sum / samples;
    assert(
      Math.abs(mean - ceiling! / 2) < 0.03 * ceiling!,
      `attempt ${attempt}: mean ${mean} near ${ceiling! / 2}`,
    );
    assert(min < 0.02 * ceiling!, `attempt ${attempt}: min ${min} near 0`);
    assert(
      max >= 0.98 * ceiling! - 1,
      `attempt ${attempt}: max ${max} near ${ceiling}`,
    );
  }
});

Deno.test("ReconnectPolicy.delay() is reproducible with the same seed and differs with another", () => {
  const draw = (seed: number) => {
    const policy = new ReconnectPolicy({
      initialDelay: 1000,
      random: seeded(seed),
    });
    return Array.from({ length: 20 }, (_, i) => policy.delay(i + 1));
  };
  assertEquals(draw(7), draw(7));
  assert(JSON.stringify(draw(7)) !== JSON.stringify(draw(8)));
});

Deno.test("ReconnectPolicy.delay() keeps the cap when the random source misbehaves or the power overflows", () => {
  const high = new ReconnectPolicy({
    initialDelay: 10,
    maxDelay: 50,
    random: () => 7,
  });
  assertEquals(high.delay(1), 10);
  assertEquals(high.delay(2000), 50); // 10 * 2 ** 1999 is Infinity
  const nan = new ReconnectPolicy({ random: () => NaN });
  assertEquals(nan.delay(3), 0);
  const exact = new ReconnectPolicy({ initialDelay: 100, random: () => 0.5 });
  assertEquals([1, 2, 3].map((n) => exact.delay(n)), [50, 100, 200]);
});

Deno.test("ReconnectPolicy.delay() refuses an attempt that is not an integer >= 1", () => {
  const policy = new ReconnectPolicy();
  assertThrows(
    () => policy.delay(0),
    RangeError,
    "Cannot compute a backoff delay: attempt must be an integer >= 1, got 0",
  );
  assertThrows(
    () => policy.delay(1.5),
    RangeError,
    "Cannot compute a backoff delay: attempt must be an integer >= 1, got 1.5",
  );
});

Deno.test("ReconnectPolicy.retriesClose() never retries 1000/1008/stopCodes, retries 1001/1006/1011-1014 and application codes", () => {
  const policy = new ReconnectPolicy();
  const table: [number, boolean][] = [
    [1000, false],
    [1001, true],
    [1002, false],
    [1003, false],
    [1005, false],
    [1006, true],
    [1007, false],
    [1008, false],
    [1009, false],
    [1010, false],
    [1011, true],
    [1012, true],
    [1013, true],
    [1014, true],
    [1015, false],
    [2999, false],
    [3000, true],
    [4001, true],
    [4999, true],
  ];
  assertEquals(table.map(([code]) => [code, policy.retriesClose(code)]), table);
  const custom = new ReconnectPolicy({
    stopCodes: [4001, 1012],
    retryCodes: [1005],
  });
  assertEquals(
    [4001, 1012, 1005, 4002, 1000].map((code) => custom.retriesClose(code)),
    [false, false, true, true, false],
  );
});

Deno.test("ReconnectPolicy.retriesError() stops on HTTP 4xx (but 408/429) and retries 5xx and failures without a status", () => {
  const policy = new ReconnectPolicy();
  const refused = (status?: number) =>
    policy.retriesError(new ConnectError("refused", "ws://127.0.0.1/", status));
  assertEquals(
    [400, 401, 403, 404, 408, 429, 500, 502, 503, undefined].map(refused),
    [false, false, false, false, true, true, true, true, true, true],
  );
  assertEquals(policy.retriesError(new Error("tcp connect error")), true);
});

Deno.test("ReconnectPolicy refuses bad options with errors naming the option", () => {
  const cases: [() => unknown, typeof RangeError | typeof TypeError, string][] =
    [
      [
        () => new ReconnectPolicy({ initialDelay: -1 }),
        RangeError,
        "Cannot reconnect: initialDelay must be a finite number >= 0, got -1",
      ],
      [
        () => new ReconnectPolicy({ maxDelay: Infinity }),
        RangeError,
        "Cannot reconnect: maxDelay must be a finite number >= 0, got Infinity",
      ],
      [
        () => new ReconnectPolicy({ multiplier: 0.5 }),
        RangeError,
        "Cannot reconnect: multiplier must be a finite number >= 1, got 0.5",
      ],
      [
        () => new ReconnectPolicy({ maxAttempts: 0 }),
        RangeError,
        "Cannot reconnect: maxAttempts must be an integer >= 1 or Infinity, got 0",
      ],
      [
        () => new ReconnectPolicy({ maxQueuedBytes: NaN }),
        RangeError,
        "Cannot reconnect: maxQueuedBytes must be a finite number >= 0, got NaN",
      ],
      [
        () => new ReconnectPolicy({ retryCodes: [1008] }),
        RangeError,
        "Cannot reconnect: retryCodes contains 1008, which is never retried",
      ],
      [
        () => new ReconnectPolicy({ retryCodes: [4001], stopCodes: [4001] }),
        RangeError,
        "Cannot reconnect: retryCodes contains 4001, which is also in stopCodes",
      ],
      [
        () => new ReconnectPolicy({ overflow: "drop-newest" as never }),
        TypeError,
        'Cannot reconnect: overflow must be "reject" or "drop-oldest", got "drop-newest"',
      ],
      [
        () => new ReconnectPolicy({ random: 4 as never }),
        TypeError,
        "Cannot reconnect: random must be a function, got number",
      ],
    ];
  for (const [fn, ErrorClass, message] of cases) {
    assertThrows(fn, ErrorClass, message);
  }
  const defaults = new ReconnectPolicy();
  assertEquals(
    [
      defaults.initialDelay,
      defaults.maxDelay,
      defaults.multiplier,
      defaults.maxAttempts,
      defaults.maxQueuedMessages,
      defaults.maxQueuedBytes,
      defaults.overflow,
      defaults.hookTimeout,
    ],
    [1000, 30_000, 2, Infinity, 1024, 1_048_576, "reject", 30_000],
  );
});

Deno.test('Reconnector.enqueue() with "reject" refuses what exceeds the count or the bytes, queueing nothing', () => {
  const byCount = new Reconnector(offline, { maxQueuedMessages: 2 });
  byCount.enqueue("a");
  byCount.enqueue("b");
  const error = assertThrows(
    () => byCount.enqueue("c"),
    QueueOverflowError,
    "Cannot queue a message of 1 bytes while reconnecting: the queue holds 2 messages and 2 bytes (maxQueuedMessages 2, maxQueuedBytes 1048576)",
  );
  assertEquals(error.byteLength, 1);
  assertEquals(byCount.drain(), ["a", "b"]);

  const byBytes = new Reconnector(offline, { maxQueuedBytes: 10 });
  byBytes.enqueue("€€€"); // 9 bytes
  assertThrows(
    () => byBytes.enqueue(new Uint8Array(2)),
    QueueOverflowError,
    "Cannot queue a message of 2 bytes while reconnecting: the queue holds 1 messages and 9 bytes (maxQueuedMessages 1024, maxQueuedBytes 10)",
  );
  byBytes.enqueue(new Uint8Array(1));
  assertEquals(byBytes.stats, {
    reconnects: 0,
    queuedMessages: 2,
    queuedBytes: 10,
    droppedMessages: 0,
  });
});

Deno.test('Reconnector.enqueue() with "drop-oldest" discards the oldest and counts them, but still refuses a message over maxQueuedBytes', () => {
  const queue = new Reconnector(offline, {
    maxQueuedMessages: 3,
    maxQueuedBytes: 8,
    overflow: "drop-oldest",
  });
  for (const data of ["1", "2", "3", "4", "5"]) queue.enqueue(data);
  assertEquals(queue.stats.droppedMessages, 2);
  queue.enqueue("666666"); // 6 bytes: 4 and 5 (2 bytes) fit beside it, 3 goes
  assertEquals(queue.stats, {
    reconnects: 0,
    queuedMessages: 3,
    queuedBytes: 8,
    droppedMessages: 3,
  });
  assertThrows(
    () => queue.enqueue("123456789"),
    QueueOverflowError,
    "Cannot queue a message of 9 bytes while reconnecting: the queue holds 3 messages and 8 bytes (maxQueuedMessages 3, maxQueuedBytes 8)",
  );
  assertEquals(queue.drain(), ["4", "5", "666666"]);
  assertEquals(queue.drain(), []);
  assertEquals(queue.stats.droppedMessages, 3); // the counter is a total

  const none = new Reconnector(offline, {
    maxQueuedMessages: 0,
    overflow: "drop-oldest",
  });
  assertThrows(
    () => none.enqueue("x"),
    QueueOverflowError,
    "Cannot queue a message while reconnecting: maxQueuedMessages is 0",
  );
});

Deno.test('Reconnector.enqueue() with "drop-oldest" keeps exactly the newest messages over a long outage', () => {
  const queue = new Reconnector(offline, {
    maxQueuedMessages: 3,
    overflow: "drop-oldest",
  });
  for (let i = 1; i <= 10_000; i++) queue.enqueue(`${i}`);
  assertEquals(queue.stats.droppedMessages, 9_997);
  assertEquals(queue.stats.queuedBytes, 13);
  assertEquals(queue.drain(), ["9998", "9999", "10000"]);
});

Deno.test("Reconnector.enqueue() copies bytes, so the sender may reuse its buffer", () => {
  const queue = new Reconnector(offline);
  const bytes = new Uint8Array([1, 2, 3]);
  const buffer = new Uint8Array([4, 5]).buffer;
  queue.enqueue(bytes);
  queue.enqueue(buffer);
  bytes.fill(0);
  new Uint8Array(buffer).fill(0);
  const [first, second] = queue.drain();
  assertInstanceOf(first, Uint8Array);
  assertEquals([...first], [1, 2, 3]);
  assertInstanceOf(second, ArrayBuffer);
  assertEquals([...new Uint8Array(second)], [4, 5]);
});
