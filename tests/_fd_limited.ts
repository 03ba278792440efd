/**
 * Runs a module under a low open-file limit, for the descriptor exhaustion
 * tests: it lowers its own `RLIMIT_NOFILE` (soft and hard) to the
 * descriptors it has open now plus `<headroom>`, then imports `<module>`.
 * Linux only: it reads `/proc/self/fd` and calls `prlimit` (util-linux).
 *
 * ```sh
 * deno run -A tests/_fd_limited.ts <headroom> <module>
 * ```
 *
 * The module sees these arguments in `Deno.args`; pass it settings through
 * the environment.
 *
 * @module
 */

const [headroom = "", module = ""] = Deno.args;
if (!/^\d+$/.test(headroom) || module === "") {
  console.error("usage: _fd_limited.ts <headroom> <module>");
  Deno.exit(2);
}
const open = [...Deno.readDirSync("/proc/self/fd")].length;
const limit = open + Number(headroom);
const { success, stderr } = new Deno.Command("prlimit", {
  args: ["--pid", String(Deno.pid), `--nofile=${limit}:${limit}`],
  stdout: "null",
  stderr: "piped",
}).outputSync();
if (!success) {
  console.error(
    `_fd_limited.ts: prlimit failed: ${new TextDecoder().decode(stderr)}`,
  );
  Deno.exit(3);
}
await import(new URL(module, `file://${Deno.cwd()}/`).href);
