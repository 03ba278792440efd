import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { RedisBroker } from "../redis_broker.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { RedisServer, skipRedis } from "./_redis.ts";
import { DenoProcess } from "./_deno_process.ts";
import { expectText, joinTopics } from "./_topic_client.ts";
import { topicProtocol } from "./_topic_protocol.ts";
import {
  assertLoneSurrogatesRefused,
  assertTopicsCarriedExactly,
} from "./_topic_names.ts";

const ignore = skipRedis();

/** Calls of a broker's `onReady` and `onError`, awaitable by count. */
class BrokerEvents {
  readies = 0;
  errors: Error[] = [];
  #waiters: { done: () => boolean; resolve: () => void }[] = [];

  onReady = (): void => {
    this.readies++;
    this.#check();
  };
  onError = (error: Error): void => {
    this.errors.push(error);
    this.#check();
  };

  /** Resolves once `done()` holds. */
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ done, resolve });
    return promise;
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.done()) return true;
      waiter.resolve();
      return false;
    });
  }
}

/**
 * Reads messages until `count` end markers (`end <who>`) arrived, and
 * returns every text received, grouped by publisher (the first word).
 */
async function readUntilEnds(
  conn: Connection,
  count: number,
  bound: number,
): Promise<Map<string, string[]>> {
  const byPublisher = new Map<string, string[]>();
  let ends = 0;
  for (let i = 0; i < bound && ends < count; i++) {
    const text = `${await within(conn.nextMessage(), "a published message")}`;
    const [publisher = "", ...rest] = text.split(" ");
    if (publisher === "end") {
      ends++;
      continue;
    }
    const list = byPublisher.get(publisher) ?? [];
    list.push(rest.join(" "));
    byPublisher.set(publisher, list);
  }
  assertEquals(ends, count, "every publisher's end marker arrived");
  return byPublisher;
}

Deno.test({
  name:
    "RedisBroker carries publishes between servers once each, in order, keeping text and binary",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    await using a = listen({
      broker: new RedisBroker({ url: redis.url }),
      onEstablish: topicProtocol("a"),
    });
    await using b = listen({
      broker: new RedisBroker({ url: redis.url }),
      onEstablish: topicProtocol("b"),
    });
    await using onA = await joinTopics(wsUrl(a), "t");
    await using onB = await joinTopics(wsUrl(b), "t");
    await using publisher = await joinTopics(wsUrl(a));

    publisher.send("burst t n 200");
    await expectText(publisher, "published 200");
    publisher.send("pubbin t 0,1,255");
    await expectText(publisher, "published");
    publisher.send("pub t héllo €");
    await expectText(publisher, "published");
    // onA is on the publisher's server: Redis echoes the publish back to a,
    // which must not deliver it a second time.
    for (const client of [onA, onB]) {
      for (let i = 0; i < 200; i++) await expectText(client, `n ${i}`);
      const binary = await within(client.nextMessage(), "the binary publish");
      assert(binary.isBinary());
      assertEquals(binary.body, new Uint8Array([0, 1, 255]));
      await expectText(client, "héllo €");
      client.send("who"); // a duplicate would arrive before the answer
    }
    await expectText(onA, "a");
    await expectText(onB, "b");
  },
});

Deno.test({
  name:
    "RedisBroker stops receiving a topic when its last local subscriber leaves, and counts subscribing processes",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    await using a = listen({
      broker: new RedisBroker({ url: redis.url }),
      onEstablish: topicProtocol("a"),
    });
    await using b = listen({
      broker: new RedisBroker({ url: redis.url }),
      onEstablish: topicProtocol("b"),
    });
    await using onA = await joinTopics(wsUrl(a), "left", "stays");
    await using onB = await joinTopics(wsUrl(b), "stays");
    await using publisher = await joinTopics(wsUrl(b));
    const brokerOfA = a.topics.broker as RedisBroker;
    assertEquals(await brokerOfA.countProcesses("stays"), 2);
    assertEquals(await brokerOfA.countProcesses("left"), 1);
    onA.send("unsub left");
    await expectText(onA, "unsubscribed left");
    assertEquals(await brokerOfA.countProcesses("left"), 0);
    assertEquals(a.subscriberCount("left"), 0);
    assertEquals(b.subscriberCount("stays"), 1);

    publisher.send("pub left not for a");
    await expectText(publisher, "published");
    publisher.send("pub stays for a");
    await expectText(publisher, "published");
    // One publisher, one order: "left" would have come first.
    await expectText(onA, "for a");
    await expectText(onB, "for a");
  },
});

Deno.test({
  name:
    "RedisBroker carries every well-formed topic name exactly, BOM and U+FFFD included, with or without a prefix",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    for (const prefix of ["anyws:", ""]) {
      await using a = listen({
        broker: new RedisBroker({ url: redis.url, prefix }),
        onEstablish: topicProtocol("a"),
      });
      await using b = listen({
        broker: new RedisBroker({ url: redis.url, prefix }),
        onEstablish: topicProtocol("b"),
      });
      await assertTopicsCarriedExactly(a, b, "b");
    }
  },
});

Deno.test({
  name:
    "a topic with a lone surrogate is refused with a TypeError on every path (RedisBroker)",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    await using server = listen({
      broker: new RedisBroker({ url: redis.url }),
      onEstablish: topicProtocol("a"),
    });
    await assertLoneSurrogatesRefused(server, "a");
    const broker = server.topics.broker as RedisBroker;
    assertThrows(
      () => broker.countProcesses("\ud800"),
      TypeError,
      "Cannot count the subscribers of a topic: it must be well-formed Unicode, got a lone surrogate (U+D800 at index 0)",
    );
  },
});

Deno.test({
  name:
    "three serve() processes sharing Redis deliver every publish to every subscriber exactly once, in per-publisher order",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    const names = ["p1", "p2", "p3"];
    const nodes = names.map((name) =>
      new DenoProcess(["run", "-A", "tests/_redis_node.ts", redis.url, name])
    );
    const clients: Connection[] = [];
    try {
      const urls = await Promise.all(
        nodes.map((node) => within(node.wsUrl, "a node to listen", 30)),
      );
      // On each process: a publisher (itself subscribed) and a subscriber.
      const publishers: Connection[] = [];
      const subscribers: Connection[] = [];
      for (const url of urls) {
        const publisher = await joinTopics(url, "room");
        const subscriber = await joinTopics(url, "room");
        clients.push(publisher, subscriber);
        publishers.push(publisher);
        subscribers.push(subscriber);
      }

      const COUNT = 100;
      // All three publish at once; then each sends its end marker.
      for (const [i, publisher] of publishers.entries()) {
        publisher.send(`burst room ${names[i]} ${COUNT}`);
      }
      for (const [i, publisher] of publishers.entries()) {
        // Its own burst is not sent back to it: the next message of its own
        // is the acknowledgement, but others' publishes may come first.
        publisher.send(`pub room end ${names[i]}`);
      }

      const expected = (except?: string) =>
        new Map(
          names.filter((name) => name !== except).map((name) => [
            name,
            Array.from({ length: COUNT }, (_, i) => `${i}`),
          ]),
        );
      const bound = 3 * (COUNT + 3);
      for (const subscriber of subscribers) {
        assertEquals(
          await readUntilEnds(subscriber, 3, bound),
          expected(),
          "a subscriber got all 3 × 100, once each, in order",
        );
      }
      for (const [i, publisher] of publishers.entries()) {
        // Everything else it reads: the two acknowledgements of its own
        // publishes, the others' messages, the others' end markers.
        const received = new Map<string, string[]>();
        let ends = 0;
        let acks = 0;
        for (let n = 0; n < bound && (ends < 2 || acks < 2); n++) {
          const text = `${await within(publisher.nextMessage(), "a message")}`;
          if (text.startsWith("published")) acks++;
          else if (text.startsWith("end ")) ends++;
          else {
            const [who = "", seq = ""] = text.split(" ");
            received.set(who, [...(received.get(who) ?? []), seq]);
          }
        }
        assertEquals([ends, acks], [2, 2]);
        assertEquals(received, expected(names[i]));
      }
      // Nothing else is on its way: each client's next message answers `who`.
      for (const [i, client] of clients.entries()) {
        client.send("who");
        await expectText(client, names[Math.floor(i / 2)]!);
      }
    } finally {
      for (const client of clients) await client.close().closed;
      const statuses = await Promise.all(nodes.map((node) => node.stop()));
      for (const [i, { status }] of statuses.entries()) {
        assertEquals(status.code, 0, nodes[i]!.output);
      }
    }
  },
});

Deno.test({
  name:
    "when Redis restarts, publishes made while it is down are rejected and reported, and the brokers reconnect and resubscribe",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    const eventsA = new BrokerEvents();
    const eventsB = new BrokerEvents();
    const broker = (events: BrokerEvents) =>
      new RedisBroker({
        url: redis.url,
        maxReconnectDelay: 100,
        onReady: events.onReady,
        onError: events.onError,
      });
    await using a = listen({
      broker: broker(eventsA),
      onEstablish: topicProtocol("a"),
    });
    await using b = listen({
      broker: broker(eventsB),
      onEstablish: topicProtocol("b"),
    });
    await using onA = await joinTopics(wsUrl(a), "t");
    await using onB = await joinTopics(wsUrl(b), "t");
    await using publisher = await joinTopics(wsUrl(b));
    await within(eventsB.until(() => eventsB.readies >= 1), "b ready");

    publisher.send("pub t before");
    await expectText(publisher, "published");
    await expectText(onA, "before");
    await expectText(onB, "before");

    await redis.stop();
    await within(
      eventsB.until(() =>
        eventsB.errors.some((e) => e.message.includes("publish connection"))
      ),
      "b to notice that Redis is gone",
    );
    publisher.send("pub t during");
    const failed = `${await within(publisher.nextMessage(), "the failure")}`;
    assertStringIncludes(
      failed,
      `failed Cannot publish to "t": Redis at 127.0.0.1:${redis.port} did not take it`,
    );
    // Reported through onError too, for callers that do not await.
    const reported = eventsB.errors.find((e) =>
      e.message.startsWith('Cannot publish to "t"')
    );
    assertInstanceOf(reported, Error);
    // The local subscriber got it anyway; a's did not.
    await expectText(onB, "during");

    const readiesA = eventsA.readies;
    const readiesB = eventsB.readies;
    await redis.restart();
    await within(
      Promise.all([
        eventsA.until(() => eventsA.readies > readiesA),
        eventsB.until(() => eventsB.readies > readiesB),
      ]),
      "both brokers to reconnect and resubscribe",
      10,
    );
    publisher.send("pub t after");
    await expectText(publisher, "published");
    await expectText(onA, "after"); // "during" was never delivered here
    await expectText(onB, "after");
  },
});

Deno.test({
  name:
    "RedisBroker rejects publishes when Redis was never reachable, and reports it",
  ignore,
  async fn() {
    // A port with nothing listening: start a server to learn a free port,
    // then stop it.
    const redis = await RedisServer.start();
    await redis.stop();
    const events = new BrokerEvents();
    const broker = new RedisBroker({
      url: redis.url,
      connectTimeout: 200,
      onError: events.onError,
    });
    broker.start(() => {});
    try {
      const error = await assertRejects(() => broker.publish("t", "x"));
      assertEquals(
        (error as Error).message,
        `Cannot publish to "t": Redis at 127.0.0.1:${redis.port} did not take it (Redis at 127.0.0.1:${redis.port} was not reachable within 200 ms)`,
      );
      assert(events.errors.includes(error as Error));
    } finally {
      await broker.close();
    }
  },
});

Deno.test("RedisBroker checks its options and its state", async () => {
  assertThrows(
    () => new RedisBroker({ url: "http://127.0.0.1:6379" }),
    TypeError,
    'Cannot create a RedisBroker: url must be a redis:// or rediss:// URL, got "http://127.0.0.1:6379"',
  );
  assertThrows(
    () => new RedisBroker({ maxReconnectDelay: 0 }),
    RangeError,
    "Cannot create a RedisBroker: maxReconnectDelay must be a positive number of milliseconds, got 0",
  );
  assertThrows(
    () => new RedisBroker({ prefix: "app\udbff:" }),
    TypeError,
    "Cannot create a RedisBroker: prefix must be a well-formed string, got a lone surrogate at index 3",
  );
  const broker = new RedisBroker();
  assertThrows(
    () => broker.publish("t", "x"),
    TypeError,
    'Cannot publish to "t": the RedisBroker is not started',
  );
  await broker.close();
  assertThrows(
    () => broker.start(() => {}),
    TypeError,
    "Cannot start a RedisBroker: it is already closed (create one broker per topic registry)",
  );
});

Deno.test({
  name:
    "the chat example shares rooms between two instances started with REDIS_URL",
  ignore,
  async fn() {
    await using redis = await RedisServer.start();
    const instance = () =>
      new DenoProcess([
        "run",
        "--allow-net",
        // node-redis reads REDIS_DEBUG_MAINTENANCE when it connects.
        "--allow-env=PORT,REDIS_URL,REDIS_DEBUG_MAINTENANCE",
        "--allow-read",
        "examples/chat_server.ts",
      ], { PORT: "0", REDIS_URL: redis.url });
    const instances = [instance(), instance()];
    const clients: Connection[] = [];
    try {
      const [one, two] = await Promise.all(
        instances.map((it) => within(it.wsUrl, "a chat instance", 30)),
      );
      const open = async (url: string) => {
        const conn = await within(connect(`${url}ws`), "a chat connection");
        clients.push(conn);
        return conn;
      };
      const next = async (conn: Connection) =>
        (await within(conn.nextMessage(), "a chat event")).json<
          Record<string, unknown>
        >();
      const say = (conn: Connection, text: string) =>
        conn.send(JSON.stringify({ type: "say", name: "n", text }));
      const alice = await open(one!);
      const bob = await open(two!);
      const carol = await open(two!);
      for (const conn of [alice, bob]) {
        conn.send(JSON.stringify({ type: "join", room: "kitchen" }));
        assertEquals(await next(conn), { type: "joined", room: "kitchen" });
      }

      say(alice, "across instances");
      assertEquals((await next(alice)).text, "across instances");
      assertEquals((await next(bob)).text, "across instances");
      say(carol, "lobby only");
      // Carol is in the lobby: her next event is her own line.
      assertEquals((await next(carol)).text, "lobby only");
      say(bob, "and back");
      assertEquals((await next(alice)).text, "and back");
      assertEquals((await next(bob)).text, "and back");
    } finally {
      for (const conn of clients) await conn.close().closed;
      const statuses = await Promise.all(instances.map((it) => it.stop()));
      for (const [i, { status }] of statuses.entries()) {
        assertEquals(status.code, 0, instances[i]!.output);
      }
    }
  },
});
