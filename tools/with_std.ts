/**
 * Runs a deno subcommand with `@std` resolvable, whether or not jsr.io is.
 *
 * ```sh
 * deno run -A tools/with_std.ts <subcommand> [args...]
 * ```
 *
 * - Online (jsr.io answers): runs `deno <subcommand> [args...]` unchanged, so
 *   users and the lockfile see the real jsr packages.
 * - Offline: builds the local mirror if needed (tools/std_mirror.ts) and runs
 *   `deno <subcommand> --no-lock [args...]` with
 *   `JSR_URL=file:///abs/.cache/jsr-mirror/`. `--no-lock` because the
 *   lockfile records each package's `_meta.json` hash: mirror hashes written
 *   into deno.lock would break the next online run with integrity errors.
 *   (`lint` and `fmt` take no `--no-lock` and write no lockfile.)
 *
 * Which one: `ANYWS_OFFLINE=1` forces offline and `ANYWS_OFFLINE=0` online;
 * otherwise a `JSR_URL` already in the environment is used as the mirror (with
 * `--no-lock`); otherwise a quick probe of jsr.io decides.
 *
 * stdio is inherited and the exit code is passed through.
 *
 * @module
 */

import { ensureMirror, MIRROR_URL } from "./std_mirror.ts";

const PROBE_URL = "https://jsr.io/@std/assert/meta.json";
const PROBE_TIMEOUT_MS = 2500;

/** Whether jsr.io serves package metadata within the timeout. */
async function jsrReachable(): Promise<boolean> {
  try {
    const res = await fetch(PROBE_URL, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false; // DNS failure, refused, timeout: all mean "not usable".
  }
}

/** The `JSR_URL` to run with, or `undefined` to run against jsr.io. */
async function chooseRegistry(): Promise<string | undefined> {
  const forced = Deno.env.get("ANYWS_OFFLINE");
  const given = Deno.env.get("JSR_URL") || undefined;
  if (forced === "0") return undefined;
  if (given) return given;
  if (forced === "1" || !await jsrReachable()) {
    return (await ensureMirror()).href;
  }
  return undefined;
}

const [subcommand, ...rest] = Deno.args;
if (!subcommand) {
  console.error("usage: deno run -A tools/with_std.ts <subcommand> [args...]");
  Deno.exit(2);
}

// `deno lint` resolves imports too (its JSR rules look at the module graph)
// but has no lockfile flag, and writes no lockfile.
const LOCKLESS = new Set(["lint", "fmt"]);

let jsrUrl = await chooseRegistry();

// `deno publish` counts file: modules under the package root as part of the
// package and fails on the mirror in .cache/ ("excluded-module"). Reached
// through a path outside the repo they are the external packages they are,
// so publish gets the mirror through a temporary symlink.
let tempDir: string | undefined;
if (subcommand === "publish" && jsrUrl === MIRROR_URL.href) {
  tempDir = await Deno.makeTempDir({ prefix: "anyws-jsr-" });
  const link = `${tempDir}/mirror`;
  await Deno.symlink(MIRROR_URL, link, { type: "dir" });
  jsrUrl = `file://${Deno.build.os === "windows" ? "/" : ""}${
    link.replaceAll("\\", "/")
  }/`;
}

const noLock = jsrUrl && !LOCKLESS.has(subcommand) ? ["--no-lock"] : [];
const child = new Deno.Command(Deno.execPath(), {
  args: jsrUrl ? [subcommand, ...noLock, ...rest] : Deno.args,
  env: jsrUrl ? { JSR_URL: jsrUrl } : {},
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();

// Ctrl+C reaches the whole process group; we only wait for the child to exit.
// A SIGTERM sent to us alone (CI timeouts) is handed on.
Deno.addSignalListener("SIGINT", () => {});
if (Deno.build.os !== "windows") {
  Deno.addSignalListener("SIGTERM", () => child.kill("SIGTERM"));
}

const { code } = await child.status;
if (tempDir) await Deno.remove(tempDir, { recursive: true });
Deno.exit(code);
