/**
 * Train-mode BatchNorm as two fused kernels on the wasm heap, replacing the dozen full-size
 * passes (moments, Tile, Sum, Multiply, ...) that tfjs's composite batchNorm and its gradient
 * take. The forward kernel `KdBatchNormTrain` returns the output and the per-channel batch mean
 * and biased variance (what PyTorch normalises with); its registered gradient runs
 * `KdBatchNormTrainGrad`, the exact backward of normalising with batch statistics, including any
 * gradient that reaches the returned mean or variance. Channels are the last axis (NHWC).
 * Per-channel sums run in one JavaScript pass over the heap (float64 accumulators); the
 * per-element affine maps run as XNNPACK 1x1 depthwise convolutions, which are SIMD.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { BATCH_NORM_TRAIN } from "./wasm_batch_norm.ts";
 * const tf = await initTfjs("wasm"); // registers the kernels
 * const x = tf.tensor4d([1, 3, 5, 7], [4, 1, 1, 1]);
 * const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN,
 *   { x, scale: tf.ones([1]), offset: tf.zeros([1]) }, { varianceEpsilon: 0 }) as import("npm:@tensorflow/tfjs-core@4.22.0").Tensor[];
 * console.log(mean.dataSync()[0], variance.dataSync()[0], y.dataSync()[0].toFixed(4)); // 4 5 -1.3416
 * ```
 * @module
 */

import type { Tf, TfjsWasmBackend, TfKernelConfig, TfTensor, TfTensorInfo } from "../../deps.ts";
import { WasmOps } from "./wasm_ops.ts";

/** Forward kernel: inputs `{x, scale, offset}`, attr `varianceEpsilon`; outputs `[y, mean, variance]`. */
export const BATCH_NORM_TRAIN = "KdBatchNormTrain";
/** Backward kernel: inputs `{dy, dmean, dvariance, x, scale, mean, variance}`; outputs `[dx, dscale, doffset]`. */
export const BATCH_NORM_TRAIN_GRAD = "KdBatchNormTrainGrad";

interface BnAttrs {
  varianceEpsilon: number;
}

function channelsOf(x: TfTensorInfo, what: string): number {
  if (x.dtype !== "float32") throw new Error(`${what}: needs float32 input, got ${x.dtype}`);
  if (x.shape.length < 2) throw new Error(`${what}: needs rank >= 2 input, got [${x.shape}]`);
  return x.shape[x.shape.length - 1];
}

function checkVector(v: TfTensorInfo, c: number, name: string, what: string): void {
  if (v.dtype !== "float32" || v.shape.length !== 1 || v.shape[0] !== c) {
    throw new Error(`${what}: ${name} must be float32 [${c}], got ${v.dtype} [${v.shape}]`);
  }
}

/**
 * Batch mean and biased variance per channel of `x` viewed as `[rows, c]`, shifted by the first
 * row so that float64 sums do not cancel for channels far from zero.
 */
function moments(x: Float32Array, c: number, mean: Float64Array, variance: Float64Array): void {
  const rows = x.length / c;
  const s1 = new Float64Array(c), s2 = new Float64Array(c);
  for (let i = c; i < x.length; i += c) {
    for (let j = 0; j < c; j++) {
      const d = x[i + j] - x[j];
      s1[j] += d;
      s2[j] += d * d;
    }
  }
  for (let j = 0; j < c; j++) {
    const m = s1[j] / rows;
    mean[j] = x[j] + m;
    variance[j] = Math.max(s2[j] / rows - m * m, 0);
  }
}

function forward(
  ops: WasmOps,
  inputs: Record<string, TfTensorInfo | undefined>,
  attrs: BnAttrs,
): TfTensorInfo[] {
  const what = BATCH_NORM_TRAIN;
  const { x, scale, offset } = inputs as Record<string, TfTensorInfo>;
  const c = channelsOf(x, what);
  checkVector(scale, c, "scale", what);
  checkVector(offset, c, "offset", what);
  const xv = ops.f32(x), g = ops.f32(scale), b = ops.f32(offset);
  const mean = new Float64Array(c), variance = new Float64Array(c);
  if (xv.length > 0) moments(xv, c, mean, variance);
  const a = new Float32Array(c), d = new Float32Array(c);
  for (let j = 0; j < c; j++) {
    const k = g[j] / Math.sqrt(variance[j] + attrs.varianceEpsilon);
    a[j] = k;
    d[j] = b[j] - mean[j] * k;
  }
  const y = xv.length > 0 ? ops.channelAffine(x, a, d) : ops.output(x.shape);
  const meanOut = ops.output([c]), varOut = ops.output([c]);
  ops.f32(meanOut).set(mean);
  ops.f32(varOut).set(variance);
  return [y, meanOut, varOut];
}

function backward(
  ops: WasmOps,
  inputs: Record<string, TfTensorInfo | undefined>,
  attrs: BnAttrs,
): TfTensorInfo[] {
  const what = BATCH_NORM_TRAIN_GRAD;
  const { dy, dmean, dvariance, x, scale, mean, variance } = inputs as Record<string, TfTensorInfo>;
  const c = channelsOf(x, what);
  if (dy.shape.join() !== x.shape.join()) {
    throw new Error(`${what}: dy [${dy.shape}] differs from x [${x.shape}]`);
  }
  for (const [name, v] of Object.entries({ dmean, dvariance, scale, mean, variance })) {
    checkVector(v, c, name, what);
  }
  const xv = ops.f32(x), dyv = ops.f32(dy);
  const g = ops.f32(scale), m = ops.f32(mean), v = ops.f32(variance);
  const dm = ops.f32(dmean), dv = ops.f32(dvariance);
  const rows = xv.length / c;
  // One pass: sum(dy) and sum(dy * (x - mean)) per channel.
  const sdy = new Float64Array(c), sdyx = new Float64Array(c);
  for (let i = 0; i < xv.length; i += c) {
    for (let j = 0; j < c; j++) {
      const e = dyv[i + j];
      sdy[j] += e;
      sdyx[j] += e * (xv[i + j] - m[j]);
    }
  }
  // dx = k*(dy - sum(dy)/M - xhat*sum(dy*xhat)/M) + dmean/M + 2*dvar*(x - mean)/M, as a*dy + b*x + d.
  const a = new Float32Array(c), b = new Float32Array(c), d = new Float32Array(c);
  const dscale = ops.output([c]), doffset = ops.output([c]);
  const ds = ops.f32(dscale), db = ops.f32(doffset);
  for (let j = 0; j < c; j++) {
    const rstd = 1 / Math.sqrt(v[j] + attrs.varianceEpsilon);
    const k = g[j] * rstd;
    const dgamma = sdyx[j] * rstd;
    ds[j] = dgamma;
    db[j] = sdy[j];
    const bj = rows > 0 ? (-k * rstd * dgamma + 2 * dv[j]) / rows : 0;
    a[j] = k;
    b[j] = bj;
    d[j] = rows > 0 ? (-k * sdy[j] + dm[j]) / rows - bj * m[j] : 0;
  }
  if (rows === 0) return [ops.output(x.shape), dscale, doffset];
  const fromDy = ops.channelAffine(dy, a, d);
  const fromX = ops.channelAffine(x, b, null);
  const dx = ops.run("Add", { a: fromDy, b: fromX });
  ops.dispose(fromDy, fromX);
  return [dx, dscale, doffset];
}

/**
 * Kernel registration records (wasm) for the forward and backward kernels.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { batchNormTrainConfigs } from "./wasm_batch_norm.ts";
 * const tf = await initTfjs("cpu");
 * console.log(batchNormTrainConfigs(tf).map((k) => k.kernelName)); // ["KdBatchNormTrain", "KdBatchNormTrainGrad"]
 * ```
 */
export function batchNormTrainConfigs(tf: Tf): TfKernelConfig[] {
  const make = (name: string, f: typeof forward): TfKernelConfig => ({
    kernelName: name,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) =>
      f(new WasmOps(tf, backend as unknown as TfjsWasmBackend), inputs, attrs as unknown as BnAttrs),
  });
  return [make(BATCH_NORM_TRAIN, forward), make(BATCH_NORM_TRAIN_GRAD, backward)];
}

/**
 * Registers the gradient of {@link BATCH_NORM_TRAIN} (backend-independent: it runs
 * {@link BATCH_NORM_TRAIN_GRAD} on whichever backend holds the tensors). Idempotent.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { registerBatchNormTrainGradient, BATCH_NORM_TRAIN } from "./wasm_batch_norm.ts";
 * const tf = await loadTfjsCore();
 * registerBatchNormTrainGradient(tf);
 * console.log(tf.getGradient(BATCH_NORM_TRAIN)?.kernelName); // KdBatchNormTrain
 * ```
 */
export function registerBatchNormTrainGradient(tf: Tf): void {
  if (tf.getGradient(BATCH_NORM_TRAIN)) return;
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ["x", "scale"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [dy, dmean, dvariance] = dys as TfTensor[];
      const [x, scale, mean, variance] = saved;
      const [dx, dscale, doffset] = tf.engine().runKernel(
        BATCH_NORM_TRAIN_GRAD,
        { dy, dmean, dvariance, x, scale, mean, variance },
        attrs as never,
      ) as TfTensor[];
      return { x: () => dx, scale: () => dscale, offset: () => doffset };
    },
  });
}
