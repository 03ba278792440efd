/**
 * What the Deno contenders of `deno task bench` answer on their HTTP side,
 * beside the WebSocket upgrade. Node and Bun answer the same in their own
 * files:
 *
 * - `GET /stats[?gc=minor|full]`: a garbage collection if asked (before
 *   reading, so that a window ending with it pays for the garbage it made),
 *   then `{ cpu, system, heap, rss, open }`: the CPU time the whole process
 *   has used so far in µs (getrusage: every thread, microsecond resolution,
 *   unlike /proc/<pid>/stat's 10 ms ticks) and the part of it spent in the
 *   kernel, the JS heap in use and the RSS in bytes, and how many WebSocket
 *   connections are open.
 * - `GET /broadcast`: the send loop, timed here: `{ sent, loopMicros,
 *   loopCpuMicros }`. The writes themselves happen after the loop, on the
 *   event loop; the load generator's CPU window covers those.
 * - `GET /exit`: exits cleanly (so that `--cpu-prof` writes its profile).
 *
 * @module
 */

import process from "node:process";

const gc = (globalThis as { gc?: (options?: { type?: string }) => void }).gc;

/** The JSON of `GET /stats`. */
export interface Stats {
  cpu: number;
  system: number;
  heap: number;
  rss: number;
  open: number;
}

/** The JSON of `GET /broadcast`. */
export interface BroadcastTiming {
  sent: number;
  loopMicros: number;
  loopCpuMicros: number;
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Runs `loop` (which returns how many it sent to) and times it. */
export function timeBroadcast(loop: () => number): BroadcastTiming {
  const cpu = cpuMicros();
  const start = performance.now();
  const sent = loop();
  const loopMicros = (performance.now() - start) * 1000;
  return { sent, loopMicros, loopCpuMicros: cpuMicros() - cpu };
}

/**
 * Answers the bench's HTTP paths, or `undefined` for any other path.
 *
 * @param request The HTTP request.
 * @param open How many WebSocket connections are open now.
 * @param broadcast Sends one 64-byte text message to every open connection
 * and returns how many it went to.
 */
export function answer(
  request: Request,
  open: () => number,
  broadcast: () => number,
): Response | undefined {
  const url = new URL(request.url);
  switch (url.pathname) {
    case "/stats": {
      const kind = url.searchParams.get("gc");
      if (kind === "minor") gc?.({ type: "minor" });
      else if (kind === "full") gc?.();
      const memory = Deno.memoryUsage();
      const { user, system } = process.cpuUsage();
      const stats: Stats = {
        cpu: user + system,
        system,
        heap: memory.heapUsed,
        rss: memory.rss,
        open: open(),
      };
      return Response.json(stats);
    }
    case "/broadcast":
      return Response.json(timeBroadcast(broadcast));
    case "/exit":
      setTimeout(() => Deno.exit(0), 10);
      return new Response("bye");
  }
  return undefined;
}

/** The 64-byte text message every contender broadcasts. */
export const BROADCAST = "b".repeat(64);
