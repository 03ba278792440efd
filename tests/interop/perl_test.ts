/**
 * The Perl peers: AnyEvent::WebSocket::Client (Debian
 * `libanyevent-websocket-client-perl`, the library anyws ports) as a client
 * of serve(), and Mojolicious (Debian `libmojolicious-perl`) as a client of
 * serve() and a server for connect().
 *
 * @module
 */

import { spawnPeer } from "./_peer_process.ts";
import { interopTests } from "./_scenarios.ts";

const PERL = "/usr/bin/perl";
const DIR = new URL(".", import.meta.url).pathname;

function moduleVersion(module: string): { version?: string; missing?: string } {
  try {
    const out = new Deno.Command(PERL, {
      args: [`-M${module}`, "-e", `print $${module}::VERSION`],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (out.success) {
      return { version: new TextDecoder().decode(out.stdout).trim() };
    }
    return { missing: `${PERL} cannot load ${module}` };
  } catch {
    return { missing: `${PERL} is not installed` };
  }
}

const anyevent = moduleVersion("AnyEvent::WebSocket::Client");
const anyeventName = `Perl AnyEvent::WebSocket::Client ${
  anyevent.version ?? ""
}`.trim();
const ANYEVENT = `${DIR}anyevent_peer.pl`;

interopTests({
  name: anyeventName,
  missing: anyevent.missing &&
    `${anyevent.missing} (apt-get install libanyevent-websocket-client-perl)`,
  client: async (url) =>
    (await spawnPeer(anyeventName, PERL, [ANYEVENT, "client", url])).peer,
  differences: {
    client: {
      // AnyEvent::WebSocket::Connection answers a close by calling its own
      // close() without arguments, which packs status 1005 into the frame
      // (RFC 6455 7.4.1 reserves 1005: it must not be sent) and no reason.
      // Deno accepts it, so our side finishes cleanly with 1005 and "".
      echoOfOurClose: { code: 1005, reason: "" },
      // It joins the offer with "," alone; Deno's own upgrade would refuse
      // that, serve() splits it (see server.ts).
      offerHeader: "chat.v2,chat.v1",
    },
  },
});

const mojo = moduleVersion("Mojolicious");
const mojoName = `Perl Mojolicious ${mojo.version ?? ""}`.trim();
const MOJO = `${DIR}mojo_peer.pl`;

interopTests({
  name: mojoName,
  missing: mojo.missing &&
    `${mojo.missing} (apt-get install libmojolicious-perl)`,
  client: async (url) =>
    (await spawnPeer(mojoName, PERL, [MOJO, "client", url])).peer,
  server: async () => {
    const { peer, port } = await spawnPeer(mojoName, PERL, [MOJO, "server"], {
      server: true,
    });
    return { peer, url: `ws://127.0.0.1:${port}/` };
  },
});
