/**
 * Import rules (README "Import rules"): every .ts file's imports are parsed and resolved, and a
 * file that imports across a forbidden edge fails the test with the edge named. The rules:
 *
 * - `lib/engines/**` (the engine seam and the engines below it) imports nothing above it: no
 *   `lib/explain/**`, no command layer;
 * - `lib/oracle/**` (the oracle concept, which engines read) imports no `lib/explain/**` and no
 *   command layer;
 * - `lib/data/**` does not import `lib/engines/**` (batches are plain types in `lib/batch.ts`);
 * - `lib/explain/**` does not import the command layer;
 * - nothing under `lib/` imports `convert/` or the command layer (`app/`, `cli.ts`): the library
 *   sits at the bottom;
 * - `convert/` (.pth and ONNX in/out) imports `lib/` but not the command layer.
 *
 * The command layer is {@link COMMAND_LAYER}: one list to update when commands move.
 */
import assert from "node:assert/strict";
import * as path from "node:path";

/** Paths (files or folders ending in "/") of the command layer, relative to the repository root. */
export const COMMAND_LAYER = ["cli.ts", "app/"];

/** One rule: files under `from` must not import anything under `forbidden`. */
interface ImportRule {
  from: string;
  forbidden: string[];
  why: string;
}

const RULES: ImportRule[] = [
  {
    from: "lib/engines/",
    forbidden: ["lib/explain/", ...COMMAND_LAYER],
    why: "engines sit below the seam and never import upward",
  },
  {
    from: "lib/oracle/",
    forbidden: ["lib/explain/", ...COMMAND_LAYER],
    why: "the oracle concept is read by engines, so it sits below explain and the commands",
  },
  { from: "lib/data/", forbidden: ["lib/engines/"], why: "data modules do not import the engine seam" },
  { from: "lib/explain/", forbidden: COMMAND_LAYER, why: "explain sits below the commands" },
  {
    from: "lib/",
    forbidden: ["convert/", ...COMMAND_LAYER],
    why: "the library sits below convert/ and the commands",
  },
  { from: "convert/", forbidden: COMMAND_LAYER, why: "converters sit below the commands" },
];

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const SKIP = new Set(["node_modules", "weights", "data", "runs", "reports", ".git", "fixtures"]);

/**
 * Specifiers a TypeScript source imports: static imports and re-exports (type-only included),
 * side-effect imports and dynamic / type-level `import("...")`. Comment lines are skipped, so
 * JSDoc examples do not count.
 */
export function importSpecifiers(source: string): string[] {
  const code = source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .split("\n")
    .filter((l) => !/^\s*\/\//.test(l))
    .join("\n");
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s+(?:type\s+)?(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+(?:\s*,\s*(?:\{[^}]*\}|\*\s+as\s+\w+))?)\s+from\s+["']([^"']+)["']/gm,
    /^\s*import\s+["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out;
}

/** The repository-relative path a relative specifier of `file` points to, or null (npm:, node:, URLs). */
function resolve(file: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  return path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec)).split(path.sep).join("/");
}

const under = (p: string, prefix: string) => prefix.endsWith("/") ? p.startsWith(prefix) : p === prefix;

/** Violations of {@link RULES} by `file` (repository-relative) with source `source`. */
export function violations(file: string, source: string): string[] {
  const out: string[] = [];
  for (const spec of importSpecifiers(source)) {
    const target = resolve(file, spec);
    if (!target) continue;
    for (const rule of RULES) {
      if (!under(file, rule.from)) continue;
      const hit = rule.forbidden.find((f) => under(target, f));
      if (hit) out.push(`${file} imports ${target} (${rule.from}** must not import ${hit}: ${rule.why})`);
    }
  }
  return out;
}

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(path.join(ROOT, dir))) {
    if (SKIP.has(e.name) || e.name.startsWith(".")) continue;
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory) yield* tsFiles(rel);
    else if (e.isFile && e.name.endsWith(".ts")) yield rel;
  }
}

Deno.test("the import parser sees static, type-only, multi-line, re-export and dynamic imports, not comments", () => {
  const src = [
    '/** @example import { x } from "./in_comment.ts"; */',
    '// import { y } from "./line_comment.ts";',
    'import type { A } from "./a.ts";',
    "import {",
    "  b,",
    "  c,",
    '} from "../b.ts";',
    'import * as d from "./d.ts";',
    'export * from "./e.ts";',
    'export { f } from "./f.ts";',
    'import "./g.ts";',
    'const h = await import("./h.ts");',
    'type I = import("./i.ts").I;',
    'import j from "npm:j@1";',
  ].join("\n");
  assert.deepEqual(importSpecifiers(src).sort(), [
    "../b.ts",
    "./a.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
    "./h.ts",
    "./i.ts",
    "npm:j@1",
  ]);
});

Deno.test("the rules catch a forbidden edge and let allowed ones pass", () => {
  assert.equal(
    violations("lib/engines/tfjs/engine.ts", 'import { a } from "../../explain/explainer.ts";').length,
    1,
  );
  // Two rules break here: engines import nothing above the seam, and lib/ nothing of the commands.
  assert.equal(
    violations("lib/engines/registry.ts", 'const m = await import("../../app/distill.ts");').length,
    2,
  );
  assert.equal(violations("lib/data/loader.ts", 'import type { B } from "../engines/engine.ts";').length, 1);
  assert.equal(violations("lib/metrics.ts", 'import { c } from "../cli.ts";').length, 1);
  assert.equal(
    violations("lib/oracle/providers.ts", 'import { d } from "../explain/explainer.ts";').length,
    1,
  );
  assert.deepEqual(violations("lib/explain/explainer.ts", 'import { e } from "../engines/registry.ts";'), []);
  assert.deepEqual(violations("lib/data/loader.ts", 'import type { B } from "../batch.ts";'), []);
  assert.deepEqual(violations("app/distill.ts", 'import { f } from "../lib/engines/registry.ts";'), []);
  assert.deepEqual(violations("app/distill.ts", 'import { g } from "../convert/onnx_export.ts";'), []);
  assert.equal(violations("lib/trainer.ts", 'import { h } from "../convert/pth.ts";').length, 1);
  assert.equal(violations("convert/pth.ts", 'import { i } from "../app/teachers.ts";').length, 1);
});

Deno.test("every .ts file of the repository keeps the import rules", async () => {
  const found: string[] = [];
  let files = 0;
  for await (const file of tsFiles("")) {
    files++;
    found.push(...violations(file, await Deno.readTextFile(path.join(ROOT, file))));
  }
  assert.ok(files > 100, `only ${files} .ts files found`);
  assert.deepEqual(found, [], found.join("\n"));
});
