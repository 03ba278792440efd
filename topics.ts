/**
 * Pub/sub topics: {@linkcode Topics}, the registry of which connections
 * listen to which topic, the {@linkcode Broker} interface that carries
 * publishes to other processes, and {@linkcode MemoryBroker}, the in-process
 * broker used when none is given.
 *
 * A server made by `serve()` or `createHandler()` owns one registry: its
 * connections join topics with `conn.subscribe(topic)`, and
 * `conn.publish(topic, data)` or `server.publish(topic, data)` reach every
 * subscriber. The broker decides how far a publish travels: this process
 * only ({@linkcode MemoryBroker}), every `deno serve --parallel` worker
 * (`BroadcastChannelBroker`), or every process sharing a Redis server
 * (`RedisBroker`, from `@anyws/anyws/redis`).
 *
 * @example A chat room
 * ```ts
 * import { connect, serve } from "@anyws/anyws";
 * import { assertEquals } from "@std/assert";
 *
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   async onEstablish(conn) {
 *     conn.on("message", (conn, text) => conn.publish("lobby", text));
 *     await conn.subscribe("lobby");
 *     conn.send("joined");
 *   },
 * });
 * const url = `ws://127.0.0.1:${server.addr.port}`;
 * await using alice = await connect(url);
 * await using bob = await connect(url);
 * await alice.nextMessage();
 * await bob.nextMessage();
 * alice.send("hi bob");
 * assertEquals(`${await bob.nextMessage()}`, "hi bob");
 * ```
 *
 * @module
 */

import { type SendData, toSendable } from "./message.ts";
import { checkTopic } from "./_topic_name.ts";

/**
 * A published message as brokers carry it: a `string` is a text message, a
 * `Uint8Array` a binary message. Brokers must hand it on with the same type.
 */
export type TopicPayload = string | Uint8Array;

/**
 * What can be published: anything `Connection.send()` takes except a
 * `Blob` (reading one is asynchronous, which would break the order of
 * publishes; read it with `await blob.bytes()` first).
 */
export type PublishData = Exclude<SendData, Blob>;

/**
 * Receives the messages that other processes (or other registries) published,
 * for a topic this broker is subscribed to.
 */
export type BrokerReceiver = (topic: string, payload: TopicPayload) => void;

/**
 * Carries publishes between {@linkcode Topics} registries, usually in
 * different processes. One broker instance serves one registry.
 *
 * The registry calls {@linkcode Broker.subscribe} when a topic gets its first
 * local subscriber and {@linkcode Broker.unsubscribe} when it loses its last,
 * so a broker only hears about topics someone here listens to. The registry
 * delivers its own publishes to its own subscribers itself: a broker must hand
 * to the receiver only what *other* brokers published, exactly once, in the
 * order each of them published, with the payload's type (text or binary)
 * kept.
 *
 * @example A broker that logs and carries nothing
 * ```ts
 * import { type Broker, serve, type TopicPayload } from "@anyws/anyws";
 *
 * class LoggingBroker implements Broker {
 *   start() {}
 *   subscribe(topic: string) { console.log("first subscriber of", topic); }
 *   unsubscribe(topic: string) { console.log("last subscriber left", topic); }
 *   publish(topic: string, payload: TopicPayload) {
 *     console.log("publish", topic, typeof payload === "string" ? "text" : "binary");
 *   }
 *   close() {}
 * }
 * await using server = serve({ port: 0, onListen() {}, onEstablish() {}, broker: new LoggingBroker() });
 * await server.publish("news", "hello");
 * ```
 */
export interface Broker {
  /**
   * Called once, by the registry, before any other method.
   *
   * @param receive Where to hand messages from other publishers.
   * @throws {TypeError} If the broker already serves another registry.
   */
  start(receive: BrokerReceiver): void;
  /**
   * Starts receiving `topic`. Settles once messages published elsewhere from
   * now on will be received.
   *
   * @param topic The topic: a non-empty, well-formed string (the registry
   * checks it). A broker must carry it exactly: a publish reaches the
   * subscribers of the same string and of no other.
   */
  subscribe(topic: string): void | Promise<void>;
  /**
   * Stops receiving `topic`.
   *
   * @param topic The topic.
   */
  unsubscribe(topic: string): void | Promise<void>;
  /**
   * Hands a message to the other brokers. Settles once the message is on its
   * way; rejects if it could not be sent, so a publish is never lost without
   * a trace.
   *
   * @param topic The topic.
   * @param payload Text (`string`) or binary (`Uint8Array`) data, already
   * normalised; the broker must not modify it.
   */
  publish(topic: string, payload: TopicPayload): void | Promise<void>;
  /** Releases connections and channels. Calling it again does nothing. */
  close(): void | Promise<void>;
}

/**
 * What {@linkcode Topics} needs of a subscriber: a way to send it a message,
 * its state, and a promise that settles when it is gone. Every `Connection`
 * is one; any other object of this shape (a test double, a bridge to another
 * transport) can subscribe too.
 *
 * @example A subscriber that is not a WebSocket
 * ```ts
 * import { type Subscriber, Topics, type TopicPayload } from "@anyws/anyws";
 * import { assertEquals } from "@std/assert";
 *
 * const gone = Promise.withResolvers<void>();
 * const received: TopicPayload[] = [];
 * const logger: Subscriber = {
 *   readyState: WebSocket.OPEN,
 *   closed: gone.promise,
 *   send(payload) {
 *     received.push(payload);
 *   },
 * };
 * await using topics = new Topics();
 * await topics.subscribe(logger, "news");
 * await topics.publish("news", "hello");
 * assertEquals(received, ["hello"]);
 * gone.resolve(); // leaves every topic
 * ```
 */
export interface Subscriber {
  /**
   * Delivers one published message: a `string` is text, a `Uint8Array`
   * binary. The same value goes to every local subscriber of a publish: do
   * not modify it. Called synchronously, from inside `publish()` for local
   * publishes.
   *
   * @param payload The message.
   */
  send(payload: TopicPayload): unknown;
  /**
   * A `WebSocket` ready state: a subscriber that is `WebSocket.CLOSED`
   * (3) when it subscribes is not added.
   */
  readonly readyState: number;
  /**
   * Settles (either way) when the subscriber is gone; it then leaves every
   * topic.
   */
  readonly closed: Promise<unknown>;
}

/** Options for {@linkcode Topics}. */
export interface TopicsOptions {
  /**
   * Carries publishes to other registries. The registry owns it:
   * {@linkcode Topics.close} closes it.
   *
   * @default {new MemoryBroker()} (this registry only)
   */
  broker?: Broker | undefined;
}

interface TopicEntry {
  subscribers: Set<Subscriber>;
  /** Settles when the broker receives this topic. */
  ready: Promise<void>;
}

const RESOLVED = Promise.resolve();

/**
 * The registry of topics and their subscribers in one process, and the
 * bridge to a {@linkcode Broker}. `serve()` and `createHandler()` make one
 * (see their `broker` option); make your own to share one between handlers,
 * or for `upgrade()` (its `topics` option).
 *
 * Publishing normalises the data once and sends the same value to every
 * local subscriber (no per-subscriber encoding), then hands it to the broker.
 * Local subscribers receive it synchronously, before `publish()` returns.
 *
 * @example Publish from outside any connection
 * ```ts
 * import { connect, serve, Topics } from "@anyws/anyws";
 * import { assertEquals } from "@std/assert";
 *
 * await using topics = new Topics();
 * await using server = serve({
 *   port: 0,
 *   onListen() {},
 *   topics,
 *   async onEstablish(conn) {
 *     await conn.subscribe("ticks");
 *     conn.send("ready");
 *   },
 * });
 * await using client = await connect(`ws://127.0.0.1:${server.addr.port}`);
 * await client.nextMessage();
 * await topics.publish("ticks", new Uint8Array([1, 2]));
 * assertEquals((await client.nextMessage()).body, new Uint8Array([1, 2]));
 * ```
 */
export class Topics implements AsyncDisposable {
  readonly #broker: Broker;
  #started = false;
  #closing: Promise<void> | undefined;
  readonly #entries = new Map<string, TopicEntry>();
  readonly #joined = new Map<Subscriber, Set<string>>();
  readonly #inFlight = new Map<string, Promise<void>>();

  /**
   * Creates a registry. The broker is started on first use.
   *
   * @param options The broker.
   *
   * @example
   * ```ts
   * import { MemoryBroker, Topics } from "@anyws/anyws";
   *
   * await using topics = new Topics({ broker: new MemoryBroker() });
   * console.log(topics.subscriberCount("news")); // 0
   * ```
   */
  constructor(options: TopicsOptions = {}) {
    this.#broker = options.broker ?? new MemoryBroker();
  }

  /** The broker this registry publishes through. */
  get broker(): Broker {
    return this.#broker;
  }

  /** The topics that have at least one local subscriber. */
  get topics(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * How many connections of this registry (this process) subscribe to
   * `topic`. Subscribers in other processes are not counted: brokers do not
   * track them.
   *
   * @param topic The topic.
   * @returns The number of local subscribers.
   *
   * @example
   * ```ts
   * import { Topics } from "@anyws/anyws";
   *
   * await using topics = new Topics();
   * console.log(topics.subscriberCount("news")); // 0
   * ```
   */
  subscriberCount(topic: string): number {
    return this.#entries.get(topic)?.subscribers.size ?? 0;
  }

  /**
   * Adds `conn` to `topic`. The connection leaves every topic when it
   * finishes. Subscribing twice is the same as once; a finished connection
   * is not added.
   *
   * @param conn The connection (or any other {@linkcode Subscriber}).
   * @param topic A non-empty, well-formed string (no lone surrogate).
   * @returns Settles once publishes from other processes reach `conn`
   * (local publishes reach it at once). Rejects if the broker could not
   * subscribe; the connection still receives local publishes then. An
   * unawaited rejection does not crash the process.
   * @throws {TypeError} If `topic` is not a non-empty string, holds a lone
   * surrogate (no broker could carry it exactly), or the registry is closed.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   async onEstablish(conn) {
   *     await server.topics.subscribe(conn, "news");
   *   },
   * });
   * ```
   */
  subscribe(conn: Subscriber, topic: string): Promise<void> {
    checkTopic("subscribe to", topic);
    this.#checkOpen(`subscribe to "${topic}"`);
    if (conn.readyState === WebSocket.CLOSED) return RESOLVED;
    let joined = this.#joined.get(conn);
    if (!joined) {
      joined = new Set();
      this.#joined.set(conn, joined);
      const leave = () => this.#leaveAll(conn);
      conn.closed.then(leave, leave);
    }
    joined.add(topic);
    let entry = this.#entries.get(topic);
    if (!entry) {
      this.#start();
      entry = {
        subscribers: new Set(),
        ready: this.#brokerCall(topic, () => this.#broker.subscribe(topic)),
      };
      this.#entries.set(topic, entry);
    }
    entry.subscribers.add(conn);
    return entry.ready;
  }

  /**
   * Removes `conn` from `topic`; does nothing if it was not subscribed.
   *
   * @param conn The connection (or any other {@linkcode Subscriber}).
   * @param topic The topic.
   * @returns Settles once the broker stopped receiving the topic (when `conn`
   * was its last local subscriber), at once otherwise. Never rejects: a
   * failed broker unsubscribe only means unneeded traffic.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   async onEstablish(conn) {
   *     await server.topics.subscribe(conn, "news");
   *     await server.topics.unsubscribe(conn, "news");
   *   },
   * });
   * ```
   */
  unsubscribe(conn: Subscriber, topic: string): Promise<void> {
    checkTopic("unsubscribe from", topic);
    const joined = this.#joined.get(conn);
    if (!joined?.delete(topic)) return RESOLVED;
    if (joined.size === 0) this.#joined.delete(conn);
    return this.#remove(conn, topic);
  }

  /**
   * The topics `conn` subscribes to, as a new set.
   *
   * @param conn The connection (or any other {@linkcode Subscriber}).
   * @returns A snapshot of its topics.
   *
   * @example
   * ```ts
   * import { serve } from "@anyws/anyws";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   onEstablish(conn) {
   *     console.log(server.topics.topicsOf(conn));
   *   },
   * });
   * ```
   */
  topicsOf(conn: Subscriber): Set<string> {
    return new Set(this.#joined.get(conn));
  }

  /**
   * Sends a message to every subscriber of `topic`: local ones at once
   * (except `except`), others through the broker. The data is normalised
   * once; text stays text and binary stays binary.
   *
   * @param topic A non-empty, well-formed string (no lone surrogate).
   * @param data A string (text), binary data or a text/binary `Message`.
   * @param except A local subscriber that should not receive it (the
   * publisher, for `Connection.publish()`).
   * @returns Settles once the broker has the message; rejects if the broker
   * could not send it (the local subscribers got it anyway). An unawaited
   * rejection does not crash the process; brokers also report it through
   * their own `onError`.
   * @throws {TypeError} For a `Blob`, a close/ping/pong `Message`, an
   * unsupported value, a topic that is not a non-empty, well-formed string,
   * or a closed registry.
   *
   * @example
   * ```ts
   * import { Topics } from "@anyws/anyws";
   *
   * await using topics = new Topics();
   * await topics.publish("news", "nobody listens yet");
   * ```
   */
  publish(
    topic: string,
    data: PublishData,
    except?: Subscriber,
  ): Promise<void> {
    checkTopic("publish to", topic);
    const payload = toPayload(topic, data);
    this.#checkOpen(`publish to "${topic}"`);
    this.#deliver(topic, payload, except);
    this.#start();
    return handled(settle(() => this.#broker.publish(topic, payload)));
  }

  /**
   * Stops the broker and forgets every subscription. Later calls return the
   * same promise.
   *
   * @returns Settles once the broker is closed.
   *
   * @example
   * ```ts
   * import { Topics } from "@anyws/anyws";
   *
   * const topics = new Topics();
   * await topics.close();
   * ```
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#entries.clear();
      this.#joined.clear();
      await this.#broker.close();
    })();
  }

  /**
   * Closes, for `await using`.
   *
   * @example
   * ```ts
   * import { Topics } from "@anyws/anyws";
   *
   * {
   *   await using topics = new Topics();
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#broker.start((topic, payload) => this.#deliver(topic, payload));
  }

  #checkOpen(what: string): void {
    if (this.#closing) {
      throw new TypeError(`Cannot ${what}: the topic registry is closed`);
    }
  }

  #deliver(topic: string, payload: TopicPayload, except?: Subscriber): void {
    const entry = this.#entries.get(topic);
    if (!entry) return;
    for (const conn of entry.subscribers) {
      if (conn !== except) conn.send(payload);
    }
  }

  #leaveAll(conn: Subscriber): void {
    const joined = this.#joined.get(conn);
    if (!joined) return;
    this.#joined.delete(conn);
    for (const topic of joined) this.#remove(conn, topic);
  }

  #remove(conn: Subscriber, topic: string): Promise<void> {
    const entry = this.#entries.get(topic);
    if (!entry?.subscribers.delete(conn) || entry.subscribers.size > 0) {
      return RESOLVED;
    }
    this.#entries.delete(topic);
    if (this.#closing) return RESOLVED;
    // A failed unsubscribe only costs traffic for a topic nobody here reads.
    return this.#brokerCall(topic, () => this.#broker.unsubscribe(topic))
      .catch(() => {});
  }

  /**
   * Calls the broker for `topic` once its previous call for that topic has
   * settled, so that a quick leave-and-rejoin cannot reach the broker as
   * subscribe, subscribe, unsubscribe.
   */
  #brokerCall(
    topic: string,
    call: () => void | Promise<void>,
  ): Promise<void> {
    const previous = this.#inFlight.get(topic);
    const result = handled(
      previous ? previous.then(() => settle(call)) : settle(call),
    );
    const done: Promise<void> = result.then(() => {}, () => {}).then(() => {
      if (this.#inFlight.get(topic) === done) this.#inFlight.delete(topic);
    });
    this.#inFlight.set(topic, done);
    return result;
  }
}

/**
 * The default broker: publishes stay inside this process. Brokers created
 * with `new MemoryBroker(other)` form a group and carry each other's
 * publishes (synchronously), for several servers in one process.
 *
 * @example Two servers in one process sharing topics
 * ```ts
 * import { MemoryBroker, serve } from "@anyws/anyws";
 *
 * const first = new MemoryBroker();
 * await using a = serve({ port: 0, onListen() {}, onEstablish() {}, broker: first });
 * await using b = serve({ port: 0, onListen() {}, onEstablish() {}, broker: new MemoryBroker(first) });
 * await a.publish("news", "reaches subscribers of b too");
 * ```
 */
export class MemoryBroker implements Broker {
  readonly #group: Set<MemoryBroker>;
  #receive: BrokerReceiver | undefined;
  readonly #topics = new Set<string>();

  /**
   * Creates a broker, alone or in the group of `peer`.
   *
   * @param peer A broker whose group this one joins.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@anyws/anyws";
   *
   * const first = new MemoryBroker();
   * const second = new MemoryBroker(first);
   * console.log(first !== second);
   * ```
   */
  constructor(peer?: MemoryBroker) {
    this.#group = peer ? peer.#group : new Set();
    this.#group.add(this);
  }

  /**
   * Starts receiving (see {@linkcode Broker.start}).
   *
   * @param receive Where messages from the group go.
   * @throws {TypeError} If already started.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@anyws/anyws";
   *
   * new MemoryBroker().start((topic, payload) => console.log(topic, payload));
   * ```
   */
  start(receive: BrokerReceiver): void {
    if (this.#receive) {
      throw new TypeError(
        "Cannot start a MemoryBroker: it already serves a topic registry (create one broker per registry)",
      );
    }
    this.#receive = receive;
  }

  /**
   * Receives `topic` from the group.
   *
   * @param topic The topic.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string
   * (refused as every broker refuses it).
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@anyws/anyws";
   *
   * new MemoryBroker().subscribe("news");
   * ```
   */
  subscribe(topic: string): void {
    checkTopic("subscribe to", topic);
    this.#topics.add(topic);
  }

  /**
   * Stops receiving `topic`.
   *
   * @param topic The topic.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@anyws/anyws";
   *
   * new MemoryBroker().unsubscribe("news");
   * ```
   */
  unsubscribe(topic: string): void {
    checkTopic("unsubscribe from", topic);
    this.#topics.delete(topic);
  }

  /**
   * Hands the message to the other brokers of the group that subscribe to
   * `topic`, synchronously.
   *
   * @param topic The topic.
   * @param payload The message.
   * @throws {TypeError} If `topic` is not a non-empty, well-formed string.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@anyws/anyws";
   *
   * const first = new MemoryBroker();
   * const second = new MemoryBroker(first);
   * second.start((topic, payload) => console.log(topic, payload));
   * second.subscribe("news");
   * first.publish("news", "hi"); // logs "news hi"
   * ```
   */
  publish(topic: string, payload: TopicPayload): void {
    checkTopic("publish to", topic);
    for (const broker of this.#group) {
      if (broker !== this && broker.#topics.has(topic)) {
        broker.#receive?.(topic, payload);
      }
    }
  }

  /**
   * Leaves the group.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@anyws/anyws";
   *
   * new MemoryBroker().close();
   * ```
   */
  close(): void {
    this.#group.delete(this);
    this.#topics.clear();
  }
}

/**
 * Normalises publish data into a {@linkcode TopicPayload}, once per publish.
 *
 * @param topic For the error message.
 * @param data What was published.
 * @returns Text as a string, binary as a `Uint8Array` over the same bytes.
 * @throws {TypeError} For a `Blob` or anything `toSendable` refuses.
 */
function toPayload(topic: string, data: PublishData): TopicPayload {
  if (data instanceof Blob) {
    throw new TypeError(
      `Cannot publish a Blob to "${topic}": read it first (await blob.bytes()) so that publishes keep their order`,
    );
  }
  const sendable = toSendable(data);
  if (typeof sendable === "string" || sendable instanceof Uint8Array) {
    return sendable;
  }
  return new Uint8Array(sendable as ArrayBuffer);
}

/** Runs `fn` and turns its result or throw into a promise. */
function settle(fn: () => void | Promise<void>): Promise<void> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Marks a promise as handled, so an unawaited rejection crashes nothing. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
