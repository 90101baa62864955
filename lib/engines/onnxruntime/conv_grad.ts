/**
 * Convolution backward passes as ONNX subgraphs over graph-input weights (the student's), for
 * the training graph: the input gradient (a stride-1 convolution with the flipped, transposed
 * kernel, or ConvTranspose for strided convolutions) and the weight gradient (im2col by slices
 * of the padded input, then one batched MatMul against dy and a sum over the batch).
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { convWeightGrad } from "./conv_grad.ts";
 * const b = new OnnxBuilder("wg");
 * const x = b.input("x", "float32", [2, 3, 8, 8]), dy = b.input("dy", "float32", [2, 4, 8, 8]);
 * const geo = { n: 2, ci: 3, co: 4, k: 3, stride: 1, pad: 1, h: 8, w: 8, oh: 8, ow: 8 };
 * b.output(convWeightGrad(b, x, dy, geo), "dw");
 * console.log(b.nodeCount > 0); // true
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";

/** Sizes of one convolution: batch, channels, kernel, stride, padding, input and output extent. */
export interface ConvGeometry {
  n: number;
  ci: number;
  co: number;
  k: number;
  stride: number;
  pad: number;
  h: number;
  w: number;
  oh: number;
  ow: number;
}

/**
 * How the weight gradient is formulated. NCHW graphs (see {@link convWeightGrad}): `im2col`
 * (the default) or `shifted_matmuls`. NCHWc graphs (train_nchwc.ts) compute one product per
 * image summed over the batch, unless `batch_folded` asks for one GEMM per convolution with the
 * batch in the inner dimension; a layout ignores the other layout's methods. `batch_folded` was
 * measured slower on a 2-core AVX-512 machine (resnet20, batch 64: 253 vs 172 ms per step on 2
 * threads, 329 vs 285 ms on 1; tools/profile_train_step.ts): MLAS runs the long-inner-dimension,
 * transposed-A products and the channels-last stacking below the per-image products' speed.
 */
export const WEIGHT_GRAD_METHODS = ["im2col", "shifted_matmuls", "batch_folded"] as const;
/** One of {@link WEIGHT_GRAD_METHODS}. */
export type WeightGradMethod = typeof WEIGHT_GRAD_METHODS[number];

/**
 * dL/dW [co, ci, k, k] of `y = conv(x, W)` given `dy` [n, co, oh, ow].
 *
 * `im2col`: the k*k shifted (strided) windows of the padded input are concatenated into
 * [n, k*k*ci, oh*ow], multiplied by dy [n, co, oh*ow] transposed per sample, summed over the
 * batch and reordered to PyTorch's [co, ci, kh, kw]. `shifted_matmuls`: the same products, one
 * MatMul per kernel offset without materialising the concatenation.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { convWeightGrad } from "./conv_grad.ts";
 * const b = new OnnxBuilder("wg");
 * const x = b.input("x", "float32", [1, 1, 4, 4]), dy = b.input("dy", "float32", [1, 1, 2, 2]);
 * const geo = { n: 1, ci: 1, co: 1, k: 1, stride: 2, pad: 0, h: 4, w: 4, oh: 2, ow: 2 };
 * console.log(typeof convWeightGrad(b, x, dy, geo, "shifted_matmuls")); // string
 * ```
 */
export function convWeightGrad(
  b: OnnxBuilder,
  x: string,
  dy: string,
  g: ConvGeometry,
  method: WeightGradMethod = "im2col",
): string {
  const { n, ci, co, k, oh, ow } = g;
  const windows = shiftedWindows(b, x, g);
  const dyFlat = b.op("Reshape", [dy, b.int64s([n, co, oh * ow])]);
  const flat = (v: string, rows: number) => b.op("Reshape", [v, b.int64s([n, rows, oh * ow])]);
  let products: string;
  if (method === "shifted_matmuls" || windows.length === 1) {
    // One [n, co, ci] product per kernel offset, concatenated offset-major.
    const parts = windows.map((win) =>
      b.op("FusedMatMul", [dyFlat, flat(win, ci)], { transB: 1 }, "com.microsoft")
    );
    products = parts.length === 1 ? parts[0] : b.op("Concat", parts, { axis: 2 });
  } else {
    // Offset-major columns [n, k*k*ci, oh*ow]: contiguous copies, one batched MatMul.
    const cols = flat(b.op("Concat", windows, { axis: 1 }), k * k * ci);
    products = b.op("FusedMatMul", [dyFlat, cols], { transB: 1 }, "com.microsoft");
  }
  const summed = b.op("ReduceSum", [products, b.int64s([0])], { keepdims: 0 });
  if (k === 1) return b.op("Reshape", [summed, b.int64s([co, ci, 1, 1])]);
  // [co, (kh, kw, ci)] -> PyTorch's [co, ci, kh, kw].
  return b.op("Transpose", [b.op("Reshape", [summed, b.int64s([co, k, k, ci])])], { perm: [0, 3, 1, 2] });
}

/**
 * The k*k input windows [n, ci, oh, ow] each kernel offset (kh, kw) multiplies, row-major
 * (Pad, then one strided Slice per offset).
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { shiftedWindows } from "./conv_grad.ts";
 * const b = new OnnxBuilder("win");
 * const x = b.input("x", "float32", [1, 3, 8, 8]);
 * console.log(shiftedWindows(b, x, { k: 3, stride: 2, pad: 1, oh: 4, ow: 4 }).length); // 9
 * ```
 */
export function shiftedWindows(
  b: OnnxBuilder,
  x: string,
  g: Pick<ConvGeometry, "k" | "stride" | "pad" | "oh" | "ow">,
): string[] {
  const { k, stride: s, pad: p, oh, ow } = g;
  const padded = p > 0 ? b.op("Pad", [x, b.int64s([0, 0, p, p, 0, 0, p, p])]) : x;
  // A 1x1 stride-1 convolution reads the input as it is.
  if (k === 1 && s === 1 && p === 0) return [x];
  const out: string[] = [];
  for (let kh = 0; kh < k; kh++) {
    for (let kw = 0; kw < k; kw++) {
      out.push(b.op("Slice", [
        padded,
        b.int64s([kh, kw]),
        b.int64s([kh + (oh - 1) * s + 1, kw + (ow - 1) * s + 1]),
        b.int64s([2, 3]),
        b.int64s([s, s]),
      ]));
    }
  }
  return out;
}

/**
 * dL/dx [n, ci, h, w] of `y = conv(x, W)` for a graph-input weight `w` [co, ci, k, k].
 * Stride 1 uses a convolution with the flipped, transposed kernel; other strides ConvTranspose
 * with the output padding that restores the input size.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { convInputGrad } from "./conv_grad.ts";
 * const b = new OnnxBuilder("ig");
 * const dy = b.input("dy", "float32", [1, 4, 8, 8]), w = b.input("w", "float32", [4, 3, 3, 3]);
 * const geo = { n: 1, ci: 3, co: 4, k: 3, stride: 1, pad: 1, h: 8, w: 8, oh: 8, ow: 8 };
 * console.log(typeof convInputGrad(b, dy, w, geo)); // string
 * ```
 */
export function convInputGrad(b: OnnxBuilder, dy: string, w: string, g: ConvGeometry): string {
  const { k, stride: s, pad: p } = g;
  if (s === 1) {
    const flipped = flippedKernelOp(b, w, k);
    const q = k - 1 - p;
    return b.op("Conv", [dy, flipped], { kernel_shape: [k, k], pads: [q, q, q, q] });
  }
  return b.op("ConvTranspose", [dy, w], {
    kernel_shape: [k, k],
    strides: [s, s],
    pads: [p, p, p, p],
    output_padding: [g.h - ((g.oh - 1) * s - 2 * p + k), g.w - ((g.ow - 1) * s - 2 * p + k)],
  });
}

/**
 * A graph-input kernel [co, ci, k, k] transposed and flipped to [ci, co, k, k]: the kernel of the
 * stride-1 convolution that gives the input gradient.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { flippedKernelOp } from "./conv_grad.ts";
 * const b = new OnnxBuilder("fk");
 * b.output(flippedKernelOp(b, b.input("w", "float32", [4, 3, 3, 3]), 3), "f");
 * console.log(b.nodeCount); // 2
 * ```
 */
export function flippedKernelOp(b: OnnxBuilder, w: string, k: number): string {
  const transposed = b.op("Transpose", [w], { perm: [1, 0, 2, 3] });
  return k === 1 ? transposed : b.op("Slice", [
    transposed,
    b.int64s([-1, -1]),
    b.int64s([-(k + 1), -(k + 1)]),
    b.int64s([2, 3]),
    b.int64s([-1, -1]),
  ]);
}
