/**
 * One process of the multi-process Redis test: a `serve()` server on a free
 * loopback port whose topics go through Redis. It prints its `ws://` URL,
 * answers `who` with its name, and shuts down on SIGTERM.
 *
 * ```sh
 * deno run -A tests/_redis_node.ts <redis url> <name>
 * ```
 *
 * @module
 */

import { RedisBroker } from "../redis_broker.ts";
import { serve } from "../server.ts";
import { topicProtocol } from "./_topic_protocol.ts";

const [url, name = "node"] = Deno.args;
const server = serve({
  port: 0,
  hostname: "127.0.0.1",
  broker: new RedisBroker({ url }),
  onEstablish: topicProtocol(name),
  onListen({ port }) {
    console.log(`${name} listening on ws://127.0.0.1:${port}/`);
  },
});
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown({ timeout: 1000 });
  Deno.exit(0);
});
