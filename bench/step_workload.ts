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

import { bool, choice, int } from "../lib/config_spec.ts";
import type { LabelledBatch, LossWeights, OracleOptions, SgdOptions } from "../lib/engines/engine.ts";
import { MODEL_NAMES, type ModelName } from "../lib/models/zoo.ts";
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

/**
 * The benchmarked step's networks: the paper's resnet56 teacher (whose oracle is timed) and the
 * resnet20 student (whose training step is timed), as in bench/engine_bench.ts's main cases.
 *
 * @example
 * ```ts
 * import { STEP_MODELS } from "./step_workload.ts";
 * console.log(STEP_MODELS.teacher, STEP_MODELS.student); // resnet56 resnet20
 * ```
 */
export const STEP_MODELS = { teacher: "resnet56", student: "resnet20" } as const;

/**
 * The flags both step tools take (tools/ab_step.ts, tools/profile_train_step.ts): which graph,
 * its network, KD or CE, threads and batch size.
 *
 * @example
 * ```ts
 * import { STEP_TOOL_FIELDS } from "./step_workload.ts";
 * console.log(Object.keys(STEP_TOOL_FIELDS)); // [ "graph", "arch", "kd", "threads", "batch" ]
 * ```
 */
export const STEP_TOOL_FIELDS = {
  graph: choice(
    "run",
    "the student's training step, or the teacher's oracle (x* at gamma 0.5, rec_num 1, and the response on it)",
    ["train", "oracle"],
    "train",
  ),
  arch: choice(
    "model",
    `architecture (default: ${STEP_MODELS.student} for the training step, ${STEP_MODELS.teacher} for the oracle)`,
    ["", ...MODEL_NAMES],
    "",
  ),
  kd: bool("loss", "training step with teacher logits (KD loss)", false),
  threads: int("engine", "intra-op threads", 2, { min: 1 }),
  batch: int("data", "batch size", 64, { min: 1 }),
};

/**
 * The network a step tool builds and the seed of its weights: `arch` if given, else the
 * teacher for the oracle graph and the student for the training step, seeded as in
 * {@link STEP_SEEDS}.
 *
 * @example
 * ```ts
 * import { stepNetwork } from "./step_workload.ts";
 * console.log(stepNetwork({ graph: "oracle", arch: "" }), stepNetwork({ graph: "train", arch: "resnet8" }));
 * // { arch: "resnet56", seed: 1 } { arch: "resnet8", seed: 2 }
 * ```
 */
export function stepNetwork(
  o: { graph: "train" | "oracle"; arch: ModelName | "" },
): { arch: ModelName; seed: number } {
  const role = o.graph === "oracle" ? "teacher" : "student";
  return { arch: o.arch || STEP_MODELS[role], seed: STEP_SEEDS[role] };
}
