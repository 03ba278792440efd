/**
 * {@linkcode RedisBroker}: carries topic publishes between processes and
 * machines through Redis pub/sub, with node-redis (`@redis/client` from npm).
 * It is its own entry point so that applications without Redis never
 * download the client. Permissions: `--allow-net` for Redis, and
 * `--allow-env=REDIS_DEBUG_MAINTENANCE` (node-redis reads it on connecting;
 * without it every connection attempt fails and is reported to `onError`).
 *
 * Delivery, as Redis pub/sub gives it:
 * - While Redis is reachable, each publish reaches every subscribing
 *   process once, in the order each process published.
 * - A publish made while this process's connection to Redis is down is
 *   **not queued**: its promise rejects and `onError` is called. (Queuing
 *   would not help: subscribers that are disconnected too would miss it
 *   anyway, because Redis pub/sub keeps nothing.) A publish whose connection
 *   dropped while it was in flight also rejects; it may or may not have been
 *   delivered.
 * - After a lost connection, the broker reconnects (backing off up to
 *   `maxReconnectDelay`) and resubscribes to its topics before `onReady` is
 *   called. Publishes from other processes while this one was disconnected
 *   are not received (at most once).
 *
 * @example Several processes sharing topics
 * ```ts ignore
 * import { serve } from "@anyws/anyws";
 * import { RedisBroker } from "@anyws/anyws/redis";
 *
 * serve({
 *   port: 8000,
 *   broker: new RedisBroker({ url: Deno.env.get("REDIS_URL") }),
 *   async onEstablish(conn) {
 *     await conn.subscribe("chat");
 *     conn.on("message", (conn, data) => conn.publish("chat", data));
 *   },
 * });
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createClient } from "npm:@redis/client@^6.3.1";
import type { Broker, BrokerReceiver, TopicPayload } from "./topics.ts";
import { checkTopic, loneSurrogateIndex } from "./_topic_name.ts";

export type { Broker, BrokerReceiver, TopicPayload } from "./topics.ts";

/** Options for {@linkcode RedisBroker}. */
export interface RedisBrokerOptions {
  /**
   * The Redis server, as a `redis://[[user]:password@]host[:port][/db]` or
   * `rediss://` (TLS) URL.
   *
   * @default {"redis://127.0.0.1:6379"}
   */
  url?: string | undefined;
  /**
   * Prepended to each topic to make the Redis channel name, so that several
   * applications can share one Redis. A well-formed string: channel names are
   * UTF-8, which has no form for a lone surrogate.
   *
   * @default {"anyws:"}
   */
  prefix?: string | undefined;
  /**
   * The longest wait between reconnection attempts, in milliseconds. The
   * wait starts at 50 ms and doubles up to this.
   *
   * @default {2000}
   */
  maxReconnectDelay?: number | undefined;
  /**
   * How long, in milliseconds, publishes made before the first connection
   * wait for it. After that they reject until Redis is reachable.
   *
   * @default {5000}
   */
  connectTimeout?: number | undefined;
  /**
   * Called when a connection to Redis is lost (once per outage, not per
   * reconnection attempt), when a publish fails, and for a message on a
   * subscribed channel that anyws did not publish.
   *
   * @default {logs with console.error}
   */
  onError?: ((error: Error) => void) | undefined;
  /**
   * Called each time both connections are up and every subscription is
   * active again: after the first connection and after every reconnection.
   */
  onReady?: (() => void) | undefined;
}

// Wire format of one publish: a type byte, the publishing broker's 16-byte
// id (so a broker can skip its own publishes, which Redis echoes to it), then
// the payload (UTF-8 for text). Encoded once per publish.
const TEXT = 0x74; // "t"
const BINARY = 0x62; // "b"
const ID_BYTES = 16;
const HEADER_BYTES = 1 + ID_BYTES;

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: the default decoder drops it, which would
// change a text payload (and, with an empty prefix, a topic) on the way.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

type Client = ReturnType<typeof createClient>;

/**
 * A {@linkcode Broker} over Redis pub/sub: one connection publishes, one
 * subscribes (Redis reserves a subscribing connection for that). Each topic
 * is the Redis channel `prefix + topic`; payloads keep their type (text or
 * binary). See the module documentation for what is delivered when Redis
 * goes away.
 *
 * @example
 * ```ts ignore
 * import { serve } from "@anyws/anyws";
 * import { RedisBroker } from "@anyws/anyws/redis";
 *
 * await using server = serve({
 *   port: 0,
 *   broker: new RedisBroker({ url: "redis://127.0.0.1:6379" }),
 *   onEstablish: (conn) => conn.subscribe("news"),
 * });
 * await server.publish("news", "to every process");
 * ```
 */
export class RedisBroker implements Broker {
  readonly #url: string;
  readonly #prefix: string;
  readonly #maxReconnectDelay: number;
  readonly #connectTimeout: number;
  readonly #onError: (error: Error) => void;
  readonly #onReady: (() => void) | undefined;
  readonly #id = crypto.getRandomValues(new Uint8Array(ID_BYTES));
  #pub: Client | undefined;
  #sub: Client | undefined;
  #receive: BrokerReceiver | undefined;
  #closing: Promise<void> | undefined;
  /** Whether the publishing connection has ever been ready. */
  #pubReadyOnce = false;
  #firstReady: Promise<void> | undefined;
  /** Connections currently known to be down (reported once per outage). */
  readonly #down = new Set<"publish" | "subscribe">();
  readonly #ready = new Set<"publish" | "subscribe">();
  #stopTimer: (() => void) | undefined;

  /**
   * Creates the broker; it connects when the topic registry starts it.
   *
   * @param options Where Redis is, and callbacks.
   * @throws {TypeError} If `url` is not a redis:// or rediss:// URL, or
   * `prefix` holds a lone surrogate.
   * @throws {RangeError} If a delay is not a positive number.
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * const broker = new RedisBroker({ url: "redis://127.0.0.1:6379", prefix: "chat:" });
   * await broker.close(); // never started: nothing to close
   * ```
   */
  constructor(options: RedisBrokerOptions = {}) {
    const url = options.url ?? "redis://127.0.0.1:6379";
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      protocol = "";
    }
    if (protocol !== "redis:" && protocol !== "rediss:") {
      throw new TypeError(
        `Cannot create a RedisBroker: url must be a redis:// or rediss:// URL, got "${url}"`,
      );
    }
    this.#url = url;
    this.#prefix = wellFormedPrefix(options.prefix ?? "anyws:");
    this.#maxReconnectDelay = positive(
      "maxReconnectDelay",
      options.maxReconnectDelay ?? 2000,
    );
    this.#connectTimeout = positive(
      "connectTimeout",
      options.connectTimeout ?? 5000,
    );
    this.#onError = options.onError ??
      ((error) => console.error("anyws: RedisBroker:", error.message));
    this.#onReady = options.onReady;
  }

  /**
   * Connects (see {@linkcode Broker.start}); returns at once, the
   * connections come up in the background.
   *
   * @param receive Where publishes from other processes go.
   * @throws {TypeError} If already started or closed.
   *
   * @example
   * ```ts ignore
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * const broker = new RedisBroker();
   * broker.start((topic, payload) => console.log(topic, payload));
   * await broker.close();
   * ```
   */
  start(receive: BrokerReceiver): void {
    if (this.#receive || this.#closing) {
      throw new TypeError(
        `Cannot start a RedisBroker: it is already ${
          this.#closing ? "closed" : "started"
        } (create one broker per topic registry)`,
      );
    }
    this.#receive = receive;
    const socket = {
      connectTimeout: this.#connectTimeout,
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 16), this.#maxReconnectDelay),
    };
    // Publishes are refused while disconnected (see the module docs);
    // subscribes wait for the connection and node-redis replays them on
    // every reconnection.
    this.#pub = createClient({
      url: this.#url,
      socket,
      disableOfflineQueue: true,
    });
    this.#sub = createClient({ url: this.#url, socket });
    const firstReady = Promise.withResolvers<void>();
    this.#firstReady = firstReady.promise;
    this.#firstReady.catch(() => {}); // reported to whoever publishes
    const timer = setTimeout(
      () =>
        firstReady.reject(
          new Error(
            `Redis at ${this.#where()} was not reachable within ${this.#connectTimeout} ms`,
          ),
        ),
      this.#connectTimeout,
    );
    this.#watch(this.#pub, "publish", () => {
      this.#pubReadyOnce = true;
      clearTimeout(timer);
      firstReady.resolve();
    });
    this.#watch(this.#sub, "subscribe");
    // Failures here are retried by the reconnect strategy and reported by
    // the error listeners; a close while connecting ends them.
    this.#pub.connect().catch(() => {});
    this.#sub.connect().catch(() => {});
    this.#stopTimer = () => clearTimeout(timer);
  }

  /**
   * Subscribes to the topic's channel.
   *
   * @param topic The topic.
   * @returns Settles once Redis confirmed the subscription (waiting for the
   * connection if it is down).
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string
   * (refused as every broker refuses it), or the broker is not started or
   * is closed.
   *
   * @example
   * ```ts ignore
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * const broker = new RedisBroker();
   * broker.start(() => {});
   * await broker.subscribe("news");
   * await broker.close();
   * ```
   */
  subscribe(topic: string): Promise<void> {
    checkTopic("subscribe to", topic);
    const sub = this.#client(this.#sub, `subscribe to "${topic}"`);
    return sub.subscribe(this.#prefix + topic, this.#onMessage, true);
  }

  /**
   * Unsubscribes from the topic's channel.
   *
   * @param topic The topic.
   * @returns Settles once Redis confirmed it.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string
   * (refused as every broker refuses it), or the broker is not started or
   * is closed.
   *
   * @example
   * ```ts ignore
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * const broker = new RedisBroker();
   * broker.start(() => {});
   * await broker.subscribe("news");
   * await broker.unsubscribe("news");
   * await broker.close();
   * ```
   */
  unsubscribe(topic: string): Promise<void> {
    checkTopic("unsubscribe from", topic);
    const sub = this.#client(this.#sub, `unsubscribe from "${topic}"`);
    return sub.unsubscribe(this.#prefix + topic, this.#onMessage, true);
  }

  /**
   * Publishes to the topic's channel.
   *
   * @param topic The topic.
   * @param payload Text or binary data.
   * @returns Settles once Redis accepted the publish.
   * @throws {Error} (as a rejection) If Redis is unreachable or the
   * connection dropped with the publish in flight; `onError` is called too.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string
   * (refused as every broker refuses it), or the broker is not started or
   * is closed.
   *
   * @example
   * ```ts ignore
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * const broker = new RedisBroker();
   * broker.start(() => {});
   * await broker.publish("news", "hello");
   * await broker.close();
   * ```
   */
  publish(topic: string, payload: TopicPayload): Promise<void> {
    checkTopic("publish to", topic);
    const pub = this.#client(this.#pub, `publish to "${topic}"`);
    const frame = this.#encode(payload);
    const channel = this.#prefix + topic;
    const send = () =>
      pub.publish(channel, frame).then(
        () => {},
        (error: Error) => this.#publishFailed(topic, error),
      );
    if (this.#pubReadyOnce) return send();
    // Before the first connection, wait for it (in order: every waiting
    // publish hangs off the same promise).
    return this.#firstReady!.then(
      send,
      (error: Error) => this.#publishFailed(topic, error),
    );
  }

  /**
   * How many processes (brokers, this one included) subscribe to `topic`
   * right now, as Redis counts them (`PUBSUB NUMSUB`). It counts processes,
   * not connections: each process's own count is its
   * `server.subscriberCount(topic)`.
   *
   * @param topic The topic.
   * @returns The number of subscribing brokers.
   * @throws {Error} (as a rejection) If Redis is unreachable.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string
   * (refused as every broker refuses it), or the broker is not started or
   * is closed.
   *
   * @example
   * ```ts ignore
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * const broker = new RedisBroker();
   * broker.start(() => {});
   * await broker.subscribe("news");
   * console.log(await broker.countProcesses("news")); // 1
   * await broker.close();
   * ```
   */
  countProcesses(topic: string): Promise<number> {
    checkTopic("count the subscribers of", topic);
    const pub = this.#client(this.#pub, `count the subscribers of "${topic}"`);
    return this.#count(pub, this.#prefix + topic);
  }

  async #count(pub: Client, channel: string): Promise<number> {
    if (!this.#pubReadyOnce) await this.#firstReady;
    const counts = await pub.pubSubNumSub(channel);
    return Number(counts[channel] ?? 0);
  }

  /**
   * Closes both connections: gracefully when Redis is reachable, at once
   * otherwise. Later calls return the same promise.
   *
   * @returns Settles once both connections are closed.
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@anyws/anyws/redis";
   *
   * await new RedisBroker().close();
   * ```
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#stopTimer?.();
      await Promise.all([this.#pub, this.#sub].map(async (client) => {
        if (!client) return;
        if (client.isReady) {
          try {
            await client.close();
            return;
          } catch {
            // Fall through: the connection went away while closing.
          }
        }
        client.destroy();
      }));
    })();
  }

  #client(client: Client | undefined, what: string): Client {
    if (client && !this.#closing) return client;
    throw new TypeError(
      `Cannot ${what}: the RedisBroker is ${
        this.#closing ? "closed" : "not started"
      }`,
    );
  }

  #watch(
    client: Client,
    role: "publish" | "subscribe",
    onReady?: () => void,
  ): void {
    client.on("error", (error: Error) => {
      this.#ready.delete(role);
      if (this.#down.has(role) || this.#closing) return;
      this.#down.add(role);
      this.#onError(
        new Error(
          `Lost the ${role} connection to Redis at ${this.#where()} (${error.message}); reconnecting`,
          { cause: error },
        ),
      );
    });
    // Not ready from the first sign of trouble, so that onReady waits for
    // both connections (and the replayed subscriptions) after an outage.
    client.on("reconnecting", () => this.#ready.delete(role));
    client.on("end", () => this.#ready.delete(role));
    client.on("ready", () => {
      // node-redis has replayed the subscriptions before it says "ready".
      this.#down.delete(role);
      this.#ready.add(role);
      onReady?.();
      if (this.#ready.size === 2 && !this.#closing) this.#onReady?.();
    });
  }

  #publishFailed(topic: string, error: Error): never {
    const failure = new Error(
      `Cannot publish to "${topic}": Redis at ${this.#where()} did not take it (${error.message})`,
      { cause: error },
    );
    this.#onError(failure);
    throw failure;
  }

  #encode(payload: TopicPayload): Buffer {
    let frame: Uint8Array;
    if (typeof payload === "string") {
      // At most 3 bytes per UTF-16 unit; encodeInto says how many it used.
      frame = new Uint8Array(HEADER_BYTES + payload.length * 3);
      frame[0] = TEXT;
      const { written } = encoder.encodeInto(
        payload,
        frame.subarray(HEADER_BYTES),
      );
      frame = frame.subarray(0, HEADER_BYTES + written);
    } else {
      frame = new Uint8Array(HEADER_BYTES + payload.byteLength);
      frame[0] = BINARY;
      frame.set(payload, HEADER_BYTES);
    }
    frame.set(this.#id, 1);
    return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  // An arrow function: node-redis keys listeners by identity.
  readonly #onMessage = (message: Buffer, channel: Buffer): void => {
    const name = decoder.decode(channel);
    const type = message[0];
    if (
      message.byteLength < HEADER_BYTES || (type !== TEXT && type !== BINARY)
    ) {
      this.#onError(
        new TypeError(
          `Cannot read a message on Redis channel "${name}": it is not an anyws publish (is another application using the prefix "${this.#prefix}"?)`,
        ),
      );
      return;
    }
    if (sameId(message, this.#id)) return; // our own publish, delivered locally
    if (!name.startsWith(this.#prefix)) return;
    const topic = name.slice(this.#prefix.length);
    const body = message.subarray(HEADER_BYTES);
    this.#receive?.(
      topic,
      type === TEXT ? decoder.decode(body) : new Uint8Array(body),
    );
  };

  #where(): string {
    const url = new URL(this.#url);
    return `${url.hostname}:${url.port || "6379"}`;
  }
}

function sameId(message: Uint8Array, id: Uint8Array): boolean {
  for (let i = 0; i < ID_BYTES; i++) {
    if (message[i + 1] !== id[i]) return false;
  }
  return true;
}

function wellFormedPrefix(prefix: string): string {
  if (typeof prefix !== "string" || !prefix.isWellFormed()) {
    throw new TypeError(
      `Cannot create a RedisBroker: prefix must be a well-formed string, got ${
        typeof prefix === "string"
          ? `a lone surrogate at index ${loneSurrogateIndex(prefix)}`
          : typeof prefix
      }`,
    );
  }
  return prefix;
}

function positive(name: string, value: number): number {
  if (typeof value !== "number" || !(value > 0)) {
    throw new RangeError(
      `Cannot create a RedisBroker: ${name} must be a positive number of milliseconds, got ${value}`,
    );
  }
  return value;
}
