/**
 * Chat rooms: serves a small page at `/` whose script talks JSON over a
 * WebSocket at `/ws`; every chat line goes to everyone in the sender's room
 * (a topic). Everyone starts in the room "lobby"; the page joins the room
 * named by its URL fragment (`http://localhost:8000/#kitchen`).
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
 * - client → server: `{"type":"say","name":string,"text":string}`
 * - server → everyone in the sender's room, the sender too:
 *   `{"type":"said","name":string,"text":string,"at":number}`
 *   (`at`: the server's clock, milliseconds since the epoch)
 * - client → server: `{"type":"join","room":string}` leaves the current room
 *   for that one; the server answers `{"type":"joined","room":string}` once
 *   lines from every instance reach the client.
 * - server → the sender only, for anything it cannot accept (bad JSON, an
 *   unknown type, missing or oversized fields, binary data):
 *   `{"type":"error","message":string}`. The connection stays open.
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
/** The room every connection starts in. */
export const LOBBY = "lobby";
/**
 * The largest WebSocket message accepted, in bytes. A bigger one closes that
 * connection with 1009 (anyws's `maxMessageSize`); it is well above what the
 * two limits above allow, so honest clients never meet it.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** What a client sends to chat. */
export interface Say {
  type: "say";
  name: string;
  text: string;
}

/** What a client sends to change rooms. */
export interface Join {
  type: "join";
  room: string;
}

/** What the server sends: a chat line for a room, or an answer for one. */
export type ServerEvent =
  | { type: "said"; name: string; text: string; at: number }
  | { type: "joined"; room: string }
  | { type: "error"; message: string };

/**
 * Validates one received message: a `join`, or else a `say` (as
 * {@linkcode parseSay} checks it).
 *
 * @param data The message as `on("message")` hands it over.
 * @returns The request, or an error message for the sender.
 */
export function parseClientMessage(
  data: string | Uint8Array,
): Say | Join | { error: string } {
  let value: unknown;
  try {
    value = typeof data === "string" ? JSON.parse(data) : undefined;
  } catch {
    value = undefined; // parseSay reports it
  }
  if (
    typeof value !== "object" || value === null ||
    (value as { type?: unknown }).type !== "join"
  ) {
    return parseSay(data);
  }
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
  return { type: "join", room };
}

/**
 * Validates one received message.
 *
 * @param data The message as `on("message")` hands it over.
 * @returns The chat line, or an error message for the sender.
 */
export function parseSay(data: string | Uint8Array): Say | { error: string } {
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
  const { type, name, text } = value as Record<string, unknown>;
  if (type !== "say") {
    return {
      error: `Cannot chat: unknown message type ${
        JSON.stringify(type) ?? "undefined"
      } (expected "say" or "join")`,
    };
  }
  const nameProblem = checkField("name", name, MAX_NAME_LENGTH);
  if (nameProblem) return { error: nameProblem };
  const textProblem = checkField("text", text, MAX_TEXT_LENGTH);
  if (textProblem) return { error: textProblem };
  return { type, name: name as string, text: text as string };
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
  const send = (conn: Connection, event: ServerEvent) =>
    conn.send(JSON.stringify(event));

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
      let room = LOBBY;
      // Lines from other instances arrive once the broker confirms; a
      // failure there leaves the room working on this instance only.
      const reportBroker = (what: string) => (error: Error) =>
        send(conn, {
          type: "error",
          message: `${what} reached this server only: ${error.message}`,
        });
      conn.subscribe(room).catch(reportBroker("Joining the room"));
      conn.on("message", (conn, data) => {
        const request = parseClientMessage(data);
        if ("error" in request) {
          send(conn, { type: "error", message: request.error });
          return;
        }
        if (request.type === "join") {
          conn.unsubscribe(room);
          room = request.room;
          const joined = request.room;
          conn.subscribe(joined).then(
            () => send(conn, { type: "joined", room: joined }),
            reportBroker("Joining the room"),
          );
          return;
        }
        const said: ServerEvent = {
          type: "said",
          name: request.name,
          text: request.text,
          at: Date.now(),
        };
        // To the whole room, the sender included, on every instance.
        server.publish(room, JSON.stringify(said)).catch(
          reportBroker("Your message"),
        );
      });
    },
  });
  return server;
}

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
    ? new (await import("../redis_broker.ts")).RedisBroker({ url: redisUrl })
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
