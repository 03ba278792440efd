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
 * It prints one JSON line: the scenario's figures, plus the CPU time that it
 * and the server used during the measured window (from `/proc/<pid>/stat`),
 * which shows which side was saturated.
 *
 * @module
 */

import { encodeFrame } from "../tests/_raw_peer.ts";

/** What the orchestrator asks for. */
export interface LoadConfig {
  scenario: "echo" | "latency" | "fanout" | "setup";
  port: number;
  /** The server's pid, for its CPU time and RSS. */
  serverPid: number;
  /** echo: connections; fanout/setup: how many to open. */
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
  /** fanout: broadcasts measured. */
  broadcasts?: number;
  /** fanout: also measure RSS per idle connection. */
  memory?: boolean;
  /** fanout/setup: handshakes in flight at once. */
  concurrency?: number;
}

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts in 1/100 s

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+) kB$/m);
  if (!match) throw new Error(`Cannot read the RSS of process ${pid}`);
  return Number(match[1]) * 1024;
}

/** CPU used by both sides over a measured window. */
class CpuWindow {
  #pid: number;
  #start = performance.now();
  #self = cpuSeconds("self");
  #server: number;

  constructor(pid: number) {
    this.#pid = pid;
    this.#server = cpuSeconds(pid);
  }

  /** Wall seconds and each side's CPU share of one core over the window. */
  end(): { wall: number; loadgenCpu: number; serverCpu: number } {
    const wall = (performance.now() - this.#start) / 1000;
    return {
      wall,
      loadgenCpu: (cpuSeconds("self") - this.#self) / wall,
      serverCpu: (cpuSeconds(this.#pid) - this.#server) / wall,
    };
  }
}

/**
 * Counts the complete data messages in a byte stream of server frames,
 * whatever the chunk boundaries. Payloads are skipped, never copied.
 */
class FrameCounter {
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
interface Client {
  conn: Deno.TcpConn;
  counter: FrameCounter;
  /** Bytes read after the 101 response, already counted by `counter`. */
  early: number;
}

function handshakeRequest(port: number): Uint8Array {
  return encoder.encode(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`,
  );
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
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
    conn.close();
    throw error;
  }
}

/** Opens `n` connections, `concurrency` handshakes at a time. */
async function openMany(
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
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, worker),
  );
  return clients;
}

function textPayload(size: number): Uint8Array {
  return encoder.encode("x".repeat(size));
}

function closeAll(clients: Client[]): void {
  for (const { conn } of clients) {
    try {
      conn.close();
    } catch {
      // Already closed by a failed read loop.
    }
  }
}

/** Echo throughput: every connection keeps `pipeline` messages in flight. */
async function echo(config: LoadConfig) {
  const connections = config.connections ?? 100;
  const pipeline = config.pipeline ?? 16;
  const frame = encodeFrame({
    opcode: 1,
    payload: textPayload(config.size ?? 64),
  });
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
    running = false;
    wake?.();
    await writer.catch(() => {});
  });

  await delay((config.warmup ?? 0.5) * 1000);
  const before = received;
  const window = new CpuWindow(config.serverPid);
  await delay((config.duration ?? 2) * 1000);
  const after = received;
  const cpu = window.end();
  running = false;
  closeAll(clients);
  await Promise.allSettled(loops);
  return {
    ...cpu,
    messages: after - before,
    roundTripsPerSecond: (after - before) / cpu.wall,
    // CPU per message is steadier than throughput on a shared machine.
    serverCpuMicros: cpu.serverCpu * cpu.wall / (after - before) * 1e6,
    loadgenCpuMicros: cpu.loadgenCpu * cpu.wall / (after - before) * 1e6,
  };
}

/** Round-trip latency: one connection, one message in flight. */
async function latency(config: LoadConfig) {
  const frame = encodeFrame({
    opcode: 1,
    payload: textPayload(config.size ?? 1024),
  });
  const [client] = await openMany(config.port, 1, 1);
  const { conn, counter } = client!;
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
  for (let i = 0; i < (config.warmupTrips ?? 200); i++) await trip();
  const trips = config.trips ?? 5000;
  const samples = new Float64Array(trips);
  const window = new CpuWindow(config.serverPid);
  for (let i = 0; i < trips; i++) {
    const start = performance.now();
    await trip();
    samples[i] = performance.now() - start;
  }
  const cpu = window.end();
  conn.close();
  samples.sort();
  const at = (q: number) =>
    samples[Math.min(trips - 1, Math.floor(q * trips))]! * 1000;
  return { ...cpu, trips, p50Micros: at(0.5), p99Micros: at(0.99) };
}

/**
 * Broadcast fan-out: `connections` idle clients, then `broadcasts` times an
 * HTTP request to `/broadcast` and the time until every client has the message.
 * With `memory`, the server's RSS before and after connecting (each after
 * `/gc`) gives the memory per idle connection.
 */
async function fanout(config: LoadConfig) {
  const n = config.connections ?? 1000;
  const base = `http://${HOST}:${config.port}`;
  const get = async (path: string) => {
    const response = await fetch(base + path);
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
    return text;
  };
  let rssBefore = 0;
  let heapBefore = 0;
  if (config.memory) {
    heapBefore = Number(await get("/gc"));
    rssBefore = rssBytes(config.serverPid);
  }
  const openStart = performance.now();
  const clients = await openMany(config.port, n, config.concurrency ?? 100);
  const openSeconds = (performance.now() - openStart) / 1000;
  let rssAfter = 0;
  let heapAfter = 0;
  if (config.memory) {
    await delay(300); // let the server finish its per-connection setup
    heapAfter = Number(await get("/gc"));
    rssAfter = rssBytes(config.serverPid);
  }

  let received = clients.reduce((sum, c) => sum + c.early, 0);
  let target = 0;
  let reached: (() => void) | undefined;
  const loops = clients.map(async ({ conn, counter }) => {
    const buf = new Uint8Array(1024);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        return;
      }
      if (n === null) return;
      received += counter.feed(buf.subarray(0, n));
      if (received >= target && reached) {
        const done = reached;
        reached = undefined;
        done();
      }
    }
  });

  const times: number[] = [];
  let wall = 0;
  let loadgenCpu = 0; // CPU seconds over all measured broadcasts
  let serverCpu = 0;
  const broadcasts = config.broadcasts ?? 5;
  for (let b = 0; b < broadcasts + 1; b++) { // the first one warms up
    target = received + n;
    const all = new Promise<void>((resolve) => reached = resolve);
    const window = new CpuWindow(config.serverPid);
    const answer = get("/broadcast");
    await all;
    const cpu = window.end();
    const sent = Number(await answer);
    if (sent !== n) {
      throw new Error(`The server broadcast to ${sent} clients, not ${n}`);
    }
    if (b > 0) {
      times.push(cpu.wall);
      wall += cpu.wall;
      loadgenCpu += cpu.loadgenCpu * cpu.wall;
      serverCpu += cpu.serverCpu * cpu.wall;
    }
  }
  closeAll(clients);
  await Promise.allSettled(loops);
  times.sort((a, b) => a - b);
  const seconds = times[Math.floor(times.length / 2)]!;
  return {
    connections: n,
    openSeconds,
    allReceivedMs: seconds * 1000,
    messagesPerSecond: n / seconds,
    loadgenCpu: loadgenCpu / wall,
    serverCpu: serverCpu / wall,
    serverCpuMicros: serverCpu / (n * broadcasts) * 1e6,
    ...(config.memory
      ? {
        rssBefore,
        rssAfter,
        bytesPerConnection: (rssAfter - rssBefore) / n,
        heapBytesPerConnection: (heapAfter - heapBefore) / n,
      }
      : {}),
  };
}

/**
 * Connection setup and teardown: open `connections` (handshakes/s), then
 * close them all with a close frame and wait for the server's (closes/s).
 */
async function setup(config: LoadConfig) {
  const n = config.connections ?? 1000;
  const concurrency = config.concurrency ?? 50;
  const openWindow = new CpuWindow(config.serverPid);
  const clients = await openMany(config.port, n, concurrency);
  const opened = openWindow.end();

  const closeFrame = encodeFrame({
    opcode: 8,
    payload: new Uint8Array([0x03, 0xe8]), // 1000
  });
  const closeWindow = new CpuWindow(config.serverPid);
  let next = 0;
  const worker = async () => {
    const buf = new Uint8Array(1024);
    while (next < clients.length) {
      const { conn, counter } = clients[next++]!;
      await writeAll(conn, closeFrame);
      // Wait for the server's close frame (or its end of the TCP stream).
      while (!counter.closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        counter.feed(buf.subarray(0, n));
      }
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const closed = closeWindow.end();
  return {
    connections: n,
    handshakesPerSecond: n / opened.wall,
    closesPerSecond: n / closed.wall,
    loadgenCpu: (opened.loadgenCpu * opened.wall +
      closed.loadgenCpu * closed.wall) / (opened.wall + closed.wall),
    serverCpu: (opened.serverCpu * opened.wall +
      closed.serverCpu * closed.wall) / (opened.wall + closed.wall),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  const config = JSON.parse(Deno.args[0] ?? "{}") as LoadConfig;
  const run = { echo, latency, fanout, setup }[config.scenario];
  if (!run) throw new TypeError(`Unknown scenario: ${config.scenario}`);
  console.log(JSON.stringify(await run(config)));
  Deno.exit(0); // pending reads on closed sockets must not keep us alive
}
