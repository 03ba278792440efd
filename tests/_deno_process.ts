/**
 * A child `deno` process started from the repository root, for tests that
 * run a server the way users run it (examples, `deno serve`, several
 * `serve()` processes sharing Redis).
 *
 * @module
 */

import { within } from "./_fixture.ts";

const ROOT = new URL("../", import.meta.url);
// Offline, @std comes from a mirror (JSR_URL) that must stay out of deno.lock
// (see tools/with_std.ts); the child inherits JSR_URL with the environment.
const LOCK_ARGS = Deno.env.get("JSR_URL") ? ["--no-lock"] : [];
// Our servers stop within their 5 s shutdown timeout, plus some slack.
const EXIT_UNITS = 15;

/** How a process ended, with everything it printed. */
export interface Ended {
  status: Deno.CommandStatus;
  stdout: string;
  stderr: string;
}

/**
 * `deno <subcommand> [--no-lock] <args...>`. `address` resolves with the first
 * `http(s)://` or `ws(s)://` host:port it prints (on stdout or stderr), and
 * rejects if it exits first.
 */
export class DenoProcess implements AsyncDisposable {
  readonly address: Promise<URL>;
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  readonly #command: string;
  #stdout = "";
  #stderr = "";
  #ended: Promise<Ended> | undefined;

  /**
   * @param args The subcommand (`run`, `serve`, ...) and the rest of the
   * command line.
   * @param env Extra environment variables.
   */
  constructor(args: string[], env: Record<string, string> = {}) {
    const [subcommand = "run", ...rest] = args;
    this.#command = `deno ${args.join(" ")}`;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [subcommand, ...LOCK_ARGS, ...rest],
      env,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const found = Promise.withResolvers<URL>();
    this.address = found.promise;
    this.address.catch(() => {}); // reported to whoever awaits it
    const drain = async (
      stream: ReadableStream<Uint8Array>,
      append: (text: string) => void,
    ) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        append(text);
        const match = /\b(?:https?|wss?):\/\/[^\s/]+:\d+/.exec(this.output);
        if (match) found.resolve(new URL(match[0]));
      }
    };
    this.#drained = Promise.all([
      drain(this.#child.stdout, (text) => this.#stdout += text),
      drain(this.#child.stderr, (text) => this.#stderr += text),
    ]).then(() =>
      found.reject(
        new Error(
          `${this.#command} ended without printing its address.\n${this.output}`,
        ),
      )
    );
  }

  /** The `ws://host:port/` form of {@linkcode DenoProcess.address}. */
  get wsUrl(): Promise<string> {
    return this.address.then((address) => `ws://${address.host}/`);
  }

  /** Everything printed so far: stdout, then stderr. */
  get output(): string {
    return `stdout: ${this.#stdout}\nstderr: ${this.#stderr}`;
  }

  /** Waits for the process to exit on its own, and collects its output. */
  ended(): Promise<Ended> {
    return this.#ended ??= (async () => {
      const status = await this.#child.status;
      await this.#drained;
      return { status, stdout: this.#stdout, stderr: this.#stderr };
    })();
  }

  /**
   * Sends `signal` (if still running) and waits for the exit. A process
   * still running after {@linkcode EXIT_UNITS} is killed and the stop fails,
   * so a hanging shutdown fails the test instead of hanging the suite.
   *
   * @param signal The signal to stop with.
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Ended> {
    if (!this.#signal(signal)) return await this.ended();
    try {
      return await within(this.ended(), `the exit after ${signal}`, EXIT_UNITS);
    } catch (error) {
      this.#signal("SIGKILL");
      await this.ended();
      throw new Error(
        `${this.#command} did not exit after ${signal} (killed).\n${this.output}`,
        { cause: error },
      );
    }
  }

  /** Returns `false` when the process had already exited. */
  #signal(signal: Deno.Signal): boolean {
    try {
      this.#child.kill(signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops the process (SIGTERM). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
