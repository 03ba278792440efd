import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { Message, OPCODE } from "../message.ts";
import { createHandler } from "../server.ts";
import {
  type Broker,
  type BrokerReceiver,
  MemoryBroker,
  type TopicPayload,
  Topics,
} from "../topics.ts";
import { startChatServer } from "../examples/chat_server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { expectText, joinTopics } from "./_topic_client.ts";
import { topicProtocol } from "./_topic_protocol.ts";
import {
  assertLoneSurrogatesRefused,
  assertTopicsCarriedExactly,
} from "./_topic_names.ts";

/** A broker that records the registry's calls, for checking the contract. */
class RecordingBroker implements Broker {
  calls: string[] = [];
  payloads: TopicPayload[] = [];
  receive: BrokerReceiver | undefined;
  failPublish: Error | undefined;
  #waiting: { count: number; resolve: () => void }[] = [];
  /** Resolves once `count` calls have been recorded. */
  until(count: number): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting.push({ count, resolve });
    return promise;
  }
  #record(call: string): void {
    this.calls.push(call);
    for (const waiter of this.#waiting) {
      if (this.calls.length >= waiter.count) waiter.resolve();
    }
  }
  start(receive: BrokerReceiver): void {
    this.#record("start");
    this.receive = receive;
  }
  subscribe(topic: string): void {
    this.#record(`subscribe ${topic}`);
  }
  unsubscribe(topic: string): void {
    this.#record(`unsubscribe ${topic}`);
  }
  publish(topic: string, payload: TopicPayload): Promise<void> {
    this.#record(`publish ${topic}`);
    this.payloads.push(payload);
    return this.failPublish
      ? Promise.reject(this.failPublish)
      : Promise.resolve();
  }
  close(): void {
    this.#record("close");
  }
}

Deno.test("conn.publish() reaches every other subscriber of the topic but not the publisher", async () => {
  await using server = listen({ onEstablish: topicProtocol() });
  await using alice = await joinTopics(wsUrl(server), "room");
  await using bob = await joinTopics(wsUrl(server), "room");
  await using carol = await joinTopics(wsUrl(server), "other");
  assertEquals(server.subscriberCount("room"), 2);

  alice.send("pub room hello");
  // The publisher's next message is the acknowledgement, not its own publish.
  await expectText(alice, "published");
  await expectText(bob, "hello");
  // Carol, on another topic, gets nothing: her next message answers `who`.
  carol.send("who");
  await expectText(carol, "main");
});

Deno.test("server.publish() keeps text as text and binary as binary, whatever form the data has", async () => {
  await using server = listen({ onEstablish: topicProtocol() });
  await using client = await joinTopics(wsUrl(server), "t");

  const bytes = new Uint8Array([0, 1, 2, 3, 255]);
  await server.publish("t", "héllo");
  await server.publish("t", bytes);
  await server.publish("t", bytes.buffer);
  await server.publish("t", new DataView(bytes.buffer, 1, 2));
  await server.publish("t", new Message("text message"));
  await server.publish("t", new Message(new Uint8Array([7]), OPCODE.BINARY));
  // A text Message carrying bytes is still text.
  await server.publish("t", new Message(new Uint8Array([0x68, 0x69]), 1));

  const received: Message[] = [];
  for (let i = 0; i < 7; i++) {
    received.push(await within(client.nextMessage(), `message ${i}`));
  }
  assertEquals(received.map((m) => m.isText()), [
    true,
    false,
    false,
    false,
    true,
    false,
    true,
  ]);
  assertEquals(received[0]!.decodedBody(), "héllo");
  assertEquals(received[1]!.body, bytes);
  assertEquals(received[2]!.body, bytes);
  assertEquals(received[3]!.body, new Uint8Array([1, 2]));
  assertEquals(received[4]!.decodedBody(), "text message");
  assertEquals(received[5]!.body, new Uint8Array([7]));
  assertEquals(received[6]!.decodedBody(), "hi");
});

Deno.test("a publish is normalised once and the same value is sent to every local subscriber", async () => {
  const sent = new Map<Connection, unknown[]>();
  await using server = listen({
    onEstablish(conn) {
      // Record what the registry hands to each connection's send().
      const send = conn.send.bind(conn);
      const log: unknown[] = [];
      sent.set(conn, log);
      conn.send = (data) => (log.push(data), send(data));
      topicProtocol()(conn);
    },
  });
  const clients = [];
  for (let i = 0; i < 3; i++) {
    clients.push(await joinTopics(wsUrl(server), "t"));
  }
  try {
    const view = new DataView(new ArrayBuffer(8), 2, 4);
    await server.publish("t", view);
    for (const client of clients) {
      const message = await within(client.nextMessage(), "the publish");
      assertEquals(message.body, new Uint8Array(4));
    }
    const payloads = [...sent.values()].map((log) => log.at(-1));
    assertEquals(payloads.length, 3);
    assert(payloads[0] instanceof Uint8Array);
    assertStrictEquals(payloads[1], payloads[0]);
    assertStrictEquals(payloads[2], payloads[0]);
  } finally {
    for (const client of clients) await client.close().closed;
  }
});

Deno.test("subscribe(), unsubscribe(), conn.topics and subscriberCount() track membership", async () => {
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    onEstablish: (conn) => established.resolve(conn),
  });
  await using _client = await connect(wsUrl(server));
  const conn = await within(established.promise, "the server connection");

  await conn.subscribe("a");
  await conn.subscribe("a"); // twice is once
  await conn.subscribe("b");
  assertEquals([...conn.topics], ["a", "b"]);
  assertEquals(server.subscriberCount("a"), 1);
  assertEquals(server.topics.topics, ["a", "b"]);

  // conn.topics is a snapshot.
  (conn.topics as Set<string>).add("not really");
  assertEquals([...conn.topics], ["a", "b"]);

  await conn.unsubscribe("a");
  await conn.unsubscribe("a"); // not subscribed: nothing happens
  assertEquals([...conn.topics], ["b"]);
  assertEquals(server.subscriberCount("a"), 0);
  assertEquals(server.topics.topics, ["b"]);
});

Deno.test("a connection leaves all its topics when it finishes, and the broker hears the last leave", async () => {
  const broker = new RecordingBroker();
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    broker,
    onEstablish: (conn) => established.resolve(conn),
  });
  const client = await connect(wsUrl(server));
  const conn = await within(established.promise, "the server connection");
  await conn.subscribe("a");
  await conn.subscribe("b");
  assertEquals(broker.calls, ["start", "subscribe a", "subscribe b"]);

  await client.close().closed;
  await within(conn.closed, "the server side to finish");
  // Membership is dropped by a callback on `closed` registered at the first
  // subscribe, which ran before this await resumed.
  assertEquals(server.subscriberCount("a"), 0);
  assertEquals(server.subscriberCount("b"), 0);
  assertEquals([...conn.topics], []);
  await within(broker.until(5), "the broker unsubscribes");
  assertEquals(broker.calls.slice(3).sort(), [
    "unsubscribe a",
    "unsubscribe b",
  ]);

  // Subscribing a finished connection does nothing.
  await conn.subscribe("c");
  assertEquals(server.subscriberCount("c"), 0);
});

Deno.test("the broker is told only about the first join and the last leave, in order, even on a quick leave and rejoin", async () => {
  const broker = new RecordingBroker();
  const established: Connection[] = [];
  const two = Promise.withResolvers<void>();
  await using server = listen({
    broker,
    onEstablish(conn) {
      if (established.push(conn) === 2) two.resolve();
    },
  });
  await using _a = await connect(wsUrl(server));
  await using _b = await connect(wsUrl(server));
  await within(two.promise, "two server connections");
  const [first, second] = established as [Connection, Connection];

  await first.subscribe("t");
  await second.subscribe("t");
  await first.unsubscribe("t");
  // Last leave and an immediate rejoin, without awaiting in between.
  const left = second.unsubscribe("t");
  const rejoined = first.subscribe("t");
  await left;
  await rejoined;
  assertEquals(broker.calls, [
    "start",
    "subscribe t",
    "unsubscribe t",
    "subscribe t",
  ]);
  assertEquals(server.subscriberCount("t"), 1);
});

Deno.test("publishes from the broker reach local subscribers, and the server closes its broker on shutdown", async () => {
  const broker = new RecordingBroker();
  const server = listen({ broker, onEstablish: topicProtocol() });
  try {
    await using client = await joinTopics(wsUrl(server), "t");
    broker.receive!("t", "from elsewhere");
    broker.receive!("t", new Uint8Array([9]));
    broker.receive!("nobody-here", "dropped: no subscriber");
    await expectText(client, "from elsewhere");
    assertEquals(
      (await within(client.nextMessage(), "binary")).body,
      new Uint8Array([9]),
    );
    client.send("pub t x");
    await expectText(client, "published");
    assertEquals(broker.calls.at(-1), "publish t");
    assertEquals(broker.payloads.at(-1), "x");
  } finally {
    await server.shutdown();
  }
  assertEquals(broker.calls.at(-1), "close");
});

Deno.test("a publish the broker refuses still reaches local subscribers and rejects, without crashing unawaited", async () => {
  const broker = new RecordingBroker();
  broker.failPublish = new Error("Cannot publish: broker down");
  await using server = listen({ broker, onEstablish: topicProtocol() });
  await using alice = await joinTopics(wsUrl(server), "t");
  await using bob = await joinTopics(wsUrl(server), "t");

  alice.send("pub t hello"); // the protocol awaits the rejection
  await expectText(alice, "failed Cannot publish: broker down");
  await expectText(bob, "hello");

  const error = await assertRejects(() => server.publish("t", "again"));
  assertEquals((error as Error).message, "Cannot publish: broker down");
  await expectText(alice, "again");
  // Not awaited at all: the test's sanitizers fail on an unhandled rejection.
  server.publish("t", "ignored result");
  await expectText(bob, "again");
  await expectText(bob, "ignored result");
});

Deno.test("MemoryBroker carries publishes between servers in one process, exactly once, in order, keeping text and binary", async () => {
  const first = new MemoryBroker();
  await using a = listen({ broker: first, onEstablish: topicProtocol("a") });
  await using b = listen({
    broker: new MemoryBroker(first),
    onEstablish: topicProtocol("b"),
  });
  await using onA = await joinTopics(wsUrl(a), "t");
  await using onB = await joinTopics(wsUrl(b), "t");
  await using publisher = await joinTopics(wsUrl(b));

  publisher.send("burst t n 50");
  await expectText(publisher, "published 50");
  publisher.send("pubbin t 1,2");
  await expectText(publisher, "published");
  for (const client of [onA, onB]) {
    for (let i = 0; i < 50; i++) await expectText(client, `n ${i}`);
    const binary = await within(client.nextMessage(), "the binary publish");
    assert(binary.isBinary());
    assertEquals(binary.body, new Uint8Array([1, 2]));
    client.send("who"); // nothing else (no duplicate) is queued before this
  }
  await expectText(onA, "a");
  await expectText(onB, "b");
});

Deno.test("publishing and subscribing reject bad input with TypeErrors", async () => {
  await using topics = new Topics();
  const established = Promise.withResolvers<Connection>();
  await using server = listen({
    topics,
    onEstablish: (conn) => established.resolve(conn),
  });
  await using client = await connect(wsUrl(server));
  const conn = await within(established.promise, "the server connection");

  assertThrows(
    () => server.publish("t", new Blob(["x"]) as never),
    TypeError,
    'Cannot publish a Blob to "t": read it first (await blob.bytes()) so that publishes keep their order',
  );
  assertThrows(
    () => server.publish("t", new Message("", OPCODE.PING)),
    TypeError,
    "Cannot send a Message with opcode 9",
  );
  assertThrows(
    () => conn.subscribe(""),
    TypeError,
    'Cannot subscribe to a topic: it must be a non-empty string, got ""',
  );
  assertThrows(
    () => conn.publish(42 as never, "x"),
    TypeError,
    "Cannot publish to a topic: it must be a non-empty string, got number",
  );
  assertThrows(
    () => client.subscribe("t"),
    TypeError,
    'Cannot subscribe to "t": this client-side connection has no topic registry (connections from serve() and createHandler() have one; pass the topics option to upgrade() or new Connection())',
  );
  assertThrows(
    () => client.publish("t", "x"),
    TypeError,
    'Cannot publish to "t": this client-side connection has no topic registry',
  );
  assertEquals(client.topics.size, 0);
  assertThrows(
    () =>
      createHandler({
        onEstablish() {},
        topics,
        broker: new MemoryBroker(),
      }),
    TypeError,
    "Cannot create a WebSocket handler: give either broker or topics, not both (a topic registry has its own broker)",
  );
  const broker = new MemoryBroker();
  broker.start(() => {});
  assertThrows(
    () => broker.start(() => {}),
    TypeError,
    "Cannot start a MemoryBroker: it already serves a topic registry (create one broker per registry)",
  );
});

Deno.test("MemoryBroker carries every well-formed topic name exactly, BOM and U+FFFD included", async () => {
  const first = new MemoryBroker();
  await using a = listen({ broker: first, onEstablish: topicProtocol("a") });
  await using b = listen({
    broker: new MemoryBroker(first),
    onEstablish: topicProtocol("b"),
  });
  await assertTopicsCarriedExactly(a, b, "b");
});

Deno.test("a topic with a lone surrogate is refused with a TypeError on every path (MemoryBroker)", async () => {
  await using server = listen({ onEstablish: topicProtocol("a") });
  await assertLoneSurrogatesRefused(server, "a");
});

Deno.test("a Subscriber that is not a Connection receives publishes and leaves its topics when closed settles", async () => {
  const broker = new RecordingBroker();
  await using topics = new Topics({ broker });
  const gone = Promise.withResolvers<void>();
  const received: TopicPayload[] = [];
  const subscriber = {
    readyState: WebSocket.OPEN,
    closed: gone.promise,
    send(payload: TopicPayload) {
      received.push(payload);
    },
  };
  await topics.subscribe(subscriber, "t");
  await topics.publish("t", "text");
  await topics.publish("t", new Uint8Array([1]));
  assertEquals(received, ["text", new Uint8Array([1])]);
  // A rejecting `closed` counts as gone too.
  gone.reject(new Error("transport lost"));
  await within(broker.until(5), "the broker to hear the last leave");
  assertEquals(broker.calls, [
    "start",
    "subscribe t",
    "publish t",
    "publish t",
    "unsubscribe t",
  ]);
  assertEquals(topics.subscriberCount("t"), 0);
  assertEquals(topics.topicsOf(subscriber).size, 0);
});

Deno.test("topics.ts and the brokers import nothing from the connection layer, not even a type", async () => {
  const root = new URL("../", import.meta.url);
  for (
    const file of [
      "topics.ts",
      "broadcast_channel_broker.ts",
      "redis_broker.ts",
    ]
  ) {
    const { success, stdout, stderr } = await new Deno.Command(
      Deno.execPath(),
      {
        args: ["info", "--json", file],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      },
    ).output();
    assert(success, new TextDecoder().decode(stderr));
    const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
      modules: { specifier: string }[];
    };
    const local = graph.modules
      .map((module) => module.specifier)
      .filter((specifier) => specifier.startsWith(root.href))
      .map((specifier) => specifier.slice(root.href.length));
    assert(local.includes(file), `${file} is in its own graph`);
    assertEquals(
      local.filter((path) =>
        /^(_?connection|server|client|reconnect|close|handshake|backpressure)\b/
          .test(path)
      ),
      [],
      `${file} imports (directly or not): ${local.join(", ")}`,
    );
  }
});

Deno.test("a closed registry refuses publishes", async () => {
  const topics = new Topics();
  await topics.close();
  await topics.close(); // again: same result
  assertThrows(
    () => topics.publish("t", "x"),
    TypeError,
    'Cannot publish to "t": the topic registry is closed',
  );
});

Deno.test("a server given its own Topics does not close it on shutdown", async () => {
  await using topics = new Topics();
  {
    await using _server = listen({ topics, onEstablish() {} });
  }
  await topics.publish("t", "still open");
});

Deno.test("the chat example keeps each line inside the sender's room", async () => {
  await using chat = startChatServer({ port: 0 });
  const url = `ws://127.0.0.1:${chat.addr.port}/ws`;
  await using alice = await connect(url);
  await using bob = await connect(url);
  await using carol = await connect(url);
  const say = (conn: Connection, text: string) =>
    conn.send(JSON.stringify({ type: "say", name: "n", text }));
  const next = async (conn: Connection) =>
    (await within(conn.nextMessage(), "a chat event")).json<
      Record<string, unknown>
    >();

  carol.send(JSON.stringify({ type: "join", room: "kitchen" }));
  assertEquals(await next(carol), { type: "joined", room: "kitchen" });
  say(alice, "in the lobby");
  assertEquals((await next(alice)).text, "in the lobby");
  assertEquals((await next(bob)).text, "in the lobby");
  say(carol, "in the kitchen");
  // Carol's next event is her own line: the lobby's did not reach her.
  assertEquals((await next(carol)).text, "in the kitchen");

  bob.send(JSON.stringify({ type: "join", room: "kitchen" }));
  assertEquals(await next(bob), { type: "joined", room: "kitchen" });
  say(carol, "hi bob");
  assertEquals((await next(bob)).text, "hi bob");
  assertEquals((await next(carol)).text, "hi bob");
  say(alice, "alone now");
  assertEquals((await next(alice)).text, "alone now");

  bob.send(JSON.stringify({ type: "join", room: "" }));
  assertEquals(await next(bob), {
    type: "error",
    message: 'Cannot join: "room" must be a non-empty string',
  });
  bob.send(JSON.stringify({ type: "join", room: "x".repeat(65) }));
  assertEquals(await next(bob), {
    type: "error",
    message: 'Cannot join: "room" is 65 characters long, the limit is 64',
  });
  assertEquals(chat.subscriberCount("kitchen"), 2);
  assertEquals(chat.subscriberCount("lobby"), 1);
});
