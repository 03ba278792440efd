/**
 * An open server-side and client-side {@linkcode Connection} over loopback,
 * so that behaviours both sides share are written once and run for each.
 *
 * @module
 */

import { connect, type ConnectOptions } from "../client.ts";
import type { Connection } from "../connection.ts";
import type { ServeOptions, Server } from "../server.ts";
import { listen, within, wsUrl } from "./_fixture.ts";
import { RawPeer } from "./_raw_peer.ts";
import { RawServer } from "./_raw_server.ts";

/** The two sides of a connection. */
export type Side = "server" | "client";

/** Both sides, for generating one `Deno.test` per side. */
export const SIDES: readonly Side[] = ["server", "client"];

/** Options for {@linkcode openPair}. */
export interface PairOptions {
  /** Server options (besides `onEstablish`, which the pair provides). */
  server?: Omit<ServeOptions, "port" | "hostname" | "onListen" | "onEstablish">;
  /** Client options. */
  client?: ConnectOptions;
  /**
   * Runs inside `onEstablish`, in the task that received the server-side
   * connection (for registering before anything is dispatched).
   */
  onEstablish?: (conn: Connection) => void;
}

/** An open pair; `await using` shuts everything down. */
export interface Pair extends AsyncDisposable {
  server: Server;
  serverConn: Connection;
  clientConn: Connection;
  /** The connection on `side` and the one at the other end. */
  sides(side: Side): { conn: Connection; peer: Connection };
}

/** Starts a server, connects to it, and resolves once both sides are open. */
export async function openPair(options: PairOptions = {}): Promise<Pair> {
  const established = Promise.withResolvers<Connection>();
  const server = listen({
    ...options.server,
    onEstablish(conn) {
      options.onEstablish?.(conn);
      established.resolve(conn);
    },
  });
  let clientConn: Connection;
  try {
    clientConn = await within(
      connect(wsUrl(server), options.client),
      "the client to connect",
    );
  } catch (error) {
    await server.shutdown();
    throw error;
  }
  const serverConn = await within(
    established.promise,
    "the server to establish",
  );
  return {
    server,
    serverConn,
    clientConn,
    sides(side) {
      return side === "server"
        ? { conn: serverConn, peer: clientConn }
        : { conn: clientConn, peer: serverConn };
    },
    async [Symbol.asyncDispose]() {
      if (clientConn.readyState !== WebSocket.CLOSED) clientConn.close(1000);
      await within(clientConn.closed, "the client to finish");
      await within(server.shutdown(), "the server to shut down");
    },
  };
}

/** The close code `side` uses where the server side would use `serverCode`. */
export function sideCode(side: Side, serverCode: number): number {
  return side === "server" ? serverCode : 4000 + (serverCode - 1000);
}

/** Collects values and resolves `full` once `count` have arrived. */
export class Collector<T> {
  readonly items: T[] = [];
  readonly #count: number;
  readonly #full = Promise.withResolvers<T[]>();

  constructor(count: number) {
    this.#count = count;
    if (count === 0) this.#full.resolve(this.items);
  }

  /** Records one value. */
  push = (item: T): void => {
    this.items.push(item);
    if (this.items.length === this.#count) this.#full.resolve(this.items);
  };

  /** Resolves with the items once `count` have arrived (bounded by `within`). */
  full(what = `${this.#count} items`): Promise<T[]> {
    return within(this.#full.promise, what);
  }
}

/**
 * Replaces `console.error` while `fn` runs and returns what was logged, for
 * code that reports errors it swallows.
 */
export async function capturingConsoleError<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; logged: unknown[][] }> {
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    return { result: await fn(), logged };
  } finally {
    console.error = original;
  }
}

/**
 * A connection on `side` whose peer is raw TCP, so that the peer can drop
 * the connection without a close frame.
 */
export async function droppablePair(
  side: Side,
  options: { closeTimeout?: number } = {},
): Promise<
  AsyncDisposable & { conn: Connection; peer: RawPeer; drop(): void }
> {
  if (side === "server") {
    const established = Promise.withResolvers<Connection>();
    const server = listen({
      ...options,
      onEstablish: (conn) => established.resolve(conn),
    });
    const peer = await within(RawPeer.open(server.addr.port), "the handshake");
    const conn = await within(established.promise, "onEstablish");
    return {
      conn,
      peer,
      drop: () => peer.drop(),
      async [Symbol.asyncDispose]() {
        peer.drop();
        await within(conn.closed, "the connection to finish");
        await server.shutdown();
      },
    };
  }
  const raw = new RawServer();
  const accepted = raw.acceptWebSocket();
  const conn = await within(
    connect(raw.url, options),
    "the client to connect",
  );
  const { peer } = await accepted;
  return {
    conn,
    peer,
    drop: () => peer.drop(),
    async [Symbol.asyncDispose]() {
      peer.drop();
      await within(conn.closed, "the connection to finish");
      await raw[Symbol.asyncDispose]();
    },
  };
}
