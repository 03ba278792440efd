/**
 * A private `redis-server` for the Redis tests: started on a free loopback
 * port with persistence off, stopped (and restartable on the same port) by
 * the test.
 *
 * Without a `redis-server` on the PATH the Redis tests are skipped with a
 * printed reason, unless `ANYWS_REQUIRE_PEERS=1` (CI sets it): then they run
 * and fail.
 *
 * @module
 */

import { within } from "./_fixture.ts";

const COMMAND = "redis-server";

/** Why Redis tests cannot run here, or `undefined` when they can. */
export function redisMissing(): string | undefined {
  try {
    const { success } = new Deno.Command(COMMAND, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success ? undefined : `"${COMMAND} --version" failed`;
  } catch (error) {
    return `${COMMAND} is not installed (${
      (error as Error).message
    }); on Debian: apt-get install redis-server`;
  }
}

/**
 * Whether to skip the Redis tests; prints the reason once when skipping.
 */
export function skipRedis(): boolean {
  const missing = redisMissing();
  if (!missing) return false;
  if (Deno.env.get("ANYWS_REQUIRE_PEERS") === "1") return false; // fail instead
  console.log(`Skipping the Redis tests: ${missing}`);
  return true;
}

/** A free TCP port on 127.0.0.1 (free when this returns). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A running `redis-server`; `await using` stops it. */
export class RedisServer implements AsyncDisposable {
  readonly port: number;
  #child: Deno.ChildProcess | undefined;
  #drained: Promise<void> | undefined;
  #log = "";

  private constructor(port: number) {
    this.port = port;
  }

  /**
   * Starts a server on a free port and waits until it accepts connections.
   *
   * @throws {Error} If it cannot start (including when it is not installed).
   */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(freePort());
    await server.restart();
    return server;
  }

  /** The `redis://` URL of this server. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Whether the server process is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the server (again) on the same port. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("Cannot restart redis-server: it runs");
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(COMMAND, {
        args: [
          "--port",
          String(this.port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new Error(
        `Cannot start ${COMMAND} for the Redis tests: ${
          (error as Error).message
        } (ANYWS_REQUIRE_PEERS=1 requires it; on Debian: apt-get install redis-server)`,
        { cause: error },
      );
    }
    this.#child = child;
    const ready = Promise.withResolvers<void>();
    const drain = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        this.#log += text;
        if (this.#log.includes("Ready to accept connections")) ready.resolve();
      }
    };
    this.#drained = Promise.all([drain(child.stdout), drain(child.stderr)])
      .then(() =>
        ready.reject(
          new Error(`${COMMAND} exited before it was ready:\n${this.#log}`),
        )
      );
    ready.promise.catch(() => {});
    try {
      await within(ready.promise, `${COMMAND} on port ${this.port}`, 10);
    } catch (error) {
      await this.stop();
      throw error;
    }
    this.#log = "";
  }

  /** Stops the server (SIGTERM, no save) and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
    await this.#drained;
  }

  /** Stops the server. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
