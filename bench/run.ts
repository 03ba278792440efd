/**
 * `deno task bench`: runs every scenario against every contender (raw Deno,
 * anyws, Node + ws, Bun), each server in its own process, with the same load
 * generator (bench/loadgen.ts) in another. Contenders alternate within each
 * run; figures are medians over the runs, and ratios to raw Deno are medians
 * of the ratios measured within the same run.
 *
 * ```sh
 * deno task bench            # full: 5 runs, about 5 minutes
 * deno task bench --quick    # 1 short run, about 1 minute
 * deno task bench --runs=3 --only=raw,anyws --scenarios=echo64,latency
 * ```
 *
 * Writes bench/results/latest.json (every figure, versions), latest.svg (a
 * chart of the ratios) and latest.md (the table, as in the README).
 *
 * @module
 */

import { renderChart } from "./chart.ts";

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
    "usage: deno task bench [--quick] [--runs=N] [--only=raw,anyws,node,bun]" +
      " [--scenarios=echo64,echo16k,latency,fanout1k,fanout10k,setup]",
  );
  Deno.exit(0);
}
const QUICK = flags.has("quick");
const RUNS = Number(flags.get("runs") ?? (QUICK ? 1 : 5));

// ---- scenarios -------------------------------------------------------------------

/** One scenario: the load generator's configuration without port and pid. */
interface Scenario {
  id: string;
  config: Record<string, unknown>;
}

const SCENARIOS: Scenario[] = [
  {
    id: "echo64",
    config: {
      scenario: "echo",
      size: 64,
      connections: 100,
      pipeline: 16,
      // Servers start fresh per scenario: give the JIT time before measuring.
      warmup: QUICK ? 1 : 1.5,
      duration: QUICK ? 1.5 : 3,
    },
  },
  {
    id: "echo16k",
    config: {
      scenario: "echo",
      size: 16384,
      connections: 100,
      pipeline: 16,
      warmup: QUICK ? 1 : 1.5,
      duration: QUICK ? 1.5 : 3,
    },
  },
  {
    id: "latency",
    config: {
      scenario: "latency",
      size: 1024,
      warmupTrips: 3000, // the JIT must have optimized the path measured
      trips: QUICK ? 2000 : 5000,
    },
  },
  {
    id: "fanout1k",
    config: { scenario: "fanout", connections: 1000, broadcasts: 10 },
  },
  {
    id: "fanout10k",
    config: {
      scenario: "fanout",
      connections: 10000,
      broadcasts: QUICK ? 3 : 5,
      memory: true,
    },
  },
  {
    id: "setup",
    config: {
      scenario: "setup",
      connections: QUICK ? 1000 : 2000,
      concurrency: 50,
    },
  },
];

/** A figure of the table: where it comes from, and which way is better. */
interface Metric {
  id: string;
  label: string;
  scenario: string;
  field: string;
  unit: string;
  higherIsBetter: boolean;
  scale?: number;
  digits?: number;
}

const METRICS: Metric[] = [
  {
    id: "echo64",
    label: "Echo 64 B, 100 conns",
    scenario: "echo64",
    field: "roundTripsPerSecond",
    unit: "round trips/s",
    higherIsBetter: true,
  },
  {
    id: "echo16k",
    label: "Echo 16 KiB, 100 conns",
    scenario: "echo16k",
    field: "roundTripsPerSecond",
    unit: "round trips/s",
    higherIsBetter: true,
  },
  {
    id: "echo64Cpu",
    label: "Echo 64 B: server CPU per round trip",
    scenario: "echo64",
    field: "serverCpuMicros",
    unit: "µs",
    higherIsBetter: false,
    digits: 2,
  },
  {
    id: "echo16kCpu",
    label: "Echo 16 KiB: server CPU per round trip",
    scenario: "echo16k",
    field: "serverCpuMicros",
    unit: "µs",
    higherIsBetter: false,
    digits: 2,
  },
  {
    id: "latencyP50",
    label: "Latency p50, 1 KiB",
    scenario: "latency",
    field: "p50Micros",
    unit: "µs",
    higherIsBetter: false,
  },
  {
    id: "latencyP99",
    label: "Latency p99, 1 KiB",
    scenario: "latency",
    field: "p99Micros",
    unit: "µs",
    higherIsBetter: false,
  },
  {
    id: "fanout1kMs",
    label: "Broadcast to 1 000: all received",
    scenario: "fanout1k",
    field: "allReceivedMs",
    unit: "ms",
    higherIsBetter: false,
    digits: 1,
  },
  {
    id: "fanout1k",
    label: "Broadcast to 1 000",
    scenario: "fanout1k",
    field: "messagesPerSecond",
    unit: "messages/s",
    higherIsBetter: true,
  },
  {
    id: "fanout10kMs",
    label: "Broadcast to 10 000: all received",
    scenario: "fanout10k",
    field: "allReceivedMs",
    unit: "ms",
    higherIsBetter: false,
    digits: 1,
  },
  {
    id: "fanout10k",
    label: "Broadcast to 10 000",
    scenario: "fanout10k",
    field: "messagesPerSecond",
    unit: "messages/s",
    higherIsBetter: true,
  },
  {
    id: "fanout10kCpu",
    label: "Broadcast to 10 000: server CPU per message",
    scenario: "fanout10k",
    field: "serverCpuMicros",
    unit: "µs",
    higherIsBetter: false,
    digits: 2,
  },
  {
    id: "setup",
    label: "Connection setup",
    scenario: "setup",
    field: "handshakesPerSecond",
    unit: "handshakes/s",
    higherIsBetter: true,
  },
  {
    id: "teardown",
    label: "Connection teardown",
    scenario: "setup",
    field: "closesPerSecond",
    unit: "closes/s",
    higherIsBetter: true,
  },
  {
    id: "memory",
    label: "Memory per idle connection",
    scenario: "fanout10k",
    field: "bytesPerConnection",
    unit: "KiB",
    higherIsBetter: false,
    scale: 1 / 1024,
    digits: 1,
  },
  {
    id: "heap",
    label: "JS heap per idle connection",
    scenario: "fanout10k",
    field: "heapBytesPerConnection",
    unit: "KiB",
    higherIsBetter: false,
    scale: 1 / 1024,
    digits: 1,
  },
];

// ---- contenders --------------------------------------------------------------------

/** A server under test. */
interface Contender {
  id: string;
  label: string;
  command: string[];
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

async function version(command: string[]): Promise<string | undefined> {
  try {
    const { success, stdout } = await new Deno.Command(command[0]!, {
      args: command.slice(1),
      stdout: "piped",
      stderr: "null",
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
    const found = await version([path, "--version"]);
    if (found) return { path, version: found };
  }
  return null;
}

async function contenders(versions: Record<string, string>) {
  const servers = (name: string) => new URL(`servers/${name}`, BENCH).pathname;
  const list: Contender[] = [
    {
      id: "raw",
      label: "raw Deno",
      command: [
        ...denoRun,
        "--v8-flags=--expose-gc",
        servers("raw_deno.ts"),
      ],
    },
    {
      id: "anyws",
      label: "anyws",
      command: [...denoRun, "--v8-flags=--expose-gc", servers("anyws.ts")],
    },
  ];
  const peers = await installPeers();
  const node = await version(["node", "--version"]);
  if (peers && node) {
    versions.node = node;
    const ws = JSON.parse(
      await Deno.readTextFile(new URL("node_modules/ws/package.json", PEERS)),
    );
    versions.ws = ws.version;
    list.push({
      id: "node",
      label: "Node + ws",
      command: ["node", "--expose-gc", servers("node_ws.mjs")],
    });
  } else {
    console.error("bench: Node + ws skipped (no node, or npm ci failed)");
  }
  const bun = peers ? await findBun() : null;
  if (bun) {
    versions.bun = bun.version;
    list.push({
      id: "bun",
      label: "Bun",
      command: [bun.path, servers("bun.js")],
    });
  } else {
    console.error("bench: Bun skipped (no runnable bun binary in bench/peers)");
  }
  const only = flags.get("only")?.split(",");
  return only ? list.filter((c) => only.includes(c.id)) : list;
}

// ---- processes ---------------------------------------------------------------------

/**
 * Spawns through `sh` to raise the open-files limit to the hard limit first
 * (10 000 connections need 10 000 descriptors on each side); `exec` keeps
 * the pid, so /proc/<pid> is the program itself.
 */
function spawn(command: string[]): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      "sh",
      ...command,
    ],
    cwd: ROOT,
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

async function startServer(contender: Contender): Promise<RunningServer> {
  const child = spawn(contender.command);
  const ready = Promise.withResolvers<number>();
  const out = drain(child.stdout, (line) => {
    const match = line.match(/^READY (\d+)/);
    if (match) ready.resolve(Number(match[1]));
  });
  const err = drain(child.stderr);
  child.status.then(({ code }) =>
    ready.reject(
      new Error(
        `${contender.label} exited with ${code} before listening:\n${err.text()}`,
      ),
    )
  );
  const timer = setTimeout(
    () => ready.reject(new Error(`${contender.label} did not start in 30 s`)),
    30_000,
  );
  try {
    const port = await ready.promise;
    return {
      pid: child.pid,
      port,
      async stop() {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
        await child.status;
        await Promise.all([out.done, err.done]);
      },
    };
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
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
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
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

/** One measurement: a scenario against a contender in one run. */
interface Sample {
  run: number;
  contender: string;
  scenario: string;
  result?: Record<string, number>;
  error?: string;
}

async function measure(
  run: number,
  contender: Contender,
  scenario: Scenario,
): Promise<Sample> {
  const sample: Sample = {
    run,
    contender: contender.id,
    scenario: scenario.id,
  };
  let server: RunningServer | undefined;
  try {
    server = await startServer(contender);
    sample.result = await runLoad({
      ...scenario.config,
      port: server.port,
      serverPid: server.pid,
    });
  } catch (error) {
    sample.error = (error as Error).message;
    console.error(
      `bench: ${contender.label}, ${scenario.id}, run ${
        run + 1
      }: ${sample.error}`,
    );
  } finally {
    await server?.stop();
  }
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

function valueOf(sample: Sample | undefined, metric: Metric) {
  const value = sample?.result?.[metric.field];
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

async function hardFileLimit(): Promise<number> {
  const limit = await version(["sh", "-c", "ulimit -Hn"]);
  return limit === "unlimited" ? Infinity : Number(limit ?? 1024);
}

const versions: Record<string, string> = {
  deno: Deno.version.deno,
  v8: Deno.version.v8,
  typescript: Deno.version.typescript,
};
const list = await contenders(versions);
const onlyScenarios = flags.get("scenarios")?.split(",");
const scenarios = SCENARIOS.filter((s) =>
  !onlyScenarios || onlyScenarios.includes(s.id)
);

const limit = await hardFileLimit();
for (const scenario of scenarios) {
  const wanted = scenario.config.connections as number | undefined;
  if (wanted && wanted + 200 > limit) {
    console.error(
      `bench: ${scenario.id}: the open-files hard limit is ${limit}; using ${
        limit - 200
      } connections instead of ${wanted} (raise it with ulimit -Hn as root)`,
    );
    scenario.config.connections = limit - 200;
  }
}

const started = performance.now();
const samples: Sample[] = [];
for (let run = 0; run < RUNS; run++) {
  for (const [s, scenario] of scenarios.entries()) {
    // Rotate the order every run and scenario, so no contender always goes first.
    const shift = (run + s) % list.length;
    const order = [...list.slice(shift), ...list.slice(0, shift)];
    for (const contender of order) {
      samples.push(await measure(run, contender, scenario));
    }
  }
  console.error(
    `bench: run ${run + 1}/${RUNS} done after ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s`,
  );
}

/**
 * The Redis fan-out figure of bench/redis_fanout.ts (issue 6), when that
 * script is present and `redis-server` (or `REDIS_URL`) is available.
 */
async function redisFanout(): Promise<Record<string, number> | undefined> {
  const script = new URL("redis_fanout.ts", BENCH);
  if (flags.has("no-redis") || onlyScenarios || !await exists(script)) {
    return undefined;
  }
  console.error("bench: topic fan-out through Redis (bench/redis_fanout.ts)");
  try {
    const { success, stdout, stderr } = await new Deno.Command(denoRun[0]!, {
      args: [
        ...denoRun.slice(1),
        script.pathname,
        ...(QUICK ? ["--runs=1"] : []),
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(300_000),
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
const redis = await redisFanout();

const find = (run: number, contender: string, scenario: string) =>
  samples.find((x) =>
    x.run === run && x.contender === contender && x.scenario === scenario
  );
const metrics = METRICS.filter((m) =>
  scenarios.some((s) => s.id === m.scenario)
);

/** Medians per contender and metric, and per-run ratios to raw Deno. */
const medians: Record<string, Record<string, number>> = {};
const ratios: Record<string, Record<string, number>> = {};
const cpu: Record<
  string,
  Record<string, { loadgen?: number; server?: number }>
> = {};
for (const contender of list) {
  medians[contender.id] = {};
  ratios[contender.id] = {};
  cpu[contender.id] = {};
  for (const metric of metrics) {
    const values: number[] = [];
    const runRatios: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const value = valueOf(find(run, contender.id, metric.scenario), metric);
      if (value === undefined) continue;
      values.push(value);
      const raw = valueOf(find(run, "raw", metric.scenario), metric);
      if (raw) {
        // Relative performance: above 1 is better than raw Deno.
        runRatios.push(metric.higherIsBetter ? value / raw : raw / value);
      }
    }
    const m = median(values);
    if (m !== undefined) medians[contender.id]![metric.id] = m;
    const r = median(runRatios);
    if (r !== undefined) ratios[contender.id]![metric.id] = r;
  }
  for (const scenario of scenarios) {
    const of = (field: string) =>
      median(
        samples.filter((x) =>
          x.contender === contender.id && x.scenario === scenario.id
        ).map((x) => x.result?.[field]).filter((v): v is number =>
          typeof v === "number"
        ),
      );
    const loadgen = of("loadgenCpu");
    const server = of("serverCpu");
    cpu[contender.id]![scenario.id] = {
      ...(loadgen === undefined ? {} : { loadgen }),
      ...(server === undefined ? {} : { server }),
    };
  }
}

// ---- targets ---------------------------------------------------------------------------

interface Target {
  target: string;
  met: boolean | null;
  figure: string;
}

function targets(): Target[] {
  const a = medians.anyws ?? {};
  const raw = medians.raw ?? {};
  const node = medians.node;
  const r = ratios.anyws ?? {};
  const out: Target[] = [];
  const ratio = (id: string, min: number, text: string) => {
    const v = r[id];
    out.push({
      target: text,
      met: v === undefined ? null : v >= min,
      figure: v === undefined ? "not measured" : `${v.toFixed(3)}× raw Deno`,
    });
  };
  ratio("echo64", 0.95, "echo throughput 64 B ≥ 0.95× raw Deno");
  ratio("echo16k", 0.95, "echo throughput 16 KiB ≥ 0.95× raw Deno");
  if (a.latencyP50 !== undefined && raw.latencyP50 !== undefined) {
    const rel = a.latencyP50 / raw.latencyP50;
    out.push({
      target: "latency p50 within 5% of raw Deno",
      met: rel <= 1.05,
      figure: `${a.latencyP50.toFixed(0)} µs vs ${
        raw.latencyP50.toFixed(0)
      } µs (${((rel - 1) * 100).toFixed(1)}%)`,
    });
  }
  ratio("fanout10k", 0.95, "broadcast to 10 000 ≥ 0.95× a raw loop");
  if (a.memory !== undefined && raw.memory !== undefined) {
    out.push({
      target: "memory per idle connection ≤ raw Deno + 1 KiB",
      met: a.memory <= raw.memory + 1024,
      figure: `${(a.memory / 1024).toFixed(1)} KiB vs ${
        (raw.memory / 1024).toFixed(1)
      } KiB (${((a.memory - raw.memory) / 1024).toFixed(1)} KiB)`,
    });
  }
  if (node) {
    for (const id of ["echo64", "echo16k", "fanout1k", "fanout10k"]) {
      if (a[id] === undefined || node[id] === undefined) continue;
      out.push({
        target: `anyws ahead of Node ws: ${id}`,
        met: a[id]! > node[id]!,
        figure: `${a[id]!.toFixed(0)} vs ${node[id]!.toFixed(0)} (${
          (a[id]! / node[id]!).toFixed(2)
        }×)`,
      });
    }
  }
  return out;
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

function markdownTable(): string {
  const head = `| Scenario | Unit | ${list.map((c) => c.label).join(" | ")} |`;
  const rule = `| --- | --- | ${list.map(() => "---:").join(" | ")} |`;
  const rows = metrics.map((metric) => {
    const cells = list.map((c) => {
      const value = format(metric, medians[c.id]?.[metric.id]);
      const ratio = ratios[c.id]?.[metric.id];
      return c.id === "raw" || ratio === undefined
        ? value
        : `${value} (${ratio.toFixed(2)}×)`;
    });
    return `| ${metric.label} | ${metric.unit} | ${cells.join(" | ")} |`;
  });
  const cpuHead = `| Scenario | ${
    list.map((c) => `${c.label}: load gen / server`).join(" | ")
  } |`;
  const cpuRule = `| --- | ${list.map(() => "---:").join(" | ")} |`;
  const cpuRows = scenarios.map((s) =>
    `| ${s.id} | ${
      list.map((c) => {
        const share = cpu[c.id]?.[s.id];
        const pct = (v?: number) =>
          v === undefined ? "–" : `${(v * 100).toFixed(0)}%`;
        return `${pct(share?.loadgen)} / ${pct(share?.server)}`;
      }).join(" | ")
    } |`
  );
  const targetRows = targets().map((t) =>
    `| ${t.target} | ${
      t.met === null ? "not measured" : t.met ? "met" : "**missed**"
    } | ${t.figure} |`
  );
  return [
    head,
    rule,
    ...rows,
    "",
    "CPU time used during the measured windows, as a share of one core:",
    "",
    cpuHead,
    cpuRule,
    ...cpuRows,
    "",
    ...(redis
      ? [
        `Topic fan-out through Redis across two processes (bench/redis_fanout.ts, anyws only): ${redis.messages} messages × ${redis.subscribers} subscribers, ${redis.size} B: ${
          Math.round(redis.redisDeliveriesPerSecond! / 1000)
        }k deliveries/s via Redis vs ${
          Math.round(redis.localDeliveriesPerSecond! / 1000)
        }k in one process (ratio ${redis.ratio}).`,
        "",
      ]
      : []),
    "| Target | Result | Figure |",
    "| --- | --- | --- |",
    ...targetRows,
  ].join("\n");
}

const seconds = (performance.now() - started) / 1000;
const cpuInfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
const machine = {
  os: `${Deno.build.os} ${Deno.build.arch}`,
  cpus: navigator.hardwareConcurrency,
  model: cpuInfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
  openFilesHardLimit: limit,
};
const table = markdownTable();
const summary = [
  `Deno ${versions.deno}${
    versions.node ? `, Node ${versions.node} + ws ${versions.ws}` : ""
  }${
    versions.bun ? `, Bun ${versions.bun}` : ""
  }; ${machine.cpus} × ${machine.model}; ${RUNS} run(s)${
    QUICK ? " (--quick)" : ""
  }, ${seconds.toFixed(0)} s.`,
  "Medians over the runs; (n×) is the median of the per-run ratios to raw Deno as relative",
  "performance: above 1 is better than raw Deno, whichever way the unit goes.",
].join("\n");

console.log(`\n${summary}\n\n${table}\n`);

await Deno.mkdir(RESULTS, { recursive: true });
await Deno.writeTextFile(
  new URL("latest.json", RESULTS),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      command: `deno task bench${
        Deno.args.length ? ` ${Deno.args.join(" ")}` : ""
      }`,
      seconds,
      machine,
      versions,
      runs: RUNS,
      quick: QUICK,
      contenders: list.map(({ id, label, command }) => ({
        id,
        label,
        command: command.map((part) => part.replace(ROOT.pathname, "")),
      })),
      scenarios,
      metrics: metrics.map((
        { id, label, unit, higherIsBetter, field, scenario },
      ) => ({
        id,
        label,
        unit,
        higherIsBetter,
        scenario,
        field,
      })),
      medians,
      ratios,
      cpuShare: cpu,
      ...(redis ? { redisFanout: redis } : {}),
      targets: targets(),
      samples,
    },
    null,
    2,
  ) + "\n",
);
await Deno.writeTextFile(
  new URL("latest.md", RESULTS),
  `${summary}\n\n${table}\n`,
);
await Deno.writeTextFile(
  new URL("latest.svg", RESULTS),
  renderChart({
    title:
      `Relative to raw Deno (= 1, higher is better) — Deno ${versions.deno}`,
    groups: metrics.filter((m) => !m.id.endsWith("Ms")).map((m) => ({
      label: m.label,
      bars: list.filter((c) => c.id !== "raw").map((c) => ({
        series: c.label,
        value: ratios[c.id]?.[m.id],
      })),
    })),
  }),
);
// In deno fmt's layout, so that `deno task test` (fmt --check) stays clean.
await new Deno.Command(Deno.execPath(), {
  args: [
    "fmt",
    "--quiet",
    new URL("latest.json", RESULTS).pathname,
    new URL("latest.md", RESULTS).pathname,
    new URL("latest.svg", RESULTS).pathname,
  ],
  cwd: ROOT,
}).output();
console.error(
  "bench: wrote bench/results/latest.json, latest.md and latest.svg",
);
