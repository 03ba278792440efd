/**
 * Chat rooms: serves a small page at `/` whose script talks JSON over a
 * WebSocket at `/ws`; every chat line goes to everyone in the sender's room
 * (a topic). Everyone starts in the room "lobby"; the page joins the room
 * named by its URL fragment (`http://localhost:8000/#kitchen`) and has a
 * field to switch rooms.
 *
 * ```sh
 * deno run --allow-net --allow-env=PORT --allow-read examples/chat_server.ts
 * # or, from the repository root: deno task demo
 *
 * # Several instances sharing rooms through Redis (node-redis from npm, which
 * # reads REDIS_DEBUG_MAINTENANCE when it connects):
 * export REDIS_URL=redis://127.0.0.1:6379
 * PERMISSIONS="--allow-net --allow-read --allow-env=PORT,REDIS_URL,REDIS_DEBUG_MAINTENANCE"
 * PORT=8001 deno run $PERMISSIONS examples/chat_server.ts &
 * PORT=8002 deno run $PERMISSIONS examples/chat_server.ts
 * ```
 *
 * Wire protocol (one JSON object per text message):
 * - client → server: `{"type":"say","name":string,"text":string,"id"?:string}`
 * - server → everyone else in the sender's room, on every instance:
 *   `{"type":"said","name":string,"text":string,"at":number}`
 *   (`at`: the server's clock, milliseconds since the epoch); to the sender,
 *   the same line with `"mine":true` and its `id` (if it gave one), which is
 *   how the sender knows the line was accepted.
 * - client → server: `{"type":"join","room":string}` leaves the current room
 *   for that one (or stays in it); the server answers
 *   `{"type":"joined","room":string}` once lines from every instance reach
 *   the client.
 * - client → server: `{"type":"ping"}`; the server answers `{"type":"pong"}`
 *   (the page's heartbeat: browsers cannot see WebSocket pings).
 * - server → the sender only, for anything it refuses (bad JSON, an unknown
 *   type, missing or oversized fields, binary data, too many messages):
 *   `{"type":"error","message":string,"id"?:string,"retryIn"?:number}`, with
 *   the `id` of the refused line and, when it was refused for coming too
 *   fast, how many milliseconds to wait before sending again. The
 *   connection stays open.
 * - server → one member: `{"type":"skipped","room":string,"count":number,
 *   "message":string}` when lines of its room were skipped because it fell
 *   behind (see below).
 *
 * Flood protection, in two parts, so that nobody's connection is closed
 * because someone else sends too much:
 * - **A rate limit per connection** ({@linkcode RATE_LIMIT}): each message
 *   takes a token from a bucket of 20 that refills at 5 per second. A message
 *   without a token is dropped, and so is a message from a connection that
 *   does not read what it is sent (its own buffer is over
 *   {@linkcode SLOW_MEMBER_BYTES}). A dropped message is answered with an
 *   `error` whose `retryIn` says how long to wait; those dropped within that
 *   time get no answer (nor are they parsed), so a flooder that does not
 *   read cannot fill its own buffer with answers. A client that waits as
 *   told always gets an answer. A client can open more connections to send
 *   more: this stops mistakes and single scripts, not a determined attacker.
 * - **Slow members are skipped, not closed.** anyws closes a connection
 *   whose outgoing buffer passes its `maxBufferedAmount` (16 MiB) with 1008
 *   "send buffer full"; before the rate limit, one client sending 2000-char
 *   lines as fast as it could got every slower member of its room closed that
 *   way. Now, after each line published here, every member of the room whose
 *   `bufferedAmount` is over {@linkcode SLOW_MEMBER_BYTES} leaves the room's
 *   topic until `drained()` says its buffer is down to
 *   {@linkcode CAUGHT_UP_BYTES}; then it rejoins and gets a `skipped` notice
 *   with the number of lines it missed (none: no notice). Its buffer stays within one line of
 *   the threshold, far from 16 MiB, and its connection stays open. Lines from
 *   other instances (with a broker) arrive without passing through this
 *   code, so then a sweep every {@linkcode SWEEP_MS} ms checks every member
 *   too (then `count` is a lower bound, maybe 0: only this instance's lines
 *   are counted).
 *
 * The page (chat_page.html) is read once at start-up.
 *
 * @module
 */

import { type Broker, type Connection, serve, type Server } from "../mod.ts";

/** The longest name accepted, in UTF-16 code units (`string.length`). */
export const MAX_NAME_LENGTH = 64;
/** The longest chat line accepted, in UTF-16 code units. */
export const MAX_TEXT_LENGTH = 2000;
/** The longest room name accepted, in UTF-16 code units. */
export const MAX_ROOM_LENGTH = 64;
/** The longest line `id` accepted, in UTF-16 code units. */
export const MAX_ID_LENGTH = 64;
/** The room every connection starts in. */
export const LOBBY = "lobby";
/**
 * The largest WebSocket message accepted, in bytes. A bigger one closes that
 * connection with 1009 (anyws's `maxMessageSize`); it is well above what the
 * limits above allow, so honest clients never meet it.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/**
 * How many messages a connection may send: `burst` at once, then `perSecond`.
 * A person typing never meets it; pasting 20 lines in a row does.
 */
export const RATE_LIMIT: RateLimitOptions = { burst: 20, perSecond: 5 };
/**
 * Over this many bytes waiting to be sent to it, a member falls behind: lines
 * of its room are skipped for it until it catches up.
 */
export const SLOW_MEMBER_BYTES = 512 * 1024;
/** A member that fell behind rejoins its room once this much is left to send. */
export const CAUGHT_UP_BYTES = 64 * 1024;
/**
 * What a client whose own buffer is over {@linkcode SLOW_MEMBER_BYTES} is
 * told to wait before sending again, in milliseconds.
 */
export const BEHIND_RETRY_MS = 250;
/** With a broker, how often every member's buffer is checked. */
export const SWEEP_MS = 250;

/** A token bucket's size and refill rate. */
export interface RateLimitOptions {
  /** Messages that may be sent at once. */
  burst: number;
  /** Messages per second after that. */
  perSecond: number;
}

/** What a client sends to chat. */
export interface Say {
  type: "say";
  name: string;
  text: string;
  /** Chosen by the client; echoed in its copy of the line or in the refusal. */
  id?: string;
}

/** What a client sends to change rooms. */
export interface Join {
  type: "join";
  room: string;
}

/** What a client sends to check the connection. */
export interface Ping {
  type: "ping";
}

/** What the server sends: a chat line for a room, or an answer for one. */
export type ServerEvent =
  | {
    type: "said";
    name: string;
    text: string;
    at: number;
    mine?: true;
    id?: string;
  }
  | { type: "joined"; room: string }
  | { type: "pong" }
  | { type: "skipped"; room: string; count: number; message: string }
  | { type: "error"; message: string; id?: string; retryIn?: number };

// Line breaks and other control characters would let a name pose as two
// lines of chat; names and rooms must be one plain line.
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/**
 * Validates one received message: a `join` or a `ping`, or else a `say` (as
 * {@linkcode parseSay} checks it).
 *
 * @param data The message as `on("message")` hands it over.
 * @returns The request, or an error message for the sender.
 */
export function parseClientMessage(
  data: string | Uint8Array,
): Say | Join | Ping | { error: string; id?: string } {
  let value: unknown;
  try {
    value = typeof data === "string" ? JSON.parse(data) : undefined;
  } catch {
    value = undefined; // parseSay reports it
  }
  const type = typeof value === "object" && value !== null
    ? (value as { type?: unknown }).type
    : undefined;
  if (type === "ping") return { type: "ping" };
  if (type !== "join") return parseSay(data);
  const { room } = value as Record<string, unknown>;
  if (typeof room !== "string" || room.trim() === "") {
    return { error: 'Cannot join: "room" must be a non-empty string' };
  }
  if (room.length > MAX_ROOM_LENGTH) {
    return {
      error:
        `Cannot join: "room" is ${room.length} characters long, the limit is ${MAX_ROOM_LENGTH}`,
    };
  }
  if (CONTROL.test(room)) {
    return {
      error: 'Cannot join: "room" must be one line without control characters',
    };
  }
  if (!room.isWellFormed()) {
    // Topic names must round-trip through every broker (see topics.ts).
    return { error: 'Cannot join: "room" must be well-formed Unicode' };
  }
  return { type: "join", room };
}

/**
 * Validates one received chat line.
 *
 * @param data The message as `on("message")` hands it over.
 * @returns The chat line, or an error message for the sender (with the
 * line's `id` when it had a valid one).
 */
export function parseSay(
  data: string | Uint8Array,
): Say | { error: string; id?: string } {
  if (typeof data !== "string") {
    return { error: "Cannot chat: send JSON text, not binary data" };
  }
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch (error) {
    return { error: `Cannot chat: invalid JSON (${(error as Error).message})` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { error: "Cannot chat: expected a JSON object" };
  }
  const { type, name, text, id } = value as Record<string, unknown>;
  if (type !== "say") {
    return {
      error: `Cannot chat: unknown message type ${
        JSON.stringify(type) ?? "undefined"
      } (expected "say", "join" or "ping")`,
    };
  }
  if (
    id !== undefined &&
    (typeof id !== "string" || id === "" || id.length > MAX_ID_LENGTH)
  ) {
    return {
      error:
        `Cannot chat: "id" must be a string of 1 to ${MAX_ID_LENGTH} characters`,
    };
  }
  const refuse = (error: string) =>
    id === undefined ? { error } : { error, id };
  const nameProblem = checkField("name", name, MAX_NAME_LENGTH) ??
    (CONTROL.test(name as string)
      ? 'Cannot chat: "name" must be one line without control characters'
      : undefined);
  if (nameProblem) return refuse(nameProblem);
  const textProblem = checkField("text", text, MAX_TEXT_LENGTH);
  if (textProblem) return refuse(textProblem);
  const say: Say = { type, name: name as string, text: text as string };
  if (id !== undefined) say.id = id;
  return say;
}

function checkField(
  field: string,
  value: unknown,
  max: number,
): string | undefined {
  if (typeof value !== "string" || value.trim() === "") {
    return `Cannot chat: "${field}" must be a non-empty string`;
  }
  if (value.length > max) {
    return `Cannot chat: "${field}" is ${value.length} characters long, the limit is ${max}`;
  }
  return undefined;
}

/** A token bucket: {@linkcode RateLimitOptions} for one connection. */
class TokenBucket {
  #tokens: number;
  #last = performance.now();

  constructor(readonly options: RateLimitOptions) {
    this.#tokens = options.burst;
  }

  /** Takes a token: returns 0 if there was one, else the ms until there is. */
  take(): number {
    const now = performance.now();
    const { burst, perSecond } = this.options;
    this.#tokens = Math.min(
      burst,
      this.#tokens + (now - this.#last) * perSecond / 1000,
    );
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - this.#tokens) * 1000 / perSecond);
  }
}

/** Options for {@linkcode startChatServer}. */
export interface ChatServerOptions {
  /** The port; `0` picks a free one. @default {8000} */
  port?: number;
  /** The address to listen on. @default {"127.0.0.1"} */
  hostname?: string;
  /** Called once listening. */
  onListen?(addr: Deno.NetAddr): void;
  /**
   * Carries rooms to other instances (e.g. a `RedisBroker`); the server
   * closes it on shutdown.
   *
   * @default {undefined} (rooms span this process only)
   */
  broker?: Broker;
  /**
   * Messages per connection, or `false` for no limit (to see what the
   * slow-member protection does alone).
   *
   * @default {RATE_LIMIT}
   */
  rateLimit?: RateLimitOptions | false;
}

/** One connection's state. */
interface Member {
  readonly conn: Connection;
  room: string;
  /** Settles once the current room's lines from every instance arrive. */
  ready: Promise<void>;
  /** Out of its room's topic while its buffer drains (see the module doc). */
  behind: boolean;
  /** Lines of its room published here while it was behind. */
  skipped: number;
  /** A join answered once it has caught up. */
  joinPending: boolean;
  readonly bucket: TokenBucket | undefined;
  /** Until then (performance.now()), refused messages get no answer. */
  quietUntil: number;
}

const PAGE_URL = new URL("./chat_page.html", import.meta.url);

/**
 * Starts the chat server.
 *
 * @param options Where to listen.
 * @returns The running server; `await server.shutdown()` stops it.
 */
export function startChatServer(options: ChatServerOptions = {}): Server {
  const page = Deno.readTextFileSync(PAGE_URL);
  const rateLimit = options.rateLimit ?? RATE_LIMIT;
  const send = (conn: Connection, event: ServerEvent) =>
    conn.send(JSON.stringify(event));
  // The members on this instance, by room, to find the slow ones.
  const rooms = new Map<string, Set<Member>>();
  const enter = (member: Member) => {
    let members = rooms.get(member.room);
    if (!members) rooms.set(member.room, members = new Set());
    members.add(member);
  };
  const leave = (member: Member) => {
    const members = rooms.get(member.room);
    members?.delete(member);
    if (members?.size === 0) rooms.delete(member.room);
  };

  // Lines from other instances arrive once the broker confirms; a failure
  // there leaves the room working on this instance only.
  const reportBroker =
    (conn: Connection, what: string, id?: string) => (error: Error) =>
      send(conn, {
        type: "error",
        message: `${what} reached this server only: ${error.message}`,
        ...(id === undefined ? {} : { id }),
      });

  const subscribe = (member: Member) => {
    const { conn, room } = member;
    member.ready = conn.subscribe(room);
    member.ready.then(() => {
      if (member.room !== room || member.behind || !member.joinPending) return;
      member.joinPending = false;
      send(conn, { type: "joined", room });
    }, reportBroker(conn, "Joining the room"));
  };

  const fallBehind = (member: Member) => {
    member.behind = true;
    member.skipped = 0;
    member.conn.unsubscribe(member.room);
    member.conn.drained({ highWaterMark: CAUGHT_UP_BYTES }).then(() => {
      member.behind = false;
      const { room, skipped } = member;
      // Lines from other instances are not counted: with a broker, some may
      // have been skipped even when none from here were.
      if (skipped > 0 || options.broker) {
        const lines = skipped === 1 ? "line was" : "lines were";
        send(member.conn, {
          type: "skipped",
          room,
          count: skipped,
          message: skipped === 0
            ? `Your connection fell behind, so lines in "${room}" from other servers may have been skipped.`
            : `Your connection fell behind, so ${
              options.broker ? "at least " : ""
            }${skipped} ${lines} skipped in "${room}".`,
        });
      }
      subscribe(member);
    }, () => {}); // closed meanwhile
  };

  const checkBuffers = (members: Iterable<Member>, except?: Member) => {
    for (const member of members) {
      if (member === except) continue;
      if (member.behind) member.skipped++;
      else if (member.conn.bufferedAmount > SLOW_MEMBER_BYTES) {
        fallBehind(member);
      }
    }
  };

  const join = (member: Member, room: string) => {
    member.joinPending = true;
    if (room !== member.room) {
      leave(member);
      member.skipped = 0; // what it missed there no longer matters
      if (!member.behind) member.conn.unsubscribe(member.room);
      member.room = room;
      enter(member);
      if (!member.behind) subscribe(member);
    } else if (!member.behind) {
      // Already there: answer once the subscription is ready.
      subscribe(member);
    }
  };

  const say = (member: Member, request: Say) => {
    const { conn, room } = member;
    const said = {
      type: "said",
      name: request.name,
      text: request.text,
      at: Date.now(),
    } as const;
    // To the rest of the room, on every instance; the sender gets its own
    // copy directly, marked, even while it is behind.
    conn.publish(room, JSON.stringify(said)).catch(
      reportBroker(conn, "Your message", request.id),
    );
    send(conn, {
      ...said,
      mine: true,
      ...(request.id === undefined ? {} : { id: request.id }),
    });
    const members = rooms.get(room);
    if (members) checkBuffers(members, member);
  };

  /**
   * Whether `data` may be handled now: refused without a token, or while the
   * sender's own buffer is over SLOW_MEMBER_BYTES (it is not reading its
   * answers). A refusal is answered with the time to wait, and the refusals
   * within that time are not, so a flooder that does not read cannot fill
   * its buffer with answers either.
   */
  const admit = (member: Member, data: string | Uint8Array) => {
    const wait = member.bucket?.take() ?? 0;
    const behind = member.conn.bufferedAmount > SLOW_MEMBER_BYTES;
    if (wait === 0 && !behind) return true;
    const now = performance.now();
    if (now < member.quietUntil) return false;
    const retryIn = behind ? BEHIND_RETRY_MS : wait;
    member.quietUntil = now + retryIn;
    const parsed = parseClientMessage(data);
    const id = "id" in parsed ? parsed.id : undefined;
    const { burst, perSecond } = rateLimit || RATE_LIMIT;
    send(member.conn, {
      type: "error",
      message: behind
        ? "Slow down: your connection is not keeping up with what the server sends it. Try again in a moment."
        : `Slow down: at most ${perSecond} messages a second (${burst} at once). Try again in ${
          Math.ceil(retryIn / 100) / 10
        } s.`,
      ...(id === undefined ? {} : { id }),
      retryIn,
    });
    return false;
  };

  const server: Server = serve({
    port: options.port ?? 8000,
    hostname: options.hostname ?? "127.0.0.1",
    onListen: options.onListen ?? (() => {}),
    path: "/ws",
    maxMessageSize: MAX_MESSAGE_BYTES,
    ...(options.broker ? { broker: options.broker } : {}),
    fallback(request) {
      const { pathname } = new URL(request.url);
      if (pathname === "/ws") {
        return new Response("This is the chat's WebSocket endpoint.\n", {
          status: 426,
          headers: { upgrade: "websocket", "sec-websocket-version": "13" },
        });
      }
      // The page has its icon inline; browsers and tools that ask for the
      // classic one anyway get "nothing", not an error in their console.
      if (pathname === "/favicon.ico") {
        return new Response(null, { status: 204 });
      }
      if (pathname !== "/") return new Response("Not Found\n", { status: 404 });
      return new Response(page, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "x-content-type-options": "nosniff",
        },
      });
    },
    onEstablish(conn) {
      const member: Member = {
        conn,
        room: LOBBY,
        ready: Promise.resolve(),
        behind: false,
        skipped: 0,
        joinPending: false,
        bucket: rateLimit ? new TokenBucket(rateLimit) : undefined,
        quietUntil: 0,
      };
      enter(member);
      subscribe(member);
      conn.closed.then(() => leave(member));
      conn.on("message", (conn, data) => {
        if (!admit(member, data)) return;
        const request = parseClientMessage(data);
        if ("error" in request) {
          send(conn, {
            type: "error",
            message: request.error,
            ...(request.id === undefined ? {} : { id: request.id }),
          });
        } else if (request.type === "ping") {
          send(conn, { type: "pong" });
        } else if (request.type === "join") {
          join(member, request.room);
        } else {
          say(member, request);
        }
      });
    },
  });

  if (options.broker) {
    const sweep = setInterval(() => {
      for (const members of rooms.values()) {
        for (const member of members) {
          if (
            !member.behind && member.conn.bufferedAmount > SLOW_MEMBER_BYTES
          ) {
            fallBehind(member);
          }
        }
      }
    }, SWEEP_MS);
    const stop = () => clearInterval(sweep);
    server.finished.then(stop, stop);
  }
  return server;
}

// A computed specifier, so that Deno does not fetch the Redis client (an
// npm package) when the demo runs without REDIS_URL.
const REDIS_BROKER = new URL("../redis_broker.ts", import.meta.url).href;

if (import.meta.main) {
  const port = Number(Deno.env.get("PORT") ?? "8000");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(
      `chat_server: PORT must be an integer from 0 to 65535, got "${
        Deno.env.get("PORT")
      }"`,
    );
    Deno.exit(2);
  }
  // REDIS_URL switches rooms to Redis, to run several instances. The Redis
  // module (and its npm client) is loaded only then.
  const redisUrl = Deno.permissions.querySync({
      name: "env",
      variable: "REDIS_URL",
    }).state === "granted"
    ? Deno.env.get("REDIS_URL")
    : undefined;
  const broker = redisUrl
    ? new (await import(REDIS_BROKER) as typeof import("../redis_broker.ts"))
      .RedisBroker({ url: redisUrl })
    : undefined;
  const server = startChatServer({
    port,
    ...(broker ? { broker } : {}),
    onListen({ hostname, port }) {
      console.log(
        `Chat demo: open http://${hostname}:${port}/${
          redisUrl ? " (rooms shared through Redis)" : ""
        }`,
      );
    },
  });
  // Graceful shutdown: close every connection with 1001, then stop listening.
  const stop = () => server.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
}
