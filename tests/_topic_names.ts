/**
 * The topic-name contract, checked the same way for every broker through two
 * real servers: a well-formed name reaches the subscribers of exactly that
 * name on the other server, and a name with a lone surrogate is refused with
 * a `TypeError` on every path (`conn.subscribe/publish/unsubscribe`,
 * `server.publish`, `Topics`, the broker itself).
 *
 * @module
 */

import { assertEquals, assertThrows } from "@std/assert";
import type { Server } from "../server.ts";
import type { Subscriber } from "../topics.ts";
import { wsUrl } from "./_fixture.ts";
import { expectText, joinTopics } from "./_topic_client.ts";
import { topicToken } from "./_topic_protocol.ts";

/**
 * Names that differ only where a lossy encoding would merge them: U+FFFD
 * (what a lone surrogate becomes in UTF-8), a leading BOM (which a default
 * `TextDecoder` drops), canonically equivalent forms (NFC and NFD é), an
 * astral character, NUL, Redis glob characters, spaces and a long name.
 */
export const EXACT_TOPICS: readonly string[] = [
  "\ufffd",
  "\ufffd\ufffd",
  "\ufeffbom",
  "bom",
  "\u00e9",
  "e\u0301",
  "\u{1f600}",
  "nul\u0000",
  "*",
  "[ab]?",
  "a b",
  "long ".repeat(200),
];

/**
 * Names that are not well-formed UTF-16, and the message of the refusal that
 * names the first lone surrogate.
 */
export const LONE_SURROGATE_TOPICS: readonly {
  topic: string;
  lone: string;
}[] = [
  { topic: "\ud800", lone: "U+D800 at index 0" },
  { topic: "\udc00", lone: "U+DC00 at index 0" },
  { topic: "room\udfff", lone: "U+DFFF at index 4" },
  { topic: "\u{1f600}\ud83d", lone: "U+D83D at index 2" },
  { topic: "\udc00\ud800", lone: "U+DC00 at index 0" },
];

/** The message of the `TypeError` that refuses `lone` for `what`. */
export function refusal(what: string, lone: string): string {
  return `Cannot ${what} a topic: it must be well-formed Unicode, got a lone surrogate (${lone}), which brokers cannot carry exactly`;
}

/**
 * Subscribes one client on `subscribing` to each of {@linkcode EXACT_TOPICS},
 * publishes from `publishing` one text message per topic (starting with a
 * BOM, which must survive too), and checks that each client receives its own
 * message and nothing else.
 *
 * @param publishing The server whose client publishes.
 * @param subscribing The server whose clients subscribe.
 * @param identity What `who` answers on `subscribing`.
 */
export async function assertTopicsCarriedExactly(
  publishing: Server,
  subscribing: Server,
  identity: string,
): Promise<void> {
  const subscribers = [];
  try {
    for (const topic of EXACT_TOPICS) {
      subscribers.push(await joinTopics(wsUrl(subscribing), topic));
    }
    await using publisher = await joinTopics(wsUrl(publishing));
    for (const [i, topic] of EXACT_TOPICS.entries()) {
      publisher.send(`pub ${topicToken(topic)} \ufeffto ${i}`);
      await expectText(publisher, "published");
    }
    // One publisher, in order: once the last subscriber has its message,
    // every message has reached `subscribing`, and a stray one would be
    // queued before the answer to `who`.
    for (const [i, conn] of subscribers.entries()) {
      await expectText(conn, `\ufeffto ${i}`);
    }
    for (const conn of subscribers) {
      conn.send("who");
      await expectText(conn, identity);
    }
  } finally {
    for (const conn of subscribers) await conn.close().closed;
  }
}

/**
 * Tries each of {@linkcode LONE_SURROGATE_TOPICS} on every path into
 * `server`'s topics and its broker, expecting the same `TypeError` each time,
 * and checks that nothing was subscribed or delivered: a client subscribed
 * to `"\ufffd"` (where a lossy broker would deliver) receives nothing.
 *
 * @param server A server speaking the topic protocol.
 * @param identity What `who` answers on it.
 */
export async function assertLoneSurrogatesRefused(
  server: Server,
  identity: string,
): Promise<void> {
  await using witness = await joinTopics(wsUrl(server), "\ufffd");
  await using client = await joinTopics(wsUrl(server));
  const stranger: Subscriber = {
    readyState: WebSocket.OPEN,
    closed: Promise.withResolvers<void>().promise,
    send() {
      throw new Error("nothing may be delivered to a refused topic");
    },
  };
  const broker = server.topics.broker;
  for (const { topic, lone } of LONE_SURROGATE_TOPICS) {
    const token = topicToken(topic);
    for (
      const [command, what] of [
        [`sub ${token}`, "subscribe to"],
        [`pub ${token} lost`, "publish to"],
        [`unsub ${token}`, "unsubscribe from"],
      ]
    ) {
      client.send(command!);
      await expectText(client, `refused TypeError: ${refusal(what!, lone)}`);
    }
    const paths: [string, () => unknown][] = [
      ["publish to", () => server.publish(topic, "lost")],
      ["subscribe to", () => server.topics.subscribe(stranger, topic)],
      ["publish to", () => server.topics.publish(topic, "lost")],
      ["unsubscribe from", () => server.topics.unsubscribe(stranger, topic)],
      ["subscribe to", () => broker.subscribe(topic)],
      ["publish to", () => broker.publish(topic, "lost")],
      ["unsubscribe from", () => broker.unsubscribe(topic)],
    ];
    for (const [what, path] of paths) {
      assertThrows(path, TypeError, refusal(what, lone));
    }
  }
  assertEquals(server.topics.topics.filter((t) => !t.isWellFormed()), []);
  assertEquals(server.topics.topicsOf(stranger).size, 0);
  witness.send("who");
  await expectText(witness, identity);
}
