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
 * grads.pushDeferred("x", "phases", "p1", (g) => `plain(${g})`);
 * console.log(grads.takeDeferred("x", "phases"), grads.takeDeferred("x", "phases")); // p1 null
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";

/** Gradients waiting for the op that produced their value. */
export interface GradAccumulator {
  /** Adds gradient `g` of `value` (dropped when `value` is the skipped one). */
  push(value: string, g: string): void;
  /**
   * Removes `value`'s gradients and returns them summed (one `Sum` node for several), or null;
   * a gradient held in another form ({@link pushDeferred}) is made plain first.
   */
  take(value: string): string | null;
  /**
   * Holds gradient `g` of `value` in another form `form` (e.g. the phases of a strided
   * convolution's input gradient) until {@link take} makes it plain with `plain`; one per value
   * and form, so a later gradient of the same form takes it ({@link takeDeferred}) and adds to it.
   */
  pushDeferred(value: string, form: string, g: string, plain: (g: string) => string): void;
  /** Removes and returns `value`'s gradient held in form `form`, or null. */
  takeDeferred(value: string, form: string): string | null;
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
  const deferred = new Map<string, Map<string, { g: string; plain: (g: string) => string }>>();
  const push = (value: string, g: string) => {
    if (value === skip) return;
    const list = pending.get(value);
    if (list) list.push(g);
    else pending.set(value, [g]);
  };
  return {
    push,
    take(value) {
      for (const { g, plain } of deferred.get(value)?.values() ?? []) push(value, plain(g));
      deferred.delete(value);
      const list = pending.get(value);
      pending.delete(value);
      if (!list) return null;
      return list.length === 1 ? list[0] : b.op("Sum", list);
    },
    pushDeferred(value, form, g, plain) {
      if (value === skip) return;
      const forms = deferred.get(value) ?? new Map();
      if (forms.has(form)) throw new Error(`a gradient of ${value} in form ${form} is already pending`);
      forms.set(form, { g, plain });
      deferred.set(value, forms);
    },
    takeDeferred(value, form) {
      const entry = deferred.get(value)?.get(form);
      if (!entry) return null;
      deferred.get(value)!.delete(form);
      return entry.g;
    },
  };
}
