/**
 * Micro-benchmarks of send normalisation ({@linkcode toSendable}), which
 * every `Connection.send()` and `Server.broadcast()` runs, and of
 * {@linkcode sendableLength}, which `bufferedAmount` runs on queued sends.
 *
 * ```sh
 * deno run -A tools/with_std.ts bench bench/
 * ```
 *
 * @module
 */

import { Message, sendableLength, toSendable } from "../message.ts";

const TEXT = "x".repeat(64);
const BYTES = new Uint8Array(64);
const BUFFER = new ArrayBuffer(64);
const WIDE_VIEW = new Uint16Array(64).subarray(8);
const DATA_VIEW = new DataView(BUFFER, 8);
const BLOB = new Blob([BYTES]);
const TEXT_MESSAGE = new Message(TEXT);
const BINARY_MESSAGE = new Message(BYTES);

Deno.bench(
  "toSendable(string)",
  { group: "toSendable", baseline: true },
  () => {
    toSendable(TEXT);
  },
);
Deno.bench("toSendable(Uint8Array)", { group: "toSendable" }, () => {
  toSendable(BYTES);
});
Deno.bench("toSendable(ArrayBuffer)", { group: "toSendable" }, () => {
  toSendable(BUFFER);
});
Deno.bench("toSendable(Uint16Array view) (re-viewed as bytes)", {
  group: "toSendable",
}, () => {
  toSendable(WIDE_VIEW);
});
Deno.bench("toSendable(DataView)", { group: "toSendable" }, () => {
  toSendable(DATA_VIEW);
});
Deno.bench("toSendable(Blob)", { group: "toSendable" }, () => {
  toSendable(BLOB);
});
Deno.bench("toSendable(text Message)", { group: "toSendable" }, () => {
  toSendable(TEXT_MESSAGE);
});
Deno.bench("toSendable(binary Message)", { group: "toSendable" }, () => {
  toSendable(BINARY_MESSAGE);
});

Deno.bench("sendableLength(string), 64 B", {
  group: "sendableLength",
  baseline: true,
}, () => {
  sendableLength(TEXT);
});
Deno.bench("sendableLength(Uint8Array)", { group: "sendableLength" }, () => {
  sendableLength(BYTES);
});
