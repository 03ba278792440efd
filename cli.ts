/**
 * `anyws`: a WebSocket client and test server for the terminal, like
 * `python -m websockets` and `wscat`.
 *
 * ```sh
 * deno run -A jsr:@anyws/anyws/cli ws://127.0.0.1:8000/          # connect
 * deno run -A jsr:@anyws/anyws/cli --listen 8000                 # echo server
 * deno run -A jsr:@anyws/anyws/cli --help
 * deno install -g -A -n anyws jsr:@anyws/anyws/cli               # then: anyws URL
 * ```
 *
 * (`--allow-net` is the only permission it needs.) In a terminal, type a
 * message and press Enter to send it; what arrives is shown after `< `, text
 * as it is and binary as its length and hex bytes; `--json` pretty-prints
 * JSON. Ctrl+D or Ctrl+C closes with 1000 and shows the close code and
 * reason. Add handshake headers with `-H "Name: value"` and offer
 * subprotocols with `-s name`.
 *
 * From a pipe, each line of stdin is sent as a text message and each message
 * received is printed on stdout; when stdin ends the connection is closed with
 * 1000 (`--wait SECONDS` keeps reading first). The exit status says how the
 * connection ended: see {@linkcode EXIT_STATUS}.
 *
 * ```sh
 * printf 'hello\nquit\n' | deno run -A jsr:@anyws/anyws/cli ws://127.0.0.1:8000/
 * ```
 *
 * @example Print the help
 * ```ts
 * import { main } from "@anyws/anyws/cli";
 *
 * const status = await main(["--help"]);
 * console.log(status); // 0
 * ```
 *
 * @module
 */

import { EXIT, HELP, parseArgs, UsageError } from "./_cli/args.ts";
import { runConnect } from "./_cli/connect.ts";
import { writeErr, writeOut } from "./_cli/io.ts";
import { runListen } from "./_cli/listen.ts";

/**
 * The exit statuses of the CLI, which say how the connection ended:
 *
 * | status | meaning |
 * | ------ | ------- |
 * | 0 | closed cleanly with 1000, or without a code (1005); `--listen` stopped |
 * | 1 | could not connect (refused, HTTP error, timeout) or listen |
 * | 2 | usage error (unknown option, missing URL, bad value) |
 * | 3 | closed cleanly with another code (1001 going away, 1011, 4000, ...) |
 * | 4 | dropped without a close handshake (1006), or the close timed out |
 *
 * @example Tell a script what happened
 * ```ts
 * import { EXIT_STATUS } from "@anyws/anyws/cli";
 *
 * console.log(EXIT_STATUS.CLOSED_WITH_ERROR_CODE); // 3
 * ```
 */
export const EXIT_STATUS: {
  readonly OK: 0;
  readonly CONNECT_FAILED: 1;
  readonly USAGE: 2;
  readonly CLOSED_WITH_ERROR_CODE: 3;
  readonly DROPPED: 4;
} = EXIT;

/**
 * Runs the CLI with a command line, as `deno run jsr:@anyws/anyws/cli`
 * does with its arguments; `--help` lists them.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status ({@linkcode EXIT_STATUS}), once the connection has
 * ended (or the server stopped). Reading the terminal may still be under way:
 * exit the process with the status, as the command line does.
 *
 * @example Refuse a bad command line
 * ```ts
 * import { EXIT_STATUS, main } from "@anyws/anyws/cli";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(await main(["--no-such-option"]), EXIT_STATUS.USAGE);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeErr(`anyws: ${error.message}\n`);
    return EXIT.USAGE;
  }
  if (options.mode === "help") {
    writeOut(HELP);
    return EXIT.OK;
  }
  return options.mode === "listen"
    ? await runListen(options)
    : await runConnect(options);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
