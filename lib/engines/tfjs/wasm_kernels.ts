/**
 * The project's training kernels for the tfjs `wasm` backend. The stock backend has no
 * `Conv2DBackpropFilter` and only naive loops for `Conv2DBackpropInput` and `BatchMatMul`; the
 * replacements run on the backend's own XNNPACK convolution. BatchNorm gets fused train-mode
 * kernels (used by network.ts) and a SIMD eval-mode kernel with a one-pass input gradient, and
 * `Identity` shares buffers instead of copying. Each kernel lives in its own wasm_*.ts module;
 * this one registers them all (and the gradients that route to them).
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from "./wasm_kernels.ts";
 * const tf = await loadTfjsCore();
 * registerWasmTrainingKernels(tf);
 * console.log(WASM_TRAINING_KERNELS.every((k) => tf.getKernel(k, "wasm") !== undefined)); // true
 * ```
 * @module
 */
import type { Tf, TfKernelConfig } from "../../deps.ts";
import { batchMatMulConfig } from "./wasm_batch_matmul.ts";
import { batchNormTrainConfigs, registerBatchNormTrainGradient } from "./wasm_batch_norm.ts";
import { conv2dBackpropFilterConfig } from "./wasm_conv_backprop_filter.ts";
import { conv2dBackpropInputConfig } from "./wasm_conv_backprop_input.ts";
import { batchNormEvalConfigs, registerBatchNormEvalGradient } from "./wasm_batch_norm_eval.ts";
import { identityConfig } from "./wasm_identity.ts";

/** Names of the kernels this module registers for `wasm`. */
export const WASM_TRAINING_KERNELS = [
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "BatchMatMul",
  "KdBatchNormTrain",
  "KdBatchNormTrainGrad",
  "FusedBatchNorm",
  "KdBatchNormEvalGrad",
  "Identity",
] as const;

const stock = new Map<string, TfKernelConfig>();
const ours = new WeakSet<object>();

/**
 * The wasm backend's own kernel that {@link registerWasmTrainingKernels} replaced, if any (for
 * benchmarks that compare against it).
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { stockWasmKernel } from "./wasm_kernels.ts";
 * await initTfjs("wasm");
 * console.log(stockWasmKernel("BatchMatMul") !== undefined); // true
 * ```
 */
export function stockWasmKernel(name: string): TfKernelConfig | undefined {
  return stock.get(name);
}

/**
 * Registers the project's training kernels on the `wasm` backend, replacing stock ones of the
 * same name. Idempotent; call it before the backend initialises.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
 * const tf = await loadTfjsCore();
 * registerWasmTrainingKernels(tf);
 * registerWasmTrainingKernels(tf); // no warning, same result
 * console.log(tf.getKernel("Conv2DBackpropFilter", "wasm")?.backendName); // wasm
 * ```
 */
export function registerWasmTrainingKernels(tf: Tf): void {
  // Remember the stock kernels first: some replacements delegate to them.
  for (const name of WASM_TRAINING_KERNELS) {
    const current = tf.getKernel(name, "wasm");
    if (current && !stock.has(name) && !ours.has(current.kernelFunc)) stock.set(name, current);
  }
  const configs: TfKernelConfig[] = [
    conv2dBackpropFilterConfig(tf),
    conv2dBackpropInputConfig(tf),
    batchMatMulConfig(tf),
    ...batchNormTrainConfigs(tf),
    ...batchNormEvalConfigs(tf, stock.get("FusedBatchNorm")),
    identityConfig(),
  ];
  for (const config of configs) {
    // registerKernel warns on a duplicate: replace explicitly instead.
    if (tf.getKernel(config.kernelName, "wasm")) tf.unregisterKernel(config.kernelName, "wasm");
    ours.add(config.kernelFunc);
    tf.registerKernel(config);
  }
  registerBatchNormTrainGradient(tf);
  registerBatchNormEvalGradient(tf);
}
