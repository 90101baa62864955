/**
 * The tfjs engine's oracle input for any relevance rule: x* = x + gamma * sign(x) * R(x),
 * repeated `recNum` times. With gradient x input, R = x * (-dCE/dx) and the step is computed as
 * the paper's x* = x - gamma * |x| * dCE/dx (same association as PyTorch); an LRP rule replaces
 * R by the relevance of its {@link RelevancePlan}. This is the only tfjs x* loop.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { oracleInput } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const r = tf.tidy(() => oracleInput(tf, net, null, null, tf.ones([1, 8, 8, 3]), tf.tensor1d([3], "int32"), { gamma: 0.5, recNum: 1, reduction: "mean" }).xStar);
 * console.log(r.shape); // [1, 8, 8, 3]
 * r.dispose(); net.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../../deps.ts";
import type { GradReduction, OracleOptions } from "../../../oracle/options.ts";
import type { RelevancePlan } from "../../../oracle/rules.ts";
import { crossEntropy } from "../losses.ts";
import type { TfjsNetwork } from "../network.ts";
import type { LrpAnalyzer } from "./lrp.ts";

/**
 * dCE(net(x), y)/dx (NHWC); tf.grad differentiates with respect to x only, so the weights get no
 * gradient.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { inputGradient } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const d = tf.tidy(() => inputGradient(tf, net, tf.ones([1, 8, 8, 3]), tf.tensor1d([0], "int32"), "sum"));
 * console.log(d.shape); // [1, 8, 8, 3]
 * d.dispose(); net.dispose();
 * ```
 */
export function inputGradient(
  tf: Tf,
  net: TfjsNetwork,
  x: TfTensor,
  y: TfTensor,
  reduction: GradReduction,
): TfTensor {
  return tf.grad((xx: TfTensor) => crossEntropy(tf, net.forward(xx, false).logits, y, reduction))(x);
}

/**
 * Gradient x input relevance: x * (-dCE(net(x), y)/dx), NHWC.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { gradInputRelevance } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const r = tf.tidy(() => gradInputRelevance(tf, net, tf.zeros([1, 8, 8, 3]), tf.tensor1d([0], "int32"), "sum"));
 * console.log(r.dataSync().every((v) => v === 0)); // true: zero input, zero relevance
 * r.dispose(); net.dispose();
 * ```
 */
export function gradInputRelevance(
  tf: Tf,
  net: TfjsNetwork,
  x: TfTensor,
  y: TfTensor,
  reduction: GradReduction,
): TfTensor {
  return tf.mul(x, tf.neg(inputGradient(tf, net, x, y, reduction)));
}

/**
 * One oracle step from a relevance: x + gamma * sign(x) * relevance.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { reinforceStep } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const x = tf.tensor1d([-2, 1]), r = tf.tensor1d([2, 1]);
 * console.log(Array.from(reinforceStep(tf, x, r, 0.5).dataSync())); // [-3, 1.5]
 * ```
 */
export function reinforceStep(tf: Tf, x: TfTensor, relevance: TfTensor, gamma: number): TfTensor {
  return tf.add(x, tf.mul(tf.mul(tf.sign(x), relevance), gamma));
}

/** x* and, when asked, the first step's relevance (NHWC). */
export interface OracleTensors {
  /** x* after `recNum` steps. */
  xStar: TfTensor;
  /** Relevance of the first step (only with `keepRelevance`). */
  relevance: TfTensor | null;
}

/**
 * x* after `recNum` steps (NHWC) under `plan` (null: the paper's grad-input relevance, which
 * needs no `lrp`). Call inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { oracleInput } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const x = tf.ones([1, 8, 8, 3]);
 * const xs = tf.tidy(() => oracleInput(tf, net, null, null, x, tf.tensor1d([3], "int32"), { gamma: 0, recNum: 2, reduction: "sum" }).xStar);
 * console.log(xs.dataSync()[0]); // 1: gamma 0 leaves x alone
 * xs.dispose(); x.dispose(); net.dispose();
 * ```
 */
export function oracleInput(
  tf: Tf,
  net: TfjsNetwork,
  lrp: LrpAnalyzer | null,
  plan: RelevancePlan | null,
  x: TfTensor,
  y: TfTensor,
  opts: OracleOptions,
  keepRelevance = false,
): OracleTensors {
  if (plan && !lrp) throw new Error(`relevance rule ${plan.rule} needs an LrpAnalyzer for the network`);
  let xs = x, first: TfTensor | null = null;
  for (let r = 0; r < opts.recNum; r++) {
    if (plan) {
      const rel = lrp!.planRelevance(xs, y, plan, opts.reduction).relevance;
      if (r === 0 && keepRelevance) first = rel;
      xs = reinforceStep(tf, xs, rel, opts.gamma);
      continue;
    }
    const g = inputGradient(tf, net, xs, y, opts.reduction);
    if (r === 0 && keepRelevance) first = tf.mul(xs, tf.neg(g));
    // x - (|x| * g) * gamma: the association the parity tests against PyTorch were set with.
    xs = tf.sub(xs, tf.mul(tf.mul(tf.abs(xs), g), opts.gamma));
  }
  return { xStar: xs, relevance: first };
}
