/**
 * Where a contender's server spends its CPU in one bench scenario: runs the
 * server under `--cpu-prof`, drives it with bench/loadgen.ts, and summarises
 * the V8 profile (self and total time per function, and per source file).
 *
 * ```sh
 * deno run -A tools/with_std.ts run -A bench/profile.ts --scenario=churn --style=perl
 * deno run -A tools/with_std.ts run -A bench/profile.ts --scenario=echo16k --style=iter --lib=../bench-before
 * deno run -A tools/with_std.ts run -A bench/profile.ts --scenario=churn --raw
 * ```
 *
 * Scenarios: echo64, echo16k, churn, open (handshakes only), idle10k (longer
 * than the bench's, for enough samples). Writes the `.cpuprofile` (open it in Chrome DevTools) and
 * a summary `.md` under bench/results/profiles/ (not committed).
 *
 * @module
 */

const BENCH = new URL("./", import.meta.url);
const ROOT = new URL("../", BENCH);
const OUT = new URL("results/profiles/", BENCH);
const decoder = new TextDecoder();

const flags = new Map(
  Deno.args.map((arg) => {
    const [key, value] = arg.replace(/^--/, "").split("=", 2);
    return [key!, value ?? "true"] as const;
  }),
);
const scenario = flags.get("scenario") ?? "churn";
const style = flags.get("style") ?? "perl";
const raw = flags.has("raw");
const lib = (await Deno.realPath(flags.get("lib") ?? ROOT.pathname)).replace(
  /\/?$/,
  "/",
);
const top = Number(flags.get("top") ?? 25);

const CONFIGS: Record<string, Record<string, unknown>> = {
  echo64: {
    scenario: "echo",
    size: 64,
    connections: 100,
    pipeline: 16,
    warmup: 1.5,
    duration: 6,
  },
  echo16k: {
    scenario: "echo",
    size: 16384,
    connections: 100,
    pipeline: 16,
    warmup: 1.5,
    duration: 6,
  },
  churn: {
    scenario: "churn",
    connections: 8000,
    warmupConnections: 1000,
    concurrency: 50,
  },
  // Handshakes only (and one broadcast): the open half of churn.
  open: {
    scenario: "idle",
    connections: 8000,
    warmupConnections: 1000,
    broadcasts: 1,
    windows: 1,
    concurrency: 50,
  },
  idle10k: {
    scenario: "idle",
    connections: 10000,
    warmupConnections: 500,
    broadcasts: 30,
    concurrency: 100,
  },
};
const config = CONFIGS[scenario];
if (!config) throw new TypeError(`Unknown scenario: ${scenario}`);

const name = raw
  ? `raw-${scenario}`
  : `${scenario}-${style}-${
    lib === ROOT.pathname ? "this" : lib.split("/").filter(Boolean).at(-1)
  }`;
const dir = new URL(`${name}/`, OUT);
await Deno.remove(dir, { recursive: true }).catch(() => {});
await Deno.mkdir(dir, { recursive: true });

const denoRun = [
  "run",
  "-A",
  "--no-check",
  ...(Deno.env.get("JSR_URL") ? ["--no-lock"] : []),
];
const serverArgs = [
  ...denoRun,
  "--cpu-prof",
  `--cpu-prof-dir=${dir.pathname}`,
  "--v8-flags=--expose-gc",
  ...(raw ? [new URL("servers/raw_deno.ts", BENCH).pathname] : [
    "--config",
    `${lib}deno.json`,
    new URL("servers/anyws.ts", BENCH).pathname,
    style,
    lib,
  ]),
];

function spawn(args: string[], cwd: string): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -Hn 200000 2>/dev/null; ulimit -n "$(ulimit -Hn)"; exec "$@"',
      "sh",
      Deno.execPath(),
      ...args,
    ],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

const spawnedAt = performance.now();
const server = spawn(serverArgs, raw ? ROOT.pathname : lib);
const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
let text = "";
while (!/READY (\d+)/.test(text)) {
  const { value, done } = await reader.read();
  if (done) throw new Error("The server exited before listening");
  text += value;
}
const port = Number(/READY (\d+)/.exec(text)![1]);
// Startup and the load generator's warm-up (module loading, the JIT) are
// left out of the summary, as the bench measures after its warm-up too.
const skipSeconds = Number(
  flags.get("skip") ??
    (performance.now() - spawnedAt) / 1000 +
      Number(config.warmup ?? 1) + 0.2,
);
// --syscalls: the server's system calls during the load, from perf's
// syscall tracepoints (counts only; needs perf and tracefs).
const SYSCALLS = [
  "sendto",
  "sendmsg",
  "write",
  "writev",
  "recvfrom",
  "recvmsg",
  "read",
  "readv",
  "epoll_wait",
  "epoll_pwait",
];
const perf = flags.has("syscalls")
  ? new Deno.Command("perf", {
    args: [
      "stat",
      "-x",
      ",",
      "-e",
      SYSCALLS.map((call) => `syscalls:sys_enter_${call}`).join(","),
      "-p",
      String(server.pid),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn()
  : undefined;
const load = await spawn([
  ...denoRun,
  new URL("loadgen.ts", BENCH).pathname,
  JSON.stringify({ ...config, port, serverPid: server.pid }),
], ROOT.pathname).output();
const result = decoder.decode(load.stdout).trim();
const syscalls = new Map<string, number>();
if (perf) {
  perf.kill("SIGINT");
  const { stderr } = await perf.output();
  for (const line of decoder.decode(stderr).split("\n")) {
    const [count, , event] = line.split(",");
    const call = event?.replace("syscalls:sys_enter_", "");
    if (call && Number.isFinite(Number(count))) {
      syscalls.set(call, Number(count));
    }
  }
}
await (await fetch(`http://127.0.0.1:${port}/exit`)).body?.cancel();
await reader.cancel();
await server.status;
if (!load.success) {
  throw new Error(`The load generator failed: ${decoder.decode(load.stderr)}`);
}

// ---- the profile ----------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
  children?: number[];
}

const file = [...Deno.readDirSync(dir)].find((e) =>
  e.name.endsWith(".cpuprofile")
);
if (!file) throw new Error(`No .cpuprofile in ${dir.pathname}`);
const profile = JSON.parse(
  await Deno.readTextFile(new URL(file.name, dir)),
) as {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
// Hits per node, counting only the samples after the skipped start.
const hitCount = new Map<number, number>();
let at = profile.startTime;
let totalHits = 0;
for (const [i, id] of profile.samples.entries()) {
  at += profile.timeDeltas[i]!;
  if (at - profile.startTime < skipSeconds * 1e6) continue;
  hitCount.set(id, (hitCount.get(id) ?? 0) + 1);
  totalHits++;
}
const idleHits = profile.nodes.filter((n) =>
  n.callFrame.functionName === "(idle)"
).reduce((s, n) => s + (hitCount.get(n.id) ?? 0), 0);
const busyHits = totalHits - idleHits;

const short = (url: string) =>
  url.replace(`file://${lib}`, "").replace(`file://${ROOT.pathname}`, "")
    .replace(/^ext:/, "ext:");
const key = (n: ProfileNode) =>
  `${n.callFrame.functionName || "(anonymous)"} ${short(n.callFrame.url)}${
    n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ""
  }`;

// Self time per function; total time per function counted once per stack.
const self = new Map<string, number>();
const total = new Map<string, number>();
const perFile = new Map<string, number>();
function walk(id: number, onStack: Set<string>): number {
  const node = byId.get(id)!;
  const k = key(node);
  const hits = hitCount.get(id) ?? 0;
  self.set(k, (self.get(k) ?? 0) + hits);
  const fileKey = node.callFrame.url
    ? short(node.callFrame.url).replace(/^ext:([^/]+)\/.*/, "ext:$1")
    : node.callFrame.functionName;
  perFile.set(fileKey, (perFile.get(fileKey) ?? 0) + hits);
  const first = !onStack.has(k);
  if (first) onStack.add(k);
  let subtree = hits;
  for (const child of node.children ?? []) subtree += walk(child, onStack);
  if (first) {
    onStack.delete(k);
    total.set(k, (total.get(k) ?? 0) + subtree);
  }
  return subtree;
}
walk(profile.nodes[0]!.id, new Set());

const messages = (JSON.parse(result || "{}") as { totalMessages?: number })
  .totalMessages;
// The mean sampling interval turns hits into milliseconds.
const intervalMs = profile.timeDeltas.reduce((a, b) => a + b, 0) /
  profile.timeDeltas.length / 1000;
const pct = (hits: number) => `${(hits / busyHits * 100).toFixed(1)}%`;
const rows = (map: Map<string, number>) =>
  [...map].filter(([k]) => !k.startsWith("(idle)") && !k.startsWith("(root)"))
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, hits]) =>
      `| ${pct(hits)} | ${(hits * intervalMs).toFixed(0)} | \`${
        k.replaceAll("|", "\\|")
      }\` |`
    );

const summary = [
  `# ${name}`,
  "",
  `Server: ${
    raw ? "raw Deno" : `anyws ${style} from ${lib}`
  }; scenario ${scenario} ${JSON.stringify(config)}.`,
  `Load generator: ${result}`,
  "",
  `${
    ((profile.endTime - profile.startTime) / 1e6 - skipSeconds).toFixed(1)
  } s profiled after the first ${skipSeconds.toFixed(1)} s, ${
    (busyHits / totalHits * 100).toFixed(0)
  }% of the samples busy; shares below are of the busy samples (V8's view:`,
  "time in Rust ops shows under the JS function that called them, and the",
  "event loop's own work, such as Deno's socket writes, under (program)).",
  "",
  ...(syscalls.size
    ? [
      "## System calls (perf, whole run)",
      "",
      "| Call | Count | Per message |",
      "| --- | ---: | ---: |",
      ...[...syscalls].filter(([, count]) => count > 0).map(([call, count]) =>
        `| ${call} | ${count} | ${
          messages ? (count / messages).toFixed(3) : "–"
        } |`
      ),
      "",
      "Per message: per message received (each is echoed once), warm-up included.",
      "",
    ]
    : []),
  "## Self time by source file",
  "",
  "| Share | ms | File |",
  "| ---: | ---: | --- |",
  ...rows(perFile),
  "",
  "## Self time by function",
  "",
  "| Share | ms | Function |",
  "| ---: | ---: | --- |",
  ...rows(self),
  "",
  "## Total time by function (with callees)",
  "",
  "| Share | ms | Function |",
  "| ---: | ---: | --- |",
  ...rows(total),
  "",
].join("\n");
await Deno.writeTextFile(new URL("summary.md", dir), summary);
console.log(summary);
console.error(`profile: wrote ${dir.pathname}`);
