/**
 * Host tensors and state dicts: the framework-neutral currency between converters, engines,
 * checkpoints and exporters. Layouts are PyTorch's (conv weights OIHW, linear weights [out, in]).
 *
 * @example
 * ```ts
 * import { float32Tensor, numel } from "./tensor.ts";
 * const t = float32Tensor([2, 3]);
 * console.log(numel(t.shape), t.data.length); // 6 6
 * ```
 * @module
 */

/** Element types that appear in CIFAR checkpoints. */
export type DType = "float32" | "int64";

/** A dense host tensor in row-major order. `int64` data is kept as float64 numbers. */
export interface HostTensor {
  /** Element type as PyTorch saved it. */
  dtype: DType;
  /** Dimensions; `[]` is a scalar. */
  shape: number[];
  /** Row-major values. */
  data: Float32Array | Float64Array;
}

/** Named tensors in PyTorch state-dict order and naming (`layer1.0.conv1.weight`, ...). */
export type StateDict = Map<string, HostTensor>;

/**
 * Number of elements of a shape.
 *
 * @example
 * ```ts
 * import { numel } from "./tensor.ts";
 * console.log(numel([16, 3, 3, 3])); // 432
 * ```
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A zero-filled float32 tensor, or one wrapping `data`.
 *
 * @example
 * ```ts
 * import { float32Tensor } from "./tensor.ts";
 * console.log(float32Tensor([2], new Float32Array([1, 2])).data); // Float32Array [1, 2]
 * ```
 */
export function float32Tensor(shape: number[], data?: Float32Array): HostTensor {
  const n = numel(shape);
  if (data && data.length !== n) {
    throw new Error(`tensor data has ${data.length} values, shape [${shape}] needs ${n}`);
  }
  return { dtype: "float32", shape: [...shape], data: data ?? new Float32Array(n) };
}

/**
 * A scalar int64 tensor (PyTorch's `num_batches_tracked`), held as a float64 value.
 *
 * @example
 * ```ts
 * import { int64Scalar } from "./tensor.ts";
 * console.log(int64Scalar(3)); // { dtype: "int64", shape: [], data: Float64Array [3] }
 * ```
 */
export function int64Scalar(value: number): HostTensor {
  return { dtype: "int64", shape: [], data: new Float64Array([value]) };
}

/**
 * A deep copy of a state dict (new arrays), so callers can mutate freely.
 *
 * @example
 * ```ts
 * import { cloneStateDict, float32Tensor } from "./tensor.ts";
 * const a = new Map([["w", float32Tensor([1])]]);
 * const b = cloneStateDict(a);
 * b.get("w")!.data[0] = 5;
 * console.log(a.get("w")!.data[0]); // 0
 * ```
 */
export function cloneStateDict(sd: StateDict): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of sd) {
    out.set(k, { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() });
  }
  return out;
}

/**
 * Largest absolute difference between two arrays of equal length.
 *
 * @example
 * ```ts
 * import { maxAbsDiff } from "./tensor.ts";
 * console.log(maxAbsDiff([1, 2], [1, 2.5])); // 0.5
 * ```
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
