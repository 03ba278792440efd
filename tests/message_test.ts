import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  CLOSE_CODE,
  Message,
  OPCODE,
  sendableLength,
  toSendable,
  utf8Length,
} from "../message.ts";

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

Deno.test("Message.toString() is the decoded body and json() parses it", () => {
  const message = new Message(new TextEncoder().encode('{"a":[1,"é"]}'));
  assertEquals(`${message}`, '{"a":[1,"é"]}');
  assertEquals(String(message), message.decodedBody());
  assertEquals(message.json(), { a: [1, "é"] });
  assertThrows(() => new Message("not json").json(), SyntaxError);
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
