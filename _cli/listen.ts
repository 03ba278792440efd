/**
 * The CLI's `--listen` mode: a server for quick tests that echoes (or only
 * prints) every message, shows who connects and how they leave, and in a
 * terminal sends each typed line to every client.
 *
 * @module
 */

import type { Connection } from "../connection.ts";
import { serve, type Server } from "../server.ts";
import { type CliOptions, EXIT } from "./args.ts";
import { formatClose, formatMessage } from "./format.ts";
import { columns, feedKeys, onStopSignals, writeErr, writeOut } from "./io.ts";
import { LineEditor } from "./line_editor.ts";

/**
 * Runs the server until Ctrl+C (or SIGINT/SIGTERM), then closes every
 * connection with 1001 and stops.
 *
 * @returns The exit status.
 */
export async function runListen(options: CliOptions): Promise<number> {
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  let editor: LineEditor | undefined;
  // In a terminal everything goes above the prompt; otherwise messages go
  // to stdout and status lines to stderr.
  const show = (text: string) =>
    editor ? editor.print(text) : writeOut(`${text}\n`);
  const status = (text: string, always = false) => {
    if (options.quiet && !always) return;
    if (editor) editor.print(text);
    else writeErr(`${text}\n`);
  };

  let count = 0;
  let server: Server;
  try {
    server = serve({
      port: options.port,
      hostname: options.host,
      protocols: options.protocols,
      onListen({ hostname, port }) {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        status(
          `Listening on ws://${host}:${port}/ (${
            options.print ? "printing" : "echoing"
          } messages). ${
            interactive ? "Type to send to every client; " : ""
          }Ctrl+C stops.`,
          true,
        );
      },
      onEstablish(conn: Connection, request: Request) {
        const id = `#${++count}`;
        const from = conn.remoteAddr
          ? ` from ${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`
          : "";
        const path = new URL(request.url).pathname;
        status(
          `* ${id} connected${from} to ${path}${
            conn.subprotocol ? ` (subprotocol ${conn.subprotocol})` : ""
          }`,
        );
        conn.on("each_message", (conn, message) => {
          const shown = formatMessage(message, {
            json: options.json,
            terminal: interactive || Deno.stdout.isTerminal(),
          });
          show(`${id} < ${shown.replaceAll("\n", "\n  ")}`);
          if (!options.print) conn.send(message);
        });
        conn.closed.then((info) =>
          status(`* ${id} closed: ${formatClose(info)}`)
        );
      },
    });
  } catch (error) {
    writeErr(
      `anyws: cannot listen on ${options.host}:${options.port}: ${
        (error as Error).message
      }\n`,
    );
    return EXIT.CONNECT_FAILED;
  }

  const stop = () => server.shutdown({ timeout: 2000 });
  const stopSignals = onStopSignals(stop);
  if (interactive) {
    editor = new LineEditor({
      write: writeOut,
      columns,
      line(text) {
        const sent = server.broadcast(text);
        if (sent === 0) editor!.print("* not sent: no client is connected");
      },
      end: stop,
    });
    Deno.stdin.setRaw(true);
    editor.start();
    feedKeys(editor);
  }
  try {
    await server.finished;
  } finally {
    editor?.stop();
    if (interactive) Deno.stdin.setRaw(false);
    stopSignals();
  }
  status("Stopped.", true);
  return EXIT.OK;
}
