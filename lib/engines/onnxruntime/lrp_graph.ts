/**
 * The onnxruntime interpretation of a {@link RelevancePlan} (lib/oracle/rules.ts): LRP as a
 * modified backward pass emitted into the frozen ONNX graph, as Zennit does with gradient hooks.
 * Through a conv or linear layer the backward becomes R_in = a * W'^T (R_out / stab(z')), where
 * the rule picks the contributions z' and the weights W' (W for epsilon; W + gamma * W^+ and
 * W^+ for gamma and z+, as sign-split constants computed once on the host); residual sums and
 * average pooling split relevance in proportion to the rule's contributions; ReLUs pass it on.
 * The same formulas as the tfjs engine's `lib/engines/tfjs/lrp/`, on the forward values of an
 * {@link EvalNet} (BatchNorm folded where exact, else a diagonal linear map). Layout-neutral: the
 * NCHW and NCHWc emitters each provide the layer maps ({@link LrpHost}); everything else is
 * elementwise, and spatial sums use a channel-block view.
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
import type { LayerRule, RelevancePlan } from "../../oracle/rules.ts";
import type { EvalAffine, EvalConv, EvalLinear, EvalNet } from "./eval_net.ts";
import { gradAccumulator } from "./grad_accumulator.ts";

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

/** A linear map (conv, fully connected, or an unmerged BatchNorm's diagonal map) and its transpose. */
export interface LinearMap {
  /** layer'(a) with weights `part`, plus the bias (or its positive part) when `bias` is given. */
  apply(a: string, part: WeightPart, bias?: "w" | "pos"): string;
  /** layer'^T(s) with weights `part`, shaped like the layer's input. */
  transpose(s: string, part: WeightPart): string;
}

/** What a frozen-graph emitter (one per layout) provides to the layout-neutral LRP pass. */
export interface LrpHost {
  /** The builder. */
  readonly b: OnnxBuilder;
  /** The lowered network. */
  readonly net: EvalNet;
  /** Batch size. */
  readonly n: number;
  /** The layer as a linear map in this emitter's layout, for an input of per-sample shape `inShape`. */
  linearMap(op: EvalConv | EvalLinear | EvalAffine, inShape: number[]): LinearMap;
  /** Channel block of activations with `c` channels: 1 for NCHW, the NCHWc block size when blocked. */
  channelBlock(c: number): number;
}

/** Forward values and per-sample shapes (see `ForwardValues` in frozen_graphs.ts). */
interface Forward {
  values: Map<string, string>;
  shapes: Map<string, number[]>;
}

/**
 * Emits the relevance at the network input for relevance `start` at the logits under `plan`.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { planFor } from "../../oracle/rules.ts";
 * import { resolveLrpParams } from "../../oracle/options.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * const plan = planFor("lrp-zplus", resolveLrpParams(), 3);
 * const spec = { kind: "oracle", gamma: 0.5, recNum: 1, reduction: "sum", keepInput: false, keepRelevance: true, plan } as const;
 * console.log(compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 1, [3, 8, 8], spec).length > 0); // true
 * ```
 */
export function emitRelevance(host: LrpHost, fwd: Forward, start: string, plan: RelevancePlan): string {
  const { b, net } = host;
  const nonNegative = nonNegativeValues(net);
  const { push, take } = gradAccumulator(b, net.output, start);
  for (let i = net.ops.length - 1; i >= 0; i--) {
    const op = net.ops[i];
    const rOut = take(op.output);
    if (!rOut) continue;
    switch (op.op) {
      case "relu":
        push(op.inputs[0], rOut);
        break;
      case "add":
        addRelevance(b, plan.sum, op.inputs.map((v) => fwd.values.get(v)!), rOut, plan.stabilizer)
          .forEach((r, j) => push(op.inputs[j], r));
        break;
      case "global_avg_pool": {
        const a = fwd.values.get(op.inputs[0])!;
        push(
          op.inputs[0],
          poolRelevance(host, plan.sum, a, rOut, plan.stabilizer, fwd.shapes.get(op.inputs[0])!),
        );
        break;
      }
      case "affine": {
        const a = fwd.values.get(op.input)!;
        const map = host.linearMap(op, fwd.shapes.get(op.input)!);
        push(op.input, linearRelevance(b, plan.linear, map, a, rOut, plan.stabilizer, false));
        break;
      }
      case "conv":
      case "linear": {
        const a = fwd.values.get(op.input)!;
        const first = op.input === net.input;
        const rule = first ? plan.first : plan.linear;
        const map = host.linearMap(op, fwd.shapes.get(op.input)!);
        if (rule.name === "zB") {
          if (op.op !== "conv") throw new Error(`${net.arch}: the zB rule needs a convolution first`);
          push(op.input, zBRelevance(host, rule, map, a, rOut, plan.stabilizer, fwd.shapes.get(op.input)!));
        } else {
          push(
            op.input,
            linearRelevance(b, rule, map, a, rOut, plan.stabilizer, nonNegative.has(op.input)),
          );
        }
        break;
      }
    }
  }
  const r = take(net.input);
  if (!r) throw new Error(`${net.arch}: the logits do not depend on the input`);
  return r;
}

/** Values known to be >= 0: ReLU outputs, and sums and pools of them. */
function nonNegativeValues(net: EvalNet): Set<string> {
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

/** Relevance at the input of a linear map under `rule` (epsilon, gamma, z+), as in the tfjs rules. */
function linearRelevance(
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

/** Montavon's box rule for the first convolution, with per-channel data bounds. */
function zBRelevance(
  host: LrpHost,
  rule: Extract<LayerRule, { name: "zB" }>,
  map: LinearMap,
  a: string,
  relevance: string,
  stabilizer: number,
  [c, h, w]: number[],
): string {
  const { b, n } = host;
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

function addRelevance(
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
 * are taken in a [n, c / B, h * w, B] view (B the channel block), so the same ops serve NCHW
 * (B = 1) and blocked NCHWc activations.
 */
function poolRelevance(
  host: LrpHost,
  rule: LayerRule,
  a: string,
  relevance: string,
  stabilizer: number,
  [c, h, w]: number[],
): string {
  const { b, n } = host;
  const blk = host.channelBlock(c);
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
