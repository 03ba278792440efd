/**
 * The hostile peers of the bounds test (tests/bounds_test.ts) and of its
 * measurement script (tests/_bounds_measure.ts), against the child server
 * tests/_bounds_server.ts.
 *
 * @module
 */

import { DenoProcess } from "./_deno_process.ts";
import { within } from "./_fixture.ts";
import { closePayload, encodeFrame, RawPeer } from "./_raw_peer.ts";

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** What the child reports after an attack (see `_bounds_server.ts`). */
export interface Report {
  baseline: number;
  peak: number;
  rss: number;
  errors: string[];
  finish: { code: number; reason: string } | null;
}

/** What one attack gave. */
export interface Outcome {
  /** The close code and reason the peer received, if any. */
  close: { code: number; reason: string } | null;
  /** Bytes of frames the peer wrote. */
  written: number;
  /** The child's report. */
  report: Report;
}

/** The bounds server in a child process; `library` is a mod.ts to load. */
export class BoundsServer implements AsyncDisposable {
  readonly process: DenoProcess;

  /**
   * @param library The mod.ts to load; `ANYWS_BOUNDS_LIBRARY` overrides the
   * default (this checkout), to run the tests against an older one.
   */
  constructor(library = Deno.env.get("ANYWS_BOUNDS_LIBRARY")) {
    this.process = new DenoProcess([
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      "tests/_bounds_server.ts",
      ...(library ? [library] : []),
    ]);
  }

  /**
   * Runs one echo exchange and one unread overflow, so that the first attack's
   * figures do not include the one-time costs (compiled code, heap growth).
   */
  async warmUp(): Promise<void> {
    const port = await this.port();
    await using peer = await RawPeer.connect(port);
    const answer = await within(peer.handshake({ path: "/echo" }), "warm-up");
    if (answer.status !== 101) throw new Error(`/echo: ${answer.status}`);
    const one = encodeFrame({ opcode: 2, payload: new Uint8Array(KiB) });
    for (let i = 0; i < 200; i++) await peer.write(one);
    for (let i = 0; i < 200; i++) await within(peer.readFrame(), "an echo");
    await peer.sendFrame({ opcode: 8, payload: closePayload(1000) });
    await within(peer.readClose(), "the warm-up close");
    await flood(this, { path: "/unread", size: 16, maxBytes: 64 * KiB });
  }

  /** The port, once the child listens. */
  async port(): Promise<number> {
    return Number((await within(this.process.address, "the server", 60)).port);
  }

  /** GETs one of the control paths and parses its JSON answer. */
  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    const response = await fetch(
      `http://127.0.0.1:${await this.port()}${path}`,
      {
        signal: signal ?? null,
      },
    );
    if (!response.ok) {
      throw new Error(`${path}: ${response.status} ${await response.text()}`);
    }
    return await response.json() as T;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}

/** One batch of identical masked binary frames, about `batch` bytes long. */
function frames(size: number, batch = 256 * KiB): Uint8Array {
  const one = encodeFrame({ opcode: 2, payload: new Uint8Array(size) });
  const count = Math.max(1, Math.floor(batch / one.length));
  const bytes = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) bytes.set(one, i * one.length);
  return bytes;
}

/** Options of {@linkcode flood}. */
export interface FloodOptions {
  /** The WebSocket path on the bounds server. */
  path: string;
  /** Bytes per message. */
  size: number;
  /** Stop writing after this many bytes of frames. */
  maxBytes: number;
  /** Keep writing after the server's close frame (up to `maxBytes`). */
  ignoreClose?: boolean;
  /** Stop writing after this many milliseconds. */
  maxMs?: number;
}

/**
 * A peer that sends binary messages of `size` bytes as fast as it can while
 * reading what comes back; it stops writing at the server's close frame
 * (unless `ignoreClose`), at `maxBytes` or `maxMs`, then answers the close
 * (if one came) and waits for the end of the TCP connection.
 */
export async function flood(
  server: BoundsServer,
  options: FloodOptions,
): Promise<Outcome> {
  const { path, size, maxBytes, maxMs = 8_000 } = options;
  await server.get("/baseline");
  const peer = await RawPeer.connect(await server.port());
  const answer = await within(peer.handshake({ path }), "the handshake");
  if (answer.status !== 101) throw new Error(`${path}: ${answer.status}`);
  let close: Outcome["close"] = null;
  let ended = false;
  const reading = (async () => {
    close = await peer.readClose();
    ended = true;
  })();
  const batch = frames(size);
  const stopAt = Date.now() + maxMs;
  let written = 0;
  try {
    while (
      written < maxBytes && Date.now() < stopAt &&
      !(ended && !options.ignoreClose)
    ) {
      await within(peer.write(batch), "a write", 30);
      written += batch.length;
    }
  } catch {
    // the server dropped the connection
  }
  if (!ended) {
    // No close frame yet: the bound did not act (an older library).
    const report = await server.get<Report>("/report");
    peer.drop();
    await reading;
    return { close, written, report };
  }
  await within(reading, "the server's close frame", 30);
  return await answerClose(server, peer, close, written);
}

/** Answers the server's close frame, waits for the finish, reports. */
async function answerClose(
  server: BoundsServer,
  peer: RawPeer,
  close: Outcome["close"],
  written: number,
): Promise<Outcome> {
  if (close) {
    try {
      await peer.sendFrame({ opcode: 8, payload: closePayload(close.code) });
    } catch {
      // already gone
    }
  }
  await within(server.get("/finish"), "the server's finish", 30);
  const report = await server.get<Report>("/report");
  peer.drop();
  return { close, written, report };
}

/**
 * A peer that sends binary messages of `size` bytes for the server to echo
 * and never reads, until the server reports `parse_error` (or `maxBytes` or
 * `maxMs`); then it reads, answers the close and waits for the end.
 */
export async function neverRead(
  server: BoundsServer,
  options: Omit<FloodOptions, "path" | "ignoreClose">,
): Promise<Outcome> {
  const { size, maxBytes, maxMs = 8_000 } = options;
  await server.get("/baseline");
  const peer = await RawPeer.connect(await server.port());
  const answer = await within(
    peer.handshake({ path: "/echo" }),
    "the handshake",
  );
  if (answer.status !== 101) throw new Error(`/echo: ${answer.status}`);
  const abort = new AbortController();
  let failed = false;
  const parseError = server.get("/parse_error", abort.signal).then(
    () => failed = true,
    () => {},
  );
  const batch = frames(size);
  const stopAt = Date.now() + maxMs;
  let written = 0;
  let writing: Promise<unknown> = Promise.resolve();
  while (!failed && written < maxBytes && Date.now() < stopAt) {
    // A write may never end: once the server stops reading (it closed), it
    // waits for this peer to read. So it races the parse_error.
    writing = peer.write(batch).then(() => true, () => false);
    if (!await Promise.race([writing, parseError.then(() => true)])) break;
    written += batch.length;
  }
  abort.abort();
  await parseError;
  if (!failed) {
    // No parse_error: the bound did not act (an older library).
    const report = await server.get<Report>("/report");
    peer.drop();
    return { close: null, written, report };
  }
  // Now read: the echoes, then the close frame behind them.
  const close = await within(peer.readClose(), "the close frame", 60);
  return await answerClose(server, peer, close, written);
}

/**
 * A peer that sends exactly `count` messages of `size` bytes (binary, or
 * text of 2-byte characters when `text`) on
 * `path`, then stops: `count` one past a bound makes the server close with
 * nothing of ours in flight behind its close frame (Deno drops the TCP
 * connection when a data frame follows its close frame, and the peer then
 * never sees the close code). Then it reads the close, answers it, and waits
 * for the server's finish.
 */
export async function exact(
  server: BoundsServer,
  path: string,
  size: number,
  count: number,
  text = false,
): Promise<Outcome> {
  await server.get("/baseline");
  const peer = await RawPeer.connect(await server.port());
  const answer = await within(peer.handshake({ path }), "the handshake");
  if (answer.status !== 101) throw new Error(`${path}: ${answer.status}`);
  const reading = peer.readClose();
  // Text: "ā" (U+0101) is 2 UTF-8 bytes, 1 UTF-16 unit, and makes V8 keep
  // the string at 2 bytes per unit: the most memory per counted unit.
  const one = encodeFrame(
    text
      ? { opcode: 1, payload: "\u0101".repeat(size / 2) }
      : { opcode: 2, payload: new Uint8Array(size) },
  );
  const perBatch = Math.max(1, Math.floor(256 * KiB / one.length));
  let written = 0;
  for (let sent = 0; sent < count;) {
    const n = Math.min(perBatch, count - sent);
    const batch = new Uint8Array(one.length * n);
    for (let i = 0; i < n; i++) batch.set(one, i * one.length);
    await within(peer.write(batch), "a write", 30);
    sent += n;
    written += batch.length;
  }
  const close = await within(reading, "the server's close frame", 30);
  return await answerClose(server, peer, close, written);
}

/**
 * A peer that asks the `/feed` server for `count` messages of `size` bytes
 * and reads nothing until the server reports `parse_error`; then it reads
 * them all, and the close frame behind them, answers it and waits for the
 * server's finish. Without a `parse_error` within `maxMs` (an older library)
 * it takes the report and leaves.
 */
export async function feed(
  server: BoundsServer,
  size: number,
  count: number,
  maxMs = 20_000,
): Promise<Outcome> {
  await server.get("/baseline");
  const peer = await RawPeer.connect(await server.port());
  const answer = await within(
    peer.handshake({ path: "/feed" }),
    "the handshake",
  );
  if (answer.status !== 101) throw new Error(`/feed: ${answer.status}`);
  await peer.sendFrame({ opcode: 1, payload: `${size} ${count}` });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), maxMs);
  const failed = await server.get("/parse_error", abort.signal).then(
    () => true,
    () => false,
  );
  clearTimeout(timer);
  if (!failed) {
    const report = await server.get<Report>("/report");
    peer.drop();
    return { close: null, written: 0, report };
  }
  const close = await within(peer.readClose(), "the close frame", 60);
  return await answerClose(server, peer, close, 0);
}

/** Megabytes with one decimal, for printing. */
export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}
