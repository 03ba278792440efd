/**
 * A child-process `new WebSocket` client for the runtime-guard tests.
 *
 * `deno run -A tests/_guard_client.ts <url> <guard>` (`socket` or `off`, as
 * in `_guard_server.ts`) connects, prints one JSON line per event
 * (`{"event":"open"|"failure"|"close", ...}`) and ends by itself after the
 * close event, printing `{"event":"alive"}` first: exit code 0 and that line
 * mean the process survived whatever the server sent.
 *
 * @module
 */

import {
  installRuntimeGuard,
  isRuntimeFailure,
  watchSocket,
} from "../_connection/runtime_guard.ts";

const [url = "", guard = "socket"] = Deno.args;
if (guard === "socket") installRuntimeGuard();

const print = (record: Record<string, unknown>) =>
  console.log(JSON.stringify(record));

const socket = new WebSocket(url);
socket.binaryType = "arraybuffer";
if (guard === "socket") watchSocket(socket);
socket.onerror = (event) => {
  if (!isRuntimeFailure(event)) return;
  print({ event: "failure", message: event.error.message });
  // A client may only send 1000 or 3000-4999: 4009, as Connection does.
  socket.close(4009, "message too big");
};
socket.onopen = () => print({ event: "open" });
socket.onclose = (event) => {
  print({ event: "close", code: event.code, wasClean: event.wasClean });
  print({ event: "alive" });
};
