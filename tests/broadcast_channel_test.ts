import { assert, assertEquals, assertThrows } from "@std/assert";
import { BroadcastChannelBroker } from "../broadcast_channel_broker.ts";
import type { Connection } from "../connection.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { DenoProcess } from "./_deno_process.ts";
import { expectText, joinTopics } from "./_topic_client.ts";
import { topicProtocol } from "./_topic_protocol.ts";
import {
  assertLoneSurrogatesRefused,
  assertTopicsCarriedExactly,
} from "./_topic_names.ts";

/** A channel name no other test (or earlier run) uses. */
function freshChannel(): string {
  return `anyws-test-${crypto.randomUUID()}`;
}

Deno.test("BroadcastChannelBroker carries publishes between servers exactly once, in order, keeping text and binary", async () => {
  const name = freshChannel();
  await using a = listen({
    broker: new BroadcastChannelBroker({ name }),
    onEstablish: topicProtocol("a"),
  });
  await using b = listen({
    broker: new BroadcastChannelBroker({ name }),
    onEstablish: topicProtocol("b"),
  });
  await using onA = await joinTopics(wsUrl(a), "t");
  await using onB = await joinTopics(wsUrl(b), "t");
  await using publisher = await joinTopics(wsUrl(b));

  publisher.send("burst t n 100");
  await expectText(publisher, "published 100");
  publisher.send("pubbin t 0,1,255");
  await expectText(publisher, "published");
  for (const client of [onA, onB]) {
    for (let i = 0; i < 100; i++) await expectText(client, `n ${i}`);
    const binary = await within(client.nextMessage(), "the binary publish");
    assert(binary.isBinary());
    assertEquals(binary.body, new Uint8Array([0, 1, 255]));
    client.send("who"); // anything duplicated would come before the answer
  }
  await expectText(onA, "a");
  await expectText(onB, "b");
});

Deno.test("BroadcastChannelBroker only hands on topics with a local subscriber", async () => {
  const name = freshChannel();
  await using a = listen({
    broker: new BroadcastChannelBroker({ name }),
    onEstablish: topicProtocol("a"),
  });
  await using b = listen({
    broker: new BroadcastChannelBroker({ name }),
    onEstablish: topicProtocol("b"),
  });
  await using onA = await joinTopics(wsUrl(a), "left", "stays");
  await using publisher = await joinTopics(wsUrl(b));
  onA.send("unsub left");
  await expectText(onA, "unsubscribed left");
  assertEquals(a.subscriberCount("left"), 0);

  publisher.send("pub left not for a");
  await expectText(publisher, "published");
  publisher.send("pub stays for a");
  await expectText(publisher, "published");
  // Same channel, same order: had "left" arrived, it would come first.
  await expectText(onA, "for a");
});

Deno.test("BroadcastChannelBroker carries every well-formed topic name exactly, BOM and U+FFFD included", async () => {
  const name = freshChannel();
  await using a = listen({
    broker: new BroadcastChannelBroker({ name }),
    onEstablish: topicProtocol("a"),
  });
  await using b = listen({
    broker: new BroadcastChannelBroker({ name }),
    onEstablish: topicProtocol("b"),
  });
  await assertTopicsCarriedExactly(a, b, "b");
});

Deno.test("a topic with a lone surrogate is refused with a TypeError on every path (BroadcastChannelBroker)", async () => {
  await using server = listen({
    broker: new BroadcastChannelBroker({ name: freshChannel() }),
    onEstablish: topicProtocol("a"),
  });
  await assertLoneSurrogatesRefused(server, "a");
});

Deno.test("BroadcastChannelBroker reports foreign messages on its channel to onError", async () => {
  const name = freshChannel();
  const errors: Error[] = [];
  const reported = Promise.withResolvers<void>();
  const broker = new BroadcastChannelBroker({
    name,
    onError(error) {
      errors.push(error);
      reported.resolve();
    },
  });
  broker.start(() => {});
  const stranger = new BroadcastChannel(name);
  try {
    stranger.postMessage({ hello: "world" });
    await within(reported.promise, "the error report");
  } finally {
    stranger.close();
    broker.close();
  }
  assertEquals(errors.length, 1);
  assert(errors[0] instanceof TypeError);
  assertEquals(
    errors[0].message,
    `Cannot read a message on BroadcastChannel "${name}": it is not an anyws publish (is another application using this channel name?)`,
  );
});

Deno.test("BroadcastChannelBroker refuses to publish when not started or closed, and to start twice", () => {
  const broker = new BroadcastChannelBroker({ name: freshChannel() });
  assertThrows(
    () => broker.publish("t", "x"),
    TypeError,
    'Cannot publish to "t": the BroadcastChannelBroker is not started',
  );
  broker.start(() => {});
  assertThrows(
    () => broker.start(() => {}),
    TypeError,
    "Cannot start a BroadcastChannelBroker: it is already started (create one broker per topic registry)",
  );
  broker.close();
  broker.close(); // again: nothing
  assertThrows(
    () => broker.publish("t", "x"),
    TypeError,
    'Cannot publish to "t": the BroadcastChannelBroker is closed',
  );
});

Deno.test("under deno serve --parallel, a publish reaches subscribers on every worker", async () => {
  await using server = new DenoProcess([
    "serve",
    "-A",
    "--parallel",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "tests/_parallel_server.ts",
  ], { DENO_JOBS: "2", ANYWS_CHANNEL: freshChannel() });
  const url = await within(server.wsUrl, "deno serve to listen", 30);

  // The workers share one listening socket (Deno 2.9.6 on Linux): each
  // connection goes to whichever worker accepts first, about 4 in 5 to one of
  // them on an idle machine. Keep opening until two workers hold subscribers
  // (bounded: 64 on one worker would mean the workers do not share the port).
  const clients: { conn: Connection; worker: string }[] = [];
  const workers = new Set<string>();
  try {
    while (workers.size < 2 && clients.length < 64) {
      const conn = await joinTopics(url, "room");
      conn.send("who");
      const worker = `${await within(conn.nextMessage(), "the worker id")}`;
      clients.push({ conn, worker });
      workers.add(worker);
    }
    assertEquals(workers.size, 2, "connections reached two workers");

    const [publisher, ...others] = clients;
    publisher!.conn.send("burst room m 20");
    await expectText(publisher!.conn, "published 20");
    for (const { conn, worker } of others) {
      for (let i = 0; i < 20; i++) await expectText(conn, `m ${i}`);
      conn.send("who"); // a duplicate would arrive before the answer
      await expectText(conn, worker);
    }
  } finally {
    for (const { conn } of clients) await conn.close().closed;
    // The workers' open BroadcastChannels keep `deno serve` from finishing a
    // SIGTERM shutdown (Deno 2.9.6), so end it outright.
    await server.stop("SIGKILL");
  }
});
