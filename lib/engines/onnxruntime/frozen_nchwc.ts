/**
 * The blocked NCHWc layout of the frozen-graph compiler ({@link nchwcLayout}): the same graphs as
 * the plain layout (eval forward, input gradient, whole oracle), emitted directly in
 * onnxruntime's blocked NCHWc layout. Convolutions (forward and input gradients) are MLAS NCHWc
 * convolutions with pre-reordered constant kernels, ReLUs and residual sums are fused into them
 * (relu(conv(x) + residual) is one operator, and a convolution's input gradient accumulates into
 * the gradient already flowing to that value), and ReLU masks work on blocked tensors directly,
 * so no layout conversions happen between the image input and the image gradient. LRP oracle
 * graphs run on the same blocked values with ReLUs and sums unfused, since LRP reads the inputs
 * of every layer and sum.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * import { nchwcLayout } from "./frozen_nchwc.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const bytes = compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 4, [3, 32, 32], { kind: "forward" }, nchwcLayout(16));
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import { convOut } from "../../graph.ts";
import type { EvalConv, EvalNet, EvalOp } from "./eval_net.ts";
import {
  biasConst,
  constPart,
  flipTranspose,
  type FrozenLayout,
  type LayoutContext,
} from "./frozen_layout.ts";
import { noFusion, planFusion } from "./fusion_plan.ts";
import { poolGradNchwc, poolNchwc } from "./global_pool.ts";
import type { WeightPart } from "./lrp_graph.ts";
import { inputGradPads, NCHWC_DOMAIN, reorderKernel, zeroInsertBlocked } from "./nchwc.ts";
import {
  interleavePhases,
  phaseConv,
  phaseGeometry,
  phaseKernel,
  pushPhaseInputGrad,
} from "./strided_phases.ts";

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
 * The NCHWc layout with channel blocks of `block` (MLAS's block size: 16 with AVX-512, 8 with
 * AVX2); compiling a network with it requires {@link nchwcCompatible}.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * import { nchwcLayout } from "./frozen_nchwc.ts";
 * const g = buildModel("wrn_16_2", { numClasses: 10 });
 * const spec = { kind: "input_gradient", reduction: "sum" } as const;
 * console.log(compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 32, 32], spec, nchwcLayout(16)).length > 0); // true
 * ```
 */
export function nchwcLayout(block: number): FrozenLayout {
  const kernel = (c: LayoutContext, op: EvalConv, part: WeightPart) =>
    constPart(
      c,
      op,
      "kernel",
      part,
      op.weight,
      (w) => reorderKernel(w, op.co, op.ci, op.k, block, op.input !== c.net.input),
    );
  // A strided convolution between blocked activations (check() makes their channels whole
  // blocks): its phase geometry and constant phase kernel (weights `part`); null for stride 1 and
  // for the convolution reading the image, which flippedConv handles.
  const phaseForm = (c: LayoutContext, op: EvalConv, h: number, w: number, part: WeightPart) => {
    if (op.input === c.net.input) return null;
    const [oh, ow] = [convOut(h, op), convOut(w, op)];
    const geo = phaseGeometry({ h, w, oh, ow, k: op.k, stride: op.stride, pad: op.pad });
    if (!geo) return null;
    const kernel = constPart(c, op, "phases", part, op.weight, (v) => ({
      data: phaseKernel(v, op.co, op.ci, geo, block),
      dims: [geo.stride * geo.stride * op.ci, op.co, geo.taps, geo.taps],
    }));
    return { geo, kernel };
  };
  // A stride-1 NCHWc convolution of dy with the flipped, transposed kernel, adding `acc` (fused
  // sum); a strided one reading the image first spreads dy onto the input grid with zeros. The
  // image gradient (fewer channels than a block) is reordered back to NCHW.
  const flippedConv = (
    c: LayoutContext,
    op: EvalConv,
    dy: string,
    acc: string | null,
    h: number,
    w: number,
    part: WeightPart,
  ) => {
    const b = c.b;
    const [oh, ow] = [convOut(h, op), convOut(w, op)];
    const src = op.stride > 1
      ? zeroInsertBlocked(b, dy, { n: c.n, c: op.co, oh, ow, stride: op.stride, block })
      : dy;
    const pads = inputGradPads({ h, w, oh, ow, k: op.k, stride: op.stride, pad: op.pad });
    if (!pads) throw new Error(`${c.net.arch}: unsupported strided geometry for ${op.output}`);
    const [pl, prH, prW] = pads;
    const flipped = constPart(
      c,
      op,
      "flipped",
      part,
      op.weight,
      (v) => reorderKernel(flipTranspose(op, v), op.ci, op.co, op.k, block, true),
    );
    const ins = [src, flipped, ""];
    if (acc) ins.push(acc);
    const g = b.op("Conv", ins, { kernel_shape: [op.k, op.k], pads: [pl, pl, prH, prW] }, NCHWC_DOMAIN);
    return op.input === c.net.input ? b.op("ReorderOutput", [g], { channels: op.ci }, NCHWC_DOMAIN) : g;
  };
  return {
    graphSuffix: "_nchwc",
    check(net) {
      if (!nchwcCompatible(net, block)) throw new Error(`${net.arch} does not fit NCHWc blocks of ${block}`);
    },
    // ReLUs and residual sums fuse into the convolutions (none for LRP, which reads every layer).
    fusion: (net, fuse) => fuse ? planFusion(net.ops, net.output, evalInputs, isConv) : noFusion(),
    channelBlock: block,
    // Blocked convolution with optional fused accumulation (`sum`) and ReLU.
    conv(c, op, x, sum, relu, part, biasPart) {
      const ins = [x, kernel(c, op, part)];
      const bias = op.bias && biasPart ? biasConst(c, op, biasPart) : "";
      ins.push(bias);
      if (sum) ins.push(sum);
      const attrs: Record<string, number[] | string> = {
        kernel_shape: [op.k, op.k],
        strides: [op.stride, op.stride],
        pads: [op.pad, op.pad, op.pad, op.pad],
      };
      if (relu) attrs.activation = "Relu";
      return c.b.op("Conv", ins, attrs, NCHWC_DOMAIN);
    },
    // Strided convolutions between blocked activations take the phase form; the rest flippedConv.
    convInputGrad(c, op, dy, h, w, part) {
      const phases = phaseForm(c, op, h, w, part);
      if (!phases) return flippedConv(c, op, dy, null, h, w, part);
      const { geo, kernel } = phases;
      return interleavePhases(c.b, phaseConv(c.b, dy, kernel, geo, null), geo, { n: c.n, c: op.ci, block });
    },
    // The oracle's backward pass: strided convolutions' phase-form gradients of one input add up
    // before a single interleave (strided_phases.ts); the others add onto the gradient already
    // pending for their input (residual paths) through the convolution's fused sum.
    pushConvInputGrad(c, op, dy, grads, h, w) {
      const phases = phaseForm(c, op, h, w, "w");
      if (phases) {
        pushPhaseInputGrad(c.b, grads, op.input, dy, phases.kernel, phases.geo, { n: c.n, c: op.ci, block });
        return;
      }
      const acc = op.input !== c.net.input ? grads.take(op.input) : null;
      grads.push(op.input, flippedConv(c, op, dy, acc, h, w, "w"));
    },
    // `x * scale (+ shift)` (optionally then ReLU) as a 1x1 depthwise NCHWc convolution.
    batchNorm(c, op, x, withShift, relu, part, shiftPart) {
      const ch = op.scale.length;
      const ins = [x, constPart(c, op, "scale", part, op.scale, [ch, 1, 1, 1])];
      if (withShift) ins.push(constPart(c, op, "shift", shiftPart, op.shift, [ch]));
      const attrs: Record<string, number | number[] | string> = { kernel_shape: [1, 1], group: ch };
      if (relu) attrs.activation = "Relu";
      return c.b.op("Conv", ins, attrs, NCHWC_DOMAIN);
    },
    pool: (c, x, [ch]) => poolNchwc(c.b, c.n, x, ch),
    poolGrad: (c, dy, shape) => poolGradNchwc(c.b, c.n, block, dy, shape),
  };
}

/** The values an eval op reads. */
const evalInputs = (op: EvalOp): readonly string[] => "input" in op ? [op.input] : op.inputs;

/** Convolutions defer to the add they feed (an unfolded BatchNorm's emitter has no sum). */
const isConv = (op: EvalOp): op is EvalConv => op.op === "conv";
