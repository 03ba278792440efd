/**
 * The `deno serve --parallel` fixture of broadcast_channel_test.ts: each
 * worker runs this module, answers `who` with its own random id, and shares
 * topics with the other workers through a BroadcastChannelBroker on the
 * channel named by `ANYWS_CHANNEL`.
 *
 * @module
 */

import { BroadcastChannelBroker } from "../broadcast_channel_broker.ts";
import { createHandler } from "../server.ts";
import { topicProtocol } from "./_topic_protocol.ts";

const worker = `worker-${crypto.randomUUID()}`;

export default {
  fetch: createHandler({
    broker: new BroadcastChannelBroker({
      name: Deno.env.get("ANYWS_CHANNEL") ?? "anyws-parallel-test",
    }),
    onEstablish: topicProtocol(worker),
  }),
} satisfies Deno.ServeDefaultExport;
