/**
 * The chat demo (examples/chat_server.ts) under a flood: one client sends
 * valid 2000-character lines as fast as it can, while other members of its
 * room read slowly or not at all (raw TCP peers, tests/_raw_peer.ts). The
 * server runs in its own process, as users run it.
 *
 * Before the rate limit and the slow-member rule, every slower member was
 * closed with 1008 "send buffer full" within half a second of such a flood.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { MAX_TEXT_LENGTH, RATE_LIMIT } from "../examples/chat_server.ts";
import { connect } from "../mod.ts";
import { DenoProcess } from "./_deno_process.ts";
import { within } from "./_fixture.ts";
import { closePayload, RawPeer } from "./_raw_peer.ts";

const START_UNITS = 30;
const FLOOD_TEXT = "x".repeat(MAX_TEXT_LENGTH);

/** What one member saw of the flood. */
interface Seen {
  floodLines: number;
  skipped: number[];
  closed?: string;
}

/**
 * A member on a raw TCP connection that reads only when told to, and then
 * as slowly as told.
 */
class Member implements AsyncDisposable {
  readonly seen: Seen = { floodLines: 0, skipped: [] };
  #left = false;
  #waiting: string | undefined;
  #refused = false;

  private constructor(readonly peer: RawPeer, readonly name: string) {}

  static async join(port: number, name: string): Promise<Member> {
    const peer = await RawPeer.connect(port);
    const response = await peer.handshake({ path: "/ws" });
    assertEquals(response.status, 101, response.body);
    return new Member(peer, name);
  }

  /** Asks for a pong: {@linkcode Member.read} ends when it comes. */
  async ping(): Promise<void> {
    this.#waiting = "pong";
    await this.peer.sendFrame({ opcode: 1, payload: '{"type":"ping"}' });
  }

  /** Says something: {@linkcode Member.read} ends when its copy comes. */
  async say(text: string): Promise<void> {
    this.#waiting = text;
    await this.peer.sendFrame({
      opcode: 1,
      payload: JSON.stringify({ type: "say", name: this.name, text, id: text }),
    });
  }

  /**
   * Reads until the pong or the copy of what it said comes back: everything
   * sent to it before has then been read. While `slowly()` holds, it reads
   * about 16 KiB per 20 ms. A ping refused because the member is behind is
   * sent again once the server says it has caught up.
   */
  async read(slowly: () => boolean = () => false): Promise<void> {
    for (let frames = 1;; frames++) {
      const event = await this.#next();
      if (!event) throw new Error(`${this.name} was ${this.seen.closed}`);
      if (event.type === "pong" && this.#waiting === "pong") return;
      if (event.type === "said" && event.mine && event.id === this.#waiting) {
        return;
      }
      if (event.type === "error") this.#refused = true;
      if (event.type === "skipped" && this.#refused) {
        this.#refused = false;
        await this.ping();
      }
      if (frames % 8 === 0 && slowly()) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** Closes properly: a close frame, then the server's answer. */
  async leave(): Promise<void> {
    this.#left = true;
    await this.peer.sendFrame({ opcode: 8, payload: closePayload(1000) });
    assertEquals(await this.peer.readClose(), { code: 1000, reason: "" });
    this.peer.drop();
  }

  /**
   * Leaves if the test did not (it failed): a dropped connection would keep
   * the server's process from exiting (Deno 2.9.6) and hide the failure.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#left) return;
    await within(this.leave(), `${this.name} to leave`).catch(() => {});
    this.peer.drop();
  }

  async #next(): Promise<Record<string, unknown> | undefined> {
    let frame = await this.peer.readFrame();
    // Deno's idle pings (opcode 9) need no answer within a test's time.
    while (frame?.opcode === 9 || frame?.opcode === 10) {
      frame = await this.peer.readFrame();
    }
    if (!frame || frame.opcode === 8) {
      const code = frame && frame.payload.length >= 2
        ? (frame.payload[0]! << 8) | frame.payload[1]!
        : "none";
      const reason = new TextDecoder().decode(frame?.payload.subarray(2));
      this.seen.closed = `closed: ${code} ${reason}`;
      return undefined;
    }
    const event = JSON.parse(new TextDecoder().decode(frame.payload));
    if (event.type === "said" && event.name === "flood") this.seen.floodLines++;
    if (event.type === "skipped") this.seen.skipped.push(event.count);
    return event;
  }
}

/**
 * The flooding client: sends full-length lines as fast as its buffer takes
 * them, reading every answer, until `lines` are sent or `enough` were
 * accepted; then waits until the server has handled them all (a ping
 * answered with a pong: answers come in order).
 */
async function flood(url: string, lines: number, enough = Infinity) {
  const flooder = await connect(url);
  let accepted = 0;
  const refusals: { message: string; retryIn: number; at: number }[] = [];
  let answer = Promise.withResolvers<Record<string, unknown>>();
  flooder.on("message", (_conn, data) => {
    const event = JSON.parse(String(data));
    if (event.type === "said" && event.mine) accepted++;
    if (event.type === "error") {
      refusals.push({ ...event, at: performance.now() });
    }
    if (event.type === "error" || event.type === "pong") answer.resolve(event);
  });
  const line = JSON.stringify({ type: "say", name: "flood", text: FLOOD_TEXT });
  const started = performance.now();
  for (let i = 1; i <= lines && accepted < enough; i++) {
    flooder.send(line);
    if (i % 100 === 0) {
      await within(flooder.drained(), "the flooder's buffer");
      // Let it read its answers too (a resolved await does no I/O).
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  const seconds = (performance.now() - started) / 1000;
  // A refused ping is answered once the last answer's retryIn has passed.
  const settled = async () => {
    for (;;) {
      const last = refusals.at(-1);
      const wait = last ? last.at + last.retryIn - performance.now() : 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      answer = Promise.withResolvers();
      flooder.send('{"type":"ping"}');
      if ((await answer.promise).type === "pong") return;
    }
  };
  await within(settled(), "the flooder's pong");
  await flooder.close().closed;
  return {
    accepted,
    refusals: refusals.map(({ message }) => message),
    seconds,
  };
}

/** Reads what each member was sent, up to a pong: all of the flood. */
async function catchUp(
  stopped: Member[],
  slow: Member,
  reading: Promise<void>,
): Promise<void> {
  await slow.ping();
  await within(reading, "the slow reader to catch up", 20);
  for (const member of stopped) {
    await member.ping();
    await within(member.read(), `${member.name} to catch up`, 20);
  }
}

/** Each member can still chat; then it leaves properly. */
async function chatAndLeave(members: Member[]): Promise<void> {
  for (const member of members) {
    await member.say(`${member.name} is still here`);
    await within(member.read(), `${member.name}'s own line`);
  }
  for (const member of members) {
    await within(member.leave(), `${member.name} to leave`);
  }
}

/** A member on an anyws connection, reading everything as fast as it can. */
async function fastMember(port: number) {
  const conn = await connect(`ws://127.0.0.1:${port}/ws`);
  let floodLines = 0;
  const pong = Promise.withResolvers<void>();
  conn.on("message", (_conn, data) => {
    const event = JSON.parse(String(data));
    if (event.type === "said" && event.name === "flood") floodLines++;
    if (event.type === "pong") pong.resolve();
  });
  return {
    conn,
    get floodLines() {
      return floodLines;
    },
    /** Resolves once everything sent to it before a ping was read. */
    caughtUp(): Promise<void> {
      conn.send('{"type":"ping"}');
      return pong.promise;
    },
    [Symbol.asyncDispose]: () => conn[Symbol.asyncDispose](),
  };
}

Deno.test("chat_server.ts under a flood: the flooder gets its burst then 5 lines a second, and no member is closed, reading slowly or not at all", async () => {
  await using server = new DenoProcess([
    "run",
    "--allow-net",
    "--allow-env=PORT",
    "--allow-read",
    "examples/chat_server.ts",
  ], { PORT: "0" });
  const { port } = new URL(
    await within(server.address, "the address", START_UNITS),
  );
  await using members = new AsyncDisposableStack();
  const stopped = await Promise.all([
    Member.join(+port, "stopped-1"),
    Member.join(+port, "stopped-2"),
  ]);
  const slow = await Member.join(+port, "slow");
  for (const member of [...stopped, slow]) members.use(member);
  await using fast = await fastMember(+port);
  let flooding = true;
  const reading = slow.read(() => flooding);
  reading.catch(() => {}); // awaited below, after the flood

  const result = await flood(`ws://127.0.0.1:${port}/ws`, 5000);
  flooding = false;

  const { burst, perSecond } = RATE_LIMIT;
  assert(
    result.accepted >= burst &&
      result.accepted <= burst + Math.ceil(perSecond * result.seconds) + 1,
    `${result.accepted} lines accepted in ${result.seconds.toFixed(2)} s`,
  );
  assert(result.refusals.length >= 1, "the flooder was told to slow down");
  assertMatch(
    result.refusals[0]!,
    /^Slow down: at most 5 messages a second \(20 at once\)\./,
  );
  // At most one answer per wait it asked for (about 5 a second).
  assert(
    result.refusals.length <= Math.ceil(perSecond * result.seconds) + 2,
    `${result.refusals.length} answers in ${result.seconds.toFixed(2)} s`,
  );

  await catchUp(stopped, slow, reading);
  for (const member of [...stopped, slow]) {
    assertEquals(member.seen, {
      floodLines: result.accepted,
      skipped: [],
    }, member.name);
  }
  await within(fast.caughtUp(), "the fast member's pong");
  assertEquals(fast.floodLines, result.accepted);
  await chatAndLeave([...stopped, slow]);
  assertEquals(fast.conn.readyState, WebSocket.OPEN);
});

Deno.test("chat_server.ts with no rate limit: members that fall behind are skipped and told how many lines they missed, never closed", async () => {
  const code = `
    import { startChatServer } from "./examples/chat_server.ts";
    const server = startChatServer({
      port: 0,
      rateLimit: false,
      onListen: ({ port }) => console.log("http://127.0.0.1:" + port + "/"),
    });
    Deno.addSignalListener("SIGTERM", () => server.shutdown());
  `;
  // Its own process and heap: a regression would buffer the flood in it.
  await using server = new DenoProcess([
    "eval",
    "--v8-flags=--max-old-space-size=256",
    code,
  ]);
  const { port } = new URL(
    await within(server.address, "the address", START_UNITS),
  );
  await using members = new AsyncDisposableStack();
  const stopped = await Promise.all([
    Member.join(+port, "stopped-1"),
    Member.join(+port, "stopped-2"),
  ]);
  const slow = await Member.join(+port, "slow");
  for (const member of [...stopped, slow]) members.use(member);
  let flooding = true;
  const reading = slow.read(() => flooding);
  reading.catch(() => {}); // awaited below, after the flood

  // 16 MB for each member: more than the kernel buffers on loopback, and
  // as much as anyws's own limit (maxBufferedAmount) would let wait.
  const result = await flood(`ws://127.0.0.1:${port}/ws`, 40_000, 8000);
  flooding = false;

  await catchUp(stopped, slow, reading);
  assert(result.accepted >= 8000, `${result.accepted} lines accepted`);
  for (const member of [...stopped, slow]) {
    const { floodLines, skipped, closed } = member.seen;
    assertEquals(closed, undefined, member.name);
    assert(skipped.length >= 1, `${member.name} was told it fell behind`);
    assert(skipped.every((count) => count > 0), `${skipped}`);
    // Every line either reached it or was counted as skipped.
    assertEquals(
      floodLines + skipped.reduce((sum, count) => sum + count, 0),
      result.accepted,
      member.name,
    );
  }
  await chatAndLeave([...stopped, slow]);
});
