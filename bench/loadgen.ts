/**
 * The load generator of `deno task bench`: one program for every contender,
 * run in its own process. It speaks WebSocket over raw TCP, sends frames it
 * masked once in advance (so per-message client work is a byte count and a
 * copy-free write), and measures one scenario against a server that is
 * already listening:
 *
 * ```sh
 * deno run -A bench/loadgen.ts '{"scenario":"echo","port":8000,"serverPid":123,...}'
 * ```
 *
 * Every cost is read at the server: its `GET /stats` answers the CPU time it
 * has used (getrusage, µs resolution), its heap, RSS and open connections, so
 * a figure never depends on how fast this process reads. Each measured
 * window follows a warm-up, and records the outside load: the CPU time the
 * machine spent busy beyond the server and this process.
 *
 * It prints one JSON line with the scenario's figures, then tears down.
 *
 * @module
 */

import process from "node:process";
import { encodeFrame } from "../tests/_raw_peer.ts";
import { machineBusySeconds, processCpuSeconds } from "./_proc.ts";

/** What the orchestrator asks for. */
export interface LoadConfig {
  scenario: "echo" | "latency" | "churn" | "idle";
  port: number;
  /** The server's pid, for the outside load. */
  serverPid: number;
  /** echo: connections; churn/idle: connections measured. */
  connections?: number;
  /** echo/latency: payload bytes of each text message. */
  size?: number;
  /** echo: messages in flight per connection. */
  pipeline?: number;
  /** echo: seconds before measuring, then seconds measured. */
  warmup?: number;
  duration?: number;
  /** latency: round trips measured (after `warmupTrips`). */
  trips?: number;
  warmupTrips?: number;
  /** churn/idle: connections opened and closed before measuring. */
  warmupConnections?: number;
  /** idle: broadcasts measured (after two warm-up ones). */
  broadcasts?: number;
  /** churn/idle: handshakes in flight at once. */
  concurrency?: number;
  /**
   * How many windows the measurement is cut into (the figure is the median
   * over the quieter half): echo, churn (per phase), idle.
   */
  windows?: number;
}

/** The JSON of a server's `GET /stats` (see servers/_stats.ts). */
export interface Stats {
  cpu: number;
  system: number;
  heap: number;
  rss: number;
  open: number;
}

/** The JSON of a server's `GET /broadcast`. */
interface BroadcastTiming {
  sent: number;
  loopMicros: number;
  loopCpuMicros: number;
}

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The server's HTTP side. */
export class ServerControl {
  readonly #base: string;

  constructor(port: number) {
    this.#base = `http://${HOST}:${port}`;
  }

  async #get<T>(path: string): Promise<T> {
    const response = await fetch(this.#base + path);
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`GET ${path}: ${response.status}`);
    }
    return await response.json() as T;
  }

  /** The server's counters, after a garbage collection if asked. */
  stats(gc?: "minor" | "full"): Promise<Stats> {
    return this.#get(gc ? `/stats?gc=${gc}` : "/stats");
  }

  broadcast(): Promise<BroadcastTiming> {
    return this.#get("/broadcast");
  }

  /**
   * Waits until the server counts `open` connections (its own handlers have
   * run), polling every 5 ms, then 20 ms more for work they left queued;
   * then reads the stats with `gc`.
   */
  async settle(open: number, gc?: "minor" | "full"): Promise<Stats> {
    const deadline = performance.now() + 30_000;
    while ((await this.stats()).open !== open) {
      if (performance.now() > deadline) {
        throw new Error(`The server did not reach ${open} open connections`);
      }
      await delay(5);
    }
    await delay(20);
    return await this.stats(gc);
  }
}

/** One measured window. */
interface Window {
  /** Operations done in it (round trips, handshakes, deliveries...). */
  ops: number;
  wall: number;
  /** Server CPU seconds, from its getrusage. */
  serverCpu: number;
  /** The part of it spent in the kernel. */
  serverSystemCpu: number;
  /** This process's CPU seconds. */
  loadgenCpu: number;
  /** CPU seconds the rest of the machine used (/proc/stat, 10 ms ticks). */
  outsideCpu: number;
}

/**
 * Windows of a scenario: wall time, the CPU each side used, and the outside
 * load over each.
 *
 * Other jobs on the machine come in bursts, and a burst changes what an
 * operation costs the server (its batches grow, its caches go cold). So each
 * scenario measures several windows, and its cost per operation is the
 * median over the quieter half of them (those with the least outside load):
 * this picks no contender, and a burst that lands on one window does not
 * move the figure.
 */
class Meter {
  readonly windows: Window[] = [];
  #start?: { wall: number; stats: Stats; self: number; machine: number };

  /** Opens a window; `stats` were read just before. */
  begin(stats: Stats): void {
    this.#start = {
      wall: performance.now(),
      stats,
      self: selfCpuSeconds(),
      machine: machineBusySeconds(),
    };
  }

  /** Closes the window after `ops` operations; `stats` were read just before. */
  end(stats: Stats, ops: number): Window {
    const start = this.#start!;
    const wall = (performance.now() - start.wall) / 1000;
    const serverCpu = (stats.cpu - start.stats.cpu) / 1e6;
    const loadgenCpu = selfCpuSeconds() - start.self;
    const machine = machineBusySeconds() - start.machine;
    const window = {
      ops,
      wall,
      serverCpu,
      serverSystemCpu: (stats.system - start.stats.system) / 1e6,
      loadgenCpu,
      outsideCpu: Math.max(0, machine - serverCpu - loadgenCpu),
    };
    this.windows.push(window);
    return window;
  }

  /** Totals over every window. */
  get total(): Window {
    const sum = (pick: (w: Window) => number) =>
      this.windows.reduce((total, w) => total + pick(w), 0);
    return {
      ops: sum((w) => w.ops),
      wall: sum((w) => w.wall),
      serverCpu: sum((w) => w.serverCpu),
      serverSystemCpu: sum((w) => w.serverSystemCpu),
      loadgenCpu: sum((w) => w.loadgenCpu),
      outsideCpu: sum((w) => w.outsideCpu),
    };
  }

  /**
   * Server CPU µs per operation: the median over the quieter half of the
   * windows (all of them if there are fewer than three).
   */
  serverMicrosPerOp(): number {
    const quiet = [...this.windows].sort((a, b) =>
      a.outsideCpu / a.wall - b.outsideCpu / b.wall
    );
    const kept = quiet.length < 3
      ? quiet
      : quiet.slice(0, Math.ceil(quiet.length / 2));
    return median(kept.map((w) => w.serverCpu / w.ops * 1e6));
  }

  /** Each window as text, for ANYWS_BENCH_DEBUG. */
  describe(): string {
    return this.windows.map((w) =>
      `${(w.serverCpu / w.ops * 1e6).toFixed(1)} µs/op @ ${
        (w.outsideCpu / w.wall * 100).toFixed(0)
      }% outside`
    ).join("; ");
  }

  /** Figures common to every scenario. */
  summary(): Record<string, number> {
    if (Deno.env.get("ANYWS_BENCH_DEBUG")) console.error(this.describe());
    const t = this.total;
    return {
      serverCpu: t.serverCpu / t.wall,
      loadgenCpu: t.loadgenCpu / t.wall,
      serverSystem: t.serverSystemCpu / t.serverCpu,
      windows: this.windows.length,
      // Over every window, for comparison with the quieter-half figure.
      serverCpuMicrosAllWindows: t.serverCpu / t.ops * 1e6,
      windowOutsideMin: Math.min(
        ...this.windows.map((w) => w.outsideCpu / w.wall),
      ),
      windowOutsideMax: Math.max(
        ...this.windows.map((w) => w.outsideCpu / w.wall),
      ),
    };
  }
}

/**
 * The outside load: CPU the machine spent on anything but the server and
 * this process, from /proc in 10 ms ticks, so it is taken over the whole
 * scenario (seconds) rather than over its measured windows.
 */
class OutsideLoad {
  readonly #serverPid: number;
  readonly #wall = performance.now();
  readonly #machine = machineBusySeconds();
  readonly #server: number;
  readonly #self = processCpuSeconds("self");

  constructor(serverPid: number) {
    this.#serverPid = serverPid;
    this.#server = processCpuSeconds(serverPid);
  }

  /** The outside load as a share of one core since construction. */
  share(): number {
    const wall = (performance.now() - this.#wall) / 1000;
    const machine = machineBusySeconds() - this.#machine;
    const server = processCpuSeconds(this.#serverPid) - this.#server;
    const self = processCpuSeconds("self") - this.#self;
    return Math.max(0, machine - server - self) / wall;
  }
}

export function selfCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * Counts the complete data messages in a byte stream of server frames,
 * whatever the chunk boundaries. Payloads are skipped, never copied.
 */
export class FrameCounter {
  #header = new Uint8Array(14);
  #headerLength = 0;
  #remaining = 0;
  #opcode = 0;
  /** A close frame arrived. */
  closed = false;

  /** Consumes a chunk; returns how many data messages it completed. */
  feed(chunk: Uint8Array): number {
    let messages = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) messages += this.#complete();
        continue;
      }
      const header = this.#header;
      header[this.#headerLength++] = chunk[i++]!;
      if (this.#headerLength < 2) continue;
      const len7 = header[1]! & 0x7f;
      const size = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) +
        (header[1]! & 0x80 ? 4 : 0);
      if (this.#headerLength < size) continue;
      let length = len7;
      if (len7 === 126) length = (header[2]! << 8) | header[3]!;
      else if (len7 === 127) {
        length = 0;
        for (let b = 2; b < 10; b++) length = length * 256 + header[b]!;
      }
      this.#opcode = header[0]! & 0x0f;
      this.#headerLength = 0;
      this.#remaining = length;
      if (length === 0) messages += this.#complete();
    }
    return messages;
  }

  #complete(): number {
    if (this.#opcode === 8) this.closed = true;
    return this.#opcode <= 2 ? 1 : 0; // continuation, text, binary
  }
}

/** One client connection after its handshake. */
export interface Client {
  conn: Deno.TcpConn;
  counter: FrameCounter;
  /** Data messages read after the 101 response, already counted. */
  early: number;
}

function handshakeRequest(port: number): Uint8Array {
  return encoder.encode(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`,
  );
}

export async function writeAll(
  conn: Deno.TcpConn,
  bytes: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/** Closes a connection that may already be closed. */
export function drop(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Opens one connection and completes the WebSocket handshake. */
async function open(port: number, request: Uint8Array): Promise<Client> {
  const conn = await Deno.connect({ hostname: HOST, port });
  try {
    conn.setNoDelay(true);
    await writeAll(conn, request);
    const buf = new Uint8Array(4096);
    let filled = 0;
    while (true) {
      const n = await conn.read(buf.subarray(filled));
      if (n === null) {
        throw new Error("Cannot open a WebSocket: the server hung up");
      }
      filled += n;
      const text = decoder.decode(buf.subarray(0, filled));
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) {
        if (filled === buf.length) throw new Error("Handshake too long");
        continue;
      }
      if (!text.startsWith("HTTP/1.1 101")) {
        throw new Error(
          `Cannot open a WebSocket: ${text.slice(0, text.indexOf("\r\n"))}`,
        );
      }
      const counter = new FrameCounter();
      // The response is ASCII, so string offsets are byte offsets.
      const early = counter.feed(buf.subarray(end + 4, filled));
      return { conn, counter, early };
    }
  } catch (error) {
    drop(conn);
    throw error;
  }
}

/** Opens `n` connections, `concurrency` handshakes at a time. */
export async function openMany(
  port: number,
  n: number,
  concurrency: number,
): Promise<Client[]> {
  const request = handshakeRequest(port);
  const clients: Client[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      clients.push(await open(port, request));
    }
  };
  const workers = Array.from({ length: Math.min(concurrency, n) }, worker);
  const settled = await Promise.allSettled(workers);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) {
    for (const client of clients) drop(client.conn);
    throw (failed as PromiseRejectedResult).reason;
  }
  return clients;
}

const CLOSE_FRAME = encodeFrame({
  opcode: 8,
  payload: new Uint8Array([0x03, 0xe8]), // 1000
});

/**
 * The close handshake on every client, `concurrency` at a time: a close
 * frame, then the server's close frame (or its end of the stream).
 */
async function closeMany(
  clients: Client[],
  concurrency: number,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    const buf = new Uint8Array(1024);
    while (next < clients.length) {
      const { conn, counter } = clients[next++]!;
      try {
        await writeAll(conn, CLOSE_FRAME);
        while (!counter.closed) {
          const n = await conn.read(buf);
          if (n === null) break;
          counter.feed(buf.subarray(0, n));
        }
      } finally {
        drop(conn);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export function textFrame(size: number): Uint8Array {
  return encodeFrame({ opcode: 1, payload: encoder.encode("x".repeat(size)) });
}

/** Echo: every connection keeps `pipeline` messages in flight. */
async function echo(config: LoadConfig, server: ServerControl) {
  const connections = config.connections ?? 100;
  const pipeline = config.pipeline ?? 16;
  const frame = textFrame(config.size ?? 64);
  const batch = new Uint8Array(frame.length * pipeline);
  for (let i = 0; i < pipeline; i++) batch.set(frame, i * frame.length);

  const clients = await openMany(config.port, connections, 50);
  let running = true;
  let received = 0;
  const loops = clients.map(async ({ conn, counter }) => {
    // The reader grants credit, the writer spends it: neither blocks the other.
    let credit = 0;
    let wake: (() => void) | undefined;
    const writer = (async () => {
      await writeAll(conn, batch);
      while (running) {
        if (credit === 0) {
          await new Promise<void>((resolve) => wake = resolve);
          continue;
        }
        const n = credit;
        credit = 0;
        await writeAll(conn, batch.subarray(0, n * frame.length));
      }
    })();
    try {
      const buf = new Uint8Array(256 * 1024);
      while (running) {
        const n = await conn.read(buf);
        if (n === null) break;
        const messages = counter.feed(buf.subarray(0, n));
        received += messages;
        credit += messages;
        wake?.();
        wake = undefined;
      }
    } finally {
      running = false;
      wake?.();
      await writer.catch(() => {});
    }
  });
  // A loop that ends early (the server hung up) makes the whole run fail.
  const failed = Promise.race(loops).then(
    () => Promise.reject(new Error("A connection ended during the test")),
  );
  failed.catch(() => {});
  const during = <T>(promise: Promise<T>) => Promise.race([promise, failed]);

  const meter = new Meter();
  const windows = config.windows ?? 5;
  try {
    await during(delay((config.warmup ?? 1) * 1000));
    let stats = await during(server.stats());
    for (let w = 0; w < windows; w++) {
      meter.begin(stats);
      const before = received;
      await during(delay((config.duration ?? 2) * 1000 / windows));
      stats = await during(server.stats());
      meter.end(stats, received - before);
    }
  } finally {
    running = false;
    for (const { conn } of clients) drop(conn);
    await Promise.allSettled(loops);
  }
  const total = meter.total;
  return {
    ...meter.summary(),
    seconds: total.wall,
    messages: total.ops,
    roundTripsPerSecond: total.ops / total.wall,
    serverCpuMicros: meter.serverMicrosPerOp(),
    loadgenCpuMicros: total.loadgenCpu / total.ops * 1e6,
    // Since the first message, warm-up included (for bench/profile.ts).
    totalMessages: received,
  };
}

/** Round-trip latency: one connection, one message in flight. */
async function latency(config: LoadConfig, server: ServerControl) {
  const frame = textFrame(config.size ?? 1024);
  const [{ conn, counter }] = await openMany(config.port, 1, 1) as [Client];
  try {
    const buf = new Uint8Array(64 * 1024);
    const trip = async () => {
      await writeAll(conn, frame);
      let got = 0;
      while (got === 0) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("The server hung up during the test");
        got = counter.feed(buf.subarray(0, n));
      }
    };
    for (let i = 0; i < (config.warmupTrips ?? 1000); i++) await trip();
    const trips = config.trips ?? 5000;
    const samples = new Float64Array(trips);
    const meter = new Meter();
    meter.begin(await server.stats());
    for (let i = 0; i < trips; i++) {
      const start = performance.now();
      await trip();
      samples[i] = performance.now() - start;
    }
    meter.end(await server.stats(), trips);
    samples.sort();
    const at = (q: number) =>
      samples[Math.min(trips - 1, Math.floor(q * trips))]! * 1000;
    return {
      ...meter.summary(),
      trips,
      p50Micros: at(0.5),
      p99Micros: at(0.99),
      serverCpuMicros: meter.serverMicrosPerOp(),
    };
  } finally {
    drop(conn);
  }
}

/**
 * Connection setup and teardown. After a warm-up (connections opened and
 * closed), two windows:
 * - open `connections`, `concurrency` handshakes at a time, until the server
 *   counts them all open;
 * - the close handshake on all of them, until the server counts none.
 *
 * Each phase is measured in `windows` batches; each window ends with a
 * minor GC in the server, so the garbage it made is paid in it, and the
 * server's CPU over it is divided by its count. A full GC runs before each
 * phase, outside the windows.
 */
async function churn(config: LoadConfig, server: ServerControl) {
  const n = config.connections ?? 2000;
  const concurrency = config.concurrency ?? 50;
  const warm = config.warmupConnections ?? 500;
  const windows = config.windows ?? 5;
  const batch = Math.ceil(n / windows);
  await closeMany(await openMany(config.port, warm, concurrency), concurrency);

  // Rates as the clients see them: the time spent opening (or closing) only.
  let openSeconds = 0;
  let closeSeconds = 0;
  const setup = new Meter();
  const clients: Client[] = [];
  let stats = await server.settle(0, "full");
  while (clients.length < n) {
    setup.begin(stats);
    const more = Math.min(batch, n - clients.length);
    const start = performance.now();
    clients.push(...await openMany(config.port, more, concurrency));
    openSeconds += (performance.now() - start) / 1000;
    stats = await server.settle(clients.length, "minor");
    setup.end(stats, more);
  }

  // The full collection that the heap's growth calls for falls between
  // the phases, in neither: it is the cost of holding connections (see the
  // memory figures), not of opening or closing them.
  stats = await server.stats("full");
  const teardown = new Meter();
  for (let done = 0; done < n;) {
    teardown.begin(stats);
    const some = clients.slice(done, done + batch);
    const start = performance.now();
    await closeMany(some, concurrency);
    closeSeconds += (performance.now() - start) / 1000;
    done += some.length;
    stats = await server.settle(n - done, "minor");
    teardown.end(stats, some.length);
  }
  const opened = setup.total;
  const closed = teardown.total;
  if (Deno.env.get("ANYWS_BENCH_DEBUG")) {
    console.error(`handshakes: ${setup.describe()}`);
    console.error(`closes: ${teardown.describe()}`);
  }
  return {
    connections: n,
    handshakeCpuMicros: setup.serverMicrosPerOp(),
    closeCpuMicros: teardown.serverMicrosPerOp(),
    handshakeCpuMicrosAllWindows: opened.serverCpu / n * 1e6,
    closeCpuMicrosAllWindows: closed.serverCpu / n * 1e6,
    handshakesPerSecond: n / openSeconds,
    closesPerSecond: n / closeSeconds,
    serverCpu: (opened.serverCpu + closed.serverCpu) /
      (opened.wall + closed.wall),
    loadgenCpu: (opened.loadgenCpu + closed.loadgenCpu) /
      (opened.wall + closed.wall),
    windows: setup.windows.length + teardown.windows.length,
  };
}

/**
 * Idle connections: memory, then broadcast fan-out.
 *
 * - Memory: after a warm-up (connections opened and closed), the server's
 *   JS heap and RSS after a full GC, before and after opening `connections`
 *   (once the server counts them open), divided by their number.
 * - Fan-out: two warm-up broadcasts, then `broadcasts` measured ones, each
 *   waiting until every client has the message. The server times its own
 *   send loop; its CPU over all of them (which covers the writes Deno makes
 *   after the loop) divided by the deliveries is the cost per delivery. How
 *   long the clients took to receive everything is bounded by this process,
 *   which reads 10 000 sockets, and is given for information only.
 */
async function idle(config: LoadConfig, server: ServerControl) {
  const n = config.connections ?? 1000;
  const concurrency = config.concurrency ?? 100;
  const warm = config.warmupConnections ?? 200;
  await closeMany(await openMany(config.port, warm, concurrency), concurrency);
  const base = await server.settle(0, "full");
  const clients = await openMany(config.port, n, concurrency);
  const loaded = await server.settle(n, "full");

  let received = clients.reduce((sum, c) => sum + c.early, 0);
  let target = 0;
  let reached: (() => void) | undefined;
  const loops = clients.map(async ({ conn, counter }) => {
    const buf = new Uint8Array(1024);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return;
      received += counter.feed(buf.subarray(0, n));
      if (received >= target && reached) {
        const done = reached;
        reached = undefined;
        done();
      }
    }
  });
  const broadcastOnce = async () => {
    target = received + n;
    const all = new Promise<void>((resolve) => reached = resolve);
    const start = performance.now();
    const timing = await server.broadcast();
    if (timing.sent !== n) {
      throw new Error(
        `The server broadcast to ${timing.sent} clients, not ${n}`,
      );
    }
    await within(all, 30_000, "Not every client had the broadcast");
    return { ...timing, allReceivedMs: performance.now() - start };
  };

  const meter = new Meter();
  const timings: (BroadcastTiming & { allReceivedMs: number })[] = [];
  const windows = config.windows ?? 4;
  const perWindow = Math.max(1, Math.round((config.broadcasts ?? 8) / windows));
  try {
    for (let b = 0; b < 2; b++) await broadcastOnce();
    let stats = await server.stats();
    for (let w = 0; w < windows; w++) {
      meter.begin(stats);
      for (let b = 0; b < perWindow; b++) timings.push(await broadcastOnce());
      stats = await server.stats();
      meter.end(stats, n * perWindow);
    }
  } finally {
    for (const { conn } of clients) drop(conn);
    await Promise.allSettled(loops);
  }
  const med = (pick: (t: (typeof timings)[number]) => number) =>
    median(timings.map(pick));
  return {
    ...meter.summary(),
    connections: n,
    heapBytesPerConnection: (loaded.heap - base.heap) / n,
    rssBytesPerConnection: (loaded.rss - base.rss) / n,
    rssBefore: base.rss,
    rssAfter: loaded.rss,
    serverCpuMicrosPerDelivery: meter.serverMicrosPerOp(),
    sendLoopMicrosPerRecipient: med((t) => t.loopMicros) / n,
    sendLoopCpuMicrosPerRecipient: med((t) => t.loopCpuMicros) / n,
    allReceivedMs: med((t) => t.allReceivedMs),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `promise`, or a rejection with `message` after `ms`. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  const config = JSON.parse(Deno.args[0] ?? "{}") as LoadConfig;
  const run = { echo, latency, churn, idle }[config.scenario];
  if (!run) throw new TypeError(`Unknown scenario: ${config.scenario}`);
  // Reads still pending on sockets closed at teardown may reject late: that
  // must not turn a finished measurement into a crash.
  let done = false;
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (done) event.preventDefault();
  });
  const outside = new OutsideLoad(config.serverPid);
  const result = await run(config, new ServerControl(config.port));
  done = true;
  console.log(JSON.stringify({ ...result, outsideCpu: outside.share() }));
  Deno.exit(0); // pending reads on closed sockets must not keep us alive
}
