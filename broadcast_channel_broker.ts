/**
 * {@linkcode BroadcastChannelBroker}: carries topic publishes over a
 * `BroadcastChannel`, which Deno shares between the workers of
 * `deno serve --parallel` (and between brokers in one process).
 *
 * It does not reach other processes or machines. On Deno Deploy, delivery
 * between instances through `BroadcastChannel` is not documented on the
 * current platform: use `RedisBroker` (`@anyws/anyws/redis`) there.
 *
 * On Deno 2.9.6, an open `BroadcastChannel` keeps `deno serve` from finishing
 * its SIGTERM shutdown (measured: it stays up until SIGKILL). Without
 * `--parallel`, closing the broker from a `Deno.addSignalListener("SIGTERM",
 * ...)` lets it exit; with `--parallel` that did not help in our tests.
 *
 * @example `deno serve --parallel main.ts`
 * ```ts
 * import { BroadcastChannelBroker, createHandler } from "@anyws/anyws";
 *
 * export default {
 *   fetch: createHandler({
 *     broker: new BroadcastChannelBroker(),
 *     async onEstablish(conn) {
 *       await conn.subscribe("chat");
 *       conn.on("message", (conn, data) => conn.publish("chat", data));
 *     },
 *   }),
 * };
 * ```
 *
 * @module
 */

import type { Broker, BrokerReceiver, TopicPayload } from "./topics.ts";
import { checkTopic } from "./_topic_name.ts";

/** Options for {@linkcode BroadcastChannelBroker}. */
export interface BroadcastChannelBrokerOptions {
  /**
   * The channel name. Brokers with the same name exchange publishes; use
   * different names for applications that must not hear each other.
   *
   * @default {"anyws-topics"}
   */
  name?: string | undefined;
  /**
   * Called for a message on the channel that is not an anyws publish, or one
   * that could not be deserialised. Never called for a failed publish: that
   * is thrown by {@linkcode BroadcastChannelBroker.publish}.
   *
   * @default {logs with console.error}
   */
  onError?: ((error: Error) => void) | undefined;
}

/** What travels on the channel. */
interface Envelope {
  anyws: 1;
  topic: string;
  payload: TopicPayload;
}

/**
 * A {@linkcode Broker} over a `BroadcastChannel`. Every broker on the channel
 * receives every publish (a channel has no per-topic routing) and keeps those
 * whose topic has a local subscriber. Publishes arrive once, in the order
 * each broker sent them; text stays a string and binary a `Uint8Array`
 * (structured clone).
 *
 * @example Two brokers in one process
 * ```ts
 * import { BroadcastChannelBroker } from "@anyws/anyws";
 *
 * const a = new BroadcastChannelBroker({ name: "doc-example" });
 * const b = new BroadcastChannelBroker({ name: "doc-example" });
 * const received = Promise.withResolvers<string>();
 * b.start((_topic, payload) => received.resolve(payload as string));
 * b.subscribe("news");
 * a.start(() => {});
 * a.publish("news", "hello");
 * console.log(await received.promise); // hello
 * a.close();
 * b.close();
 * ```
 */
export class BroadcastChannelBroker implements Broker {
  readonly #name: string;
  readonly #onError: (error: Error) => void;
  readonly #topics = new Set<string>();
  #channel: BroadcastChannel | undefined;
  #receive: BrokerReceiver | undefined;
  #closed = false;

  /**
   * Creates the broker; the channel is opened by {@linkcode start}.
   *
   * @param options The channel name and an error callback.
   *
   * @example
   * ```ts
   * import { BroadcastChannelBroker } from "@anyws/anyws";
   *
   * const broker = new BroadcastChannelBroker({ name: "my-app" });
   * broker.close();
   * ```
   */
  constructor(options: BroadcastChannelBrokerOptions = {}) {
    this.#name = options.name ?? "anyws-topics";
    this.#onError = options.onError ??
      ((error) => console.error("anyws: BroadcastChannelBroker:", error));
  }

  /**
   * Opens the channel (see {@linkcode Broker.start}).
   *
   * @param receive Where publishes from other brokers go.
   * @throws {TypeError} If already started or closed.
   *
   * @example
   * ```ts
   * import { BroadcastChannelBroker } from "@anyws/anyws";
   *
   * const broker = new BroadcastChannelBroker();
   * broker.start((topic, payload) => console.log(topic, payload));
   * broker.close();
   * ```
   */
  start(receive: BrokerReceiver): void {
    if (this.#receive || this.#closed) {
      throw new TypeError(
        `Cannot start a BroadcastChannelBroker: it is already ${
          this.#closed ? "closed" : "started"
        } (create one broker per topic registry)`,
      );
    }
    this.#receive = receive;
    const channel = new BroadcastChannel(this.#name);
    channel.onmessage = (event) => this.#onMessage(event.data);
    channel.onmessageerror = () =>
      this.#onError(
        new Error(
          `Cannot read a message on BroadcastChannel "${this.#name}": it could not be deserialised`,
        ),
      );
    this.#channel = channel;
  }

  /**
   * Keeps publishes to `topic` from now on.
   *
   * @param topic The topic.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string
   * (refused as every broker refuses it).
   *
   * @example
   * ```ts
   * import { BroadcastChannelBroker } from "@anyws/anyws";
   *
   * new BroadcastChannelBroker().subscribe("news");
   * ```
   */
  subscribe(topic: string): void {
    checkTopic("subscribe to", topic);
    this.#topics.add(topic);
  }

  /**
   * Drops publishes to `topic` from now on.
   *
   * @param topic The topic.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string.
   *
   * @example
   * ```ts
   * import { BroadcastChannelBroker } from "@anyws/anyws";
   *
   * new BroadcastChannelBroker().unsubscribe("news");
   * ```
   */
  unsubscribe(topic: string): void {
    checkTopic("unsubscribe from", topic);
    this.#topics.delete(topic);
  }

  /**
   * Posts a publish to the other brokers on the channel.
   *
   * @param topic The topic.
   * @param payload Text or binary data.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string, or
   * the broker is not started or is closed.
   *
   * @example
   * ```ts
   * import { BroadcastChannelBroker } from "@anyws/anyws";
   *
   * const broker = new BroadcastChannelBroker();
   * broker.start(() => {});
   * broker.publish("news", new Uint8Array([1, 2]));
   * broker.close();
   * ```
   */
  publish(topic: string, payload: TopicPayload): void {
    checkTopic("publish to", topic);
    if (!this.#channel) {
      throw new TypeError(
        `Cannot publish to "${topic}": the BroadcastChannelBroker is ${
          this.#closed ? "closed" : "not started"
        }`,
      );
    }
    const envelope: Envelope = {
      anyws: 1,
      topic,
      // Structured clone copies a view's whole buffer: send just the bytes.
      payload: typeof payload === "string" ||
          (payload.byteOffset === 0 &&
            payload.byteLength === payload.buffer.byteLength)
        ? payload
        : payload.slice(),
    };
    this.#channel.postMessage(envelope);
  }

  /**
   * Closes the channel. Calling it again does nothing.
   *
   * @example
   * ```ts
   * import { BroadcastChannelBroker } from "@anyws/anyws";
   *
   * new BroadcastChannelBroker().close();
   * ```
   */
  close(): void {
    this.#closed = true;
    this.#channel?.close();
    this.#channel = undefined;
    this.#topics.clear();
  }

  #onMessage(data: unknown): void {
    const envelope = data as Partial<Envelope> | null;
    if (
      typeof envelope !== "object" || envelope === null ||
      envelope.anyws !== 1 || typeof envelope.topic !== "string" ||
      !(typeof envelope.payload === "string" ||
        envelope.payload instanceof Uint8Array)
    ) {
      this.#onError(
        new TypeError(
          `Cannot read a message on BroadcastChannel "${this.#name}": it is not an anyws publish (is another application using this channel name?)`,
        ),
      );
      return;
    }
    if (this.#topics.has(envelope.topic)) {
      this.#receive?.(envelope.topic, envelope.payload);
    }
  }
}
