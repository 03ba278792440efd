/**
 * Micro-benchmarks of {@linkcode Message}: construction from what Deno
 * delivers, and the lazy conversions consumers ask for.
 *
 * ```sh
 * deno run -A tools/with_std.ts bench bench/
 * ```
 *
 * @module
 */

import { Message, utf8Length } from "../message.ts";

const encoder = new TextEncoder();
const TEXT_64 = "x".repeat(64);
const TEXT_16K = "x".repeat(16 * 1024);
const UNICODE_16K = "é€😀".repeat(16 * 1024 / 9);
const BYTES_64 = encoder.encode(TEXT_64);
const BYTES_16K = encoder.encode(TEXT_16K);
const BUFFER_64 = BYTES_64.slice().buffer;
const JSON_TEXT = JSON.stringify({ type: "chat", from: "ann", text: TEXT_64 });

Deno.bench(
  "new Message(string), 64 B",
  { group: "construct", baseline: true },
  () => {
    new Message(TEXT_64);
  },
);
Deno.bench("new Message(Uint8Array), 64 B", { group: "construct" }, () => {
  new Message(BYTES_64);
});
Deno.bench("new Message(new Uint8Array(ArrayBuffer)), 64 B (as received)", {
  group: "construct",
}, () => {
  new Message(new Uint8Array(BUFFER_64));
});

Deno.bench("text message: decodedBody(), 64 B", {
  group: "convert",
  baseline: true,
}, () => {
  new Message(TEXT_64).decodedBody();
});
Deno.bench(
  "text message: body (UTF-8 encode), 64 B",
  { group: "convert" },
  () => {
    new Message(TEXT_64).body;
  },
);
Deno.bench("binary message: decodedBody() (UTF-8 decode), 64 B", {
  group: "convert",
}, () => {
  new Message(BYTES_64).decodedBody();
});
Deno.bench("text message: json(), 100 B", { group: "convert" }, () => {
  new Message(JSON_TEXT).json();
});
Deno.bench(
  "binary message: decodedBody(), 16 KiB",
  { group: "convert" },
  () => {
    new Message(BYTES_16K).decodedBody();
  },
);

Deno.bench("byteLength of a binary message, 16 KiB", {
  group: "length",
  baseline: true,
}, () => {
  new Message(BYTES_16K).byteLength;
});
Deno.bench("byteLength of an ASCII text message, 16 KiB (utf8Length)", {
  group: "length",
}, () => {
  new Message(TEXT_16K).byteLength;
});
Deno.bench(
  "utf8Length, 16 KiB of mixed 2/3/4-byte text",
  { group: "length" },
  () => {
    utf8Length(UNICODE_16K);
  },
);
Deno.bench("TextEncoder.encode(...).length, 16 KiB ASCII (for comparison)", {
  group: "length",
}, () => {
  encoder.encode(TEXT_16K).length;
});
