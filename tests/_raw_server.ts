/**
 * A WebSocket "server" over raw TCP, for what a well-behaved server never
 * does: never answering the handshake, choosing a subprotocol the client did
 * not offer, or dropping the connection without a close frame.
 *
 * @module
 */

import { RawPeer } from "./_raw_peer.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The `Sec-WebSocket-Accept` value for a client's key (RFC 6455, 4.2.2). */
export async function acceptValue(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** A TCP listener on 127.0.0.1, port 0, whose connections are {@linkcode RawPeer}s. */
export class RawServer implements AsyncDisposable {
  readonly listener: Deno.TcpListener;
  readonly #peers: RawPeer[] = [];

  constructor() {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  }

  /** The bound port. */
  get port(): number {
    return this.listener.addr.port;
  }

  /** `ws://127.0.0.1:PORT/`. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  /** Accepts one TCP connection and answers nothing. */
  async accept(): Promise<RawPeer> {
    const peer = RawPeer.accepted(await this.listener.accept());
    this.#peers.push(peer);
    return peer;
  }

  /**
   * Accepts one connection, reads its handshake request and answers 101 with
   * a correct `Sec-WebSocket-Accept` plus `headers`. `trailing` bytes (e.g.
   * frames) go out in the same write as the 101 response, so that the client
   * reads them together with it.
   *
   * @returns The peer and the request's headers.
   */
  async acceptWebSocket(
    headers: Record<string, string> = {},
    trailing: Uint8Array = new Uint8Array(),
  ): Promise<{ peer: RawPeer; request: Headers }> {
    const peer = await this.accept();
    const request = (await peer.readResponse()).headers;
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "upgrade: websocket",
      "connection: Upgrade",
      `sec-websocket-accept: ${await acceptValue(
        request.get("sec-websocket-key") ?? "",
      )}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
    const bytes = new Uint8Array(head.length + trailing.length);
    bytes.set(head);
    bytes.set(trailing, head.length);
    await peer.write(bytes);
    return { peer, request };
  }

  /** Drops every accepted connection and stops listening. */
  [Symbol.asyncDispose](): Promise<void> {
    for (const peer of this.#peers) peer.drop();
    try {
      this.listener.close();
    } catch {
      // already closed
    }
    return Promise.resolve();
  }
}
