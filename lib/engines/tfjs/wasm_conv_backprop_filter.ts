/**
 * `Conv2DBackpropFilter` for the wasm backend, as one XNNPACK forward convolution over
 * transposed operands: the input becomes a batch of `Cin` single images with the original batch
 * as channels (`[Cin, H, W, N]`), the output gradient becomes a `[Ho, Wo, N, Cout]` filter
 * dilated by the stride, and the result `[Cin, kh, kw, Cout]` is transposed to HWIO.
 * The contraction (over N, Ho, Wo) then runs in XNNPACK's indirect GEMM.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import type { TfTensor } from "../../deps.ts";
 * const tf = await initTfjs("wasm"); // registers the kernel
 * const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.ones([1, 4, 4, 1]), dy: tf.ones([1, 4, 4, 1]) },
 *   { strides: 1, pad: "same", dataFormat: "NHWC", filterShape: [3, 3, 1, 1] } as never) as TfTensor;
 * console.log(Array.from(dw.dataSync())); // [9, 12, 9, 12, 16, 12, 9, 12, 9]
 * ```
 * @module
 */

import type { Tf, TfjsWasmBackend, TfKernelConfig, TfTensorInfo } from "../../deps.ts";
import { pair, WasmOps } from "./wasm_ops.ts";

/** Attributes tfjs passes to `Conv2DBackpropFilter`. */
interface FilterGradAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | number[][];
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
}

/**
 * Weight gradient `dW[kh, kw, ci, co] = sum x[n, oh*s + kh - pt, ow*s + kw - pl, ci] dy[n, oh, ow, co]`.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { conv2dBackpropFilter } from "./wasm_conv_backprop_filter.ts";
 * import { WasmOps } from "./wasm_ops.ts";
 * import type { TfjsWasmBackend } from "../../deps.ts";
 * const tf = await initTfjs("wasm");
 * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
 * const x = ops.output([1, 2, 2, 1]), dy = ops.output([1, 2, 2, 1]);
 * ops.f32(x).set([1, 2, 3, 4]); ops.f32(dy).fill(1);
 * const dw = conv2dBackpropFilter(ops, x, dy, { strides: 1, pad: 0, dataFormat: "NHWC", filterShape: [1, 1, 1, 1] });
 * console.log(Array.from(ops.f32(dw))); // [10]
 * ops.dispose(x, dy, dw);
 * ```
 */
export function conv2dBackpropFilter(
  ops: WasmOps,
  x: TfTensorInfo,
  dy: TfTensorInfo,
  attrs: FilterGradAttrs,
): TfTensorInfo {
  const { filterShape } = attrs;
  checkSupported(x, dy, attrs);
  const info = ops.tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    attrs.strides,
    1,
    attrs.pad as never,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  const [n, h, w] = x.shape;
  const [, ho, wo, co] = dy.shape;
  if (info.outHeight !== ho || info.outWidth !== wo || info.outChannels !== co || dy.shape[0] !== n) {
    throw new Error(
      `Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the convolution of x [${x.shape}] ` +
        `with filter [${filterShape}] (expected [${n}, ${info.outHeight}, ${info.outWidth}, ${info.outChannels}])`,
    );
  }
  const [kh, kw] = filterShape;
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const top = info.padInfo.top, left = info.padInfo.left;
  if (kh === 1 && kw === 1 && top === 0 && left === 0) return pointwiseFilterGrad(ops, x, dy, sh, sw);
  // Rows past the last one any output reads: a negative bottom padding, removed by cropping x.
  const bottom = kh + sh * (ho - 1) - h - top;
  const right = kw + sw * (wo - 1) - w - left;
  const cropped = bottom < 0 || right < 0
    ? ops.slice(x, [0, 0, 0, 0], [n, h + Math.min(bottom, 0), w + Math.min(right, 0), x.shape[3]])
    : null;
  const xt = ops.transpose(cropped ?? x, [3, 1, 2, 0]); // [ci, H, W, N]
  ops.dispose(cropped);
  const dyt = ops.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, co]: an HWIO filter
  const g = ops.conv2d(xt, dyt, {
    strides: [1, 1],
    dilations: [sh, sw],
    pads: [[top, Math.max(bottom, 0)], [left, Math.max(right, 0)]],
  }); // [ci, kh, kw, co]
  ops.dispose(xt, dyt);
  const dw = ops.transpose(g, [1, 2, 0, 3]);
  ops.dispose(g);
  return dw;
}

/**
 * 1x1 filters: `dW[0, 0] = xs^T dy` over the P = N*Ho*Wo output pixels, where `xs` is x at the
 * strided positions. A plain GEMM (1x1 convolution), with the operand of fewer channels as the
 * packed filter: XNNPACK's weight packing costs several times a transpose per element.
 */
function pointwiseFilterGrad(
  ops: WasmOps,
  x: TfTensorInfo,
  dy: TfTensorInfo,
  sh: number,
  sw: number,
): TfTensorInfo {
  const [n, h, w, ci] = x.shape;
  const [, ho, wo, co] = dy.shape;
  const p = n * ho * wo;
  let xs: TfTensorInfo;
  if (sh === 1 && sw === 1 && ho === h && wo === w) {
    xs = ops.reshape(x, [1, 1, p, ci]);
  } else {
    xs = ops.output([1, 1, p, ci]);
    const src = ops.f32(x), dst = ops.f32(xs);
    let o = 0;
    for (let b = 0; b < n; b++) {
      for (let r = 0; r < ho; r++) {
        for (let c = 0; c < wo; c++) {
          const i = ((b * h + r * sh) * w + c * sw) * ci;
          for (let k = 0; k < ci; k++) dst[o++] = src[i + k];
        }
      }
    }
  }
  const dyf = ops.reshape(dy, [p, co]);
  const pw: { strides: [number, number]; dilations: [number, number]; pads: [[0, 0], [0, 0]] } = {
    strides: [1, 1],
    dilations: [1, 1],
    pads: [[0, 0], [0, 0]],
  };
  let dw: TfTensorInfo;
  if (ci <= co) {
    const dyt = ops.transpose(dyf, [1, 0]); // [co, P]: co pixels of P channels
    const rows = ops.reshape(dyt, [1, 1, co, p]);
    const g = ops.conv2d(rows, xs, pw); // [1, 1, co, ci]
    ops.dispose(dyt, rows);
    const g2 = ops.reshape(g, [co, ci]);
    const t = ops.transpose(g2, [1, 0]);
    ops.dispose(g, g2);
    dw = ops.reshape(t, [1, 1, ci, co]);
    ops.dispose(t);
  } else {
    const xf = ops.reshape(xs, [p, ci]);
    const xt = ops.transpose(xf, [1, 0]); // [ci, P]
    const rows = ops.reshape(xt, [1, 1, ci, p]);
    const filter = ops.reshape(dyf, [1, 1, p, co]);
    const g = ops.conv2d(rows, filter, pw); // [1, 1, ci, co]
    ops.dispose(xf, xt, rows, filter);
    dw = ops.reshape(g, [1, 1, ci, co]);
    ops.dispose(g);
  }
  ops.dispose(xs, dyf);
  return dw;
}

function checkSupported(x: TfTensorInfo, dy: TfTensorInfo, attrs: FilterGradAttrs): void {
  if (attrs.dataFormat !== "NHWC") {
    throw new Error(`wasm Conv2DBackpropFilter supports dataFormat NHWC only, got ${attrs.dataFormat}`);
  }
  if (x.dtype !== "float32" || dy.dtype !== "float32") {
    throw new Error(`wasm Conv2DBackpropFilter needs float32 tensors, got ${x.dtype} and ${dy.dtype}`);
  }
  if (x.shape.length !== 4 || dy.shape.length !== 4) {
    throw new Error(`wasm Conv2DBackpropFilter needs rank-4 x and dy, got [${x.shape}] and [${dy.shape}]`);
  }
  const [sh, sw] = pair(attrs.strides);
  if (!(sh >= 1 && sw >= 1)) throw new Error(`wasm Conv2DBackpropFilter: invalid strides ${attrs.strides}`);
}

/**
 * The kernel registration record.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { conv2dBackpropFilterConfig } from "./wasm_conv_backprop_filter.ts";
 * const tf = await initTfjs("cpu");
 * console.log(conv2dBackpropFilterConfig(tf).kernelName); // Conv2DBackpropFilter
 * ```
 */
export function conv2dBackpropFilterConfig(tf: Tf): TfKernelConfig {
  return {
    kernelName: "Conv2DBackpropFilter",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const ops = new WasmOps(tf, backend as unknown as TfjsWasmBackend);
      return conv2dBackpropFilter(ops, inputs.x!, inputs.dy!, attrs as unknown as FilterGradAttrs);
    },
  };
}
