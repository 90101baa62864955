/**
 * `Conv2DBackpropInput` for the wasm backend, as one XNNPACK forward convolution.
 *
 * Stride 1: a convolution of `dy` with the rotated, in/out-swapped filter. Stride s > 1 uses a
 * phase decomposition instead of zero-inserting `dy`: input rows with the same `(row + padTop)
 * mod s` (a phase) receive the filter taps `kh = phase + s*j` only, so each phase is a stride-1
 * convolution with a `ceil(k/s)`-tap sub-filter. The phases that have taps are stacked as output
 * channels of one convolution (shorter sub-filters padded with zero taps), then interleaved back
 * into rows and columns (a transpose; tap-less phases, k < s, become zeros) and cropped to the
 * input size.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import type { TfTensor } from "../../deps.ts";
 * const tf = await initTfjs("wasm"); // registers the kernel
 * const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy: tf.ones([1, 2, 2, 1]), filter: tf.ones([3, 3, 1, 1]) },
 *   { strides: 2, pad: 1, dataFormat: "NHWC", inputShape: [1, 4, 4, 1] } as never) as TfTensor;
 * console.log(Array.from(dx.dataSync()).slice(0, 4)); // [1, 2, 1, 1]
 * ```
 * @module
 */

import type { Tf, TfjsWasmBackend, TfKernelConfig, TfTensorInfo } from "../../deps.ts";
import { WasmOps } from "./wasm_ops.ts";

/** Attributes tfjs passes to `Conv2DBackpropInput`. */
interface InputGradAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | number[][];
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  inputShape: [number, number, number, number];
}

/** Where one spatial axis's phases live, in units of `dy` rows/columns. */
interface AxisPlan {
  /** Taps per phase sub-filter: ceil(k / s). */
  taps: number;
  /** First phase-grid index computed (floor(pad / s)). */
  first: number;
  /** Phase-grid positions computed per phase. */
  count: number;
  /** Convolution padding before/after along this axis (negative: crop dy). */
  before: number;
  after: number;
  /** Offset of input row 0 in the interleaved result. */
  offset: number;
}

function planAxis(size: number, outSize: number, k: number, s: number, pad: number): AxisPlan {
  const taps = Math.ceil(k / s);
  // Padded coordinate q = row + pad = s*u + phase; rows [0, size) need u in [first, last].
  const first = Math.floor(pad / s);
  const last = Math.floor((pad + size - 1) / s);
  const count = last - first + 1;
  // Phase output at u sums dy[u - j] * W[phase + s*j], j < taps: a correlation whose window
  // starts at dy[u - (taps - 1)].
  const before = taps - 1 - first;
  const after = count + taps - 1 - outSize - before;
  return { taps, first, count, before, after, offset: pad - first * s };
}

/**
 * Builds the stacked phase filter `[tapsH, tapsW, co, ph*pw*ci]` from an HWIO filter, for the
 * `ph x pw` phases that have taps (phase index below both the stride and the kernel size):
 * entry `[th, tw, o, (rh*pw + rw)*ci + c]` is `W[rh + sh*(tapsH-1-th), rw + sw*(tapsW-1-tw), c, o]`,
 * zero where that tap lies outside the filter.
 */
function phaseFilter(
  w: Float32Array,
  [kh, kw, ci, co]: readonly number[],
  [sh, sw]: readonly number[],
  [th, tw]: readonly number[],
  [ph, pw]: readonly number[],
  out: Float32Array,
): void {
  out.fill(0);
  const oc = ph * pw * ci;
  for (let rh = 0; rh < ph; rh++) {
    for (let rw = 0; rw < pw; rw++) {
      for (let a = 0; a < th; a++) {
        const fy = rh + sh * (th - 1 - a);
        if (fy >= kh) continue;
        for (let b = 0; b < tw; b++) {
          const fx = rw + sw * (tw - 1 - b);
          if (fx >= kw) continue;
          for (let c = 0; c < ci; c++) {
            const src = ((fy * kw + fx) * ci + c) * co;
            const dst = ((a * tw + b) * co) * oc + (rh * pw + rw) * ci + c;
            for (let o = 0; o < co; o++) out[dst + o * oc] = w[src + o];
          }
        }
      }
    }
  }
}

/**
 * Input gradient `dx = conv2d_transpose(dy, W)` for NHWC `dy` and HWIO `filter`.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { conv2dBackpropInput } from "./wasm_conv_backprop_input.ts";
 * import { WasmOps } from "./wasm_ops.ts";
 * import type { TfjsWasmBackend } from "../../deps.ts";
 * const tf = await initTfjs("wasm");
 * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
 * const dy = ops.output([1, 1, 1, 1]), w = ops.output([1, 1, 1, 1]);
 * ops.f32(dy).set([2]); ops.f32(w).set([3]);
 * const dx = conv2dBackpropInput(ops, dy, w, { strides: 2, pad: 0, dataFormat: "NHWC", inputShape: [1, 2, 2, 1] });
 * console.log(Array.from(ops.f32(dx))); // [6, 0, 0, 0]
 * ops.dispose(dy, w, dx);
 * ```
 */
export function conv2dBackpropInput(
  ops: WasmOps,
  dy: TfTensorInfo,
  filter: TfTensorInfo,
  attrs: InputGradAttrs,
): TfTensorInfo {
  checkSupported(dy, filter, attrs);
  const inputShape = attrs.inputShape;
  const info = ops.tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad as never,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  const [n, h, w, ci] = inputShape;
  const [kh, kw, fci, co] = filter.shape;
  if (
    fci !== ci || dy.shape[0] !== n || dy.shape[1] !== info.outHeight || dy.shape[2] !== info.outWidth ||
    dy.shape[3] !== co
  ) {
    throw new Error(
      `Conv2DBackpropInput: dy [${dy.shape}] and filter [${filter.shape}] do not match input shape ` +
        `[${inputShape}] (expected dy [${n}, ${info.outHeight}, ${info.outWidth}, ${co}])`,
    );
  }
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [ho, wo] = [dy.shape[1], dy.shape[2]];
  const rows = planAxis(h, ho, kh, sh, info.padInfo.top);
  const cols = planAxis(w, wo, kw, sw, info.padInfo.left);

  // Phases at or past the kernel size (k < s) receive no taps: they are zeros, not computed.
  const [ph, pw] = [Math.min(sh, kh), Math.min(sw, kw)];
  const f = ops.output([rows.taps, cols.taps, co, ph * pw * ci]);
  phaseFilter(ops.f32(filter), filter.shape, [sh, sw], [rows.taps, cols.taps], [ph, pw], ops.f32(f));
  // Negative padding means the first/last dy rows never reach the input: crop them.
  const cropTop = Math.max(-rows.before, 0), cropLeft = Math.max(-cols.before, 0);
  const cropBottom = Math.max(-rows.after, 0), cropRight = Math.max(-cols.after, 0);
  const src = cropTop + cropLeft + cropBottom + cropRight > 0
    ? ops.slice(dy, [0, cropTop, cropLeft, 0], [n, ho - cropTop - cropBottom, wo - cropLeft - cropRight, co])
    : null;
  const phases = ops.conv2d(src ?? dy, f, {
    strides: [1, 1],
    dilations: [1, 1],
    pads: [[Math.max(rows.before, 0), Math.max(rows.after, 0)], [
      Math.max(cols.before, 0),
      Math.max(cols.after, 0),
    ]],
  }); // [n, rows.count, cols.count, ph*pw*ci]
  ops.dispose(src, f);
  if (sh === 1 && sw === 1) return phases; // one phase: already [n, h, w, ci]
  const grid = interleave(ops, phases, [sh, sw], [ph, pw], ci);
  ops.dispose(phases);
  if (rows.offset === 0 && cols.offset === 0 && grid.shape[1] === h && grid.shape[2] === w) return grid;
  const dx = ops.slice(grid, [0, rows.offset, cols.offset, 0], [n, h, w, ci]);
  ops.dispose(grid);
  return dx;
}

/** `[n, U, V, ph*pw*ci]` phase stack to `[n, U*sh, V*sw, ci]`, zeros for the missing phases. */
function interleave(
  ops: WasmOps,
  x: TfTensorInfo,
  [sh, sw]: readonly number[],
  [ph, pw]: readonly number[],
  ci: number,
): TfTensorInfo {
  const [n, u, v] = x.shape;
  let r = ops.reshape(x, [n, u, v, ph, pw, ci]);
  if (ph < sh || pw < sw) {
    const padded = ops.run("PadV2", { x: r }, {
      paddings: [[0, 0], [0, 0], [0, 0], [0, sh - ph], [0, sw - pw], [0, 0]],
      constantValue: 0,
    });
    ops.dispose(r);
    r = padded;
  }
  // A 6-D transpose: the wasm DepthToSpace kernel is ~100x slower than Transpose here.
  const t = ops.transpose(r, [0, 1, 3, 2, 4, 5]);
  ops.dispose(r);
  const out = ops.reshape(t, [n, u * sh, v * sw, ci]);
  ops.dispose(t);
  return out;
}

function checkSupported(dy: TfTensorInfo, filter: TfTensorInfo, attrs: InputGradAttrs): void {
  if (attrs.dataFormat !== "NHWC") {
    throw new Error(`wasm Conv2DBackpropInput supports dataFormat NHWC only, got ${attrs.dataFormat}`);
  }
  if (dy.dtype !== "float32" || filter.dtype !== "float32") {
    throw new Error(`wasm Conv2DBackpropInput needs float32 tensors, got ${dy.dtype} and ${filter.dtype}`);
  }
  if (dy.shape.length !== 4 || filter.shape.length !== 4 || attrs.inputShape.length !== 4) {
    throw new Error(
      `wasm Conv2DBackpropInput needs rank-4 dy, filter and input shape, got [${dy.shape}], ` +
        `[${filter.shape}], [${attrs.inputShape}]`,
    );
  }
}

/**
 * The kernel registration record.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { conv2dBackpropInputConfig } from "./wasm_conv_backprop_input.ts";
 * const tf = await initTfjs("cpu");
 * console.log(conv2dBackpropInputConfig(tf).kernelName); // Conv2DBackpropInput
 * ```
 */
export function conv2dBackpropInputConfig(tf: Tf): TfKernelConfig {
  return {
    kernelName: "Conv2DBackpropInput",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const ops = new WasmOps(tf, backend as unknown as TfjsWasmBackend);
      return conv2dBackpropInput(ops, inputs.dy!, inputs.filter!, attrs as unknown as InputGradAttrs);
    },
  };
}
