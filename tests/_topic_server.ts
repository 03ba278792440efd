/**
 * A small text protocol over which test clients drive a server's topics,
 * shared by the in-process, BroadcastChannel and Redis tests and their child
 * processes. Each command is answered once the server has done it:
 *
 * - `sub <topic>` → `subscribed <topic>` (after the broker confirmed)
 * - `unsub <topic>` → `unsubscribed <topic>`
 * - `pub <topic> <text>` → publishes `<text>` (text) to the others, then
 *   `published` or `failed <error message>`
 * - `pubbin <topic> <byte>,<byte>,...` → publishes those bytes (binary)
 * - `burst <topic> <prefix> <count>` → publishes `<prefix> 0` ... `<prefix>
 *   <count-1>` back to back, then `published <count>` or `failed ...`
 * - `who` → `<identity>` (the process or worker that holds the connection)
 *
 * @module
 */

import { connect } from "../client.ts";
import type { Connection } from "../connection.ts";
import { within } from "./_fixture.ts";

/**
 * An `onEstablish` that speaks the protocol above.
 *
 * @param identity What `who` answers.
 */
export function topicProtocol(identity = "main"): (conn: Connection) => void {
  return (conn) => {
    conn.on("message", (conn, data) => {
      if (typeof data !== "string") {
        conn.close(1003, "commands are text");
        return;
      }
      const [command = "", topic = "", ...rest] = data.split(" ");
      const answer = (reply: Promise<void>, ok: string) =>
        reply.then(
          () => conn.send(ok),
          (error: Error) => conn.send(`failed ${error.message}`),
        );
      switch (command) {
        case "sub":
          answer(conn.subscribe(topic), `subscribed ${topic}`);
          break;
        case "unsub":
          answer(conn.unsubscribe(topic), `unsubscribed ${topic}`);
          break;
        case "pub":
          answer(conn.publish(topic, rest.join(" ")), "published");
          break;
        case "pubbin":
          answer(
            conn.publish(
              topic,
              new Uint8Array((rest[0] ?? "").split(",").map(Number)),
            ),
            "published",
          );
          break;
        case "burst": {
          const count = Number(rest[1]);
          const sent: Promise<void>[] = [];
          for (let i = 0; i < count; i++) {
            sent.push(conn.publish(topic, `${rest[0]} ${i}`));
          }
          answer(Promise.all(sent).then(() => {}), `published ${count}`);
          break;
        }
        case "who":
          conn.send(identity);
          break;
        default:
          conn.close(1008, `unknown command ${command}`);
      }
    });
  };
}

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
    conn.send(`sub ${topic}`);
    await expectText(conn, `subscribed ${topic}`);
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
