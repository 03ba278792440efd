/**
 * Echo CPU per round trip, with the contenders interleaved in short slices:
 * a finer instrument than the main bench for differences of a few percent.
 *
 * ```sh
 * deno run -A tools/with_std.ts run -A bench/echo_ab.ts --before=../anyws-before
 * deno run -A tools/with_std.ts run -A bench/echo_ab.ts --cycles=40 --docs
 * ```
 *
 * Why: in the main bench each contender's echo runs for two seconds in turn,
 * and on this machine raw Deno's own cost per round trip moved from 7.5 to
 * 11.1 µs between rounds of one run, with no outside load: the ratios of
 * contenders measured seconds apart carried ±15% of drift, more than the
 * differences to be measured.
 *
 * How: every server (raw Deno, and anyws in each API style, optionally an
 * older checkout too) runs at once, each with its own 100 connections (16
 * messages in flight on each while driven). One server at a time is driven
 * for a slice (300 ms by default) while the others sit idle; a cycle drives
 * each once, starting with a different one each cycle. The server's CPU
 * (getrusage, every thread) is read before and after its slice, which ends
 * once every reply is in, so a slice costs what its round trips cost. Each
 * ratio is the median over the cycles of the ratio to raw Deno's slice in
 * the same cycle, milliseconds apart; the spread is the quartiles of those.
 *
 * Writes bench/results/echo_ab.json and echo_ab.md; with `--docs`, also the
 * part of docs/performance.md between its `echo-ab` markers.
 *
 * @module
 */

import {
  type Client,
  drop,
  openMany,
  ServerControl,
  textFrame,
  writeAll,
} from "./loadgen.ts";
import { machineBusySeconds, processCpuSeconds } from "./_proc.ts";

const BENCH = new URL("./", import.meta.url);
const ROOT = new URL("../", BENCH);
const RESULTS = new URL("results/", BENCH);
const decoder = new TextDecoder();

const flags = new Map(
  Deno.args.map((arg) => {
    const [key, value] = arg.replace(/^--/, "").split("=", 2);
    return [key!, value ?? "true"] as const;
  }),
);
const CYCLES = Number(flags.get("cycles") ?? 30);
const SLICE_MS = Number(flags.get("slice") ?? 300);
const SIZES = (flags.get("sizes") ?? "64,16384").split(",").map(Number);
const BEFORE = flags.get("before");
const CONNECTIONS = 100;
const PIPELINE = 16;
const STYLES = ["perl", "dom", "iter"] as const;
const STYLE_NAMES: Record<string, string> = {
  perl: 'on("message")',
  dom: 'addEventListener("message")',
  iter: "for await",
};

interface Contender {
  id: string;
  command: string[];
}

const denoRun = [
  Deno.execPath(),
  "run",
  "-A",
  "--no-check",
  "--v8-flags=--expose-gc",
  ...(Deno.env.get("JSR_URL") ? ["--no-lock"] : []), // see tools/with_std.ts
];
const server = (name: string) => new URL(`servers/${name}`, BENCH).pathname;

function contenders(): Contender[] {
  const list: Contender[] = [{
    id: "raw",
    command: [...denoRun, server("raw_deno.ts")],
  }];
  const libraries: [string, string][] = [["anyws", ROOT.pathname]];
  if (BEFORE) libraries.unshift(["anyws-before", BEFORE]);
  for (const [name, path] of libraries) {
    for (const style of STYLES) {
      list.push({
        id: `${name}:${style}`,
        command: [...denoRun, server("anyws.ts"), style, path],
      });
    }
  }
  return list;
}

/** A running server with its connections, driven on demand. */
class Driven {
  readonly id: string;
  readonly pid: number;
  readonly control: ServerControl;
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  #clients: Client[] = [];
  #frame: Uint8Array = new Uint8Array();
  #active = false;
  #sent = 0;
  #received = 0;
  #settled: (() => void) | undefined;
  #loops: Promise<void>[] = [];

  constructor(id: string, child: Deno.ChildProcess, port: number) {
    this.id = id;
    this.pid = child.pid;
    this.#child = child;
    this.control = new ServerControl(port);
    this.port = port;
  }

  /** Opens the connections and starts reading them. */
  async connect(size: number): Promise<void> {
    this.#frame = textFrame(size);
    this.#clients = await openMany(this.port, CONNECTIONS, 50);
    this.#loops = this.#clients.map((client) => this.#read(client));
  }

  async #read({ conn, counter }: Client): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      const messages = counter.feed(buf.subarray(0, n));
      if (messages === 0) continue;
      this.#received += messages;
      if (this.#active) {
        // Keep the same number in flight: one new message per reply.
        this.#sent += messages;
        this.#write(conn, messages);
      } else if (this.#received === this.#sent) {
        this.#settled?.();
      }
    }
  }

  #write(conn: Deno.TcpConn, count: number): void {
    const frame = this.#frame;
    const bytes = new Uint8Array(frame.length * count);
    for (let i = 0; i < count; i++) bytes.set(frame, i * frame.length);
    writeAll(conn, bytes).catch(() => {});
  }

  /**
   * Drives the server for `ms`, then waits for every reply.
   *
   * @returns Round trips and the server's CPU seconds over the slice.
   */
  async drive(ms: number): Promise<{ trips: number; cpu: number }> {
    const before = await this.control.stats();
    const start = this.#received;
    this.#active = true;
    for (const { conn } of this.#clients) {
      this.#sent += PIPELINE;
      this.#write(conn, PIPELINE);
    }
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.#active = false;
    if (this.#received !== this.#sent) {
      const settled = new Promise<void>((resolve) => this.#settled = resolve);
      const timeout = setTimeout(() => this.#settled?.(), 10_000);
      await settled;
      clearTimeout(timeout);
      this.#settled = undefined;
      if (this.#received !== this.#sent) {
        throw new Error(`${this.id}: replies missing after a slice`);
      }
    }
    const after = await this.control.stats();
    return {
      trips: this.#received - start,
      cpu: (after.cpu - before.cpu) / 1e6,
    };
  }

  async stop(): Promise<void> {
    for (const { conn } of this.#clients) drop(conn);
    await Promise.allSettled(this.#loops);
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#child.status;
  }
}

async function start(contender: Contender): Promise<Driven> {
  const child = new Deno.Command(contender.command[0]!, {
    args: contender.command.slice(1),
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!/READY (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${contender.id} exited before listening`);
    text += decoder.decode(value);
  }
  (async () => {
    while (!(await reader.read()).done);
  })();
  const port = Number(text.match(/READY (\d+)/)![1]);
  return new Driven(contender.id, child, port);
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface SizeResult {
  size: number;
  /** Per contender: µs per round trip in each cycle. */
  micros: Record<string, number[]>;
  /** Outside load during each cycle, in cores. */
  outside: number[];
}

async function measure(size: number): Promise<SizeResult> {
  const servers = await Promise.all(contenders().map(start));
  try {
    for (const s of servers) await s.connect(size);
    // Warm-up: two slices each, not recorded.
    for (let i = 0; i < 2; i++) {
      for (const s of servers) await s.drive(SLICE_MS);
    }
    const micros: Record<string, number[]> = {};
    const outside: number[] = [];
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const wall = performance.now();
      const machine = machineBusySeconds();
      const own = processCpuSeconds("self");
      let serversCpu = 0;
      for (let k = 0; k < servers.length; k++) {
        const s = servers[(cycle + k) % servers.length]!;
        const { trips, cpu } = await s.drive(SLICE_MS);
        serversCpu += cpu;
        (micros[s.id] ??= []).push(cpu / trips * 1e6);
      }
      const seconds = (performance.now() - wall) / 1000;
      outside.push(
        Math.max(
          0,
          machineBusySeconds() - machine - serversCpu -
            (processCpuSeconds("self") - own),
        ) / seconds,
      );
    }
    return { size, micros, outside };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

function report(results: SizeResult[], seconds: number): string {
  const ids = Object.keys(results[0]!.micros).filter((id) => id !== "raw");
  const libs = [...new Set(ids.map((id) => id.split(":")[0]!))];
  const lines = [
    `\`deno run -A tools/with_std.ts run -A bench/echo_ab.ts${
      BEFORE ? ` --before=${BEFORE}` : ""
    } --cycles=${CYCLES}\` on ${
      new Date().toISOString().slice(0, 16).replace("T", " ")
    } UTC: ${CYCLES} cycles of ${SLICE_MS} ms slices, ${CONNECTIONS} connections × ${PIPELINE} in flight, ${
      Math.round(seconds)
    } s. Outside load: median ${
      results.map((r) => `${Math.round(quantile(r.outside, 0.5) * 100)}%`)
        .join(" / ")
    } of a core (${results.map((r) => r.size).join(" B / ")} B).`,
    "",
    "Server CPU per round trip as a ratio to raw Deno's in the same cycle: median [quartiles] over the cycles; raw Deno's own µs per round trip in the header.",
    "",
    `| API style | ${
      results.flatMap((r) =>
        libs.map((lib) =>
          `${lib}, ${r.size} B (raw ${
            quantile(r.micros.raw!, 0.5).toFixed(2)
          } µs)`
        )
      ).join(" | ")
    } |`,
    `| --- | ${results.flatMap(() => libs.map(() => "---:")).join(" | ")} |`,
  ];
  for (const style of STYLES) {
    const cells = results.flatMap((r) =>
      libs.map((lib) => {
        const mine = r.micros[`${lib}:${style}`]!;
        const ratios = mine.map((m, i) => m / r.micros.raw![i]!);
        return `${quantile(ratios, 0.5).toFixed(2)}× [${
          quantile(ratios, 0.25).toFixed(2)
        }–${quantile(ratios, 0.75).toFixed(2)}]`;
      })
    );
    lines.push(`| ${STYLE_NAMES[style]} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const began = performance.now();
  const results: SizeResult[] = [];
  for (const size of SIZES) results.push(await measure(size));
  const seconds = (performance.now() - began) / 1000;
  const markdown = report(results, seconds);
  console.log(markdown);
  await Deno.writeTextFile(
    new URL("echo_ab.json", RESULTS),
    JSON.stringify({ cycles: CYCLES, sliceMs: SLICE_MS, results }, null, 1),
  );
  await Deno.writeTextFile(new URL("echo_ab.md", RESULTS), markdown);
  const written = [
    new URL("echo_ab.json", RESULTS),
    new URL("echo_ab.md", RESULTS),
  ];
  if (flags.has("docs")) {
    written.push(new URL("docs/performance.md", ROOT));
    const page = new URL("docs/performance.md", ROOT);
    const text = await Deno.readTextFile(page);
    const begin =
      "<!-- echo-ab:begin (bench/echo_ab.ts --docs writes this part) -->";
    const end = "<!-- echo-ab:end -->";
    const from = text.indexOf(begin);
    const to = text.indexOf(end);
    if (from < 0 || to < from) {
      throw new Error("docs/performance.md has no echo-ab markers");
    }
    await Deno.writeTextFile(
      page,
      text.slice(0, from + begin.length) + "\n\n" + markdown + "\n" +
        text.slice(to),
    );
  }
  // The tables as `deno fmt --check` (part of `deno task test`) wants them.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", ...written.map((url) => url.pathname)],
    cwd: ROOT,
  }).output();
}
