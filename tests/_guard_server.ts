/**
 * A child-process WebSocket server on raw `Deno.upgradeWebSocket`, for the
 * runtime-guard tests: the attacks it receives allocate about 1 GiB, which
 * must never happen in the test runner.
 *
 * `deno run -A tests/_guard_server.ts <guard>`, where `<guard>` is `socket`
 * (watchSocket on every socket), `process` (the process-wide fallback only)
 * or `off` (plain Deno). It prints `ws://127.0.0.1:PORT/`, then one JSON line
 * per event on stdout: `{"event":"failure"|"close"|"error", "id", ...}`.
 * `idle=N` in the query string sets `idleTimeout` (seconds); `inactive=MS`
 * closes with 1008 after MS ms without a message, as a Connection's
 * `inactivityTimeout` does. After either close, a peer that has not answered
 * within 1 s is shut with `forceShut` (`{"event":"shut"}`). `GET /stats`
 * answers `{"rss":bytes,"open":sockets}`. A text message `echo:...` is
 * echoed; `reject` rejects a promise of the application's own; `bad-close`
 * calls `close()` with a 200-byte reason inside an async function (an
 * application error thrown from inside Deno's WebSocket code).
 *
 * @module
 */

import {
  forceShut,
  installProcessNet,
  installRuntimeGuard,
  isRuntimeFailure,
  watchSocket,
} from "../_connection/runtime_guard.ts";

const guard = Deno.args[0] ?? "socket";
if (guard === "process") installProcessNet();
else if (guard === "socket") installRuntimeGuard();

const started = performance.now();
const print = (record: Record<string, unknown>) =>
  console.log(JSON.stringify({ ...record, ms: elapsed() }));
const elapsed = () => Math.round(performance.now() - started);

let open = 0;
let next = 0;

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`ws://127.0.0.1:${port}/`),
}, (request) => {
  const url = new URL(request.url);
  if (url.pathname === "/stats") {
    return Response.json({ rss: Deno.memoryUsage().rss, open });
  }
  const idleTimeout = Number(url.searchParams.get("idle") ?? "30");
  const inactive = Number(url.searchParams.get("inactive") ?? "0");
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout });
  const id = ++next;
  if (guard === "socket") watchSocket(socket);
  // What a Connection does: stop waiting for a peer that does not answer.
  const shutLater = () =>
    setTimeout(() => forceShut(socket) && print({ event: "shut", id }), 1000);
  let silence: ReturnType<typeof setTimeout> | undefined;
  const watchSilence = () => {
    clearTimeout(silence);
    if (inactive === 0) return;
    silence = setTimeout(() => {
      print({ event: "inactive", id });
      socket.close(1008, "no message");
      shutLater();
    }, inactive);
  };
  socket.onopen = () => {
    open++;
    watchSilence();
  };
  socket.onmessage = (event) => {
    watchSilence();
    const data = event.data;
    if (typeof data !== "string") return;
    if (data.startsWith("echo:")) socket.send(data);
    else if (data === "reject") {
      Promise.reject(new Error("the application's own rejection"));
    } else if (data === "bad-close") {
      // Thrown synchronously inside an async function: the rejection's stack
      // holds Deno's frames (close, dispatch, the receive loop) and ours.
      // deno-lint-ignore require-await
      (async () => socket.close(1000, "x".repeat(200)))();
    }
  };
  socket.onerror = (event) => {
    if (!isRuntimeFailure(event)) {
      return print({
        event: "error",
        id,
        message: (event as ErrorEvent).message,
      });
    }
    print({ event: "failure", id, message: event.error.message });
    socket.close(1009, "message too big");
    shutLater();
  };
  socket.onclose = (event) => {
    clearTimeout(silence);
    open--;
    print({
      event: "close",
      id,
      code: event.code,
      reason: event.reason,
      wasClean: event.wasClean,
    });
  };
  return response;
});
