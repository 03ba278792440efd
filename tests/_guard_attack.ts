/**
 * The fragmented-message attacks of the runtime-guard tests, written by a
 * {@linkcode RawPeer} (either role), and a probe that checks that other
 * connections keep their echoes meanwhile. The frames are encoded once and
 * written again and again, so the attacker itself holds about 3 MiB.
 *
 * @module
 */

import { within } from "./_fixture.ts";
import { encodeFrame, type RawPeer } from "./_raw_peer.ts";

const MIB = 1024 * 1024;
const TEXT = 1;
const CONTINUATION = 0;
const PONG = 10;

/** Options for {@linkcode sendFragmentedText}. */
export interface FragmentedTextOptions {
  /** Fragments of 1 MiB of `a`, the first and last included. */
  mebibytes: number;
  /** Send the final (FIN) fragment. @default {true} */
  finish?: boolean;
  /** Mask the frames (a client must, a server must not). @default {true} */
  mask?: boolean;
  /**
   * Write an unsolicited pong (legal, RFC 6455 5.5.3) after every this many
   * fragments: it resets Deno's idle timer, which fragments do not.
   */
  pongEvery?: number;
  /** Called after each fragment is written, with its 1-based index. */
  onFragment?: (index: number) => void;
}

/**
 * Writes one fragmented text message of `mebibytes` 1 MiB fragments.
 *
 * @returns `performance.now()` after the last write.
 */
export async function sendFragmentedText(
  peer: RawPeer,
  options: FragmentedTextOptions,
): Promise<number> {
  const mask = options.mask ?? true;
  const payload = new Uint8Array(MIB).fill(0x61);
  const middle = encodeFrame({
    opcode: CONTINUATION,
    fin: false,
    payload,
    mask,
  });
  const last = options.mebibytes - 1;
  for (let index = 0; index <= last; index++) {
    if (index === 0) {
      await peer.write(
        encodeFrame({ opcode: TEXT, fin: false, payload, mask }),
      );
    } else if (index < last) {
      await peer.write(middle);
    } else if (options.finish ?? true) {
      await peer.write(
        encodeFrame({ opcode: CONTINUATION, fin: true, payload, mask }),
      );
    }
    if (options.pongEvery && (index + 1) % options.pongEvery === 0) {
      await sendPong(peer, mask);
    }
    options.onFragment?.(index + 1);
  }
  return performance.now();
}

/** Writes an unsolicited pong. */
export async function sendPong(peer: RawPeer, mask = true): Promise<void> {
  await peer.sendFrame({ opcode: PONG, mask });
}

/**
 * Answers the next `count` pings with pongs, as every browser does, and
 * ignores other frames; resolves after the last answer.
 *
 * @returns `false` if the connection ended first.
 */
export async function answerPings(
  peer: RawPeer,
  count: number,
  mask = true,
): Promise<boolean> {
  for (let answered = 0; answered < count;) {
    const frame = await peer.readFrame();
    if (!frame || frame.opcode === 8) return false;
    if (frame.opcode !== 9) continue;
    await peer.sendFrame({ opcode: PONG, payload: frame.payload, mask });
    answered++;
  }
  return true;
}

/** A plain client that sends `echo:N` and times each answer. */
export class EchoProbe implements AsyncDisposable {
  readonly #socket: WebSocket;
  readonly #waiting = new Map<string, PromiseWithResolvers<number>>();
  #sent = 0;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      this.#waiting.get(String(event.data))?.resolve(performance.now());
    };
  }

  /** Connects to `url` and waits for the socket to open. */
  static async open(url: string): Promise<EchoProbe> {
    const socket = new WebSocket(url);
    const opened = Promise.withResolvers<void>();
    socket.onopen = () => opened.resolve();
    socket.onclose = () => opened.reject(new Error(`Cannot open ${url}`));
    await within(opened.promise, "the echo probe to open");
    return new EchoProbe(socket);
  }

  /**
   * Sends one message now; the promise resolves with the round trip in ms.
   *
   * @param units Time units to wait for the echo.
   */
  echo(units = 10): Promise<number> {
    const text = `echo:${++this.#sent}`;
    const answer = Promise.withResolvers<number>();
    this.#waiting.set(text, answer);
    const sent = performance.now();
    this.#socket.send(text);
    return within(answer.promise, `the echo of ${text}`, units)
      .then((received) => received - sent)
      .finally(() => this.#waiting.delete(text));
  }

  /** Closes the socket and waits for its close event. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#socket.readyState === WebSocket.CLOSED) return;
    const closed = Promise.withResolvers<void>();
    this.#socket.onclose = () => closed.resolve();
    this.#socket.close();
    await within(closed.promise, "the echo probe to close");
  }
}
