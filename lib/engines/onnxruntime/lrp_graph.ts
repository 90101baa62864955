/**
 * The onnxruntime interpretation of a `RelevancePlan` (lib/oracle/rules.ts): LRP as a
 * modified backward pass emitted into the frozen ONNX graph, as Zennit does with gradient hooks.
 * Through a conv or linear layer the backward becomes R_in = a * W'^T (R_out / stab(z')), where
 * the rule picks the contributions z' and the weights W' (W for epsilon; W + gamma * W^+ and
 * W^+ for gamma and z+, as sign-split constants computed once on the host); residual sums and
 * average pooling split relevance in proportion to the rule's contributions; ReLUs pass it on.
 * The same formulas as the tfjs engine's `lib/engines/tfjs/lrp/`, on the forward values of an
 * {@link EvalNet} (BatchNorm folded where exact, else a diagonal linear map). Layout-neutral: the
 * op table (frozen_ops.ts) dispatches each layer to these rules with its layer as a
 * {@link LinearMap} in the graph's layout; everything else is elementwise, and spatial sums use a
 * channel-block view.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { planFor } from "../../oracle/rules.ts";
 * import { resolveLrpParams } from "../../oracle/options.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const plan = planFor("lrp-gamma", resolveLrpParams(), 3);
 * const spec = { kind: "oracle", gamma: 0.5, recNum: 1, reduction: "mean", keepInput: true, plan } as const;
 * console.log(compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 8, 8], spec).length > 0); // true
 * ```
 * @module
 */

import type { OnnxBuilder } from "../../onnx/builder.ts";
import type { LayerRule } from "../../oracle/rules.ts";
import type { EvalNet } from "./eval_net.ts";

/** Which weights a modified pass uses: W, W^+ or W^-. */
export type WeightPart = "w" | "pos" | "neg";

/**
 * The positive or negative part of `v` (or `v` itself for "w").
 *
 * @example
 * ```ts
 * import { weightPart } from "./lrp_graph.ts";
 * console.log(weightPart(new Float32Array([-1, 2]), "pos"), weightPart(new Float32Array([-1, 2]), "neg")); // Float32Array(2) [ 0, 2 ] Float32Array(2) [ -1, 0 ]
 * ```
 */
export function weightPart(v: Float32Array, part: WeightPart): Float32Array {
  if (part === "w") return v;
  return v.map((x) => (part === "pos" ? Math.max(x, 0) : Math.min(x, 0)));
}

/** A linear map (conv, fully connected, or an unfolded BatchNorm's diagonal map) and its transpose. */
export interface LinearMap {
  /** layer'(a) with weights `part`, plus the bias (or its positive part) when `bias` is given. */
  apply(a: string, part: WeightPart, bias?: "w" | "pos"): string;
  /** layer'^T(s) with weights `part`, shaped like the layer's input. */
  transpose(s: string, part: WeightPart): string;
}

/**
 * Values known to be >= 0: ReLU outputs, and sums and pools of them.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { nonNegativeValues } from "./lrp_graph.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * console.log(nonNegativeValues(lowerEvalNet(g, initStateDict(g, 0))).has("relu")); // true
 * ```
 */
export function nonNegativeValues(net: EvalNet): Set<string> {
  const out = new Set<string>();
  for (const op of net.ops) {
    if (op.op === "relu") out.add(op.output);
    else if ((op.op === "add" || op.op === "global_avg_pool") && op.inputs.every((v) => out.has(v))) {
      out.add(op.output);
    }
  }
  return out;
}

const relu = (b: OnnxBuilder, v: string) => b.op("Relu", [v]);
const negPart = (b: OnnxBuilder, v: string) => b.op("Min", [v, b.scalar(0)]);

/** z + delta * sign(z), sign(0) = +1. */
function stabilize(b: OnnxBuilder, z: string, delta: number): string {
  if (delta === 0) return z;
  const up = b.op("GreaterOrEqual", [z, b.scalar(0)]);
  return b.op("Add", [z, b.op("Where", [up, b.scalar(delta), b.scalar(-delta)])]);
}

/**
 * Relevance at the input of a linear map under `rule` (epsilon, gamma, z+), as in the tfjs rules.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { linearRelevance } from "./lrp_graph.ts";
 * const b = new OnnxBuilder("g");
 * const x = b.input("x", "float32", [1, 2]);
 * const map = { apply: (a: string) => b.op("Neg", [a]), transpose: (s: string) => b.op("Neg", [s]) };
 * console.log(typeof linearRelevance(b, { name: "epsilon", epsilon: 0 }, map, x, x, 1e-9, false)); // string
 * ```
 */
export function linearRelevance(
  b: OnnxBuilder,
  rule: LayerRule,
  map: LinearMap,
  a: string,
  relevance: string,
  stabilizer: number,
  nonNegativeInput: boolean,
): string {
  const ratio = (z: string, delta: number) => b.op("Div", [relevance, stabilize(b, z, delta)]);
  const mul = (x: string, y: string) => b.op("Mul", [x, y]);
  const add = (x: string, y: string) => b.op("Add", [x, y]);
  switch (rule.name) {
    case "epsilon": {
      const s = ratio(map.apply(a, "w", "w"), rule.epsilon + stabilizer);
      return mul(a, map.transpose(s, "w"));
    }
    case "gamma": {
      const g = b.scalar(rule.gamma);
      const z = map.apply(a, "w", "w");
      const ap = nonNegativeInput ? a : relu(b, a);
      // Positive part of the contributions, bias included.
      let zPos = map.apply(ap, "pos", "pos");
      if (!nonNegativeInput) zPos = add(zPos, map.apply(negPart(b, a), "neg"));
      const up = b.op("GreaterOrEqual", [z, b.scalar(0)]);
      const boost = b.op("Where", [up, zPos, b.op("Sub", [z, zPos])]);
      const s = ratio(add(z, mul(boost, g)), stabilizer);
      const sUp = b.op("Where", [up, s, b.scalar(0)]);
      const sDown = b.op("Sub", [s, sUp]);
      const sPos = add(s, mul(sUp, g)), sNeg = add(s, mul(sDown, g));
      const cp = add(map.transpose(sPos, "pos"), map.transpose(sNeg, "neg"));
      if (nonNegativeInput) return mul(a, cp);
      const cn = add(map.transpose(sPos, "neg"), map.transpose(sNeg, "pos"));
      return add(mul(ap, cp), mul(negPart(b, a), cn));
    }
    case "zplus": {
      if (nonNegativeInput) {
        const s = ratio(map.apply(a, "pos"), stabilizer);
        return mul(a, map.transpose(s, "pos"));
      }
      const ap = relu(b, a), an = negPart(b, a);
      const s = ratio(add(map.apply(ap, "pos"), map.apply(an, "neg")), stabilizer);
      return add(mul(ap, map.transpose(s, "pos")), mul(an, map.transpose(s, "neg")));
    }
    case "zB":
      throw new Error("the zB rule applies to the first convolution only");
  }
}

/**
 * Montavon's box rule for the first convolution, with per-channel data bounds; `n` is the batch
 * size and `[c, h, w]` the per-sample input shape.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { zBRelevance } from "./lrp_graph.ts";
 * const b = new OnnxBuilder("g");
 * const x = b.input("x", "float32", [1, 1, 2, 2]);
 * const map = { apply: (a: string) => b.op("Neg", [a]), transpose: (s: string) => b.op("Neg", [s]) };
 * console.log(typeof zBRelevance(b, 1, { name: "zB", low: [0], high: [1] }, map, x, x, 1e-9, [1, 2, 2])); // string
 * ```
 */
export function zBRelevance(
  b: OnnxBuilder,
  n: number,
  rule: Extract<LayerRule, { name: "zB" }>,
  map: LinearMap,
  a: string,
  relevance: string,
  stabilizer: number,
  [c, h, w]: number[],
): string {
  // Bounds as full tensors: the convolution's zero padding must not see them.
  const full = (v: readonly number[]) =>
    b.op("Expand", [b.constant(Float32Array.from(v), [1, c, 1, 1]), b.int64s([n, c, h, w])]);
  const low = full(rule.low), high = full(rule.high);
  const sub = (x: string, y: string) => b.op("Sub", [x, y]);
  const z = sub(sub(map.apply(a, "w"), map.apply(low, "pos")), map.apply(high, "neg"));
  const s = b.op("Div", [relevance, stabilize(b, z, stabilizer)]);
  const cw = sub(b.op("Mul", [a, map.transpose(s, "w")]), b.op("Mul", [low, map.transpose(s, "pos")]));
  return sub(cw, b.op("Mul", [high, map.transpose(s, "neg")]));
}

/** Per-rule contributions of the summands of a parameter-free sum (see the tfjs `sumContributions`). */
function sumContributions(
  b: OnnxBuilder,
  rule: LayerRule,
  inputs: string[],
  sum: (v: string) => string,
): string[] {
  switch (rule.name) {
    case "gamma": {
      const z = sum(inputs.length === 1 ? inputs[0] : b.op("Sum", inputs));
      const up = b.op("GreaterOrEqual", [z, b.scalar(0)]);
      const g = b.scalar(rule.gamma);
      return inputs.map((a) =>
        b.op("Add", [a, b.op("Mul", [b.op("Where", [up, relu(b, a), negPart(b, a)]), g])])
      );
    }
    case "zplus":
      return inputs.map((a) => relu(b, a));
    default:
      return inputs;
  }
}

/**
 * Relevance at the summands of a residual sum: split in proportion to the rule's contributions.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { addRelevance } from "./lrp_graph.ts";
 * const b = new OnnxBuilder("g");
 * const [x, y] = [b.input("x", "float32", [2]), b.input("y", "float32", [2])];
 * console.log(addRelevance(b, { name: "zplus" }, [x, y], x, 1e-9).length); // 2
 * ```
 */
export function addRelevance(
  b: OnnxBuilder,
  rule: LayerRule,
  inputs: string[],
  relevance: string,
  stabilizer: number,
): string[] {
  const parts = sumContributions(b, rule, inputs, (v) => v);
  const s = b.op("Div", [relevance, stabilize(b, b.op("Sum", parts), stabilizer)]);
  return parts.map((p) => b.op("Mul", [p, s]));
}

/**
 * Global average pooling [n, c, h, w] -> [n, c] as weights 1/HW: proportional split. Spatial sums
 * are taken in a [n, c / blk, h * w, blk] view (`blk` the channel block), so the same ops serve
 * NCHW (blk = 1) and blocked NCHWc activations.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { poolRelevance } from "./lrp_graph.ts";
 * const b = new OnnxBuilder("g");
 * const a = b.input("a", "float32", [1, 2, 2, 2]);
 * console.log(typeof poolRelevance(b, 1, 1, { name: "zplus" }, a, b.input("r", "float32", [1, 2]), 1e-9, [2, 2, 2])); // string
 * ```
 */
export function poolRelevance(
  b: OnnxBuilder,
  n: number,
  blk: number,
  rule: LayerRule,
  a: string,
  relevance: string,
  stabilizer: number,
  [c, h, w]: number[],
): string {
  const view = (v: string) => b.op("Reshape", [v, b.int64s([n, c / blk, h * w, blk])]);
  const axes = b.int64s([2]);
  const [contrib] = sumContributions(
    b,
    rule,
    [view(a)],
    (v) => b.op("ReduceSum", [v, axes], { keepdims: 1 }),
  );
  const total = b.op("Reshape", [b.op("ReduceSum", [contrib, axes], { keepdims: 1 }), b.int64s([n, c])]);
  const s = b.op("Div", [relevance, stabilize(b, total, stabilizer)]);
  const spread = b.op("Mul", [contrib, b.op("Reshape", [s, b.int64s([n, c / blk, 1, blk])])]);
  return b.op("Reshape", [spread, b.int64s([n, c, h, w])]);
}
