/**
 * What a server-side connection keeps of its upgrade request is bounded:
 * with 59 KiB of request headers per connection, the server's memory per
 * idle connection stays near that of a plain connection. The server runs in
 * a child process (`_request_memory_server.ts`) so that its memory is its
 * own; the figures are printed.
 *
 * Before the bound, each such connection cost about 198 KiB of RSS (74 KiB
 * of V8 heap): anyws copied every header, and Deno kept the original request
 * with every header it had read for the life of the socket.
 *
 * @module
 */

import { assert } from "@std/assert";
import { DenoProcess } from "./_deno_process.ts";
import { within } from "./_fixture.ts";
import { RawPeer } from "./_raw_peer.ts";

const CONNECTIONS = 200;
const HEADER_KIB = 59;
const KiB = 1024;
/** The bounds per connection (measured after the bound: ~62 KiB RSS, ~13 KiB heap). */
const MAX_HEAP_PER_CONNECTION = 24 * KiB;
const MAX_RSS_PER_CONNECTION = 110 * KiB;

interface Memory {
  rss: number;
  heapUsed: number;
  connections: number;
}

async function memory(port: number): Promise<Memory> {
  await using peer = await RawPeer.connect(port);
  const answer = await within(
    peer.handshake({ path: "/rss" }),
    "the handshake",
  );
  assert(answer.status === 101, `the /rss handshake got ${answer.status}`);
  const frame = await within(peer.readFrame(), "the memory figures");
  const [word, rss, heapUsed, connections] = new TextDecoder()
    .decode(frame!.payload).split(" ");
  assert(word === "memory", `unexpected answer ${word}`);
  return {
    rss: Number(rss),
    heapUsed: Number(heapUsed),
    connections: Number(connections),
  };
}

Deno.test({
  name:
    "59 KiB of request headers per connection: the server keeps a bounded part of each (RSS and heap per idle connection, in a child process)",
  async fn() {
    await using child = new DenoProcess([
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      "tests/_request_memory_server.ts",
    ]);
    const port = Number((await within(child.address, "the server", 30)).port);
    const headers: Record<string, string> = {};
    for (let i = 0; i < HEADER_KIB; i++) {
      headers[`x-pad-${i}`] = "v".repeat(KiB - 12);
    }
    const peers: RawPeer[] = [];
    try {
      // Warm up (JIT, pools, allocator arenas) before the baseline.
      for (let i = 0; i < 20; i++) {
        peers.push(await RawPeer.open(port, headers));
      }
      for (const peer of peers.splice(0)) peer.drop();
      const before = await memory(port);
      for (let i = 0; i < CONNECTIONS; i++) {
        peers.push(await within(RawPeer.open(port, headers), "a handshake"));
      }
      const after = await memory(port);
      assert(
        after.connections >= CONNECTIONS,
        `only ${after.connections} connections are open`,
      );
      const rss = (after.rss - before.rss) / CONNECTIONS;
      const heap = (after.heapUsed - before.heapUsed) / CONNECTIONS;
      console.log(
        `${CONNECTIONS} idle connections with ${HEADER_KIB} KiB of headers each: ${
          (rss / KiB).toFixed(1)
        } KiB of RSS and ${(heap / KiB).toFixed(1)} KiB of heap per connection`,
      );
      assert(heap < MAX_HEAP_PER_CONNECTION, `heap per connection: ${heap}`);
      assert(rss < MAX_RSS_PER_CONNECTION, `RSS per connection: ${rss}`);
    } finally {
      for (const peer of peers) peer.drop();
    }
  },
});
