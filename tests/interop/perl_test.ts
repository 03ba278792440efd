/**
 * The Perl peers: AnyEvent::WebSocket::Client (Debian
 * `libanyevent-websocket-client-perl`, the library anyws ports) as a client
 * of serve(), and Mojolicious (Debian `libmojolicious-perl`) as a client of
 * serve() and a server for connect().
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { connect } from "../../client.ts";
import type { CloseInfo, Connection } from "../../connection.ts";
import { listen, within, wsUrl } from "../_fixture.ts";
import { spawnPeer } from "./_peer_process.ts";
import { CHOSEN, interopTests, REQUIRE_PEERS } from "./_scenarios.ts";

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

Deno.test({
  name:
    `${anyeventName} hands the current message to an each_message handler registered in next_message; anyws does not`,
  ignore: anyevent.missing !== undefined && !REQUIRE_PEERS,
  async fn() {
    if (anyevent.missing) {
      throw new Error(`Cannot run ${anyeventName}: ${anyevent.missing}`);
    }
    const sendTwo = (conn: Connection) => conn.send("one").send("two");

    // AnyEvent, as a client of serve().
    const established = Promise.withResolvers<Connection>();
    await using server = listen({
      protocols: [CHOSEN],
      onEstablish: (conn) => established.resolve(conn),
    });
    await using peer = (await spawnPeer(anyeventName, PERL, [
      ANYEVENT,
      "nested",
      wsUrl(server),
    ])).peer;
    sendTwo(await within(established.promise, "AnyEvent to connect", 10));
    const lines = [];
    for (let i = 0; i < 4; i++) {
      lines.push(await peer.nextLine(`line ${i + 1}`));
    }
    assertEquals(lines, ["OPEN chat.v1", "NEXT one", "EACH one", "EACH two"]);

    // anyws, the same registrations on a connect() connection.
    await using echoServer = listen({ onEstablish: sendTwo });
    await using conn = await connect(wsUrl(echoServer));
    const seen: string[] = [];
    const two = Promise.withResolvers<void>();
    conn.on("next_message", (conn, message) => {
      seen.push(`NEXT ${message.decodedBody()}`);
      conn.on("each_message", (_conn, message) => {
        seen.push(`EACH ${message.decodedBody()}`);
        if (message.decodedBody() === "two") two.resolve();
      });
    });
    await within(two.promise, "anyws to deliver two");
    assertEquals(seen, ["NEXT one", "EACH two"]);
  },
});

// Nothing lost (see ../nothing_lost_test.ts): the AnyEvent client as
// Plack::App::WebSocket's own Echo test uses it, sending a message and its
// close right after connecting, ROUNDS times in one process.
const ROUNDS = 20;

for (
  const close of [
    { code: 1000, wire: "close(1000)", anywsSees: 1000, perlSees: 1000 },
    // AnyEvent's default close() packs 1005 into the frame (RFC 6455
    // reserves it: it must not be sent). Deno refuses it, answers 1002 and
    // reports "Invalid close code"; the echo still gets out first.
    {
      code: undefined,
      wire: "its default close() (1005 on the wire)",
      anywsSees: 1006,
      perlSees: 1002,
    },
  ]
) {
  Deno.test({
    name:
      `${anyeventName} sending "hi" and ${close.wire} right after connecting gets the echo of an on("message") handler first, ${ROUNDS}/${ROUNDS}`,
    ignore: anyevent.missing !== undefined && !REQUIRE_PEERS,
    async fn() {
      if (anyevent.missing) {
        throw new Error(`Cannot run ${anyeventName}: ${anyevent.missing}`);
      }
      const ends: Promise<CloseInfo>[] = [];
      await using server = listen({
        onEstablish(conn) {
          conn.on("message", (conn, data) => conn.send(data));
          ends.push(conn.closed);
        },
      });
      await using peer = (await spawnPeer(anyeventName, PERL, [
        ANYEVENT,
        "hi_close",
        wsUrl(server),
        String(ROUNDS),
        ...(close.code === undefined ? [] : [String(close.code)]),
      ])).peer;
      const lines: string[] = [];
      for (let line = ""; line !== "DONE";) {
        line = await peer.nextLine(`line ${lines.length + 1}`);
        lines.push(line);
        if (lines.length > 3 * ROUNDS) break; // bounded whatever it prints
      }
      const echoed = lines.filter((line) => / GOT hi$/.test(line)).length;
      assertEquals(`${echoed}/${ROUNDS}`, `${ROUNDS}/${ROUNDS}`, "echoes");
      // Each echo came before that round's finish, and the close codes.
      const expected = Array.from({ length: ROUNDS }, (_, i) => [
        `ROUND ${i + 1} GOT hi`,
        `ROUND ${i + 1} CLOSED ${close.perlSees}`,
      ]).flat();
      assertEquals(lines, [...expected, "DONE"]);
      const infos = await within(Promise.all(ends), "every finish");
      assertEquals(infos.length, ROUNDS);
      for (const info of infos) {
        if (close.code === undefined) {
          assertEquals(
            [info.code, info.wasClean, info.error?.message],
            [1006, false, "Invalid close code"],
          );
        } else {
          assertEquals([info.code, info.wasClean], [1000, true]);
        }
      }
    },
  });
}
