/**
 * The distillation loss in tfjs ops:
 * `ceWeight * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))`, KL summed over
 * classes and averaged over the batch (PyTorch `kl_div(..., reduction="batchmean")`).
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { distillationLoss } from "./losses.ts";
 * const tf = await initTfjs("cpu");
 * const s = tf.tensor2d([[1, 2, 3]]), t = tf.tensor2d([[1, 2, 3]]);
 * const l = distillationLoss(tf, s, tf.tensor1d([2], "int32"), t, { ceWeight: 1, alpha: 1, temperature: 2 });
 * console.log(l.kd.dataSync()[0]); // 0
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../deps.ts";
import type { GradReduction, LossWeights } from "../engine.ts";

/** The loss and its two parts, as scalars. */
export interface LossParts {
  /** Weighted total. */
  loss: TfTensor;
  /** Mean cross-entropy with the labels. */
  ce: TfTensor;
  /** Batch-mean KL(teacher || student) at temperature T (zero without a teacher). */
  kd: TfTensor;
}

/**
 * Cross-entropy of `logits` [N, K] against integer labels, reduced by mean or sum.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { crossEntropy } from "./losses.ts";
 * const tf = await initTfjs("cpu");
 * const ce = crossEntropy(tf, tf.tensor2d([[0, 0]]), tf.tensor1d([0], "int32"), "mean");
 * console.log(ce.dataSync()[0].toFixed(4)); // 0.6931
 * ```
 */
export function crossEntropy(tf: Tf, logits: TfTensor, labels: TfTensor, reduction: GradReduction): TfTensor {
  const k = logits.shape[1]!;
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(labels, k)), 1);
  return tf.neg(reduction === "mean" ? tf.mean(picked) : tf.sum(picked));
}

/**
 * The full distillation objective; `teacher` null gives `ceWeight * CE` alone.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { distillationLoss } from "./losses.ts";
 * const tf = await initTfjs("cpu");
 * const l = distillationLoss(tf, tf.tensor2d([[0, 0]]), tf.tensor1d([1], "int32"), null, { ceWeight: 1, alpha: 1, temperature: 4 });
 * console.log(l.loss.dataSync()[0].toFixed(4)); // 0.6931
 * ```
 */
export function distillationLoss(
  tf: Tf,
  student: TfTensor,
  labels: TfTensor,
  teacher: TfTensor | null,
  w: LossWeights,
): LossParts {
  const ce = crossEntropy(tf, student, labels, "mean");
  if (!teacher) return { loss: tf.mul(ce, w.ceWeight), ce, kd: tf.scalar(0) };
  const T = w.temperature;
  const logPs = tf.logSoftmax(tf.div(student, T));
  const logPt = tf.logSoftmax(tf.div(teacher, T));
  const kd = tf.mean(tf.sum(tf.mul(tf.exp(logPt), tf.sub(logPt, logPs)), 1));
  const loss = tf.add(tf.mul(ce, w.ceWeight), tf.mul(kd, w.alpha * T * T));
  return { loss, ce, kd };
}
