/**
 * Soak: bounded churn of connect / send / echo / close cycles with many in
 * flight, asserting that `server.connections` returns to empty and that
 * memory returns near its baseline, and printing the figures.
 *
 * The default run (20 000 cycles, 200 in flight) takes about 25 s on a
 * 2-core machine; `deno task soak` runs a longer one. `ANYWS_SOAK_CYCLES`
 * and `ANYWS_SOAK_CONCURRENCY` override the size.
 *
 * Memory is compared after a full garbage collection when `gc()` is exposed
 * (`--v8-flags=--expose-gc`, as `deno task test` and `deno task soak` run
 * it); otherwise the heap figure includes garbage and only a loose bound is
 * checked.
 */

import { assert, assertEquals } from "@std/assert";
import { connect } from "../client.ts";
import { listen, within, wsUrl } from "./_fixture.ts";

const CYCLES = Number(Deno.env.get("ANYWS_SOAK_CYCLES") ?? "20000");
const CONCURRENCY = Number(Deno.env.get("ANYWS_SOAK_CONCURRENCY") ?? "200");
const MiB = 1024 * 1024;
const ROUND = 5000;

const gc = (globalThis as { gc?: () => void }).gc;

/** Collects garbage when possible, then reads memory usage. */
function memory(): Deno.MemoryUsage {
  gc?.();
  gc?.();
  return Deno.memoryUsage();
}

/** Waits until `server.connections` is empty, bounded. */
async function drained(server: { connections: ReadonlySet<unknown> }) {
  for (let i = 0; i < 1000 && server.connections.size > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test(`${CYCLES} connect/send/close cycles with ${CONCURRENCY} in flight leave no connection behind and memory near its baseline`, async () => {
  await using server = listen({
    closeTimeout: 30_000,
    onEstablish(conn) {
      conn.on("message", (conn, message) => conn.send(message));
    },
  });
  const url = wsUrl(server);
  let next = 0;
  const failures = new Map<string, number>();
  const fail = (what: string) =>
    failures.set(what, (failures.get(what) ?? 0) + 1);
  const cycle = async (i: number) => {
    // Generous timeouts: on a loaded machine a close handshake can stall for
    // seconds (GC, other processes); a lost one would still be caught.
    const conn = await connect(url, { timeout: 30_000, closeTimeout: 30_000 });
    conn.send(`hello ${i}`);
    const echo = await conn.nextMessage({ timeout: 30_000 });
    if (`${echo}` !== `hello ${i}`) fail("wrong echo");
    const info = await conn.close(1000).closed;
    if (info.code !== 1000) {
      fail(`closed with ${info.code}: ${info.error?.message ?? info.reason}`);
    }
  };
  const run = async (cycles: number) => {
    const limit = next + cycles;
    const worker = async () => {
      while (next < limit) await cycle(next++);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await drained(server);
  };

  // Warm up (JIT, pools, allocator arenas) before taking the baseline: RSS
  // climbs during the first few thousand cycles, then stays flat.
  await within(run(Math.min(CYCLES, 4000)), "the warm-up", 60);
  const base = memory();
  const started = performance.now();
  // In rounds, collecting garbage between them: V8 keeps the pages of a heap
  // grown by garbage, which would hide a native leak behind heap sizing.
  const rss: number[] = [];
  for (let done = 0; done < CYCLES; done += ROUND) {
    await within(run(Math.min(ROUND, CYCLES - done)), "a soak round", 120);
    rss.push(memory().rss / MiB);
  }
  const seconds = (performance.now() - started) / 1000;
  const after = memory();

  assertEquals(Object.fromEntries(failures), {});
  assertEquals(server.connections.size, 0);
  const rssGrowth = (after.rss - base.rss) / MiB;
  const heapGrowth = (after.heapUsed - base.heapUsed) / MiB;
  console.log(
    `soak: ${CYCLES} cycles, ${CONCURRENCY} in flight, ${
      seconds.toFixed(1)
    } s (${(CYCLES / seconds).toFixed(0)} cycles/s); RSS ${
      (base.rss / MiB).toFixed(1)
    } -> ${(after.rss / MiB).toFixed(1)} MiB (${rssGrowth >= 0 ? "+" : ""}${
      rssGrowth.toFixed(1)
    }); heap used ${(base.heapUsed / MiB).toFixed(2)} -> ${
      (after.heapUsed / MiB).toFixed(1)
    } MiB${
      gc ? " after gc()" : " (no gc(): includes garbage)"
    }; RSS after each round of ${ROUND}: ${
      rss.map((value) => value.toFixed(0)).join(", ")
    } MiB`,
  );
  // After a full GC, 100 bytes kept per cycle would already show (2 MiB).
  const heapBound = gc ? 1 + CYCLES * 50 / MiB : 256;
  assert(
    heapGrowth < heapBound,
    `heap grew by ${heapGrowth.toFixed(2)} MiB (bound ${heapBound.toFixed(1)})`,
  );
  if (gc) {
    // The first round after the baseline may still grow the allocator's
    // arenas; from then on a native leak of ~1 KiB per cycle would show.
    assert(rssGrowth < 64, `RSS grew by ${rssGrowth.toFixed(1)} MiB`);
    const creep = rss[rss.length - 1]! - rss[0]!;
    const creepBound = 4 + (CYCLES - ROUND) * 512 / MiB;
    assert(
      creep < creepBound,
      `RSS crept by ${creep.toFixed(1)} MiB after the first round (bound ${
        creepBound.toFixed(1)
      })`,
    );
  }
});
