import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { connect } from "../client.ts";
import {
  CLOSE_CODE,
  Message,
  OPCODE,
  sendableLength,
  toSendable,
  utf8Length,
} from "../message.ts";
import { listen, within, wsUrl } from "./_fixture.ts";

Deno.test("OPCODE names the RFC 6455 opcodes", () => {
  assertEquals(OPCODE, {
    CONTINUATION: 0,
    TEXT: 1,
    BINARY: 2,
    CLOSE: 8,
    PING: 9,
    PONG: 10,
  });
});

Deno.test("CLOSE_CODE names the registered close codes", () => {
  assertEquals(CLOSE_CODE.NORMAL, 1000);
  assertEquals(CLOSE_CODE.GOING_AWAY, 1001);
  assertEquals(CLOSE_CODE.NO_STATUS, 1005);
  assertEquals(CLOSE_CODE.ABNORMAL, 1006);
  assertEquals(CLOSE_CODE.POLICY_VIOLATION, 1008);
  assertEquals(CLOSE_CODE.MESSAGE_TOO_BIG, 1009);
  assertEquals(CLOSE_CODE.INTERNAL_ERROR, 1011);
});

Deno.test("new Message() defaults the opcode to text for a string and binary for bytes", () => {
  const text = new Message("hi");
  assertEquals(text.opcode, OPCODE.TEXT);
  assert(text.isText());
  assert(!text.isBinary());
  const bytes = new Message(new Uint8Array([1]));
  assertEquals(bytes.opcode, OPCODE.BINARY);
  assert(bytes.isBinary());
  assert(!bytes.isText());
});

Deno.test("new Message() keeps an explicit opcode and the predicates follow it", () => {
  const cases: [number, keyof Message][] = [
    [OPCODE.TEXT, "isText"],
    [OPCODE.BINARY, "isBinary"],
    [OPCODE.CLOSE, "isClose"],
    [OPCODE.PING, "isPing"],
    [OPCODE.PONG, "isPong"],
  ];
  for (const [opcode, predicate] of cases) {
    const message = new Message("", opcode);
    assertEquals(message.opcode, opcode);
    for (const [, other] of cases) {
      assertEquals(
        (message[other] as () => boolean)(),
        other === predicate,
        `${predicate} message answering ${other}`,
      );
    }
  }
  // A text body may be sent as binary and bytes as text.
  assert(new Message("abc", OPCODE.BINARY).isBinary());
  assert(new Message(new Uint8Array([0x61]), OPCODE.TEXT).isText());
});

Deno.test("new Message() rejects a body that is neither a string nor a Uint8Array", () => {
  assertThrows(
    () => new Message(42 as unknown as string),
    TypeError,
    "Cannot create a Message: body must be a string or a Uint8Array, got number",
  );
  assertThrows(
    () => new Message(new ArrayBuffer(2) as unknown as Uint8Array),
    TypeError,
    "Cannot create a Message: body must be a string or a Uint8Array, got ArrayBuffer",
  );
  assertThrows(
    () => new Message(null as unknown as string),
    TypeError,
    "got null",
  );
});

Deno.test("new Message() rejects an opcode outside 0-15", () => {
  for (const opcode of [-1, 16, 1.5, NaN]) {
    assertThrows(
      () => new Message("x", opcode),
      RangeError,
      `Cannot create a Message: opcode must be an integer from 0 to 15, got ${opcode}`,
    );
  }
});

Deno.test("Message.body is the UTF-8 bytes of a text body, and the same bytes of a binary one", () => {
  assertEquals(
    new Message("é€").body,
    new Uint8Array([0xc3, 0xa9, 0xe2, 0x82, 0xac]),
  );
  const bytes = new Uint8Array([0, 255]);
  const message = new Message(bytes);
  assertStrictEquals(message.body, bytes, "bytes are kept, not copied");
});

Deno.test("Message.decodedBody() decodes UTF-8 and turns bad sequences into U+FFFD", () => {
  assertEquals(new Message(new Uint8Array([0xc3, 0xa9])).decodedBody(), "é");
  assertEquals(
    new Message(new Uint8Array([0x61, 0xff, 0xc3, 0x62])).decodedBody(),
    "a\uFFFD\uFFFDb",
  );
  assertEquals(new Message("plain").decodedBody(), "plain");
});

Deno.test("Message converts lazily and keeps the converted form", () => {
  const text = new Message("héllo");
  assertEquals(text.byteLength, 6, "length without encoding");
  assertStrictEquals(text.body, text.body, "encoded once");
  const bytes = new Message(new Uint8Array([0x68, 0x69]));
  assertStrictEquals(bytes.decodedBody(), bytes.decodedBody());
  assertEquals(bytes.byteLength, 2);
});

Deno.test("Message.toString() is the decoded body", () => {
  const message = new Message(new TextEncoder().encode('{"a":[1,"é"]}'));
  assertEquals(`${message}`, '{"a":[1,"é"]}');
  assertEquals(String(message), message.decodedBody());
});

Deno.test("utf8Length() counts bytes as TextEncoder writes them", () => {
  const samples = [
    "",
    "abc",
    "é",
    "€",
    "😀",
    "a€😀",
    "\ud800",
    "x\udc00y",
    "\ud83d",
  ];
  for (const sample of samples) {
    assertEquals(
      utf8Length(sample),
      new TextEncoder().encode(sample).length,
      JSON.stringify(sample),
    );
  }
});

Deno.test("toSendable() sends exactly the bytes of a view, never its whole buffer", () => {
  const backing = new Uint8Array([9, 1, 2, 3, 9]);
  const view = backing.subarray(1, 4);
  assertStrictEquals(toSendable(view), view);
  const u16 = new Uint16Array([7, 8, 9]).subarray(1);
  const sent = toSendable(u16) as Uint8Array;
  assert(sent instanceof Uint8Array);
  assertEquals(sent.byteLength, 4);
  assertEquals(sent.byteOffset, 2);
  const dataView = new DataView(backing.buffer, 2, 2);
  assertEquals(toSendable(dataView), new Uint8Array([2, 3]));
  const buffer = new ArrayBuffer(3);
  assertStrictEquals(toSendable(buffer), buffer);
  const blob = new Blob(["ab"]);
  assertStrictEquals(toSendable(blob), blob);
  assertEquals(toSendable("text"), "text");
});

Deno.test("toSendable() sends a text Message as a string and a binary Message as bytes", () => {
  assertEquals(
    toSendable(new Message(new Uint8Array([0x68, 0x69]), OPCODE.TEXT)),
    "hi",
  );
  assertEquals(
    toSendable(new Message("hi", OPCODE.BINARY)),
    new Uint8Array([0x68, 0x69]),
  );
});

Deno.test("toSendable() refuses control-frame Messages and unsupported values", () => {
  for (
    const opcode of [
      OPCODE.CLOSE,
      OPCODE.PING,
      OPCODE.PONG,
      OPCODE.CONTINUATION,
    ]
  ) {
    assertThrows(
      () => toSendable(new Message("", opcode)),
      TypeError,
      `Cannot send a Message with opcode ${opcode}: the standard WebSocket API sends only text (1) and binary (2) messages`,
    );
  }
  assertThrows(
    () => toSendable(42 as unknown as string),
    TypeError,
    "Cannot send number: expected a string, ArrayBuffer, ArrayBufferView, Blob or Message",
  );
  assertThrows(
    () => toSendable({} as unknown as string),
    TypeError,
    "Cannot send Object: expected",
  );
});

Deno.test("sendableLength() measures what toSendable() returned in wire bytes", () => {
  assertEquals(sendableLength("€"), 3);
  assertEquals(sendableLength(new Uint8Array(5)), 5);
  assertEquals(sendableLength(new ArrayBuffer(7)), 7);
  assertEquals(sendableLength(new Blob(["abcd"])), 4);
});

// ---- JSON ---------------------------------------------------------------

Deno.test("Message.json() parses a text message, however its body is held", () => {
  assertEquals(new Message('{"a":[1,"é"]}').json(), { a: [1, "é"] });
  const fromBytes = new Message(
    new TextEncoder().encode('{"a":[1,"é"]}'),
    OPCODE.TEXT,
  );
  assertEquals(fromBytes.json<{ a: unknown[] }>().a, [1, "é"]);
  assertEquals(new Message(" null ").json(), null);
  assertEquals(new Message("3.5").json(), 3.5);
});

Deno.test("Message.json() throws a SyntaxError that quotes the text for text that is not JSON", () => {
  const error = assertThrows(
    () => new Message("not json").json(),
    SyntaxError,
  );
  assertEquals(
    error.message,
    `Cannot parse the message as JSON: Unexpected token 'o', "not json" is not valid JSON; the text was "not json"`,
  );
  assert(error.cause instanceof SyntaxError, "the parser's error is the cause");

  const empty = assertThrows(() => new Message("").json(), SyntaxError);
  assertEquals(
    empty.message,
    'Cannot parse the message as JSON: Unexpected end of JSON input; the text was ""',
  );
  // Control characters are shown escaped, not written to the terminal.
  assertThrows(
    () => new Message("\u001b[2J{").json(),
    SyntaxError,
    'the text was "\\u001b[2J{"',
  );
});

Deno.test("Message.json() shows the first 60 characters of a long text that is not JSON", () => {
  const text = `{"a": ${"x".repeat(1000)}}`;
  const error = assertThrows(() => new Message(text).json(), SyntaxError);
  assert(
    error.message.endsWith(
      `; the text was ${JSON.stringify(text.slice(0, 60))}… (1007 characters)`,
    ),
    error.message,
  );
  assert(error.message.length < 250, `${error.message.length} characters`);
  // 60 characters exactly are shown whole.
  assertThrows(
    () => new Message("y".repeat(60)).json(),
    SyntaxError,
    `the text was "${"y".repeat(60)}"`,
  );
});

Deno.test("Message.json() throws a TypeError naming a binary message, its size and first bytes", () => {
  const json = new TextEncoder().encode('{"a":1}');
  assertThrows(
    () => new Message(json).json(),
    TypeError,
    "Cannot parse the message as JSON: it is a binary message (7 bytes: 7b 22 61 22 3a 31 7d), and JSON comes in text messages",
  );
  assertThrows(
    () => new Message(new Uint8Array(40).fill(0xab)).json(),
    TypeError,
    `it is a binary message (40 bytes: ${"ab ".repeat(16)}…)`,
  );
  assertThrows(
    () => new Message(new Uint8Array([1])).json(),
    TypeError,
    "(1 byte: 01)",
  );
  assertThrows(
    () => new Message(new Uint8Array()).json(),
    TypeError,
    "it is a binary message (0 bytes), and",
  );
});

Deno.test("Message.json() refuses control frames with a TypeError naming the frame", () => {
  const cases: [number, string][] = [
    [OPCODE.CLOSE, "a close frame (2 bytes: 03 e8)"],
    [OPCODE.PING, "a ping frame (2 bytes: 03 e8)"],
    [OPCODE.PONG, "a pong frame (2 bytes: 03 e8)"],
    [OPCODE.CONTINUATION, "a frame with opcode 0 (2 bytes: 03 e8)"],
  ];
  for (const [opcode, kind] of cases) {
    assertThrows(
      () => new Message(new Uint8Array([3, 0xe8]), opcode).json(),
      TypeError,
      `Cannot parse the message as JSON: it is ${kind}`,
    );
  }
});

Deno.test("Message.fromJSON() makes a text message that json() reads back", () => {
  const value = { type: "say", text: "héllo ✓", n: [1, 2.5, null], ok: true };
  const message = Message.fromJSON(value);
  assertEquals([message.opcode, message.isText()], [OPCODE.TEXT, true]);
  assertEquals(message.decodedBody(), JSON.stringify(value));
  assertEquals(message.json(), value);
  assertEquals(toSendable(message), JSON.stringify(value));
  // JSON.stringify's rules: NaN becomes null, undefined properties vanish,
  // toJSON() is used.
  assertEquals(
    Message.fromJSON({ a: NaN, b: undefined, at: new Date(0) }).decodedBody(),
    '{"a":null,"at":"1970-01-01T00:00:00.000Z"}',
  );
  assertEquals(Message.fromJSON("text").decodedBody(), '"text"');
  assertEquals(Message.fromJSON(null).decodedBody(), "null");
});

Deno.test("Message.fromJSON() throws a TypeError for values JSON cannot hold", () => {
  const cases: [unknown, string][] = [
    [
      undefined,
      "Cannot make a JSON message of undefined: JSON has no representation for it",
    ],
    [
      () => 1,
      "Cannot make a JSON message of a function: JSON has no representation for it",
    ],
    [
      Symbol("s"),
      "Cannot make a JSON message of a symbol: JSON has no representation for it",
    ],
    [
      { id: 1n },
      "Cannot make a JSON message: Do not know how to serialize a BigInt",
    ],
  ];
  for (const [value, expected] of cases) {
    const error = assertThrows(() => Message.fromJSON(value), TypeError);
    assertEquals(error.message, expected);
  }
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const error = assertThrows(() => Message.fromJSON(circular), TypeError);
  assert(
    error.message.startsWith(
      "Cannot make a JSON message: Converting circular structure to JSON",
    ),
    error.message,
  );
  assert(error.cause instanceof TypeError);
});

Deno.test("Message.fromJSON() lets an error thrown by toJSON() through unchanged", () => {
  class Refused extends Error {}
  const refused = new Refused("not serializable today");
  const thrown = assertThrows(() =>
    Message.fromJSON({
      toJSON() {
        throw refused;
      },
    })
  );
  assertStrictEquals(thrown, refused);
});

Deno.test("JSON messages round-trip over a socket: each_message, DOM event.data, nextMessage() and for await", async () => {
  await using server = listen({
    onEstablish(conn) {
      // Perl style: each_message handlers get a Message.
      conn.on("each_message", (conn, message) => {
        const { n } = message.json<{ n: number }>();
        conn.send(Message.fromJSON({ n: n + 1, seen: "each_message" }));
      });
    },
  });
  await using conn = await connect(wsUrl(server));
  conn.send(Message.fromJSON({ n: 1 }));
  assertEquals((await within(conn.nextMessage(), "the reply")).json(), {
    n: 2,
    seen: "each_message",
  });

  const dom = Promise.withResolvers<unknown>();
  conn.addEventListener("message", (event) => dom.resolve(event.data.json()), {
    once: true,
  });
  conn.send(Message.fromJSON({ n: 10 }));
  assertEquals(await within(dom.promise, "the DOM event"), {
    n: 11,
    seen: "each_message",
  });

  conn.send(Message.fromJSON({ n: 20 }));
  for await (const message of conn) {
    assertEquals(message.json<{ n: number }>().n, 21);
    break;
  }
});

Deno.test("Message.json() in a handler: a binary message throws, and anyws closes with 1011", async () => {
  await using server = listen({
    onEstablish(conn) {
      conn.on("each_message", (conn, message) => {
        conn.send(Message.fromJSON(message.json()));
      });
    },
  });
  const conn = await connect(wsUrl(server));
  conn.send(new Uint8Array([0x7b, 0x7d]));
  const info = await within(conn.closed, "the close");
  assertEquals([info.code, info.reason], [1011, "handler error"]);
});
