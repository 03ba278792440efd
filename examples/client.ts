/**
 * A command-line client: connects, sends each argument as a text message,
 * prints each reply, and closes with 1000.
 *
 * From a clone of the repository (works without access to jsr.io):
 *
 * ```sh
 * deno task example:client [url] [message...]
 * deno task example:client ws://127.0.0.1:8000/ hello quit
 * deno task example:client ws://127.0.0.1:8000/ws '{"type":"say","name":"cli","text":"hi"}'
 * ```
 *
 * With access to jsr.io, the plain command works too:
 *
 * ```sh
 * deno run --allow-net examples/client.ts ws://127.0.0.1:8000/ hello quit
 * ```
 *
 * Copied into a project of your own, import from `jsr:@anyws/anyws` (after
 * `deno add jsr:@anyws/anyws`, from `@anyws/anyws`) instead of `../mod.ts`.
 *
 * The URL defaults to `ws://localhost:8000/ws` (the chat demo) and the
 * message to one line. Replies go to stdout, one per line (binary replies as
 * hex); progress and errors go to stderr. Exit code 0 on success, 1 when the
 * connection fails or a reply does not come.
 *
 * @module
 */

import { connect, ConnectError, ConnectionClosedError } from "../mod.ts";

/** How long to wait for the connection, and then for each reply. */
const TIMEOUT_MS = 10_000;

const [url = "ws://localhost:8000/ws", ...args] = Deno.args;
const messages = args.length > 0 ? args : ["hello from anyws"];

let conn;
try {
  conn = await connect(url, { timeout: TIMEOUT_MS });
} catch (error) {
  if (!(error instanceof ConnectError)) throw error;
  console.error(`client: ${error.message}`);
  Deno.exit(1);
}
console.error(`client: connected to ${conn.url}`);

try {
  // One message, one reply: the echo server and the chat demo both answer
  // every message (the chat demo may interleave other people's lines).
  for (const text of messages) {
    conn.send(text);
    const reply = await conn.nextMessage({ timeout: TIMEOUT_MS });
    console.log(
      reply.isText() ? reply.decodedBody() : toHex(reply.body),
    );
  }
} catch (error) {
  if (error instanceof ConnectionClosedError) {
    // The server closed first, e.g. after "quit": that is an answer too.
    console.error(
      `client: the server closed the connection (${error.message})`,
    );
    Deno.exit(error.wasClean ? 0 : 1);
  }
  if (error instanceof DOMException && error.name === "TimeoutError") {
    console.error(`client: ${error.message}`);
    conn.close(1000);
    await conn.closed;
    Deno.exit(1);
  }
  throw error;
}

const { code, reason } = await conn.close(1000).closed;
console.error(`client: closed (${code}${reason ? ` ${reason}` : ""})`);

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}
