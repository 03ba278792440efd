/**
 * WebSocket messages, opcodes and close codes.
 *
 * {@linkcode Message} mirrors Perl's `AnyEvent::WebSocket::Message`: an opcode
 * and a body, with predicates and lazy text/byte conversions.
 *
 * @example Build and inspect messages
 * ```ts
 * import { Message, OPCODE } from "@anyws/anyws/message";
 * import { assertEquals } from "@std/assert";
 *
 * const text = new Message("héllo");
 * assertEquals(text.opcode, OPCODE.TEXT);
 * assertEquals(text.body.length, 6); // UTF-8 bytes
 *
 * const bytes = new Message(new Uint8Array([1, 2, 3]));
 * assertEquals(bytes.isBinary(), true);
 * ```
 *
 * @module
 */

/**
 * WebSocket frame opcodes (RFC 6455, section 5.2).
 *
 * @example Compare a message's opcode
 * ```ts
 * import { Message, OPCODE } from "@anyws/anyws/message";
 * import { assert } from "@std/assert";
 *
 * assert(new Message("hi").opcode === OPCODE.TEXT);
 * ```
 */
export const OPCODE = {
  /** A continuation frame of a fragmented message. */
  CONTINUATION: 0,
  /** A UTF-8 text message. */
  TEXT: 1,
  /** A binary message. */
  BINARY: 2,
  /** A close frame. */
  CLOSE: 8,
  /** A ping frame. */
  PING: 9,
  /** A pong frame. */
  PONG: 10,
} as const;

/**
 * Registered WebSocket close codes (RFC 6455, section 7.4, and the IANA
 * registry).
 *
 * @example Close with a named code
 * ```ts
 * import { CLOSE_CODE } from "@anyws/anyws/message";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(CLOSE_CODE.MESSAGE_TOO_BIG, 1009);
 * ```
 */
export const CLOSE_CODE = {
  /** The purpose of the connection was fulfilled. */
  NORMAL: 1000,
  /** The endpoint is going away (server shutdown, page navigation). */
  GOING_AWAY: 1001,
  /** The peer broke the protocol. */
  PROTOCOL_ERROR: 1002,
  /** The endpoint cannot accept this type of data. */
  UNSUPPORTED_DATA: 1003,
  /** Reserved: the close frame carried no status code. Never sent. */
  NO_STATUS: 1005,
  /** Reserved: the connection dropped without a close frame. Never sent. */
  ABNORMAL: 1006,
  /** A message's data was inconsistent with its type (e.g. bad UTF-8). */
  INVALID_PAYLOAD: 1007,
  /** A message violated the endpoint's policy. */
  POLICY_VIOLATION: 1008,
  /** A message was too big to process. */
  MESSAGE_TOO_BIG: 1009,
  /** The client expected an extension the server did not negotiate. */
  MANDATORY_EXTENSION: 1010,
  /** The server hit an unexpected condition. */
  INTERNAL_ERROR: 1011,
  /** The server is restarting. */
  SERVICE_RESTART: 1012,
  /** The server is overloaded; try again later. */
  TRY_AGAIN_LATER: 1013,
  /** A gateway received an invalid response upstream. */
  BAD_GATEWAY: 1014,
} as const;

/**
 * What {@linkcode Message} bodies and {@linkcode Connection.send} accept as
 * binary data.
 */
export type BinaryData = ArrayBuffer | ArrayBufferView | Blob;

/**
 * Anything {@linkcode Connection.send} accepts: a string is sent as a text
 * message, binary data as a binary message, a {@linkcode Message} by its
 * opcode.
 */
export type SendData = string | BinaryData | Message;

// One encoder and one decoder for the whole process: they hold no state
// between calls (the decoder is non-streaming and non-fatal).
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A WebSocket message: an opcode and a body, as in Perl's
 * `AnyEvent::WebSocket::Message`.
 *
 * The body is kept in the form it arrived in (a string for received text, bytes
 * for received binary) and converted only when the other form is asked for, so
 * a message costs nothing beyond what its consumer reads.
 *
 * @example Read a received message
 * ```ts
 * import { Message } from "@anyws/anyws/message";
 * import { assertEquals } from "@std/assert";
 *
 * const message = new Message('{"n":1}');
 * assertEquals(message.isText(), true);
 * assertEquals(message.json(), { n: 1 });
 * assertEquals(`${message}`, '{"n":1}');
 * ```
 */
export class Message {
  /** The frame opcode: see {@linkcode OPCODE}. */
  readonly opcode: number;
  #bytes: Uint8Array | undefined;
  #text: string | undefined;

  /**
   * Creates a message.
   *
   * @param body The payload: a string (kept as text) or bytes (kept as is, not
   * copied).
   * @param opcode The frame opcode. Defaults to {@linkcode OPCODE.TEXT} for a
   * string and {@linkcode OPCODE.BINARY} for bytes.
   * @throws {TypeError} If `body` is neither a string nor a `Uint8Array`.
   * @throws {RangeError} If `opcode` is not an integer from 0 to 15.
   *
   * @example A binary message
   * ```ts
   * import { Message, OPCODE } from "@anyws/anyws/message";
   * import { assertEquals } from "@std/assert";
   *
   * const message = new Message(new Uint8Array([0xff]), OPCODE.BINARY);
   * assertEquals(message.body, new Uint8Array([0xff]));
   * ```
   */
  constructor(body: string | Uint8Array, opcode?: number) {
    if (typeof body === "string") {
      this.#text = body;
    } else if (body instanceof Uint8Array) {
      this.#bytes = body;
    } else {
      throw new TypeError(
        `Cannot create a Message: body must be a string or a Uint8Array, got ${
          describe(body)
        }`,
      );
    }
    const op = opcode ??
      (typeof body === "string" ? OPCODE.TEXT : OPCODE.BINARY);
    if (!Number.isInteger(op) || op < 0 || op > 15) {
      throw new RangeError(
        `Cannot create a Message: opcode must be an integer from 0 to 15, got ${op}`,
      );
    }
    this.opcode = op;
  }

  /**
   * The raw payload bytes. A text body is UTF-8 encoded on first access and
   * the result is kept.
   *
   * @example
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Message("é").body, new Uint8Array([0xc3, 0xa9]));
   * ```
   */
  get body(): Uint8Array {
    return this.#bytes ??= encoder.encode(this.#text);
  }

  /**
   * The body decoded as UTF-8. Invalid sequences become U+FFFD rather than
   * throwing. The result is kept.
   *
   * @returns The decoded text.
   *
   * @example
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertEquals } from "@std/assert";
   *
   * const message = new Message(new Uint8Array([0x68, 0x69, 0xff]));
   * assertEquals(message.decodedBody(), "hi\uFFFD");
   * ```
   */
  decodedBody(): string {
    return this.#text ??= decoder.decode(this.#bytes);
  }

  /**
   * Whether this is a text message (opcode 1).
   *
   * @returns `true` for a text message.
   *
   * @example
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assert } from "@std/assert";
   *
   * assert(new Message("hi").isText());
   * ```
   */
  isText(): boolean {
    return this.opcode === OPCODE.TEXT;
  }

  /**
   * Whether this is a binary message (opcode 2).
   *
   * @returns `true` for a binary message.
   *
   * @example
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assert } from "@std/assert";
   *
   * assert(new Message(new Uint8Array(1)).isBinary());
   * ```
   */
  isBinary(): boolean {
    return this.opcode === OPCODE.BINARY;
  }

  /**
   * Whether this is a close frame (opcode 8).
   *
   * @returns `true` for a close frame.
   *
   * @example
   * ```ts
   * import { Message, OPCODE } from "@anyws/anyws/message";
   * import { assert } from "@std/assert";
   *
   * assert(new Message("", OPCODE.CLOSE).isClose());
   * ```
   */
  isClose(): boolean {
    return this.opcode === OPCODE.CLOSE;
  }

  /**
   * Whether this is a ping frame (opcode 9).
   *
   * @returns `true` for a ping frame.
   *
   * @example
   * ```ts
   * import { Message, OPCODE } from "@anyws/anyws/message";
   * import { assert } from "@std/assert";
   *
   * assert(new Message("", OPCODE.PING).isPing());
   * ```
   */
  isPing(): boolean {
    return this.opcode === OPCODE.PING;
  }

  /**
   * Whether this is a pong frame (opcode 10).
   *
   * @returns `true` for a pong frame.
   *
   * @example
   * ```ts
   * import { Message, OPCODE } from "@anyws/anyws/message";
   * import { assert } from "@std/assert";
   *
   * assert(new Message("", OPCODE.PONG).isPong());
   * ```
   */
  isPong(): boolean {
    return this.opcode === OPCODE.PONG;
  }

  /**
   * The decoded body, so that a message interpolates as its text.
   *
   * @returns The same as {@linkcode Message.decodedBody}.
   *
   * @example
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(`got ${new Message("hi")}`, "got hi");
   * ```
   */
  toString(): string {
    return this.decodedBody();
  }

  /**
   * Parses a text message's body as JSON: the reading half of
   * {@linkcode Message.fromJSON}. Works wherever a `Message` arrives: Perl
   * `each_message` and `next_message` handlers, DOM `event.data`,
   * `nextMessage()` and `for await`.
   *
   * Only text messages carry JSON (RFC 8259 text is UTF-8, and WebSocket text
   * frames are how JSON is sent). To read JSON that a peer sends in binary
   * frames, parse it yourself: `JSON.parse(message.decodedBody())`.
   *
   * @typeParam T The expected shape; not checked at run time.
   * @returns The parsed value.
   * @throws {SyntaxError} If the text is not JSON. The message gives the
   * parser's complaint and the text received (its first 60 characters, then
   * how long it was); `cause` is the parser's own error.
   * @throws {TypeError} If this is not a text message (binary, or a control
   * frame). The message gives the kind, the length and the first bytes in hex.
   *
   * @example Read a typed value
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertEquals } from "@std/assert";
   *
   * interface Point { x: number; y: number }
   * const point = new Message('{"x":1,"y":2}').json<Point>();
   * assertEquals(point.x + point.y, 3);
   * ```
   *
   * @example What goes wrong is named
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(
   *   () => new Message("hello").json(),
   *   SyntaxError,
   *   'the text was "hello"',
   * );
   * assertThrows(
   *   () => new Message(new Uint8Array([0x7b, 0x7d])).json(),
   *   TypeError,
   *   "a binary message (2 bytes: 7b 7d)",
   * );
   * ```
   */
  json<T = unknown>(): T {
    if (!this.isText()) {
      throw new TypeError(
        `Cannot parse the message as JSON: it is ${
          describeKind(this)
        }, and JSON comes in text messages`,
      );
    }
    const text = this.decodedBody();
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new SyntaxError(
        `Cannot parse the message as JSON: ${
          (error as Error).message
        }; the text was ${previewText(text)}`,
        { cause: error },
      );
    }
  }

  /**
   * Makes a text message of `value` as JSON: the sending half of
   * {@linkcode Message.json}. `conn.send(Message.fromJSON(value))` sends it.
   *
   * `JSON.stringify` rules apply: `toJSON()` is called, `NaN` and
   * `Infinity` become `null`, and properties that are `undefined`, functions
   * or symbols are left out.
   *
   * @param value The value to send.
   * @returns A text message holding `JSON.stringify(value)`.
   * @throws {TypeError} If JSON cannot represent `value`: `undefined`, a
   * function or a symbol (at the top level), a `BigInt`, or a circular
   * structure. Errors thrown by a `toJSON()` method pass through unchanged.
   *
   * @example Send JSON
   * ```ts
   * import { connect, Message, serve } from "@anyws/anyws";
   * import { assertEquals } from "@std/assert";
   *
   * await using server = serve({
   *   port: 0,
   *   onListen() {},
   *   onEstablish(conn) {
   *     conn.on("each_message", (conn, message) => {
   *       const { n } = message.json<{ n: number }>();
   *       conn.send(Message.fromJSON({ n: n + 1 }));
   *     });
   *   },
   * });
   * await using conn = await connect(`ws://127.0.0.1:${server.addr.port}`);
   * conn.send(Message.fromJSON({ n: 1 }));
   * assertEquals((await conn.nextMessage()).json(), { n: 2 });
   * ```
   *
   * @example Values JSON cannot hold are refused
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertThrows } from "@std/assert";
   *
   * assertThrows(() => Message.fromJSON(undefined), TypeError, "undefined");
   * assertThrows(() => Message.fromJSON({ id: 1n }), TypeError, "BigInt");
   * ```
   */
  static fromJSON(value: unknown): Message {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      // V8's own errors (BigInt, cycles) are TypeErrors; a throwing toJSON()
      // is the caller's error and keeps its class.
      if (!(error instanceof TypeError)) throw error;
      throw new TypeError(
        `Cannot make a JSON message: ${error.message}`,
        { cause: error },
      );
    }
    if (text === undefined) {
      throw new TypeError(
        `Cannot make a JSON message of ${
          typeof value === "undefined" ? "undefined" : `a ${typeof value}`
        }: JSON has no representation for it`,
      );
    }
    return new Message(text);
  }

  /**
   * The UTF-8 byte length of the body, computed without encoding a text body
   * when that can be avoided.
   *
   * @returns The body's length in bytes.
   *
   * @example
   * ```ts
   * import { Message } from "@anyws/anyws/message";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new Message("héllo").byteLength, 6);
   * ```
   */
  get byteLength(): number {
    if (this.#bytes !== undefined) return this.#bytes.byteLength;
    return utf8Length(this.#text ?? "");
  }
}

/**
 * Counts the UTF-8 bytes of a string without allocating.
 *
 * @param text The string to measure.
 * @returns Its encoded length in bytes (lone surrogates count as the 3 bytes
 * of U+FFFD, as `TextEncoder` writes them).
 *
 * @example
 * ```ts
 * import { utf8Length } from "@anyws/anyws/message";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(utf8Length("a€😀"), 1 + 3 + 4);
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (
      unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length &&
      (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      // A surrogate pair: two UTF-16 units, four UTF-8 bytes.
      bytes += 2;
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * Turns anything {@linkcode Connection.send} accepts into what the standard
 * `WebSocket.send()` takes, without copying bytes.
 *
 * Typed arrays other than `Uint8Array` and `DataView`s become a `Uint8Array`
 * over exactly the view's bytes: sending `view.buffer` would send the whole
 * backing buffer.
 *
 * @param data The data to send.
 * @returns A string (text frame) or a `Uint8Array`/`ArrayBuffer`/`Blob`
 * (binary frame).
 * @throws {TypeError} For a control-frame {@linkcode Message} (close, ping,
 * pong), which the standard WebSocket API cannot send, and for unsupported
 * values.
 *
 * @example
 * ```ts
 * import { toSendable } from "@anyws/anyws/message";
 * import { assertEquals } from "@std/assert";
 *
 * const view = new Uint16Array([1, 2, 3]).subarray(1);
 * assertEquals((toSendable(view) as Uint8Array).byteLength, 4);
 * ```
 */
export function toSendable(
  data: SendData,
): string | Uint8Array | ArrayBuffer | Blob {
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return data;
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (data instanceof Blob) return data;
  if (data instanceof Message) {
    if (data.isText()) return data.decodedBody();
    if (data.isBinary()) return data.body;
    throw new TypeError(
      `Cannot send a Message with opcode ${data.opcode}: the standard WebSocket API sends only text (1) and binary (2) messages; Deno answers pings itself and close() sends the close frame`,
    );
  }
  throw new TypeError(
    `Cannot send ${
      describe(data)
    }: expected a string, ArrayBuffer, ArrayBufferView, Blob or Message`,
  );
}

/**
 * The byte length of what {@linkcode toSendable} returned.
 *
 * @param data A value returned by {@linkcode toSendable}.
 * @returns Its size in bytes on the wire (payload only).
 *
 * @example
 * ```ts
 * import { sendableLength } from "@anyws/anyws/message";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(sendableLength("€"), 3);
 * ```
 */
export function sendableLength(
  data: string | Uint8Array | ArrayBuffer | Blob,
): number {
  if (typeof data === "string") return utf8Length(data);
  if (data instanceof Blob) return data.size;
  return data.byteLength;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return value.constructor?.name ?? "an object";
  }
  return typeof value;
}

/** How many characters of a text, or bytes of a body, error messages show. */
const PREVIEW_CHARS = 60;
const PREVIEW_BYTES = 16;

/** `"the text"` or `"the first 60 characters"… (N characters)`. */
function previewText(text: string): string {
  if (text.length <= PREVIEW_CHARS) return JSON.stringify(text);
  return `${
    JSON.stringify(text.slice(0, PREVIEW_CHARS))
  }… (${text.length} characters)`;
}

/** "a binary message (3 bytes: 00 01 ff)", "a close frame (0 bytes)". */
function describeKind(message: Message): string {
  const kind = message.isBinary()
    ? "a binary message"
    : message.isClose()
    ? "a close frame"
    : message.isPing()
    ? "a ping frame"
    : message.isPong()
    ? "a pong frame"
    : `a frame with opcode ${message.opcode}`;
  const body = message.body;
  const shown = Array.from(
    body.subarray(0, PREVIEW_BYTES),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join(" ");
  const more = body.length > PREVIEW_BYTES ? " …" : "";
  const plural = body.length === 1 ? "byte" : "bytes";
  return `${kind} (${body.length} ${plural}${
    body.length > 0 ? `: ${shown}${more}` : ""
  })`;
}
