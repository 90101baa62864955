/**
 * One op set: every engine dispatches the IR's layer kinds through one table, and every table has
 * an entry, with every handler, for every kind in `LAYER_KINDS` (the source array the IR's node
 * types are checked against), and no entry for a kind the IR lacks.
 */
import assert from "node:assert/strict";
import { EXPORT_OPS } from "../convert/onnx_export.ts";
import { FROZEN_OPS } from "../lib/engines/onnxruntime/frozen_ops.ts";
import { TFJS_OPS } from "../lib/engines/tfjs/ops.ts";
import { LAYER_KINDS, LAYER_PARAMS } from "../lib/graph.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";

/** Problems of `table` against `kinds`: missing kinds, kinds without a handler in `fields`, extra keys. */
function tableProblems(table: object, kinds: readonly string[], fields: readonly string[]): string[] {
  const problems: string[] = [];
  const entries = table as Record<string, unknown>;
  for (const k of kinds) {
    const e = entries[k];
    if (e === undefined) {
      problems.push(`no entry for ${k}`);
      continue;
    }
    if (fields.length === 0) {
      if (typeof e !== "function") problems.push(`${k} is not a function`);
      continue;
    }
    for (const f of fields) {
      if (typeof (e as Record<string, unknown>)[f] !== "function") problems.push(`${k} lacks ${f}`);
    }
  }
  for (const k of Object.keys(entries)) if (!kinds.includes(k)) problems.push(`entry for unknown kind ${k}`);
  return problems;
}

const TABLES: [string, object, string[]][] = [
  ["lib/graph.ts LAYER_PARAMS", LAYER_PARAMS, []],
  ["onnxruntime FROZEN_OPS", FROZEN_OPS, ["lower", "forward", "backward", "relevance"]],
  ["tfjs TFJS_OPS", TFJS_OPS, ["apply", "canonize", "lrpForward", "relevance"]],
  ["convert EXPORT_OPS", EXPORT_OPS, []],
];

Deno.test("LAYER_KINDS names exactly the op tags of the IR's node types in lib/graph.ts", async () => {
  const source = await Deno.readTextFile(new URL("../lib/graph.ts", import.meta.url));
  const tags = [...source.matchAll(/^\s*op: "([a-z_]+)";$/gm)].map((m) => m[1]);
  assert.ok(tags.length > 0, "no op tags found in lib/graph.ts");
  assert.deepEqual([...new Set(tags)].sort(), [...LAYER_KINDS].sort());
});

for (const [name, table, fields] of TABLES) {
  Deno.test(`${name} has an entry with every handler for every IR layer kind`, () => {
    assert.deepEqual(tableProblems(table, LAYER_KINDS, fields), []);
  });
}

Deno.test("the exhaustiveness check fails on a table missing a kind, a handler, or with an extra kind", () => {
  const { relu: _relu, ...noRelu } = FROZEN_OPS;
  assert.deepEqual(tableProblems(noRelu, LAYER_KINDS, ["forward"]), ["no entry for relu"]);
  const noBackward = { ...FROZEN_OPS, add: { ...FROZEN_OPS.add, backward: undefined } };
  assert.deepEqual(tableProblems(noBackward, LAYER_KINDS, ["backward"]), ["add lacks backward"]);
  const extra = { ...EXPORT_OPS, max_pool: () => {} };
  assert.deepEqual(tableProblems(extra, LAYER_KINDS, []), ["entry for unknown kind max_pool"]);
  assert.deepEqual(tableProblems(EXPORT_OPS, [...LAYER_KINDS, "max_pool"], []), ["no entry for max_pool"]);
});

Deno.test("every zoo network uses only kinds in LAYER_KINDS, and together they use all of them", () => {
  const used = new Set<string>();
  for (const arch of MODEL_NAMES) {
    for (const n of buildModel(arch, { numClasses: 10 }).nodes) {
      assert.ok((LAYER_KINDS as readonly string[]).includes(n.op), `${arch}: ${n.op}`);
      used.add(n.op);
    }
  }
  assert.deepEqual([...used].sort(), [...LAYER_KINDS].sort());
});
