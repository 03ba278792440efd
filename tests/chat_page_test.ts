/**
 * The chat page's own script (examples/chat_page.html), run in Deno against
 * a tiny stand-in for the few DOM calls it makes, with Deno's real
 * `WebSocket` and the real chat server: it reconnects after the server
 * restarts on the same port. (No browser is installed in CI; the stand-in
 * implements only what the script touches, so a new DOM call fails loudly.)
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { startChatServer } from "../examples/chat_server.ts";
import { within } from "./_fixture.ts";

/** A stand-in for the elements the script reads and writes. */
class FakeElement {
  value = "";
  disabled = false;
  title = "";
  readonly children: FakeElement[] = [];
  readonly #listeners = new Map<string, (event: unknown) => void>();
  #text = "";
  constructor(readonly onText: (text: string) => void = () => {}) {}
  get textContent(): string {
    return this.#text;
  }
  set textContent(text: string) {
    this.#text = text;
    this.onText(text);
  }
  addEventListener(type: string, listener: (event: unknown) => void): void {
    this.#listeners.set(type, listener);
  }
  fire(type: string, event: unknown): void {
    this.#listeners.get(type)?.(event);
  }
  append(child: FakeElement): void {
    this.children.push(child);
  }
  scrollIntoView(): void {}
  focus(): void {}
}

/** Runs the page's module script as if loaded from `pageUrl`. */
async function openPage(pageUrl: string) {
  const html = await (await fetch(pageUrl)).text();
  const script = /<script type="module">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert(script, "the page has an inline module script");

  const statuses: string[] = [];
  const waiters: { state: string; from: number; resolve: () => void }[] = [];
  const status = new FakeElement((text) => {
    statuses.push(text);
    for (const waiter of waiters.splice(0)) {
      if (statuses.indexOf(waiter.state, waiter.from) >= 0) waiter.resolve();
      else waiters.push(waiter);
    }
  });
  const elements: Record<string, FakeElement> = { status };
  for (const id of ["log", "error", "form", "name", "text", "send"]) {
    elements[id] = new FakeElement();
  }
  const sockets: WebSocket[] = [];
  class PageSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  const document = {
    getElementById: (id: string) => elements[id],
    createElement: () => new FakeElement(),
  };
  // The script is ours (read from the page we serve): run it with the
  // stand-ins in place of the browser's globals.
  new Function("document", "location", "WebSocket", script)(
    document,
    { href: pageUrl },
    PageSocket,
  );
  return {
    elements,
    statuses,
    /** Resolves once the status shows `state` (from the `from`-th change on). */
    status(state: string, from = 0): Promise<void> {
      if (statuses.indexOf(state, from) >= 0) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ state, from, resolve });
      return promise;
    },
    /** Types a line and submits the form. */
    say(name: string, text: string): void {
      elements.name!.value = name;
      elements.text!.value = text;
      elements.form!.fire("submit", { preventDefault() {} });
    },
    /** Leaves the page: closes its socket with 1000, which it does not retry. */
    async leave(): Promise<void> {
      const socket = sockets.at(-1)!;
      const closed = new Promise((resolve) =>
        socket.addEventListener("close", resolve, { once: true })
      );
      socket.close(1000);
      await closed;
    },
  };
}

Deno.test("the chat page reconnects after the server restarts on the same port, showing connecting/connected/disconnected", async () => {
  let server = startChatServer({ port: 0 });
  const { port } = server.addr;
  try {
    const page = await openPage(`http://127.0.0.1:${port}/`);
    await within(page.status("connected"), "the page to connect");
    assertEquals(page.statuses, ["connecting", "connected"]);
    assertEquals(page.elements.send!.disabled, false);

    const before = page.statuses.length;
    await server.shutdown(); // closes the page's socket with 1001
    await within(page.status("disconnected", before), "the page to notice");
    assertEquals(page.elements.send!.disabled, true);

    server = startChatServer({ port });
    const after = page.statuses.length;
    await within(page.status("connected", after), "the page to reconnect");
    // Failed attempts before the restart show up as connecting/disconnected.
    const changes = page.statuses.slice(before);
    assertEquals(changes.at(-2), "connecting");
    assertEquals(changes.at(-1), "connected");

    const log = page.elements.log!;
    const said = new Promise<void>((resolve) => {
      const append = log.append.bind(log);
      log.append = (child) => (append(child), resolve());
    });
    page.say("ann", "back again");
    await within(said, "the line to come back");
    assertEquals(log.children.map((item) => item.textContent), [
      "ann: back again",
    ]);

    await page.leave();
    assertEquals(page.statuses.at(-1), "disconnected");
  } finally {
    await server.shutdown();
  }
});
