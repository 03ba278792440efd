/**
 * Measures the bounds scenarios of tests/bounds_test.ts against a library
 * and prints one line per scenario (peak RSS growth of the server process).
 * Not a test: run by hand to get the figures of docs/limits.md, e.g. against
 * an older checkout:
 *
 * ```sh
 * deno run -A tools/with_std.ts run -A tests/_bounds_measure.ts [path/to/mod.ts] [scenario...]
 * ```
 *
 * @module
 */

import {
  BoundsServer,
  feed,
  flood,
  KiB,
  MiB,
  mib,
  neverRead,
  type Outcome,
} from "./_bounds_peer.ts";

const [library, ...only] = Deno.args;
const lib = library && library !== "-" ? library : undefined;

const SIZES: Record<string, number[]> = {
  iterate: [16, KiB, MiB, 8 * MiB],
  unread: [16, KiB, MiB, 8 * MiB],
  echo: [16, 128, KiB, MiB],
  feed: [16, 128, KiB, MiB],
  connecting: [16, KiB],
};

function line(path: string, size: number, outcome: Outcome): void {
  const { report, close, written } = outcome;
  console.log(
    [
      path,
      size,
      `peak +${mib(report.peak - report.baseline)} MiB`,
      `after gc +${mib(report.rss - report.baseline)} MiB`,
      `written ${mib(written)} MiB`,
      `close ${close ? `${close.code} ${close.reason}` : "none"}`,
      `parse_error ${report.errors.length ? report.errors[0] : "none"}`,
    ].join(" | "),
  );
}

for (const [path, sizes] of Object.entries(SIZES)) {
  if (only.length > 0 && !only.includes(path)) continue;
  for (const size of sizes) {
    await using server = new BoundsServer(lib);
    await server.warmUp();
    if (path === "feed") {
      line(path, size, await feed(server, size, size < MiB ? 2_000_000 : 1000));
    } else if (path === "echo") {
      line(path, size, await neverRead(server, { size, maxBytes: 512 * MiB }));
    } else if (path === "connecting") {
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      (async () => {
        for await (const conn of listener) held.push(conn);
      })().catch(() => {});
      const result = await server.get<
        { sent: number; errors: string[]; baseline: number; peak: number }
      >(
        `/connecting?port=${listener.addr.port}&size=${size}&count=${
          size < 1024 ? 2_000_000 : 200_000
        }`,
      );
      console.log(
        `${path} | ${size} | peak +${
          mib(result.peak - result.baseline)
        } MiB | sent ${result.sent} | parse_error ${
          result.errors[0] ?? "none"
        }`,
      );
      for (const conn of held) conn.close();
    } else {
      line(
        path,
        size,
        await flood(server, {
          path: `/${path}`,
          size,
          maxBytes: 512 * MiB,
        }),
      );
    }
  }
}
