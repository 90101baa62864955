/**
 * The onnxruntime engine's op table for frozen graphs: one entry per IR layer kind
 * (`LAYER_KINDS` of lib/graph.ts) with that layer's eval forward, input gradient and LRP modified
 * backward, written once for every layout (the layout-specific emitters come from the
 * {@link FrozenLayout} in the context). Adding a layer type to the frozen graphs is one entry
 * here (plus a layout emitter if it touches activation layout); a test fails when a kind lacks
 * one.
 *
 * @example
 * ```ts
 * import { FROZEN_OPS } from "./frozen_ops.ts";
 * console.log(Object.keys(FROZEN_OPS).length); // 6
 * ```
 * @module
 */

import type { LayerKind } from "../../graph.ts";
import type { RelevancePlan } from "../../oracle/rules.ts";
import type { EvalAffine, EvalConv, EvalLinear, EvalOp } from "./eval_net.ts";
import {
  biasConst,
  convOut,
  type FrozenLayout,
  type FusionPlan,
  type LayoutContext,
  partKey,
} from "./frozen_layout.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import {
  addRelevance,
  type LinearMap,
  linearRelevance,
  poolRelevance,
  type WeightPart,
  weightPart,
  zBRelevance,
} from "./lrp_graph.ts";
import { reluGrad } from "./relu_grad.ts";

/** A forward pass's ONNX values and per-sample shapes, for the backward pass. */
export interface ForwardValues {
  /** The logits value. */
  logits: string;
  /** ONNX value of every network value. */
  values: Map<string, string>;
  /** Per-sample shape of every network value. */
  shapes: Map<string, number[]>;
}

/** What an op-table entry emits with: a {@link LayoutContext} plus the layout and its fusion plan. */
export interface FrozenContext extends LayoutContext {
  /** The activation layout. */
  readonly layout: FrozenLayout;
  /** Operators the forward pass fuses. */
  readonly fusion: FusionPlan;
}

/** An LRP pass's state: the plan and the values known to be >= 0. */
export interface RelevanceState {
  /** The relevance plan. */
  plan: RelevancePlan;
  /** Values known to be >= 0 (ReLU outputs, sums and pools of them). */
  nonNegative: Set<string>;
}

/** The eval op of IR layer kind `K`. */
export type EvalOpOf<K extends LayerKind> = EvalOp & { op: K };

/** One layer kind's frozen-graph passes. */
export interface FrozenOp<O extends EvalOp = EvalOp> {
  /** Emits the eval forward of `op`, recording its output in `fwd` (skipped when fused away). */
  forward(c: FrozenContext, op: O, fwd: ForwardValues): void;
  /** Pushes the input gradients of `op` given `dy`, its output's gradient. */
  backward(c: FrozenContext, op: O, dy: string, fwd: ForwardValues, grads: GradAccumulator): void;
  /** Pushes the relevance at the inputs of `op` given `rOut` at its output. */
  relevance(
    c: FrozenContext,
    op: O,
    rOut: string,
    fwd: ForwardValues,
    rel: GradAccumulator,
    s: RelevanceState,
  ): void;
}

/** The frozen-graph entry of every IR layer kind. */
export type FrozenOpTable = { [K in LayerKind]: FrozenOp<EvalOpOf<K>> };

/**
 * The entry for an eval op.
 *
 * @example
 * ```ts
 * import { frozenOp } from "./frozen_ops.ts";
 * console.log(typeof frozenOp({ op: "relu", inputs: ["x"], output: "y" }).forward); // function
 * ```
 */
export function frozenOp(op: EvalOp): FrozenOp {
  return FROZEN_OPS[op.op] as FrozenOp;
}

const linearWeight = (c: LayoutContext, op: EvalLinear, part: WeightPart) =>
  c.consts.get(
    op,
    partKey("weight", part),
    () => c.b.constant(weightPart(op.weight, part), [op.fout, op.fin]),
  );

/** A conv, linear or BatchNorm layer as a linear map in the context's layout (for LRP). */
function linearMap(c: FrozenContext, op: EvalConv | EvalLinear | EvalAffine, [, h, w]: number[]): LinearMap {
  const b = c.b;
  switch (op.op) {
    case "conv":
      return {
        apply: (a, part, bias) => c.layout.conv(c, op, a, null, false, part, bias ?? null),
        transpose: (s, part) => c.layout.convInputGrad(c, op, s, null, h, w, part),
      };
    case "linear":
      return {
        apply: (a, part, bias) => {
          const ins = [a, linearWeight(c, op, part)];
          if (bias && op.bias) ins.push(biasConst(c, op, bias));
          return b.op("Gemm", ins, { transB: 1 });
        },
        transpose: (s, part) => b.op("MatMul", [s, linearWeight(c, op, part)]),
      };
    case "batchnorm":
      return {
        apply: (a, part, bias) => c.layout.batchNorm(c, op, a, bias !== undefined, false, part, bias ?? "w"),
        transpose: (s, part) => c.layout.batchNorm(c, op, s, false, false, part, "w"),
      };
  }
}

/** Relevance through a conv or linear layer under the plan's first-layer or main rule. */
function weightedRelevance(
  c: FrozenContext,
  op: EvalConv | EvalLinear,
  rOut: string,
  fwd: ForwardValues,
  rel: GradAccumulator,
  { plan, nonNegative }: RelevanceState,
): void {
  const a = fwd.values.get(op.input)!;
  const rule = op.input === c.net.input ? plan.first : plan.linear;
  const map = linearMap(c, op, fwd.shapes.get(op.input)!);
  if (rule.name === "zB") {
    if (op.op !== "conv") throw new Error(`${c.net.arch}: the zB rule needs a convolution first`);
    rel.push(op.input, zBRelevance(c.b, c.n, rule, map, a, rOut, plan.stabilizer, fwd.shapes.get(op.input)!));
  } else {
    rel.push(op.input, linearRelevance(c.b, rule, map, a, rOut, plan.stabilizer, nonNegative.has(op.input)));
  }
}

/** The output value of the ReLU that solely reads `value` (a fused op's visible output). */
function soleReluOutput(c: FrozenContext, value: string): string {
  return c.net.ops.find((o) => o.op === "relu" && o.inputs[0] === value)!.output;
}

/** Records a conv's output `out` as value `name`. */
function setConv(fwd: ForwardValues, op: EvalConv, out: string, name: string): void {
  const [, h, w] = fwd.shapes.get(op.input)!;
  fwd.values.set(name, out);
  fwd.shapes.set(name, [op.co, convOut(h, op), convOut(w, op)]);
}

/** Makes `from` an alias of `to` (a fused op's unmaterialised intermediate). */
function alias(fwd: ForwardValues, from: string, to: string): void {
  fwd.values.set(from, fwd.values.get(to)!);
  fwd.shapes.set(from, fwd.shapes.get(to)!);
}

/**
 * The table.
 *
 * @example
 * ```ts
 * import { LAYER_KINDS } from "../../graph.ts";
 * import { FROZEN_OPS } from "./frozen_ops.ts";
 * console.log(LAYER_KINDS.every((k) => k in FROZEN_OPS)); // true
 * ```
 */
export const FROZEN_OPS: FrozenOpTable = {
  conv: {
    forward(c, op, fwd) {
      const relu = c.fusion.relu.has(op);
      const name = relu ? soleReluOutput(c, op.output) : op.output;
      setConv(fwd, op, c.layout.conv(c, op, fwd.values.get(op.input)!, null, relu, "w", "w"), name);
      if (relu) alias(fwd, op.output, name);
    },
    backward(c, op, dy, fwd, grads) {
      // Layouts with fused accumulation add onto the gradient already pending (residual paths).
      const acc = c.layout.accumulatesConvGrad && op.input !== c.net.input ? grads.take(op.input) : null;
      const [, h, w] = fwd.shapes.get(op.input)!;
      grads.push(op.input, c.layout.convInputGrad(c, op, dy, acc, h, w, "w"));
    },
    relevance: weightedRelevance,
  },
  batchnorm: {
    forward(c, op, fwd) {
      const relu = c.fusion.relu.has(op);
      const name = relu ? soleReluOutput(c, op.output) : op.output;
      fwd.values.set(name, c.layout.batchNorm(c, op, fwd.values.get(op.input)!, true, relu, "w", "w"));
      fwd.shapes.set(name, fwd.shapes.get(op.input)!);
      if (relu) alias(fwd, op.output, name);
    },
    backward(c, op, dy, _fwd, grads) {
      grads.push(op.input, c.layout.batchNorm(c, op, dy, false, false, "w", "w"));
    },
    relevance(c, op, rOut, fwd, rel, { plan }) {
      const a = fwd.values.get(op.input)!;
      const map = linearMap(c, op, fwd.shapes.get(op.input)!);
      rel.push(op.input, linearRelevance(c.b, plan.linear, map, a, rOut, plan.stabilizer, false));
    },
  },
  relu: {
    forward(c, op, fwd) {
      fwd.values.set(op.output, c.b.op("Relu", [fwd.values.get(op.inputs[0])!]));
      fwd.shapes.set(op.output, fwd.shapes.get(op.inputs[0])!);
    },
    backward(c, op, dy, fwd, grads) {
      grads.push(op.inputs[0], reluGrad(c.b, fwd.values.get(op.output)!, dy));
    },
    relevance(_c, op, rOut, _fwd, rel) {
      rel.push(op.inputs[0], rOut);
    },
  },
  add: {
    forward(c, op, fwd) {
      const fused = c.fusion.addConv.get(op);
      if (fused) {
        const name = fused.relu ? fused.relu.output : op.output;
        const x = fwd.values.get(fused.conv.input)!;
        const out = c.layout.conv(c, fused.conv, x, fwd.values.get(fused.other)!, !!fused.relu, "w", "w");
        setConv(fwd, fused.conv, out, name);
        return;
      }
      fwd.values.set(op.output, c.b.op("Add", op.inputs.map((i) => fwd.values.get(i)!)));
      fwd.shapes.set(op.output, fwd.shapes.get(op.inputs[0])!);
    },
    backward(_c, op, dy, _fwd, grads) {
      for (const input of op.inputs) grads.push(input, dy);
    },
    relevance(c, op, rOut, fwd, rel, { plan }) {
      addRelevance(c.b, plan.sum, op.inputs.map((v) => fwd.values.get(v)!), rOut, plan.stabilizer)
        .forEach((r, j) => rel.push(op.inputs[j], r));
    },
  },
  global_avg_pool: {
    forward(c, op, fwd) {
      const shape = fwd.shapes.get(op.inputs[0])!;
      fwd.values.set(op.output, c.layout.pool(c, fwd.values.get(op.inputs[0])!, shape));
      fwd.shapes.set(op.output, [shape[0]]);
    },
    backward(c, op, dy, fwd, grads) {
      grads.push(op.inputs[0], c.layout.poolGrad(c, dy, fwd.shapes.get(op.inputs[0])!));
    },
    relevance(c, op, rOut, fwd, rel, { plan }) {
      const a = fwd.values.get(op.inputs[0])!;
      const shape = fwd.shapes.get(op.inputs[0])!;
      const blk = c.layout.channelBlock(shape[0]);
      rel.push(op.inputs[0], poolRelevance(c.b, c.n, blk, plan.sum, a, rOut, plan.stabilizer, shape));
    },
  },
  linear: {
    forward(c, op, fwd) {
      const ins = [fwd.values.get(op.input)!, linearWeight(c, op, "w")];
      if (op.bias) ins.push(biasConst(c, op, "w"));
      fwd.values.set(op.output, c.b.op("Gemm", ins, { transB: 1 }));
      fwd.shapes.set(op.output, [op.fout]);
    },
    backward(c, op, dy, _fwd, grads) {
      grads.push(op.input, c.b.op("MatMul", [dy, linearWeight(c, op, "w")]));
    },
    relevance: weightedRelevance,
  },
};
