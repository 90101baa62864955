/**
 * Host-side layout conversions between PyTorch's parameter layouts and tfjs's
 * (conv OIHW <-> HWIO, linear [out, in] <-> [in, out]).
 *
 * @example
 * ```ts
 * import { toTfjsLayout, fromTfjsLayout } from "./layout.ts";
 * const w = { dtype: "float32" as const, shape: [2, 1, 1, 1], data: new Float32Array([1, 2]) };
 * const t = toTfjsLayout("conv", w);
 * console.log(t.shape, fromTfjsLayout("conv", t.data, w.shape).data); // [1, 1, 1, 2] Float32Array [1, 2]
 * ```
 * @module
 */

import type { HostTensor } from "../../tensor.ts";

/** Which layout rule applies to a parameter. */
export type ParamRole = "conv" | "linear" | "vector";

/** A float32 array plus the tfjs shape it has in that layout. */
export interface TfjsArray {
  /** Shape in tfjs layout. */
  shape: number[];
  /** Values in tfjs layout. */
  data: Float32Array;
}

/**
 * Converts a PyTorch-layout tensor to the tfjs layout for `role`.
 *
 * @example
 * ```ts
 * import { toTfjsLayout } from "./layout.ts";
 * const w = { dtype: "float32" as const, shape: [3, 2], data: new Float32Array(6) };
 * console.log(toTfjsLayout("linear", w).shape); // [2, 3]
 * ```
 */
export function toTfjsLayout(role: ParamRole, t: HostTensor): TfjsArray {
  const src = Float32Array.from(t.data);
  if (role === "conv") {
    const [o, i, h, w] = t.shape;
    const dst = new Float32Array(src.length);
    for (let a = 0; a < o; a++) {
      for (let b = 0; b < i; b++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) dst[((y * w + x) * i + b) * o + a] = src[((a * i + b) * h + y) * w + x];
        }
      }
    }
    return { shape: [h, w, i, o], data: dst };
  }
  if (role === "linear") {
    const [o, i] = t.shape;
    return { shape: [i, o], data: transpose2d(src, o, i) };
  }
  return { shape: [...t.shape], data: src };
}

/**
 * Converts tfjs-layout values back to a PyTorch-layout tensor of `torchShape`.
 *
 * @example
 * ```ts
 * import { fromTfjsLayout } from "./layout.ts";
 * console.log(fromTfjsLayout("linear", new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]).data);
 * // Float32Array [1, 3, 5, 2, 4, 6]
 * ```
 */
export function fromTfjsLayout(role: ParamRole, data: Float32Array, torchShape: number[]): HostTensor {
  if (role === "conv") {
    const [o, i, h, w] = torchShape;
    const dst = new Float32Array(data.length);
    for (let a = 0; a < o; a++) {
      for (let b = 0; b < i; b++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            dst[((a * i + b) * h + y) * w + x] = data[((y * w + x) * i + b) * o + a];
          }
        }
      }
    }
    return { dtype: "float32", shape: [...torchShape], data: dst };
  }
  if (role === "linear") {
    const [o, i] = torchShape;
    return { dtype: "float32", shape: [...torchShape], data: transpose2d(data, i, o) };
  }
  return { dtype: "float32", shape: [...torchShape], data: Float32Array.from(data) };
}

/**
 * Transposes a row-major [rows, cols] matrix.
 *
 * @example
 * ```ts
 * import { transpose2d } from "./layout.ts";
 * console.log(transpose2d(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3)); // Float32Array [1, 4, 2, 5, 3, 6]
 * ```
 */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  return dst;
}
