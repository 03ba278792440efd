/**
 * The package as deno.json describes it, and `deno` subcommands run on it,
 * for tests that check its structure and public surface.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);
// Offline, @std comes from a mirror (JSR_URL) that must stay out of deno.lock
// (see tools/with_std.ts); the child inherits JSR_URL with the environment.
const LOCK_ARGS = Deno.env.get("JSR_URL") ? ["--no-lock"] : [];

/** deno.json `exports`: entry name (`"."`, `"./server"`, ...) -> file path. */
export function packageEntries(): Record<string, string> {
  const config = JSON.parse(
    Deno.readTextFileSync(new URL("deno.json", ROOT)),
  ) as { exports: Record<string, string> };
  return config.exports;
}

/**
 * Runs `deno <subcommand> [--no-lock] <args...>` from the repository root and
 * returns its standard output; throws with its standard error if it fails.
 */
export async function runDeno(args: string[]): Promise<string> {
  const [subcommand = "info", ...rest] = args;
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [subcommand, ...LOCK_ARGS, ...rest],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!success) {
    throw new Error(
      `deno ${args.join(" ")} failed:\n${decoder.decode(stderr)}`,
    );
  }
  return decoder.decode(stdout);
}
