/**
 * Which relevance drives the oracle input x* = x + gamma * sign(x) * R, and the parameters of the
 * LRP rules. `grad-input` (R = x * -dCE/dx) is the paper's code; the LRP rules start from the
 * logits with R = z * -dCE/dz and propagate layer by layer (see `lrp.ts`).
 *
 * @example
 * ```ts
 * import { resolveLrpParams } from "./options.ts";
 * const p = resolveLrpParams({ epsilon: 0 });
 * console.log(p.epsilon, p.gamma, p.firstLayer); // 0 0.25 lrp-0
 * ```
 * @module
 */

/** Relevance rules the oracle can use. */
export const RELEVANCE_RULES = ["grad-input", "lrp-epsilon", "lrp-gamma", "lrp-zplus"] as const;
/** A relevance rule name. */
export type RelevanceRule = typeof RELEVANCE_RULES[number];

/** Rules for the first layer, which sees normalised pixels of either sign. */
export const FIRST_LAYER_RULES = ["lrp-0", "same", "zB"] as const;
/**
 * First-layer rule: `lrp-0` (gradient x input of the first convolution: sound for inputs of any
 * sign, and keeps the paper's |x| factor in x*), `same` (the chosen rule, with sign-split
 * contributions so negative pixels are handled), `zB` (Montavon's box rule with the normalised
 * data bounds {@link LrpParams.inputBounds}).
 */
export type FirstLayerRule = typeof FIRST_LAYER_RULES[number];

/** Per-channel bounds of the network input, in normalised units. */
export interface InputBounds {
  /** Smallest value per channel, e.g. (0 - mean) / std. */
  low: number[];
  /** Largest value per channel, e.g. (1 - mean) / std. */
  high: number[];
}

/** Parameters of the LRP rules; every field has a documented default. */
export interface LrpParams {
  /** LRP-epsilon's epsilon (default 0.25, Montavon et al. 2019; 0 gives LRP-0). */
  epsilon?: number;
  /** LRP-gamma's gamma, the boost of positive contributions (default 0.25; not the oracle step). */
  gamma?: number;
  /** Rule for the first convolution (default `lrp-0`). */
  firstLayer?: FirstLayerRule;
  /** Data bounds for `firstLayer: "zB"` (required there). */
  inputBounds?: InputBounds;
  /** Added to denominators with the sign of the denominator to avoid 0/0 (default 1e-9). */
  stabilizer?: number;
}

/** {@link LrpParams} with every default filled in. */
export interface ResolvedLrpParams {
  /** See {@link LrpParams.epsilon}. */
  epsilon: number;
  /** See {@link LrpParams.gamma}. */
  gamma: number;
  /** See {@link LrpParams.firstLayer}. */
  firstLayer: FirstLayerRule;
  /** See {@link LrpParams.inputBounds}. */
  inputBounds: InputBounds | null;
  /** See {@link LrpParams.stabilizer}. */
  stabilizer: number;
}

/** Defaults of {@link LrpParams}. */
export const LRP_DEFAULTS: Readonly<Omit<ResolvedLrpParams, "inputBounds">> = {
  epsilon: 0.25,
  gamma: 0.25,
  firstLayer: "lrp-0",
  stabilizer: 1e-9,
};

/**
 * Fills in defaults and checks the values, naming the offending field.
 *
 * @example
 * ```ts
 * import { resolveLrpParams } from "./options.ts";
 * try { resolveLrpParams({ firstLayer: "zB" }); } catch (e) { console.log((e as Error).message.includes("inputBounds")); } // true
 * ```
 */
export function resolveLrpParams(p: LrpParams = {}): ResolvedLrpParams {
  const r: ResolvedLrpParams = {
    epsilon: p.epsilon ?? LRP_DEFAULTS.epsilon,
    gamma: p.gamma ?? LRP_DEFAULTS.gamma,
    firstLayer: p.firstLayer ?? LRP_DEFAULTS.firstLayer,
    inputBounds: p.inputBounds ?? null,
    stabilizer: p.stabilizer ?? LRP_DEFAULTS.stabilizer,
  };
  for (const k of ["epsilon", "gamma", "stabilizer"] as const) {
    if (!Number.isFinite(r[k]) || r[k] < 0) {
      throw new Error(`lrp.${k} must be a finite number >= 0, got ${r[k]}`);
    }
  }
  if (!FIRST_LAYER_RULES.includes(r.firstLayer)) {
    throw new Error(`lrp.firstLayer must be one of ${FIRST_LAYER_RULES.join(", ")}, got "${r.firstLayer}"`);
  }
  if (r.firstLayer === "zB") {
    const b = r.inputBounds;
    if (
      !b || b.low.length === 0 || b.low.length !== b.high.length || b.low.some((l, i) => !(l <= b.high[i]))
    ) {
      throw new Error("lrp.firstLayer zB needs lrp.inputBounds with per-channel low <= high");
    }
  }
  return r;
}

/**
 * Checks a relevance rule name.
 *
 * @example
 * ```ts
 * import { checkRelevanceRule } from "./options.ts";
 * console.log(checkRelevanceRule(undefined)); // grad-input
 * ```
 */
export function checkRelevanceRule(name: string | undefined): RelevanceRule {
  const rule = name ?? "grad-input";
  if (!(RELEVANCE_RULES as readonly string[]).includes(rule)) {
    throw new Error(`unknown relevance rule "${rule}"; choose one of ${RELEVANCE_RULES.join(", ")}`);
  }
  return rule as RelevanceRule;
}

/**
 * Input bounds of images in [0, 1] normalised with per-channel `mean` and `std`.
 *
 * @example
 * ```ts
 * import { normalisedBounds } from "./options.ts";
 * console.log(normalisedBounds([0.5], [0.25])); // { low: [ -2 ], high: [ 2 ] }
 * ```
 */
export function normalisedBounds(mean: readonly number[], std: readonly number[]): InputBounds {
  if (mean.length !== std.length) throw new Error("mean and std need the same number of channels");
  return { low: mean.map((m, c) => (0 - m) / std[c]), high: mean.map((m, c) => (1 - m) / std[c]) };
}
