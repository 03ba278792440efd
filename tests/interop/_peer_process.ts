/**
 * A peer program we did not write, run as a child process that reports
 * what it sees as lines on stdout (`READY <port>`, `OPEN <protocol>`,
 * `CLOSED <code> <reason>`), and that the test can kill abruptly.
 *
 * @module
 */

import { within } from "../_fixture.ts";

/** What the scenarios need from a peer, whether a process or a browser page. */
export interface Peer extends AsyncDisposable {
  /** Waits for the peer's next reported line; `what` names it in errors. */
  nextLine(what: string): Promise<string>;
  /** Ends the peer abruptly (SIGKILL), with no close handshake. */
  kill(): Promise<void>;
}

/** Lines pushed by a producer, awaited one at a time by the test. */
export class LineQueue {
  #lines: string[] = [];
  #waiter: PromiseWithResolvers<void> | undefined;
  #ended = false;

  /** Adds a line. */
  push(line: string): void {
    this.#lines.push(line);
    this.#waiter?.resolve();
  }

  /** No more lines will come. */
  end(): void {
    this.#ended = true;
    this.#waiter?.resolve();
  }

  /** The next line, or `undefined` once ended and drained. */
  async shift(): Promise<string | undefined> {
    // Bounded: each pass either returns or waits for one push/end.
    for (;;) {
      if (this.#lines.length > 0) return this.#lines.shift();
      if (this.#ended) return undefined;
      this.#waiter = Promise.withResolvers();
      await this.#waiter.promise;
      this.#waiter = undefined;
    }
  }
}

/** A peer program started with {@linkcode spawnPeer}. */
export class PeerProcess implements Peer {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  readonly #lines = new LineQueue();
  readonly #stdoutDone: Promise<void>;
  readonly #stderr: Promise<string>;
  #exited = false;

  constructor(name: string, command: string, args: string[], cwd?: string) {
    this.name = name;
    this.#child = new Deno.Command(command, {
      args,
      ...(cwd ? { cwd } : {}),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child.status.then(() => this.#exited = true);
    this.#stdoutDone = this.#readLines(this.#child.stdout);
    this.#stderr = new Response(this.#child.stderr).text();
  }

  async #readLines(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) this.#lines.push(line.replace(/\r$/, ""));
    }
    if (rest) this.#lines.push(rest);
    this.#lines.end();
  }

  async nextLine(what: string): Promise<string> {
    const line = await within(this.#lines.shift(), `${this.name}: ${what}`, 10);
    if (line === undefined) {
      const status = await this.#child.status;
      throw new Error(
        `${this.name} exited (code ${status.code}) before ${what}; its stderr:\n${await this
          .#stderr}`,
      );
    }
    return line;
  }

  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // It exited between the check and the kill.
      }
    }
    await this.#child.status;
  }

  /** The peer's stderr so far is only complete after exit; for diagnostics. */
  stderr(): Promise<string> {
    return this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
    await this.#stdoutDone;
    await this.#stderr;
  }
}

/**
 * Starts a peer program and, for a server, waits for `READY <port>`.
 *
 * @returns The process, and the port when it is a server.
 */
export async function spawnPeer(
  name: string,
  command: string,
  args: string[],
  options: { cwd?: string; server?: boolean } = {},
): Promise<{ peer: PeerProcess; port?: number }> {
  const peer = new PeerProcess(name, command, args, options.cwd);
  if (!options.server) return { peer };
  try {
    const line = await peer.nextLine("READY <port>");
    const port = Number(/^READY (\d+)$/.exec(line)?.[1]);
    if (!port) throw new Error(`${name} said "${line}", expected READY <port>`);
    return { peer, port };
  } catch (error) {
    await peer[Symbol.asyncDispose]();
    throw error;
  }
}

/**
 * The absolute path of `command` on the PATH, or `undefined`. Spawning a bare
 * "node" is not enough: without one on the PATH, Deno runs itself as node.
 */
export function findOnPath(command: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const path = `${dir}/${command}`;
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
