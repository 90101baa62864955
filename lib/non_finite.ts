/**
 * Finds NaN and ±Inf values in a model's tensors, so a model with bad numbers is refused (or
 * clearly flagged) where it enters: when a checkpoint or ONNX file is read, before a conversion
 * writes one, and before metrics are computed from outputs.
 *
 * @example
 * ```ts
 * import { describeNonFinite, findNonFinite } from "./non_finite.ts";
 * const bad = findNonFinite([["fc.weight", { data: new Float32Array([1, NaN, Infinity]) }]]);
 * console.log(describeNonFinite(bad)); // fc.weight (1 NaN, 1 +Inf of 3 values)
 * ```
 * @module
 */

/** The non-finite values of one tensor. */
export interface NonFiniteTensor {
  /** Tensor (or output) name. */
  name: string;
  /** NaN values. */
  nan: number;
  /** +Inf values. */
  posInf: number;
  /** -Inf values. */
  negInf: number;
  /** All values of the tensor. */
  count: number;
}

/**
 * Counts NaN/±Inf in `data`, or returns undefined when every value is finite.
 *
 * @example
 * ```ts
 * import { countNonFinite } from "./non_finite.ts";
 * console.log(countNonFinite("x", new Float32Array([1, -Infinity]))?.negInf); // 1
 * ```
 */
export function countNonFinite(name: string, data: ArrayLike<number>): NonFiniteTensor | undefined {
  let nan = 0, posInf = 0, negInf = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v === 0) continue; // finite (NaN - NaN and Inf - Inf are NaN)
    if (v !== v) nan++;
    else if (v > 0) posInf++;
    else negInf++;
  }
  return nan + posInf + negInf === 0 ? undefined : { name, nan, posInf, negInf, count: data.length };
}

/**
 * Every tensor of `tensors` (name, tensor pairs or a Map) that holds a NaN or an infinity.
 *
 * @example
 * ```ts
 * import { findNonFinite } from "./non_finite.ts";
 * const sd = new Map([["a", { data: new Float32Array([0]) }], ["b", { data: new Float32Array([NaN]) }]]);
 * console.log(findNonFinite(sd).map((t) => t.name)); // [ "b" ]
 * ```
 */
export function findNonFinite(
  tensors: Iterable<readonly [string, { readonly data: ArrayLike<number> }]>,
): NonFiniteTensor[] {
  const out: NonFiniteTensor[] = [];
  for (const [name, t] of tensors) {
    const bad = countNonFinite(name, t.data);
    if (bad) out.push(bad);
  }
  return out;
}

/**
 * One line: the first `max` offending tensors with their counts, and how many more there are.
 *
 * @example
 * ```ts
 * import { describeNonFinite } from "./non_finite.ts";
 * console.log(describeNonFinite([{ name: "w", nan: 2, posInf: 0, negInf: 0, count: 9 }])); // w (2 NaN of 9 values)
 * ```
 */
export function describeNonFinite(list: readonly NonFiniteTensor[], max = 3): string {
  const one = (t: NonFiniteTensor) => {
    const parts = [
      t.nan ? `${t.nan} NaN` : "",
      t.posInf ? `${t.posInf} +Inf` : "",
      t.negInf ? `${t.negInf} -Inf` : "",
    ].filter((s) => s);
    return `${t.name} (${parts.join(", ")} of ${t.count} values)`;
  };
  const shown = list.slice(0, max).map(one).join(", ");
  return list.length > max ? `${shown} and ${list.length - max} more` : shown;
}

/** How a model reader treats weights holding NaN or ±Inf. */
export interface NonFinitePolicy {
  /** Accept them (the reader lists them) instead of refusing the file. */
  allowNonFinite?: boolean;
  /** Appended to the refusal: how the caller's user accepts such a file anyway (e.g. a flag). */
  nonFiniteHint?: string;
}

/**
 * The problem a reader reports when it refuses non-finite weights (`hint` from
 * {@link NonFinitePolicy.nonFiniteHint}, if any, at the end).
 *
 * @example
 * ```ts
 * import { nonFiniteRefusal } from "./non_finite.ts";
 * const bad = [{ name: "w", nan: 1, posInf: 0, negInf: 0, count: 4 }];
 * console.log(nonFiniteRefusal(bad, "pass --allow-non-finite"));
 * // non-finite weights: w (1 NaN of 4 values); a model with NaN/Inf weights is refused; pass --allow-non-finite
 * ```
 */
export function nonFiniteRefusal(list: readonly NonFiniteTensor[], hint?: string): string {
  const problem = `non-finite weights: ${describeNonFinite(list)}; a model with NaN/Inf weights is refused`;
  return hint ? `${problem}; ${hint}` : problem;
}
