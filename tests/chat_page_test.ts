/**
 * The chat demo's page (examples/chat_page.html) in headless Chromium
 * (Debian `chromium`, driven by `npm:playwright-core`), against the real chat
 * server: what a person sees at desktop (1280×800) and phone (375×740)
 * widths, rooms, refused lines, a flood, what the page does on each close
 * code, a dead connection and a server restart. Screenshots go to
 * `tests/artifacts/chat-*.png`.
 *
 * Without Chromium the tests are skipped, unless `ANYWS_REQUIRE_PEERS=1`
 * (CI), which makes them fail instead.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
} from "npm:playwright-core@1.65.1";
import {
  MAX_TEXT_LENGTH,
  RATE_LIMIT,
  startChatServer,
} from "../examples/chat_server.ts";
import { connect, type Connection } from "../mod.ts";
import { listen, UNIT_MS, within } from "./_fixture.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("./artifacts/", import.meta.url);
const REQUIRE_PEERS = Deno.env.get("ANYWS_REQUIRE_PEERS") === "1";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
// The page's own timings (chat_page.html).
const RETRY_CAP_MS = 5000;
const IDLE_MS = 15_000;
const DEAD_MS = 10_000;

function probe(): string | undefined {
  try {
    const { success } = new Deno.Command(CHROMIUM, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success ? undefined : `${CHROMIUM} --version failed`;
  } catch {
    return `${CHROMIUM} is not installed (apt-get install chromium)`;
  }
}
const missing = probe();

/** A Deno.test that needs Chromium: skipped without it, unless required. */
function browserTest(name: string, fn: (browser: Browser) => Promise<void>) {
  Deno.test({
    name,
    ignore: missing !== undefined && !REQUIRE_PEERS,
    async fn() {
      if (missing) throw new Error(`Cannot run: ${missing}`);
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: 20 * UNIT_MS,
        // Playwright gives each launch a fresh --user-data-dir.
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        await fn(browser);
      } finally {
        await browser.close();
      }
    },
  });
}

/** A page with everything that would show up in its console recorded. */
interface ChatPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and warnings, page errors, failed or 4xx/5xx requests. */
  problems: string[];
}

async function openPage(
  browser: Browser,
  url: string,
  viewport = DESKTOP,
  /** Stop the page's clock after loading (see Playwright's `page.clock`). */
  options: { clock?: boolean } = {},
): Promise<ChatPage> {
  const context = await browser.newContext({ viewport, locale: "en-GB" });
  context.setDefaultTimeout(10 * UNIT_MS);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error}`));
  page.on("requestfailed", (request) => {
    problems.push(`request failed: ${request.url()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) {
      problems.push(`HTTP ${response.status()}: ${response.url()}`);
    }
  });
  if (options.clock) {
    // The page's timers fire only when the test moves its clock, from the
    // start (a clock paused after loading may already have fired a retry).
    const start = Date.now();
    await page.clock.install({ time: start });
    await page.clock.pauseAt(start + 1);
  }
  await page.goto(url);
  return { page, context, problems };
}

/** Opens the page, waits until it is connected and in its room, sets the name. */
async function join(
  browser: Browser,
  url: string,
  name: string,
  viewport = DESKTOP,
): Promise<ChatPage> {
  const chat = await openPage(browser, url, viewport);
  await statusIs(chat.page, "connected");
  await chat.page.locator("#empty").getByText(/^No messages in #/).or(
    chat.page.locator("#log li").first(),
  ).waitFor();
  await chat.page.locator("#name").fill(name);
  return chat;
}

async function titleIs(page: Page, title: string): Promise<void> {
  await page.waitForFunction(`document.title === ${JSON.stringify(title)}`);
}

function statusIs(page: Page, state: string): Promise<void> {
  return page.locator("#status").getByText(state, { exact: true }).waitFor();
}

/** Types a line, presses Enter, and waits until the server accepted it. */
async function say(page: Page, text: string): Promise<void> {
  await page.locator("#text").fill(text);
  await page.locator("#text").press("Enter");
  await page.locator("#log li.mine .text").getByText(text, { exact: true })
    .last().waitFor();
  assertEquals(await page.locator("#text").inputValue(), "");
}

function lines(page: Page): Promise<string[]> {
  return page.locator("#log li").allTextContents();
}

async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const file = new URL(name, ARTIFACTS);
  await page.screenshot({ path: file.pathname });
  const png = await Deno.readFile(file);
  assertEquals([...png.subarray(1, 4)], [80, 78, 71], `${name} is a PNG`);
}

/** Everything the page shows stays inside the viewport, nothing scrolls sideways. */
async function assertFits(page: Page, width: number): Promise<void> {
  await page.setViewportSize({ width, height: 740 });
  for (const id of ["send", "text", "name", "room", "switch", "status"]) {
    const box = await page.locator(`#${id}`).boundingBox();
    assert(box, `#${id} is shown at ${width} px`);
    assert(
      box.x >= 0 && box.x + box.width <= width,
      `#${id} spans ${box.x}..${box.x + box.width} at ${width} px`,
    );
  }
  const scrollWidth: number = await page.evaluate(
    "document.documentElement.scrollWidth",
  );
  assert(scrollWidth <= width, `the page is ${scrollWidth} px wide`);
}

browserTest(
  "the chat page shows names, times and your own lines apart, fits desktop and phone widths, and logs no errors",
  async (browser) => {
    await using chat = startChatServer({ port: 0 });
    const url = `http://127.0.0.1:${chat.addr.port}/`;
    const alice = await join(browser, url, "Alice", DESKTOP);
    const bob = await join(browser, url, "Bob", PHONE);

    // Alice clicks Send; Bob presses Enter.
    await alice.page.locator("#text").fill(
      "Hi Bob! Did the deploy go through?",
    );
    await alice.page.locator("#send").click();
    await bob.page.locator("#log li").getByText("Hi Bob!", { exact: false })
      .waitFor();
    await say(bob.page, "Yes, all green 🎉 The new rooms work too.");
    await say(
      alice.page,
      "Great. ünïcødé, 日本語 and a long line wrap fine: " +
        "lorem ipsum dolor sit amet ".repeat(6).trim(),
    );
    await bob.page.locator("#log li").nth(2).waitFor();

    for (const { page } of [alice, bob]) {
      // Each line: the name and the text (read as "name: text"), and a time.
      const texts = await lines(page);
      assertEquals(texts.length, 3);
      assertEquals(texts[0], "Alice: Hi Bob! Did the deploy go through?");
      assertEquals(texts[1], "Bob: Yes, all green 🎉 The new rooms work too.");
      for (
        const time of await page.locator("#log li").evaluateAll((items) =>
          items.map((item) => item.getAttribute("data-time"))
        )
      ) {
        assertMatch(time ?? "", /^\d\d:\d\d$/);
      }
      // The room is shown, in the field and the tab title.
      assertEquals(await page.locator("#room").inputValue(), "lobby");
      assertEquals(await page.title(), "#lobby · anyws chat");
    }
    // Your own lines are set apart (and only yours).
    const mine = (page: Page) =>
      page.locator("#log li").evaluateAll((items) =>
        items.map((item) => item.classList.contains("mine"))
      );
    assertEquals(await mine(alice.page), [true, false, true]);
    assertEquals(await mine(bob.page), [false, true, false]);

    await screenshot(alice.page, "chat-desktop.png");
    await screenshot(bob.page, "chat-phone.png");
    // Usable down to 320 px: nothing cut off or scrolling sideways.
    for (const width of [320, 375, 392, 768, 1280]) {
      await assertFits(bob.page, width);
    }
    assertEquals([...alice.problems, ...bob.problems], []);
  },
);

browserTest(
  "the chat page switches rooms from its room field and from the URL fragment, keeping each room's lines",
  async (browser) => {
    await using chat = startChatServer({ port: 0 });
    const url = `http://127.0.0.1:${chat.addr.port}/`;
    const alice = await join(browser, url, "Alice");
    const bob = await join(browser, url, "Bob", PHONE);
    await say(alice.page, "in the lobby");
    await bob.page.locator("#log li").getByText("in the lobby").waitFor();

    // Bob switches with the room field.
    await bob.page.locator("#room").fill("kitchen");
    await bob.page.locator("#switch").click();
    await titleIs(bob.page, "#kitchen · anyws chat");
    assertEquals(new URL(bob.page.url()).hash, "#kitchen");
    await bob.page.locator("#empty").getByText("No messages in #kitchen yet.", {
      exact: false,
    }).waitFor();
    assertEquals(await lines(bob.page), []);
    await say(bob.page, "alone in the kitchen");
    await say(alice.page, "still in the lobby");
    // Neither room's line reached the other room.
    assertEquals(await lines(bob.page), ["Bob: alone in the kitchen"]);
    assertEquals(await lines(alice.page), [
      "Alice: in the lobby",
      "Alice: still in the lobby",
    ]);

    // Alice follows through the fragment (a link to #kitchen would do this).
    await alice.page.evaluate('location.hash = "#kitchen"');
    await titleIs(alice.page, "#kitchen · anyws chat");
    await alice.page.locator("#empty").getByText("No messages in #kitchen")
      .waitFor();
    await say(alice.page, "hi Bob");
    await bob.page.locator("#log li").getByText("hi Bob").waitFor();

    // Back in the lobby, Bob sees the lobby's lines he had received.
    await bob.page.evaluate("history.back()");
    await titleIs(bob.page, "#lobby · anyws chat");
    assertEquals(await lines(bob.page), ["Alice: in the lobby"]);
    assertEquals([...alice.problems, ...bob.problems], []);
  },
);

browserTest(
  "the chat page keeps a refused line in the field with the reason, and sends it once allowed",
  async (browser) => {
    await using chat = startChatServer({ port: 0 });
    const url = `http://127.0.0.1:${chat.addr.port}/`;
    const bob = await join(browser, url, "Bob", PHONE);
    const { page } = bob;

    // Faster than the rate limit allows, as the page allows it: each line
    // waits for its verdict (in the page, so that test overhead cannot let
    // the bucket refill).
    const refused = await page.evaluate(`(async () => {
    const text = document.getElementById("text");
    const form = document.getElementById("form");
    const error = document.getElementById("error");
    for (let i = 1; i <= ${5 * RATE_LIMIT.burst}; i++) {
      text.value = "quick line " + i;
      form.requestSubmit();
      while (form.getAttribute("aria-busy") === "true") {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      if (error.textContent) return text.value;
    }
  })()`) as string | undefined;
    assert(refused, "the rate limit refused a line");
    assertEquals(await page.locator("#text").inputValue(), refused);
    assertMatch(
      await page.locator("#error").textContent() ?? "",
      /^Slow down: at most 5 messages a second \(20 at once\)\. Try again in [\d.]+ s\.$/,
    );
    assertEquals(await page.locator("#error-box").isVisible(), true);
    await screenshot(page, "chat-phone-refused.png");

    // Send comes back by itself after the wait the server gave; then it goes.
    await page.locator("#send:enabled").waitFor();
    await page.locator("#send").click();
    await page.locator("#log li.mine").getByText(refused, { exact: true })
      .waitFor();
    assertEquals(await page.locator("#text").inputValue(), "");
    assertEquals(await page.locator("#error-box").isVisible(), false);
    assertEquals(bob.problems, []);
  },
);

browserTest(
  "the chat page takes a malformed fragment literally and shows a line break as a space, in one line",
  async (browser) => {
    await using chat = startChatServer({ port: 0 });
    const base = `http://127.0.0.1:${chat.addr.port}/`;
    // decodeURIComponent throws URIError on this fragment.
    const { page, problems } = await openPage(browser, `${base}#%E0%A4%A`);
    await statusIs(page, "connected");
    await titleIs(page, "#%E0%A4%A · anyws chat");
    await page.locator("#empty").getByText(/^No messages in #%E0%A4%A/)
      .waitFor();

    await using mallory = await connect(`ws://127.0.0.1:${chat.addr.port}/ws`);
    mallory.send(JSON.stringify({ type: "join", room: "%E0%A4%A" }));
    await within(mallory.nextMessage(), "mallory's joined");
    mallory.send(JSON.stringify({
      type: "say",
      name: "Mallory",
      text: "see you\nBob: I owe Mallory $100\r\nAlice: me too\u2028ok",
    }));
    await page.locator("#log li").waitFor();
    assertEquals(await lines(page), [
      "Mallory: see you Bob: I owe Mallory $100 Alice: me too ok",
    ]);
    assertEquals(await page.locator("#log .who").allTextContents(), [
      "Mallory",
    ]);
    // Rendered as one line of text in one bubble.
    const height = await page.locator("#log li .text").evaluate((text) =>
      text.getClientRects().length
    );
    assertEquals(height, 1);
    assertEquals(problems, []);
  },
);

browserTest(
  "the chat page stays connected and usable while another client floods its room",
  async (browser) => {
    await using chat = startChatServer({ port: 0 });
    const url = `http://127.0.0.1:${chat.addr.port}/`;
    const alice = await join(browser, url, "Alice");

    await using flooder = await connect(`ws://127.0.0.1:${chat.addr.port}/ws`);
    const line = JSON.stringify({
      type: "say",
      name: "flood",
      text: "x".repeat(MAX_TEXT_LENGTH),
    });
    const started = performance.now();
    for (let i = 0; i < 5000; i++) {
      flooder.send(line);
      if (i % 100 === 99) {
        await within(flooder.drained(), "the flooder's buffer");
      }
    }
    // The flooder is told to slow down.
    let slowDown: Record<string, unknown> | undefined;
    while (!slowDown) {
      const event = (await within(flooder.nextMessage(), "the refusal")).json<
        Record<string, unknown>
      >();
      if (event.type === "error") slowDown = event;
    }
    assertMatch(String(slowDown.message), /^Slow down: /);
    assert(Number(slowDown.retryIn) > 0);

    await say(alice.page, "still here");
    const seconds = (performance.now() - started) / 1000;
    const flooded = await alice.page.locator("#log li:not(.mine)").count();
    assert(
      flooded >= 1 &&
        flooded <= RATE_LIMIT.burst + Math.ceil(RATE_LIMIT.perSecond * seconds),
      `${flooded} flood lines in ${seconds.toFixed(1)} s`,
    );
    assertEquals(
      await alice.page.locator("#status").textContent(),
      "connected",
    );
    assertEquals(alice.problems, []);
  },
);

/**
 * A stand-in for the chat server: serves the chat page, and answers each
 * connection's join by closing with the next of `closes`; once they are used
 * up, with `joined` and then `events`.
 */
function standIn(closes: [number, string][], events: object[] = []) {
  const page = Deno.readTextFileSync(
    new URL("../examples/chat_page.html", import.meta.url),
  );
  let connections = 0;
  const opened: PromiseWithResolvers<void>[] = [];
  const server = listen({
    path: "/ws",
    fallback: (request) =>
      new URL(request.url).pathname === "/"
        ? new Response(page, { headers: { "content-type": "text/html" } })
        : new Response(null, { status: 204 }),
    onEstablish(conn: Connection) {
      const close = closes[connections];
      opened[connections]?.resolve();
      connections++;
      conn.on("message", (conn, data) => {
        const { type, room } = JSON.parse(String(data));
        if (type !== "join") return;
        if (close) return conn.close(...close);
        for (const event of [{ type: "joined", room }, ...events]) {
          conn.send(JSON.stringify(event));
        }
      });
    },
  });
  return {
    server,
    url: `http://127.0.0.1:${server.addr.port}/`,
    get connections() {
      return connections;
    },
    /** Resolves when the `n`-th connection (1-based) is established. */
    connection(n: number): Promise<void> {
      if (connections >= n) return Promise.resolve();
      return (opened[n - 1] ??= Promise.withResolvers()).promise;
    },
  };
}

browserTest(
  "the chat page retries after 1001, 1008, 1011, 1012, 1013 and 4000 with a countdown, and not after 1000, 1002, 1003, 1007, 1009, 1010",
  async (browser) => {
    const retried: [number, string][] = [
      [1001, "going away"],
      [1008, "send buffer full"],
      [1011, "handler error"],
      [1012, "restarting"],
      [1013, "try again later"],
      [4000, "application"],
    ];
    const final: [number, string][] = [
      [1000, "done"],
      [1002, "protocol error"],
      [1003, "unsupported data"],
      [1007, "invalid data"],
      [1009, "message too big"],
      [1010, ""],
    ];
    const server = standIn([...retried, ...final]);
    await using _server = server.server;
    const { page, problems } = await openPage(browser, server.url, PHONE, {
      clock: true,
    });
    const banner = page.locator("#banner");

    for (const [index, [code, reason]] of [...retried, ...final].entries()) {
      await within(server.connection(index + 1), `connection ${index + 1}`);
      await statusIs(page, "disconnected");
      const why = await page.locator("#why").textContent();
      assertMatch(
        why ?? "",
        new RegExp(`\\(${code}${reason ? `: ${reason}` : ""}\\)\\.$`),
      );
      assert(await banner.isVisible(), `the banner shows after ${code}`);
      if (index === 1) await screenshot(page, "chat-phone-reconnecting.png");
      if (retried.some(([retry]) => retry === code)) {
        assertMatch(
          await page.locator("#retry").textContent() ?? "",
          /^Retrying in [1-5] s…$/,
        );
        assertEquals(
          await page.locator("#retry-now").textContent(),
          "Retry now",
        );
        // The countdown runs out and the page connects again by itself.
        await page.clock.fastForward(RETRY_CAP_MS + 100);
        await within(server.connection(index + 2), `the retry after ${code}`);
      } else {
        assertEquals(await page.locator("#retry").textContent(), "");
        assertEquals(
          await page.locator("#retry-now").textContent(),
          "Reconnect",
        );
        // A minute later it is still waiting for the person.
        await page.clock.fastForward(60_000);
        assertEquals(server.connections, index + 1);
        assertEquals(
          await page.locator("#status").textContent(),
          "disconnected",
        );
        await page.locator("#retry-now").click();
      }
    }
    // The connection after the last close stays open.
    await statusIs(page, "connected");
    assertEquals(await banner.isVisible(), false);
    assertEquals(problems, []);
  },
);

browserTest(
  "the chat page shows the server's notice that lines were skipped, until dismissed",
  async (browser) => {
    const message =
      'Your connection fell behind, so 37 lines were skipped in "lobby".';
    const server = standIn([], [
      { type: "said", name: "Ann", text: "before", at: Date.now() },
      { type: "skipped", room: "lobby", count: 37, message },
      { type: "said", name: "Ann", text: "after", at: Date.now() },
    ]);
    await using _server = server.server;
    const { page, problems } = await openPage(browser, server.url, PHONE);
    await page.locator("#log li").getByText("Ann: after").waitFor();
    assertEquals(await page.locator("#notice").textContent(), message);
    assert(await page.locator("#notice-box").isVisible());
    await screenshot(page, "chat-phone-skipped.png");
    await page.locator("#notice-close").click();
    assertEquals(await page.locator("#notice-box").isVisible(), false);
    assertEquals(await lines(page), ["Ann: before", "Ann: after"]);
    assertEquals(problems, []);
  },
);

browserTest(
  "the chat page notices a connection that stopped answering (heartbeat) instead of showing connected",
  async (browser) => {
    await using chat = startChatServer({ port: 0 });
    await using proxy = new TcpProxy(chat.addr.port);
    const { page } = await openPage(
      browser,
      `http://127.0.0.1:${proxy.port}/`,
      DESKTOP,
      { clock: true },
    );
    await statusIs(page, "connected");
    // The network path dies: nothing gets through, nothing is closed.
    proxy.blackhole();
    await page.clock.fastForward(IDLE_MS + 1000); // the page pings
    assertEquals(await page.locator("#status").textContent(), "connected");
    await page.clock.fastForward(DEAD_MS + 1000); // no pong
    await statusIs(page, "disconnected");
    assertEquals(
      await page.locator("#why").textContent(),
      "No answer from the server.",
    );
    assertMatch(
      await page.locator("#retry").textContent() ?? "",
      /^Retrying in \d s…$/,
    );
  },
);

browserTest(
  "the chat page reconnects within its 5 s cap after the server restarts, back in its room",
  async (browser) => {
    let chat = startChatServer({ port: 0 });
    const { port } = chat.addr;
    try {
      const url = `http://127.0.0.1:${port}/#kitchen`;
      const carol = await join(browser, url, "Carol", PHONE);
      const { page } = carol;
      await titleIs(page, "#kitchen · anyws chat");

      // Shutdown closes the page's socket with 1001: it counts down and
      // retries (failing, while the server is down).
      await chat.shutdown();
      await statusIs(page, "disconnected");
      await page.locator("#retry").getByText(/^Retrying in \d s…$/).waitFor();
      assertEquals(
        await page.locator("#why").textContent(),
        "The server went away (1001: server shutting down).",
      );
      chat = startChatServer({ port });
      const restarted = performance.now();
      await page.locator("#status").getByText("connected", { exact: true })
        .waitFor({ timeout: RETRY_CAP_MS + 5 * UNIT_MS });
      const seconds = (performance.now() - restarted) / 1000;
      assert(
        seconds <= RETRY_CAP_MS / 1000 + 2,
        `reconnected after ${seconds} s`,
      );

      // Back in the kitchen: a line from there reaches the page.
      await using dave = await connect(`ws://127.0.0.1:${port}/ws`);
      dave.send(JSON.stringify({ type: "join", room: "kitchen" }));
      await within(dave.nextMessage(), "dave's joined");
      await page.locator("#empty").getByText(/^No messages in #kitchen/)
        .waitFor();
      dave.send(
        JSON.stringify({ type: "say", name: "Dave", text: "welcome back" }),
      );
      await page.locator("#log li").getByText("Dave: welcome back").waitFor();
    } finally {
      await chat.shutdown();
    }
  },
);
