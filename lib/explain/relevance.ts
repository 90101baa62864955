/**
 * The oracle input for any relevance rule, in tfjs ops on a {@link TfjsNetwork}:
 * x* = x + gamma * sign(x) * R(x), repeated `recNum` times. With gradient x input,
 * R = x * (-dCE/dx) and sign(x) * R = -|x| * dCE/dx, so this is exactly the paper's
 * x* = x - gamma * |x| * dCE/dx; an LRP rule replaces R by its relevance.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../engines/tfjs/backend.ts";
 * import { TfjsNetwork } from "../engines/tfjs/network.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * import { oracleInput } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const xs = tf.tidy(() => oracleInput(tf, net, null, tf.ones([1, 8, 8, 3]), tf.tensor1d([3], "int32"), { gamma: 0.5, recNum: 1, reduction: "mean" }));
 * console.log(xs.shape); // [1, 8, 8, 3]
 * xs.dispose(); net.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../deps.ts";
import type { TfjsNetwork } from "../engines/tfjs/network.ts";
import { crossEntropy } from "../engines/tfjs/losses.ts";
import type { LrpAnalyzer, Reduction } from "./lrp.ts";
import { checkRelevanceRule, type LrpParams, type RelevanceRule } from "./options.ts";

/** What the oracle needs to know about relevance (a subset of the engine's OracleOptions). */
export interface RelevanceSettings {
  /** Step size of x* = x + gamma * sign(x) * R. */
  gamma: number;
  /** Number of steps (>= 1). */
  recNum: number;
  /** Reduction of the cross-entropy behind R. */
  reduction: Reduction;
  /** Relevance rule (default `grad-input`, the paper's code). */
  relevance?: RelevanceRule;
  /** LRP rule parameters (defaults in `options.ts`). */
  lrp?: LrpParams;
}

/**
 * Gradient x input relevance: x * (-dCE(net(x), y)/dx), NHWC; the weights get no gradient.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../engines/tfjs/backend.ts";
 * import { TfjsNetwork } from "../engines/tfjs/network.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
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
  reduction: Reduction,
): TfTensor {
  const g = tf.grad((xx: TfTensor) => crossEntropy(tf, net.forward(xx, false).logits, y, reduction))(x);
  return tf.mul(x, tf.neg(g));
}

/**
 * Relevance of `x` for labels `y` under `rule`; LRP rules need the network's {@link LrpAnalyzer}.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../engines/tfjs/backend.ts";
 * import { TfjsNetwork } from "../engines/tfjs/network.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * import { LrpAnalyzer } from "./lrp.ts";
 * import { inputRelevance } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const lrp = new LrpAnalyzer(tf, g, (n) => net.vars.get(n)!);
 * const r = tf.tidy(() => inputRelevance(tf, net, lrp, tf.ones([1, 8, 8, 3]), tf.tensor1d([0], "int32"), "lrp-epsilon", {}, "mean"));
 * console.log(r.shape); // [1, 8, 8, 3]
 * r.dispose(); lrp.dispose(); net.dispose();
 * ```
 */
export function inputRelevance(
  tf: Tf,
  net: TfjsNetwork,
  lrp: LrpAnalyzer | null,
  x: TfTensor,
  y: TfTensor,
  rule: RelevanceRule,
  params: LrpParams,
  reduction: Reduction,
): TfTensor {
  if (rule === "grad-input") return gradInputRelevance(tf, net, x, y, reduction);
  if (!lrp) throw new Error(`relevance rule ${rule} needs an LrpAnalyzer for the network`);
  return lrp.relevance(x, y, rule, params, reduction).relevance;
}

/**
 * One oracle step: x + gamma * sign(x) * relevance.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../engines/tfjs/backend.ts";
 * import { reinforceStep } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const x = tf.tensor1d([-2, 1]), r = tf.tensor1d([2, 1]);
 * console.log(Array.from(reinforceStep(tf, x, r, 0.5).dataSync())); // [-3, 1.5]
 * ```
 */
export function reinforceStep(tf: Tf, x: TfTensor, relevance: TfTensor, gamma: number): TfTensor {
  return tf.add(x, tf.mul(tf.mul(tf.sign(x), relevance), gamma));
}

/**
 * x* after `recNum` steps (NHWC). `lrp` may be null for `grad-input`.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../engines/tfjs/backend.ts";
 * import { TfjsNetwork } from "../engines/tfjs/network.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * import { oracleInput } from "./relevance.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const x = tf.ones([1, 8, 8, 3]);
 * const xs = tf.tidy(() => oracleInput(tf, net, null, x, tf.tensor1d([3], "int32"), { gamma: 0, recNum: 2, reduction: "sum" }));
 * console.log(xs.dataSync()[0]); // 1: gamma 0 leaves x alone
 * xs.dispose(); x.dispose(); net.dispose();
 * ```
 */
export function oracleInput(
  tf: Tf,
  net: TfjsNetwork,
  lrp: LrpAnalyzer | null,
  x: TfTensor,
  y: TfTensor,
  s: RelevanceSettings,
): TfTensor {
  const rule = checkRelevanceRule(s.relevance);
  let xs = x;
  for (let r = 0; r < s.recNum; r++) {
    xs = reinforceStep(tf, xs, inputRelevance(tf, net, lrp, xs, y, rule, s.lrp ?? {}, s.reduction), s.gamma);
  }
  return xs;
}
