/**
 * Lowers an IR {@link Graph} plus weights to the eval-mode operator list the frozen graphs are
 * compiled from: every BatchNorm that directly follows a convolution (and is that output's only
 * reader) is folded into the convolution's weights and bias; the others become per-channel
 * affine maps. Folding is done in float64 and rounded once.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = lowerEvalNet(g, initStateDict(g, 0));
 * console.log(net.ops.some((o) => o.op === "affine")); // false
 * ```
 * @module
 */

import { type Graph, valueUseCounts } from "../../graph.ts";
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

/** Per-channel `x * scale + shift` (an eval BatchNorm that could not be folded). */
export interface EvalAffine {
  op: "affine";
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
 * console.log(lowerEvalNet(g, initStateDict(g, 0)).ops.filter((o) => o.op === "affine").length > 0); // true
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
  const uses = valueUseCounts(graph);
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
        const next = graph.nodes.find((n) => n.inputs.includes(node.output));
        if (next?.op === "batchnorm" && uses.get(node.output) === 1 && node.output !== graph.output) {
          const { scale, shift } = bnAffine(next, get);
          const w = new Float32Array(conv.weight.length);
          const per = ci * k * k;
          const bias = new Float32Array(co);
          for (let o = 0; o < co; o++) {
            for (let j = 0; j < per; j++) w[o * per + j] = conv.weight[o * per + j] * scale[o];
            bias[o] = (conv.bias ? conv.bias[o] : 0) * scale[o] + shift[o];
          }
          conv.weight = w;
          conv.bias = bias;
          conv.output = next.output;
          folded.add(next.name);
        }
        ops.push(conv);
        break;
      }
      case "batchnorm": {
        if (folded.has(node.name)) break;
        const { scale, shift } = bnAffine(node, get);
        ops.push({
          op: "affine",
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

/** Eval BatchNorm as float64 per-channel scale and shift. */
function bnAffine(
  node: { weight: string; bias: string; runningMean: string; runningVar: string; eps: number },
  get: (name: string, shape: number[]) => Float32Array,
): { scale: Float64Array; shift: Float64Array } {
  const gamma = get(node.weight, [-1]);
  const c = gamma.length;
  const beta = get(node.bias, [c]);
  const mean = get(node.runningMean, [c]);
  const variance = get(node.runningVar, [c]);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    scale[i] = gamma[i] / Math.sqrt(variance[i] + node.eps);
    shift[i] = beta[i] - mean[i] * scale[i];
  }
  return { scale, shift };
}

function checkShape(name: string, t: HostTensor, shape: number[]): void {
  const ok = t.shape.length === shape.length && t.shape.every((d, i) => shape[i] === -1 || d === shape[i]);
  if (!ok) throw new Error(`parameter ${name}: expected shape [${shape}], got [${t.shape}]`);
}
