/**
 * Topic fan-out across two processes through Redis, against the same
 * fan-out inside one process.
 *
 * Process B (a child) runs a `serve()` server with a `RedisBroker` and K
 * subscribers on topic "bench" (the WebSocket clients live in this process,
 * A). Then M binary messages of S bytes are published:
 * - `local`: by B's own server (no Redis hop to its subscribers);
 * - `redis`: by a server in A whose `RedisBroker` publishes to the same
 *   Redis, so each message goes A → Redis → B → K sockets.
 * The figure is deliveries per second (M × K / the time until every client
 * had all M), median of the runs, and the ratio redis/local within each run.
 *
 * ```sh
 * deno run -A bench/redis_fanout.ts [--subscribers=100] [--messages=2000] [--size=64] [--runs=3]
 * ```
 *
 * Uses `REDIS_URL` if set, else starts its own `redis-server` on a free
 * loopback port (Debian: apt-get install redis-server).
 *
 * @module
 */

import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { RedisBroker } from "../redis_broker.ts";
import { serve } from "../server.ts";

const TOPIC = "bench";

// ---- child: process B ------------------------------------------------------

if (Deno.args[0] === "--node") {
  const url = Deno.args[1]!;
  const server = serve({
    port: 0,
    hostname: "127.0.0.1",
    broker: new RedisBroker({ url }),
    onListen: ({ port }) => console.log(`ws://127.0.0.1:${port}/`),
    async onEstablish(conn, request) {
      if (new URL(request.url).pathname === "/control") {
        // "go M S": publish M messages of S bytes from this process.
        conn.on("message", async (conn, data) => {
          const [, m, s] = String(data).split(" ");
          const payload = new Uint8Array(Number(s));
          const sent: Promise<void>[] = [];
          for (let i = 0; i < Number(m); i++) {
            sent.push(server.publish(TOPIC, payload));
          }
          await Promise.all(sent);
          conn.send("done");
        });
        return;
      }
      await conn.subscribe(TOPIC);
      conn.send("ready");
    },
  });
  Deno.addSignalListener("SIGTERM", async () => {
    await server.shutdown({ timeout: 1000 });
    Deno.exit(0);
  });
} else {
  await main();
}

// ---- parent: process A -----------------------------------------------------

async function main(): Promise<void> {
  const flags = new Map(
    Deno.args.map((arg) =>
      arg.replace(/^--/, "").split("=", 2) as [string, string]
    ),
  );
  const K = Number(flags.get("subscribers") ?? 100);
  const M = Number(flags.get("messages") ?? 2000);
  const S = Number(flags.get("size") ?? 64);
  const RUNS = Number(flags.get("runs") ?? 3);

  const redis = Deno.env.get("REDIS_URL") ? undefined : await startRedis();
  const redisUrl = Deno.env.get("REDIS_URL") ?? redis!.url;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...lockArgs(),
      import.meta.filename!,
      "--node",
      redisUrl,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = (await lines.read()).value ?? "";
  const nodeUrl = /ws:\/\/\S+/.exec(first)?.[0];
  if (!nodeUrl) throw new Error(`the child printed no address: ${first}`);

  await using publisher = serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen() {},
    broker: new RedisBroker({ url: redisUrl }),
    onEstablish() {},
  });

  // K subscribers on B, each counting what it receives.
  const clients: Connection[] = [];
  let waiting: { remaining: number; done: () => void } | undefined;
  const counts: number[] = [];
  for (let i = 0; i < K; i++) {
    const conn = await connect(nodeUrl);
    await conn.nextMessage(); // "ready": subscribed through Redis
    const index = i;
    counts.push(0);
    conn.on("message", () => {
      if (++counts[index]! === M && waiting && --waiting.remaining === 0) {
        waiting.done();
      }
    });
    clients.push(conn);
  }
  const control = await connect(new URL("/control", nodeUrl).href);

  const payload = new Uint8Array(S);
  const round = async (mode: "local" | "redis"): Promise<number> => {
    counts.fill(0);
    const all = Promise.withResolvers<void>();
    waiting = { remaining: K, done: all.resolve };
    const start = performance.now();
    if (mode === "local") {
      control.send(`go ${M} ${S}`);
    } else {
      const sent: Promise<void>[] = [];
      for (let i = 0; i < M; i++) sent.push(publisher.publish(TOPIC, payload));
      await Promise.all(sent);
    }
    await all.promise;
    const seconds = (performance.now() - start) / 1000;
    if (mode === "local") await control.nextMessage(); // "done"
    return (M * K) / seconds;
  };

  await round("local"); // warm-up
  await round("redis");
  const figures = { local: [] as number[], redis: [] as number[] };
  const ratios: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const local = await round("local");
    const viaRedis = await round("redis");
    figures.local.push(local);
    figures.redis.push(viaRedis);
    ratios.push(viaRedis / local);
  }

  const k = (n: number) => `${Math.round(n / 1000)}k`;
  console.log(
    `topic fan-out, ${M} messages × ${K} subscribers, ${S} B binary, median of ${RUNS} runs:`,
  );
  console.log(
    `  local (publisher in the subscribers' process): ${
      k(median(figures.local))
    } deliveries/s`,
  );
  console.log(
    `  redis (publisher in another process, via Redis): ${
      k(median(figures.redis))
    } deliveries/s (${
      Math.round(median(figures.redis) / K)
    } publishes/s), ratio to local ${median(ratios).toFixed(2)}`,
  );
  console.log(
    JSON.stringify({
      scenario: "redis_fanout",
      subscribers: K,
      messages: M,
      size: S,
      runs: RUNS,
      localDeliveriesPerSecond: Math.round(median(figures.local)),
      redisDeliveriesPerSecond: Math.round(median(figures.redis)),
      ratio: Number(median(ratios).toFixed(3)),
    }),
  );

  for (const conn of [...clients, control]) await conn.close().closed;
  child.kill("SIGTERM");
  await child.status;
  lines.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await redis?.stop();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Offline, @std comes from a mirror that must stay out of deno.lock. */
function lockArgs(): string[] {
  return Deno.env.get("JSR_URL") ? ["--no-lock"] : [];
}

async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const process = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let log = "";
  while (!log.includes("Ready to accept connections")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`redis-server exited:\n${log}`);
    log += value;
  }
  // Keep draining so the server never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done);
  })();
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      process.kill("SIGTERM");
      await process.status;
    },
  };
}
