/**
 * Seeded test weights with non-trivial BatchNorm statistics and affine parameters (so folding is
 * really exercised). The layer that closes each residual branch is damped, so even 110-layer
 * networks keep logits of a few units, where an absolute 1e-4 tolerance means something.
 *
 * @example
 * ```ts
 * import { conditionedWeights } from "./conditioned_weights.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * const w = conditionedWeights(buildModel("resnet8", { numClasses: 10 }), 1);
 * console.log(w.get("bn1.running_var")!.data[0] !== 1); // true
 * ```
 * @module
 */
import type { Graph } from "../lib/graph.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import type { StateDict } from "../lib/tensor.ts";

/**
 * Weights for `g` drawn from `seed`; BatchNorm counters stay 0.
 *
 * @example
 * ```ts
 * import { conditionedWeights } from "./conditioned_weights.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 2 });
 * console.log(conditionedWeights(g, 3).size === g.params.length); // true
 * ```
 */
export function conditionedWeights(g: Graph, seed: number): StateDict {
  const w = initStateDict(g, seed);
  const rng = new Rng(seed + 1000);
  const producers = new Map(g.nodes.map((n) => [n.output, n]));
  const closing = new Set(
    g.nodes.filter((n) => n.op === "add").flatMap((n) => n.inputs.map((i) => producers.get(i)?.name)),
  );
  // Residual variance grows like (1 + damp^2)^blocks: keep that product bounded at any depth.
  const blocks = g.nodes.filter((n) => n.op === "add").length;
  const damp = Math.min(0.5, 1.2 / Math.sqrt(blocks));
  for (const n of g.nodes) {
    if (n.op === "batchnorm") {
      const scale = closing.has(n.name) ? damp : 1;
      w.get(n.weight)!.data.forEach((_, i, a) => (a[i] = scale * (0.5 + rng.uniform())));
      w.get(n.bias)!.data.forEach((_, i, a) => (a[i] = 0.1 * rng.normal()));
      w.get(n.runningMean)!.data.forEach((_, i, a) => (a[i] = 0.2 * rng.normal()));
      w.get(n.runningVar)!.data.forEach((_, i, a) => (a[i] = 0.5 + rng.uniform()));
      if (n.numBatchesTracked) w.get(n.numBatchesTracked)!.data[0] = 0;
    } else if (n.op === "conv" && closing.has(n.name)) {
      w.get(n.weight)!.data.forEach((v, i, a) => (a[i] = damp * v));
    } else if (n.op === "linear") {
      // nn.Linear's init gives logits of a few hundredths here; spread them to order one.
      w.get(n.weight)!.data.forEach((v, i, a) => (a[i] = 20 * v));
    }
  }
  return w;
}
