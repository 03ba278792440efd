/**
 * `deno task bench`: runs every scenario against every contender, each
 * server in a fresh process of its own, with one load generator
 * (bench/loadgen.ts) in another. Contenders alternate within each round;
 * figures are medians over the rounds, and each ratio to raw Deno is the
 * median of the ratios measured within the same round. Every cost is read
 * at the server (its CPU time, heap, RSS), and the outside load (other
 * processes on the machine) is recorded for each window.
 *
 * ```sh
 * deno task bench                 # full: 4 rounds, 11-12 minutes
 * deno task bench --quick         # 1 short round, about 1.5 minutes
 * deno task bench --anyws-before=../anyws-before   # and another checkout
 * deno task bench --rounds=3 --only=raw,anyws --styles=perl --scenarios=echo64
 * deno task bench --report --docs # redo the outputs from latest.json
 * ```
 *
 * Contenders: raw Deno, anyws (this checkout, or `--anyws=PATH`) in its three
 * API styles, optionally anyws-before (`--anyws-before=PATH`, another
 * checkout of the library) in the same three, Node + ws and Bun.
 *
 * Writes bench/results/latest.json (every sample, the outside load,
 * versions), latest.md (the tables) and latest.svg (a chart of the ratios);
 * with `--docs`, also docs/performance.md (between its markers) and
 * docs/performance.svg.
 *
 * @module
 */

import { renderChart } from "./chart.ts";
import { relative } from "node:path";
import { loadAverage } from "./_proc.ts";

const BENCH = new URL("./", import.meta.url);
const ROOT = new URL("../", BENCH);
const PEERS = new URL("peers/", BENCH);
const RESULTS = new URL("results/", BENCH);
const decoder = new TextDecoder();

// ---- options -----------------------------------------------------------------

const flags = new Map<string, string>();
for (const arg of Deno.args) {
  const [key, value] = arg.replace(/^--/, "").split("=", 2) as [
    string,
    string?,
  ];
  flags.set(key, value ?? "true");
}
if (flags.has("help")) {
  console.log(
    [
      "usage: deno task bench [--quick] [--rounds=N]",
      "  [--anyws-before=PATH] [--anyws=PATH]   checkouts of the library to compare",
      "  [--only=raw,anyws-before,anyws,node,bun] [--styles=perl,dom,iter]",
      "  [--scenarios=echo64,echo16k,latency,churn,idle1k,idle10k]",
      "  [--idle-connections=N] (default 10000) [--no-redis]",
      "  [--docs]     also rewrite docs/performance.md (its marked part) and docs/performance.svg",
      "  [--report]   measure nothing: redo the tables, chart (and --docs) from bench/results/latest.json",
    ].join("\n"),
  );
  Deno.exit(0);
}
/** --report: the run saved in latest.json, whose figures are reported again. */
const SAVED = flags.has("report")
  ? JSON.parse(await Deno.readTextFile(new URL("latest.json", RESULTS)))
  : undefined;
const QUICK: boolean = SAVED?.quick ?? flags.has("quick");
const ROUNDS: number = SAVED?.rounds ?? Number(
  flags.get("rounds") ?? flags.get("runs") ?? (QUICK ? 1 : 4),
);
const IDLE_CONNECTIONS = Number(
  SAVED?.scenarios?.find((s: { id: string }) => s.id === "idle10k")?.config
    .connections ?? flags.get("idle-connections") ?? 10_000,
);
const IDLE_LABEL = IDLE_CONNECTIONS.toLocaleString("en-US").replaceAll(
  ",",
  " ",
);

// ---- scenarios -------------------------------------------------------------------

/** The three ways to read messages that anyws offers. */
const STYLES = ["perl", "dom", "iter"] as const;
type Style = typeof STYLES[number];
const STYLE_LABELS: Record<Style, string> = {
  perl: 'on("message")',
  dom: 'addEventListener("message")',
  iter: "for await",
};

/** One scenario: the load generator's configuration without port and pid. */
interface Scenario {
  id: string;
  config: Record<string, unknown>;
  /** The anyws styles it runs in (raw, Node and Bun have one). */
  styles: readonly Style[];
}

const SCENARIOS: Scenario[] = [
  {
    id: "echo64",
    config: {
      scenario: "echo",
      size: 64,
      connections: 100,
      pipeline: 16,
      // Servers start fresh: the JIT must be done before the window opens.
      warmup: QUICK ? 0.8 : 1.5,
      duration: QUICK ? 1 : 2,
      windows: 5,
    },
    styles: STYLES,
  },
  {
    id: "echo16k",
    config: {
      scenario: "echo",
      size: 16384,
      connections: 100,
      pipeline: 16,
      warmup: QUICK ? 0.8 : 1.5,
      duration: QUICK ? 1 : 2,
      windows: 5,
    },
    styles: STYLES,
  },
  {
    id: "latency",
    config: {
      scenario: "latency",
      size: 1024,
      warmupTrips: QUICK ? 1500 : 3000,
      trips: QUICK ? 2000 : 5000,
    },
    styles: ["perl"],
  },
  {
    id: "churn",
    config: {
      scenario: "churn",
      connections: QUICK ? 1000 : 4000,
      warmupConnections: QUICK ? 300 : 1000,
      concurrency: 50,
      windows: 5,
    },
    styles: STYLES,
  },
  {
    id: "idle1k",
    config: {
      scenario: "idle",
      connections: 1000,
      warmupConnections: 200,
      broadcasts: QUICK ? 5 : 20,
      concurrency: 100,
      windows: 5,
    },
    styles: STYLES,
  },
  {
    id: "idle10k",
    config: {
      scenario: "idle",
      connections: IDLE_CONNECTIONS,
      warmupConnections: 500,
      broadcasts: QUICK ? 3 : 8,
      concurrency: 100,
      windows: QUICK ? 3 : 4,
    },
    // The costliest scenario: memory per style is told apart at 1 000
    // already, and a broadcast does not depend on the style.
    styles: ["perl"],
  },
];

/** A figure of the tables: where it comes from. Ratios are value / raw. */
interface Metric {
  id: string;
  label: string;
  scenario: string;
  field: string;
  unit: string;
  /** Lower is better (a cost), or higher (a rate). */
  lowerIsBetter: boolean;
  scale?: number;
  digits?: number;
  /** Shown in the chart. */
  chart?: boolean;
}

const KIB = 1 / 1024;
const METRICS: Metric[] = [
  {
    id: "echo64Cpu",
    label: "Echo 64 B: server CPU per round trip",
    scenario: "echo64",
    field: "serverCpuMicros",
    unit: "µs",
    lowerIsBetter: true,
    digits: 2,
    chart: true,
  },
  {
    id: "echo16kCpu",
    label: "Echo 16 KiB: server CPU per round trip",
    scenario: "echo16k",
    field: "serverCpuMicros",
    unit: "µs",
    lowerIsBetter: true,
    digits: 2,
    chart: true,
  },
  {
    id: "echo64",
    label: "Echo 64 B, 100 conns",
    scenario: "echo64",
    field: "roundTripsPerSecond",
    unit: "round trips/s",
    lowerIsBetter: false,
  },
  {
    id: "echo16k",
    label: "Echo 16 KiB, 100 conns",
    scenario: "echo16k",
    field: "roundTripsPerSecond",
    unit: "round trips/s",
    lowerIsBetter: false,
  },
  {
    id: "latencyP50",
    label: "Latency p50, 1 KiB",
    scenario: "latency",
    field: "p50Micros",
    unit: "µs",
    lowerIsBetter: true,
  },
  {
    id: "latencyP99",
    label: "Latency p99, 1 KiB",
    scenario: "latency",
    field: "p99Micros",
    unit: "µs",
    lowerIsBetter: true,
  },
  {
    id: "latencyCpu",
    label: "Latency 1 KiB: server CPU per round trip",
    scenario: "latency",
    field: "serverCpuMicros",
    unit: "µs",
    lowerIsBetter: true,
    digits: 1,
  },
  {
    id: "echo64System",
    label: "Echo 64 B: kernel share of server CPU",
    scenario: "echo64",
    field: "serverSystem",
    unit: "%",
    lowerIsBetter: true,
    scale: 100,
    digits: 0,
  },
  {
    id: "echo16kSystem",
    label: "Echo 16 KiB: kernel share of server CPU",
    scenario: "echo16k",
    field: "serverSystem",
    unit: "%",
    lowerIsBetter: true,
    scale: 100,
    digits: 0,
  },
  {
    id: "handshakeCpu",
    label: "Server CPU per handshake",
    scenario: "churn",
    field: "handshakeCpuMicros",
    unit: "µs",
    lowerIsBetter: true,
    digits: 1,
    chart: true,
  },
  {
    id: "closeCpu",
    label: "Server CPU per close handshake",
    scenario: "churn",
    field: "closeCpuMicros",
    unit: "µs",
    lowerIsBetter: true,
    digits: 1,
    chart: true,
  },
  {
    id: "handshakes",
    label: "Connection setup, 50 at a time",
    scenario: "churn",
    field: "handshakesPerSecond",
    unit: "handshakes/s",
    lowerIsBetter: false,
  },
  {
    id: "closes",
    label: "Close handshakes, 50 at a time",
    scenario: "churn",
    field: "closesPerSecond",
    unit: "closes/s",
    lowerIsBetter: false,
  },
  {
    id: "heap1k",
    label: "JS heap per idle connection, 1 000",
    scenario: "idle1k",
    field: "heapBytesPerConnection",
    unit: "KiB",
    lowerIsBetter: true,
    scale: KIB,
    digits: 2,
  },
  {
    id: "rss1k",
    label: "RSS per idle connection, 1 000",
    scenario: "idle1k",
    field: "rssBytesPerConnection",
    unit: "KiB",
    lowerIsBetter: true,
    scale: KIB,
    digits: 1,
  },
  {
    id: "heap10k",
    label: `JS heap per idle connection, ${IDLE_LABEL}`,
    scenario: "idle10k",
    field: "heapBytesPerConnection",
    unit: "KiB",
    lowerIsBetter: true,
    scale: KIB,
    digits: 2,
    chart: true,
  },
  {
    id: "rss10k",
    label: `RSS per idle connection, ${IDLE_LABEL}`,
    scenario: "idle10k",
    field: "rssBytesPerConnection",
    unit: "KiB",
    lowerIsBetter: true,
    scale: KIB,
    digits: 1,
    chart: true,
  },
  {
    id: "fanout1kCpu",
    label: "Broadcast to 1 000: server CPU per delivery",
    scenario: "idle1k",
    field: "serverCpuMicrosPerDelivery",
    unit: "µs",
    lowerIsBetter: true,
    digits: 2,
  },
  {
    id: "fanout1kLoop",
    label: "Broadcast to 1 000: send loop CPU per recipient",
    scenario: "idle1k",
    field: "sendLoopCpuMicrosPerRecipient",
    unit: "µs",
    lowerIsBetter: true,
    digits: 2,
  },
  {
    id: "fanout10kCpu",
    label: `Broadcast to ${IDLE_LABEL}: server CPU per delivery`,
    scenario: "idle10k",
    field: "serverCpuMicrosPerDelivery",
    unit: "µs",
    lowerIsBetter: true,
    digits: 2,
    chart: true,
  },
  {
    id: "fanout10kLoop",
    label: `Broadcast to ${IDLE_LABEL}: send loop CPU per recipient`,
    scenario: "idle10k",
    field: "sendLoopCpuMicrosPerRecipient",
    unit: "µs",
    lowerIsBetter: true,
    digits: 2,
    chart: true,
  },
  {
    id: "fanout10kMs",
    label: `Broadcast to ${IDLE_LABEL}: all received (load generator bound)`,
    scenario: "idle10k",
    field: "allReceivedMs",
    unit: "ms",
    lowerIsBetter: true,
    digits: 1,
  },
];

// ---- contenders --------------------------------------------------------------------

/** A server under test, in one API style. */
interface Variant {
  /** e.g. "raw", "anyws:perl", "anyws-before:iter", "node". */
  id: string;
  /** The column: raw, anyws-before, anyws, node, bun. */
  contender: string;
  label: string;
  style?: Style;
  command: string[];
  cwd?: string;
}

const denoRun = [
  Deno.execPath(),
  "run",
  "-A",
  "--no-check", // `deno task check` type-checks; startup stays fast
  ...(Deno.env.get("JSR_URL") ? ["--no-lock"] : []), // see tools/with_std.ts
];

/** Installs the Node and Bun contenders into bench/peers/ (npm ci). */
async function installPeers(): Promise<boolean> {
  const installed = await exists(
    new URL("node_modules/.package-lock.json", PEERS),
  );
  if (installed && !flags.has("reinstall")) return true;
  console.error("bench: installing ws and bun into bench/peers/ (npm ci)");
  try {
    // --ignore-scripts: bun's postinstall only links the binary that npm
    // already installed from @oven/bun-<platform>; we run that one directly.
    const { success } = await new Deno.Command("npm", {
      args: ["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
      cwd: PEERS,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    return success;
  } catch (error) {
    console.error(`bench: cannot run npm (${(error as Error).message})`);
    return false;
  }
}

async function output(
  command: string[],
  cwd?: string,
): Promise<string | undefined> {
  try {
    const { success, stdout } = await new Deno.Command(command[0]!, {
      args: command.slice(1),
      stdout: "piped",
      stderr: "null",
      ...(cwd ? { cwd } : {}),
    }).output();
    return success ? decoder.decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The Bun binary npm installed for this platform, if one runs here. */
async function findBun(): Promise<{ path: string; version: string } | null> {
  const oven = new URL("node_modules/@oven/", PEERS);
  const candidates: string[] = [];
  try {
    for await (const entry of Deno.readDir(oven)) {
      candidates.push(new URL(`${entry.name}/bin/bun`, oven).pathname);
    }
  } catch {
    return null;
  }
  // The AVX2 build first; "-baseline" runs on older x86-64 CPUs.
  candidates.sort((a, b) => a.length - b.length);
  for (const path of candidates) {
    const found = await output([path, "--version"]);
    if (found) return { path, version: found };
  }
  return null;
}

/** A checkout of the library: its path and what git says it is. */
interface Checkout {
  path: string;
  commit: string;
}

async function checkout(path: string): Promise<Checkout> {
  const absolute = (await Deno.realPath(path)).replace(/\/?$/, "/");
  if (!await exists(new URL(`file://${absolute}mod.ts`))) {
    throw new Error(`bench: ${path} has no mod.ts`);
  }
  const head = await output([
    "git",
    "-C",
    absolute,
    "rev-parse",
    "--short",
    "HEAD",
  ]);
  const dirty = await output([
    "git",
    "-C",
    absolute,
    "status",
    "--porcelain",
    "--",
    "*.ts",
  ]);
  return {
    path: absolute,
    commit: `${head ?? "unknown"}${dirty ? " + uncommitted changes" : ""}`,
  };
}

const checkouts: Record<string, Checkout> = {};

async function variants(versions: Record<string, string>): Promise<Variant[]> {
  const server = (name: string) => new URL(`servers/${name}`, BENCH).pathname;
  const only = flags.get("only")?.split(",");
  const styles = (flags.get("styles")?.split(",") ?? STYLES).filter((
    s,
  ): s is Style => (STYLES as readonly string[]).includes(s));
  const wanted = (id: string) => !only || only.includes(id);
  const list: Variant[] = [];
  if (wanted("raw")) {
    list.push({
      id: "raw",
      contender: "raw",
      label: "raw Deno",
      command: [...denoRun, "--v8-flags=--expose-gc", server("raw_deno.ts")],
    });
  }
  const libraries: [string, string | undefined][] = [
    ["anyws-before", flags.get("anyws-before")],
    ["anyws", flags.get("anyws") ?? ROOT.pathname],
  ];
  for (const [id, path] of libraries) {
    if (!path || !wanted(id)) continue;
    const lib = checkouts[id] = await checkout(path);
    for (const style of styles) {
      list.push({
        id: `${id}:${style}`,
        contender: id,
        label: id,
        style,
        command: [
          ...denoRun,
          "--config",
          `${lib.path}deno.json`,
          "--v8-flags=--expose-gc",
          server("anyws.ts"),
          style,
          lib.path,
        ],
        cwd: lib.path,
      });
    }
  }
  if (!wanted("node") && !wanted("bun")) return list;
  const peers = await installPeers();
  const node = await output(["node", "--version"]);
  if (peers && node && wanted("node")) {
    versions.node = node;
    const ws = JSON.parse(
      await Deno.readTextFile(new URL("node_modules/ws/package.json", PEERS)),
    );
    versions.ws = ws.version;
    list.push({
      id: "node",
      contender: "node",
      label: "Node + ws",
      command: ["node", "--expose-gc", server("node_ws.mjs")],
    });
  } else if (wanted("node")) {
    console.error("bench: Node + ws skipped (no node, or npm ci failed)");
  }
  const bun = peers && wanted("bun") ? await findBun() : null;
  if (bun) {
    versions.bun = bun.version;
    list.push({
      id: "bun",
      contender: "bun",
      label: "Bun",
      command: [bun.path, server("bun.js")],
    });
  } else if (wanted("bun")) {
    console.error("bench: Bun skipped (no runnable bun binary in bench/peers)");
  }
  return list;
}

// ---- processes ---------------------------------------------------------------------

/** Descriptors for the bench processes: 10 000+ connections on each side. */
const OPEN_FILES = 200_000;

/**
 * Spawns through `sh` to raise the open-files limit first (as root, the hard
 * limit too); `exec` keeps the pid, so /proc/<pid> is the program itself.
 */
function spawn(command: string[], cwd?: string): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -Hn ${OPEN_FILES} 2>/dev/null; ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"`,
      "sh",
      ...command,
    ],
    cwd: cwd ?? ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Collects a stream's text, keeping the last 8 KiB. */
function drain(
  stream: ReadableStream<Uint8Array>,
  onLine?: (l: string) => void,
) {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream) {
      text = (text + decoder.decode(chunk, { stream: true })).slice(-8192);
      if (onLine) { for (const line of text.split("\n")) onLine(line); }
    }
  })();
  return { done, text: () => text };
}

/** A server process that printed `READY <port>`. */
interface RunningServer {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

async function startServer(variant: Variant): Promise<RunningServer> {
  const child = spawn(variant.command, variant.cwd);
  const ready = Promise.withResolvers<number>();
  const out = drain(child.stdout, (line) => {
    const match = line.match(/^READY (\d+)/);
    if (match) ready.resolve(Number(match[1]));
  });
  const err = drain(child.stderr);
  child.status.then(({ code }) =>
    ready.reject(
      new Error(
        `${variant.id} exited with ${code} before listening:\n${err.text()}`,
      ),
    )
  );
  const timer = setTimeout(
    () => ready.reject(new Error(`${variant.id} did not start in 30 s`)),
    30_000,
  );
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await Promise.all([out.done, err.done]);
  };
  try {
    const port = await ready.promise;
    return { pid: child.pid, port, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function runLoad(
  config: Record<string, unknown>,
): Promise<Record<string, number>> {
  const child = spawn([
    ...denoRun,
    new URL("loadgen.ts", BENCH).pathname,
    JSON.stringify(config),
  ]);
  const out = drain(child.stdout);
  const err = drain(child.stderr);
  // No scenario takes a minute; a stuck one must not stall the whole suite.
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const { code } = await child.status;
  clearTimeout(timer);
  await Promise.all([out.done, err.done]);
  const last = out.text().trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("{")) {
    throw new Error(`the load generator failed (${code}):\n${err.text()}`);
  }
  return JSON.parse(last);
}

// ---- measuring -----------------------------------------------------------------------

/** One measurement: a scenario against a variant in one round. */
interface Sample {
  round: number;
  variant: string;
  scenario: string;
  result?: Record<string, number>;
  error?: string;
  /** The first attempt failed with this error; the sample is the second. */
  retried?: string;
  /** Measured twice for the outside load (in cores) of each attempt. */
  remeasured?: { outsideCpu: number[]; kept: "first" | "second" };
  seconds: number;
}

/** Outside load (share of a core) above which a sample is measured again. */
const BUSY = 0.5;
/** Measuring again is bounded: at most one sample in six. */
let remeasures = 0;

async function attempt(variant: Variant, scenario: Scenario) {
  const server = await startServer(variant);
  try {
    return await runLoad({
      ...scenario.config,
      port: server.port,
      serverPid: server.pid,
    });
  } finally {
    await server.stop();
  }
}

async function measure(
  round: number,
  variant: Variant,
  scenario: Scenario,
): Promise<Sample> {
  const start = performance.now();
  const sample: Sample = {
    round,
    variant: variant.id,
    scenario: scenario.id,
    seconds: 0,
  };
  // One retry: a crash must not cost a whole round's ratio.
  for (let attempts = 1;; attempts++) {
    try {
      sample.result = await attempt(variant, scenario);
      break;
    } catch (error) {
      const message = (error as Error).message;
      console.error(
        `bench: ${variant.id}, ${scenario.id}, round ${round + 1}: ${message}`,
      );
      if (attempts === 2) {
        sample.error = message;
        break;
      }
      sample.retried = message.slice(0, 500);
    }
  }
  // Measured while other processes took more than half a core: measured
  // again (once), and the quieter of the two is kept, whichever it is.
  const busy = sample.result?.outsideCpu ?? 0;
  if (busy > BUSY && remeasures > 0) {
    remeasures--;
    try {
      const again = await attempt(variant, scenario);
      const quieter = (again.outsideCpu ?? 0) < busy;
      sample.remeasured = {
        outsideCpu: [busy, again.outsideCpu ?? 0],
        kept: quieter ? "second" : "first",
      };
      if (quieter) sample.result = again;
    } catch (error) {
      console.error(
        `bench: ${variant.id}, ${scenario.id}, round ${
          round + 1
        }, measured again: ${(error as Error).message}`,
      );
    }
  }
  sample.seconds = (performance.now() - start) / 1000;
  return sample;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function valueOf(sample: Sample | undefined, field: string) {
  const value = sample?.result?.[field];
  return typeof value === "number" && Number.isFinite(value)
    ? value
    : undefined;
}

// ---- main ------------------------------------------------------------------------------

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

const versions: Record<string, string> = SAVED?.versions ?? {
  deno: Deno.version.deno,
  v8: Deno.version.v8,
  typescript: Deno.version.typescript,
};
if (SAVED) Object.assign(checkouts, SAVED.libraries);
const list: Variant[] = SAVED
  ? SAVED.variants.map(restored)
  : await variants(versions);

/** A variant as latest.json holds it (older files had only id and command). */
function restored(variant: Variant): Variant {
  if (variant.contender) return variant;
  const [contender, style] = variant.id.split(":") as [string, Style?];
  const labels: Record<string, string> = {
    raw: "raw Deno",
    node: "Node + ws",
    bun: "Bun",
  };
  return {
    ...variant,
    contender,
    label: labels[contender] ?? contender,
    ...(style ? { style } : {}),
  };
}
const onlyScenarios = flags.get("scenarios")?.split(",");
const scenarios: Scenario[] = SAVED?.scenarios ??
  SCENARIOS.filter((s) => !onlyScenarios || onlyScenarios.includes(s.id));
const runsIn = (variant: Variant, scenario: Scenario) =>
  !variant.style || scenario.styles.includes(variant.style);

const started = performance.now();
const loadBefore: number[] = SAVED?.machine.loadAverageBefore ?? loadAverage();
const samples: Sample[] = SAVED?.samples ?? [];
remeasures = Math.ceil(
  ROUNDS * scenarios.reduce(
    (sum, s) => sum + list.filter((v) => runsIn(v, s)).length,
    0,
  ) / 6,
);
for (let round = 0; round < (SAVED ? 0 : ROUNDS); round++) {
  for (const [s, scenario] of scenarios.entries()) {
    // Rotate the order every round and scenario: no variant always goes first.
    const here = list.filter((v) => runsIn(v, scenario));
    const shift = (round * 3 + s) % here.length;
    const order = [...here.slice(shift), ...here.slice(0, shift)];
    for (const variant of order) {
      samples.push(await measure(round, variant, scenario));
    }
  }
  console.error(
    `bench: round ${round + 1}/${ROUNDS} done after ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s (load average ${loadAverage().join(" ")})`,
  );
}
const loadAfter: number[] = SAVED?.machine.loadAverageAfter ?? loadAverage();

/**
 * The Redis fan-out figure of bench/redis_fanout.ts (issue 6), when that
 * script is present and `redis-server` (or `REDIS_URL`) is available.
 */
async function redisFanout(): Promise<Record<string, number> | undefined> {
  const script = new URL("redis_fanout.ts", BENCH);
  if (
    flags.has("no-redis") || QUICK || onlyScenarios || flags.has("only") ||
    !await exists(script)
  ) {
    return undefined;
  }
  console.error("bench: topic fan-out through Redis (bench/redis_fanout.ts)");
  try {
    const { success, stdout, stderr } = await new Deno.Command(denoRun[0]!, {
      args: [...denoRun.slice(1), script.pathname],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(180_000),
    }).output();
    const last = decoder.decode(stdout).trim().split("\n").at(-1) ?? "";
    if (!success || !last.startsWith("{")) {
      console.error(
        `bench: redis fan-out skipped: ${decoder.decode(stderr).slice(-500)}`,
      );
      return undefined;
    }
    return JSON.parse(last);
  } catch (error) {
    console.error(`bench: redis fan-out skipped: ${(error as Error).message}`);
    return undefined;
  }
}
const redis: Record<string, number> | undefined = SAVED
  ? SAVED.redisFanout
  : await redisFanout();

// ---- figures ---------------------------------------------------------------------------

const find = (round: number, variant: string, scenario: string) =>
  samples.find((x) =>
    x.round === round && x.variant === variant && x.scenario === scenario
  );
const metrics = METRICS.filter((m) =>
  scenarios.some((s) => s.id === m.scenario)
);

/** Per variant and metric: the median value and the median per-round ratio. */
const medians: Record<string, Record<string, number>> = {};
const ratios: Record<string, Record<string, number>> = {};
for (const variant of list) {
  medians[variant.id] = {};
  ratios[variant.id] = {};
  for (const metric of metrics) {
    const values: number[] = [];
    const roundRatios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const value = valueOf(
        find(round, variant.id, metric.scenario),
        metric.field,
      );
      if (value === undefined) continue;
      values.push(value);
      const raw = valueOf(find(round, "raw", metric.scenario), metric.field);
      if (raw) roundRatios.push(value / raw);
    }
    const m = median(values);
    if (m !== undefined) medians[variant.id]![metric.id] = m;
    const r = median(roundRatios);
    if (r !== undefined) ratios[variant.id]![metric.id] = r;
  }
}

/** Per scenario and variant: median CPU shares of server, loadgen, outside. */
const shares: Record<string, Record<string, Record<string, number>>> = {};
for (const scenario of scenarios) {
  shares[scenario.id] = {};
  for (const variant of list.filter((v) => runsIn(v, scenario))) {
    const of = (field: string) =>
      median(
        samples.filter((x) =>
          x.variant === variant.id && x.scenario === scenario.id
        ).map((x) => valueOf(x, field)).filter((v): v is number =>
          v !== undefined
        ),
      );
    const entry: Record<string, number> = {};
    for (const field of ["serverCpu", "loadgenCpu", "outsideCpu"]) {
      const value = of(field);
      if (value !== undefined) entry[field] = value;
    }
    shares[scenario.id]![variant.id] = entry;
  }
}
const outside = samples.map((x) => valueOf(x, "outsideCpu")).filter((
  v,
): v is number => v !== undefined);
const outsideSummary = {
  median: median(outside) ?? 0,
  max: Math.max(0, ...outside),
  /** Samples during which other processes used more than a quarter core. */
  busySamples: outside.filter((v) => v > 0.25).length,
  samples: outside.length,
  /** Samples measured again for an outside load above BUSY. */
  remeasured: samples.filter((x) => x.remeasured).length,
  failed: samples.filter((x) => x.error).length,
};

// ---- goals (issue 14) ------------------------------------------------------------------

/** A goal of issue 14: what the issue measured, and how to judge a run. */
interface Goal {
  label: string;
  /** "anyws today" as issue 14 measured it. */
  today: string;
  goal: string;
  /** This run's figure for an anyws contender, and whether it meets the goal. */
  judge(contender: string): { figure: string; met: boolean } | undefined;
}

const times = (r: number) => `${r.toFixed(2)}×`;
const ratioOf = (contender: string, style: Style, id: string) =>
  ratios[`${contender}:${style}`]?.[id];
const medianOf = (contender: string, id: string) =>
  medians[contender === "raw" ? "raw" : `${contender}:perl`]?.[id];

function echoGoal(style: Style, today: string, limit: number): Goal {
  return {
    label: `Echo 64 B / 16 KiB, ${STYLE_LABELS[style]}: CPU per round trip`,
    today,
    goal: `≤ ${limit.toFixed(2)}×`,
    judge(contender) {
      const small = ratioOf(contender, style, "echo64Cpu");
      const large = ratioOf(contender, style, "echo16kCpu");
      if (small === undefined || large === undefined) return undefined;
      return {
        figure: `${times(small)} / ${times(large)}`,
        met: small <= limit && large <= limit,
      };
    },
  };
}

const GOALS: Goal[] = [
  echoGoal("perl", "1.01× / 1.00×", 1.03),
  echoGoal("dom", "1.11× / 1.13×", 1.05),
  echoGoal("iter", "1.09× / 1.29×", 1.05),
  {
    label: "Server CPU per handshake",
    today: "1.65× (265 vs 155 µs; 0.70× handshakes/s)",
    goal: "≤ 1.15× (≥ 0.9× handshakes/s)",
    judge(contender) {
      const cpu = ratioOf(contender, "perl", "handshakeCpu");
      const rate = ratioOf(contender, "perl", "handshakes");
      const mine = medianOf(contender, "handshakeCpu");
      const raw = medianOf("raw", "handshakeCpu");
      if (cpu === undefined || rate === undefined || !mine || !raw) {
        return undefined;
      }
      return {
        figure: `${times(cpu)} (${mine.toFixed(0)} vs ${raw.toFixed(0)} µs; ${
          times(rate)
        } handshakes/s)`,
        met: cpu <= 1.15 && rate >= 0.9,
      };
    },
  },
  {
    label: "Server CPU per close handshake",
    today: "1.30×",
    goal: "≤ 1.10×",
    judge(contender) {
      const cpu = ratioOf(contender, "perl", "closeCpu");
      const mine = medianOf(contender, "closeCpu");
      const raw = medianOf("raw", "closeCpu");
      if (cpu === undefined || !mine || !raw) return undefined;
      return {
        figure: `${times(cpu)} (${mine.toFixed(1)} vs ${raw.toFixed(1)} µs)`,
        met: cpu <= 1.1,
      };
    },
  },
  {
    label: `JS heap per idle connection (${IDLE_LABEL})`,
    today: "8.5 vs 5.0 KiB",
    goal: "≤ raw + 1 KiB",
    judge(contender) {
      const mine = medianOf(contender, "heap10k");
      const raw = medianOf("raw", "heap10k");
      if (mine === undefined || raw === undefined) return undefined;
      return {
        figure: `${(mine / 1024).toFixed(1)} vs ${(raw / 1024).toFixed(1)} KiB`,
        met: mine <= raw + 1024,
      };
    },
  },
  {
    label: `RSS per idle connection (${IDLE_LABEL})`,
    today: "22.3 vs 18.4 KiB (1.21×; at 19 000)",
    goal: "≤ 1.08×",
    judge(contender) {
      const r = ratioOf(contender, "perl", "rss10k");
      const mine = medianOf(contender, "rss10k");
      const raw = medianOf("raw", "rss10k");
      if (r === undefined || !mine || !raw) return undefined;
      return {
        figure: `${(mine / 1024).toFixed(1)} vs ${
          (raw / 1024).toFixed(1)
        } KiB (${times(r)})`,
        met: r <= 1.08,
      };
    },
  },
  {
    label: `Broadcast send loop (${IDLE_LABEL} recipients)`,
    today: "1.43× a raw loop",
    goal: "≤ 1.10×",
    judge(contender) {
      const r = ratioOf(contender, "perl", "fanout10kLoop");
      return r === undefined ? undefined : { figure: times(r), met: r <= 1.1 };
    },
  },
];

/** The anyws contenders of this run. */
const ANYWS = ["anyws-before", "anyws"].filter((c) =>
  list.some((v) => v.contender === c)
);

/** Each goal judged for every anyws contender of the run (for the JSON). */
function targets() {
  return GOALS.map((goal) => ({
    label: goal.label,
    today: goal.today,
    goal: goal.goal,
    ...Object.fromEntries(ANYWS.map((c) => [c, goal.judge(c) ?? null])),
  }));
}

/** The goals as a table: issue 14's figure, this run's, the goal. */
function goalsTable(): string[] {
  const mark = (judged: { figure: string; met: boolean } | undefined) =>
    judged ? `${judged.figure}${judged.met ? " ✓" : ""}` : "not measured";
  return [
    `| Scenario (ratio to raw Deno) | anyws today (issue 14) | ${
      ANYWS.map((c) => `${c} (this run)`).join(" | ")
    } | Goal |`,
    `| --- | ---: | ${ANYWS.map(() => "---:").join(" | ")} | ---: |`,
    ...GOALS.map((goal) =>
      `| ${goal.label} | ${goal.today} | ${
        ANYWS.map((c) => mark(goal.judge(c))).join(" | ")
      } | ${goal.goal} |`
    ),
  ];
}

// ---- output ------------------------------------------------------------------------------

function format(metric: Metric, value: number | undefined): string {
  if (value === undefined) return "–";
  const scaled = value * (metric.scale ?? 1);
  return scaled.toLocaleString("en-US", {
    maximumFractionDigits: metric.digits ?? 0,
    minimumFractionDigits: metric.digits ?? 0,
  });
}

/** The columns: one per contender, in this order. */
const COLUMNS = ["raw", "anyws-before", "anyws", "node", "bun"].filter((c) =>
  list.some((v) => v.contender === c)
);
const COLUMN_LABELS: Record<string, string> = {
  raw: "raw Deno",
  "anyws-before": "anyws-before",
  anyws: "anyws",
  node: "Node + ws",
  bun: "Bun",
};

function cell(variantId: string, metric: Metric): string {
  const value = format(metric, medians[variantId]?.[metric.id]);
  const ratio = ratios[variantId]?.[metric.id];
  return variantId === "raw" || ratio === undefined
    ? value
    : `${value} (${ratio.toFixed(2)}×)`;
}

function figuresTable(): string[] {
  const head = `| Scenario | anyws style | Unit | ${
    COLUMNS.map((c) => COLUMN_LABELS[c]).join(" | ")
  } |`;
  const rule = `| --- | --- | --- | ${COLUMNS.map(() => "---:").join(" | ")} |`;
  const rows: string[] = [];
  for (const metric of metrics) {
    const scenario = scenarios.find((s) => s.id === metric.scenario)!;
    const styles = STYLES.filter((s) =>
      scenario.styles.includes(s) && list.some((v) => v.style === s)
    );
    for (const [i, style] of styles.entries()) {
      const cells = COLUMNS.map((c) => {
        if (c === "anyws" || c === "anyws-before") {
          return cell(`${c}:${style}`, metric);
        }
        // One style only: shown on the first row of the metric.
        return i === 0 ? cell(c, metric) : "";
      });
      rows.push(
        `| ${i === 0 ? metric.label : ""} | ${
          STYLE_LABELS[style]
        } | ${metric.unit} | ${cells.join(" | ")} |`,
      );
    }
  }
  return [head, rule, ...rows];
}

function sharesTable(): string[] {
  const head = `| Scenario | ${
    list.map((v) => v.style ? `${v.label} ${v.style}` : v.label).join(" | ")
  } |`;
  const rule = `| --- | ${list.map(() => "---:").join(" | ")} |`;
  const pct = (v?: number) => v === undefined ? "–" : `${(v * 100).toFixed(0)}`;
  const rows = scenarios.map((s) =>
    `| ${s.id} | ${
      list.map((v) => {
        const share = shares[s.id]?.[v.id];
        return share
          ? `${pct(share.serverCpu)} / ${pct(share.loadgenCpu)} / ${
            pct(share.outsideCpu)
          }`
          : "";
      }).join(" | ")
    } |`
  );
  return [head, rule, ...rows];
}

function markdown(): string {
  return [
    "**Goals of issue 14** (ratios to raw Deno measured in the same round; the",
    '`on("message")` style unless named; ✓ = met):',
    "",
    ...goalsTable(),
    "",
    "**Every figure.** Medians over the rounds; (n×) is the median of the per-round",
    "ratios value / raw Deno's value: below 1 is cheaper for µs and KiB, above 1 is",
    "faster for rates. Node + ws and Bun have one style, shown on its first row.",
    "",
    ...figuresTable(),
    "",
    "**CPU used during the measured windows**, in % of one core: server / load",
    "generator / outside load (other processes on the machine, over the whole",
    "scenario):",
    "",
    ...sharesTable(),
    ...(redis
      ? [
        "",
        `Topic fan-out through Redis across two processes (bench/redis_fanout.ts, anyws only): ${redis.messages} messages × ${redis.subscribers} subscribers, ${redis.size} B: ${
          Math.round(redis.redisDeliveriesPerSecond! / 1000)
        }k deliveries/s via Redis vs ${
          Math.round(redis.localDeliveriesPerSecond! / 1000)
        }k in one process (ratio ${redis.ratio}).`,
      ]
      : []),
  ].join("\n");
}

const seconds: number = SAVED?.seconds ??
  (performance.now() - started) / 1000;
const date: string = SAVED?.date ?? new Date().toISOString();
const command: string = SAVED?.command ??
  `deno task bench${Deno.args.length ? ` ${Deno.args.join(" ")}` : ""}`;
const cpuInfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
const machine = SAVED?.machine ?? {
  os: `${Deno.build.os} ${Deno.build.arch}`,
  cpus: navigator.hardwareConcurrency,
  model: cpuInfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
  loadAverageBefore: loadBefore,
  loadAverageAfter: loadAfter,
};
const libraries = Object.entries(checkouts).map(([id, c]) =>
  `${id} = ${relative(ROOT.pathname, c.path) || "."} (${c.commit})`
);
const summary = [
  `Deno ${versions.deno}${
    versions.node ? `, Node ${versions.node} + ws ${versions.ws}` : ""
  }${
    versions.bun ? `, Bun ${versions.bun}` : ""
  }; ${machine.cpus} × ${machine.model}; ${ROUNDS} round(s)${
    QUICK ? " (--quick)" : ""
  }, ${seconds.toFixed(0)} s; ${libraries.join(", ")}.`,
  `Load average ${loadBefore.join(" ")} before, ${
    loadAfter.join(" ")
  } after; outside load during the scenarios: median ${
    (outsideSummary.median * 100).toFixed(0)
  }%, max ${
    (outsideSummary.max * 100).toFixed(0)
  }% of a core, above 25% in ${outsideSummary.busySamples} of ${outsideSummary.samples} samples (${outsideSummary.remeasured} measured again above ${
    BUSY * 100
  }%); ${outsideSummary.failed} failed.`,
].join("\n");

console.log(`\n${summary}\n\n${markdown()}\n`);

await Deno.mkdir(RESULTS, { recursive: true });
const written = [
  new URL("latest.md", RESULTS),
  new URL("latest.svg", RESULTS),
];
if (!SAVED) {
  written.unshift(new URL("latest.json", RESULTS));
  await Deno.writeTextFile(
    new URL("latest.json", RESULTS),
    JSON.stringify(
      {
        date,
        command,
        seconds,
        machine,
        versions,
        libraries: checkouts,
        rounds: ROUNDS,
        quick: QUICK,
        variants: list.map((variant) => ({
          ...variant,
          command: variant.command.map((part) =>
            part.replace(ROOT.pathname, "")
          ),
        })),
        scenarios,
        metrics: metrics.map((
          { id, label, unit, lowerIsBetter, field, scenario },
        ) => ({
          id,
          label,
          unit,
          lowerIsBetter,
          scenario,
          field,
        })),
        medians,
        ratios,
        cpuShares: shares,
        outsideLoad: outsideSummary,
        ...(redis ? { redisFanout: redis } : {}),
        targets: targets(),
        samples,
      },
      null,
      2,
    ) + "\n",
  );
}
await Deno.writeTextFile(
  new URL("latest.md", RESULTS),
  `${summary}\n\n${markdown()}\n`,
);

// The chart: anyws against raw Deno (Node and Bun are in the tables), each
// style's before and current bars side by side, light and dark.
const CHART_STYLES: Record<Style, string> = {
  perl: 'on("message")',
  dom: "addEventListener",
  iter: "for await",
};
const SHADES: Record<string, string[]> = {
  "anyws-before": ["#9bb9ee", "#f0c08f", "#9fd3b0"],
  anyws: ["#2f6fdb", "#e0832f", "#2e8b57"],
};
const seriesColors: Record<string, string> = {};
const chartSeries = STYLES.flatMap((style) =>
  list.filter((v) => v.style === style).map((v) => {
    const name = `${v.label} ${CHART_STYLES[style]}`;
    seriesColors[name] = SHADES[v.contender]![STYLES.indexOf(style)]!;
    return { variant: v, name };
  })
);
await Deno.writeTextFile(
  new URL("latest.svg", RESULTS),
  renderChart({
    title:
      `anyws: server cost relative to raw Deno (= 1, lower is better) — Deno ${versions.deno}`,
    colors: seriesColors,
    groups: metrics.filter((m) => m.chart).map((m) => {
      const scenario = scenarios.find((s) => s.id === m.scenario)!;
      return {
        label: m.label,
        bars: chartSeries.filter(({ variant }) => runsIn(variant, scenario))
          .map(({ variant, name }) => ({
            series: name,
            value: ratios[variant.id]?.[m.id],
          })),
      };
    }),
  }),
);
// --docs: the published report (docs/performance.md, between its markers,
// and docs/performance.svg) is regenerated from this run.
if (flags.has("docs")) {
  const page = new URL("docs/performance.md", ROOT);
  const chart = new URL("docs/performance.svg", ROOT);
  const BEGIN =
    "<!-- bench:begin (deno task bench --docs writes this part) -->";
  const END = "<!-- bench:end -->";
  const text = await Deno.readTextFile(page);
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  if (from < 0 || to < from) {
    throw new Error(`bench: docs/performance.md lacks the ${BEGIN} markers`);
  }
  await Deno.writeTextFile(
    page,
    `${text.slice(0, from + BEGIN.length)}\n\n\`${command}\` on ${
      date.slice(0, 16).replace("T", " ")
    } UTC.\n\n${summary}\n\n${markdown()}\n\n${text.slice(to)}`,
  );
  await Deno.copyFile(new URL("latest.svg", RESULTS), chart);
  written.push(page, chart);
}

// In deno fmt's layout, so that `deno task test` (fmt --check) stays clean.
await new Deno.Command(Deno.execPath(), {
  args: ["fmt", "--quiet", ...written.map((url) => url.pathname)],
  cwd: ROOT,
}).output();
console.error(
  `bench: wrote ${
    written.map((url) => url.pathname.replace(ROOT.pathname, "")).join(", ")
  }`,
);
