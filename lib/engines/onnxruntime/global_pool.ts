/**
 * Global average pooling ([n, c, h, w] -> [n, c] rows) and its gradient, in plain NCHW and in
 * the blocked NCHWc layout: the ops both the frozen-graph compiler (frozen_layout.ts,
 * frozen_nchwc.ts) and the training-step compilers (train_graph.ts, train_nchwc.ts) emit.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { poolGradNchw, poolNchw } from "./global_pool.ts";
 * const b = new OnnxBuilder("pool");
 * b.output(poolNchw(b, b.input("x", "float32", [2, 4, 8, 8])), "y");
 * b.output(poolGradNchw(b, 2, b.input("dy", "float32", [2, 4]), [4, 8, 8]), "dx");
 * console.log(b.nodeCount); // 7
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";
import { NCHWC_DOMAIN } from "./nchwc.ts";

/**
 * Global average pooling of a plain NCHW tensor to rows [n, c].
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { poolNchw } from "./global_pool.ts";
 * const b = new OnnxBuilder("pool");
 * b.output(poolNchw(b, b.input("x", "float32", [2, 4, 8, 8])), "y");
 * console.log(b.nodeCount); // 3
 * ```
 */
export function poolNchw(b: OnnxBuilder, x: string): string {
  const pooled = b.op("GlobalAveragePool", [x]);
  return b.op("Flatten", [pooled], { axis: 1 });
}

/**
 * The gradient of {@link poolNchw}: rows `dy` [n, c] spread evenly over a plain [n, c, h, w].
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { poolGradNchw } from "./global_pool.ts";
 * const b = new OnnxBuilder("pool");
 * b.output(poolGradNchw(b, 2, b.input("dy", "float32", [2, 4]), [4, 8, 8]), "dx");
 * console.log(b.nodeCount); // 4
 * ```
 */
export function poolGradNchw(b: OnnxBuilder, n: number, dy: string, [c, h, w]: readonly number[]): string {
  const spread = b.op("Mul", [b.op("Reshape", [dy, b.int64s([n, c, 1, 1])]), b.scalar(1 / (h * w))]);
  return b.op("Expand", [spread, b.int64s([n, c, h, w])]);
}

/**
 * Global average pooling of a blocked NCHWc tensor with `c` channels to rows [n, c].
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { poolNchwc } from "./global_pool.ts";
 * const b = new OnnxBuilder("pool");
 * b.output(poolNchwc(b, 2, b.input("x", "float32", [2, 16, 8, 8]), 16), "y");
 * console.log(b.nodeCount); // 3
 * ```
 */
export function poolNchwc(b: OnnxBuilder, n: number, x: string, c: number): string {
  const pooled = b.op("GlobalAveragePool", [x], {}, NCHWC_DOMAIN);
  return b.op("Reshape", [pooled, b.int64s([n, c])]);
}

/**
 * The gradient of {@link poolNchwc}: rows `dy` [n, c] spread evenly over a blocked [n, c, h, w]
 * with channel blocks of `block`.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { poolGradNchwc } from "./global_pool.ts";
 * const b = new OnnxBuilder("pool");
 * b.output(poolGradNchwc(b, 2, 16, b.input("dy", "float32", [2, 32]), [32, 8, 8]), "dx");
 * console.log(b.nodeCount); // 5
 * ```
 */
export function poolGradNchwc(
  b: OnnxBuilder,
  n: number,
  block: number,
  dy: string,
  [c, h, w]: readonly number[],
): string {
  const cb = c / block;
  const spread = b.op("Mul", [b.op("Reshape", [dy, b.int64s([n, cb, 1, block])]), b.scalar(1 / (h * w))]);
  const full = b.op("Expand", [spread, b.int64s([n, cb, h * w, block])]);
  return b.op("Reshape", [full, b.int64s([n, c, h, w])]);
}
