/**
 * send(): what goes on the wire for each kind of data, on both sides.
 */

import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { Message, OPCODE } from "../message.ts";
import { within } from "./_fixture.ts";
import { Collector, openPair, SIDES } from "./_pair.ts";

for (const side of SIDES) {
  Deno.test(`send() on the ${side} side sends strings as text and every kind of binary data as exactly its bytes, in order`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    const got = new Collector<string>(9);
    peer.on(
      "each_message",
      (_c, m) => got.push(m.isText() ? `text:${m}` : `binary:${[...m.body]}`),
    );
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    const u16 = new Uint16Array([0x0102, 0x0304, 0x0506]);
    const returned = conn
      .send("héllo")
      .send(backing.subarray(1, 4))
      .send(new Uint8Array([4, 5]).buffer)
      .send(u16.subarray(1, 2))
      .send(new DataView(backing.buffer, 3, 2))
      .send(new Blob([new Uint8Array([6, 7])]))
      .send(new Message("as text", OPCODE.TEXT))
      .send(new Message(new Uint8Array([8]), OPCODE.BINARY))
      .send("last");
    assertStrictEquals(returned, conn);
    const expected16 = new Uint8Array(u16.buffer, 2, 2);
    assertEquals(await got.full(), [
      "text:héllo",
      "binary:1,2,3",
      "binary:4,5",
      `binary:${[...expected16]}`,
      "binary:3,9",
      "binary:6,7",
      "text:as text",
      "binary:8",
      "text:last",
    ]);
  });

  Deno.test(`send() on the ${side} side refuses control-frame Messages with a TypeError`, async () => {
    await using pair = await openPair();
    const { conn, peer } = pair.sides(side);
    for (const opcode of [OPCODE.CLOSE, OPCODE.PING, OPCODE.PONG]) {
      assertThrows(
        () => conn.send(new Message("", opcode)),
        TypeError,
        `Cannot send a Message with opcode ${opcode}: the standard WebSocket API sends only text (1) and binary (2) messages`,
      );
    }
    conn.send("still open");
    assertEquals(
      `${await within(peer.nextMessage(), "the message")}`,
      "still open",
    );
  });
}
