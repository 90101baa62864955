/**
 * The oracle-KD step the benchmarks and step tools time (bench/engine_bench.ts,
 * bench/tfjs_step_bench.ts, tools/profile_train_step.ts, tools/ab_step.ts): CIFAR-shaped batches
 * (3x32x32, 100 classes) of seeded standard-normal pixels and uniform labels, and the step's
 * settings: the oracle (gamma 0.5, rec_num 1, mean reduction), the loss weights (ce_weight 0.5,
 * alpha 1, T 2) and SGD (lr 0.05, momentum 0.9, weight decay 5e-4, no Nesterov, no dampening).
 * tools/torch_bench.py, the PyTorch side of `deno task bench`, uses the same numbers: change both.
 *
 * @example
 * ```ts
 * import { Rng } from "../lib/rng.ts";
 * import { randomBatch, randomLogits, STEP_CLASSES, STEP_LOSS, STEP_ORACLE } from "./step_workload.ts";
 * const rng = new Rng(0);
 * const batch = randomBatch(4, rng);
 * const teacher = randomLogits(4, STEP_CLASSES, rng);
 * console.log(batch.x.length, teacher.length, STEP_ORACLE.gamma, STEP_LOSS.temperature); // 12288 400 0.5 2
 * ```
 * @module
 */

import type { LabelledBatch, LossWeights, OracleOptions, SgdOptions } from "../lib/engines/engine.ts";
import type { Rng } from "../lib/rng.ts";

/**
 * `[c, h, w]` of one image: CIFAR's 3x32x32.
 *
 * @example
 * ```ts
 * import { STEP_IMAGE } from "./step_workload.ts";
 * console.log(STEP_IMAGE); // [3, 32, 32]
 * ```
 */
export const STEP_IMAGE: readonly [number, number, number] = [3, 32, 32];

/**
 * Classes of the benchmarked networks (CIFAR-100's).
 *
 * @example
 * ```ts
 * import { STEP_CLASSES } from "./step_workload.ts";
 * console.log(STEP_CLASSES); // 100
 * ```
 */
export const STEP_CLASSES = 100;

/**
 * The oracle of the benchmarked step: the paper's defaults (lib/config.ts).
 *
 * @example
 * ```ts
 * import { STEP_ORACLE } from "./step_workload.ts";
 * console.log(STEP_ORACLE); // { gamma: 0.5, recNum: 1, reduction: "mean" }
 * ```
 */
export const STEP_ORACLE: Readonly<OracleOptions> = { gamma: 0.5, recNum: 1, reduction: "mean" };

/**
 * Loss weights of the benchmarked step: ce_weight * CE + alpha * T^2 * KL (with no teacher
 * logits only the CE part counts).
 *
 * @example
 * ```ts
 * import { STEP_LOSS } from "./step_workload.ts";
 * console.log({ ...STEP_LOSS, alpha: 0 }); // { ceWeight: 0.5, alpha: 0, temperature: 2 }
 * ```
 */
export const STEP_LOSS: Readonly<LossWeights> = { ceWeight: 0.5, alpha: 1, temperature: 2 };

/**
 * SGD of the benchmarked step (torch.optim.SGD semantics), learning rate apart: {@link STEP_LR}.
 *
 * @example
 * ```ts
 * import { STEP_SGD } from "./step_workload.ts";
 * console.log(STEP_SGD.momentum, STEP_SGD.weightDecay); // 0.9 0.0005
 * ```
 */
export const STEP_SGD: Readonly<SgdOptions> = {
  momentum: 0.9,
  weightDecay: 5e-4,
  nesterov: false,
  dampening: 0,
};

/**
 * Learning rate of the benchmarked step.
 *
 * @example
 * ```ts
 * import { STEP_LR } from "./step_workload.ts";
 * console.log(STEP_LR); // 0.05
 * ```
 */
export const STEP_LR = 0.05;

/**
 * Seeds: of the batch's generator, and of `initStateDict` for the teacher and the student.
 *
 * @example
 * ```ts
 * import { initStateDict } from "../lib/models/init.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { STEP_SEEDS } from "./step_workload.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * console.log(initStateDict(g, STEP_SEEDS.student).size === g.params.length); // true
 * ```
 */
export const STEP_SEEDS = { batch: 0, teacher: 1, student: 2 } as const;

/**
 * `n` images of `shape` with standard-normal pixels, then `n` uniform labels in [0, classes),
 * drawn in that order from `rng` (so a caller continuing with `rng` gets the same values each
 * time).
 *
 * @example
 * ```ts
 * import { Rng } from "../lib/rng.ts";
 * import { randomBatch } from "./step_workload.ts";
 * const a = randomBatch(2, new Rng(1), 10, [3, 8, 8]), b = randomBatch(2, new Rng(1), 10, [3, 8, 8]);
 * console.log(a.x.length, a.y.every((v, i) => v === b.y[i] && v < 10)); // 384 true
 * ```
 */
export function randomBatch(
  n: number,
  rng: Rng,
  classes = STEP_CLASSES,
  shape: readonly [number, number, number] = STEP_IMAGE,
): LabelledBatch {
  const x = new Float32Array(n * shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.min(classes - 1, Math.floor(rng.uniform() * classes));
  return { x, y, n, shape };
}

/**
 * `n x classes` standard-normal logits from `rng`: stand-in teacher logits for a student's KD
 * step.
 *
 * @example
 * ```ts
 * import { Rng } from "../lib/rng.ts";
 * import { randomLogits } from "./step_workload.ts";
 * console.log(randomLogits(2, 5, new Rng(3)).length); // 10
 * ```
 */
export function randomLogits(n: number, classes: number, rng: Rng): Float32Array {
  const out = new Float32Array(n * classes);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal();
  return out;
}
