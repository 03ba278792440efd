/**
 * A TCP proxy under test control, on 127.0.0.1 port 0: it forwards bytes
 * both ways until {@linkcode TcpProxy.blackhole} makes it swallow them, as a
 * vanished peer or a dead network path would (the TCP connections stay up,
 * nothing gets through, nothing is closed).
 *
 * @module
 */

/** One proxied connection: the accepted side and the upstream side. */
interface Link {
  downstream: Deno.TcpConn;
  upstream: Deno.TcpConn;
  pumps: Promise<void>[];
}

/** Forwards connections to `127.0.0.1:targetPort`. */
export class TcpProxy implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #targetPort: number;
  readonly #links = new Set<Link>();
  readonly #accepting: Promise<void>;
  #swallowing = false;

  /** Starts listening and forwarding to `targetPort`. */
  constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The proxy's own port: connect here instead of to the target. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** How many connections are being proxied. */
  get size(): number {
    return this.#links.size;
  }

  /** From now on, bytes read in either direction are dropped, not forwarded. */
  blackhole(): void {
    this.#swallowing = true;
  }

  /** Stops listening and closes every proxied connection. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    for (const link of this.#links) {
      for (const conn of [link.downstream, link.upstream]) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    }
    await Promise.all([...this.#links].flatMap((link) => link.pumps));
  }

  async #accept(): Promise<void> {
    for (;;) {
      let downstream: Deno.TcpConn;
      try {
        downstream = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      const upstream = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.#targetPort,
      });
      const link: Link = { downstream, upstream, pumps: [] };
      link.pumps.push(
        this.#pump(downstream, upstream),
        this.#pump(upstream, downstream),
      );
      this.#links.add(link);
      Promise.all(link.pumps).then(() => this.#links.delete(link));
    }
  }

  async #pump(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (this.#swallowing) continue;
        let written = 0;
        while (written < n) {
          written += await to.write(buffer.subarray(written, n));
        }
      }
    } catch {
      // reset or closed: end this direction
    }
    // One side ended: end the other (unless swallowing, where nothing passes).
    if (!this.#swallowing) {
      try {
        to.closeWrite();
      } catch {
        // already closed
      }
    }
  }
}
