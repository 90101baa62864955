/**
 * The layout half of the frozen-graph compiler: a {@link FrozenLayout} says how a layer that
 * touches activation layout is emitted (convolution, its input gradient, an unfolded BatchNorm's
 * per-channel map, global average pooling and its gradient, and which operators fuse), so the one
 * compiler (`frozen_graphs.ts`, op table `frozen_ops.ts`) writes every layer's forward, input
 * gradient and LRP pass once. {@link NCHW} is the portable plain layout; the blocked NCHWc
 * layout is `nchwcLayout` in `frozen_nchwc.ts`.
 *
 * @example
 * ```ts
 * import { NCHW } from "./frozen_layout.ts";
 * console.log(NCHW.graphSuffix === "", NCHW.channelBlock); // true 1
 * ```
 * @module
 */

import { convOut } from "../../graph.ts";
import type { OnnxBuilder } from "../../onnx/builder.ts";
import type { EvalAffine, EvalConv, EvalLinear, EvalNet, EvalOp } from "./eval_net.ts";
import { type FusionPlan, noFusion } from "./fusion_plan.ts";
import { poolGradNchw, poolNchw } from "./global_pool.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import { type WeightPart, weightPart } from "./lrp_graph.ts";

/**
 * Per-op constants (kernels, biases, scales) created on first use and shared by every pass of
 * one graph (forward-only graphs hold no flipped kernels).
 *
 * @example
 * ```ts
 * import { ConstCache } from "./frozen_layout.ts";
 * const c = new ConstCache();
 * const op = { op: "relu" as const, inputs: ["x"], output: "y" };
 * console.log(c.get(op, "k", () => "a"), c.get(op, "k", () => "b")); // a a
 * ```
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

/** What a layout's emitters read: the builder, the network, the batch size and the constants. */
export interface LayoutContext {
  /** The builder. */
  readonly b: OnnxBuilder;
  /** The lowered network. */
  readonly net: EvalNet;
  /** Batch size. */
  readonly n: number;
  /** The graph's constants. */
  readonly consts: ConstCache;
}

/** How the forward pass fuses operators into convolutions (fusion_plan.ts; empty where a layout does not fuse). */
export type FrozenFusion = FusionPlan<EvalOp, EvalConv>;

/** A frozen-graph activation layout: the layout-specific emitters of the one compiler. */
export interface FrozenLayout {
  /** Suffix of the ONNX graph name. */
  readonly graphSuffix: string;
  /** Throws when `net` cannot be compiled in this layout. */
  check(net: EvalNet): void;
  /** Which operators the forward pass fuses (`fuse` false: none, as LRP reads every layer). */
  fusion(net: EvalNet, fuse: boolean): FrozenFusion;
  /**
   * Channel block of the activations past the image (1: plain). The layout's `check` makes every
   * convolution's output channels a multiple of it.
   */
  readonly channelBlock: number;
  /**
   * Convolution of `x` with weights `part` and bias `bias` (null: none), optionally adding `sum`
   * and applying a ReLU (only where {@link fusion} asked for it).
   */
  conv(
    c: LayoutContext,
    op: EvalConv,
    x: string,
    sum: string | null,
    relu: boolean,
    part: WeightPart,
    bias: "w" | "pos" | null,
  ): string;
  /** Input gradient (transpose) of a convolution with weights `part` (LRP's linear maps). */
  convInputGrad(c: LayoutContext, op: EvalConv, dy: string, h: number, w: number, part: WeightPart): string;
  /**
   * The backward pass's input gradient of a convolution, pushed onto `grads` for its input in
   * whatever form the layout adds up best (plain; onto the pending gradient through a fused sum;
   * or the phase form of a strided convolution, strided_phases.ts).
   */
  pushConvInputGrad(
    c: LayoutContext,
    op: EvalConv,
    dy: string,
    grads: GradAccumulator,
    h: number,
    w: number,
  ): void;
  /** A BatchNorm's `x * scale (+ shift)`, optionally then ReLU; without shift it is its transpose. */
  batchNorm(
    c: LayoutContext,
    op: EvalAffine,
    x: string,
    withShift: boolean,
    relu: boolean,
    part: WeightPart,
    shiftPart: WeightPart,
  ): string;
  /** Global average pooling [n, c, h, w] -> [n, c]. */
  pool(c: LayoutContext, x: string, inShape: number[]): string;
  /** Gradient of global average pooling: [n, c] -> [n, c, h, w]. */
  poolGrad(c: LayoutContext, dy: string, inShape: number[]): string;
}

/** How a layout stores a weight part: the data and dims of its constant. */
export type ConstArrangement = (part: Float32Array) => { data: Float32Array; dims: number[] };

/**
 * The constant `name` of `op` holding weight part `part` of `data` (the data as is with `dims`,
 * or as `dims` arranges it), made on first use and shared by every pass of the graph.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { ConstCache, constPart } from "./frozen_layout.ts";
 * const c = { b: new OnnxBuilder("c"), consts: new ConstCache() };
 * const op = { op: "relu" as const, inputs: ["x"], output: "y" };
 * const data = new Float32Array([-1, 2]);
 * const pos = constPart(c, op, "scale", "pos", data, [2]);
 * console.log(pos === constPart(c, op, "scale", "pos", data, [2]), pos === constPart(c, op, "scale", "w", data, [2])); // true false
 * ```
 */
export function constPart(
  c: Pick<LayoutContext, "b" | "consts">,
  op: EvalOp,
  name: string,
  part: WeightPart,
  data: Float32Array,
  dims: number[] | ConstArrangement,
): string {
  return c.consts.get(op, part === "w" ? name : `${name}${part}`, () => {
    const w = weightPart(data, part);
    const r = typeof dims === "function" ? dims(w) : { data: w, dims };
    return c.b.constant(r.data, r.dims);
  });
}

/** The bias (or a part of it) of a conv or linear op as a constant [len]. */
export function biasConst(c: LayoutContext, op: EvalConv | EvalLinear, part: WeightPart): string {
  return constPart(c, op, "bias", part, op.bias!, [op.bias!.length]);
}

/**
 * W[o, i, kh, kw] -> W'[i, o, k-1-kh, k-1-kw]: the kernel of a stride-1 conv's input gradient,
 * for `weight` (the weights of a convolution of `op`'s sizes, or a part of them).
 *
 * @example
 * ```ts
 * import { flipTranspose } from "./frozen_layout.ts";
 * console.log(flipTranspose({ co: 1, ci: 1, k: 2 }, new Float32Array([1, 2, 3, 4]))); // Float32Array(4) [ 4, 3, 2, 1 ]
 * ```
 */
export function flipTranspose(op: Pick<EvalConv, "co" | "ci" | "k">, weight: Float32Array): Float32Array {
  const { co, ci, k } = op;
  const out = new Float32Array(weight.length);
  for (let o = 0; o < co; o++) {
    for (let i = 0; i < ci; i++) {
      for (let kh = 0; kh < k; kh++) {
        for (let kw = 0; kw < k; kw++) {
          out[((i * co + o) * k + (k - 1 - kh)) * k + (k - 1 - kw)] =
            weight[((o * ci + i) * k + kh) * k + kw];
        }
      }
    }
  }
  return out;
}

/** ONNX Conv attributes of a conv op. */
export function convAttrs(op: EvalConv): Record<string, number[]> {
  return {
    kernel_shape: [op.k, op.k],
    strides: [op.stride, op.stride],
    pads: [op.pad, op.pad, op.pad, op.pad],
  };
}

/** An OIHW conv weight (or a part of it) as a constant. */
function convWeight(c: LayoutContext, op: EvalConv, part: WeightPart): string {
  return constPart(c, op, "weight", part, op.weight, [op.co, op.ci, op.k, op.k]);
}

/**
 * The portable plain NCHW layout: standard ONNX operators, any channel count, no fusion.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * import { NCHW } from "./frozen_layout.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * console.log(compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 32, 32], { kind: "forward" }, NCHW).length > 0); // true
 * ```
 */
export const NCHW: FrozenLayout = {
  graphSuffix: "",
  check: () => {},
  fusion: () => noFusion(),
  channelBlock: 1,
  conv(c, op, x, _sum, _relu, part, bias) {
    const ins = [x, convWeight(c, op, part)];
    if (bias && op.bias) ins.push(biasConst(c, op, bias));
    return c.b.op("Conv", ins, convAttrs(op));
  },
  convInputGrad(c, op, dy, h, w, part) {
    const b = c.b;
    if (op.stride === 1) {
      // Stride 1: a convolution of dy with the flipped, transposed kernel (NCHWc-friendly).
      const p = op.k - 1 - op.pad;
      const kernel = constPart(c, op, "flipped", part, op.weight, (w) => ({
        data: flipTranspose(op, w),
        dims: [op.ci, op.co, op.k, op.k],
      }));
      return b.op("Conv", [dy, kernel], { kernel_shape: [op.k, op.k], pads: [p, p, p, p] });
    }
    const s = op.stride;
    const outPadH = h - ((convOut(h, op) - 1) * s - 2 * op.pad + op.k);
    const outPadW = w - ((convOut(w, op) - 1) * s - 2 * op.pad + op.k);
    return b.op("ConvTranspose", [dy, convWeight(c, op, part)], {
      kernel_shape: [op.k, op.k],
      strides: [s, s],
      pads: [op.pad, op.pad, op.pad, op.pad],
      output_padding: [outPadH, outPadW],
    });
  },
  pushConvInputGrad(c, op, dy, grads, h, w) {
    grads.push(op.input, NCHW.convInputGrad(c, op, dy, h, w, "w"));
  },
  batchNorm(c, op, x, withShift, _relu, part, shiftPart) {
    const perChannel = (key: "scale" | "shift", p: WeightPart) =>
      constPart(c, op, key, p, op[key], [1, op[key].length, 1, 1]);
    const y = c.b.op("Mul", [x, perChannel("scale", part)]);
    return withShift ? c.b.op("Add", [y, perChannel("shift", shiftPart)]) : y;
  },
  pool: (c, x) => poolNchw(c.b, x),
  poolGrad: (c, dy, shape) => poolGradNchw(c.b, c.n, dy, shape),
};
