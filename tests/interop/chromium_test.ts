/**
 * Chromium (Debian `chromium`, driven headless by `npm:playwright-core`):
 * the browser's own `WebSocket`, in a page served by
 * examples/chat_server.ts, as a client of serve(); and the chat page driven
 * as a person would, in two pages.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import {
  type BrowserContext,
  chromium,
  type Page,
} from "npm:playwright-core@1.65.1";
import { startChatServer } from "../../examples/chat_server.ts";
import { UNIT_MS, within } from "../_fixture.ts";
import { LineQueue, type Peer } from "./_peer_process.ts";
import { interopTests, REQUIRE_PEERS } from "./_scenarios.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../artifacts/", import.meta.url);

function probe(): { version?: string; missing?: string } {
  try {
    const out = new Deno.Command(CHROMIUM, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const version = /[\d.]+/.exec(new TextDecoder().decode(out.stdout))?.[0];
    if (out.success && version) return { version: version.split(".")[0]! };
    return { missing: `${CHROMIUM} --version failed` };
  } catch {
    return {
      missing: `${CHROMIUM} is not installed (apt-get install chromium)`,
    };
  }
}

const found = probe();
const name = `Chromium ${found.version ?? ""}`.trim();

/** A headless Chromium with a fresh profile, for one test. */
class Browser implements AsyncDisposable {
  readonly context: BrowserContext;
  readonly #profile: string;

  private constructor(context: BrowserContext, profile: string) {
    this.context = context;
    this.#profile = profile;
  }

  static async launch(): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "anyws-chromium-" });
    // Playwright passes the profile as --user-data-dir; it never downloads a
    // browser when given executablePath.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 20 * UNIT_MS,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    return new Browser(context, profile);
  }

  /**
   * SIGKILLs the browser's process group (the browser, its renderers and
   * its network service, which owns the sockets): no close frame is sent.
   */
  kill(): void {
    const pid = this.#browserPid();
    // Playwright starts Chromium as the leader of its own process group.
    Deno.kill(-pid, "SIGKILL");
  }

  /** The browser process: the one with our profile and no --type= switch. */
  #browserPid(): number {
    const flag = `--user-data-dir=${this.#profile}`;
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      let args: string[];
      try {
        args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      } catch {
        continue; // exited meanwhile
      }
      if (args.includes(flag) && !args.some((a) => a.startsWith("--type="))) {
        return Number(entry.name);
      }
    }
    throw new Error(`Cannot find the Chromium process using ${this.#profile}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.context.close().catch(() => {}); // already gone after kill()
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

/**
 * The peer script, run in the page with the browser's own WebSocket; it
 * reports through console.log, which Playwright hands to {@linkcode pagePeer}.
 */
function browserPeer(url: string): void {
  const ws = new WebSocket(url, ["chat.v2", "chat.v1"]);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => console.log(`OPEN ${ws.protocol}`);
  ws.onmessage = (event) => {
    const data = event.data;
    if (typeof data === "string" && data.startsWith("cmd:close ")) {
      const [, code, ...reason] = data.split(" ");
      ws.close(Number(code), reason.join(" "));
    } else {
      ws.send(data);
    }
  };
  ws.onclose = (event) => console.log(`CLOSED ${event.code} ${event.reason}`);
}

/** Starts the chat server, a browser, and the peer script in the chat page. */
async function pagePeer(url: string): Promise<Peer> {
  const chat = startChatServer({ port: 0 });
  let browser: Browser | undefined;
  try {
    browser = await Browser.launch();
    const page = await browser.context.newPage();
    const lines = new LineQueue();
    page.on("console", (message) => {
      const text = message.text();
      if (/^(OPEN|CLOSED) /.test(text)) lines.push(text);
    });
    await page.goto(`http://127.0.0.1:${chat.addr.port}/`);
    await page.evaluate(browserPeer, url);
    const running = browser;
    return {
      async nextLine(what) {
        const line = await within(lines.shift(), `${name}: ${what}`, 10);
        if (line === undefined) throw new Error(`${name} ended before ${what}`);
        return line;
      },
      kill() {
        running.kill();
        return Promise.resolve();
      },
      async [Symbol.asyncDispose]() {
        await running[Symbol.asyncDispose]();
        await chat.shutdown();
      },
    };
  } catch (error) {
    await browser?.[Symbol.asyncDispose]();
    await chat.shutdown();
    throw error;
  }
}

interopTests({
  name,
  missing: found.missing,
  client: pagePeer,
});

Deno.test({
  name:
    `${name} runs the chat page for two people who type, send and see each other's messages`,
  ignore: found.missing !== undefined && !REQUIRE_PEERS,
  async fn() {
    if (found.missing) throw new Error(`Cannot run ${name}: ${found.missing}`);
    await using chat = startChatServer({ port: 0 });
    await using browser = await Browser.launch();
    const url = `http://127.0.0.1:${chat.addr.port}/`;
    const timeout = 10 * UNIT_MS;

    const join = async (who: string): Promise<Page> => {
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.locator("#status").getByText("connected", { exact: true })
        .waitFor({ timeout });
      await page.locator("#name").fill(who);
      return page;
    };
    const alice = await join("Alice");
    const bob = await join("Bob");

    // Alice types and clicks Send; Bob types and presses Enter.
    await alice.locator("#text").pressSequentially("Hello Bob! ünïcødé ✓ 👋");
    await alice.locator("#send").click();
    const aliceLine = "Alice: Hello Bob! ünïcødé ✓ 👋";
    for (const page of [alice, bob]) {
      await page.locator("#log li").getByText(aliceLine, { exact: true })
        .waitFor({ timeout });
    }
    await bob.locator("#text").pressSequentially("Hi Alice, 日本語 too 🎉");
    await bob.locator("#text").press("Enter");
    const bobLine = "Bob: Hi Alice, 日本語 too 🎉";
    for (const page of [alice, bob]) {
      await page.locator("#log li").getByText(bobLine, { exact: true })
        .waitFor({ timeout });
      assertEquals(await page.locator("#log li").allTextContents(), [
        aliceLine,
        bobLine,
      ]);
      // The form was reset after sending.
      assertEquals(await page.locator("#text").inputValue(), "");
    }

    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const shot = new URL("chromium_chat.png", ARTIFACTS);
    await Deno.remove(shot).catch(() => {});
    await alice.screenshot({ path: shot.pathname, fullPage: true });
    const png = await Deno.readFile(shot);
    assert(png.byteLength > 1000, `screenshot is only ${png.byteLength} bytes`);
    assertEquals([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  },
});

Deno.test({
  name:
    `${name} reconnects the chat page after the server restarts on the same port`,
  ignore: found.missing !== undefined && !REQUIRE_PEERS,
  async fn() {
    if (found.missing) throw new Error(`Cannot run ${name}: ${found.missing}`);
    let chat = startChatServer({ port: 0 });
    const { port } = chat.addr;
    try {
      await using browser = await Browser.launch();
      const page = await browser.context.newPage();
      const timeout = 10 * UNIT_MS;
      const status = (text: string) =>
        page.locator("#status").getByText(text, { exact: true })
          .waitFor({ timeout });
      await page.goto(`http://127.0.0.1:${port}/`);
      await status("connected");

      // Shutdown closes the page's socket with 1001: the page retries (and
      // fails, showing "disconnected") until the server is back.
      await chat.shutdown();
      await status("disconnected");
      chat = startChatServer({ port });
      await status("connected");

      await page.locator("#name").fill("Carol");
      await page.locator("#text").fill("back again");
      await page.locator("#send").click();
      await page.locator("#log li").getByText("Carol: back again", {
        exact: true,
      }).waitFor({ timeout });
    } finally {
      await chat.shutdown();
    }
  },
});
