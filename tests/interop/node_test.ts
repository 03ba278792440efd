/**
 * Node.js with the npm `ws` package (installed in tests/interop/node_modules
 * by `npm ci`) against serve() and connect().
 *
 * @module
 */

import { findOnPath, spawnPeer } from "./_peer_process.ts";
import { interopTests } from "./_scenarios.ts";

const DIR = new URL(".", import.meta.url).pathname;
const SCRIPT = `${DIR}node_peer.mjs`;

const NODE = findOnPath("node");

function probe(): { version?: string; missing?: string } {
  if (!NODE) return { missing: "node is not on the PATH" };
  const out = new Deno.Command(NODE, {
    // Without a node of its own, Deno puts a shim running itself first on
    // the PATH of its children; that would be testing Deno against Deno.
    args: [
      "-p",
      "typeof Deno === 'undefined' ? `${process.version} ${require('ws/package.json').version}` : 'deno'",
    ],
    cwd: DIR,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    return {
      missing: "the ws package is not installed (cd tests/interop && npm ci)",
    };
  }
  const said = new TextDecoder().decode(out.stdout).trim();
  if (said === "deno") {
    return { missing: `${NODE} is Deno's node shim, not Node.js` };
  }
  const [node, ws] = said.split(" ");
  return { version: `${ws} (Node ${node})` };
}

const found = probe();
const name = `Node ws ${found.version ?? ""}`.trim();

interopTests({
  name,
  missing: found.missing,
  differences: {
    // ws joins the offer with "," alone; Deno's own upgrade would refuse
    // that, serve() splits it (see server.ts).
    client: { offerHeader: "chat.v2,chat.v1" },
  },
  client: async (url) =>
    (await spawnPeer(name, NODE!, [SCRIPT, "client", url], { cwd: DIR })).peer,
  server: async () => {
    const { peer, port } = await spawnPeer(name, NODE!, [SCRIPT, "server"], {
      cwd: DIR,
      server: true,
    });
    return { peer, url: `ws://127.0.0.1:${port}/` };
  },
});
