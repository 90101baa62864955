/**
 * Seeded networks and batches for engine-against-engine tests: weights with non-trivial
 * BatchNorm affine parameters and running statistics (so folding and eval-mode normalisation are
 * exercised), random labelled batches, and a per-sample comparison that names the samples
 * outside a tolerance.
 *
 * @example
 * ```ts
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { nontrivialStateDict } from "./random_models.ts";
 * const sd = nontrivialStateDict(buildModel("resnet8", { numClasses: 10 }), 1);
 * console.log(sd.get("bn1.running_var")!.data[0] !== 1); // true
 * ```
 * @module
 */

import type { Graph } from "../lib/graph.ts";
import type { LabelledBatch } from "../lib/engines/engine.ts";
import { initStateDict } from "../lib/models/init.ts";
import { Rng } from "../lib/rng.ts";
import { randomBatch as seededBatch } from "../bench/step_workload.ts";
import type { StateDict } from "../lib/tensor.ts";

/**
 * PyTorch-style initial weights of `graph`, then BatchNorm gamma in [0.5, 1.5), beta ~ N(0, 0.2),
 * running mean ~ N(0, 0.2), running variance in [0.5, 1.5), and a random classifier bias.
 *
 * @example
 * ```ts
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { nontrivialStateDict } from "./random_models.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * console.log(nontrivialStateDict(g, 2).size === g.params.length); // true
 * ```
 */
export function nontrivialStateDict(graph: Graph, seed: number): StateDict {
  const sd = initStateDict(graph, seed);
  const rng = new Rng(seed + 1000);
  const bnParams = new Map<string, "weight" | "bias" | "mean" | "var">();
  for (const n of graph.nodes) {
    if (n.op !== "batchnorm") continue;
    bnParams.set(n.weight, "weight");
    bnParams.set(n.bias, "bias");
    bnParams.set(n.runningMean, "mean");
    bnParams.set(n.runningVar, "var");
  }
  for (const [name, t] of sd) {
    const role = bnParams.get(name);
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (role === "weight" || role === "var") d[i] = 0.5 + rng.uniform();
      else if (role === "bias" || role === "mean") d[i] = 0.2 * rng.normal();
      else if (name.endsWith("fc.bias")) d[i] = 0.1 * rng.normal();
    }
  }
  return sd;
}

/**
 * `n` images of `shape` with standard-normal pixels and uniform labels in [0, classes): the
 * benchmarks' generator (bench/step_workload.ts) seeded with `seed`.
 *
 * @example
 * ```ts
 * import { randomBatch } from "./random_models.ts";
 * const b = randomBatch(3, 10, [3, 8, 8], 5);
 * console.log(b.x.length, b.y.length); // 576 3
 * ```
 */
export function randomBatch(
  n: number,
  classes: number,
  shape: readonly [number, number, number],
  seed: number,
): LabelledBatch {
  return seededBatch(n, new Rng(seed), classes, shape);
}

/** Per-sample largest absolute differences of two [n, ...] arrays. */
export interface SampleDiffs {
  /** Largest absolute difference of each sample. */
  perSample: number[];
  /** Indices of the samples above the tolerance. */
  outside: number[];
}

/**
 * Compares `a` and `b` sample by sample (`n` equal slices) against `tol`.
 *
 * @example
 * ```ts
 * import { sampleDiffs } from "./random_models.ts";
 * console.log(sampleDiffs([0, 0, 1, 1], [0, 0, 1, 2], 2, 0.5).outside); // [1]
 * ```
 */
export function sampleDiffs(a: ArrayLike<number>, b: ArrayLike<number>, n: number, tol: number): SampleDiffs {
  if (a.length !== b.length || a.length % n !== 0) {
    throw new Error(`cannot split ${a.length} / ${b.length} into ${n}`);
  }
  const per = a.length / n;
  const perSample: number[] = [];
  for (let s = 0; s < n; s++) {
    let m = 0;
    for (let i = s * per; i < (s + 1) * per; i++) {
      const d = Math.abs(a[i] - b[i]);
      if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
    }
    perSample.push(m);
  }
  return { perSample, outside: perSample.flatMap((d, i) => (d > tol ? [i] : [])) };
}

/**
 * Teacher-like logits [n, k]: `scale` times standard-normal values.
 *
 * @example
 * ```ts
 * import { randomLogits } from "./random_models.ts";
 * console.log(randomLogits(2, 5, 1).length); // 10
 * ```
 */
export function randomLogits(n: number, k: number, seed: number, scale = 3): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n * k);
  for (let i = 0; i < out.length; i++) out[i] = scale * rng.normal();
  return out;
}
