/**
 * The onnxruntime engine's op table for frozen graphs: one entry per IR layer kind
 * (`LAYER_KINDS` of lib/graph.ts) with that layer's lowering to eval ops, eval forward, input
 * gradient and LRP modified backward, written once for every layout (the layout-specific emitters come from the
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

import { type BatchNormNode, convOut, type GraphNode, type LayerKind } from "../../graph.ts";
import { batchNormScaleShift, type BatchNormValues, foldBatchNorm } from "../../models/batchnorm_fold.ts";
import type { RelevancePlan } from "../../oracle/rules.ts";
import type { EvalAffine, EvalConv, EvalLinear, EvalOp } from "./eval_net.ts";
import {
  biasConst,
  constPart,
  type FrozenFusion,
  type FrozenLayout,
  type LayoutContext,
} from "./frozen_layout.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import {
  addRelevance,
  type LinearMap,
  linearRelevance,
  poolRelevance,
  type WeightPart,
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
  readonly fusion: FrozenFusion;
}

/** An LRP pass's state: the plan and the values known to be >= 0. */
export interface RelevanceState {
  /** The relevance plan. */
  plan: RelevancePlan;
  /** Values known to be >= 0 (ReLU outputs, sums and pools of them). */
  nonNegative: Set<string>;
}

/** The IR node of layer kind `K`. */
export type NodeOf<K extends LayerKind> = Extract<GraphNode, { op: K }>;

/** What lowering an IR node to eval ops reads and writes (see `lowerEvalNet`). */
export interface Lowering {
  /** A parameter's values, shape-checked against `shape` (-1: any). */
  get(name: string, shape: number[]): Float32Array;
  /** A parameter's declared shape. */
  shape(name: string): number[];
  /** A BatchNorm's parameters and buffers. */
  batchNorm(node: BatchNormNode): BatchNormValues;
  /** Conv name -> the BatchNorm folded into it (the one foldability rule). */
  foldable: Map<string, BatchNormNode>;
  /** BatchNorms already folded into a convolution. */
  folded: Set<string>;
  /** The eval ops so far. */
  ops: EvalOp[];
}

/** The eval op of IR layer kind `K`. */
export type EvalOpOf<K extends LayerKind> = EvalOp & { op: K };

/** One layer kind's frozen-graph passes. */
export interface FrozenOp<O extends EvalOp = EvalOp, N extends GraphNode = GraphNode> {
  /** Lowers the IR node to eval ops (weights constant, BatchNorm folded where the rule allows). */
  lower(node: N, l: Lowering): void;
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
export type FrozenOpTable = { [K in LayerKind]: FrozenOp<EvalOpOf<K>, NodeOf<K>> };

/**
 * The entry for an eval op.
 *
 * @example
 * ```ts
 * import { frozenOp } from "./frozen_ops.ts";
 * console.log(typeof frozenOp({ op: "relu", inputs: ["x"], output: "y" }).forward); // function
 * ```
 */
export function frozenOp(op: EvalOp | GraphNode): FrozenOp {
  return FROZEN_OPS[op.op] as unknown as FrozenOp;
}

/** Lowers a parameter-free node to the eval op of the same kind. */
function lowerPlain(node: NodeOf<"relu" | "add" | "global_avg_pool">, l: Lowering): void {
  l.ops.push({ op: node.op, inputs: [...node.inputs], output: node.output });
}

const linearWeight = (c: LayoutContext, op: EvalLinear, part: WeightPart) =>
  constPart(c, op, "weight", part, op.weight, [op.fout, op.fin]);

/** A convolution as a linear map in the context's layout (for LRP). */
function convMap(c: FrozenContext, op: EvalConv, [, h, w]: number[]): LinearMap {
  return {
    apply: (a, part, bias) => c.layout.conv(c, op, a, null, false, part, bias ?? null),
    transpose: (s, part) => c.layout.convInputGrad(c, op, s, h, w, part),
  };
}

/** A linear layer as a linear map (layout-free: [n, features]). */
function linearMap(c: FrozenContext, op: EvalLinear): LinearMap {
  return {
    apply: (a, part, bias) => {
      const ins = [a, linearWeight(c, op, part)];
      if (bias && op.bias) ins.push(biasConst(c, op, bias));
      return c.b.op("Gemm", ins, { transB: 1 });
    },
    transpose: (s, part) => c.b.op("MatMul", [s, linearWeight(c, op, part)]),
  };
}

/** An unfolded BatchNorm as a diagonal linear map in the context's layout. */
function batchNormMap(c: FrozenContext, op: EvalAffine): LinearMap {
  return {
    apply: (a, part, bias) => c.layout.batchNorm(c, op, a, bias !== undefined, false, part, bias ?? "w"),
    transpose: (s, part) => c.layout.batchNorm(c, op, s, false, false, part, "w"),
  };
}

/** Relevance through a conv or linear layer under the plan's first-layer or main rule. */
function weightedRelevance(
  c: FrozenContext,
  op: EvalConv | EvalLinear,
  map: LinearMap,
  rOut: string,
  fwd: ForwardValues,
  rel: GradAccumulator,
  { plan, nonNegative }: RelevanceState,
): void {
  const a = fwd.values.get(op.input)!;
  const rule = op.input === c.net.input ? plan.first : plan.linear;
  if (rule.name === "zB") {
    if (op.op !== "conv") throw new Error(`${c.net.arch}: the zB rule needs a convolution first`);
    rel.push(op.input, zBRelevance(c.b, c.n, rule, map, a, rOut, plan.stabilizer, fwd.shapes.get(op.input)!));
  } else {
    rel.push(op.input, linearRelevance(c.b, rule, map, a, rOut, plan.stabilizer, nonNegative.has(op.input)));
  }
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
    lower(node, l) {
      const [co, ci, k] = l.shape(node.weight);
      const conv: EvalConv = {
        op: "conv",
        input: node.inputs[0],
        output: node.output,
        weight: l.get(node.weight, [co, ci, k, k]),
        bias: node.bias ? l.get(node.bias, [co]) : null,
        co,
        ci,
        k,
        stride: node.stride,
        pad: node.pad,
      };
      const bn = l.foldable.get(node.name);
      if (bn) {
        const f = foldBatchNorm(
          { shape: [co, ci, k, k], data: conv.weight },
          conv.bias ?? undefined,
          l.batchNorm(bn),
        );
        conv.weight = f.weight;
        conv.bias = f.bias;
        conv.output = bn.output;
        l.folded.add(bn.name);
      }
      l.ops.push(conv);
    },
    forward(c, op, fwd) {
      // A fused ReLU's output is the visible one.
      const relu = c.fusion.relu.get(op);
      const name = relu ? relu.output : op.output;
      setConv(fwd, op, c.layout.conv(c, op, fwd.values.get(op.input)!, null, !!relu, "w", "w"), name);
      if (relu) alias(fwd, op.output, name);
    },
    backward(c, op, dy, fwd, grads) {
      const [, h, w] = fwd.shapes.get(op.input)!;
      c.layout.pushConvInputGrad(c, op, dy, grads, h, w);
    },
    relevance(c, op, rOut, fwd, rel, s) {
      weightedRelevance(c, op, convMap(c, op, fwd.shapes.get(op.input)!), rOut, fwd, rel, s);
    },
  },
  batchnorm: {
    lower(node, l) {
      if (l.folded.has(node.name)) return;
      const { scale, shift } = batchNormScaleShift(l.batchNorm(node));
      l.ops.push({
        op: "batchnorm",
        input: node.inputs[0],
        output: node.output,
        scale: Float32Array.from(scale),
        shift: Float32Array.from(shift),
      });
    },
    forward(c, op, fwd) {
      const relu = c.fusion.relu.get(op);
      const name = relu ? relu.output : op.output;
      fwd.values.set(name, c.layout.batchNorm(c, op, fwd.values.get(op.input)!, true, !!relu, "w", "w"));
      fwd.shapes.set(name, fwd.shapes.get(op.input)!);
      if (relu) alias(fwd, op.output, name);
    },
    backward(c, op, dy, _fwd, grads) {
      grads.push(op.input, c.layout.batchNorm(c, op, dy, false, false, "w", "w"));
    },
    relevance(c, op, rOut, fwd, rel, { plan }) {
      const a = fwd.values.get(op.input)!;
      rel.push(
        op.input,
        linearRelevance(c.b, plan.linear, batchNormMap(c, op), a, rOut, plan.stabilizer, false),
      );
    },
  },
  relu: {
    lower: lowerPlain,
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
    lower: lowerPlain,
    forward(c, op, fwd) {
      const fused = c.fusion.atAdd.get(op);
      if (fused) {
        const name = fused.relu ? fused.relu.output : op.output;
        const x = fwd.values.get(fused.node.input)!;
        const out = c.layout.conv(c, fused.node, x, fwd.values.get(fused.other)!, !!fused.relu, "w", "w");
        setConv(fwd, fused.node, out, name);
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
    lower: lowerPlain,
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
      const blk = c.layout.channelBlock;
      rel.push(op.inputs[0], poolRelevance(c.b, c.n, blk, plan.sum, a, rOut, plan.stabilizer, shape));
    },
  },
  linear: {
    lower(node, l) {
      const [fout, fin] = l.shape(node.weight);
      l.ops.push({
        op: "linear",
        input: node.inputs[0],
        output: node.output,
        weight: l.get(node.weight, [fout, fin]),
        bias: node.bias ? l.get(node.bias, [fout]) : null,
        fin,
        fout,
      });
    },
    forward(c, op, fwd) {
      const ins = [fwd.values.get(op.input)!, linearWeight(c, op, "w")];
      if (op.bias) ins.push(biasConst(c, op, "w"));
      fwd.values.set(op.output, c.b.op("Gemm", ins, { transB: 1 }));
      fwd.shapes.set(op.output, [op.fout]);
    },
    backward(c, op, dy, _fwd, grads) {
      grads.push(op.input, c.b.op("MatMul", [dy, linearWeight(c, op, "w")]));
    },
    relevance(c, op, rOut, fwd, rel, s) {
      weightedRelevance(c, op, linearMap(c, op), rOut, fwd, rel, s);
    },
  },
};
