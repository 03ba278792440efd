/**
 * anyws: one WebSocket {@linkcode Connection} class for both sides of a
 * socket in Deno, with the API of Perl's Plack::App::WebSocket and
 * AnyEvent::WebSocket::Client.
 *
 * - {@linkcode serve} starts a server and hands each connection to
 *   `onEstablish`; {@linkcode createHandler} and {@linkcode upgrade} do the
 *   same for `deno serve`, Deno Deploy and existing routers.
 * - {@linkcode connect} opens a client connection.
 * - A {@linkcode Connection} speaks Perl (`on("message", ...)`,
 *   `on("finish", ...)`, `next_message`, `each_message`), DOM
 *   (`addEventListener`) and pull style (`for await`, `nextMessage()`).
 * - Topics: `conn.subscribe(topic)`, `conn.publish(topic, data)` and
 *   `server.publish(topic, data)`, carried across `deno serve --parallel`
 *   workers by {@linkcode BroadcastChannelBroker} and across processes by
 *   `RedisBroker` (from `@anyws/anyws/redis`); see {@linkcode Topics}.
 *
 * @example Server and client, end to end
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 * import { assertEquals } from "@std/assert";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   onEstablish(conn) {
 *     conn.on("message", (conn, message) => {
 *       if (message === "quit") conn.close(1000, "bye");
 *       else conn.send(`echo: ${message}`);
 *     });
 *   },
 * });
 *
 * const conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * conn.send("hello");
 * assertEquals((await conn.nextMessage()).decodedBody(), "echo: hello");
 * conn.send("quit");
 * const { code, reason } = await conn.closed;
 * assertEquals([code, reason], [1000, "bye"]);
 * ```
 *
 * @module
 */

export * from "./message.ts";
export * from "./connection.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./handshake.ts";
export * from "./reconnect.ts";
export * from "./topics.ts";
export * from "./broadcast_channel_broker.ts";
