/**
 * Client-side helpers for servers speaking the protocol of
 * `_topic_protocol.ts`.
 *
 * @module
 */

import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { within } from "./_fixture.ts";
import { topicToken } from "./_topic_protocol.ts";

/**
 * Connects to a server speaking {@linkcode topicProtocol} and subscribes to
 * `topics`, resolving once each subscription is confirmed.
 *
 * @param url The server's URL.
 * @param topics The topics to join.
 */
export async function joinTopics(
  url: string,
  ...topics: string[]
): Promise<Connection> {
  const conn = await within(connect(url), `a connection to ${url}`);
  for (const topic of topics) {
    conn.send(`sub ${topicToken(topic)}`);
    await expectText(conn, `subscribed ${topicToken(topic)}`);
  }
  return conn;
}

/**
 * Reads the next message and checks that it is the text `expected`.
 *
 * @param conn The client connection.
 * @param expected The text message.
 * @param units Time units to wait.
 */
export async function expectText(
  conn: Connection,
  expected: string,
  units = 5,
): Promise<void> {
  const message = await within(
    conn.nextMessage(),
    `the message "${expected}"`,
    units,
  );
  if (!message.isText() || message.decodedBody() !== expected) {
    throw new Error(
      `Expected the text message "${expected}", got ${
        message.isText() ? `"${message.decodedBody()}"` : "a binary message"
      }`,
    );
  }
}

// Offline, @std comes from a mirror (JSR_URL) that must stay out of deno.lock
// (see tools/with_std.ts); children inherit JSR_URL with the environment.
