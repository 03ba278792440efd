/**
 * Bad input, table-driven: each case goes to `serve()` over raw TCP, the
 * HTTP status or close code is asserted together with what our Connection
 * reports, and then a normal client must still be served. The README's
 * reliability section records the same table.
 */

import { assertEquals } from "@std/assert";
import { connect } from "../client.ts";
import type { CloseInfo, Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { closePayload, encodeFrame, RawPeer } from "./_raw_peer.ts";

/** Checks that `server` still upgrades and echoes for a well-behaved client. */
async function stillServes(server: Server): Promise<void> {
  await using client = await within(connect(wsUrl(server)), "a normal client");
  client.send("ping?");
  assertEquals(`${await within(client.nextMessage(), "the echo")}`, "ping?");
}

/** An echo server that hands out its connections. */
function echoServer() {
  const connections: Connection[] = [];
  const first = Promise.withResolvers<Connection>();
  const server = listen({
    closeTimeout: 1000,
    onEstablish(conn) {
      conn.on("message", (conn, message) => conn.send(message));
      connections.push(conn);
      first.resolve(conn);
    },
  });
  return { server, first: first.promise };
}

// ---- before the upgrade: answered with an HTTP status ----------------------

const KEY_ONLY = { "sec-websocket-key": null };
const httpCases: {
  name: string;
  request: string | Uint8Array;
  status: number;
}[] = [
  {
    name: "a plain GET",
    request: "GET / HTTP/1.1\r\nhost: x\r\n\r\n",
    status: 426,
  },
  {
    name: "a POST with upgrade headers",
    request: RawPeer.request({ method: "POST" }),
    status: 400,
  },
  {
    name: "a missing Sec-WebSocket-Key",
    request: RawPeer.request({ headers: KEY_ONLY }),
    status: 400,
  },
  {
    name: "a short Sec-WebSocket-Key",
    request: RawPeer.request({ headers: { "sec-websocket-key": "c2hvcnQ=" } }),
    status: 400,
  },
  {
    name: "a non-base64 Sec-WebSocket-Key",
    request: RawPeer.request({
      headers: { "sec-websocket-key": "!!!!!!!!!!!!!!!!!!!!!!==" },
    }),
    status: 400,
  },
  {
    name: "Sec-WebSocket-Version 8",
    request: RawPeer.request({ headers: { "sec-websocket-version": "8" } }),
    status: 426,
  },
  {
    name: "a missing Sec-WebSocket-Version",
    request: RawPeer.request({ headers: { "sec-websocket-version": null } }),
    status: 426,
  },
  {
    name: "a missing Upgrade header",
    request: RawPeer.request({ headers: { upgrade: null } }),
    status: 426,
  },
  {
    name: "a missing Connection header",
    request: RawPeer.request({ headers: { connection: null } }),
    status: 400,
  },
  {
    name: "a 64 KiB header",
    request: RawPeer.request({ headers: { "x-big": "a".repeat(64 * 1024) } }),
    status: 400,
  },
  {
    name: "200 headers",
    request: RawPeer.request({
      headers: Object.fromEntries(
        Array.from({ length: 200 }, (_, i) => [`x-h${i}`, "v"]),
      ),
    }),
    status: 400,
  },
  {
    name: "garbage bytes",
    request: new Uint8Array(512).map((_, i) => (i * 37 + 11) % 256),
    status: 400,
  },
];

for (const { name, request, status } of httpCases) {
  Deno.test(`serve() answers ${name} with HTTP ${status} and keeps serving`, async () => {
    const { server } = echoServer();
    await using _server = server;
    await using peer = await within(RawPeer.connect(server.addr.port), "TCP");
    await peer.write(request);
    const response = await within(peer.readResponse(), "the HTTP answer");
    assertEquals(response.status, status);
    await stillServes(server);
  });
}

Deno.test("serve() leaves a half-sent handshake open (Deno.serve has no header timeout) but keeps serving, and shutdown() ends it", async () => {
  const { server } = echoServer();
  await using peer = await within(RawPeer.connect(server.addr.port), "TCP");
  await peer.write("GET / HTTP/1.1\r\nhost: x\r\nupgrade: web");
  await stillServes(server);
  await stillServes(server);
  await within(server.shutdown(), "the shutdown");
  // Deno's shutdown closes idle and half-read HTTP connections.
  await within(peer.waitForEof(), "the half-open connection to be closed");
});

// ---- after a good handshake: frames --------------------------------------

interface FrameCase {
  name: string;
  bytes: Uint8Array;
  /** The close frame Deno sends, or `null` when it drops TCP without one. */
  wire: { code: number; reason: string } | null;
  /** What `conn.closed` reports. */
  report: Pick<CloseInfo, "code" | "wasClean"> & { error?: string };
  /** Drop the TCP connection after writing instead of reading the answer. */
  drop?: boolean;
}

const frame = encodeFrame;
const closeWith = (code: number) =>
  frame({ opcode: 8, payload: closePayload(code, "r") });
const invalidCloseCode: FrameCase["report"] = {
  code: 1006,
  wasClean: false,
  error: "Invalid close code",
};

const frameCases: FrameCase[] = [
  {
    name: "reserved bits set",
    bytes: frame({ opcode: 1, payload: "hi", rsv: 4 }),
    wire: null,
    report: {
      code: 1006,
      wasClean: false,
      error: "Reserved bits are not zero",
    },
  },
  {
    name: "an unknown opcode (3)",
    bytes: frame({ opcode: 3, payload: "hi" }),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Invalid value" },
  },
  {
    name: "a fragmented control frame",
    bytes: frame({ opcode: 9, payload: "hi", fin: false }),
    wire: null,
    report: {
      code: 1006,
      wasClean: false,
      error: "Control frame must not be fragmented",
    },
  },
  {
    name: "a ping payload over 125 bytes",
    bytes: frame({ opcode: 9, payload: new Uint8Array(126) }),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Ping frame too large" },
  },
  {
    name: "invalid UTF-8 in a text frame",
    bytes: frame({ opcode: 1, payload: new Uint8Array([0x68, 0xff, 0xfe]) }),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Invalid UTF-8" },
  },
  {
    name: "a close frame with code 1005",
    bytes: closeWith(1005),
    wire: { code: 1002, reason: "r" },
    report: invalidCloseCode,
  },
  {
    name: "a close frame with code 1006",
    bytes: closeWith(1006),
    wire: { code: 1002, reason: "r" },
    report: invalidCloseCode,
  },
  {
    name: "a close frame with code 999",
    bytes: closeWith(999),
    wire: { code: 1002, reason: "r" },
    report: invalidCloseCode,
  },
  {
    name: "a close frame with code 5000",
    bytes: closeWith(5000),
    wire: { code: 1002, reason: "r" },
    report: invalidCloseCode,
  },
  {
    name: "a close frame with a 1-byte payload",
    bytes: frame({ opcode: 8, payload: new Uint8Array([3]) }),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Invalid close frame" },
  },
  {
    name: "a close reason that is not UTF-8",
    bytes: frame({ opcode: 8, payload: new Uint8Array([0x03, 0xe8, 0xff]) }),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Invalid UTF-8" },
  },
  {
    // RFC 6455 caps control frames at 125 bytes; Deno does not check close
    // frames, and echoes the over-long reason in its own close frame.
    name: "a close frame of 126 bytes (a 124-byte reason)",
    bytes: frame({ opcode: 8, payload: closePayload(1000, "a".repeat(124)) }),
    wire: { code: 1000, reason: "a".repeat(124) },
    report: { code: 1000, wasClean: true },
  },
  {
    name: "a frame claiming 2^63 bytes",
    bytes: frame({
      opcode: 2,
      payload: new Uint8Array(8),
      claimedLength: 1n << 63n,
    }),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Frame too large" },
  },
  {
    name: "the connection dropped mid-frame",
    bytes: frame({ opcode: 2, payload: new Uint8Array(1000) }).subarray(0, 500),
    wire: null,
    report: { code: 1006, wasClean: false, error: "Unexpected EOF" },
    drop: true,
  },
];

for (const { name, bytes, wire, report, drop } of frameCases) {
  Deno.test(
    `after the handshake, ${name}: Deno ${
      wire
        ? `closes with ${wire.code}`
        : drop
        ? "sees EOF"
        : "drops TCP without a close frame"
    }, the connection reports ${report.code}${
      report.error ? ` "${report.error}"` : " without an error"
    }, and the server keeps serving`,
    async () => {
      const { server, first } = echoServer();
      await using _server = server;
      await using peer = await within(
        RawPeer.open(server.addr.port),
        "the handshake",
      );
      const conn = await within(first, "onEstablish");
      const errors: string[] = [];
      conn.on("parse_error", (_conn, error) => errors.push(error));
      await peer.write(bytes);
      if (drop) peer.drop();
      else assertEquals(await within(peer.readClose(), "Deno's answer"), wire);
      peer.drop(); // a raw peer does not complete the close handshake
      const info = await within(conn.closed, "the connection to finish");
      assertEquals(
        {
          code: info.code,
          wasClean: info.wasClean,
          ...(info.error ? { error: info.error.message } : {}),
        },
        report,
      );
      assertEquals(errors, report.error ? [report.error] : []);
      await stillServes(server);
    },
  );
}

Deno.test("after the handshake, an unmasked client frame is accepted by Deno (RFC 6455 says fail) and delivered as a message", async () => {
  const { server } = echoServer();
  await using _server = server;
  await using peer = await within(
    RawPeer.open(server.addr.port),
    "the handshake",
  );
  await peer.sendFrame({ opcode: 1, payload: "bare", mask: false });
  const echo = await within(peer.readFrame(), "the echo");
  assertEquals(
    echo &&
      { opcode: echo.opcode, text: new TextDecoder().decode(echo.payload) },
    { opcode: 1, text: "bare" },
  );
  await stillServes(server);
});
