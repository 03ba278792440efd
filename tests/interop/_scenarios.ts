/**
 * The interop scenarios, written once and run against every peer in both
 * directions: the peer as a client of `serve()`, and as a server for
 * `connect()`.
 *
 * Every peer script follows the same fixed script, so each stays short:
 * - a client offers the subprotocols `chat.v2` and `chat.v1`; a server
 *   speaks only `chat.v1`. Once open, it prints `OPEN <protocol>`;
 * - it echoes every message with the same type (text or binary);
 * - a text message `cmd:close <code> <reason>` makes it close with that
 *   code and reason;
 * - when the connection closes it prints `CLOSED <code> <reason>` with what
 *   its API reports;
 * - a server listens on 127.0.0.1 port 0 and first prints `READY <port>`.
 *
 * The Deno test drives everything else over the WebSocket itself.
 *
 * @module
 */

import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { connect } from "../../client.ts";
import type { CloseInfo, Connection } from "../../connection.ts";
import type { Message } from "../../message.ts";
import { listen, within, wsUrl } from "../_fixture.ts";
import type { Peer } from "./_peer_process.ts";

/** The subprotocols a client offers, in its order of preference. */
export const OFFERED = ["chat.v2", "chat.v1"];
/** The one subprotocol every server side speaks. */
export const CHOSEN = "chat.v1";
/** A close reason with 2-, 3- and 4-byte UTF-8 characters (32 bytes). */
export const OUR_REASON = "fin — ünïcødé ✓ 終 🏁";
/** The reason the peer closes with. */
export const PEER_REASON = "au revoir 👋 ça va ✓";
/** Our close code; the peer's is {@linkcode PEER_CODE}. */
export const OUR_CODE = 4001;
/** The close code the peer is asked to close with. */
export const PEER_CODE = 4002;

/** Set in CI: a peer that is not installed fails its tests instead of skipping. */
export const REQUIRE_PEERS = Deno.env.get("ANYWS_REQUIRE_PEERS") === "1";

/** Which side the peer plays. */
export type Direction = "client" | "server";

/** How a peer may differ from us, stated precisely. */
export interface Differences {
  /**
   * How our `closed` ends after we close with {@linkcode OUR_CODE} and
   * {@linkcode OUR_REASON}: what the peer's close frame carried back.
   * @default {{ code: OUR_CODE, reason: OUR_REASON }} (what we answer with)
   */
  echoOfOurClose?: { code: number; reason: string };
  /**
   * The line the peer prints after it closed with {@linkcode PEER_CODE} and
   * {@linkcode PEER_REASON} and we answered.
   * @default {`CLOSED ${PEER_CODE} ${PEER_REASON}`}
   */
  peerSeesAfterItsClose?: string;
  /**
   * The `Sec-WebSocket-Protocol` header the peer sends as a client, exactly.
   * @default {"chat.v2, chat.v1"}
   */
  offerHeader?: string;
}

/** One peer, as the suite needs it. */
export interface PeerSetup {
  /** Its name in test names, e.g. "Python websockets 10.4". */
  name: string;
  /** Why it cannot run on this machine, or `undefined` when it can. */
  missing: string | undefined;
  /** Starts it as a client of `url`; it prints `OPEN` once connected. */
  client?: (url: string) => Promise<Peer>;
  /** Starts it as a server; resolves once it listens. */
  server?: () => Promise<{ peer: Peer; url: string }>;
  /** Where it differs from us, per direction. */
  differences?: Partial<Record<Direction, Differences>>;
}

interface Scenario {
  name: string;
  run(conn: Connection, peer: Peer, differences: Differences): Promise<void>;
}

const encoder = new TextEncoder();

/** A text message as the test expects it back. */
async function expectText(
  conn: Connection,
  text: string,
  what: string,
  units = 10,
) {
  const message = await next(conn, what, units);
  assert(message.isText(), `${what}: expected a text message`);
  const got = message.decodedBody();
  if (got !== text) {
    assertEquals(
      got.length > 200 ? `${got.length} chars` : got,
      text.length > 200 ? `${text.length} chars` : text,
      `${what}: text differs`,
    );
    assertEquals(got, text, `${what}: text differs`);
  }
}

/** A binary message as the test expects it back (compared without a huge diff). */
async function expectBinary(
  conn: Connection,
  bytes: Uint8Array,
  what: string,
  units = 10,
) {
  const message = await next(conn, what, units);
  assert(message.isBinary(), `${what}: expected a binary message`);
  const got = message.body;
  assertEquals(got.byteLength, bytes.byteLength, `${what}: length differs`);
  const at = got.findIndex((byte, i) => byte !== bytes[i]);
  assertEquals(at, -1, `${what}: first different byte at ${at}`);
}

function next(
  conn: Connection,
  what: string,
  units: number,
): Promise<Message> {
  return within(conn.nextMessage(), what, units);
}

/** Counts `finish` calls and keeps their errors. */
function watchFinish(conn: Connection): (string | undefined)[] {
  const calls: (string | undefined)[] = [];
  conn.on("finish", (_conn, error) => calls.push(error));
  return calls;
}

const TEXTS = [
  "hello, world",
  "multi-byte: héllo wörld — ünïcödé ✓ 日本語 Ελληνικά",
  "4-byte: 😀🎉 𝄞 𠜎 \u{10FFFF}",
  "boundaries: \u007f\u0080\u07ff\u0800\uffff\u{10000}",
];
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const MIB = 1024 * 1024;

const SCENARIOS: Scenario[] = [
  {
    name: "negotiates chat.v1 of the two offered subprotocols, seen by both",
    // The setup already asserted the choice on both sides; here, the raw
    // offer, and that traffic flows.
    async run(conn, _peer, differences) {
      if (conn.role === "server") {
        assertEquals(
          conn.request?.headers.get("sec-websocket-protocol"),
          differences.offerHeader ?? OFFERED.join(", "),
        );
      }
      conn.send("on chat.v1");
      await expectText(conn, "on chat.v1", "the echo");
    },
  },
  {
    name:
      "round-trips ASCII, multi-byte and 4-byte text, all 256 byte values, and empty messages",
    async run(conn) {
      for (const text of TEXTS) conn.send(text);
      conn.send(ALL_BYTES);
      conn.send("");
      conn.send(new Uint8Array(0));
      for (const text of TEXTS) await expectText(conn, text, `echo of ${text}`);
      await expectBinary(conn, ALL_BYTES, "echo of the 256 byte values");
      await expectText(conn, "", "echo of the empty text message");
      await expectBinary(
        conn,
        new Uint8Array(0),
        "echo of the empty binary message",
      );
    },
  },
  {
    name: "round-trips an 8 MiB binary message and an 8 MiB text message",
    async run(conn) {
      const bytes = new Uint8Array(8 * MIB);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
      // 4 Mi two-byte characters: 8 MiB of UTF-8.
      const text = "ü".repeat(4 * MIB);
      assertEquals(encoder.encode(text).byteLength, 8 * MIB);
      conn.send(bytes);
      conn.send(text);
      // A browser takes seconds for these on a loaded machine.
      await expectBinary(conn, bytes, "echo of 8 MiB binary", 30);
      await expectText(conn, text, "echo of 8 MiB text", 30);
    },
  },
  {
    name: "echoes 1000 messages in order with nothing lost or duplicated",
    async run(conn) {
      for (let i = 1; i <= 1000; i++) conn.send(`message ${i}`);
      conn.send("end");
      // Read with async iteration: nextMessage() on already-held messages
      // costs a macrotask each (about 2 ms), 2 s for 1000.
      const received: string[] = [];
      await within(
        (async () => {
          for await (const message of conn) {
            received.push(
              message.isText() ? message.decodedBody() : "(binary)",
            );
            if (received.length === 1001) break;
          }
        })(),
        "1000 echoes and the end marker",
        30,
      );
      const expected = Array.from(
        { length: 1000 },
        (_, i) => `message ${i + 1}`,
      );
      // Nothing lost, duplicated or reordered, and the end marker right after.
      assertEquals(received, [...expected, "end"]);
    },
  },
  {
    name: "sees our close code and UTF-8 reason, and answers it",
    async run(conn, peer, differences) {
      const finishes = watchFinish(conn);
      conn.close(OUR_CODE, OUR_REASON);
      assertEquals(
        await peer.nextLine("CLOSED after our close"),
        `CLOSED ${OUR_CODE} ${OUR_REASON}`,
      );
      const info = await within(conn.closed, "closed after our close");
      const echo = differences.echoOfOurClose ??
        { code: OUR_CODE, reason: OUR_REASON };
      assertEquals(pick(info), { ...echo, wasClean: true, error: undefined });
      assertEquals(finishes, [undefined]);
    },
  },
  {
    name: "closes with its own code and UTF-8 reason, which we see",
    async run(conn, peer, differences) {
      const finishes = watchFinish(conn);
      conn.send(`cmd:close ${PEER_CODE} ${PEER_REASON}`);
      const info = await within(conn.closed, "closed after the peer's close");
      assertEquals(pick(info), {
        code: PEER_CODE,
        reason: PEER_REASON,
        wasClean: true,
        error: undefined,
      });
      assertEquals(finishes, [undefined]);
      assertEquals(
        await peer.nextLine("CLOSED after its own close"),
        differences.peerSeesAfterItsClose ??
          `CLOSED ${PEER_CODE} ${PEER_REASON}`,
      );
    },
  },
  {
    name: "killed abruptly: finish fires once with an error and closed settles",
    async run(conn, peer) {
      const finishes = watchFinish(conn);
      conn.send("still there?");
      await expectText(conn, "still there?", "the echo before the kill");
      await peer.kill();
      const info = await within(conn.closed, "closed after the kill");
      assertEquals(info.code, 1006);
      assertEquals(info.wasClean, false);
      assertInstanceOf(info.error, Error);
      // `closed` settled inside the socket's close event, Deno's last for a
      // socket: its receive loop ends there. A second finish would already
      // have been counted.
      assertEquals(conn.socket.readyState, WebSocket.CLOSED);
      assertEquals(finishes.length, 1);
      assertEquals(typeof finishes[0], "string");
      assertEquals(finishes[0], info.error.message);
    },
  },
];

function pick(info: CloseInfo) {
  return {
    code: info.code,
    reason: info.reason,
    wasClean: info.wasClean,
    error: info.error,
  };
}

const skipped = new Set<string>();

/**
 * Registers every scenario for `setup`, in each direction it supports.
 * Without the peer, the tests are skipped with a printed reason, or fail
 * when `ANYWS_REQUIRE_PEERS=1`.
 */
export function interopTests(setup: PeerSetup): void {
  const ignore = setup.missing !== undefined && !REQUIRE_PEERS;
  if (ignore && !skipped.has(setup.name)) {
    skipped.add(setup.name);
    console.log(`interop: skipping ${setup.name}: ${setup.missing}`);
  }
  const directions: [Direction, string][] = [];
  if (setup.client) directions.push(["client", "as a client of serve()"]);
  if (setup.server) directions.push(["server", "as a server for connect()"]);
  for (const [direction, role] of directions) {
    for (const scenario of SCENARIOS) {
      Deno.test({
        name: `${setup.name} ${role} ${scenario.name}`,
        ignore,
        async fn() {
          if (setup.missing !== undefined) {
            throw new Error(
              `Cannot run ${setup.name}: ${setup.missing} (ANYWS_REQUIRE_PEERS=1 requires every peer)`,
            );
          }
          const differences = setup.differences?.[direction] ?? {};
          if (direction === "client") {
            await runAgainstClient(setup, scenario, differences);
          } else {
            await runAgainstServer(setup, scenario, differences);
          }
        },
      });
    }
  }
}

async function runAgainstClient(
  setup: PeerSetup,
  scenario: Scenario,
  differences: Differences,
): Promise<void> {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    protocols: [CHOSEN],
    onEstablish: (conn) => established.resolve(conn),
  });
  await using peer = await setup.client!(wsUrl(server));
  const conn = await within(
    established.promise,
    `${setup.name} to connect`,
    10,
  );
  assertEquals(conn.subprotocol, CHOSEN);
  assertEquals(await peer.nextLine("OPEN <protocol>"), `OPEN ${CHOSEN}`);
  await scenario.run(conn, peer, differences);
}

async function runAgainstServer(
  setup: PeerSetup,
  scenario: Scenario,
  differences: Differences,
): Promise<void> {
  const started = await setup.server!();
  await using peer = started.peer;
  const url = started.url;
  await using conn = await connect(url, {
    protocols: OFFERED,
    timeout: 10_000,
  });
  assertEquals(conn.subprotocol, CHOSEN);
  assertEquals(await peer.nextLine("OPEN <protocol>"), `OPEN ${CHOSEN}`);
  await scenario.run(conn, peer, differences);
}
