/**
 * BatchNorm folding for the converter and exporter: the package's one implementation lives in
 * `lib/models/batchnorm_fold.ts` (the onnxruntime engine folds through it too); this module
 * re-exports what the exporter uses under its historical path.
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

export { foldableBatchNorms, foldBatchNorm } from "../lib/models/batchnorm_fold.ts";
