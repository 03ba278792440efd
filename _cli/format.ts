/**
 * How the CLI prints messages and closes: text as it came, binary as its
 * length and hex bytes, JSON pretty-printed on request, and close codes with
 * their names.
 *
 * @module
 */

import type { CloseInfo } from "../connection.ts";
import { CLOSE_CODE, type Message } from "../message.ts";

/** How many bytes of a binary message a terminal shows. */
const TERMINAL_HEX_BYTES = 256;

/** How to print a message. */
export interface FormatOptions {
  /** Pretty-print text that is JSON. */
  json: boolean;
  /**
   * The output is a terminal: control characters in received text are shown
   * escaped (a peer must not drive the terminal), and long binary messages
   * are cut.
   */
  terminal: boolean;
}

/**
 * A received message as printed: text as it is, binary as
 * `[binary, 3 bytes] 00 01 ff`.
 */
export function formatMessage(
  message: Message,
  options: FormatOptions,
): string {
  if (message.isText()) {
    const text = message.decodedBody();
    const shown = options.json ? prettyJSON(text) ?? text : text;
    return options.terminal ? escapeControls(shown) : shown;
  }
  const bytes = message.body;
  const cut = options.terminal && bytes.length > TERMINAL_HEX_BYTES;
  const hex = Array.from(
    cut ? bytes.subarray(0, TERMINAL_HEX_BYTES) : bytes,
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join(" ");
  const unit = bytes.length === 1 ? "byte" : "bytes";
  return `[binary, ${bytes.length} ${unit}]${hex ? ` ${hex}` : ""}${
    cut ? " …" : ""
  }`;
}

/** The text re-indented, when it is JSON; otherwise `undefined`. */
function prettyJSON(text: string): string | undefined {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return undefined;
  }
}

/**
 * Control characters other than newline and tab, shown as `\x1b`, so that
 * received text cannot move the cursor, clear the screen or set the title.
 */
export function escapeControls(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g,
    (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

const CODE_NAMES = new Map<number, string>(
  Object.entries(CLOSE_CODE).map((
    [name, code],
  ) => [code, name.toLowerCase().replaceAll("_", " ")]),
);

/** `1000 (normal) "bye"`, `1006 (abnormal): the connection dropped`. */
export function formatClose(info: CloseInfo): string {
  const name = CODE_NAMES.get(info.code) ??
    (info.code >= 4000 && info.code <= 4999
      ? "application"
      : info.code >= 3000 && info.code <= 3999
      ? "registered"
      : undefined);
  const reason = info.reason ? ` ${JSON.stringify(info.reason)}` : "";
  const error = info.error ? `: ${info.error.message}` : "";
  return `${info.code}${name ? ` (${name})` : ""}${reason}${error}`;
}
