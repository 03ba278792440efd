/**
 * The command line of the anyws CLI: the options, their parsing, the help
 * text and the exit statuses.
 *
 * @module
 */

/** Exit statuses: they say how the connection ended. */
export const EXIT = {
  /** Closed cleanly with 1000 or without a code (1005); `--listen` stopped. */
  OK: 0,
  /** Could not connect (refused, HTTP error, timeout) or listen. */
  CONNECT_FAILED: 1,
  /** A usage error: unknown option, missing URL, bad value. */
  USAGE: 2,
  /** Closed cleanly with another code (1001, 1008, 1011, 4000, ...). */
  CLOSED_WITH_ERROR_CODE: 3,
  /** Dropped without a close handshake (1006), or the close timed out. */
  DROPPED: 4,
} as const;

/** What the command line asks for. */
export interface CliOptions {
  /** `connect`, `listen`, or `help`. */
  mode: "connect" | "listen" | "help";
  /** The URL to connect to (connect mode). */
  url: string;
  /** Extra handshake headers, in order. */
  headers: [string, string][];
  /** Subprotocols to offer (connect) or speak (listen). */
  protocols: string[];
  /** Pretty-print JSON messages. */
  json: boolean;
  /** Print no status lines (connected, closed) on stderr. */
  quiet: boolean;
  /** Handshake and close timeout, in milliseconds. */
  timeout: number;
  /** After input ends: how long to keep reading before closing, in ms. */
  wait: number;
  /** The port to listen on (listen mode). */
  port: number;
  /** The address to listen on (listen mode). */
  host: string;
  /** Listen mode: print what arrives instead of echoing it. */
  print: boolean;
}

/** A command line that cannot be run; the message says why. */
export class UsageError extends Error {
  /**
   * @param message What is wrong with the command line.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const HELP = `anyws: a WebSocket client and test server for the terminal.

Run it with:  deno run --allow-net jsr:@anyws/anyws/cli [options] URL
or install:   deno install -g --allow-net -n anyws jsr:@anyws/anyws/cli

Usage:
  anyws [options] URL          connect, send lines typed or piped, print what arrives
  anyws --listen PORT [options]
                               run an echo (or --print) server on 127.0.0.1:PORT

Connect:
  -H, --header "NAME: VALUE"   add a handshake header (repeatable)
  -s, --subprotocol NAME       offer a subprotocol (repeatable); the server must pick one
      --json                   pretty-print messages that are JSON
  -w, --wait SECONDS           when input ends, keep printing for up to SECONDS
                               (or until the server closes) before closing;
                               "forever" waits for the server. Default: 0
  -t, --timeout SECONDS        handshake and close timeout. Default: 10
  -q, --quiet                  no status lines on stderr

Listen:
  -l, --listen PORT            listen on PORT (0 picks a free one) and echo every message
      --print                  print messages instead of echoing them
      --host ADDRESS           listen on ADDRESS. Default: 127.0.0.1
  -s, --subprotocol NAME       speak NAME when a client offers it (repeatable)
      --json                   pretty-print messages that are JSON

  -h, --help                   show this help

In a terminal, type a message and press Enter to send it; Up and Down recall
earlier lines; Ctrl+D (on an empty line) or Ctrl+C closes the connection with
1000. Received text is shown after "< ", binary as its length and hex bytes;
the close code and reason are shown at the end. With --listen, lines typed are
sent to every connected client.

From a pipe, each line of stdin is sent as a text message; when stdin ends the
connection is closed with 1000 (see --wait). Messages go to stdout, one per
line as they came; status lines go to stderr.

Exit status (how the connection ended):
  0  closed cleanly with 1000, or without a code (1005); --listen stopped
  1  could not connect (refused, HTTP error, timeout) or listen
  2  usage error
  3  closed with another code (e.g. 1001 going away, 1011, 4000)
  4  dropped without a close handshake (1006), or the close timed out

Examples:
  anyws ws://127.0.0.1:8000/
  anyws -H "Authorization: Bearer $TOKEN" -s chat.v1 --json wss://example.com/ws
  echo '{"type":"ping"}' | anyws --wait 2 ws://127.0.0.1:8000/ws
  anyws --listen 8000
`;

const DEFAULTS: CliOptions = {
  mode: "connect",
  url: "",
  headers: [],
  protocols: [],
  json: false,
  quiet: false,
  timeout: 10_000,
  wait: 0,
  port: 0,
  host: "127.0.0.1",
  print: false,
};

/**
 * Parses the command line.
 *
 * @param args The arguments after the program name.
 * @returns The options.
 * @throws {UsageError} For an unknown option, a missing or bad value, a
 * missing URL, or options that do not go together.
 */
export function parseArgs(args: readonly string[]): CliOptions {
  const options: CliOptions = { ...DEFAULTS, headers: [], protocols: [] };
  const positional: string[] = [];
  let listen = false;
  const rest = [...args];
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (arg === "--") {
      positional.push(...rest.splice(0));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    // --name=value is the same as --name value.
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      const next = inline ?? rest.shift();
      if (next === undefined) {
        throw new UsageError(`${name} needs a value (see --help)`);
      }
      return next;
    };
    const flag = () => {
      if (inline !== undefined) {
        throw new UsageError(`${name} takes no value`);
      }
    };
    switch (name) {
      case "-h":
      case "--help":
        flag();
        return { ...options, mode: "help" };
      case "-H":
      case "--header":
        options.headers.push(parseHeader(value()));
        break;
      case "-s":
      case "--subprotocol":
        options.protocols.push(parseToken(value(), name));
        break;
      case "--json":
        flag();
        options.json = true;
        break;
      case "-q":
      case "--quiet":
        flag();
        options.quiet = true;
        break;
      case "-w":
      case "--wait": {
        const raw = value();
        options.wait = raw === "forever"
          ? Infinity
          : seconds(raw, name, { zero: true });
        break;
      }
      case "-t":
      case "--timeout":
        options.timeout = seconds(value(), name, { zero: false });
        break;
      case "-l":
      case "--listen":
        listen = true;
        options.port = port(value());
        break;
      case "--print":
        flag();
        options.print = true;
        break;
      case "--host":
        options.host = value();
        break;
      default:
        throw new UsageError(`unknown option ${name} (see --help)`);
    }
  }
  if (listen) {
    if (positional.length > 0) {
      throw new UsageError(
        `--listen takes no URL (got ${positional[0]}): it starts a server`,
      );
    }
    if (options.headers.length > 0) {
      throw new UsageError("--header is for connecting, not with --listen");
    }
    return { ...options, mode: "listen" };
  }
  if (options.print) throw new UsageError("--print goes with --listen");
  if (positional.length === 0) {
    throw new UsageError("a URL to connect to is needed (see --help)");
  }
  if (positional.length > 1) {
    throw new UsageError(
      `one URL only (got ${positional.length}: ${positional.join(" ")})`,
    );
  }
  const url = positional[0]!;
  if (!/^(wss?|https?):\/\/./i.test(url)) {
    throw new UsageError(
      `not a WebSocket URL: ${url} (expected ws://, wss://, http:// or https://)`,
    );
  }
  return { ...options, url };
}

function parseHeader(raw: string): [string, string] {
  const colon = raw.indexOf(":");
  const name = colon > 0 ? raw.slice(0, colon).trim() : "";
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    throw new UsageError(
      `--header needs "NAME: VALUE", got ${JSON.stringify(raw)}`,
    );
  }
  return [name, raw.slice(colon + 1).trim()];
}

function parseToken(raw: string, option: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(raw)) {
    throw new UsageError(
      `${option} needs a token (letters, digits, !#$%&'*+.^_\`|~-), got ${
        JSON.stringify(raw)
      }`,
    );
  }
  return raw;
}

function seconds(
  raw: string,
  option: string,
  { zero }: { zero: boolean },
): number {
  const value = Number(raw);
  if (
    raw.trim() === "" || !Number.isFinite(value) || value < 0 ||
    (!zero && value === 0)
  ) {
    throw new UsageError(
      `${option} needs a number of seconds${zero ? "" : " above 0"}, got ${
        JSON.stringify(raw)
      }`,
    );
  }
  return value * 1000;
}

function port(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value > 65535) {
    throw new UsageError(
      `--listen needs a port from 0 to 65535, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}
