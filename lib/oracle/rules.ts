/**
 * Relevance rules as small data, in the manner of Zennit: a rule is a name, its parameters and a
 * per-layer-type description of how relevance crosses each layer of a canonized network
 * (BatchNorm merged into the convolution before it where that is exact). Engines interpret a
 * {@link RelevancePlan}; none of them decides what a rule means. Layer behaviour:
 *
 * - start: R = z * (-dCE(z, y)/dz) at the logits z (mean or sum reduction), so that LRP-0 on a
 *   ReLU network is exactly gradient x input, the paper's relevance;
 * - `linear` (conv and fully connected, BatchNorm merged; also an unmerged BatchNorm, which is a
 *   diagonal linear map y = s * x + t): the plan's {@link LayerRule}, z = layer'(a),
 *   s = R / stab(z), R_in = a * layer'^T(s). `epsilon`: contributions a_i w_ij (bias included),
 *   denominator z_j + epsilon * sign(z_j). `gamma`: a_i w_ij + gamma * (a_i w_ij)^+ for z_j >= 0
 *   and + gamma * (a_i w_ij)^- for z_j < 0 (bias b + gamma * b^+ / b^-), as Zennit's `Gamma`.
 *   `zplus`: (a_i w_ij)^+ without bias. `zB`: a_i w_ij - l_i w_ij^+ - h_i w_ij^- with data
 *   bounds [l, h] (first layer only). Inputs of either sign use the sign-split form
 *   (a^+ w^+ + a^- w^- is the positive part); inputs known to be >= 0 (after a ReLU) use one
 *   modified weight (W + gamma * W^+, W^+);
 * - `first`: the rule of the conv or linear layer that reads the image;
 * - `sum` (residual add, global average pooling as weights 1/HW): split in proportion to the
 *   plan's contributions with weight 1, stabilised, no epsilon absorption (Zennit's `Norm`);
 * - ReLU: relevance passes through unchanged; relevance reaching a value from several readers is
 *   summed.
 *
 * @example
 * ```ts
 * import { relevancePlan } from "./rules.ts";
 * const p = relevancePlan({ gamma: 0.5, recNum: 1, reduction: "mean", relevance: "lrp-gamma", lrp: { gamma: 0.5 } }, 3);
 * console.log(p?.linear, p?.first); // { name: "gamma", gamma: 0.5 } { name: "epsilon", epsilon: 0 }
 * ```
 * @module
 */

import {
  type OracleOptions,
  type RelevanceRule,
  type ResolvedLrpParams,
  resolveLrpParams,
  validateOracleOptions,
} from "./options.ts";

/** How one linear map (conv, fully connected, unmerged BatchNorm) counts contributions. */
export type LayerRule =
  | { name: "epsilon"; epsilon: number }
  | { name: "gamma"; gamma: number }
  | { name: "zplus" }
  | { name: "zB"; low: readonly number[]; high: readonly number[] };

/** An LRP relevance rule name (every rule but the gradient's). */
export type LrpRule = Exclude<RelevanceRule, "grad-input">;

/** What an engine needs to propagate an LRP rule: the rule per layer type, as data. */
export interface RelevancePlan {
  /** The relevance rule this plan implements. */
  rule: LrpRule;
  /** Rule of conv, linear and unmerged-BatchNorm layers. */
  linear: LayerRule;
  /** Rule of the conv or linear layer that reads the image. */
  first: LayerRule;
  /** Rule by which residual sums and global average pooling split relevance. */
  sum: LayerRule;
  /** Added to every denominator with its sign (sign(0) = +1). */
  stabilizer: number;
  /** The parameters the plan was made from. */
  params: ResolvedLrpParams;
}

/**
 * The layer rule behind an LRP rule name.
 *
 * @example
 * ```ts
 * import { mainRule } from "./rules.ts";
 * import { resolveLrpParams } from "./options.ts";
 * console.log(mainRule("lrp-gamma", resolveLrpParams({ gamma: 0.5 }))); // { name: "gamma", gamma: 0.5 }
 * ```
 */
export function mainRule(rule: LrpRule, p: ResolvedLrpParams): LayerRule {
  switch (rule) {
    case "lrp-epsilon":
      return { name: "epsilon", epsilon: p.epsilon };
    case "lrp-gamma":
      return { name: "gamma", gamma: p.gamma };
    case "lrp-zplus":
      return { name: "zplus" };
  }
}

/**
 * The plan of an LRP rule for a network reading `inChannels` image channels (checked against
 * zB bounds); null for `grad-input`, which is the plain input gradient.
 *
 * @example
 * ```ts
 * import { relevancePlan } from "./rules.ts";
 * console.log(relevancePlan({ gamma: 0.5, recNum: 1, reduction: "mean" }, 3)); // null
 * try { relevancePlan({ gamma: 0.5, recNum: 1, reduction: "mean", relevance: "lrp-zplus", lrp: { firstLayer: "zB", inputBounds: { low: [0], high: [1] } } }, 3); }
 * catch (e) { console.log((e as Error).message); } // lrp.inputBounds has 1 channels, the network reads 3
 * ```
 */
export function relevancePlan(opts: OracleOptions, inChannels: number): RelevancePlan | null {
  const rule = validateOracleOptions(opts);
  if (rule === "grad-input") return null;
  return planFor(rule, resolveLrpParams(opts.lrp), inChannels);
}

/**
 * The plan of LRP rule `rule` with resolved parameters `p` (see {@link relevancePlan}).
 *
 * @example
 * ```ts
 * import { planFor } from "./rules.ts";
 * import { resolveLrpParams } from "./options.ts";
 * console.log(planFor("lrp-zplus", resolveLrpParams({ firstLayer: "same" }), 3).first); // { name: "zplus" }
 * ```
 */
export function planFor(rule: LrpRule, p: ResolvedLrpParams, inChannels: number): RelevancePlan {
  const linear = mainRule(rule, p);
  let first: LayerRule;
  switch (p.firstLayer) {
    case "lrp-0":
      first = { name: "epsilon", epsilon: 0 };
      break;
    case "same":
      first = linear;
      break;
    case "zB": {
      const { low, high } = p.inputBounds!;
      if (low.length !== inChannels) {
        throw new Error(`lrp.inputBounds has ${low.length} channels, the network reads ${inChannels}`);
      }
      first = { name: "zB", low, high };
      break;
    }
  }
  return { rule, linear, first, sum: linear, stabilizer: p.stabilizer, params: p };
}
