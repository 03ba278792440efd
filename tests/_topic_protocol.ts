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
 * A `<topic>` is the topic itself, or a JSON string literal (`"\ud800"`,
 * spaces written `\u0020`) for a name a plain word cannot spell; see
 * `topicToken()`. Answers repeat the token as it was sent. A command that the
 * library refuses at once (it throws) is answered `refused <Error name>:
 * <message>`.
 *
 * It imports nothing outside the library, so child processes load it without
 * `@std`. Client-side helpers are in `_topic_client.ts`.
 *
 * @module
 */

import type { Connection } from "../connection.ts";

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
      const [command = "", token = "", ...rest] = data.split(" ");
      const topic = token.startsWith('"') ? JSON.parse(token) : token;
      const answer = (call: () => Promise<unknown>, ok: string) => {
        let reply: Promise<unknown>;
        try {
          reply = call();
        } catch (error) {
          conn.send(
            `refused ${(error as Error).name}: ${(error as Error).message}`,
          );
          return;
        }
        reply.then(
          () => conn.send(ok),
          (error: Error) => conn.send(`failed ${error.message}`),
        );
      };
      switch (command) {
        case "sub":
          answer(() => conn.subscribe(topic), `subscribed ${token}`);
          break;
        case "unsub":
          answer(() => conn.unsubscribe(topic), `unsubscribed ${token}`);
          break;
        case "pub":
          answer(() => conn.publish(topic, rest.join(" ")), "published");
          break;
        case "pubbin":
          answer(
            () =>
              conn.publish(
                topic,
                new Uint8Array((rest[0] ?? "").split(",").map(Number)),
              ),
            "published",
          );
          break;
        case "burst": {
          const count = Number(rest[1]);
          answer(() => {
            const sent: Promise<void>[] = [];
            for (let i = 0; i < count; i++) {
              sent.push(conn.publish(topic, `${rest[0]} ${i}`));
            }
            return Promise.all(sent);
          }, `published ${count}`);
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
 * How a test client writes `topic` in a command: as is when it is one plain
 * word, else as a JSON string literal with spaces escaped (JSON.stringify
 * writes a lone surrogate as `\ud800`, so even those reach the server).
 *
 * @param topic The topic name.
 */
export function topicToken(topic: string): string {
  // Printable ASCII without space or '"': a plain word.
  return /^[!#-~]+$/.test(topic)
    ? topic
    : JSON.stringify(topic).replaceAll(" ", "\\u0020");
}
