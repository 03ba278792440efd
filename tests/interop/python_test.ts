/**
 * Python websockets (Debian `python3-websockets`, run by Debian's
 * `/usr/bin/python3`) against serve() and connect().
 *
 * @module
 */

import { spawnPeer } from "./_peer_process.ts";
import { interopTests } from "./_scenarios.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./python_peer.py", import.meta.url).pathname;

function version(): { version?: string; missing?: string } {
  try {
    const out = new Deno.Command(PYTHON, {
      args: ["-c", "import websockets; print(websockets.__version__)"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (out.success) {
      return { version: new TextDecoder().decode(out.stdout).trim() };
    }
    return {
      missing:
        `${PYTHON} cannot import websockets (apt-get install python3-websockets)`,
    };
  } catch {
    return { missing: `${PYTHON} is not installed` };
  }
}

const found = version();
const name = `Python websockets ${found.version ?? ""}`.trim();

interopTests({
  name,
  missing: found.missing,
  client: async (url) =>
    (await spawnPeer(name, PYTHON, [SCRIPT, "client", url])).peer,
  server: async () => {
    const { peer, port } = await spawnPeer(name, PYTHON, [SCRIPT, "server"], {
      server: true,
    });
    return { peer, url: `ws://127.0.0.1:${port}/` };
  },
});
