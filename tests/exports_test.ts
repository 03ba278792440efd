/**
 * The public surface of every entry point, as `deno doc --json` sees it,
 * against a snapshot: a name that disappears breaks users, so it must be a
 * decision (CHANGELOG.md), not an accident of an `export *`.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { packageEntries, runDeno } from "./_package.ts";

/**
 * Each entry point's exported names, sorted; `type ` marks the names declared
 * only as types (interfaces and type aliases).
 */
const SNAPSHOT: Record<string, string[]> = {
  ".": [
    "type Authorize",
    "type AuthorizeResult",
    "type BinaryData",
    "BroadcastChannelBroker",
    "type BroadcastChannelBrokerOptions",
    "type Broker",
    "type BrokerReceiver",
    "Client",
    "CLOSE_CODE",
    "type CloseInfo",
    "connect",
    "ConnectError",
    "Connection",
    "ConnectionClosedError",
    "type ConnectionEventMap",
    "type ConnectionHandlerName",
    "type ConnectionHandlers",
    "type ConnectionLimits",
    "type ConnectionOptions",
    "type ConnectOptions",
    "createHandler",
    "type DrainOptions",
    "type EachMessageHandler",
    "type FinishHandler",
    "type HandlerOptions",
    "HandshakeError",
    "isUpgradeRequest",
    "MemoryBroker",
    "Message",
    "type MessageHandler",
    "type NextMessageHandler",
    "type NextMessageOptions",
    "OPCODE",
    "type OpenSocket",
    "type OriginAllowlist",
    "type OriginOptions",
    "type OverflowPolicy",
    "type ParseErrorHandler",
    "type ProtocolChooser",
    "type PublishData",
    "type QueuedData",
    "QueueOverflowError",
    "ReconnectEvent",
    "type ReconnectHandler",
    "type ReconnectInfo",
    "ReconnectingEvent",
    "type ReconnectingHandler",
    "type ReconnectingInfo",
    "type ReconnectOptions",
    "Reconnector",
    "ReconnectPolicy",
    "type ReconnectStats",
    "type ReopenHooks",
    "type Role",
    "type SendData",
    "serve",
    "type ServeOptions",
    "Server",
    "type ShutdownOptions",
    "type Subscriber",
    "type TopicPayload",
    "Topics",
    "type TopicsOptions",
    "type Unregister",
    "upgrade",
    "type UpgradeOptions",
    "type UpgradeResult",
    "type WriteOptions",
  ],
  "./connection": [
    "type BinaryData",
    "checkCloseCode",
    "checkConnectionOptions",
    "type CloseInfo",
    "Connection",
    "ConnectionClosedError",
    "type ConnectionEventMap",
    "type ConnectionHandlerName",
    "type ConnectionHandlers",
    "type ConnectionLimits",
    "type ConnectionOptions",
    "type DrainOptions",
    "type EachMessageHandler",
    "type FinishHandler",
    "Message",
    "type MessageHandler",
    "type NextMessageHandler",
    "type NextMessageOptions",
    "type ParseErrorHandler",
    "type PublishData",
    "ReconnectEvent",
    "type ReconnectHandler",
    "type ReconnectInfo",
    "ReconnectingEvent",
    "type ReconnectingHandler",
    "type ReconnectingInfo",
    "Reconnector",
    "type ReconnectStats",
    "type Role",
    "type SendData",
    "Topics",
    "type Unregister",
    "type WriteOptions",
  ],
  "./message": [
    "type BinaryData",
    "CLOSE_CODE",
    "Message",
    "OPCODE",
    "sendableLength",
    "type SendData",
    "toSendable",
    "utf8Length",
  ],
  "./server": [
    "type Authorize",
    "type AuthorizeResult",
    "type Broker",
    "checkHandshake",
    "checkOrigin",
    "chooseProtocol",
    "Connection",
    "type ConnectionLimits",
    "createHandler",
    "type HandlerOptions",
    "HandshakeError",
    "isUpgradeRequest",
    "type OriginAllowlist",
    "type OriginOptions",
    "parseProtocols",
    "type ProtocolChooser",
    "type PublishData",
    "runAuthorize",
    "type SendData",
    "serve",
    "type ServeOptions",
    "Server",
    "type ShutdownOptions",
    "Topics",
    "upgrade",
    "type UpgradeOptions",
    "type UpgradeResult",
    "type Verdict",
  ],
  "./client": [
    "Client",
    "connect",
    "ConnectError",
    "Connection",
    "type ConnectionLimits",
    "type ConnectOptions",
    "type ReconnectOptions",
  ],
  "./redis": [
    "type Broker",
    "type BrokerReceiver",
    "RedisBroker",
    "type RedisBrokerOptions",
    "type TopicPayload",
  ],
  "./reconnect": [
    "type CloseInfo",
    "type OpenSocket",
    "type OverflowPolicy",
    "type QueuedData",
    "QueueOverflowError",
    "ReconnectEvent",
    "type ReconnectInfo",
    "ReconnectingEvent",
    "type ReconnectingInfo",
    "type ReconnectOptions",
    "Reconnector",
    "ReconnectPolicy",
    "type ReconnectStats",
    "type ReopenHooks",
  ],
  "./testing": [
    "type CloseInfo",
    "ConnectError",
    "Connection",
    "type ConnectOptions",
    "type FetchHandler",
    "Message",
    "type SendData",
    "type ServeOptions",
    "Server",
    "type TestApp",
    "testConnect",
    "TestConnection",
    "type TestConnectOptions",
    "type TestOptions",
    "testServer",
    "TestServer",
    "type TestServerOptions",
  ],
  "./cli": [
    "EXIT_STATUS",
    "main",
  ],
};

/** Declaration kinds that exist at run time (the rest are types only). */
const VALUE_KINDS = new Set([
  "class",
  "function",
  "variable",
  "enum",
  "namespace",
]);

/** The exported names of `file`, `type `-prefixed when types only, sorted. */
async function exportedNames(file: string): Promise<string[]> {
  const doc = JSON.parse(await runDeno(["doc", "--json", file])) as {
    nodes: Record<string, {
      symbols: { name: string; declarations: { kind: string }[] }[];
    }>;
  };
  const names = Object.values(doc.nodes).flatMap(({ symbols }) =>
    symbols.map(({ name, declarations }) =>
      declarations.some(({ kind }) => VALUE_KINDS.has(kind))
        ? name
        : `type ${name}`
    )
  );
  return [...new Set(names)].sort((a, b) =>
    a.replace(/^type /, "").localeCompare(b.replace(/^type /, "")) ||
    a.localeCompare(b)
  );
}

for (const [entry, file] of Object.entries(packageEntries())) {
  Deno.test(`the ${entry} entry point (${file}) exports the snapshot's names`, async () => {
    const actual = await exportedNames(file);
    const expected = SNAPSHOT[entry] ?? [];
    const gone = expected.filter((name) => !actual.includes(name));
    const added = actual.filter((name) => !expected.includes(name));
    assertEquals(
      actual,
      expected,
      `The exports of "${entry}" changed (gone: ${
        gone.join(", ") || "none"
      }; ` +
        `new: ${added.join(", ") || "none"}). A name that goes breaks users: ` +
        `record it in CHANGELOG.md. If the change is meant, set SNAPSHOT["${entry}"] ` +
        `in tests/exports_test.ts to:\n${JSON.stringify(actual, null, 2)}\n`,
    );
  });
}

Deno.test("the main entry point names only types it exports itself", async () => {
  // `deno doc --lint` fails on a public signature that names a type the
  // module does not export: a user of "@anyws/anyws" could not write it.
  await runDeno(["doc", "--lint", packageEntries()["."]!]);
});
