/**
 * The fast frozen-graph compiler: the same graphs as {@link compileFrozen} (eval forward, input
 * gradient, whole oracle), emitted directly in onnxruntime's blocked NCHWc layout. Convolutions
 * (forward and input gradients) are MLAS NCHWc convolutions with pre-reordered constant kernels,
 * ReLUs and residual sums are fused into them (relu(conv(x) + residual) is one operator, and a
 * convolution's input gradient accumulates into the gradient already flowing to that value), and
 * ReLU masks work on blocked tensors directly, so no layout conversions happen between the
 * image input and the image gradient. LRP oracle graphs (lrp_graph.ts) run on the same blocked
 * values with ReLUs and sums unfused, since LRP reads the inputs of every layer and sum.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozenNchwc } from "./frozen_nchwc.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const bytes = compileFrozenNchwc(lowerEvalNet(g, initStateDict(g, 0)), 4, [3, 32, 32], { kind: "forward" }, 16);
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import { OnnxBuilder } from "../../onnx/builder.ts";
import type { EvalAffine, EvalConv, EvalLinear, EvalNet, EvalOp } from "./eval_net.ts";
import {
  ConstCache,
  convOut,
  emitFrozenGraph,
  flipTranspose,
  type ForwardValues,
  type FrozenEmitter,
  type FrozenGraphKind,
} from "./frozen_graphs.ts";
import { gradAccumulator } from "./grad_accumulator.ts";
import { emitRelevance, type LinearMap, type LrpHost, type WeightPart, weightPart } from "./lrp_graph.ts";
import type { RelevancePlan } from "../../oracle/rules.ts";
import { reluGrad } from "./relu_grad.ts";
import { NCHWC_DOMAIN, reorderKernel } from "./nchwc.ts";

/**
 * Whether `net` fits the blocked compiler with block size `block`: every convolution reads either
 * the image (fewer than `block` channels) or blocked activations, and all channel counts past
 * the stem are multiples of `block`.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { nchwcCompatible } from "./frozen_nchwc.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * console.log(nchwcCompatible(lowerEvalNet(g, initStateDict(g, 0)), 16)); // true
 * ```
 */
export function nchwcCompatible(net: EvalNet, block: number): boolean {
  if (block <= 1) return false;
  for (const op of net.ops) {
    if (op.op !== "conv") continue;
    if (op.co % block !== 0) return false;
    const fromImage = op.input === net.input;
    if (fromImage ? op.ci >= block : op.ci % block !== 0) return false;
  }
  return true;
}

/**
 * Serialises the ONNX model of `spec` in NCHWc form (same inputs and outputs as
 * {@link compileFrozen}); requires {@link nchwcCompatible}.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozenNchwc } from "./frozen_nchwc.ts";
 * const g = buildModel("wrn_16_2", { numClasses: 10 });
 * const spec = { kind: "input_gradient", reduction: "sum" } as const;
 * console.log(compileFrozenNchwc(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 32, 32], spec, 16).length > 0); // true
 * ```
 */
export function compileFrozenNchwc(
  net: EvalNet,
  n: number,
  image: readonly [number, number, number],
  spec: FrozenGraphKind,
  block: number,
): Uint8Array {
  if (!nchwcCompatible(net, block)) throw new Error(`${net.arch} does not fit NCHWc blocks of ${block}`);
  const b = new OnnxBuilder(`${net.arch}_${spec.kind}_nchwc`);
  // LRP reads the inputs of every sum and layer, so its graphs keep ReLUs and adds unfused.
  const fuse = !(spec.kind === "oracle" && spec.plan);
  return emitFrozenGraph(b, new BlockedEvalEmitter(b, net, n, image, block, fuse), net, n, image, spec);
}

/** How the forward pass fuses operators into NCHWc convolutions. */
interface FusionPlan {
  /** Convolutions (and affines) whose following ReLU runs inside them. */
  relu: Set<EvalOp>;
  /** Convolutions emitted at a later add, accumulating onto the add's other input. */
  deferred: Map<EvalOp, EvalOp>;
  /** Adds realised by a deferred convolution, with the ReLU fused after them if any. */
  addConv: Map<EvalOp, { conv: EvalConv; other: string; relu: EvalOp | null }>;
  /** Ops not emitted on their own (fused ReLUs). */
  skipped: Set<EvalOp>;
}

function planFusion(net: EvalNet, fuse = true): FusionPlan {
  const uses = new Map<string, EvalOp[]>();
  for (const op of net.ops) {
    for (const i of op.op === "conv" || op.op === "affine" || op.op === "linear" ? [op.input] : op.inputs) {
      uses.set(i, [...(uses.get(i) ?? []), op]);
    }
  }
  const soleUser = (value: string): EvalOp | null => {
    const u = uses.get(value) ?? [];
    return u.length === 1 && value !== net.output ? u[0] : null;
  };
  const producer = new Map(net.ops.map((op) => [op.output, op]));
  const plan: FusionPlan = { relu: new Set(), deferred: new Map(), addConv: new Map(), skipped: new Set() };
  if (!fuse) return plan;
  for (const op of net.ops) {
    if (op.op !== "add") continue;
    // Prefer the later-produced input, so the other one already exists at the add.
    const candidates = [...op.inputs].reverse();
    for (const input of candidates) {
      const conv = producer.get(input);
      if (conv?.op !== "conv" || soleUser(input) !== op || plan.deferred.has(conv)) continue;
      const other = op.inputs[0] === input ? op.inputs[1] : op.inputs[0];
      const next = soleUser(op.output);
      const relu = next?.op === "relu" ? next : null;
      plan.deferred.set(conv, op);
      plan.addConv.set(op, { conv, other, relu });
      if (relu) plan.skipped.add(relu);
      break;
    }
  }
  for (const op of net.ops) {
    if ((op.op !== "conv" && op.op !== "affine") || plan.deferred.has(op)) continue;
    const next = soleUser(op.output);
    if (next?.op === "relu") {
      plan.relu.add(op);
      plan.skipped.add(next);
    }
  }
  return plan;
}

/** Emits blocked eval forward, input-gradient and LRP subgraphs sharing one set of constants. */
class BlockedEvalEmitter implements FrozenEmitter, LrpHost {
  readonly #consts = new ConstCache();
  readonly #plan: FusionPlan;

  constructor(
    readonly b: OnnxBuilder,
    readonly net: EvalNet,
    readonly n: number,
    readonly image: readonly [number, number, number],
    readonly block: number,
    fuse = true,
  ) {
    this.#plan = planFusion(net, fuse);
  }

  relevance(fwd: ForwardValues, start: string, plan: RelevancePlan): string {
    return emitRelevance(this, fwd, start, plan);
  }

  channelBlock(c: number): number {
    return c % this.block === 0 ? this.block : 1;
  }

  linearMap(op: EvalConv | EvalLinear | EvalAffine, inShape: number[]): LinearMap {
    const b = this.b;
    const [, h, w] = inShape;
    switch (op.op) {
      case "conv":
        return {
          apply: (a, part, bias) => this.#conv(op, a, null, false, part, bias ?? null),
          transpose: (s, part) => this.#convInputGrad(op, s, null, h, w, part),
        };
      case "linear": {
        const weight = (part: WeightPart) =>
          part === "w" ? this.#linearWeight(op) : this.#consts.get(
            op,
            `weight${part}`,
            () => b.constant(weightPart(op.weight, part), [op.fout, op.fin]),
          );
        return {
          apply: (a, part, bias) => {
            const ins = [a, weight(part)];
            if (bias && op.bias) ins.push(this.#bias(op, op.fout, bias));
            return b.op("Gemm", ins, { transB: 1 });
          },
          transpose: (s, part) => b.op("MatMul", [s, weight(part)]),
        };
      }
      case "affine":
        return {
          apply: (a, part, bias) => this.#affineConv(op, a, bias !== undefined, false, part, bias ?? "w"),
          transpose: (s, part) => this.#affineConv(op, s, false, false, part),
        };
    }
  }

  /** The bias of a conv or linear op (or its positive part). */
  #bias(op: EvalConv | EvalLinear, len: number, part: WeightPart = "w"): string {
    const key = part === "w" ? "bias" : `bias${part}`;
    return this.#consts.get(op, key, () => this.b.constant(weightPart(op.bias!, part), [len]));
  }

  forward(x: string): ForwardValues {
    const { b } = this;
    const plan = this.#plan;
    const values = new Map([[this.net.input, x]]);
    const shapes = new Map<string, number[]>([[this.net.input, [...this.image]]]);
    const setConv = (op: EvalConv, out: string, name: string) => {
      const [, h, w] = shapes.get(op.input)!;
      values.set(name, out);
      shapes.set(name, [op.co, convOut(h, op), convOut(w, op)]);
    };
    for (const op of this.net.ops) {
      if (plan.skipped.has(op) || plan.deferred.has(op)) continue;
      switch (op.op) {
        case "conv": {
          const relu = plan.relu.has(op);
          const name = relu ? this.#soleReluOutput(op.output) : op.output;
          setConv(op, this.#conv(op, values.get(op.input)!, null, relu), name);
          if (relu) this.#alias(values, shapes, op.output, name);
          break;
        }
        case "affine": {
          const relu = plan.relu.has(op);
          const name = relu ? this.#soleReluOutput(op.output) : op.output;
          const out = this.#affineConv(op, values.get(op.input)!, true, relu);
          values.set(name, out);
          shapes.set(name, shapes.get(op.input)!);
          if (relu) this.#alias(values, shapes, op.output, name);
          break;
        }
        case "add": {
          const fused = plan.addConv.get(op);
          if (fused) {
            const name = fused.relu ? fused.relu.output : op.output;
            const out = this.#conv(
              fused.conv,
              values.get(fused.conv.input)!,
              values.get(fused.other)!,
              !!fused.relu,
            );
            setConv(fused.conv, out, name);
            break;
          }
          values.set(op.output, b.op("Add", op.inputs.map((i) => values.get(i)!)));
          shapes.set(op.output, shapes.get(op.inputs[0])!);
          break;
        }
        case "relu":
          values.set(op.output, b.op("Relu", [values.get(op.inputs[0])!]));
          shapes.set(op.output, shapes.get(op.inputs[0])!);
          break;
        case "global_avg_pool": {
          const [c] = shapes.get(op.inputs[0])!;
          const pooled = b.op("GlobalAveragePool", [values.get(op.inputs[0])!], {}, NCHWC_DOMAIN);
          values.set(op.output, b.op("Reshape", [pooled, b.int64s([this.n, c])]));
          shapes.set(op.output, [c]);
          break;
        }
        case "linear": {
          const ins = [values.get(op.input)!, this.#linearWeight(op)];
          if (op.bias) ins.push(this.#bias(op, op.fout));
          values.set(op.output, b.op("Gemm", ins, { transB: 1 }));
          shapes.set(op.output, [op.fout]);
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
          // Accumulate onto the gradient already pending for the input (residual paths).
          const acc = op.input === this.net.input ? null : take(op.input);
          const [, h, w] = fwd.shapes.get(op.input)!;
          push(op.input, this.#convInputGrad(op, dy, acc, h, w));
          break;
        }
        case "affine":
          push(op.input, this.#affineConv(op, dy, false, false));
          break;
        case "linear":
          push(op.input, b.op("MatMul", [dy, this.#linearWeight(op)]));
          break;
        case "relu":
          push(op.inputs[0], reluGrad(b, fwd.values.get(op.output)!, dy));
          break;
        case "add":
          for (const input of op.inputs) push(input, dy);
          break;
        case "global_avg_pool": {
          const [c, h, w] = fwd.shapes.get(op.inputs[0])!;
          const blk = this.block;
          const spread = b.op("Mul", [
            b.op("Reshape", [dy, b.int64s([this.n, c / blk, 1, blk])]),
            b.scalar(1 / (h * w)),
          ]);
          const full = b.op("Expand", [spread, b.int64s([this.n, c / blk, h * w, blk])]);
          push(op.inputs[0], b.op("Reshape", [full, b.int64s([this.n, c, h, w])]));
          break;
        }
      }
    }
    const dx = take(this.net.input);
    if (!dx) throw new Error(`${this.net.arch}: the logits do not depend on the input`);
    return dx;
  }

  /**
   * Blocked convolution with optional fused accumulation (`sum`) and ReLU; LRP passes use the
   * weights' positive or negative `part` and the bias or its positive part (null: no bias).
   */
  #conv(
    op: EvalConv,
    x: string,
    sum: string | null,
    relu: boolean,
    part: WeightPart = "w",
    biasPart: "w" | "pos" | null = "w",
  ): string {
    const ins = [x, this.#kernel(op, part)];
    const bias = op.bias && biasPart ? this.#bias(op, op.co, biasPart) : "";
    ins.push(bias);
    if (sum) ins.push(sum);
    const attrs: Record<string, number[] | string> = {
      kernel_shape: [op.k, op.k],
      strides: [op.stride, op.stride],
      pads: [op.pad, op.pad, op.pad, op.pad],
    };
    if (relu) attrs.activation = "Relu";
    return this.b.op("Conv", ins, attrs, NCHWC_DOMAIN);
  }

  /**
   * Input gradient of a convolution as a stride-1 NCHWc convolution with the flipped,
   * transposed kernel; strided convolutions first spread dy onto the input grid with zeros.
   * The image gradient (fewer channels than a block) is reordered back to NCHW.
   */
  #convInputGrad(
    op: EvalConv,
    dy: string,
    acc: string | null,
    h: number,
    w: number,
    part: WeightPart = "w",
  ): string {
    const b = this.b;
    const blk = this.block;
    let src = dy;
    const [oh, ow] = [convOut(h, op), convOut(w, op)];
    if (op.stride > 1) src = this.#zeroInsert(dy, op.co, oh, ow, op.stride);
    const pl = op.k - 1 - op.pad;
    const prH = h + op.k - 1 - op.stride * oh - pl;
    const prW = w + op.k - 1 - op.stride * ow - pl;
    if (prH < 0 || prW < 0) {
      throw new Error(`${this.net.arch}: unsupported strided geometry for ${op.output}`);
    }
    const toImage = op.input === this.net.input;
    const flipped = this.#consts.get(op, part === "w" ? "flipped" : `flipped${part}`, () => {
      const r = reorderKernel(weightPart(flipTranspose(op), part), op.ci, op.co, op.k, blk, true);
      return b.constant(r.data, r.dims);
    });
    const ins = [src, flipped, ""];
    if (acc) ins.push(acc);
    const g = b.op("Conv", ins, { kernel_shape: [op.k, op.k], pads: [pl, pl, prH, prW] }, NCHWC_DOMAIN);
    return toImage ? b.op("ReorderOutput", [g], { channels: op.ci }, NCHWC_DOMAIN) : g;
  }

  /** Spreads a blocked [n, c, oh, ow] tensor onto a grid `stride` times finer, zeros between. */
  #zeroInsert(v: string, c: number, oh: number, ow: number, stride: number): string {
    const b = this.b;
    const blk = this.block;
    const spread = b.op("Reshape", [v, b.int64s([this.n, c / blk, oh, 1, ow, 1, blk])]);
    const s = stride - 1;
    const padded = b.op("Pad", [spread, b.int64s([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, s, 0, s, 0])]);
    return b.op("Reshape", [padded, b.int64s([this.n, c, oh * stride, ow * stride])]);
  }

  /**
   * An eval BatchNorm's `x * scale (+ shift)` (optionally then ReLU) as a 1x1 depthwise NCHWc
   * convolution; without the shift it is the affine's input gradient.
   */
  #affineConv(
    op: EvalAffine,
    x: string,
    withShift: boolean,
    relu: boolean,
    part: WeightPart = "w",
    shiftPart: WeightPart = "w",
  ): string {
    const c = op.scale.length;
    const key = (k: string, p: WeightPart) => p === "w" ? k : `${k}${p}`;
    const ins = [
      x,
      this.#consts.get(
        op,
        key("scale", part),
        () => this.b.constant(weightPart(op.scale, part), [c, 1, 1, 1]),
      ),
    ];
    if (withShift) {
      ins.push(
        this.#consts.get(
          op,
          key("shift", shiftPart),
          () => this.b.constant(weightPart(op.shift, shiftPart), [c]),
        ),
      );
    }
    const attrs: Record<string, number | number[] | string> = { kernel_shape: [1, 1], group: c };
    if (relu) attrs.activation = "Relu";
    return this.b.op("Conv", ins, attrs, NCHWC_DOMAIN);
  }

  #kernel(op: EvalConv, part: WeightPart = "w"): string {
    return this.#consts.get(op, part === "w" ? "kernel" : `kernel${part}`, () => {
      const w = weightPart(op.weight, part);
      const r = reorderKernel(w, op.co, op.ci, op.k, this.block, op.input !== this.net.input);
      return this.b.constant(r.data, r.dims);
    });
  }

  #linearWeight(op: EvalLinear): string {
    return this.#consts.get(op, "weight", () => this.b.constant(op.weight, [op.fout, op.fin]));
  }

  #soleReluOutput(value: string): string {
    const relu = this.net.ops.find((o) => o.op === "relu" && o.inputs[0] === value)!;
    return relu.output;
  }

  /** Makes `from` an alias of `to` (a fused op's unmaterialised intermediate). */
  #alias(values: Map<string, string>, shapes: Map<string, number[]>, from: string, to: string): void {
    values.set(from, values.get(to)!);
    shapes.set(from, shapes.get(to)!);
  }
}
