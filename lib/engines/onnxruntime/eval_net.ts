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
import {
  batchNormScaleShift,
  type BatchNormValues,
  foldableBatchNorms,
  foldBatchNorm,
} from "../../models/batchnorm_fold.ts";
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
  const foldable = foldableBatchNorms(graph);
  const ops: EvalOp[] = [];
  const folded = new Set<string>();
  for (let i = 0; i < graph.nodes.length; i++) {
    const node = graph.nodes[i];
    switch (node.op) {
      case "conv": {
        const [co, ci, k] = shapes.get(node.weight)!;
        const conv: EvalConv = {
          op: "conv",
          input: node.inputs[0],
          output: node.output,
          weight: get(node.weight, [co, ci, k, k]),
          bias: node.bias ? get(node.bias, [co]) : null,
          co,
          ci,
          k,
          stride: node.stride,
          pad: node.pad,
        };
        const bn = foldable.get(node.name);
        if (bn) {
          const f = foldBatchNorm(
            { shape: [co, ci, k, k], data: conv.weight },
            conv.bias ?? undefined,
            bnValues(bn, get),
          );
          conv.weight = f.weight;
          conv.bias = f.bias;
          conv.output = bn.output;
          folded.add(bn.name);
        }
        ops.push(conv);
        break;
      }
      case "batchnorm": {
        if (folded.has(node.name)) break;
        const { scale, shift } = batchNormScaleShift(bnValues(node, get));
        ops.push({
          op: "batchnorm",
          input: node.inputs[0],
          output: node.output,
          scale: Float32Array.from(scale),
          shift: Float32Array.from(shift),
        });
        break;
      }
      case "linear": {
        const [fout, fin] = shapes.get(node.weight)!;
        ops.push({
          op: "linear",
          input: node.inputs[0],
          output: node.output,
          weight: get(node.weight, [fout, fin]),
          bias: node.bias ? get(node.bias, [fout]) : null,
          fin,
          fout,
        });
        break;
      }
      default:
        ops.push({ op: node.op, inputs: [...node.inputs], output: node.output });
    }
  }
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
