/**
 * The pending gradients of a reverse-mode pass over a graph of named values, shared by the
 * frozen (input-gradient) and training-step compilers in both layouts.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { gradAccumulator } from "./grad_accumulator.ts";
 * const b = new OnnxBuilder("example");
 * const grads = gradAccumulator(b, "logits", "d_logits");
 * grads.push("h", "g1");
 * grads.push("h", "g2");
 * console.log(grads.take("logits"), grads.take("h") !== null, grads.take("h")); // d_logits true null
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";

/** Gradients waiting for the op that produced their value. */
export interface GradAccumulator {
  /** Adds gradient `g` of `value` (dropped when `value` is the skipped one). */
  push(value: string, g: string): void;
  /** Removes `value`'s gradients and returns them summed (one `Sum` node for several), or null. */
  take(value: string): string | null;
}

/**
 * Starts a backward pass at `output` with gradient `dOutput`; gradients pushed for `skip` (the
 * image, when no input gradient is wanted) are dropped.
 */
export function gradAccumulator(
  b: OnnxBuilder,
  output: string,
  dOutput: string,
  skip?: string,
): GradAccumulator {
  const pending = new Map<string, string[]>([[output, [dOutput]]]);
  return {
    push(value, g) {
      if (value === skip) return;
      const list = pending.get(value);
      if (list) list.push(g);
      else pending.set(value, [g]);
    },
    take(value) {
      const list = pending.get(value);
      pending.delete(value);
      if (!list) return null;
      return list.length === 1 ? list[0] : b.op("Sum", list);
    },
  };
}
