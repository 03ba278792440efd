/**
 * The command-line client (cli.ts), used as people use it: from a pipe, as a
 * child process whose stdin, stdout, stderr and exit status are checked; and
 * at a terminal, in a real tmux session that is typed into and read back.
 * The terminal tests skip with a printed reason when tmux is missing, unless
 * `ANYWS_REQUIRE_PEERS=1` (CI): then they fail. A transcript of the
 * terminal session is written to tests/artifacts/cli_session.txt.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { delay } from "@std/async/delay";
import type { CloseInfo, Connection } from "../mod.ts";
import { testConnect, testServer } from "../testing.ts";
import { EXIT, parseArgs, UsageError } from "../_cli/args.ts";
import { escapeControls, formatClose, formatMessage } from "../_cli/format.ts";
import { displayWidth, LineEditor } from "../_cli/line_editor.ts";
import { Message } from "../message.ts";
import { RawServer } from "./_raw_server.ts";
import { UNIT_MS, within } from "./_fixture.ts";

// Deno 2.9 runs the op and resource sanitizers only when asked (the
// --sanitize-ops and --sanitize-resources flags, or these options): ask, so
// that a leaked timer, op or socket fails the test that leaked it.
const SANITIZED = { sanitizeOps: true, sanitizeResources: true };

/** `Deno.test()` with the sanitizers on. */
function test(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name, ...SANITIZED, fn });
}

const ROOT = new URL("../", import.meta.url);
// Offline, @std comes from a mirror (JSR_URL) kept out of deno.lock.
const LOCK_ARGS = Deno.env.get("JSR_URL") ? ["--no-lock"] : [];
// A child's start-up includes loading and transpiling the library.
const START_UNITS = 30;

// ---- a CLI process driven through a pipe ------------------------------------

interface Ended {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno run -A cli.ts ...args`, stdin piped. */
class CliProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #drained: Promise<void>;
  #stdout = "";
  #stderr = "";
  #stdinClosed = false;
  #waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...LOCK_ARGS, "-A", "cli.ts", ...args],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    const drain = async (
      stream: ReadableStream<Uint8Array>,
      append: (text: string) => void,
    ) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        append(text);
        for (const waiter of this.#waiters) waiter();
      }
    };
    this.#drained = Promise.all([
      drain(this.#child.stdout, (text) => this.#stdout += text),
      drain(this.#child.stderr, (text) => this.#stderr += text),
    ]).then(() => {
      for (const waiter of this.#waiters) waiter();
    });
  }

  get output(): string {
    return `stdout: ${this.#stdout}\nstderr: ${this.#stderr}`;
  }

  /** Resolves with the first match of `pattern` in stdout or stderr. */
  async printed(pattern: RegExp, what: string): Promise<RegExpMatchArray> {
    let check!: () => void;
    const found = new Promise<RegExpMatchArray>((resolve, reject) => {
      check = () => {
        const match = pattern.exec(this.#stdout) ?? pattern.exec(this.#stderr);
        if (match) resolve(match);
      };
      this.#drained.then(() =>
        reject(new Error(`exited before printing ${what}\n${this.output}`))
      );
    });
    this.#waiters.push(check);
    check();
    try {
      return await within(found, `${what}\n${this.output}`, START_UNITS);
    } finally {
      this.#waiters = this.#waiters.filter((waiter) => waiter !== check);
    }
  }

  async write(text: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    await this.#stdin.close().catch(() => {}); // the child may be gone
  }

  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the exit (bounded) and collects the output. */
  async ended(): Promise<Ended> {
    const status = await within(
      this.#child.status,
      `the exit\n${this.output}`,
      START_UNITS,
    );
    await this.#drained;
    await this.closeStdin();
    return { code: status.code, stdout: this.#stdout, stderr: this.#stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeStdin();
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#child.status;
    await this.#drained;
  }
}

/** Runs the CLI with `input` on stdin and waits for its exit. */
async function runCli(args: string[], input = ""): Promise<Ended> {
  await using cli = new CliProcess(args);
  await cli.write(input);
  await cli.closeStdin();
  return await cli.ended();
}

/** An echo server that records what it got, its request and how it closed. */
function recordingServer() {
  const received: Message[] = [];
  const established = Promise.withResolvers<
    { conn: Connection; request: Request }
  >();
  const closed = Promise.withResolvers<CloseInfo>();
  const server = testServer({
    protocols: ["chat", "v2"],
    onEstablish(conn, request) {
      established.resolve({ conn, request });
      conn.closed.then(closed.resolve);
      conn.on("each_message", (conn, message) => {
        received.push(message);
        const text = message.isText() ? message.decodedBody() : "";
        if (text === "bin") conn.send(new Uint8Array([0, 1, 255]));
        else if (text === "close 4000") conn.close(4000, "done");
        else if (text === "close 1005") conn.close();
        else conn.send(message);
      });
    },
  });
  return { server, received, established, closed };
}

// ---- from a pipe ------------------------------------------------------------

test("cli: from a pipe it sends each line, prints each message and exits 0 after closing with 1000", async () => {
  const { server, received, established, closed } = recordingServer();
  await using _server = server;
  const ended = await runCli(
    [
      "-H",
      "X-User: pipe",
      "--header=Origin: http://example.test",
      "-s",
      "v2",
      server.url("/room?x=1"),
    ],
    "hello\nhéllo ✓\r\nbin\n\nlast line without newline",
  );
  assertEquals(ended.code, EXIT.OK, ended.stderr);
  assertEquals(
    ended.stdout,
    "hello\nhéllo ✓\n[binary, 3 bytes] 00 01 ff\n\nlast line without newline\n",
  );
  assertEquals(
    ended.stderr,
    `Connected to ${
      server.url("/room?x=1")
    } (subprotocol v2).\nConnection closed: 1000 (normal).\n`,
  );
  assertEquals(
    received.map((message) => message.decodedBody()),
    ["hello", "héllo ✓", "bin", "", "last line without newline"],
  );
  assert(received.every((message) => message.isText()));
  const { request } = await established.promise;
  assertEquals(request.headers.get("x-user"), "pipe");
  assertEquals(request.headers.get("origin"), "http://example.test");
  assertEquals(new URL(request.url).pathname, "/room");
  assertEquals(
    (await within(closed.promise, "the server-side close")).code,
    1000,
  );
});

test("cli: --json pretty-prints JSON messages and prints other text as it is", async () => {
  const { server } = recordingServer();
  await using _server = server;
  const ended = await runCli(
    ["--json", "-q", server.url()],
    '{"type":"said","tags":["a"]}\nnot json\n42\n',
  );
  assertEquals(ended.code, EXIT.OK, ended.stderr);
  assertEquals(
    ended.stdout,
    '{\n  "type": "said",\n  "tags": [\n    "a"\n  ]\n}\nnot json\n42\n',
  );
  assertEquals(ended.stderr, "", "--quiet prints no status lines");
});

test("cli: exits 3 when the server closes with another code, and shows it", async () => {
  const { server } = recordingServer();
  await using _server = server;
  await using cli = new CliProcess([server.url()]);
  await cli.write("one\nclose 4000\n");
  // stdin stays open: the server's close alone ends the client.
  const ended = await cli.ended();
  assertEquals(ended.code, EXIT.CLOSED_WITH_ERROR_CODE);
  assertEquals(ended.stdout, "one\n");
  assertStringIncludes(
    ended.stderr,
    'Connection closed: 4000 (application) "done".\n',
  );
});

test("cli: exits 0 when the server closes without a code (1005)", async () => {
  const { server } = recordingServer();
  await using _server = server;
  await using cli = new CliProcess([server.url()]);
  await cli.write("close 1005\n");
  const ended = await cli.ended();
  assertEquals(ended.code, EXIT.OK);
  assertStringIncludes(ended.stderr, "Connection closed: 1005 (no status).");
});

test("cli: exits 4 when the connection drops without a close handshake", async () => {
  await using raw = new RawServer();
  await using cli = new CliProcess([raw.url]);
  const { peer } = await within(raw.acceptWebSocket(), "the handshake");
  await cli.printed(/Connected to/, "the connected line");
  peer.drop();
  const ended = await cli.ended();
  assertEquals(ended.code, EXIT.DROPPED, ended.stderr);
  assertMatch(ended.stderr, /Connection closed: 1006 \(abnormal\)/);
});

test("cli: exits 1 and says why when it cannot connect", async () => {
  const { server } = recordingServer();
  await using _server = server;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const free = `ws://127.0.0.1:${listener.addr.port}/`;
  listener.close();

  const refused = await runCli([free]);
  assertEquals([refused.code, refused.stdout], [EXIT.CONNECT_FAILED, ""]);
  assertStringIncludes(refused.stderr, `anyws: unable to connect to ${free}: `);

  const mismatch = await runCli(["-s", "nope", server.url()]);
  assertEquals(mismatch.code, EXIT.CONNECT_FAILED);
  assertStringIncludes(mismatch.stderr, "no subprotocol in response");

  await using http = testServer({ path: "/ws", onEstablish() {} });
  const missing = await runCli([http.url("/elsewhere")]);
  assertEquals(missing.code, EXIT.CONNECT_FAILED);
  assertStringIncludes(
    missing.stderr,
    "the server refused the handshake with HTTP 404",
  );
});

test("cli: exits 2 with a one-line reason for a bad command line, and 0 for --help", async () => {
  const cases: [string[], string][] = [
    [[], "anyws: a URL to connect to is needed (see --help)\n"],
    [["--nope"], "anyws: unknown option --nope (see --help)\n"],
    [
      ["-H", "novalue", "ws://x/"],
      'anyws: --header needs "NAME: VALUE", got "novalue"\n',
    ],
    [["ws://a/", "ws://b/"], "anyws: one URL only (got 2: ws://a/ ws://b/)\n"],
    [
      ["ftp://x/"],
      "anyws: not a WebSocket URL: ftp://x/ (expected ws://, wss://, http:// or https://)\n",
    ],
  ];
  for (const [args, expected] of cases) {
    const ended = await runCli(args);
    assertStringIncludes(ended.stderr, expected, args.join(" "));
    assertEquals([ended.code, ended.stdout], [EXIT.USAGE, ""], args.join(" "));
  }
  const help = await runCli(["--help"]);
  assertEquals(help.code, EXIT.OK);
  assertStringIncludes(help.stdout, "Usage:\n  anyws [options] URL");
  assertStringIncludes(help.stdout, "Exit status (how the connection ended):");
});

test("cli: --wait keeps reading after input ends, until the server closes", async () => {
  const { server, established } = recordingServer();
  await using _server = server;
  await using cli = new CliProcess(["--wait", "forever", server.url()]);
  await cli.write("question\n");
  await cli.closeStdin();
  await cli.printed(/^question$/m, "the echo");
  // Input has ended; the client is still reading: the server answers late.
  const { conn } = await within(established.promise, "the server side");
  conn.send("late answer").close(1000, "answered");
  const ended = await cli.ended();
  assertEquals(ended.code, EXIT.OK);
  assertEquals(ended.stdout, "question\nlate answer\n");
  assertStringIncludes(
    ended.stderr,
    'Connection closed: 1000 (normal) "answered".',
  );
});

test("cli: --wait SECONDS closes with 1000 when the server stays silent that long", async () => {
  const { server, closed } = recordingServer();
  await using _server = server;
  const started = performance.now();
  const ended = await runCli(["-w", "0.3", server.url()], "ping\n");
  assertEquals(ended.code, EXIT.OK);
  assertEquals(ended.stdout, "ping\n");
  assert(performance.now() - started >= 300, "it waited");
  const info = await within(closed.promise, "the server-side close");
  assertEquals(info.code, 1000);
});

Deno.test({
  ...SANITIZED,
  name: "cli: SIGINT closes with 1000 and exits 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    const { server, closed } = recordingServer();
    await using _server = server;
    await using cli = new CliProcess([server.url()]);
    await cli.printed(/Connected to/, "the connected line");
    cli.signal("SIGINT");
    const ended = await cli.ended();
    assertEquals(ended.code, EXIT.OK, ended.stderr);
    assertEquals((await within(closed.promise, "the close")).code, 1000);
  },
});

test("cli: sends stdin at the pace the connection takes it (1 000 lines in order)", async () => {
  const { server, received } = recordingServer();
  await using _server = server;
  const lines = Array.from({ length: 1000 }, (_, i) => `line ${i}`);
  const ended = await runCli(["-q", server.url()], `${lines.join("\n")}\n`);
  assertEquals(ended.code, EXIT.OK, ended.stderr);
  assertEquals(received.map(String), lines);
  assertEquals(ended.stdout, `${lines.join("\n")}\n`);
});

// ---- --listen from a pipe -----------------------------------------------------

Deno.test({
  ...SANITIZED,
  name:
    "cli --listen: echoes, prints each message, and on SIGTERM closes clients with 1001 and exits 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using cli = new CliProcess(["--listen", "0"]);
    await cli.closeStdin();
    const [url] = await cli.printed(/ws:\/\/127\.0\.0\.1:\d+\//, "the address");
    await using ws = await testConnect(`${url}chat`);
    ws.send("hello").send(new Uint8Array([9, 8]));
    await ws.messageIs("hello");
    await ws.messageIs(new Uint8Array([9, 8]));
    await cli.printed(/#1 < \[binary, 2 bytes\] 09 08/, "the printed message");
    cli.signal("SIGTERM");
    await ws.closedWith(1001);
    const ended = await cli.ended();
    assertEquals(ended.code, EXIT.OK);
    assertEquals(ended.stdout, "#1 < hello\n#1 < [binary, 2 bytes] 09 08\n");
    assertMatch(
      ended.stderr,
      /^Listening on ws:\/\/127\.0\.0\.1:\d+\/ \(echoing messages\)\. Ctrl\+C stops\.\n\* #1 connected from 127\.0\.0\.1:\d+ to \/chat\n\* #1 closed: 1001 \(going away\) "server shutting down"\nStopped\.\n$/,
    );
  },
});

Deno.test({
  ...SANITIZED,
  name: "cli --listen --print: prints messages without echoing them",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using cli = new CliProcess(["--listen", "0", "--print", "--json"]);
    await cli.closeStdin();
    const [url] = await cli.printed(/ws:\/\/127\.0\.0\.1:\d+\//, "the address");
    await using ws = await testConnect(url);
    ws.send('{"a":1}');
    await cli.printed(/#1 < \{\n {4}"a": 1\n {2}\}/, "the pretty JSON");
    await ws.noMessage(UNIT_MS / 5);
    await ws.close();
    cli.signal("SIGINT");
    assertEquals((await cli.ended()).code, EXIT.OK);
  },
});

test("cli --listen: exits 1 when the port is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const ended = await runCli(["--listen", String(taken.addr.port)]);
    assertEquals(ended.code, EXIT.CONNECT_FAILED);
    assertStringIncludes(
      ended.stderr,
      `anyws: cannot listen on 127.0.0.1:${taken.addr.port}: `,
    );
  } finally {
    taken.close();
  }
});

// ---- the parts, without a process ------------------------------------------

test("parseArgs() reads options in any order, --name=value, repeated -H and -s", () => {
  const options = parseArgs([
    "-H",
    "Authorization: Bearer a:b",
    "--subprotocol=chat",
    "ws://h/",
    "-s",
    "v2",
    "--header=X-A:  1 ",
    "--json",
    "-t",
    "2.5",
    "--wait",
    "forever",
  ]);
  assertEquals(options.mode, "connect");
  assertEquals(options.url, "ws://h/");
  assertEquals(options.headers, [["Authorization", "Bearer a:b"], [
    "X-A",
    "1",
  ]]);
  assertEquals(options.protocols, ["chat", "v2"]);
  assertEquals([options.json, options.timeout, options.wait], [
    true,
    2500,
    Infinity,
  ]);
  assertEquals(parseArgs(["--", "ws://h/"]).url, "ws://h/");
  const listen = parseArgs(["-l", "0", "--print", "--host", "::1"]);
  assertEquals([listen.mode, listen.port, listen.print, listen.host], [
    "listen",
    0,
    true,
    "::1",
  ]);
  assertEquals(parseArgs(["ws://x/", "-h"]).mode, "help");
});

test("parseArgs() refuses what cannot run, saying why", () => {
  const cases: [string[], string][] = [
    [["-t", "0", "ws://x/"], '-t needs a number of seconds above 0, got "0"'],
    [
      ["--wait", "soon", "ws://x/"],
      '--wait needs a number of seconds, got "soon"',
    ],
    [
      ["--listen", "70000"],
      '--listen needs a port from 0 to 65535, got "70000"',
    ],
    [["--listen", "1", "ws://x/"], "--listen takes no URL (got ws://x/)"],
    [["--listen", "1", "-H", "A: b"], "--header is for connecting"],
    [["--print", "ws://x/"], "--print goes with --listen"],
    [["-s", "a b", "ws://x/"], "-s needs a token"],
    [["--json=yes", "ws://x/"], "--json takes no value"],
    [["ws://x/", "-H"], "-H needs a value"],
  ];
  for (const [args, message] of cases) {
    assertThrows(() => parseArgs(args), UsageError, message);
  }
});

test("formatMessage() prints text as is, binary as length and hex, JSON pretty on request", () => {
  const plain = { json: false, terminal: false };
  assertEquals(formatMessage(new Message("a\nb"), plain), "a\nb");
  assertEquals(
    formatMessage(new Message(new Uint8Array([0, 1, 255])), plain),
    "[binary, 3 bytes] 00 01 ff",
  );
  assertEquals(
    formatMessage(new Message(new Uint8Array([7])), plain),
    "[binary, 1 byte] 07",
  );
  assertEquals(
    formatMessage(new Message(new Uint8Array()), plain),
    "[binary, 0 bytes]",
  );
  assertEquals(
    formatMessage(new Message('{"a":[1]}'), { ...plain, json: true }),
    '{\n  "a": [\n    1\n  ]\n}',
  );
  // A pipe gets every byte; a terminal the first 256.
  const big = new Message(new Uint8Array(300));
  assertEquals(formatMessage(big, plain).split(" ").length, 3 + 300);
  assert(
    formatMessage(big, { ...plain, terminal: true }).endsWith(" 00 …"),
  );
});

test("a terminal shows control characters in received text escaped, and a pipe gets them as sent", () => {
  const hostile = new Message("\x1b]0;title\x07\x1b[2Jgone\r\tok\n\u009b");
  assertEquals(
    formatMessage(hostile, { json: false, terminal: true }),
    "\\x1b]0;title\\x07\\x1b[2Jgone\\x0d\tok\n\\x9b",
  );
  assertEquals(
    formatMessage(hostile, { json: false, terminal: false }),
    hostile.decodedBody(),
  );
  assertEquals(escapeControls("plain ✓"), "plain ✓");
});

test("formatClose() names the code and shows the reason and error", () => {
  assertEquals(
    formatClose({ code: 1000, reason: "", wasClean: true }),
    "1000 (normal)",
  );
  assertEquals(
    formatClose({ code: 1001, reason: "bye", wasClean: true }),
    '1001 (going away) "bye"',
  );
  assertEquals(
    formatClose({ code: 4404, reason: "", wasClean: true }),
    "4404 (application)",
  );
  assertEquals(
    formatClose({
      code: 1006,
      reason: "",
      wasClean: false,
      error: new Error("the connection dropped"),
    }),
    "1006 (abnormal): the connection dropped",
  );
});

/** A LineEditor writing into a string, with what it reported. */
function editor(columns = 80) {
  const lines: string[] = [];
  const ends: string[] = [];
  let screen = "";
  const editor = new LineEditor({
    write: (text) => screen += text,
    columns: () => columns,
    line: (text) => lines.push(text),
    end: (key) => ends.push(key),
  });
  editor.start();
  return {
    editor,
    lines,
    ends,
    take() {
      const written = screen;
      screen = "";
      return written;
    },
  };
}

test("LineEditor: Enter sends the line; Backspace, Ctrl+U and Ctrl+W edit it", () => {
  const { editor: e, lines } = editor();
  e.feed("helo");
  e.feed("\x7f\x7flo wörld 😀\x7f");
  assertEquals(e.buffer, "helo wörld ");
  e.feed("\x17");
  assertEquals(e.buffer, "helo ");
  e.feed("\x17\x17");
  assertEquals(e.buffer, "");
  e.feed("abc\x15x\r\nsecond\rthird\n");
  assertEquals(lines, ["x", "second", "third"]);
  e.feed("\r");
  assertEquals(lines.at(-1), "", "an empty line is sent too");
  // Backspace removes a whole grapheme (a flag is two code points).
  e.feed("🇫🇷\x7f");
  assertEquals(e.buffer, "");
});

test("LineEditor: Up and Down recall earlier lines and the draft", () => {
  const { editor: e } = editor();
  e.feed("one\rtwo\rdraft");
  e.feed("\x1b[A");
  assertEquals(e.buffer, "two");
  e.feed("\x1bOA"); // SS3 form, as some terminals send it
  assertEquals(e.buffer, "one");
  e.feed("\x1b[A");
  assertEquals(e.buffer, "one", "stops at the oldest");
  e.feed("\x1b[B\x1b[B");
  assertEquals(e.buffer, "draft");
  // Other keys and a sequence split across reads do nothing.
  e.feed("\x1b[1;5");
  e.feed("C\x1b[3~\t");
  assertEquals(e.buffer, "draft");
});

test("LineEditor: Ctrl+D ends only on an empty line; Ctrl+C always", () => {
  const a = editor();
  a.editor.feed("x\x04");
  assertEquals(a.ends, []);
  a.editor.feed("\x7f\x04ignored");
  assertEquals(a.ends, ["ctrl-d"]);
  assertEquals(a.editor.buffer, "", "nothing is read after the end");
  const b = editor();
  b.editor.feed("typed\x03");
  assertEquals(b.ends, ["ctrl-c"]);
});

test("LineEditor: print() writes above the prompt and redraws the line being typed", () => {
  const { editor: e, take } = editor(80);
  e.feed("dra");
  take();
  e.print("< one\n  two");
  assertEquals(take(), "\r\x1b[J< one\r\n  two\r\n\r\x1b[J> dra");
  // A line wrapped onto three rows is cleared from its first row.
  const narrow = editor(10);
  narrow.editor.feed("x".repeat(25)); // "> " + 25 = 27 columns: 3 rows
  narrow.take();
  narrow.editor.print("msg");
  assert(narrow.take().startsWith("\x1b[2A\r\x1b[Jmsg\r\n"));
  assertEquals(displayWidth("a漢😀\u0301"), 5);
});

// ---- at a terminal (tmux) --------------------------------------------------

const REQUIRE_PEERS = Deno.env.get("ANYWS_REQUIRE_PEERS") === "1";
const TMUX_MISSING = tmuxMissing();
const SKIP_TMUX = TMUX_MISSING !== undefined && !REQUIRE_PEERS;
if (SKIP_TMUX) {
  console.log(`cli_test: skipping the terminal tests: ${TMUX_MISSING}`);
}

function tmuxMissing(): string | undefined {
  try {
    const { success } = new Deno.Command("tmux", {
      args: ["-V"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success ? undefined : "tmux -V failed";
  } catch {
    return "tmux is not installed (on Debian: apt-get install tmux)";
  }
}

/** A tmux server of its own (private socket), running one command in a pane. */
class TmuxSession implements AsyncDisposable {
  readonly #socket = `anyws-cli-test-${crypto.randomUUID().slice(0, 8)}`;
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /** Starts `command` (run from the repository root) in a 100×32 pane. */
  static async start(command: string[]): Promise<TmuxSession> {
    if (TMUX_MISSING) {
      throw new Error(
        `Cannot run the terminal tests: ${TMUX_MISSING} (ANYWS_REQUIRE_PEERS=1 requires it)`,
      );
    }
    const dir = await Deno.makeTempDir({ prefix: "anyws-tmux-" });
    const session = new TmuxSession(dir);
    // The pane stays after the program exits, to read its last screen; no
    // user configuration is read.
    const config = `${dir}/tmux.conf`;
    await Deno.writeTextFile(config, "set -g remain-on-exit on\n");
    const env = Object.entries({
      JSR_URL: Deno.env.get("JSR_URL"),
      ANYWS_OFFLINE: Deno.env.get("ANYWS_OFFLINE"),
    }).flatMap(([name, value]) =>
      value === undefined ? [] : ["-e", `${name}=${value}`]
    );
    await session.tmux(
      "-f",
      config,
      "new-session",
      "-d",
      "-x",
      "100",
      "-y",
      "32",
      "-c",
      ROOT.pathname,
      ...env,
      // The shell tmux runs the command with prints its exit status.
      `${command.map(shellQuote).join(" ")}; echo "[exit status: $?]"`,
    );
    return session;
  }

  async tmux(...args: string[]): Promise<string> {
    const { success, stdout, stderr } = await new Deno.Command("tmux", {
      args: ["-L", this.#socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (!success) {
      throw new Error(`tmux ${args[0]} failed: ${decoder.decode(stderr)}`);
    }
    return decoder.decode(stdout);
  }

  /**
   * Everything the terminal showed: the lines scrolled off the top (tmux
   * scrolls one when it notes that the pane is dead), then the screen,
   * without tmux's "Pane is dead" note and trailing blank lines.
   */
  async screen(): Promise<string> {
    const text = await this.tmux("capture-pane", "-p", "-S", "-");
    return text.replace(/^Pane is dead \(.*\)$/m, "").replace(/\s+$/, "");
  }

  /**
   * Waits until the screen satisfies `test`. tmux has no event for "the
   * screen changed", so this looks every 50 ms, bounded by the deadline.
   */
  async waitFor(
    test: string | ((screen: string) => boolean),
    what: string,
  ): Promise<string> {
    const ok = typeof test === "string"
      ? (screen: string) => screen.includes(test)
      : test;
    const end = performance.now() + START_UNITS * UNIT_MS;
    let screen = await this.screen();
    while (!ok(screen)) {
      if (performance.now() > end) {
        throw new Error(
          `The terminal never showed ${what}. It shows:\n${screen}`,
        );
      }
      await delay(50);
      screen = await this.screen();
    }
    return screen;
  }

  /** Types text as is. */
  async type(text: string): Promise<void> {
    await this.tmux("send-keys", "-l", text);
  }

  /** Presses keys by name: Enter, BSpace, Up, C-d, C-c, ... */
  async press(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", ...keys);
  }

  /**
   * Waits for the program to exit; its exit status, as the shell around it
   * printed it. (tmux's own #{pane_dead_status} was sometimes left empty
   * here after the process had gone.)
   */
  async exited(): Promise<number> {
    const screen = await this.waitFor(
      (s) => EXIT_LINE.test(s),
      "the exit status line",
    );
    return Number(EXIT_LINE.exec(screen)![1]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.tmux("kill-server").catch(() => {});
    await Deno.remove(this.#dir, { recursive: true });
  }
}

const EXIT_LINE = /^\[exit status: (\d+)\]$/m;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg)
    ? arg
    : `'${arg.replaceAll("'", "'\\''")}'`;
}

function lastLine(screen: string): string {
  return screen.split("\n").at(-1) ?? "";
}

async function saveTranscript(name: string, transcript: string): Promise<void> {
  const dir = new URL("artifacts/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL(name, dir), `${transcript}\n`);
}

Deno.test({
  ...SANITIZED,
  name:
    "cli at a terminal: type, see replies (text, binary, JSON), edit while messages arrive, quit with Ctrl+D",
  ignore: SKIP_TMUX,
  async fn() {
    const { server, received, established, closed } = recordingServer();
    await using _server = server;
    await using term = await TmuxSession.start([
      Deno.execPath(),
      "run",
      ...LOCK_ARGS,
      "-A",
      "cli.ts",
      "--json",
      "-H",
      "X-User: tmux",
      "-s",
      "chat",
      server.url("/room"),
    ]);
    await term.waitFor(
      `Connected to ${server.url("/room")} (subprotocol chat).`,
      "the connected line",
    );
    const { conn, request } = await within(
      established.promise,
      "the server side",
    );
    assertEquals(request.headers.get("x-user"), "tmux");
    conn.send("welcome, tmux");
    await term.waitFor("< welcome, tmux", "the welcome");

    await term.type("hello");
    await term.press("Enter");
    await term.waitFor("< hello", "the echo");
    await term.type("bin");
    await term.press("Enter");
    await term.waitFor("< [binary, 3 bytes] 00 01 ff", "the binary reply");
    await term.type('{"type":"said","tags":["a","b"]}');
    await term.press("Enter");
    await term.waitFor('< {\n    "type": "said",', "the JSON");

    // A message that arrives while a line is half typed is printed above the
    // prompt; the half-typed line stays as it was.
    await term.type("draft ✓");
    await term.waitFor((s) => lastLine(s) === "> draft ✓", "the draft");
    conn.send("pushed while typing");
    const during = await term.waitFor(
      "< pushed while typing",
      "the pushed message",
    );
    assertEquals(lastLine(during), "> draft ✓");
    // A hostile message cannot drive the terminal.
    conn.send("\x1b[2J\x1b[Hcleared?");
    await term.waitFor("< \\x1b[2J\\x1b[Hcleared?", "the escaped message");
    for (let i = 0; i < "draft ✓".length; i++) await term.press("BSpace");
    await term.waitFor((s) => lastLine(s) === ">", "the emptied line");
    await term.press("Up");
    await term.waitFor(
      (s) => lastLine(s) === '> {"type":"said","tags":["a","b"]}',
      "the recalled line",
    );
    await term.press("C-u");
    await term.waitFor((s) => lastLine(s) === ">", "the cleared line");

    await term.press("C-d");
    const last = await term.waitFor(
      "Connection closed: 1000 (normal).",
      "the close line",
    );
    const info = await within(closed.promise, "the server-side close");
    assertEquals(info.code, 1000);
    assertEquals(await term.exited(), EXIT.OK);
    assertEquals(
      received.map(String),
      ["hello", "bin", '{"type":"said","tags":["a","b"]}'],
    );
    await saveTranscript(
      "cli_session.txt",
      [
        `$ deno run -A cli.ts --json -H 'X-User: tmux' -s chat ${
          server.url("/room")
        }`,
        "",
        "--- the screen while a line is half typed, after a message arrived ---",
        during,
        "",
        "--- the screen at the end (after Ctrl+D) ---",
        await term.screen(),
      ].join("\n"),
    );
    assert(!last.includes("draft"), "the draft was never sent");
  },
});

Deno.test({
  ...SANITIZED,
  name:
    "cli --listen at a terminal: shows clients and messages, sends typed lines to them, Ctrl+C stops",
  ignore: SKIP_TMUX,
  async fn() {
    await using term = await TmuxSession.start([
      Deno.execPath(),
      "run",
      ...LOCK_ARGS,
      "-A",
      "cli.ts",
      "--listen",
      "0",
    ]);
    const screen = await term.waitFor(
      (s) => /Listening on ws:\/\/127\.0\.0\.1:\d+\//.test(s),
      "the address",
    );
    const url = /ws:\/\/127\.0\.0\.1:\d+\//.exec(screen)![0];
    assertStringIncludes(screen, "Type to send to every client; Ctrl+C stops.");
    await using ws = await testConnect(url);
    await term.waitFor("* #1 connected from 127.0.0.1:", "the client");
    ws.send("from the client");
    await ws.messageIs("from the client");
    await term.waitFor("#1 < from the client", "the message");
    await term.type("to every client");
    await term.press("Enter");
    await ws.messageIs("to every client");
    await term.press("C-c");
    await ws.closedWith(1001, "server shutting down");
    await term.waitFor("Stopped.", "the stop");
    assertEquals(await term.exited(), EXIT.OK);
    await saveTranscript(
      "cli_listen_session.txt",
      `$ deno run -A cli.ts --listen 0\n${await term.screen()}`,
    );
  },
});
