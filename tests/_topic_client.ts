/**
 * Client-side helpers for servers speaking the protocol of
 * `_topic_protocol.ts`, and a spawned server process for the cross-process
 * topic tests.
 *
 * @module
 */

import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { UNIT_MS, within } from "./_fixture.ts";

/**
 * Connects to a server speaking {@linkcode topicProtocol} and subscribes to
 * `topics`, resolving once each subscription is confirmed.
 *
 * @param url The server's URL.
 * @param topics The topics to join.
 */
export async function joinTopics(
  url: string,
  ...topics: string[]
): Promise<Connection> {
  const conn = await within(connect(url), `a connection to ${url}`);
  for (const topic of topics) {
    conn.send(`sub ${topic}`);
    await expectText(conn, `subscribed ${topic}`);
  }
  return conn;
}

/**
 * Reads the next message and checks that it is the text `expected`.
 *
 * @param conn The client connection.
 * @param expected The text message.
 * @param units Time units to wait.
 */
export async function expectText(
  conn: Connection,
  expected: string,
  units = 5,
): Promise<void> {
  const message = await within(
    conn.nextMessage(),
    `the message "${expected}"`,
    units,
  );
  if (!message.isText() || message.decodedBody() !== expected) {
    throw new Error(
      `Expected the text message "${expected}", got ${
        message.isText() ? `"${message.decodedBody()}"` : "a binary message"
      }`,
    );
  }
}

// Offline, @std comes from a mirror (JSR_URL) that must stay out of deno.lock
// (see tools/with_std.ts); children inherit JSR_URL with the environment.
const LOCK_ARGS = Deno.env.get("JSR_URL") ? ["--no-lock"] : [];
const ROOT = new URL("../", import.meta.url);

/**
 * A server in a child Deno process. `url` resolves with the `ws://` form of
 * the first `http://` or `ws://` address it prints, and rejects if it exits
 * first.
 */
export class ServerProcess implements AsyncDisposable {
  readonly url: Promise<string>;
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  #output = "";
  #ended: Promise<Deno.CommandStatus> | undefined;

  /**
   * Spawns `deno <subcommand> [--no-lock] <args...>` from the repository root.
   *
   * @param subcommand `run` or `serve`.
   * @param args The rest of the command line.
   * @param env Extra environment variables.
   */
  constructor(
    subcommand: "run" | "serve",
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [subcommand, ...LOCK_ARGS, ...args],
      env,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const found = Promise.withResolvers<string>();
    this.url = found.promise;
    this.url.catch(() => {}); // reported to whoever awaits it
    const drain = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        this.#output += text;
        const match = /\b(?:http|ws):\/\/([^\s/]+:\d+)/.exec(this.#output);
        if (match) found.resolve(`ws://${match[1]}/`);
      }
    };
    this.#drained = Promise.all([
      drain(this.#child.stdout),
      drain(this.#child.stderr),
    ]).then(() =>
      found.reject(
        new Error(
          `deno ${subcommand} ${
            args.join(" ")
          } ended without printing its address:\n${this.#output}`,
        ),
      )
    );
  }

  /** Everything the process printed so far (stdout and stderr). */
  get output(): string {
    return this.#output;
  }

  /**
   * Sends `signal` (if still running) and waits for the exit; SIGKILL after
   * five time units. (On Deno 2.9.6 an open BroadcastChannel keeps
   * `deno serve` from finishing its SIGTERM shutdown.)
   *
   * @param signal The first signal.
   */
  stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    return this.#ended ??= (async () => {
      const send = (name: Deno.Signal) => {
        try {
          this.#child.kill(name);
        } catch {
          // Already exited.
        }
      };
      send(signal);
      const timer = setTimeout(() => send("SIGKILL"), 5 * UNIT_MS);
      const status = await this.#child.status;
      clearTimeout(timer);
      await this.#drained;
      return status;
    })();
  }

  /** Stops the process. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
