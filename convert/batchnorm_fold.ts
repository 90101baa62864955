/**
 * Folds an eval-mode BatchNorm into the convolution before it:
 * `W' = W * s`, `b' = beta + (b - mean) * s` per output channel, with `s = gamma / sqrt(var + eps)`.
 * Computed in float64, rounded once to float32.
 *
 * @example
 * ```ts
 * import { foldBatchNorm } from "./batchnorm_fold.ts";
 * const f = foldBatchNorm(
 *   { shape: [1, 1, 1, 1], data: new Float32Array([2]) },
 *   undefined,
 *   { gamma: new Float32Array([1]), beta: new Float32Array([0.5]), mean: new Float32Array([1]), variance: new Float32Array([3]), eps: 1 },
 * );
 * console.log(f.weight[0], f.bias[0]); // 1 0
 * ```
 * @module
 */

/** BatchNorm parameters and buffers, one value per channel. */
export interface BatchNormValues {
  /** Scale (`weight` in PyTorch). */
  gamma: ArrayLike<number>;
  /** Shift (`bias`). */
  beta: ArrayLike<number>;
  /** `running_mean`. */
  mean: ArrayLike<number>;
  /** `running_var`. */
  variance: ArrayLike<number>;
  /** Added to the variance. */
  eps: number;
}

/** Folded convolution parameters. */
export interface FoldedConv {
  /** OIHW weight. */
  weight: Float32Array;
  /** Per-output-channel bias. */
  bias: Float32Array;
}

/**
 * Returns the folded weight and bias of `conv(x) -> batchnorm` (eval mode).
 *
 * @example
 * ```ts
 * import { foldBatchNorm } from "./batchnorm_fold.ts";
 * const f = foldBatchNorm({ shape: [2, 1, 1, 1], data: new Float32Array([1, 1]) }, new Float32Array([1, 0]),
 *   { gamma: [2, 1], beta: [0, 1], mean: [0, 0], variance: [1, 1], eps: 0 });
 * console.log(f.weight, f.bias); // Float32Array [2, 1] Float32Array [2, 1]
 * ```
 */
export function foldBatchNorm(
  weight: { shape: readonly number[]; data: ArrayLike<number> },
  bias: ArrayLike<number> | undefined,
  bn: BatchNormValues,
): FoldedConv {
  const cout = weight.shape[0];
  const per = weight.data.length / cout;
  for (
    const [k, v] of Object.entries({ gamma: bn.gamma, beta: bn.beta, mean: bn.mean, variance: bn.variance })
  ) {
    if (v.length !== cout) {
      throw new Error(`BatchNorm ${k} has ${v.length} channels, the convolution ${cout}`);
    }
  }
  const w = new Float32Array(weight.data.length);
  const b = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    const s = bn.gamma[o] / Math.sqrt(bn.variance[o] + bn.eps);
    for (let j = o * per; j < (o + 1) * per; j++) w[j] = weight.data[j] * s;
    b[o] = bn.beta[o] + ((bias ? bias[o] : 0) - bn.mean[o]) * s;
  }
  return { weight: w, bias: b };
}
