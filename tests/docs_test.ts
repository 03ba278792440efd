/**
 * The README and the docs/ pages as jsr.io and a clone show them: every link
 * leads to a published file and an existing heading, every TypeScript block is
 * one `deno test --doc` runs, every `deno task` printed exists, and the README
 * says how to install and how to start from a clone.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";

const ROOT = new URL("../", import.meta.url);

/**
 * `ts ignore` blocks, each with the reason it cannot run here; everything
 * else in TypeScript or JavaScript runs under `deno test --doc`.
 */
const IGNORED_BLOCKS: Record<string, number> = {
  // Oak 17 is only on JSR; tests/frameworks_test.ts runs it where jsr.io is
  // reachable.
  "docs/frameworks.md": 1,
};

const CODE_LANGUAGES = new Set([
  "ts",
  "typescript",
  "tsx",
  "js",
  "javascript",
  "jsx",
  "mjs",
]);

interface DenoJson {
  tasks: Record<string, unknown>;
  publish: { exclude: string[] };
}

const config = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
) as DenoJson;

/** README.md and every docs/*.md, as paths from the repository root. */
async function pages(): Promise<string[]> {
  const found = ["README.md"];
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      found.push(`docs/${entry.name}`);
    }
  }
  return found.sort();
}

function read(path: string): Promise<string> {
  return Deno.readTextFile(new URL(path, ROOT));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(new URL(path, ROOT));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The page's text outside fenced code blocks. */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
}

/** The info strings of the page's fenced code blocks. */
function fences(markdown: string): string[] {
  return [...markdown.matchAll(/^```([^\n]*)\n[\s\S]*?^```$/gm)].map((m) =>
    m[1]!.trim()
  );
}

/** GitHub's (and jsr.io's) anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchors(markdown: string): Set<string> {
  return new Set(
    [...prose(markdown).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)),
  );
}

/** Whether `deno publish` leaves `path` out of the package. */
function unpublished(path: string): boolean {
  return config.publish.exclude.some((pattern) =>
    pattern.endsWith("/")
      ? path.startsWith(pattern) || `${path}/` === pattern
      : path === pattern
  );
}

/** `path` resolved against the folder of `page`, from the repository root. */
function resolve(page: string, target: string): string {
  const url = new URL(target, new URL(page, ROOT));
  return decodeURIComponent(url.pathname.slice(ROOT.pathname.length));
}

Deno.test("every relative link of the README and docs/ leads to a published file and an existing heading", async () => {
  const broken: string[] = [];
  for (const page of await pages()) {
    const text = prose(await read(page));
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
      const [file = "", anchor] = target!.split("#");
      const path = file === "" ? page : resolve(page, file);
      if (unpublished(path)) {
        broken.push(`${page}: ${target} is not published to JSR`);
        continue;
      }
      if (!await exists(path)) {
        broken.push(`${page}: ${target} does not exist`);
        continue;
      }
      if (anchor !== undefined && !anchors(await read(path)).has(anchor)) {
        broken.push(`${page}: ${target} names no heading of ${path}`);
      }
    }
  }
  assertEquals(broken, []);
});

Deno.test("every TypeScript block of the README and docs/ is run by deno test --doc", async () => {
  const ignored: Record<string, number> = {};
  for (const page of await pages()) {
    for (const info of fences(await read(page))) {
      const [language = "", ...attributes] = info.split(/\s+/);
      if (CODE_LANGUAGES.has(language) && attributes.includes("ignore")) {
        ignored[page] = (ignored[page] ?? 0) + 1;
      }
    }
  }
  assertEquals(ignored, IGNORED_BLOCKS);
});

Deno.test("every deno task printed in the README, docs/ and the examples exists", async () => {
  const files = await pages();
  for await (const entry of Deno.readDir(new URL("examples/", ROOT))) {
    if (entry.isFile) files.push(`examples/${entry.name}`);
  }
  const missing: string[] = [];
  let seen = 0;
  for (const file of files) {
    for (
      const [, task] of (await read(file)).matchAll(/deno task ([\w:-]+)/g)
    ) {
      seen++;
      if (!(task! in config.tasks)) missing.push(`${file}: deno task ${task}`);
    }
  }
  assertEquals(missing, []);
  assert(seen > 0, "no deno task found: the pattern is broken");
});

Deno.test("docs/ is published, and docs/README.md lists every page", async () => {
  assert(!unpublished("docs/README.md"), "publish.exclude covers docs/");
  const index = await read("docs/README.md");
  const listed = new Set(
    [...index.matchAll(/\]\(([\w-]+\.md)\)/g)].map((m) => `docs/${m[1]}`),
  );
  const unlisted = (await pages()).filter((page) =>
    page.startsWith("docs/") && page !== "docs/README.md" && !listed.has(page)
  );
  assertEquals(unlisted, []);
});

Deno.test("the README opens with deno add, gives the two set-up commands of a clone, and keeps its lines short", async () => {
  const readme = await read("README.md");
  const add = readme.indexOf("deno add jsr:@anyws/anyws");
  assert(add !== -1 && add < 1000, "deno add near the top");
  // .ci/run and a hook look for these exact commands.
  for (const command of ["task demo", "task test"]) {
    assert(readme.includes(`npx -y deno@2.9.6 ${command}`), command);
  }
  const long = readme.split("\n").filter((line) => line.length > 100);
  assertEquals(long, []);
});
