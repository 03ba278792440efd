/**
 * Shared test fixture: one time unit, deadlines instead of sleeps, and a
 * loopback server on port 0.
 *
 * @module
 */

import { deadline } from "@std/async/deadline";
import { serve, type ServeOptions, type Server } from "../server.ts";

/**
 * The base time unit in milliseconds. Scale every timeout in the tests from
 * it; set `ANYWS_TEST_TIME_SCALE=3` on a slow machine.
 */
export const UNIT_MS = 1000 *
  Number(Deno.env.get("ANYWS_TEST_TIME_SCALE") ?? "1");

/** Awaits `promise`, failing with `what` if it takes longer than `units` time units. */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  units = 5,
): Promise<T> {
  try {
    return await deadline(promise, units * UNIT_MS);
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      throw new Error(
        `Timed out after ${units * UNIT_MS} ms waiting for ${what}`,
      );
    }
    throw error;
  }
}

/** Starts `serve()` on 127.0.0.1, port 0, silently. Dispose it with `await using`. */
export function listen(
  options: Omit<ServeOptions, "port" | "hostname" | "onListen">,
): Server {
  return serve({ port: 0, hostname: "127.0.0.1", onListen() {}, ...options });
}

/** The `ws://` URL of a server started by {@linkcode listen}. */
export function wsUrl(server: Server, path = "/"): string {
  return `ws://127.0.0.1:${server.addr.port}${path}`;
}
