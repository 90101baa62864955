/**
 * Deterministic seeded initialisation of a graph's parameters with PyTorch's schemes for these
 * networks (Kaiming normal fan-out for convolutions, nn.Linear's uniform default, BatchNorm
 * ones/zeros, running statistics 0/1). Same seed, same weights, on every engine.
 *
 * @example
 * ```ts
 * import { buildModel } from "./zoo.ts";
 * import { initStateDict } from "./init.ts";
 * const sd = initStateDict(buildModel("resnet8", { numClasses: 10 }), 0);
 * console.log(sd.get("bn1.weight")!.data[0]); // 1
 * ```
 * @module
 */

import type { Graph } from "../graph.ts";
import { Rng } from "../rng.ts";
import type { StateDict } from "../tensor.ts";
import { numel } from "../tensor.ts";

/**
 * A fresh state dict for `graph`, drawn from a {@link Rng} seeded with `seed` in parameter order.
 *
 * @example
 * ```ts
 * import { buildModel } from "./zoo.ts";
 * import { initStateDict } from "./init.ts";
 * const g = buildModel("resnet8");
 * const a = initStateDict(g, 1), b = initStateDict(g, 1);
 * console.log(a.get("conv1.weight")!.data[0] === b.get("conv1.weight")!.data[0]); // true
 * ```
 */
export function initStateDict(graph: Graph, seed: number): StateDict {
  const rng = new Rng(seed);
  const sd: StateDict = new Map();
  for (const p of graph.params) {
    const n = numel(p.shape);
    const data = p.dtype === "int64" ? new Float64Array(n) : new Float32Array(n);
    switch (p.init) {
      case "kaiming_normal_fan_out": {
        // fan_out = out_channels * kh * kw; gain sqrt(2) for ReLU.
        const std = Math.sqrt(2 / (p.shape[0] * p.shape[2] * p.shape[3]));
        for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
        break;
      }
      case "linear_uniform": {
        // nn.Linear: kaiming_uniform(a=sqrt(5)) for the weight, same bound for the bias.
        const fanIn = graph.params.find((q) => q.name === p.name.replace(/bias$/, "weight"))!.shape[1];
        const bound = 1 / Math.sqrt(fanIn);
        for (let i = 0; i < n; i++) data[i] = (2 * rng.uniform() - 1) * bound;
        break;
      }
      case "ones":
        data.fill(1);
        break;
      case "zeros":
        break;
    }
    sd.set(p.name, { dtype: p.dtype, shape: [...p.shape], data });
  }
  return sd;
}
