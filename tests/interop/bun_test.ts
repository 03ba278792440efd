/**
 * Bun (npm `bun`, installed in tests/interop/node_modules by `npm ci`): its
 * own `WebSocket` client against serve(), and a `Bun.serve` WebSocket server
 * for connect().
 *
 * @module
 */

import { spawnPeer } from "./_peer_process.ts";
import { interopTests } from "./_scenarios.ts";

const DIR = new URL(".", import.meta.url).pathname;
const SCRIPT = `${DIR}bun_peer.js`;

/**
 * The platform binary npm put in place as an optional dependency. We run it
 * directly: `npm ci --ignore-scripts` skips bun's postinstall, which would
 * only copy this binary (or download one when it is missing).
 */
function findBun(): string | undefined {
  const arch = Deno.build.arch === "aarch64" ? "aarch64" : "x64";
  for (const pkg of [`bun-linux-${arch}`, `bun-linux-${arch}-baseline`]) {
    const path = `${DIR}node_modules/@oven/${pkg}/bin/bun`;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function probe(): { bun?: string; version?: string; missing?: string } {
  const bun = findBun();
  if (!bun) {
    return {
      missing: "the bun package is not installed (cd tests/interop && npm ci)",
    };
  }
  const out = new Deno.Command(bun, {
    args: ["--version"],
    stdout: "piped",
    stderr: "piped",
  })
    .outputSync();
  if (!out.success) return { missing: `${bun} --version failed` };
  return { bun, version: new TextDecoder().decode(out.stdout).trim() };
}

const found = probe();
const name = `Bun ${found.version ?? ""}`.trim();

interopTests({
  name,
  missing: found.missing,
  client: async (url) =>
    (await spawnPeer(name, found.bun!, [SCRIPT, "client", url])).peer,
  server: async () => {
    const { peer, port } = await spawnPeer(
      name,
      found.bun!,
      [SCRIPT, "server"],
      {
        server: true,
      },
    );
    return { peer, url: `ws://127.0.0.1:${port}/` };
  },
});
