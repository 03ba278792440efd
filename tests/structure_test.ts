/**
 * The shape of the library: no import cycle among its files (type-only
 * imports included), as `deno info --json` sees the graph of every entry
 * point in deno.json, and no library file over 600 lines of code.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { packageEntries, runDeno } from "./_package.ts";

const ROOT = new URL("../", import.meta.url);
const MAX_CODE_LINES = 600;

/** One module of `deno info --json`, the fields read here. */
interface InfoModule {
  specifier: string;
  error?: string;
  dependencies?: {
    specifier: string;
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

/** Whether `specifier` is a file of this repository (not the @std mirror). */
function libraryPath(specifier: string): string | undefined {
  if (!specifier.startsWith(ROOT.href)) return undefined;
  const path = specifier.slice(ROOT.href.length);
  // .cache/ holds the offline @std mirror, node_modules/ npm packages.
  if (path.startsWith(".") || path.startsWith("node_modules/")) {
    return undefined;
  }
  return path;
}

/**
 * The import graph of the repository's files reached from the entry points:
 * file -> the files it imports, by `import`, `import type`, `export ... from`
 * or a types-only specifier alike.
 */
async function importGraph(): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  const infos = await Promise.all(
    Object.values(packageEntries()).map(async (entry) =>
      JSON.parse(await runDeno(["info", "--json", entry])) as {
        modules: InfoModule[];
      }
    ),
  );
  for (const { modules } of infos) {
    for (const module of modules) {
      const from = libraryPath(module.specifier);
      if (from === undefined) continue;
      assertEquals(module.error, undefined, `${from} does not resolve`);
      const edges = graph.get(from) ?? new Set<string>();
      graph.set(from, edges);
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code, dependency.type]) {
          const to = target?.specifier && libraryPath(target.specifier);
          if (to) edges.add(to);
        }
      }
    }
  }
  return graph;
}

/** The first import cycle found, as a path `a -> b -> a`, or `undefined`. */
function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (file: string): string[] | undefined => {
    if (onPath.has(file)) return [...path.slice(path.indexOf(file)), file];
    if (done.has(file)) return undefined;
    path.push(file);
    onPath.add(file);
    for (const next of [...(graph.get(file) ?? [])].sort()) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
    return undefined;
  };
  for (const file of [...graph.keys()].sort()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

/**
 * The lines of `source` that hold code: not blank, not only a `//` comment,
 * not inside a `/* *\/` or `/** *\/` block. Strings, template literals and
 * regular expressions are skipped over, so a `//` inside them is code.
 */
function codeLines(source: string): number {
  let lines = 0;
  let lineHasCode = false;
  // What the scanner is inside of; templates nest through `${`.
  type State = "code" | "line" | "block" | "'" | '"' | "`" | "regex";
  let state: State = "code";
  const braces: number[] = []; // open braces of each `${` we are inside
  let previous = ""; // the last non-space code character, for regex literals
  let inClass = false; // inside a regex's [...], where `/` does not end it
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    const next = source[i + 1];
    if (char === "\n") {
      if (lineHasCode) lines++;
      lineHasCode = false;
      if (state === "line") state = "code";
      continue;
    }
    switch (state) {
      case "line":
      case "block":
        if (state === "block" && char === "*" && next === "/") {
          state = "code";
          i++;
        }
        continue;
      case "'":
      case '"':
      case "`":
      case "regex":
        lineHasCode ||= !/\s/.test(char);
        if (char === "\\") i++;
        else if (state === "regex" && (char === "[" || char === "]")) {
          inClass = char === "[";
        } else if (state === "`" && char === "$" && next === "{") {
          braces.push(0);
          state = "code";
          i++;
        } else if (
          char === state || (state === "regex" && char === "/" && !inClass)
        ) {
          state = "code";
          previous = char;
        }
        continue;
    }
    if (char === "/" && next === "/") {
      state = "line";
      continue;
    }
    if (char === "/" && next === "*") {
      state = "block";
      i++;
      continue;
    }
    if (/\s/.test(char)) continue;
    lineHasCode = true;
    if (char === "'" || char === '"' || char === "`") state = char;
    else if (
      char === "/" && (previous === "" || /[(,=:[!&|?{};]/.test(previous))
    ) {
      state = "regex";
    } else if (char === "{" && braces.length > 0) braces[braces.length - 1]!++;
    else if (char === "}" && braces.length > 0) {
      if (braces[braces.length - 1] === 0) {
        braces.pop();
        state = "`";
      } else braces[braces.length - 1]!--;
    }
    previous = char;
  }
  return lines + (lineHasCode ? 1 : 0);
}

/** The library's files: top-level .ts files and those of its `_` folders. */
async function libraryFiles(): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
      const path = dir + entry.name;
      if (entry.isDirectory && (dir !== "" || entry.name.startsWith("_"))) {
        await walk(`${path}/`);
      } else if (entry.isFile && entry.name.endsWith(".ts")) {
        files.push(path);
      }
    }
  };
  await walk("");
  return files.sort();
}

Deno.test("codeLines counts code, not blank lines or comments", () => {
  const source = [
    "/**",
    " * A doc block // with a slash pair",
    " */",
    "",
    "// a line comment",
    'const url = "ws://example.com"; // code, then a comment',
    "/* a block */ const a = 1;",
    "const b = /[/*]/; /* a block",
    "   still the block */",
    "const t = `a ${`nested // ${1}`} //`;",
    "  ",
  ].join("\n");
  assertEquals(codeLines(source), 4);
});

Deno.test("no import cycle among the library's files, type imports included", async () => {
  const graph = await importGraph();
  assert(graph.has("mod.ts") && graph.has("connection.ts"), "graph is empty");
  const cycle = findCycle(graph);
  assertEquals(
    cycle,
    undefined,
    `Import cycle: ${
      cycle?.join(" -> ")
    }. Move what both files need into a third file.`,
  );
});

Deno.test(`no library file has more than ${MAX_CODE_LINES} lines of code`, async () => {
  const counts: [string, number][] = [];
  for (const file of await libraryFiles()) {
    counts.push([
      file,
      codeLines(await Deno.readTextFile(new URL(file, ROOT))),
    ]);
  }
  counts.sort((a, b) => b[1] - a[1]);
  console.log(
    "Largest files (lines of code):",
    counts.slice(0, 5).map(([file, lines]) => `${file} ${lines}`).join(", "),
  );
  const over = counts.filter(([, lines]) => lines > MAX_CODE_LINES);
  assertEquals(
    over,
    [],
    `Over ${MAX_CODE_LINES} lines of code (comments and blank lines aside): split them by responsibility`,
  );
});
