/**
 * BatchNorm folding, the one implementation: which eval-mode BatchNorms fold into the
 * convolution before them ({@link foldableBatchNorms}), the per-channel scale and shift of an
 * eval-mode BatchNorm ({@link batchNormScaleShift}), and the folded weight and bias
 * ({@link foldBatchNorm}): `W' = W * s`, `b' = beta + (b - mean) * s` per output channel with
 * `s = gamma / sqrt(var + eps)`, computed in float64 and rounded once to float32. The
 * onnxruntime engine's eval graphs (`lowerEvalNet`) and the ONNX exporter fold through here; the
 * tfjs LRP canonizer takes its foldability rule from here and applies the same formula in tfjs
 * ops on the device-resident parameters.
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

import { type BatchNormNode, type Graph, valueUseCounts } from "../graph.ts";

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
 * The foldability rule: conv name -> the BatchNorm that reads that convolution's output, where
 * the BatchNorm is the output's only reader and the output is not the graph's.
 *
 * @example
 * ```ts
 * import { buildModel } from "../models/zoo.ts";
 * import { foldableBatchNorms } from "./batchnorm_fold.ts";
 * console.log(foldableBatchNorms(buildModel("resnet8")).get("conv1")?.name); // bn1
 * ```
 */
export function foldableBatchNorms(graph: Graph): Map<string, BatchNormNode> {
  const uses = valueUseCounts(graph);
  const producers = new Map(graph.nodes.map((n) => [n.output, n]));
  const out = new Map<string, BatchNormNode>();
  for (const n of graph.nodes) {
    if (n.op !== "batchnorm") continue;
    const p = producers.get(n.inputs[0]);
    if (p?.op === "conv" && uses.get(p.output) === 1 && p.output !== graph.output) out.set(p.name, n);
  }
  return out;
}

/**
 * Eval-mode BatchNorm as float64 per-channel `y = x * scale + shift`:
 * `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale`.
 *
 * @example
 * ```ts
 * import { batchNormScaleShift } from "./batchnorm_fold.ts";
 * const { scale, shift } = batchNormScaleShift({ gamma: [2], beta: [1], mean: [3], variance: [3], eps: 1 });
 * console.log(scale[0], shift[0]); // 1 -2
 * ```
 */
export function batchNormScaleShift(bn: BatchNormValues): { scale: Float64Array; shift: Float64Array } {
  const c = bn.gamma.length;
  for (const [k, v] of Object.entries({ beta: bn.beta, mean: bn.mean, variance: bn.variance })) {
    if (v.length !== c) throw new Error(`BatchNorm ${k} has ${v.length} channels, its weight ${c}`);
  }
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    scale[i] = bn.gamma[i] / Math.sqrt(bn.variance[i] + bn.eps);
    shift[i] = bn.beta[i] - bn.mean[i] * scale[i];
  }
  return { scale, shift };
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
  const { scale } = batchNormScaleShift(bn);
  const w = new Float32Array(weight.data.length);
  const b = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    const s = scale[o];
    for (let j = o * per; j < (o + 1) * per; j++) w[j] = weight.data[j] * s;
    b[o] = bn.beta[o] + ((bias ? bias[o] : 0) - bn.mean[o]) * s;
  }
  return { weight: w, bias: b };
}
