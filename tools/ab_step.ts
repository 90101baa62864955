/**
 * A/B of the onnxruntime engine's step between another checkout of this package (`--base`) and
 * this one, in one process: both build the same seeded network and batch, and their steps
 * alternate round by round (the order swapping each round), so machine drift hits both alike.
 * Prints the median step time of each and the ratio, and how far the two results are apart
 * (0 when a change left the arithmetic bitwise the same). The per-op profiler overstates what
 * single-threaded ops cost (tools/profile_train_step.ts); this measures wall time.
 *
 * ```sh
 * git worktree add /tmp/base <revision>
 * deno run -A tools/ab_step.ts --base /tmp/base [--graph train|oracle] [--arch resnet20] [--kd]
 *     [--threads 2] [--batch 64] [--rounds 40]
 * ```
 * @module
 */

import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { scriptSettings } from "../lib/cli_args.ts";
import { int, text } from "../lib/config_spec.ts";
import { median } from "../lib/metrics.ts";
import { Rng } from "../lib/rng.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import {
  randomBatch,
  randomLogits,
  STEP_CLASSES,
  STEP_LOSS,
  STEP_ORACLE,
  STEP_SEEDS,
  STEP_SGD,
  STEP_TOOL_FIELDS,
  stepNetwork,
} from "../bench/step_workload.ts";

const FIELDS = {
  base: text("run", "the other checkout (its root folder) to compare with", "", { placeholder: "dir" }),
  ...STEP_TOOL_FIELDS,
  rounds: int("run", "alternations (each times one step of each side)", 40, { min: 1 }),
};
const SPEC = {
  summary: "wall-time A/B of the engine's step between another checkout and this one",
  example: "deno run -A tools/ab_step.ts --base /tmp/base --graph oracle",
  fields: FIELDS,
  usage: "deno run -A tools/ab_step.ts",
};
const o = await scriptSettings("ab_step", SPEC);
if (!o.base) {
  console.error("ab_step: --base names the other checkout to compare with");
  Deno.exit(2);
}
const { arch, seed } = stepNetwork(o);
const n = o.batch, k = STEP_CLASSES;
const LOSS = { ...STEP_LOSS, alpha: o.kd ? STEP_LOSS.alpha : 0 };
/** This tool's learning rate: 0.01, not the benchmark's STEP_LR (every A/B so far ran with 0.01). */
const LR = 0.01;

/** One side: a step function and its result after the steps, from the checkout at `root`. */
async function side(root: string) {
  const at = (f: string) => pathToFileURL(path.resolve(root, f)).href;
  const { OnnxruntimeEngine } = await import(at("lib/engines/onnxruntime/engine.ts"));
  const { buildModel } = await import(at("lib/models/zoo.ts"));
  const { initStateDict } = await import(at("lib/models/init.ts"));
  // The batch is this checkout's (bench/step_workload.ts), the same values on both sides.
  const rng = new Rng(STEP_SEEDS.batch);
  const batch = randomBatch(n, rng, k);
  const teacher = randomLogits(n, k, rng);
  const g = buildModel(arch, { numClasses: k });
  const engine = new OnnxruntimeEngine({ threads: o.threads });
  if (o.graph === "oracle") {
    const model = await engine.loadFrozen(g, initStateDict(g, seed));
    let last: Float32Array = new Float32Array();
    return {
      step: async () => void (last = (await model.oracle(batch, STEP_ORACLE, { xStar: true })).xStar!),
      result: () => Promise.resolve(last),
    };
  }
  const model = await engine.loadTrainable(g, initStateDict(g, seed), STEP_SGD);
  return {
    step: () => model.trainStep(batch, o.kd ? teacher : null, LOSS, LR),
    result: async () => {
      const sd: Map<string, { data: ArrayLike<number> }> = await model.stateDict();
      return Float64Array.from([...sd.values()].flatMap((t) => Array.from(t.data, Number)));
    },
  };
}

const base = await side(o.base), here = await side(".");
for (let i = 0; i < 2; i++) await base.step(), await here.step();
const times = { base: [] as number[], here: [] as number[] };
for (let r = 0; r < o.rounds; r++) {
  const order = r % 2 ? [["base", base], ["here", here]] as const : [["here", here], ["base", base]] as const;
  for (const [name, s] of order) {
    const t0 = performance.now();
    await s.step();
    times[name].push(performance.now() - t0);
  }
}
const [a, b] = [await base.result(), await here.result()];
// Both sides ran the same steps (2 warm-up and one per round), so their results compare.
const diff = a.length === b.length ? maxAbsDiff(a, b) : Infinity;
const [mb, mh] = [median(times.base), median(times.here)];
console.log(
  `${arch} ${o.graph}${o.kd ? " (KD)" : ""}, batch ${n}, ${o.threads} thread(s), ${o.rounds} alternations: ` +
    `base ${mb.toFixed(1)} ms, this checkout ${mh.toFixed(1)} ms, ratio ${(mh / mb).toFixed(3)}; ` +
    `max |difference| of the ${
      o.graph === "oracle" ? "last x*" : `weights after all ${o.rounds + 2} steps`
    } ${diff}`,
);
