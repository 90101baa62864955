/**
 * The settings of the oracle input x* and their one validation: the step size `gamma`, the
 * number of steps `recNum`, the reduction of the cross-entropy behind the gradient, which
 * relevance drives x* = x + gamma * sign(x) * R, and the parameters of the LRP rules.
 * `grad-input` (R = x * -dCE/dx, so x* = x - gamma * |x| * dCE/dx) is the paper's code; the LRP
 * rules start from the logits with R = z * -dCE/dz and propagate layer by layer (`rules.ts`
 * describes them; every engine implements them). Also the gamma-0 rule: a step of 0 leaves x
 * unchanged, so the oracle response is the plain forward.
 *
 * @example
 * ```ts
 * import { resolveLrpParams, validateOracleOptions } from "./options.ts";
 * validateOracleOptions({ gamma: 0.5, recNum: 1, reduction: "mean", relevance: "lrp-zplus" });
 * const p = resolveLrpParams({ epsilon: 0 });
 * console.log(p.epsilon, p.gamma, p.firstLayer); // 0 0.25 lrp-0
 * ```
 * @module
 */

/** Reductions of the cross-entropy behind the input gradient. */
export const GRAD_REDUCTIONS = ["mean", "sum"] as const;
/** How the cross-entropy behind the input gradient is reduced over the batch. */
export type GradReduction = typeof GRAD_REDUCTIONS[number];

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

/** Settings of the relevance-reinforced (oracle) input. */
export interface OracleOptions {
  /** Step size: x* = x - gamma * |x| * dCE/dx (0 leaves x unchanged). */
  gamma: number;
  /** How many times the step is applied (>= 1). */
  recNum: number;
  /** `mean` (the paper's code; x* depends on the batch size) or `sum` (batch-independent). */
  reduction: GradReduction;
  /**
   * Relevance R behind x* = x + gamma * sign(x) * R: `grad-input` (default, the paper's code:
   * R = x * -dCE/dx, so x* = x - gamma * |x| * dCE/dx) or an LRP rule started from
   * z * -dCE/dz at the logits (`rules.ts`; every engine).
   */
  relevance?: RelevanceRule;
  /** LRP rule parameters; defaults in {@link LRP_DEFAULTS}. */
  lrp?: LrpParams;
}

/** The former name of {@link OracleOptions} in the explain layer. */
export type RelevanceSettings = OracleOptions;

/**
 * The one validation of oracle settings (config, CLI, engines and graph compilers call it),
 * naming the offending field; returns the relevance rule with its default filled in.
 *
 * @example
 * ```ts
 * import { validateOracleOptions } from "./options.ts";
 * console.log(validateOracleOptions({ gamma: 0.5, recNum: 1, reduction: "mean" })); // grad-input
 * try { validateOracleOptions({ gamma: 0.5, recNum: 0, reduction: "sum" }); }
 * catch (e) { console.log((e as Error).message); } // rec_num (recNum) must be an integer >= 1, got 0
 * ```
 */
export function validateOracleOptions(o: OracleOptions): RelevanceRule {
  if (!Number.isFinite(o.gamma) || o.gamma < 0) {
    throw new Error(`gamma must be a finite number >= 0, got ${o.gamma}`);
  }
  if (!Number.isInteger(o.recNum) || o.recNum < 1) {
    throw new Error(`rec_num (recNum) must be an integer >= 1, got ${o.recNum}`);
  }
  if (!(GRAD_REDUCTIONS as readonly string[]).includes(o.reduction)) {
    throw new Error(`reduction must be one of ${GRAD_REDUCTIONS.join(", ")}, got "${o.reduction}"`);
  }
  const rule = checkRelevanceRule(o.relevance);
  if (rule !== "grad-input") resolveLrpParams(o.lrp);
  return rule;
}

/**
 * The gamma-0 rule: a step of 0 leaves x unchanged, so the oracle response is the teacher's
 * plain forward and no gradient pass is needed.
 *
 * @example
 * ```ts
 * import { oracleIsPlain } from "./options.ts";
 * console.log(oracleIsPlain({ gamma: 0, recNum: 3, reduction: "mean" }), oracleIsPlain({ gamma: 0.5, recNum: 1, reduction: "mean" })); // true false
 * ```
 */
export function oracleIsPlain(o: OracleOptions): boolean {
  return o.gamma === 0;
}
