/**
 * Reads a tensor out of its raw storage bytes: any storage offset and strides (views,
 * transposes, broadcasts, shared storages), bounds-checked against the storage, and converts
 * the element type to what {@link HostTensor} holds (float16 / bfloat16 / float64 → float32;
 * int64 stays int64).
 *
 * @example
 * ```ts
 * import { TorchStorageRef, TorchTensorRef } from "./torch_pickle.ts";
 * import { toHostTensor } from "./tensor_view.ts";
 * const bytes = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
 * const storage = new TorchStorageRef("0", "torch.FloatStorage", "float32", "cpu", 6);
 * // The transpose of a 2x3 matrix: shape [3, 2], strides [1, 3].
 * const t = toHostTensor(new TorchTensorRef(storage, "float32", 0, [3, 2], [1, 3]), bytes);
 * console.log(t.data); // Float32Array(6) [ 1, 4, 2, 5, 3, 6 ]
 * ```
 * @module
 */

import type { HostTensor } from "../lib/tensor.ts";
import { halfToNumber } from "./pickle.ts";
import { DTYPE_SIZE, type TorchDType, type TorchTensorRef } from "./torch_pickle.ts";

/**
 * The tensor's values as float64 numbers in row-major order, whatever its dtype (booleans are
 * 0/1). `bigEndian` is for archives whose `byteorder` entry says "big".
 *
 * @example
 * ```ts
 * import { TorchStorageRef, TorchTensorRef } from "./torch_pickle.ts";
 * import { tensorValues } from "./tensor_view.ts";
 * const bytes = new Uint8Array(new BigInt64Array([7n, 8n]).buffer);
 * const s = new TorchStorageRef("1", "torch.LongStorage", "int64", "cpu", 2);
 * console.log(tensorValues(new TorchTensorRef(s, "int64", 1, [], []), bytes)); // Float64Array(1) [ 8 ]
 * ```
 */
export function tensorValues(ref: TorchTensorRef, bytes: Uint8Array, bigEndian = false): Float64Array {
  checkBounds(ref, bytes);
  const out = new Float64Array(ref.numel);
  const read = elementReader(ref, bytes, bigEndian);
  forEachOffset(ref, bytes, (i, off) => (out[i] = read(off)));
  return out;
}

/**
 * The tensor as a {@link HostTensor}: floating types become float32, int64 stays int64; other
 * integer and bool tensors have no HostTensor form and are refused.
 *
 * @example
 * ```ts
 * import { TorchStorageRef, TorchTensorRef } from "./torch_pickle.ts";
 * import { toHostTensor } from "./tensor_view.ts";
 * const bytes = new Uint8Array(new Float64Array([0.5, 1.5]).buffer);
 * const s = new TorchStorageRef("0", "torch.DoubleStorage", "float64", "cpu", 2);
 * const t = toHostTensor(new TorchTensorRef(s, "float64", 0, [2], [1]), bytes);
 * console.log(t.dtype, t.data); // float32 Float32Array(2) [ 0.5, 1.5 ]
 * ```
 */
export function toHostTensor(ref: TorchTensorRef, bytes: Uint8Array, bigEndian = false): HostTensor {
  const dtype = checkedDType(ref);
  const shape = [...ref.shape];
  if (dtype === "int64") return { dtype: "int64", shape, data: tensorValues(ref, bytes, bigEndian) };
  if (dtype !== "float32" && dtype !== "float64" && dtype !== "float16" && dtype !== "bfloat16") {
    throw new Error(`has dtype ${dtype}; only floating-point and int64 tensors can be loaded`);
  }
  const n = ref.numel;
  checkBounds(ref, bytes);
  if (dtype === "float32" && !bigEndian && isContiguous(ref)) {
    // One copy of the bytes: a fresh, aligned buffer the caller owns.
    const start = ref.offset * 4;
    const copy = bytes.slice(start, start + n * 4);
    return { dtype: "float32", shape, data: new Float32Array(copy.buffer, 0, n) };
  }
  const out = new Float32Array(n);
  const read = elementReader(ref, bytes, bigEndian);
  forEachOffset(ref, bytes, (i, off) => (out[i] = read(off)));
  return { dtype: "float32", shape, data: out };
}

function checkedDType(ref: TorchTensorRef): TorchDType {
  if (!ref.dtype) throw new Error(`has storage type ${ref.storage.typeName}, which cannot be loaded`);
  return ref.dtype;
}

/** Whether the view is row-major dense (dimensions of size 1 may have any stride). */
function isContiguous(ref: TorchTensorRef): boolean {
  let expected = 1;
  for (let d = ref.shape.length - 1; d >= 0; d--) {
    if (ref.shape[d] !== 1 && ref.stride[d] !== expected) return false;
    expected *= ref.shape[d];
  }
  return true;
}

/** More elements than any CIFAR model tensor by far; guards allocations against crafted shapes. */
const MAX_ELEMENTS = 2 ** 30;

function checkBounds(ref: TorchTensorRef, bytes: Uint8Array): void {
  if (ref.numel > MAX_ELEMENTS) {
    throw new Error(`has ${ref.numel} elements, more than ${MAX_ELEMENTS} are refused`);
  }
  if (ref.numel === 0) return;
  const size = DTYPE_SIZE[checkedDType(ref)];
  let last = ref.offset;
  for (let d = 0; d < ref.shape.length; d++) last += (ref.shape[d] - 1) * ref.stride[d];
  const available = Math.floor(bytes.length / size);
  if (last >= available) {
    throw new Error(
      `reads element ${last} of storage ${ref.storage.key}, which holds ${available} ` +
        `${ref.dtype} elements (damaged file)`,
    );
  }
}

/** Calls `f(i, byteOffset)` for every element i in row-major order. */
function forEachOffset(ref: TorchTensorRef, bytes: Uint8Array, f: (i: number, off: number) => void): void {
  checkBounds(ref, bytes);
  const n = ref.numel;
  if (n === 0) return;
  const size = DTYPE_SIZE[checkedDType(ref)];
  const rank = ref.shape.length;
  const index = new Array<number>(rank).fill(0);
  let elem = ref.offset;
  for (let i = 0; i < n; i++) {
    f(i, elem * size);
    // Odometer increment over the multi-index, keeping the element offset in step.
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d] < ref.shape[d]) {
        elem += ref.stride[d];
        break;
      }
      elem -= (ref.shape[d] - 1) * ref.stride[d];
      index[d] = 0;
    }
  }
}

function elementReader(ref: TorchTensorRef, bytes: Uint8Array, bigEndian: boolean): (off: number) => number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = !bigEndian;
  switch (checkedDType(ref)) {
    case "float32":
      return (o) => v.getFloat32(o, le);
    case "float64":
      return (o) => v.getFloat64(o, le);
    case "float16":
      return (o) => halfToNumber(v.getUint16(o, le));
    case "bfloat16": {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      return (o) => {
        u[0] = v.getUint16(o, le) << 16;
        return f[0];
      };
    }
    case "int64":
      return (o) => Number(v.getBigInt64(o, le));
    case "int32":
      return (o) => v.getInt32(o, le);
    case "int16":
      return (o) => v.getInt16(o, le);
    case "int8":
      return (o) => v.getInt8(o);
    case "uint8":
      return (o) => v.getUint8(o);
    case "bool":
      return (o) => (v.getUint8(o) ? 1 : 0);
  }
}
