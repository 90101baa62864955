/**
 * The oracle formula on host arrays, the reference every engine is tested against:
 * x* = x - gamma * |x| * dCE/dx (the paper's code), or with any relevance R,
 * x* = x + gamma * sign(x) * R (grad-input relevance R = x * -dCE/dx gives the same x*).
 *
 * @example
 * ```ts
 * import { reinforceInput, reinforceWithRelevance } from "./reference.ts";
 * const x = new Float32Array([-2, 1]), g = new Float32Array([1, -1]);
 * console.log(reinforceInput(x, g, 0.5), reinforceWithRelevance(x, x.map((v, i) => -v * g[i]), 0.5)); // Float32Array(2) [ -1, 1.5 ] Float32Array(2) [ -1, 1.5 ]
 * ```
 * @module
 */

/**
 * x* from a given input gradient: `x - gamma * |x| * grad`.
 *
 * @example
 * ```ts
 * import { reinforceInput } from "./reference.ts";
 * console.log(reinforceInput(new Float32Array([-2, 1]), new Float32Array([1, -1]), 0.5)); // Float32Array(2) [ -1, 1.5 ]
 * ```
 */
export function reinforceInput(x: Float32Array, grad: Float32Array, gamma: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - gamma * Math.abs(x[i]) * grad[i];
  return out;
}

/**
 * x* from a given relevance: `x + gamma * sign(x) * relevance`.
 *
 * @example
 * ```ts
 * import { reinforceWithRelevance } from "./reference.ts";
 * console.log(reinforceWithRelevance(new Float32Array([-2, 0, 1]), new Float32Array([2, 5, 1]), 0.5)); // Float32Array(3) [ -3, 0, 1.5 ]
 * ```
 */
export function reinforceWithRelevance(
  x: Float32Array,
  relevance: Float32Array,
  gamma: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + gamma * Math.sign(x[i]) * relevance[i];
  return out;
}
