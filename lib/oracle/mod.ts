/**
 * The oracle input x*, in one place: its settings and their one validation, the gamma-0 rule
 * (`options.ts`), the reference formula on host arrays (`reference.ts`), the relevance rules as
 * data (`rules.ts`) and the response providers with the one call that produces x*
 * (`providers.ts`). Engines implement the computation behind `FrozenModel.oracle`.
 *
 * @example
 * ```ts
 * import { reinforceInput, validateOracleOptions } from "./mod.ts";
 * validateOracleOptions({ gamma: 0.5, recNum: 1, reduction: "mean" });
 * console.log(reinforceInput(new Float32Array([2]), new Float32Array([1]), 0.5)); // Float32Array(1) [ 1 ]
 * ```
 * @module
 */

export * from "./options.ts";
export * from "./reference.ts";
export * from "./rules.ts";
export * from "./providers.ts";
