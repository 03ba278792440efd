/**
 * Node.js with the npm `ws` package (installed in tests/interop/node_modules
 * by `npm ci`) against serve() and connect().
 *
 * @module
 */

import { spawnPeer } from "./_peer_process.ts";
import { interopTests } from "./_scenarios.ts";

const DIR = new URL(".", import.meta.url).pathname;
const SCRIPT = `${DIR}node_peer.mjs`;

function probe(): { version?: string; missing?: string } {
  try {
    const out = new Deno.Command("node", {
      args: ["-p", "require('ws/package.json').version"],
      cwd: DIR,
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (out.success) {
      return { version: new TextDecoder().decode(out.stdout).trim() };
    }
    return {
      missing: "the ws package is not installed (cd tests/interop && npm ci)",
    };
  } catch {
    return { missing: "node is not installed" };
  }
}

const found = probe();
const name = `Node ws ${found.version ?? ""}`.trim();

interopTests({
  name,
  missing: found.missing,
  client: async (url) =>
    (await spawnPeer(name, "node", [SCRIPT, "client", url], { cwd: DIR })).peer,
  server: async () => {
    const { peer, port } = await spawnPeer(name, "node", [SCRIPT, "server"], {
      cwd: DIR,
      server: true,
    });
    return { peer, url: `ws://127.0.0.1:${port}/` };
  },
});
