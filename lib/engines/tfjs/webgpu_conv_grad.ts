/**
 * The convolution weight gradient on the tfjs `webgpu` backend, as the project computes it.
 *
 * tfjs-webgpu 4.22's `Conv2DBackpropFilter` runs one GPU thread per filter element, each summing
 * over the whole batch (N * Ho * Wo products): 2,304 threads for a 3x3x16x16 filter. That is
 * slow on any GPU, and wrong here: on Mesa's llvmpipe, at batch 64 on 32x32 images (65,536
 * positions) its result differs from tfjs-wasm's by 180 on a scale of 934, while batch 32 agrees
 * to 5e-6 (measured 2026-12-06). The replacement is im2col plus one matrix product:
 * dW[kh, kw, ci, co] = sum over (n, y, x) of x_pad[n, y*s + kh, x*s + kw, ci] * dy[n, y, x, co],
 * where the im2col matrix is [N*Ho*Wo, KH*KW*Ci], and the product runs on tfjs-webgpu's tiled
 * MatMul. It replaces the `Conv2D` gradient's filter part only while `webgpu` is the active
 * backend; every other backend keeps its own.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { convFilterGradByIm2col } from "./webgpu_conv_grad.ts";
 * const tf = await loadTfjsCore();
 * await tf.setBackend("cpu");
 * const x = tf.ones([1, 3, 3, 1]), dy = tf.ones([1, 3, 3, 1]);
 * console.log(Array.from(await convFilterGradByIm2col(tf, x, dy, [3, 3, 1, 1], 1, 1).data())); // [4, 6, 4, 6, 9, 6, 4, 6, 4]
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../deps.ts";

type Tensor4D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;
type Pad = number | "same" | "valid";

/**
 * dL/dW of `conv2d(x, W, strides, pad)` (NHWC, dilation 1) from `dy`, by im2col and one MatMul.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { convFilterGradByIm2col } from "./webgpu_conv_grad.ts";
 * const tf = await loadTfjsCore();
 * await tf.setBackend("cpu");
 * const x = tf.randomNormal([2, 5, 5, 3]) as import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;
 * const dy = tf.randomNormal([2, 3, 3, 4]) as import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;
 * const ours = convFilterGradByIm2col(tf, x, dy, [3, 3, 3, 4], 2, 1);
 * console.log(ours.shape); // [3, 3, 3, 4]
 * ```
 */
export function convFilterGradByIm2col(
  tf: Tf,
  x: TfTensor,
  dy: TfTensor,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
): TfTensor {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad,
    );
    const [kh, kw, ci, co] = filterShape;
    const { outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
    const [n, h, w] = x.shape as number[];
    const top = info.padInfo.top, left = info.padInfo.left;
    // Pad so that every window row/column the slices below touch exists.
    const bottom = Math.max(0, (ho - 1) * sh + kh - h - top);
    const right = Math.max(0, (wo - 1) * sw + kw - w - left);
    const xp = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
    const cols: TfTensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        cols.push(
          tf.stridedSlice(xp, [0, i, j, 0], [n, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, ci], [
            1,
            sh,
            sw,
            1,
          ]),
        );
      }
    }
    const patches = tf.reshape(cols.length === 1 ? cols[0] : tf.concat(cols, 3), [n * ho * wo, kh * kw * ci]);
    const dw = tf.matMul(patches, tf.reshape(dy, [n * ho * wo, co]), true, false);
    return tf.reshape(dw, filterShape);
  });
}

let registered = false;

/**
 * Routes the filter part of tfjs's `Conv2D` gradient to {@link convFilterGradByIm2col} while the
 * `webgpu` backend is active (the input part and other backends are unchanged). Idempotent.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { registerWebgpuConvGradient } from "./webgpu_conv_grad.ts";
 * const tf = await loadTfjsCore();
 * registerWebgpuConvGradient(tf);
 * console.log(tf.getGradient("Conv2D") !== undefined); // true
 * ```
 */
export function registerWebgpuConvGradient(tf: Tf): void {
  if (registered) return;
  const stock = tf.getGradient("Conv2D");
  if (!stock) throw new Error("tfjs registered no Conv2D gradient");
  tf.registerGradient({
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const grads = stock.gradFunc(dy, saved, attrs);
      if (tf.getBackend() !== "webgpu") return grads;
      const [x, filter] = saved;
      const a = attrs as unknown as { strides: number | [number, number]; pad: Pad; dataFormat?: string };
      if (a.dataFormat && a.dataFormat !== "NHWC") return grads;
      return {
        ...grads,
        filter: () =>
          convFilterGradByIm2col(
            tf,
            x as Tensor4D,
            dy as TfTensor,
            filter.shape as [number, number, number, number],
            a.strides,
            a.pad,
          ),
      };
    },
  });
  registered = true;
}
