/**
 * How the test kit words what it expected and what came instead, so that a
 * failure reads as a sentence: `text "hullo"`, `binary (3 bytes: 00 01 ff)`,
 * `1011 "handler error"`.
 *
 * @module
 */

import type { CloseInfo } from "../connection.ts";
import type { Message } from "../message.ts";

/** How many characters of a text a failure shows. */
const TEXT_CHARS = 200;
/** How many bytes of a binary message a failure shows, in hex. */
const HEX_BYTES = 32;

/** `"hello"`, or the first characters then `… (N characters)`. */
export function quoteText(text: string): string {
  if (text.length <= TEXT_CHARS) return JSON.stringify(text);
  return `${
    JSON.stringify(text.slice(0, TEXT_CHARS))
  }… (${text.length} characters)`;
}

/** `00 01 ff`, the first bytes then `…`. */
export function hexPreview(bytes: Uint8Array): string {
  const shown = Array.from(
    bytes.subarray(0, HEX_BYTES),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join(" ");
  return bytes.length > HEX_BYTES ? `${shown} …` : shown;
}

/** `binary (3 bytes: 00 01 ff)`, `binary (0 bytes)`. */
export function describeBytes(bytes: Uint8Array): string {
  const unit = bytes.length === 1 ? "byte" : "bytes";
  return bytes.length === 0
    ? "binary (0 bytes)"
    : `binary (${bytes.length} ${unit}: ${hexPreview(bytes)})`;
}

/** `text "hello"` or `binary (3 bytes: 00 01 ff)`. */
export function describeMessage(message: Message): string {
  if (message.isText()) return `text ${quoteText(message.decodedBody())}`;
  if (message.isBinary()) return describeBytes(message.body);
  return `a frame with opcode ${message.opcode} (${message.body.length} bytes)`;
}

/** `1000 "bye"`, `1005 (no reason)`, `1006: the connection dropped`. */
export function describeClose(
  info: Pick<CloseInfo, "code" | "reason" | "error">,
): string {
  const reason = info.reason === "" ? "" : ` ${JSON.stringify(info.reason)}`;
  const error = info.error ? ` (${info.error.message})` : "";
  return `${info.code}${reason}${error}`;
}

/** The first index where two strings differ, or -1. */
export function firstDifference(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}

/** The first index where two byte arrays differ, or -1. */
export function firstByteDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}
