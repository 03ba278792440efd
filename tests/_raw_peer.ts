/**
 * A WebSocket peer over raw TCP, for what well-behaved clients never do:
 * malformed handshakes, unmasked or reserved-bit frames, ignoring pings and
 * close frames, or dropping the connection mid-frame.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A valid `Sec-WebSocket-Key` (the RFC 6455 sample nonce). */
export const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** The HTTP answer to a handshake. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** One frame as read off the wire. */
export interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Uint8Array;
}

/** Options for {@linkcode encodeFrame}. */
export interface FrameOptions {
  opcode: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  /** Mask the payload, as clients must. @default {true} */
  mask?: boolean;
  /** RSV1-3 bits, 0-7. */
  rsv?: number;
  /** Claim this payload length instead of the real one. */
  claimedLength?: bigint;
}

/** Encodes one frame; anything may be malformed on purpose. */
export function encodeFrame(options: FrameOptions): Uint8Array {
  const payload = typeof options.payload === "string"
    ? encoder.encode(options.payload)
    : options.payload ?? new Uint8Array();
  const mask = options.mask ?? true;
  const length = options.claimedLength ?? BigInt(payload.length);
  const head: number[] = [
    ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) |
    options.opcode,
  ];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126n) {
    head.push(maskBit | Number(length));
  } else if (length < 65536n) {
    head.push(
      maskBit | 126,
      Number(length >> 8n) & 0xff,
      Number(length) & 0xff,
    );
  } else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) {
      head.push(Number((length >> shift) & 0xffn));
    }
  }
  const key = mask ? crypto.getRandomValues(new Uint8Array(4)) : undefined;
  const frame = new Uint8Array(head.length + (key ? 4 : 0) + payload.length);
  frame.set(head);
  let offset = head.length;
  if (key) {
    frame.set(key, offset);
    offset += 4;
  }
  for (let i = 0; i < payload.length; i++) {
    frame[offset + i] = key ? payload[i]! ^ key[i & 3]! : payload[i]!;
  }
  return frame;
}

/** Builds a close frame payload: a 2-byte code and a UTF-8 reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const text = encoder.encode(reason);
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return payload;
}

/** A raw TCP connection speaking (or mis-speaking) WebSocket. */
export class RawPeer implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  #buffer = new Uint8Array(0);
  #eof = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /**
   * Wraps a connection accepted from a `Deno.listen` listener, to play the
   * server: read the handshake with {@linkcode RawPeer.readResponse} (its
   * `headers`; `status` is NaN for a request line) and send frames with
   * `mask: false`.
   */
  static accepted(conn: Deno.TcpConn): RawPeer {
    return new RawPeer(conn);
  }

  /** Opens a TCP connection to `port` on loopback. */
  static async connect(port: number, hostname = "127.0.0.1"): Promise<RawPeer> {
    return new RawPeer(await Deno.connect({ port, hostname }));
  }

  /**
   * Opens a connection and completes a valid handshake.
   *
   * @throws {Error} If the server does not answer 101.
   */
  static async open(
    port: number,
    headers: Record<string, string> = {},
  ): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    const response = await peer.handshake({ headers });
    if (response.status !== 101) {
      peer.drop();
      throw new Error(`Expected 101, got ${response.status}: ${response.body}`);
    }
    return peer;
  }

  /** The request a well-behaved client sends, with `headers` merged in (`null` omits one). */
  static request(
    options: {
      path?: string;
      method?: string;
      headers?: Record<string, string | null>;
    } = {},
  ): string {
    const headers: Record<string, string | null> = {
      host: "127.0.0.1",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": SAMPLE_KEY,
      "sec-websocket-version": "13",
    };
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      headers[name.toLowerCase()] = value;
    }
    const lines = Object.entries(headers)
      .filter(([, value]) => value !== null)
      .map(([name, value]) => `${name}: ${value}`);
    return `${options.method ?? "GET"} ${options.path ?? "/"} HTTP/1.1\r\n${
      lines.join("\r\n")
    }\r\n\r\n`;
  }

  /** Sends a handshake request (see {@linkcode RawPeer.request}) and reads the answer. */
  async handshake(
    options: Parameters<typeof RawPeer.request>[0] = {},
  ): Promise<RawResponse> {
    await this.write(RawPeer.request(options));
    return await this.readResponse();
  }

  /** Reads an HTTP response head (and a body of `content-length` bytes). */
  async readResponse(): Promise<RawResponse> {
    let end: number;
    while ((end = indexOf(this.#buffer, "\r\n\r\n")) < 0) {
      if (!await this.#fill()) {
        throw new Error(
          `Connection closed before a full response head: ${
            JSON.stringify(decoder.decode(this.#buffer))
          }`,
        );
      }
    }
    const head = decoder.decode(this.#buffer.subarray(0, end)).split("\r\n");
    this.#buffer = this.#buffer.subarray(end + 4);
    const status = Number(head[0]?.split(" ")[1]);
    const headers = new Headers();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get("content-length") ?? "0");
    while (this.#buffer.length < length && await this.#fill());
    const body = decoder.decode(this.#buffer.subarray(0, length));
    this.#buffer = this.#buffer.subarray(length);
    return { status, headers, body };
  }

  /** Writes raw bytes or text. */
  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let written = 0;
    while (written < bytes.length) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  /** Encodes and writes one frame. */
  async sendFrame(options: FrameOptions): Promise<void> {
    await this.write(encodeFrame(options));
  }

  /** Reads the next frame, or `null` at end of stream. */
  async readFrame(): Promise<RawFrame | null> {
    if (!await this.#need(2)) return null;
    const b0 = this.#buffer[0]!;
    const b1 = this.#buffer[1]!;
    let length = b1 & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (!await this.#need(4)) return null;
      length = (this.#buffer[2]! << 8) | this.#buffer[3]!;
      offset = 4;
    } else if (length === 127) {
      if (!await this.#need(10)) return null;
      length = Number(
        new DataView(this.#buffer.buffer, this.#buffer.byteOffset + 2, 8)
          .getBigUint64(0),
      );
      offset = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const total = offset + (masked ? 4 : 0) + length;
    if (!await this.#need(total)) return null;
    let payload = this.#buffer.slice(offset + (masked ? 4 : 0), total);
    if (masked) {
      const key = this.#buffer.subarray(offset, offset + 4);
      payload = payload.map((byte, i) => byte ^ key[i & 3]!);
    }
    this.#buffer = this.#buffer.subarray(total);
    return { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload };
  }

  /** Reads frames until a close frame; returns its code (1005 if none) and reason. */
  async readClose(): Promise<{ code: number; reason: string } | null> {
    for (
      let frame = await this.readFrame();
      frame;
      frame = await this.readFrame()
    ) {
      if (frame.opcode !== 8) continue;
      if (frame.payload.length < 2) return { code: 1005, reason: "" };
      return {
        code: (frame.payload[0]! << 8) | frame.payload[1]!,
        reason: decoder.decode(frame.payload.subarray(2)),
      };
    }
    return null;
  }

  /** Resolves once the server has closed the TCP connection (reads and discards). */
  async waitForEof(): Promise<void> {
    while (await this.#fill());
  }

  /** Drops the TCP connection without a close frame. */
  drop(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  /** Drops the connection, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.drop();
    return Promise.resolve();
  }

  async #need(bytes: number): Promise<boolean> {
    while (this.#buffer.length < bytes) {
      if (!await this.#fill()) return false;
    }
    return true;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch {
      n = null; // reset by peer counts as end of stream
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buffer.length + n);
    next.set(this.#buffer);
    next.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = next;
    return true;
  }
}

function indexOf(bytes: Uint8Array, text: string): number {
  const needle = encoder.encode(text);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (bytes[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}
