/**
 * Compiles an {@link EvalNet} into ONNX models for a fixed batch size: the eval forward pass,
 * the input gradient dCE/dx (forward, then the backward of the eval network down to the input
 * only), and the whole oracle (rec_num relevance steps, then the forward on x*) as one graph.
 * The oracle computes any relevance rule: the paper's grad-input (the input gradient) or an LRP
 * rule of lib/oracle/rules.ts as a modified backward pass (lrp_graph.ts, shared by both layouts).
 * This is the portable NCHW form (any onnxruntime build and channel count); the engine prefers the
 * blocked form of frozen_nchwc.ts where it applies. Weights are constant initializers.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const bytes = compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 4, [3, 32, 32], { kind: "forward" });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import { OnnxBuilder } from "../../onnx/builder.ts";
import { type GradReduction, validateOracleOptions } from "../../oracle/options.ts";
import type { RelevancePlan } from "../../oracle/rules.ts";
import type { EvalAffine, EvalConv, EvalLinear, EvalNet, EvalOp } from "./eval_net.ts";
import { gradAccumulator } from "./grad_accumulator.ts";
import { emitRelevance, type LinearMap, type LrpHost, type WeightPart, weightPart } from "./lrp_graph.ts";
import { crossEntropyGrad } from "./loss_ops.ts";
import { reluGrad } from "./relu_grad.ts";

/** What a frozen model computes. Inputs: `x` [n, c, h, w] and, for gradients, `onehot` [n, K]. */
export type FrozenGraphKind =
  | { kind: "forward" }
  | { kind: "input_gradient"; reduction: GradReduction }
  | {
    kind: "oracle";
    gamma: number;
    recNum: number;
    reduction: GradReduction;
    keepInput: boolean;
    /** Output the first step's relevance as `relevance`. */
    keepRelevance?: boolean;
    /** An LRP rule's plan; absent: the paper's grad-input relevance. */
    plan?: RelevancePlan;
  };

/** Names of the graph inputs and outputs. */
export const FROZEN_IO = {
  x: "x",
  onehot: "onehot",
  logits: "logits",
  grad: "grad",
  xStar: "x_star",
  relevance: "relevance",
} as const;

/**
 * Serialises the ONNX model of `spec` for batches of `n` images of shape `image`.
 * Outputs: `logits` (forward, oracle), `grad` (input_gradient), `x_star` (oracle with keepInput),
 * `relevance` (oracle with keepRelevance).
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const spec = { kind: "oracle", gamma: 0.5, recNum: 2, reduction: "mean", keepInput: true } as const;
 * console.log(compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 32, 32], spec).length > 0); // true
 * ```
 */
export function compileFrozen(
  net: EvalNet,
  n: number,
  image: readonly [number, number, number],
  spec: FrozenGraphKind,
): Uint8Array {
  const b = new OnnxBuilder(`${net.arch}_${spec.kind}`);
  return emitFrozenGraph(b, new EvalEmitter(b, net, n, image), net, n, image, spec);
}

/** The layout-specific half of a frozen-graph compiler: the forward and backward passes. */
export interface FrozenEmitter {
  /** Emits the eval forward pass on `x`. */
  forward(x: string): ForwardValues;
  /** Emits the backward pass of `fwd` from `dLogits` down to the input only; returns dx. */
  backward(fwd: ForwardValues, dLogits: string): string;
  /** Emits the LRP pass of `plan` from relevance `start` at the logits; returns R at the input. */
  relevance?(fwd: ForwardValues, start: string, plan: RelevancePlan): string;
}

/**
 * Emits the inputs, body and outputs of `spec` into `b` with the passes of `em` and serialises
 * the model: what {@link compileFrozen} and the NCHWc compiler share.
 */
export function emitFrozenGraph(
  b: OnnxBuilder,
  em: FrozenEmitter,
  net: EvalNet,
  n: number,
  image: readonly [number, number, number],
  spec: FrozenGraphKind,
): Uint8Array {
  // dCE(net(x), labels)/dx; weights get no gradient.
  const inputGradient = (x: string, onehot: string, reduction: GradReduction) => {
    const fwd = em.forward(x);
    return em.backward(fwd, crossEntropyGrad(b, fwd.logits, onehot, reduction === "mean" ? 1 / n : 1));
  };
  const x = b.input(FROZEN_IO.x, "float32", [n, ...image]);
  if (spec.kind === "forward") {
    b.output(em.forward(x).logits, FROZEN_IO.logits);
    return b.toModel();
  }
  const onehot = b.input(FROZEN_IO.onehot, "float32", [n, net.numClasses]);
  if (spec.kind === "input_gradient") {
    b.output(inputGradient(x, onehot, spec.reduction), FROZEN_IO.grad);
    return b.toModel();
  }
  validateOracleOptions(spec);
  const plan = spec.plan;
  if (plan && !em.relevance) throw new Error(`this frozen-graph layout has no LRP pass (${plan.rule})`);
  let xs = x;
  let firstRelevance: string | null = null;
  const gamma = b.scalar(spec.gamma);
  for (let r = 0; r < spec.recNum; r++) {
    if (plan) {
      // R = z * (-dCE/dz) at the logits, propagated down; then x* = x + gamma * sign(x) * R.
      const fwd = em.forward(xs);
      const dz = crossEntropyGrad(b, fwd.logits, onehot, spec.reduction === "mean" ? 1 / n : 1);
      const rel = em.relevance!(fwd, b.op("Mul", [fwd.logits, b.op("Neg", [dz])]), plan);
      if (r === 0) firstRelevance = rel;
      xs = b.op("Add", [xs, b.op("Mul", [b.op("Mul", [b.op("Sign", [xs]), rel]), gamma])]);
      continue;
    }
    const g = inputGradient(xs, onehot, spec.reduction);
    if (r === 0 && spec.keepRelevance) firstRelevance = b.op("Mul", [xs, b.op("Neg", [g])]);
    // Same association as the reference: x - (gamma * |x|) * g.
    xs = b.op("Sub", [xs, b.op("Mul", [b.op("Mul", [b.op("Abs", [xs]), gamma]), g])]);
  }
  b.output(em.forward(xs).logits, FROZEN_IO.logits);
  if (spec.keepInput) b.output(xs, FROZEN_IO.xStar);
  if (spec.keepRelevance) b.output(firstRelevance!, FROZEN_IO.relevance);
  return b.toModel();
}

/**
 * Per-op constants (kernels, biases, scales) created on first use and shared by every pass of
 * one graph (forward-only graphs hold no flipped kernels).
 */
export class ConstCache {
  readonly #consts = new Map<EvalOp, Map<string, string>>();

  /** The constant `key` of `op`, made by `make` the first time. */
  get(op: EvalOp, key: string, make: () => string): string {
    let c = this.#consts.get(op);
    if (!c) this.#consts.set(op, c = new Map());
    let name = c.get(key);
    if (!name) c.set(key, name = make());
    return name;
  }
}

/** A forward pass's ONNX values and per-sample shapes, for the backward pass. */
export interface ForwardValues {
  logits: string;
  values: Map<string, string>;
  shapes: Map<string, number[]>;
}

/** Emits eval forward, input-gradient and LRP subgraphs, sharing one set of weight constants. */
class EvalEmitter implements FrozenEmitter, LrpHost {
  readonly #consts = new ConstCache();

  constructor(
    readonly b: OnnxBuilder,
    readonly net: EvalNet,
    readonly n: number,
    readonly image: readonly [number, number, number],
  ) {}

  forward(x: string): ForwardValues {
    const b = this.b;
    const values = new Map([[this.net.input, x]]);
    const shapes = new Map<string, number[]>([[this.net.input, [...this.image]]]);
    for (const op of this.net.ops) {
      switch (op.op) {
        case "conv": {
          const [, h, w] = shapes.get(op.input)!;
          const ins = [values.get(op.input)!, this.#weight(op)];
          const bias = this.#bias(op);
          if (bias) ins.push(bias);
          values.set(op.output, b.op("Conv", ins, convAttrs(op)));
          shapes.set(op.output, [op.co, convOut(h, op), convOut(w, op)]);
          break;
        }
        case "affine": {
          const scaled = b.op("Mul", [values.get(op.input)!, this.#affine(op, "scale")]);
          values.set(op.output, b.op("Add", [scaled, this.#affine(op, "shift")]));
          shapes.set(op.output, shapes.get(op.input)!);
          break;
        }
        case "linear": {
          const ins = [values.get(op.input)!, this.#weight(op)];
          const bias = this.#bias(op);
          if (bias) ins.push(bias);
          values.set(op.output, b.op("Gemm", ins, { transB: 1 }));
          shapes.set(op.output, [op.fout]);
          break;
        }
        case "relu":
          values.set(op.output, b.op("Relu", [values.get(op.inputs[0])!]));
          shapes.set(op.output, shapes.get(op.inputs[0])!);
          break;
        case "add":
          values.set(op.output, b.op("Add", op.inputs.map((i) => values.get(i)!)));
          shapes.set(op.output, shapes.get(op.inputs[0])!);
          break;
        case "global_avg_pool": {
          const pooled = b.op("GlobalAveragePool", [values.get(op.inputs[0])!]);
          values.set(op.output, b.op("Flatten", [pooled], { axis: 1 }));
          shapes.set(op.output, [shapes.get(op.inputs[0])![0]]);
          break;
        }
      }
    }
    return { logits: values.get(this.net.output)!, values, shapes };
  }

  backward(fwd: ForwardValues, dLogits: string): string {
    const b = this.b;
    const { push, take } = gradAccumulator(b, this.net.output, dLogits);
    for (let i = this.net.ops.length - 1; i >= 0; i--) {
      const op = this.net.ops[i];
      const dy = take(op.output);
      if (!dy) continue;
      switch (op.op) {
        case "conv": {
          const [, h, w] = fwd.shapes.get(op.input)!;
          push(op.input, this.#convInputGrad(op, dy, h, w));
          break;
        }
        case "affine":
          push(op.input, b.op("Mul", [dy, this.#affine(op, "scale")]));
          break;
        case "linear":
          push(op.input, b.op("MatMul", [dy, this.#weight(op)]));
          break;
        case "relu":
          push(op.inputs[0], reluGrad(b, fwd.values.get(op.output)!, dy));
          break;
        case "add":
          for (const input of op.inputs) push(input, dy);
          break;
        case "global_avg_pool": {
          const [ch, h, w] = fwd.shapes.get(op.inputs[0])!;
          const spread = b.op("Mul", [
            b.op("Reshape", [dy, b.int64s([this.n, ch, 1, 1])]),
            b.scalar(1 / (h * w)),
          ]);
          push(op.inputs[0], b.op("Expand", [spread, b.int64s([this.n, ch, h, w])]));
          break;
        }
      }
    }
    const dx = take(this.net.input);
    if (!dx) throw new Error(`${this.net.arch}: the logits do not depend on the input`);
    return dx;
  }

  relevance(fwd: ForwardValues, start: string, plan: RelevancePlan): string {
    return emitRelevance(this, fwd, start, plan);
  }

  channelBlock(): number {
    return 1;
  }

  linearMap(op: EvalConv | EvalLinear | EvalAffine, inShape: number[]): LinearMap {
    const b = this.b;
    const [, h, w] = inShape;
    switch (op.op) {
      case "conv":
        return {
          apply: (a, part, bias) => {
            const ins = [a, part === "w" ? this.#weight(op) : this.#part(op, "weight", part)];
            if (bias && op.bias) ins.push(bias === "w" ? this.#bias(op)! : this.#part(op, "bias", bias));
            return b.op("Conv", ins, convAttrs(op));
          },
          transpose: (s, part) => this.#convInputGrad(op, s, h, w, part),
        };
      case "linear":
        return {
          apply: (a, part, bias) => {
            const ins = [a, part === "w" ? this.#weight(op) : this.#part(op, "weight", part)];
            if (bias && op.bias) ins.push(bias === "w" ? this.#bias(op)! : this.#part(op, "bias", bias));
            return b.op("Gemm", ins, { transB: 1 });
          },
          transpose: (s, part) =>
            b.op("MatMul", [s, part === "w" ? this.#weight(op) : this.#part(op, "weight", part)]),
        };
      case "affine": {
        const scale = (part: WeightPart) =>
          part === "w" ? this.#affine(op, "scale") : this.#part(op, "scale", part);
        return {
          apply: (a, part, bias) => {
            const y = b.op("Mul", [a, scale(part)]);
            if (!bias) return y;
            return b.op("Add", [y, bias === "w" ? this.#affine(op, "shift") : this.#part(op, "shift", bias)]);
          },
          transpose: (s, part) => b.op("Mul", [s, scale(part)]),
        };
      }
    }
  }

  /** A part (W^+ or W^-) of a weight, bias, scale or shift, shaped as the plain one. */
  #part(
    op: EvalConv | EvalLinear | EvalAffine,
    what: "weight" | "bias" | "scale" | "shift",
    part: WeightPart,
  ): string {
    return this.#consts.get(op, `${what}${part}`, () => {
      if (op.op === "affine") {
        const v = op[what as "scale" | "shift"];
        return this.b.constant(weightPart(v, part), [1, v.length, 1, 1]);
      }
      const v = what === "weight" ? op.weight : op.bias!;
      const dims = what === "bias"
        ? [v.length]
        : op.op === "conv"
        ? [op.co, op.ci, op.k, op.k]
        : [op.fout, op.fin];
      return this.b.constant(weightPart(v, part), dims);
    });
  }

  /** Input gradient of a constant-weight convolution (with weights W, W^+ or W^-). */
  #convInputGrad(op: EvalConv, dy: string, h: number, w: number, part: WeightPart = "w"): string {
    const b = this.b;
    if (op.stride === 1) {
      // Stride 1: a convolution of dy with the flipped, transposed kernel (NCHWc-friendly).
      const p = op.k - 1 - op.pad;
      const kernel = part === "w" ? this.#flipped(op) : this.#consts.get(
        op,
        `flipped${part}`,
        () => this.b.constant(weightPart(flipTranspose(op), part), [op.ci, op.co, op.k, op.k]),
      );
      return b.op("Conv", [dy, kernel], { kernel_shape: [op.k, op.k], pads: [p, p, p, p] });
    }
    const s = op.stride;
    const outPadH = h - ((convOut(h, op) - 1) * s - 2 * op.pad + op.k);
    const outPadW = w - ((convOut(w, op) - 1) * s - 2 * op.pad + op.k);
    return b.op("ConvTranspose", [dy, part === "w" ? this.#weight(op) : this.#part(op, "weight", part)], {
      kernel_shape: [op.k, op.k],
      strides: [s, s],
      pads: [op.pad, op.pad, op.pad, op.pad],
      output_padding: [outPadH, outPadW],
    });
  }

  #weight(op: EvalConv | EvalLinear): string {
    const dims = op.op === "conv" ? [op.co, op.ci, op.k, op.k] : [op.fout, op.fin];
    return this.#consts.get(op, "weight", () => this.b.constant(op.weight, dims));
  }

  #bias(op: EvalConv | EvalLinear): string | null {
    const bias = op.bias;
    return bias ? this.#consts.get(op, "bias", () => this.b.constant(bias, [bias.length])) : null;
  }

  #flipped(op: EvalConv): string {
    return this.#consts.get(
      op,
      "flipped",
      () => this.b.constant(flipTranspose(op), [op.ci, op.co, op.k, op.k]),
    );
  }

  #affine(op: EvalAffine, key: "scale" | "shift"): string {
    return this.#consts.get(op, key, () => this.b.constant(op[key], [1, op[key].length, 1, 1]));
  }
}

/** ONNX Conv attributes of a conv op. */
function convAttrs(op: EvalConv): Record<string, number[]> {
  return {
    kernel_shape: [op.k, op.k],
    strides: [op.stride, op.stride],
    pads: [op.pad, op.pad, op.pad, op.pad],
  };
}

/**
 * Output size of a convolution along one axis.
 *
 * @example
 * ```ts
 * import { convOut } from "./frozen_graphs.ts";
 * console.log(convOut(32, { k: 3, stride: 2, pad: 1 })); // 16
 * ```
 */
export function convOut(size: number, op: { k: number; stride: number; pad: number }): number {
  return Math.floor((size + 2 * op.pad - op.k) / op.stride) + 1;
}

/** W[o, i, kh, kw] -> W'[i, o, k-1-kh, k-1-kw]: the kernel of a stride-1 conv's input gradient. */
export function flipTranspose(op: EvalConv): Float32Array {
  const { co, ci, k } = op;
  const out = new Float32Array(op.weight.length);
  for (let o = 0; o < co; o++) {
    for (let i = 0; i < ci; i++) {
      for (let kh = 0; kh < k; kh++) {
        for (let kw = 0; kw < k; kw++) {
          out[((i * co + o) * k + (k - 1 - kh)) * k + (k - 1 - kw)] =
            op.weight[((o * ci + i) * k + kh) * k + kw];
        }
      }
    }
  }
  return out;
}
