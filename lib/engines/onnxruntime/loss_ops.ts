/**
 * Loss subgraphs with their hand-derived gradients at the logits: cross-entropy against one-hot
 * labels, and the distillation objective
 * `ceWeight * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))` (KL summed over classes,
 * averaged over the batch), as PyTorch defines them.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { crossEntropyGrad } from "./loss_ops.ts";
 * const b = new OnnxBuilder("ce");
 * const z = b.input("z", "float32", [2, 3]), y = b.input("y", "float32", [2, 3]);
 * b.output(crossEntropyGrad(b, z, y, 0.5), "dz");
 * console.log(b.nodeCount); // 3
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";

/**
 * d(scale * sum_i CE(z_i, y_i))/dz = scale * (softmax(z) - onehot): scale 1/N for the batch mean.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { crossEntropyGrad } from "./loss_ops.ts";
 * const b = new OnnxBuilder("ce");
 * console.log(typeof crossEntropyGrad(b, b.input("z", "float32", [1, 2]), b.input("y", "float32", [1, 2]), 1)); // string
 * ```
 */
export function crossEntropyGrad(b: OnnxBuilder, logits: string, onehot: string, scale: number): string {
  const diff = b.op("Sub", [b.op("Softmax", [logits], { axis: 1 }), onehot]);
  return scale === 1 ? diff : b.op("Mul", [diff, b.scalar(scale)]);
}

/** Values of the distillation loss subgraph. */
export interface DistillLossValues {
  /** `[loss, ce, kd]` as a float32 vector of 3 (kd 0 without a teacher). */
  parts: string;
  /** d loss / d logits, [N, K]. */
  dLogits: string;
}

/**
 * Emits the (distillation) loss of `logits` [n, K] and its gradient. `weights` is a float32 input
 * `[ceWeight, alpha, T]`; `teacher` null gives the CE-only objective `ceWeight * CE`.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { distillationLoss } from "./loss_ops.ts";
 * const b = new OnnxBuilder("kd");
 * const z = b.input("z", "float32", [2, 3]), y = b.input("y", "float32", [2, 3]);
 * const t = b.input("t", "float32", [2, 3]), w = b.input("w", "float32", [3]);
 * const l = distillationLoss(b, z, y, t, w, 2);
 * console.log(typeof l.parts, typeof l.dLogits); // string string
 * ```
 */
export function distillationLoss(
  b: OnnxBuilder,
  logits: string,
  onehot: string,
  teacher: string | null,
  weights: string,
  n: number,
): DistillLossValues {
  const invN = b.scalar(1 / n);
  const pick = (i: number) => b.op("Gather", [weights, b.int64s([i])]);
  const ceWeight = pick(0);
  // CE = -sum(onehot * log_softmax(z)) / N ; dCE/dz = (softmax(z) - onehot) / N.
  const logP = b.op("LogSoftmax", [logits], { axis: 1 });
  const ce = b.op("Neg", [
    b.op("Mul", [b.op("ReduceSum", [b.op("Mul", [onehot, logP])], { keepdims: 0 }), invN]),
  ]);
  const dCe = b.op("Mul", [b.op("Sub", [b.op("Exp", [logP]), onehot]), invN]);
  const ceVec = b.op("Reshape", [ce, b.int64s([1])]);
  if (!teacher) {
    const loss = b.op("Mul", [ceVec, ceWeight]);
    return {
      parts: b.op("Concat", [loss, ceVec, b.constant([0], [1])], { axis: 0 }),
      dLogits: b.op("Mul", [dCe, ceWeight]),
    };
  }
  const alpha = pick(1);
  const temp = pick(2);
  // KL = sum(p_t * (log p_t - log p_s)) / N at temperature T;
  // d(T^2 * KL)/dz = T * (softmax(z/T) - p_t) / N.
  const logPs = b.op("LogSoftmax", [b.op("Div", [logits, temp])], { axis: 1 });
  const logPt = b.op("LogSoftmax", [b.op("Div", [teacher, temp])], { axis: 1 });
  const pt = b.op("Exp", [logPt]);
  const klSum = b.op("ReduceSum", [b.op("Mul", [pt, b.op("Sub", [logPt, logPs])])], { keepdims: 0 });
  const kd = b.op("Reshape", [b.op("Mul", [klSum, invN]), b.int64s([1])]);
  const kdScale = b.op("Mul", [b.op("Mul", [alpha, temp]), temp]);
  const loss = b.op("Add", [b.op("Mul", [ceVec, ceWeight]), b.op("Mul", [kd, kdScale])]);
  const dKd = b.op("Mul", [
    b.op("Sub", [b.op("Exp", [logPs]), pt]),
    b.op("Mul", [b.op("Mul", [alpha, temp]), invN]),
  ]);
  return {
    parts: b.op("Concat", [loss, ceVec, kd], { axis: 0 }),
    dLogits: b.op("Add", [b.op("Mul", [dCe, ceWeight]), dKd]),
  };
}
