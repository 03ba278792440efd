/**
 * The server of the bounds test (tests/bounds_test.ts), run in a child
 * process so that its memory is its own. It serves one attack at a time, on
 * 127.0.0.1, port 0, and prints `listening on http://127.0.0.1:<port>/`.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc tests/_bounds_server.ts [path/to/mod.ts]
 * ```
 *
 * The optional argument is the anyws library to load (default: this
 * checkout's `mod.ts`), so that the same attacks can be measured against an
 * older checkout. Default limits throughout: the figures are the defaults'.
 *
 * WebSocket paths, one per attacked bound:
 * - `/iterate`: a `for await` loop that awaits 10 ms per message.
 * - `/iterate-stuck`: a `for await` loop whose first message's work waits
 *   until `/report` (or the connection's end).
 * - `/unread`: an async `onEstablish` that awaits (until `/report`, or the
 *   connection's end) before it registers a message handler.
 * - `/echo`: sends every message back (for a peer that never reads).
 * - `/feed`: the first message, `"<size> <count>"`, makes it send up to
 *   `count` binary messages of `size` bytes, 1024 per task, until
 *   `parse_error` (for a peer that never reads).
 *
 * HTTP paths:
 * - `/baseline`: two full garbage collections, then the peak RSS is reset
 *   (Linux: `/proc/self/clear_refs`) and sampled every 5 ms; answers
 *   `{ rss }`.
 * - `/parse_error`: answers `{ errors }` once the attacked connection fired
 *   `parse_error`.
 * - `/finish`: answers once the attacked connection finished.
 * - `/report`: stops the sampling and answers `{ baseline, peak, rss,
 *   errors, finish }` (`peak`: the highest RSS since `/baseline`; `rss`:
 *   after two collections; `finish`: `{ code, reason }` or `null`).
 * - `/connecting?port=P&size=S&count=N`: the client side: a `Connection` over
 *   a `WebSocket` to 127.0.0.1:P (a listener that never answers the
 *   handshake) sends up to N messages of S bytes while it connects, stopping
 *   at its first `parse_error`; answers `{ sent, errors, peak, baseline }`.
 *
 * SIGTERM shuts the server down.
 *
 * @module
 */

const library = Deno.args[0] ?? new URL("../mod.ts", import.meta.url).href;
const anyws = await import(
  library.startsWith("/") ? `file://${library}` : library
) as typeof import("../mod.ts");

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("Run with --v8-flags=--expose-gc");

type Conn = import("../mod.ts").Connection;

function collect(): number {
  gc!();
  gc!();
  return Deno.memoryUsage().rss;
}

/** The highest RSS since `start()`: the kernel's high-water mark, and samples. */
class Peak {
  #max = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #hwm = true;

  start(): void {
    try {
      // "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
      Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    } catch {
      this.#hwm = false;
    }
    this.#max = Deno.memoryUsage().rss;
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.#sample(), 5);
  }

  stop(): number {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sample();
    if (this.#hwm) {
      try {
        const status = Deno.readTextFileSync("/proc/self/status");
        const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
        if (kib) this.#max = Math.max(this.#max, Number(kib) * 1024);
      } catch {
        // not Linux: the samples stand
      }
    }
    return this.#max;
  }

  #sample(): void {
    this.#max = Math.max(this.#max, Deno.memoryUsage().rss);
  }
}

/** The attack under way: one connection watched at a time. */
class Attack {
  readonly errors: string[] = [];
  finish: { code: number; reason: string; error?: string } | null = null;
  readonly failed = Promise.withResolvers<void>();
  readonly finished = Promise.withResolvers<void>();
  readonly released = Promise.withResolvers<void>();
  conn: Conn | undefined;
  received = 0;

  watch(conn: Conn): void {
    this.conn = conn;
    conn.on("parse_error", (_conn, error) => {
      this.errors.push(String(error));
      this.failed.resolve();
    });
    conn.closed.then((info) => {
      this.finish = {
        code: info.code,
        reason: info.reason,
        ...(info.error ? { error: String(info.error) } : {}),
      };
      this.finished.resolve();
      this.released.resolve();
    });
  }
}

let attack = new Attack();
let baseline = 0;
const peak = new Peak();

function json(value: unknown): Response {
  return new Response(JSON.stringify(value), {
    headers: { "content-type": "application/json" },
  });
}

async function connecting(url: URL): Promise<Response> {
  const port = Number(url.searchParams.get("port"));
  const size = Number(url.searchParams.get("size"));
  const count = Number(url.searchParams.get("count"));
  baseline = collect();
  peak.start();
  const errors: string[] = [];
  const conn = new anyws.Connection(
    new WebSocket(`ws://127.0.0.1:${port}/`),
  );
  conn.on("parse_error", (_conn, error) => {
    errors.push(String(error));
  });
  const payload = new Uint8Array(size).fill(0x61);
  let sent = 0;
  while (sent < count && errors.length === 0) {
    conn.send(payload);
    sent++;
  }
  const top = peak.stop();
  // The error may wait for the end of this task (the hold rule).
  await new Promise((resolve) => setTimeout(resolve, 0));
  conn.close();
  return json({ sent, errors, baseline, peak: top });
}

const server = anyws.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen({ port }) {
    console.log(`listening on http://127.0.0.1:${port}/`);
  },
  async fallback(request) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/baseline":
        attack = new Attack();
        baseline = collect();
        peak.start();
        return json({ rss: baseline });
      case "/parse_error":
        await attack.failed.promise;
        return json({ errors: attack.errors });
      case "/finish":
        await attack.finished.promise;
        return json({ finish: attack.finish });
      case "/report": {
        const top = peak.stop();
        attack.released.resolve();
        return json({
          baseline,
          peak: top,
          rss: collect(),
          errors: attack.errors,
          finish: attack.finish,
        });
      }
      case "/progress":
        return json({
          received: attack.received,
          bufferedAmount: attack.conn?.bufferedAmount,
          readyState: attack.conn?.readyState,
          finish: attack.finish,
          rss: Deno.memoryUsage().rss,
          errors: attack.errors,
        });
      case "/connecting":
        return await connecting(url);
      default:
        return new Response("not found", { status: 404 });
    }
  },
  async onEstablish(conn: Conn) {
    const current = attack;
    current.watch(conn);
    switch (new URL(conn.url).pathname) {
      case "/iterate":
        try {
          for await (const _message of conn) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        } catch {
          // the overflow ends the loop with an error: reported above
        }
        return;
      case "/iterate-stuck":
        try {
          for await (const _message of conn) await current.released.promise;
        } catch {
          // reported above
        }
        return;
      case "/unread":
        await current.released.promise;
        conn.on("message", () => {});
        return;
      case "/echo":
        conn.on("message", (conn, message) => {
          current.received++;
          conn.send(message);
        });
        return;
      case "/feed": {
        const first = await conn.nextMessage();
        const [size, count] = first.decodedBody().split(" ").map(Number);
        const payload = new Uint8Array(size!).fill(0x61);
        for (let sent = 0; sent < count! && current.errors.length === 0;) {
          for (let i = 0; i < 1024 && sent < count!; i++, sent++) {
            conn.send(payload);
          }
          current.received = sent; // progress, for /progress
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        return;
      }
    }
  },
});

Deno.addSignalListener("SIGTERM", () => server.shutdown({ timeout: 1000 }));
await server.finished;
Deno.exit(0);
