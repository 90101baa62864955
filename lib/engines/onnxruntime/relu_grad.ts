/**
 * The ReLU backward pass as ONNX: `dy * (y > 0)` with `y` the ReLU's output (PyTorch's
 * threshold_backward). Formed as Mul by the float mask: onnxruntime's Where is a slower pass
 * over the same data (1.04 vs 0.80 ms for a 64x16x32x32 tensor on 2 cores).
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { reluGrad } from "./relu_grad.ts";
 * const b = new OnnxBuilder("rg");
 * b.output(reluGrad(b, b.input("y", "float32", [2]), b.input("dy", "float32", [2])), "dx");
 * console.log(b.nodeCount); // 4
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";

/**
 * dL/dx of `y = relu(x)` given `dy` and the output `y`.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { reluGrad } from "./relu_grad.ts";
 * const b = new OnnxBuilder("rg");
 * console.log(typeof reluGrad(b, b.input("y", "float32", [1]), b.input("dy", "float32", [1]))); // string
 * ```
 */
export function reluGrad(b: OnnxBuilder, y: string, dy: string): string {
  const mask = b.op("Cast", [b.op("Greater", [y, b.scalar(0)])], { to: 1 });
  return b.op("Mul", [dy, mask]);
}
