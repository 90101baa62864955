/**
 * Eval-mode BatchNorm (tfjs `FusedBatchNorm`) on the wasm backend as one SIMD pass, and a
 * one-pass input gradient for it. The stock wasm kernel is a scalar loop, and tfjs's gradient
 * tiles `1/sqrt(var + eps)` to the full activation shape before two multiplies, which made the
 * teacher's input gradient (the oracle) spend most of its time in Tile. With the usual `[C]`
 * statistics both become `x * a[c] + b[c]` maps (XNNPACK 1x1 depthwise convolutions); any other
 * parameter shape runs the stock kernel and gradient unchanged.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import type { TfTensor } from "../../deps.ts";
 * const tf = await initTfjs("wasm"); // registers the kernel and gradient
 * const f = (v: TfTensor) =>
 *   tf.batchNorm(v, tf.tensor1d([0, 1]), tf.tensor1d([4, 1]), tf.tensor1d([0, 0]), tf.tensor1d([2, 3]), 0);
 * const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 1, 2]);
 * console.log(Array.from(f(x).dataSync()), Array.from(tf.grad(f)(x).dataSync())); // [1, 3, 3, 9] [1, 3, 1, 3]
 * ```
 * @module
 */

import type { Tf, TfjsWasmBackend, TfKernelConfig, TfTensor, TfTensorInfo } from "../../deps.ts";
import { WasmOps } from "./wasm_ops.ts";

/** Input-gradient kernel: inputs `{dy, variance, scale?}`, attr `varianceEpsilon`; `dy * scale / sqrt(var + eps)`. */
export const BATCH_NORM_EVAL_GRAD = "KdBatchNormEvalGrad";

interface BnAttrs {
  varianceEpsilon: number;
}

/** Whether `v` is absent or a float32 `[c]` vector. */
function isChannelVector(v: TfTensorInfo | undefined, c: number): boolean {
  return v == null || (v.dtype === "float32" && v.shape.length === 1 && v.shape[0] === c);
}

/** The fast path applies: float32 input, every parameter a `[C]` vector over the last axis. */
function fastPathApplies(x: TfTensorInfo, params: (TfTensorInfo | undefined)[]): boolean {
  const c = x.shape[x.shape.length - 1];
  return x.dtype === "float32" && x.shape.length >= 1 && c > 0 && params.every((p) => isChannelVector(p, c));
}

/**
 * Kernel registration records: `FusedBatchNorm` (delegating to `stock` outside the fast path)
 * and {@link BATCH_NORM_EVAL_GRAD}.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { batchNormEvalConfigs } from "./wasm_batch_norm_eval.ts";
 * const tf = await initTfjs("cpu");
 * console.log(batchNormEvalConfigs(tf, undefined).map((k) => k.kernelName)); // ["FusedBatchNorm", "KdBatchNormEvalGrad"]
 * ```
 */
export function batchNormEvalConfigs(tf: Tf, stock: TfKernelConfig | undefined): TfKernelConfig[] {
  const forward: TfKernelConfig = {
    kernelName: "FusedBatchNorm",
    backendName: "wasm",
    // The stock kernel's setup (its wasm bindings) must still run for the delegated cases.
    setupFunc: stock?.setupFunc,
    kernelFunc: (args) => {
      const { x, mean, variance, offset, scale } = args.inputs as Record<string, TfTensorInfo>;
      if (!fastPathApplies(x, [mean, variance, offset, scale])) {
        if (!stock) throw new Error(`FusedBatchNorm: no wasm kernel for parameter shapes [${mean.shape}]`);
        return stock.kernelFunc(args);
      }
      const ops = new WasmOps(tf, args.backend as unknown as TfjsWasmBackend);
      const eps = (args.attrs as unknown as BnAttrs).varianceEpsilon;
      const m = ops.f32(mean), v = ops.f32(variance);
      const g = scale ? ops.f32(scale) : null, b = offset ? ops.f32(offset) : null;
      const a = new Float32Array(m.length), d = new Float32Array(m.length);
      for (let j = 0; j < m.length; j++) {
        a[j] = (g ? g[j] : 1) / Math.sqrt(v[j] + eps);
        d[j] = (b ? b[j] : 0) - m[j] * a[j];
      }
      return ops.channelAffine(x, a, d);
    },
  };
  const grad: TfKernelConfig = {
    kernelName: BATCH_NORM_EVAL_GRAD,
    backendName: "wasm",
    kernelFunc: (args) => {
      const { dy, variance, scale } = args.inputs as Record<string, TfTensorInfo>;
      if (!fastPathApplies(dy, [variance, scale])) {
        throw new Error(
          `${BATCH_NORM_EVAL_GRAD}: needs float32 dy and [C] variance/scale, got [${variance.shape}]`,
        );
      }
      const ops = new WasmOps(tf, args.backend as unknown as TfjsWasmBackend);
      const eps = (args.attrs as unknown as BnAttrs).varianceEpsilon;
      const v = ops.f32(variance), g = scale ? ops.f32(scale) : null;
      const a = new Float32Array(v.length);
      for (let j = 0; j < v.length; j++) a[j] = (g ? g[j] : 1) / Math.sqrt(v[j] + eps);
      return ops.channelAffine(dy, a, null);
    },
  };
  return [forward, grad];
}

let gradientInstalled = false;

/**
 * Routes the input gradient of `FusedBatchNorm` to {@link BATCH_NORM_EVAL_GRAD} where the
 * active backend has it and the parameters are `[C]` vectors; everything else (other
 * backends, the parameters' own gradients) keeps tfjs's gradient. Idempotent.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { registerBatchNormEvalGradient } from "./wasm_batch_norm_eval.ts";
 * const tf = await loadTfjsCore();
 * registerBatchNormEvalGradient(tf);
 * console.log(tf.getGradient("FusedBatchNorm")?.inputsToSave); // ["x", "mean", "variance", "scale"]
 * ```
 */
export function registerBatchNormEvalGradient(tf: Tf): void {
  if (gradientInstalled) return;
  const original = tf.getGradient("FusedBatchNorm");
  if (!original) throw new Error("tfjs has no gradient registered for FusedBatchNorm");
  gradientInstalled = true;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved;
      const fast = tf.getKernel(BATCH_NORM_EVAL_GRAD, tf.getBackend()) &&
        fastPathApplies(dy as TfTensor, [mean, variance, scale]) &&
        x.shape.join() === (dy as TfTensor).shape.join();
      if (!fast) return original.gradFunc(dy, saved, attrs);
      // tfjs's gradFunc computes full-size intermediates eagerly: call it only if asked for
      // the parameters' gradients (each thunk runs in its own tidy, so no sharing).
      const other = (name: string) => () => original.gradFunc(dy, saved, attrs)[name]();
      const inputs: Record<string, TfTensor> = { dy: dy as TfTensor, variance };
      if (scale) inputs.scale = scale;
      return {
        x: () => tf.engine().runKernel(BATCH_NORM_EVAL_GRAD, inputs, attrs as never) as TfTensor,
        mean: other("mean"),
        variance: other("variance"),
        scale: other("scale"),
        offset: other("offset"),
      };
    },
  });
}
