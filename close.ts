/**
 * How a connection ends: {@linkcode CloseInfo}, the
 * {@linkcode ConnectionClosedError} that readers get after the end, and the
 * close codes each side may send.
 *
 * @module
 */

import { utf8Length } from "./message.ts";

/** Which end of the socket a {@linkcode Connection} is. */
export type Role = "server" | "client";

/**
 * How a connection ended: resolved by {@linkcode Connection.closed} and given
 * to `finish` handlers through the connection's properties.
 */
export interface CloseInfo {
  /**
   * The close code. 1005 when the close frame had no code, 1006 when the
   * connection dropped without a close handshake (Deno reports 0; anyws
   * reports 1006).
   */
  code: number;
  /** The close reason, `""` when none was given. */
  reason: string;
  /** Whether the close handshake completed. */
  wasClean: boolean;
  /**
   * Why the connection ended badly: set for abnormal closures, close
   * timeouts, and closes anyws made because of an error (a throwing handler,
   * a message over {@linkcode ConnectionOptions.maxMessageSize}, ...).
   */
  error?: Error;
}

/**
 * Thrown or rejected when reading from a connection that has finished:
 * {@linkcode Connection.nextMessage}, and async iteration after an abnormal
 * close.
 *
 * @example Catch the close
 * ```ts
 * import { ConnectionClosedError } from "@anyws/anyws/connection";
 * import { assertEquals } from "@std/assert";
 *
 * const error = new ConnectionClosedError({ code: 1001, reason: "bye", wasClean: true });
 * assertEquals(error.message, 'Connection closed with code 1001 "bye"');
 * ```
 */
export class ConnectionClosedError extends Error {
  /** The close code, as in {@linkcode CloseInfo.code}. */
  readonly code: number;
  /** The close reason. */
  readonly reason: string;
  /** Whether the close handshake completed. */
  readonly wasClean: boolean;

  /**
   * Creates the error from how the connection ended.
   *
   * @param info The close details; `info.error` becomes the `cause`.
   *
   * @example
   * ```ts
   * import { ConnectionClosedError } from "@anyws/anyws/connection";
   * import { assertEquals } from "@std/assert";
   *
   * assertEquals(new ConnectionClosedError({ code: 1000, reason: "", wasClean: true }).code, 1000);
   * ```
   */
  constructor(info: CloseInfo) {
    super(
      `Connection closed with code ${info.code}${
        info.reason ? ` ${JSON.stringify(info.reason)}` : ""
      }${info.error ? `: ${info.error.message}` : ""}`,
      info.error ? { cause: info.error } : undefined,
    );
    this.name = "ConnectionClosedError";
    this.code = info.code;
    this.reason = info.reason;
    this.wasClean = info.wasClean;
  }
}

/**
 * Checks that `code` is one this side may put on the wire.
 *
 * @param code The close code.
 * @param role Which side sends it.
 * @throws {RangeError} When the code is not allowed.
 *
 * @example
 * ```ts
 * import { checkCloseCode } from "@anyws/anyws/connection";
 * import { assertThrows } from "@std/assert";
 *
 * checkCloseCode(1011, "server");
 * assertThrows(() => checkCloseCode(1011, "client"), RangeError);
 * ```
 */
export function checkCloseCode(code: number, role: Role): void {
  const ok = Number.isInteger(code) && (
    code === 1000 || (code >= 3000 && code <= 4999) ||
    (role === "server" &&
      ((code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014)))
  );
  if (!ok) {
    throw new RangeError(
      `Cannot close with code ${code}: the ${role} side may send ${
        role === "server"
          ? "1000-1003, 1007-1014 or 3000-4999"
          : "1000 or 3000-4999"
      }`,
    );
  }
}

export const MAX_REASON_BYTES = 123;

/**
 * Checks that a close reason fits in a close frame.
 *
 * @param reason The reason.
 * @throws {RangeError} If it is over 123 UTF-8 bytes.
 */
export function checkCloseReason(reason: string): void {
  const bytes = utf8Length(reason);
  if (bytes > MAX_REASON_BYTES) {
    throw new RangeError(
      `Cannot close: the reason is ${bytes} UTF-8 bytes, the limit is ${MAX_REASON_BYTES}`,
    );
  }
}

/**
 * The code anyws sends when it closes because of an error: `code` (a
 * registered 10xx code) on the server side, 3000 more on the client side,
 * which may only send 1000 and 3000-4999 (1009 "too big" becomes 4009).
 *
 * @param code A registered close code from 1000 to 1999.
 * @param role The side that sends it.
 * @returns The code that side puts on the wire.
 */
export function sideCode(code: number, role: Role): number {
  return role === "server" ? code : code + 3000;
}

/**
 * An `Error` for anything thrown: handlers may throw any value.
 *
 * @param thrown What was thrown or rejected.
 * @returns `thrown` itself when it is an Error, else a new Error of its text.
 */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
