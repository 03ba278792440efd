/**
 * The CLI's ends of the terminal: whole writes to stdout and stderr, and
 * stdin as lines.
 *
 * @module
 */

import type { LineEditor } from "./line_editor.ts";

const encoder = new TextEncoder();

/** Writes all of `text` to stdout (a pipe may take it in parts). */
export function writeOut(text: string): void {
  writeAll(Deno.stdout, encoder.encode(text));
}

/** Writes all of `text` to stderr. */
export function writeErr(text: string): void {
  writeAll(Deno.stderr, encoder.encode(text));
}

function writeAll(
  target: { writeSync(bytes: Uint8Array): number },
  bytes: Uint8Array,
): void {
  let offset = 0;
  while (offset < bytes.length) {
    offset += target.writeSync(bytes.subarray(offset));
  }
}

/**
 * The lines of a byte stream, without their `\n` or `\r\n`; a last line
 * without a newline counts.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      yield line.endsWith("\r") ? line.slice(0, -1) : line;
    }
  }
  if (pending !== "") yield pending;
}

/**
 * Calls `handler` on SIGINT (and SIGTERM where it exists) until the returned
 * function is called.
 */
export function onStopSignals(handler: () => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, handler);
  return () => {
    for (const signal of signals) Deno.removeSignalListener(signal, handler);
  };
}

/** The terminal's width, or 80 when it cannot be read. */
export function columns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

/** Feeds the terminal's keys (stdin in raw mode) to `editor` until stdin ends. */
export async function feedKeys(editor: LineEditor): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    editor.feed(decoder.decode(chunk, { stream: true }));
  }
}
