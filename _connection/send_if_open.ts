/**
 * A send for the server's broadcast loop (internal): it checks that the
 * connection is open and sends in one call, where `conn.readyState` and then
 * `conn.send()` walked from the connection to its socket twice. On a loop
 * over 10 000 connections that walk cost ~15% of the loop (each connection,
 * its wire and its socket are three objects to bring into the CPU cache).
 *
 * connection.ts provides the function, which reaches the connection's
 * private state; server.ts calls it. This module imports neither, so there
 * is no import cycle.
 *
 * @module
 */

import type { Sendable } from "./wire.ts";

type SendIfOpen = (conn: object, payload: Sendable) => boolean;

let provided: SendIfOpen | undefined;

/** Called once, by the `Connection` class. */
export function provideSendIfOpen(fn: SendIfOpen): void {
  provided = fn;
}

/**
 * Sends `payload` (already normalised by `toSendable`) to `conn` if it is
 * open and no close was asked for.
 *
 * @returns Whether it was sent.
 */
export function sendIfOpen(conn: object, payload: Sendable): boolean {
  return provided!(conn, payload);
}
