/**
 * Times one relevance pass per rule against the gradient pass (and a plain forward) on a
 * teacher-sized network: `deno run -A tools/bench_relevance.ts [arch] [batch] [backend] [reps]`
 * (defaults resnet56 64 wasm 3). Random weights: timing does not depend on their values.
 * @module
 */
import { initTfjs, type TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { TfjsNetwork } from "../lib/engines/tfjs/network.ts";
import { LrpAnalyzer } from "../lib/engines/tfjs/lrp/lrp.ts";
import { RELEVANCE_RULES } from "../lib/oracle/options.ts";
import { gradInputRelevance } from "../lib/engines/tfjs/lrp/relevance.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { median } from "../lib/metrics.ts";

const [arch = "resnet56", batchArg = "64", backend = "wasm", repsArg = "3"] = Deno.args;
const n = Number(batchArg), reps = Number(repsArg);
const tf = await initTfjs(backend as TfjsBackendName);
const g = buildModel(arch, { numClasses: 100 });
const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
const lrp = new LrpAnalyzer(tf, g, (name) => net.vars.get(name)!);
const x = tf.randomNormal([n, 32, 32, 3], 0, 1, "float32", 1);
const y = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 100), "int32");

async function time(label: string, f: () => import("../lib/deps.ts").TfTensor): Promise<void> {
  const once = async () => {
    const t0 = performance.now();
    const out = tf.tidy(f);
    await out.data();
    out.dispose();
    return performance.now() - t0;
  };
  await once(); // warm-up: kernel setup, first-use allocations
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) ms.push(await once());
  ms.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(14)} median ${median(ms).toFixed(0)} ms  (min ${ms[0].toFixed(0)}, max ${
      ms.at(-1)!.toFixed(0)
    })`,
  );
}

console.log(`${arch}, batch ${n}, 32x32, tfjs ${tf.getBackend()}, ${reps} reps after a warm-up`);
await time("forward", () => net.forward(x, false).logits);
for (const rule of RELEVANCE_RULES) {
  await time(
    rule,
    () =>
      rule === "grad-input"
        ? gradInputRelevance(tf, net, x, y, "mean")
        : lrp.relevance(x, y, rule, {}, "mean").relevance,
  );
}
lrp.dispose();
net.dispose();
