/**
 * Lowers an IR {@link Graph} plus weights to the eval-mode operator list the frozen graphs are
 * compiled from: every BatchNorm that folds into the convolution before it (the one rule of
 * `lib/models/batchnorm_fold.ts`) is folded into its weights and bias; the others become
 * per-channel affine maps (eval ops of kind `batchnorm`). Folding is done in float64 and rounded once.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = lowerEvalNet(g, initStateDict(g, 0));
 * console.log(net.ops.some((o) => o.op === "batchnorm")); // false: every BatchNorm folds
 * ```
 * @module
 */

import type { BatchNormNode, Graph } from "../../graph.ts";
import { type BatchNormValues, foldableBatchNorms } from "../../models/batchnorm_fold.ts";
import { frozenOp, type Lowering } from "./frozen_ops.ts";
import type { HostTensor, StateDict } from "../../tensor.ts";

/** Convolution with constant (possibly BatchNorm-folded) weights [co, ci, k, k]. */
export interface EvalConv {
  op: "conv";
  input: string;
  output: string;
  weight: Float32Array;
  bias: Float32Array | null;
  co: number;
  ci: number;
  k: number;
  stride: number;
  pad: number;
}

/** An eval BatchNorm that could not be folded: per-channel `x * scale + shift`. */
export interface EvalAffine {
  op: "batchnorm";
  input: string;
  output: string;
  scale: Float32Array;
  shift: Float32Array;
}

/** Linear layer, weight [out, in]. */
export interface EvalLinear {
  op: "linear";
  input: string;
  output: string;
  weight: Float32Array;
  bias: Float32Array | null;
  fin: number;
  fout: number;
}

/** Parameter-free operators. */
export interface EvalPlain {
  op: "relu" | "add" | "global_avg_pool";
  inputs: string[];
  output: string;
}

/** One eval-mode operator. */
export type EvalOp = EvalConv | EvalAffine | EvalLinear | EvalPlain;

/** A lowered network: operators in execution order over named values. */
export interface EvalNet {
  /** Architecture name. */
  arch: string;
  /** Input value name. */
  input: string;
  /** Logits value name. */
  output: string;
  /** Input channels. */
  inChannels: number;
  /** Logits width. */
  numClasses: number;
  /** Operators in execution order. */
  ops: EvalOp[];
}

/**
 * Folds `graph` with `weights` (PyTorch layout) into an {@link EvalNet}.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * console.log(lowerEvalNet(g, initStateDict(g, 0)).ops.filter((o) => o.op === "batchnorm").length > 0); // true
 * ```
 */
export function lowerEvalNet(graph: Graph, weights: StateDict): EvalNet {
  const get = (name: string, shape: number[]): Float32Array => {
    const t = weights.get(name);
    if (!t) throw new Error(`weights lack parameter ${name} of ${graph.arch}`);
    checkShape(name, t, shape);
    return Float32Array.from(t.data);
  };
  const shapes = new Map(graph.params.map((p) => [p.name, p.shape]));
  const lowering: Lowering = {
    get,
    shape: (name) => shapes.get(name)!,
    batchNorm: (node) => bnValues(node, get),
    foldable: foldableBatchNorms(graph),
    folded: new Set(),
    ops: [],
  };
  for (const node of graph.nodes) frozenOp(node).lower(node, lowering);
  const ops = lowering.ops;
  return {
    arch: graph.arch,
    input: graph.input,
    output: graph.output,
    inChannels: graph.inChannels,
    numClasses: graph.numClasses,
    ops,
  };
}

/** A BatchNorm's parameters and buffers, shape-checked. */
function bnValues(
  node: BatchNormNode,
  get: (name: string, shape: number[]) => Float32Array,
): BatchNormValues {
  const gamma = get(node.weight, [-1]);
  const c = gamma.length;
  return {
    gamma,
    beta: get(node.bias, [c]),
    mean: get(node.runningMean, [c]),
    variance: get(node.runningVar, [c]),
    eps: node.eps,
  };
}

function checkShape(name: string, t: HostTensor, shape: number[]): void {
  const ok = t.shape.length === shape.length && t.shape.every((d, i) => shape[i] === -1 || d === shape[i]);
  if (!ok) throw new Error(`parameter ${name}: expected shape [${shape}], got [${t.shape}]`);
}
