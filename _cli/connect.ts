/**
 * The CLI's client: connects, sends what is typed (a line editor in a
 * terminal) or piped (each line of stdin), prints what arrives, and turns how
 * the connection ended into the exit status.
 *
 * @module
 */

import { connect, ConnectError } from "../client.ts";
import {
  type CloseInfo,
  type Connection,
  ConnectionClosedError,
} from "../connection.ts";
import { type CliOptions, EXIT } from "./args.ts";
import { formatClose, formatMessage } from "./format.ts";
import {
  columns,
  feedKeys,
  onStopSignals,
  readLines,
  writeErr,
  writeOut,
} from "./io.ts";
import { LineEditor } from "./line_editor.ts";

/** The exit status for how a connection ended (see `EXIT`). */
export function exitStatus(info: CloseInfo): number {
  if (!info.wasClean || info.code === 1006) return EXIT.DROPPED;
  if (info.code === 1000 || info.code === 1005) return EXIT.OK;
  return EXIT.CLOSED_WITH_ERROR_CODE;
}

/**
 * Runs the client until the connection ends.
 *
 * @returns The exit status.
 */
export async function runConnect(options: CliOptions): Promise<number> {
  let conn: Connection;
  try {
    conn = await connect(options.url, {
      headers: options.headers,
      protocols: options.protocols,
      timeout: options.timeout,
      closeTimeout: options.timeout,
    });
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    writeErr(`anyws: ${error.message}\n`);
    return EXIT.CONNECT_FAILED;
  }
  const connected = `Connected to ${conn.url}${
    conn.subprotocol ? ` (subprotocol ${conn.subprotocol})` : ""
  }.`;
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const info = interactive
    ? await inTerminal(conn, options, connected)
    : await fromPipe(conn, options, connected);
  return exitStatus(info);
}

/** A person at a terminal: a prompt, `< ` before each message. */
async function inTerminal(
  conn: Connection,
  options: CliOptions,
  connected: string,
): Promise<CloseInfo> {
  const editor = new LineEditor({
    write: writeOut,
    columns,
    line(text) {
      if (conn.readyState === WebSocket.OPEN) conn.send(text);
      else editor.print("* not sent: the connection is closing");
    },
    end() {
      conn.close(1000);
    },
  });
  Deno.stdin.setRaw(true);
  try {
    if (!options.quiet) {
      editor.print(connected);
      editor.print(
        "Type a message and press Enter to send it. Ctrl+D or Ctrl+C closes.",
      );
    }
    editor.start();
    conn.on("each_message", (_conn, message) => {
      const shown = formatMessage(message, {
        json: options.json,
        terminal: true,
      });
      editor.print(`< ${shown.replaceAll("\n", "\n  ")}`);
    });
    feedKeys(editor);
    const info = await conn.closed;
    editor.stop();
    writeOut(`Connection closed: ${formatClose(info)}.\r\n`);
    return info;
  } finally {
    Deno.stdin.setRaw(false);
  }
}

/** A script: stdin lines out, messages to stdout, status to stderr. */
async function fromPipe(
  conn: Connection,
  options: CliOptions,
  connected: string,
): Promise<CloseInfo> {
  const status = (text: string) => {
    if (!options.quiet) writeErr(`${text}\n`);
  };
  // Listening for SIGINT before saying "Connected": a script that
  // interrupts once it reads that line gets a clean close.
  const stopSignals = onStopSignals(() => conn.close(1000));
  status(connected);
  const terminal = Deno.stdout.isTerminal();
  conn.on("each_message", (_conn, message) => {
    writeOut(
      `${formatMessage(message, { json: options.json, terminal })}\n`,
    );
  });
  sendInput(conn, options.wait);
  const info = await conn.closed;
  stopSignals();
  status(`Connection closed: ${formatClose(info)}.`);
  return info;
}

/**
 * Sends each line of stdin, at the pace the connection takes them; when
 * stdin ends, waits up to `wait` ms for the server to close, then closes
 * with 1000.
 */
async function sendInput(conn: Connection, wait: number): Promise<void> {
  try {
    for await (const line of readLines(Deno.stdin.readable)) {
      await conn.write(line);
    }
  } catch (error) {
    if (error instanceof ConnectionClosedError) return; // the end is reported
    throw error;
  }
  if (wait > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      conn.closed,
      ...(wait === Infinity
        ? []
        : [new Promise((resolve) => timer = setTimeout(resolve, wait))]),
    ]);
    clearTimeout(timer);
  }
  conn.close(1000);
}
