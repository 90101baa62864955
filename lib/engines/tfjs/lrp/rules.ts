/**
 * The tfjs interpretation of the relevance rules described as data in lib/oracle/rules.ts, by
 * the "modified gradient" trick: z = layer'(a), s = R / stab(z),
 * c = layer'^T(s), R_in = a * c. Each rule is a way of counting the contribution z_ij of input i
 * to output j of a linear map (conv or fully connected):
 *
 * - `epsilon`: z_ij = a_i w_ij, bias included, denominator z_j + epsilon * sign(z_j)
 *   (epsilon 0 is LRP-0, which equals gradient x input on ReLU networks);
 * - `gamma`: z_ij = a_i w_ij + gamma * (a_i w_ij)^+ (bias b + gamma * b^+) for outputs z_j >= 0,
 *   and + gamma * (a_i w_ij)^- for z_j < 0 (Andeol et al. 2021, as Zennit's `Gamma`): the
 *   contributions that agree with the output are boosted, so the denominator keeps the sign of
 *   z_j and |denominator| >= |z_j| (never crosses 0). For a_i >= 0 and z_j >= 0 this is the
 *   usual w + gamma * w^+; outputs of either sign reach the residual adds and the WRN stream;
 * - `zplus`: z_ij = (a_i w_ij)^+, no bias (gamma -> infinity; relevance keeps its sign);
 * - `zB`: z_ij = a_i w_ij - l_i w_ij^+ - h_i w_ij^-, for the first layer with data bounds [l, h].
 *
 * Parameter-free layers (residual add, average pooling) split relevance in proportion to the
 * same per-rule contributions with weight 1 (or 1/HW), stabilised but without epsilon
 * absorption (Zennit's `Norm` for sums and pools).
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { denseOp, linearRelevance } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const a = tf.tensor2d([[1, 2]]), w = tf.tensor2d([[1], [-1]]);
 * const r = linearRelevance(tf, { name: "zplus" }, denseOp(tf), a, w, null, tf.tensor2d([[3]]), 1e-9, true);
 * console.log(Array.from(r.dataSync())); // [3, 0]: only the positive contribution gets relevance
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../../deps.ts";
import type { LayerRule } from "../../../oracle/rules.ts";

export type { LayerRule } from "../../../oracle/rules.ts";

type Tensor4D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;
type Tensor2D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor2D;

/** A bias-free linear map f(a; W) and its transpose f^T(s; W) = d(sum f(a; W) * s)/da. */
export interface LinearOp {
  /** f(a; W). */
  apply(a: TfTensor, w: TfTensor): TfTensor;
  /** f^T(s; W), shaped like `like`. */
  transpose(s: TfTensor, w: TfTensor, like: TfTensor): TfTensor;
}

/**
 * The fully connected map: a [N, in] times W [in, out].
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { denseOp } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const op = denseOp(tf), w = tf.tensor2d([[1, 2]]);
 * console.log(Array.from(op.transpose(tf.tensor2d([[1, 1]]), w, tf.zeros([1, 1])).dataSync())); // [3]
 * ```
 */
export function denseOp(tf: Tf): LinearOp {
  return {
    apply: (a, w) => tf.matMul(a as Tensor2D, w as Tensor2D),
    transpose: (s, w) => tf.matMul(s as Tensor2D, w as Tensor2D, false, true),
  };
}

/**
 * The NHWC convolution with HWIO weights; its transpose is the conv's input gradient, computed
 * by {@link convTranspose}.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { convOp } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const op = convOp(tf, 2, 1), a = tf.ones([1, 4, 4, 1]), w = tf.ones([3, 3, 1, 1]);
 * console.log(op.apply(a, w).shape, op.transpose(tf.ones([1, 2, 2, 1]), w, a).shape); // [1, 2, 2, 1] [1, 4, 4, 1]
 * ```
 */
export function convOp(tf: Tf, stride: number, pad: number): LinearOp {
  return {
    apply: (a, w) => tf.conv2d(a as Tensor4D, w as Tensor4D, stride, pad),
    transpose: (s, w, like) => convTranspose(tf, s, w, like.shape, stride, pad),
  };
}

/**
 * The input gradient of `conv2d(x, w, stride, pad)` for output gradient `s`, as a forward conv
 * of `s` (zero-upsampled by the stride) with the flipped, in/out-swapped kernel. Same values as
 * `tf.conv2dTranspose`, but it runs on the backend's forward convolution: on tfjs wasm that is
 * XNNPACK, 2-10x faster than the wasm Conv2DBackpropInput kernel on CIFAR ResNet layers.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { convTranspose } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const s = tf.ones([1, 2, 2, 1]), w = tf.ones([3, 3, 1, 1]);
 * console.log(Array.from(convTranspose(tf, s, w, [1, 4, 4, 1], 2, 1).dataSync()).slice(0, 4)); // [1, 2, 1, 1]
 * ```
 */
export function convTranspose(
  tf: Tf,
  s: TfTensor,
  w: TfTensor,
  inputShape: readonly number[],
  stride: number,
  pad: number,
): TfTensor {
  const [kh, kw] = w.shape as number[];
  const [n, ho, wo, c] = s.shape as number[];
  let u = s;
  if (stride > 1) {
    // Zero insertion: each value followed by stride - 1 zeros along W, then along H.
    const z = Array(stride - 1).fill(0);
    u = tf.reshape(tf.stack([u, ...z.map(() => tf.zerosLike(u))], 3), [n, ho, wo * stride, c]);
    u = tf.reshape(tf.stack([u, ...z.map(() => tf.zerosLike(u))], 2), [n, ho * stride, wo * stride, c]);
    u = tf.slice(u, [0, 0, 0, 0], [n, stride * (ho - 1) + 1, stride * (wo - 1) + 1, c]);
  }
  const [top, left] = [kh - 1 - pad, kw - 1 - pad];
  const bottom = inputShape[1] - u.shape[1]! - top + kh - 1;
  const right = inputShape[2] - u.shape[2]! - left + kw - 1;
  if (Math.min(top, left, bottom, right) < 0) {
    return tf.conv2dTranspose(
      s as Tensor4D,
      w as Tensor4D,
      inputShape as [number, number, number, number],
      stride,
      pad,
    );
  }
  const flipped = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as Tensor4D;
  return tf.conv2d(u as Tensor4D, flipped, 1, [[0, 0], [top, bottom], [left, right], [0, 0]]);
}

/**
 * An elementwise (diagonal) linear map a * w, with w per channel (last axis): an unmerged
 * eval-mode BatchNorm y = s * x + t is this map with w = s and bias t.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { diagonalOp } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * console.log(Array.from(diagonalOp(tf).apply(tf.tensor2d([[1, 2]]), tf.tensor1d([3, -1])).dataSync())); // [3, -2]
 * ```
 */
export function diagonalOp(tf: Tf): LinearOp {
  return { apply: (a, w) => tf.mul(a, w), transpose: (s, w) => tf.mul(s, w) };
}

/**
 * z + delta * sign(z), with sign(0) = +1, so no denominator is 0.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { stabilize } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * console.log(Array.from(stabilize(tf, tf.tensor1d([-1, 0, 2]), 0.5).dataSync())); // [-1.5, 0.5, 2.5]
 * ```
 */
export function stabilize(tf: Tf, z: TfTensor, delta: number): TfTensor {
  if (delta === 0) return z;
  return tf.add(z, tf.where(tf.greaterEqual(z, 0), tf.fill(z.shape, delta), tf.fill(z.shape, -delta)));
}

const pos = (tf: Tf, t: TfTensor) => tf.relu(t);
const neg = (tf: Tf, t: TfTensor) => tf.minimum(t, 0);

/**
 * Relevance at the input of a linear map (conv or dense) under `rule`. `nonNegativeInput` says
 * a >= 0 (after a ReLU), which lets gamma and z+ use one modified weight instead of a sign split.
 * `stabilizer` is added to every denominator with its sign.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { denseOp, linearRelevance } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const a = tf.tensor2d([[1, 3]]), w = tf.tensor2d([[1], [1]]);
 * const r = linearRelevance(tf, { name: "epsilon", epsilon: 0 }, denseOp(tf), a, w, null, tf.tensor2d([[8]]), 0, true);
 * console.log(Array.from(r.dataSync())); // [2, 6]
 * ```
 */
export function linearRelevance(
  tf: Tf,
  rule: LayerRule,
  op: LinearOp,
  a: TfTensor,
  w: TfTensor,
  bias: TfTensor | null,
  relevance: TfTensor,
  stabilizer: number,
  nonNegativeInput: boolean,
): TfTensor {
  const withBias = (z: TfTensor, b: TfTensor | null) => (b ? tf.add(z, b) : z);
  const ratio = (z: TfTensor, delta: number) => tf.div(relevance, stabilize(tf, z, delta));
  switch (rule.name) {
    case "epsilon": {
      const s = ratio(withBias(op.apply(a, w), bias), rule.epsilon + stabilizer);
      return tf.mul(a, op.transpose(s, w, a));
    }
    case "gamma": {
      const g = rule.gamma;
      const [wp, wn] = [pos(tf, w), neg(tf, w)];
      const z = withBias(op.apply(a, w), bias);
      // Positive part P_j of the contributions (N_j = z_j - P_j), bias included.
      const ap = nonNegativeInput ? a : pos(tf, a);
      let zPos = op.apply(ap, wp);
      if (!nonNegativeInput) zPos = tf.add(zPos, op.apply(neg(tf, a), wn));
      if (bias) zPos = tf.add(zPos, pos(tf, bias));
      const up = tf.greaterEqual(z, 0);
      const s = ratio(tf.add(z, tf.mul(tf.where(up, zPos, tf.sub(z, zPos)), g)), stabilizer);
      const sUp = tf.where(up, s, tf.zerosLike(s)), sDown = tf.sub(s, sUp);
      // R = a W^T s + g * [(a w)^+ terms against s^+ and (a w)^- terms against s^-].
      const sPos = tf.add(s, tf.mul(sUp, g)), sNeg = tf.add(s, tf.mul(sDown, g));
      const cp = tf.add(op.transpose(sPos, wp, a), op.transpose(sNeg, wn, a));
      if (nonNegativeInput) return tf.mul(a, cp);
      const cn = tf.add(op.transpose(sPos, wn, a), op.transpose(sNeg, wp, a));
      return tf.add(tf.mul(ap, cp), tf.mul(neg(tf, a), cn));
    }
    case "zplus": {
      const wp = pos(tf, w);
      if (nonNegativeInput) {
        const s = ratio(op.apply(a, wp), stabilizer);
        return tf.mul(a, op.transpose(s, wp, a));
      }
      const [ap, an, wn] = [pos(tf, a), neg(tf, a), neg(tf, w)];
      const s = ratio(tf.add(op.apply(ap, wp), op.apply(an, wn)), stabilizer);
      return tf.add(tf.mul(ap, op.transpose(s, wp, a)), tf.mul(an, op.transpose(s, wn, a)));
    }
    case "zB": {
      // Bounds as full tensors: the convolution's zero padding must not see them.
      const low = tf.add(tf.zerosLike(a), tf.tensor1d([...rule.low]));
      const high = tf.add(tf.zerosLike(a), tf.tensor1d([...rule.high]));
      const [wp, wn] = [pos(tf, w), neg(tf, w)];
      const z = tf.sub(tf.sub(op.apply(a, w), op.apply(low, wp)), op.apply(high, wn));
      const s = ratio(z, stabilizer);
      const c = tf.sub(tf.mul(a, op.transpose(s, w, a)), tf.mul(low, op.transpose(s, wp, a)));
      return tf.sub(c, tf.mul(high, op.transpose(s, wn, a)));
    }
  }
}

/**
 * Per-rule contributions of the summands of a parameter-free sum z = sum(parts) (weight 1):
 * `a` for epsilon (and zB, which only applies to the first linear map); `a + gamma * a^+` where
 * z >= 0 and `a + gamma * a^-` where z < 0 for gamma; `a^+` for z+. `sum` reduces the summands
 * to z's shape.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { sumContributions } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const [p] = sumContributions(tf, { name: "zplus" }, [tf.tensor1d([-1, 2])], (t) => t);
 * console.log(Array.from(p.dataSync())); // [0, 2]
 * ```
 */
export function sumContributions(
  tf: Tf,
  rule: LayerRule,
  inputs: TfTensor[],
  sum: (t: TfTensor) => TfTensor,
): TfTensor[] {
  switch (rule.name) {
    case "gamma": {
      const z = sum(tf.addN(inputs));
      const up = tf.greaterEqual(z, 0);
      return inputs.map((a) => {
        const boost = tf.add(
          tf.mul(pos(tf, a), tf.cast(up, "float32")),
          tf.mul(neg(tf, a), tf.cast(tf.logicalNot(up), "float32")),
        );
        return tf.add(a, tf.mul(boost, rule.gamma));
      });
    }
    case "zplus":
      return inputs.map((a) => pos(tf, a));
    default:
      return inputs;
  }
}

/**
 * Splits the relevance of `a + b + ...` among the summands in proportion to their
 * contributions under `rule` (stabilised, no epsilon absorption).
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { addRelevance } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const [ra, rb] = addRelevance(tf, { name: "epsilon", epsilon: 0 }, [tf.scalar(1), tf.scalar(3)], tf.scalar(8), 1e-9);
 * console.log(ra.dataSync()[0].toFixed(3), rb.dataSync()[0].toFixed(3)); // 2.000 6.000
 * ```
 */
export function addRelevance(
  tf: Tf,
  rule: LayerRule,
  inputs: TfTensor[],
  relevance: TfTensor,
  stabilizer: number,
): TfTensor[] {
  const parts = sumContributions(tf, rule, inputs, (t) => t);
  const s = tf.div(relevance, stabilize(tf, tf.addN(parts), stabilizer));
  return parts.map((p) => tf.mul(p, s));
}

/**
 * Global average pooling [N, H, W, C] -> [N, C] as a linear layer with weights 1/HW: relevance
 * goes back in proportion to each position's contribution under `rule`.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { poolRelevance } from "./rules.ts";
 * const tf = await initTfjs("cpu");
 * const r = poolRelevance(tf, { name: "zplus" }, tf.tensor4d([1, 3], [1, 1, 2, 1]), tf.tensor2d([[4]]), 1e-9);
 * console.log(Array.from(r.dataSync())); // [1, 3]
 * ```
 */
export function poolRelevance(
  tf: Tf,
  rule: LayerRule,
  a: TfTensor,
  relevance: TfTensor,
  stabilizer: number,
): TfTensor {
  const [n, , , c] = a.shape;
  // The pooled sum per channel, broadcast back, decides the gamma boost's direction.
  const [contrib] = sumContributions(tf, rule, [a], (t) => tf.sum(t, [1, 2], true));
  const s = tf.div(relevance, stabilize(tf, tf.sum(contrib, [1, 2]), stabilizer));
  return tf.mul(contrib, tf.reshape(s, [n, 1, 1, c]));
}
