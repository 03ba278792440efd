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

// The public API, name by name: internal helpers stay importable from their
// own entry point (`@anyws/anyws/message`, `/connection`, `/server`) without
// crowding this one. tests/exports_test.ts holds the list; change both.
// isUpgradeRequest stays: middleware needs it to pass other requests on
// (docs/frameworks.md).
export {
  type BinaryData,
  CLOSE_CODE,
  Message,
  OPCODE,
  type SendData,
} from "./message.ts";
export {
  type CloseInfo,
  Connection,
  ConnectionClosedError,
  type ConnectionEventMap,
  type ConnectionHandlerName,
  type ConnectionHandlers,
  type ConnectionLimits,
  type ConnectionOptions,
  type DrainOptions,
  type EachMessageHandler,
  type FinishHandler,
  type MessageHandler,
  type NextMessageHandler,
  type NextMessageOptions,
  type ParseErrorHandler,
  type ReconnectHandler,
  type ReconnectingHandler,
  type Role,
  type Unregister,
  type WriteOptions,
} from "./connection.ts";
export {
  createHandler,
  type HandlerOptions,
  HandshakeError,
  isUpgradeRequest,
  type ProtocolChooser,
  serve,
  type ServeOptions,
  Server,
  type ShutdownOptions,
  upgrade,
  type UpgradeOptions,
  type UpgradeResult,
} from "./server.ts";
export {
  type Authorize,
  type AuthorizeResult,
  type OriginAllowlist,
  type OriginOptions,
} from "./handshake.ts";
export {
  Client,
  connect,
  ConnectError,
  type ConnectOptions,
} from "./client.ts";
// Reconnector and the types its signatures name stay while
// ConnectionOptions.reconnect names it: a user of `new Connection(socket,
// { reconnect })` builds one.
export {
  type OpenSocket,
  type OverflowPolicy,
  type QueuedData,
  QueueOverflowError,
  ReconnectEvent,
  type ReconnectInfo,
  ReconnectingEvent,
  type ReconnectingInfo,
  type ReconnectOptions,
  Reconnector,
  ReconnectPolicy,
  type ReconnectStats,
  type ReopenHooks,
} from "./reconnect.ts";
export {
  type Broker,
  type BrokerReceiver,
  MemoryBroker,
  type PublishData,
  type Subscriber,
  type TopicPayload,
  Topics,
  type TopicsOptions,
} from "./topics.ts";
export {
  BroadcastChannelBroker,
  type BroadcastChannelBrokerOptions,
} from "./broadcast_channel_broker.ts";
