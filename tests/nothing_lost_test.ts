/**
 * Nothing lost: a peer that sends a message and its close frame right after
 * the 101 gets the reply before the close, whenever the handlers existed
 * before the message arrived (registered synchronously in `onEstablish`, or
 * right after `await connect()`). Deno answers such a close by itself,
 * within the task that delivered the message: a reply made in a later task
 * goes nowhere. And when a handler comes only after that answer, the
 * message is still readable, but the reply cannot go out.
 *
 * Each case runs {@linkcode ROUNDS} times over raw TCP and counts the rounds
 * that got their reply, so a failure says "x/20".
 *
 * The Perl AnyEvent client doing the same is in interop/perl_test.ts.
 */

import { assertEquals } from "@std/assert";
import { connect, type Connection, serve, type Server } from "../mod.ts";
import { UNIT_MS, within } from "./_fixture.ts";
import {
  closePayload,
  encodeFrame,
  type RawFrame,
  RawPeer,
} from "./_raw_peer.ts";
import { RawServer } from "./_raw_server.ts";

/** Rounds per case: enough for a race to show, few enough to stay fast. */
const ROUNDS = 20;

const decoder = new TextDecoder();

/** One way of reading messages, each answering "hi" with "hi". */
interface Style {
  name: string;
  /**
   * Whether the reply leaves inside the message's dispatch. A reply made
   * later, even one microtask later (a `for await` body), comes after Deno
   * answered a close frame that arrived in the same TCP read: Deno reads
   * that frame as soon as the dispatch returns.
   */
  repliesInTime: boolean;
  /** Registers an echo on `conn`, synchronously; `read` counts messages. */
  register(conn: Connection, read: (text: string) => void): void;
}

const STYLES: readonly Style[] = [
  {
    name: 'Perl-style on("message")',
    repliesInTime: true,
    register: (conn, read) =>
      conn.on("message", (conn, data) => {
        read(String(data));
        conn.send(data);
      }),
  },
  {
    name: 'on("each_message")',
    repliesInTime: true,
    register: (conn, read) =>
      conn.on("each_message", (conn, message) => {
        read(message.decodedBody());
        conn.send(message.decodedBody());
      }),
  },
  {
    name: "a DOM message listener",
    repliesInTime: true,
    register: (conn, read) =>
      conn.addEventListener("message", (event) => {
        read(event.data.decodedBody());
        conn.send(event.data.decodedBody());
      }),
  },
  {
    name: "for await",
    repliesInTime: false,
    register(conn, read) {
      // The loop asks for its first message before this returns.
      (async () => {
        for await (const message of conn) {
          read(message.decodedBody());
          conn.send(message.decodedBody());
        }
      })();
    },
  },
];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** "hi" and a close 1000, masked (client) or not (server), as one buffer. */
function hiAndClose(mask: boolean): Uint8Array {
  return concat(
    encodeFrame({ opcode: 1, payload: "hi", mask }),
    encodeFrame({ opcode: 8, payload: closePayload(1000), mask }),
  );
}

/** A frame as a short word: `text hi`, `close 1000`. */
function describe(frame: RawFrame): string {
  if (frame.opcode === 1) return `text ${decoder.decode(frame.payload)}`;
  if (frame.opcode === 8) {
    const code = frame.payload.length >= 2
      ? (frame.payload[0]! << 8) | frame.payload[1]!
      : 1005;
    return `close ${code}`;
  }
  return `opcode ${frame.opcode}`;
}

/** The frames `peer` reads up to and including a close frame, or to EOF. */
async function framesUntilClose(peer: RawPeer): Promise<string[]> {
  const seen: string[] = [];
  for (
    let frame = await peer.readFrame();
    frame;
    frame = await peer.readFrame()
  ) {
    seen.push(describe(frame));
    if (frame.opcode === 8) break;
  }
  return seen;
}

/**
 * Asserts that `style` read "hi" in every round and that every round got
 * the reply before the close (or, for a style that replies too late, that
 * none did): a failure says x/20.
 */
function assertRounds(style: Style, rounds: string[][], reads: string[]): void {
  const total = rounds.length;
  assertEquals(
    `${reads.filter((text) => text === "hi").length}/${total}`,
    `${total}/${total}`,
    `${style.name}: messages read`,
  );
  const answered =
    rounds.filter((seen) => seen[0] === "text hi" && seen[1] === "close 1000")
      .length;
  const expected = style.repliesInTime ? total : 0;
  assertEquals(
    `${answered}/${total}`,
    `${expected}/${total}`,
    `${style.name}: replies before the close; rounds saw ${
      JSON.stringify([...new Set(rounds.map((seen) => seen.join(", ")))])
    }`,
  );
}

function outcome(style: Style): string {
  return style.repliesInTime
    ? `gets the reply first, ${ROUNDS}/${ROUNDS}`
    : `has "hi" read ${ROUNDS}/${ROUNDS}, but the reply comes after Deno's answer to the close (Deno's limit)`;
}

function listen(onEstablish: (conn: Connection) => unknown): Server {
  return serve({ port: 0, hostname: "127.0.0.1", onListen() {}, onEstablish });
}

for (const style of STYLES) {
  for (const pipelined of [false, true]) {
    const when = pipelined
      ? "in the same write as its handshake request"
      : "in one write right after reading the 101";
    Deno.test(
      `server side, ${style.name} registered in onEstablish: a raw client that sends "hi" and close(1000) ${when} ${
        outcome(style)
      }`,
      async () => {
        const finished: Promise<unknown>[] = [];
        const reads: string[] = [];
        await using server = listen((conn) => {
          style.register(conn, (text) => reads.push(text));
          finished.push(conn.closed);
        });
        const rounds: string[][] = [];
        for (let round = 0; round < ROUNDS; round++) {
          await using peer = await within(
            RawPeer.connect(server.addr.port),
            "the TCP connection",
          );
          if (pipelined) {
            await peer.write(
              concat(
                new TextEncoder().encode(RawPeer.request()),
                hiAndClose(true),
              ),
            );
            assertEquals(
              (await within(peer.readResponse(), "the 101")).status,
              101,
            );
          } else {
            assertEquals(
              (await within(peer.handshake(), "the 101")).status,
              101,
            );
            await peer.write(hiAndClose(true));
          }
          rounds.push(await within(framesUntilClose(peer), "the close answer"));
        }
        await within(Promise.all(finished), "every connection to finish");
        assertRounds(style, rounds, reads);
      },
    );
  }

  Deno.test(
    `client side, ${style.name} registered right after await connect(): a raw server that sends "hi" and close(1000) with its 101 ${
      outcome(style)
    }`,
    async () => {
      const rounds: string[][] = [];
      const reads: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        await using raw = new RawServer();
        const accepted = raw.acceptWebSocket({}, hiAndClose(false));
        // Awaited directly: wrapping it (in within(), an async helper) adds
        // promise hops, and Deno dispatches a message that came with the 101
        // after one hop.
        const conn = await connect(raw.url, { timeout: 5 * UNIT_MS });
        style.register(conn, (text) => reads.push(text));
        const { peer } = await within(accepted, "the handshake");
        rounds.push(await within(framesUntilClose(peer), "the client's close"));
        peer.drop();
        await within(conn.closed, "the client to finish");
      }
      assertRounds(style, rounds, reads);
    },
  );
}

// The loss that remains: a handler that comes after Deno answered the
// peer's close. The message is still there for it; the reply is not sent.

Deno.test("server side, a reader that starts only after Deno answered the peer's close still gets the message; its reply never reaches the peer", async () => {
  const closeAnswered = Promise.withResolvers<void>();
  const late = Promise.withResolvers<{ read: string[]; code: number }>();
  await using server = listen(async (conn) => {
    // As an async onEstablish that awaits (a lookup, say) before it
    // registers anything.
    await closeAnswered.promise;
    const read: string[] = [];
    for await (const message of conn) {
      read.push(message.decodedBody());
      conn.send(message.decodedBody()); // too late: goes nowhere, throws nothing
    }
    late.resolve({ read, code: (await conn.closed).code });
  });
  await using peer = await within(
    RawPeer.open(server.addr.port),
    "the handshake",
  );
  await peer.write(hiAndClose(true));
  assertEquals(
    await within(framesUntilClose(peer), "Deno's close answer"),
    ["close 1000"],
  );
  closeAnswered.resolve();
  assertEquals(await within(late.promise, "the late reader"), {
    read: ["hi"],
    code: 1000,
  });
  // Nothing followed the close answer: the connection just ends.
  assertEquals(await within(peer.readFrame(), "the end of the stream"), null);
});

Deno.test("client side, a reader that starts only after Deno answered the server's close still gets the message; its reply never reaches the server", async () => {
  await using raw = new RawServer();
  const accepted = raw.acceptWebSocket({}, hiAndClose(false));
  const conn = await within(connect(raw.url), "the client to connect");
  const { peer } = await within(accepted, "the handshake");
  assertEquals(
    await within(framesUntilClose(peer), "the client's close answer"),
    ["close 1000"],
  );
  const message = await within(conn.nextMessage(), "the late nextMessage()");
  assertEquals(message.decodedBody(), "hi");
  conn.send("hi"); // too late: goes nowhere, throws nothing
  peer.drop();
  assertEquals((await within(conn.closed, "the client to finish")).code, 1000);
});

Deno.test('a Perl-style on("message") registered after the end is not called (as in Perl), while nextMessage() still reads what was held', async () => {
  const ended = Promise.withResolvers<Connection>();
  await using server = listen((conn) => {
    conn.closed.then(() => ended.resolve(conn));
  });
  await using peer = await within(
    RawPeer.open(server.addr.port),
    "the handshake",
  );
  await peer.write(hiAndClose(true));
  const conn = await within(ended.promise, "the connection to finish");
  const calls: unknown[] = [];
  conn.on("message", (_conn, data) => calls.push(data));
  assertEquals(
    (await within(conn.nextMessage(), "the held message")).decodedBody(),
    "hi",
  );
  // Held messages go out on the shared zero-delay timer: let it run.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(calls, []);
});
