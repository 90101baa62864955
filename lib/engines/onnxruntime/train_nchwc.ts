/**
 * The fast training-step compiler: the same graph contract as {@link compileTrainStep}, with the
 * activations in onnxruntime's blocked NCHWc layout. Kernels are graph inputs reordered inside
 * the graph (a few kilobytes), so every forward convolution and every input-gradient convolution
 * runs on MLAS's direct NCHWc kernels. BatchNorm is applied as a 1x1 depthwise NCHWc convolution
 * that also adds the residual and applies the ReLU (one pass for `relu(bn(x) + shortcut)`), and
 * its backward is two such passes. Weight gradients of stride-1 convolutions multiply row-shifted
 * NCHW copies of the input by column-shifted copies of dy (each channel block of the blocked
 * layout is a channels-last matrix), one MatMul per kernel column per image, summed over the
 * batch; strided ones use the k*k windows of the input. Input gradients of strided convolutions
 * take the phase form (strided_phases.ts): a small convolution of dy on its own grid, no
 * zero-inserted copy.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStepNchwc } from "./train_nchwc.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const sgd = { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 };
 * console.log(compileTrainStepNchwc(g, { n: 4, image: [3, 32, 32], withTeacher: true, sgd }, 16).length > 0); // true
 * ```
 * @module
 */

import { type BatchNormNode, type ConvNode, convOut, type Graph, type GraphNode } from "../../graph.ts";
import { type ConvGeometry, flippedKernelOp, shiftedWindows } from "./conv_grad.ts";
import { type FusionPlan, planFusion } from "./fusion_plan.ts";
import { poolGradNchwc, poolNchwc } from "./global_pool.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import { inputGradPads, NCHWC_DOMAIN, reorderKernelOp } from "./nchwc.ts";
import { phaseGeometry, phaseKernelOp, pushPhaseInputGrad } from "./strided_phases.ts";
import type { TrainGraphSpec } from "./train_common.ts";
import { type BnStats, TrainEmitter } from "./train_emitter.ts";

/**
 * Whether `graph` fits blocks of `block` channels: convolutions read the image (fewer than
 * `block` channels) or blocked activations, and all other channel counts are multiples.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { trainNchwcCompatible } from "./train_nchwc.ts";
 * console.log(trainNchwcCompatible(buildModel("wrn_16_2"), 16), trainNchwcCompatible(buildModel("resnet8"), 0)); // true false
 * ```
 */
export function trainNchwcCompatible(graph: Graph, block: number): boolean {
  if (block <= 1) return false;
  const shapes = new Map(graph.params.map((p) => [p.name, p.shape]));
  for (const node of graph.nodes) {
    if (node.op !== "conv") continue;
    const [co, ci] = shapes.get(node.weight)!;
    if (co % block !== 0) return false;
    if (node.inputs[0] === graph.input ? ci >= block : ci % block !== 0) return false;
  }
  return true;
}

/**
 * Serialises the training-step model of `graph` in NCHWc form; requires
 * {@link trainNchwcCompatible}.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStepNchwc } from "./train_nchwc.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * const sgd = { momentum: 0, weightDecay: 0, nesterov: false, dampening: 0 };
 * console.log(compileTrainStepNchwc(g, { n: 2, image: [3, 32, 32], withTeacher: false, sgd }, 16).length > 0); // true
 * ```
 */
export function compileTrainStepNchwc(graph: Graph, spec: TrainGraphSpec, block: number): Uint8Array {
  if (!trainNchwcCompatible(graph, block)) {
    throw new Error(`${graph.arch} does not fit NCHWc blocks of ${block}`);
  }
  return new BlockedTrainEmitter(graph, spec, block).emit();
}

/**
 * The row length for staged sums over `spatial` values: its largest divisor not above its square
 * root (the image width for square images).
 *
 * @example
 * ```ts
 * import { rowLength } from "./train_nchwc.ts";
 * console.log(rowLength(1024), rowLength(64), rowLength(7)); // 32 8 1
 * ```
 */
export function rowLength(spatial: number): number {
  for (let r = Math.floor(Math.sqrt(spatial)); r > 1; r--) if (spatial % r === 0) return r;
  return 1;
}

/** The forward pass's fusions: convolutions and BatchNorms both defer to the add they feed. */
type TrainFusion = FusionPlan<GraphNode, ConvNode | BatchNormNode>;

/** A convolution or BatchNorm (either can accumulate onto a residual sum). */
const isFusable = (node: GraphNode): node is ConvNode | BatchNormNode =>
  node.op === "batchnorm" || node.op === "conv";

/** What the backward pass needs from one train-mode BatchNorm. */
interface BnSaved extends BnStats {
  centered: string;
  invStd: string;
}

/**
 * Row shifts of a weight gradient's input come from one grouped NCHW convolution at this height
 * and above, from k one-hot depthwise NCHWc convolutions below (resnet20's weight gradients, 2
 * threads: 2.9 vs 3.6 ms at 16 channels of 32x32, 1.4 vs 1.6 at 32 of 16x16, 1.0 vs 0.6 at 64 of
 * 8x8).
 */
const GROUPED_ROW_SHIFTS_MIN_HEIGHT = 16;

class BlockedTrainEmitter extends TrainEmitter<BnSaved> {
  readonly plan: TrainFusion;

  constructor(graph: Graph, spec: TrainGraphSpec, readonly block: number) {
    super(graph, spec, `${graph.arch}_train_step_nchwc`);
    this.plan = planFusion(graph.nodes, graph.output, (node) => node.inputs, isFusable);
  }

  /**
   * The fusion plan's groups: ReLUs and adds computed inside a convolution or BatchNorm are
   * skipped, and a deferred convolution or BatchNorm is emitted at its add, accumulating onto the
   * add's other input.
   */
  protected override forwardFused(node: GraphNode): boolean {
    const plan = this.plan;
    if (plan.skipped.has(node) || plan.deferred.has(node)) return true;
    const fused = plan.atAdd.get(node);
    if (!fused) return false;
    this.#emitFusable(fused.node, this.values.get(fused.other)!, fused.relu);
    // The add's own output is only needed when no ReLU follows it inside the fusion.
    if (!fused.relu) this.#alias(node.output, fused.node.output);
    return true;
  }

  convForward(node: ConvNode): void {
    this.#emitFusable(node, null, this.plan.relu.get(node) ?? null);
  }

  batchNormForward(node: BatchNormNode): void {
    this.#emitFusable(node, null, this.plan.relu.get(node) ?? null);
  }

  poolForward(node: GraphNode): void {
    const [c] = this.shapes.get(node.inputs[0])!;
    this.set(node.output, poolNchwc(this.b, this.n, this.values.get(node.inputs[0])!, c), [c]);
  }

  /** A conv or BatchNorm, optionally accumulating `sum` and applying a fused ReLU. */
  #emitFusable(node: ConvNode | BatchNormNode, sum: string | null, relu: GraphNode | null): void {
    const input = node.inputs[0];
    const [c, h, w] = this.shapes.get(input)!;
    let out: string;
    let shape = [c, h, w];
    if (node.op === "conv") {
      const [co, ci, k] = this.shapeOf(node.weight);
      const kernel = reorderKernelOp(
        this.b,
        this.params.get(node.weight)!,
        co,
        ci,
        k,
        this.block,
        input !== this.graph.input,
      );
      const ins = [this.values.get(input)!, kernel, node.bias ? this.params.get(node.bias)! : ""];
      if (sum) ins.push(sum);
      const attrs: Record<string, number[] | string> = {
        kernel_shape: [k, k],
        strides: [node.stride, node.stride],
        pads: [node.pad, node.pad, node.pad, node.pad],
      };
      if (relu) attrs.activation = "Relu";
      out = this.b.op("Conv", ins, attrs, NCHWC_DOMAIN);
      const geo = { k, stride: node.stride, pad: node.pad };
      shape = [co, convOut(h, geo), convOut(w, geo)];
    } else {
      out = this.#batchNormForward(node, this.values.get(input)!, c, h * w, sum, relu !== null);
    }
    this.set(node.output, out, shape);
    if (relu) this.#alias(relu.output, node.output);
  }

  /**
   * Train-mode BatchNorm on a blocked tensor: batch mean, centred values (a depthwise pass),
   * biased variance, then `xc * gamma / sqrt(var + eps) + beta` (+ `sum`, then ReLU) in one
   * depthwise pass.
   */
  #batchNormForward(
    node: BatchNormNode,
    x: string,
    c: number,
    spatial: number,
    sum: string | null,
    relu: boolean,
  ): string {
    const b = this.b;
    const count = this.n * spatial;
    const invCount = b.scalar(1 / count);
    const mean = b.op("Mul", [this.#channelSum(x, c, spatial, "ReduceSum"), invCount]);
    const centered = this.#depthwise(x, this.#filled(c, 1), b.op("Neg", [mean]), null, false, c);
    const variance = b.op("Mul", [this.#channelSum(centered, c, spatial, "ReduceSumSquare"), invCount]);
    const invStd = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [variance, b.scalar(node.eps)])])]);
    this.bnSaved.set(node.name, { centered, invStd, mean, variance, count });
    const scale = b.op("Mul", [this.params.get(node.weight)!, invStd]);
    return this.#depthwise(centered, this.#asKernel(scale, c), this.params.get(node.bias)!, sum, relu, c);
  }

  /**
   * Weight (and bias) gradients of a convolution, and its input gradient unless it reads the
   * image: for a strided convolution in phase form (strided_phases.ts), which covers every
   * geometry the zero-inserted form did; for stride 1 a blocked convolution with the flipped
   * kernel that adds onto the gradient already pending for the input (fused sum).
   */
  convBackward(node: ConvNode, dy: string, grads: GradAccumulator): void {
    const b = this.b;
    const g = this.convGeometry(node);
    const { co, ci, k, oh, ow } = g;
    this.grads.set(node.weight, this.#weightGrad(node, dy, g));
    if (node.bias) this.grads.set(node.bias, this.#channelSum(dy, co, oh * ow, "ReduceSum"));
    const input = node.inputs[0];
    if (input === this.graph.input) return;
    const unsupported = () => new Error(`${this.graph.arch}: unsupported strided geometry at ${node.name}`);
    if (node.stride > 1) {
      const phases = phaseGeometry(g);
      if (!phases) throw unsupported();
      const kernel = phaseKernelOp(b, this.params.get(node.weight)!, co, ci, phases, this.block);
      pushPhaseInputGrad(b, grads, input, dy, kernel, phases, { n: this.n, c: ci, block: this.block });
      return;
    }
    // Flipped, transposed kernel [ci, co, k, k], reordered for a blocked input.
    const flipped = flippedKernelOp(b, this.params.get(node.weight)!, k);
    const kernel = reorderKernelOp(b, flipped, ci, co, k, this.block, true);
    const pads = inputGradPads(g);
    if (!pads) throw unsupported();
    const [pl, prH, prW] = pads;
    const ins = [dy, kernel, ""];
    const acc = grads.take(input);
    if (acc) ins.push(acc);
    grads.push(input, b.op("Conv", ins, { kernel_shape: [k, k], pads: [pl, pl, prH, prW] }, NCHWC_DOMAIN));
  }

  poolBackward(node: GraphNode, dy: string): string {
    return poolGradNchwc(this.b, this.n, this.block, dy, this.shapes.get(node.inputs[0])!);
  }

  /**
   * dW [co, ci, k, k]. Stride-1 convolutions use {@link #weightGradRowShifts}; strided ones
   * {@link #weightGradWindows}; with `weightGrad: "batch_folded"` (convolutions on blocked
   * activations) {@link #weightGradFoldedShifts} and the folded form of the windows.
   */
  #weightGrad(node: ConvNode, dy: string, g: ConvGeometry): string {
    // batch_folded: one GEMM per convolution over the whole batch; measured slower than the
    // per-image products here on 2 threads (tools/profile_train_step.ts), so not the default.
    const folded = this.spec.weightGrad === "batch_folded" && node.inputs[0] !== this.graph.input;
    if (node.stride === 1 && g.k > 1) {
      return folded ? this.#weightGradFoldedShifts(node, dy, g) : this.#weightGradRowShifts(node, dy, g);
    }
    return this.#weightGradWindows(node, dy, g, folded);
  }

  /**
   * Stride-1 dW as one GEMM over the whole batch: the k row-shifted copies of the input
   * (padded-width grid, one-hot k x 1 depthwise convolutions) channels-last side by side,
   * A = [n*h*(w+2p), (kh, ci)], and the k column-shifted copies of dy likewise,
   * B = [n*h*(w+2p), (kw, co)]; A^T B = [(kh, ci), (kw, co)] holds every tap's [ci, co] block.
   * The batch lies in the product's inner dimension, so no per-image products and no sum over
   * them; positions off the image are zero in B.
   */
  #weightGradFoldedShifts(node: ConvNode, dy: string, { co, ci, k, h, w }: ConvGeometry): string {
    const b = this.b;
    const p = node.pad;
    const x = this.values.get(node.inputs[0])!;
    const positions = this.n * h * (w + 2 * p);
    const rows = Array.from({ length: k }, (_, kh) => this.#rowShift(x, ci, k, p, kh));
    const columns = Array.from({ length: k }, (_, kw) => this.#columnShift(dy, co, k, p, kw));
    const product = b.op("Gemm", [
      this.#stackChannelsLast(rows, ci, positions),
      this.#stackChannelsLast(columns, co, positions),
    ], { transA: 1 });
    // [(kh, ci), (kw, co)] -> [co, ci, kh, kw].
    return b.op("Transpose", [b.op("Reshape", [product, b.int64s([k, ci, k, co])])], { perm: [3, 1, 0, 2] });
  }

  /**
   * Blocked tensors of `c` channels each, as one channels-last matrix [positions, parts * c]
   * (part-major columns): for one block a concatenation of the blocked data as it is, else the
   * blocked concatenation reordered once.
   */
  #stackChannelsLast(parts: string[], c: number, positions: number): string {
    const b = this.b;
    if (c === this.block) {
      const flat = parts.map((v) => b.op("Reshape", [v, b.int64s([positions, c])]));
      return flat.length === 1 ? flat[0] : b.op("Concat", flat, { axis: 1 });
    }
    const blocked = parts.length === 1 ? parts[0] : b.op("Concat", parts, { axis: 1 });
    const last = b.op(
      "ReorderOutput",
      [blocked],
      { channels: parts.length * c, channels_last: 1 },
      NCHWC_DOMAIN,
    );
    return b.op("Reshape", [last, b.int64s([positions, parts.length * c])]);
  }

  /**
   * Stride-1 dW with k shifted copies of each operand instead of k*k windows: the input in
   * channel-major rows (NCHW) on the padded-width grid, one copy per row offset kh, stacked into
   * [n, k*ci, h*(w+2p)]; dy on the same grid, one copy per column offset kw, left blocked: each
   * channel block [h*(w+2p), B] is a channels-last matrix. One batched MatMul per kw,
   * [k*ci, h*(w+2p)] x [h*(w+2p), B] per image and block (the large operand on the left: MLAS
   * runs this orientation about twice as fast as dy^T x window), then a sum over the batch. The
   * shifted copies come from one-hot convolutions (multi-threaded, zero fill included) rather
   * than Pad/Slice (single-threaded): for the input at
   * {@link GROUPED_ROW_SHIFTS_MIN_HEIGHT} and above one grouped NCHW convolution writing the
   * stacked operand, below it k depthwise NCHWc ones reordered and joined.
   */
  #weightGradRowShifts(node: ConvNode, dy: string, { co, ci, k, h, w }: ConvGeometry): string {
    const b = this.b;
    const p = node.pad;
    const input = node.inputs[0];
    const x = this.values.get(input)!;
    const wp = w + 2 * p;
    const fromImage = input === this.graph.input;
    // Row-shifted input copies on the padded-width grid, stacked [n, k * ci, h * wp]: kh-major
    // (kh, ci) from k copies, or ci-major (ci, kh) from one grouped convolution.
    let stacked: string;
    let ciMajor = false;
    if (fromImage) {
      const padded = p > 0 ? b.op("Pad", [x, b.int64s([0, 0, p, p, 0, 0, p, p])]) : x;
      stacked = b.op(
        "Concat",
        Array.from(
          { length: k },
          (_, kh) => b.op("Slice", [padded, b.int64s([kh]), b.int64s([kh + h]), b.int64s([2])]),
        ),
        { axis: 1 },
      );
    } else if (h >= GROUPED_ROW_SHIFTS_MIN_HEIGHT) {
      // The input in NCHW once, then one grouped k x 1 convolution (k one-hot outputs per
      // channel) writes every shift, width padding included, straight into the stacked layout.
      const plain = b.op("ReorderOutput", [x], { channels: ci }, NCHWC_DOMAIN);
      stacked = b.op("Conv", [plain, this.#rowShiftsKernel(ci, k)], {
        kernel_shape: [k, 1],
        pads: [p, p, p, p],
        group: ci,
      });
      ciMajor = true;
    } else {
      // k x 1 one-hot depthwise convolutions: row shift and width padding in one pass.
      stacked = b.op(
        "Concat",
        Array.from(
          { length: k },
          (_, kh) => b.op("ReorderOutput", [this.#rowShift(x, ci, k, p, kh)], { channels: ci }, NCHWC_DOMAIN),
        ),
        { axis: 1 },
      );
    }
    // [n, 1, k * ci, h * wp]: one operand for every channel block of dy.
    stacked = b.op("Reshape", [stacked, b.int64s([this.n, 1, k * ci, h * wp])]);
    // Column-shifted dy copies, one per kw, as they come blocked: [n, cb, h * wp, B], so each
    // block is a channels-last matrix and no reorder to channels-last is needed.
    const cb = co / this.block;
    const columns = Array.from(
      { length: k },
      (_, kw) =>
        b.op("Reshape", [this.#columnShift(dy, co, k, p, kw), b.int64s([this.n, cb, h * wp, this.block])]),
    );
    // One MatMul per kw with the kh copies stacked (M = k * ci; nine M = ci products measured
    // the same), broadcast over dy's channel blocks: [n, cb, k * ci, B].
    // Each product summed over n before the kw results are joined (joining the per-image
    // products first copied n times more).
    const summed = b.op(
      "Concat",
      columns.map((c) => b.op("ReduceSum", [b.op("MatMul", [stacked, c]), b.int64s([0])], { keepdims: 0 })),
      { axis: 0 },
    );
    // [kw, cb, (kh, ci) or (ci, kh), B] -> [(cb, B) = co, ci, kh, kw].
    const dims = ciMajor ? [k, cb, ci, k, this.block] : [k, cb, k, ci, this.block];
    const t = b.op("Transpose", [b.op("Reshape", [summed, b.int64s(dims)])], {
      perm: ciMajor ? [1, 4, 2, 3, 0] : [1, 4, 3, 2, 0],
    });
    return b.op("Reshape", [t, b.int64s([co, ci, k, k])]);
  }

  /**
   * The grouped k x 1 kernel [c * k, 1, k, 1] whose output channel `c * k + kh` copies channel c
   * shifted by row offset kh (plain NCHW, for {@link #weightGradRowShifts}).
   */
  #rowShiftsKernel(c: number, k: number): string {
    return this.constant(`row_shifts:${c}:${k}`, [c * k, 1, k, 1], (data) => {
      for (let i = 0; i < c * k; i++) data[i * k + (i % k)] = 1;
    });
  }

  /**
   * The input shifted by row offset `kh` on the padded-width grid (k x 1 one-hot depthwise
   * convolution: row shift and width padding in one multi-threaded pass), blocked.
   */
  #rowShift(x: string, c: number, k: number, p: number, kh: number): string {
    return this.b.op("Conv", [x, this.#shiftKernel(c, k, 1, kh)], {
      kernel_shape: [k, 1],
      pads: [p, p, p, p],
      group: c,
    }, NCHWC_DOMAIN);
  }

  /** dy shifted by column offset `kw` onto the padded-width grid (1 x k one-hot depthwise convolution), blocked. */
  #columnShift(dy: string, c: number, k: number, p: number, kw: number): string {
    return this.b.op("Conv", [dy, this.#shiftKernel(c, 1, k, k - 1 - kw)], {
      kernel_shape: [1, k],
      pads: [0, k - 1, 0, k - 1 - (2 * p - (k - 1))],
      group: c,
    }, NCHWC_DOMAIN);
  }

  /**
   * A one-hot depthwise kernel [c, 1, kh, kw] selecting tap `tap` (row-major), for shifts; in
   * NCHWc depthwise order ([c/B, 1, kh, kw, B]).
   */
  #shiftKernel(c: number, kh: number, kw: number, tap: number): string {
    const taps = kh * kw;
    return this.constant(`shift:${c}:${kh}x${kw}:${tap}`, [c, 1, kh, kw], (data) => {
      for (let i = 0; i < c; i++) {
        data[(Math.floor(i / this.block) * taps + tap) * this.block + (i % this.block)] = 1;
      }
    });
  }

  /**
   * dW of a strided or 1x1 convolution from its k*k input windows: each window [n, ci, oh, ow]
   * of a blocked input is cut by a one-hot depthwise convolution with the convolution's stride
   * and padding (onnxruntime's strided Slice is far slower), reordered to NCHW, stacked into
   * [n, k*k*ci, oh*ow] and multiplied by each blocked channel block of dy [oh*ow, B] per image; windows of
   * the plain NCHW image are Pad and strided Slices. `folded` (weightGrad `batch_folded`) puts
   * the blocked windows side by side channels-last instead, for one GEMM over the whole batch.
   */
  #weightGradWindows(
    node: ConvNode,
    dy: string,
    { co, ci, k, oh, ow }: ConvGeometry,
    folded: boolean,
  ): string {
    const b = this.b;
    const { stride: s, pad: p } = node;
    if (folded) {
      // Blocked windows side by side channels-last, [n*oh*ow, (kh, kw, ci)], against dy
      // channels-last [n*oh*ow, co]: one GEMM over the whole batch.
      const x = this.values.get(node.inputs[0])!;
      const taps = Array.from(
        { length: k * k },
        (_, tap) =>
          k === 1 && s === 1 && p === 0 ? x : b.op("Conv", [x, this.#shiftKernel(ci, k, k, tap)], {
            kernel_shape: [k, k],
            strides: [s, s],
            pads: [p, p, p, p],
            group: ci,
          }, NCHWC_DOMAIN),
      );
      const positions = this.n * oh * ow;
      const product = b.op("Gemm", [
        this.#stackChannelsLast(taps, ci, positions),
        this.#stackChannelsLast([dy], co, positions),
      ], { transA: 1 });
      return b.op("Transpose", [b.op("Reshape", [product, b.int64s([k, k, ci, co])])], {
        perm: [3, 2, 0, 1],
      });
    }
    const input = node.inputs[0];
    const x = this.values.get(input)!;
    // The image is plain NCHW (Pad and strided Slices, as in the NCHW compiler); blocked
    // activations are cut by one-hot depthwise convolutions.
    const windows = input === this.graph.input
      ? shiftedWindows(b, x, { k, stride: s, pad: p, oh, ow })
      : Array.from({ length: k * k }, (_, tap) => {
        const win = k === 1 && s === 1 && p === 0 ? x : b.op("Conv", [x, this.#shiftKernel(ci, k, k, tap)], {
          kernel_shape: [k, k],
          strides: [s, s],
          pads: [p, p, p, p],
          group: ci,
        }, NCHWC_DOMAIN);
        return b.op("ReorderOutput", [win], { channels: ci }, NCHWC_DOMAIN);
      });
    const positions = oh * ow;
    const stacked = b.op("Reshape", [
      windows.length === 1 ? windows[0] : b.op("Concat", windows, { axis: 1 }),
      b.int64s([this.n, k * k * ci, positions]),
    ]);
    // dy as it comes blocked, [n, cb, oh*ow, B]: each channel block is a channels-last matrix.
    const cb = co / this.block;
    const dyBlocks = b.op("Reshape", [dy, b.int64s([this.n, cb, positions, this.block])]);
    const product = b.op("MatMul", [
      b.op("Reshape", [stacked, b.int64s([this.n, 1, k * k * ci, positions])]),
      dyBlocks,
    ]);
    // [n, cb, (kh, kw, ci), B] summed over n -> [(cb, B) = co, ci, kh, kw].
    const summed = b.op("ReduceSum", [product, b.int64s([0])], { keepdims: 0 });
    const t = b.op("Transpose", [b.op("Reshape", [summed, b.int64s([cb, k, k, ci, this.block])])], {
      perm: [0, 4, 3, 1, 2],
    });
    return b.op("Reshape", [t, b.int64s([co, ci, k, k])]);
  }

  /**
   * Train-mode BatchNorm backward (PyTorch's formula) with xc = x - mean:
   * dx = dy * A - xc * (k * A) - mean(dy) * A, A = gamma * invstd, k = invstd^2 * mean(dy * xc),
   * as two depthwise passes; dgamma = sum(dy * xc) * invstd, dbeta = sum(dy).
   */
  batchNormBackward(node: BatchNormNode, dy: string): string {
    const b = this.b;
    const s = this.bnSaved.get(node.name)!;
    const [c, h, w] = this.shapes.get(node.inputs[0])!;
    const spatial = h * w;
    const sumDy = this.#channelSum(dy, c, spatial, "ReduceSum");
    const dot = this.#channelSum(b.op("Mul", [dy, s.centered]), c, spatial, "ReduceSum");
    this.grads.set(node.weight, b.op("Mul", [dot, s.invStd]));
    this.grads.set(node.bias, sumDy);
    const invCount = b.scalar(1 / s.count);
    const scaleDy = b.op("Mul", [this.params.get(node.weight)!, s.invStd]);
    const k = b.op("Mul", [b.op("Mul", [b.op("Mul", [dot, s.invStd]), s.invStd]), invCount]);
    const scaleXc = b.op("Neg", [b.op("Mul", [k, scaleDy])]);
    const shift = b.op("Neg", [b.op("Mul", [b.op("Mul", [sumDy, invCount]), scaleDy])]);
    const dyPart = this.#depthwise(dy, this.#asKernel(scaleDy, c), null, null, false, c);
    return this.#depthwise(s.centered, this.#asKernel(scaleXc, c), shift, dyPart, false, c);
  }

  /**
   * Per-channel sums [c] of a blocked tensor (sum of squares with ReduceSumSquare), in three
   * short stages: along image rows, over the rows, over the batch. onnxruntime accumulates each
   * reduction in one float32 running sum; summing a channel's H*W values per image in one pass
   * leaves the batch variance a few ulps off (PyTorch sums in double), a single pass over all
   * N*H*W values about 1e-5 relative off, enough to flip ReLU kinks downstream.
   */
  #channelSum(v: string, c: number, spatial: number, op: "ReduceSum" | "ReduceSumSquare"): string {
    const b = this.b;
    const cb = c / this.block;
    const row = rowLength(spatial);
    const rows = b.op(op, [
      b.op("Reshape", [v, b.int64s([this.n * cb, spatial / row, row, this.block])]),
      b.int64s([2]),
    ], { keepdims: 0 });
    const perImage = b.op("ReduceSum", [rows, b.int64s([1])], { keepdims: 0 });
    return b.op("ReduceSum", [b.op("Reshape", [perImage, b.int64s([this.n, c])]), b.int64s([0])], {
      keepdims: 0,
    });
  }

  /** Per-channel `x * scale + bias` (+ sum, then ReLU) as a 1x1 depthwise NCHWc convolution. */
  #depthwise(
    x: string,
    kernel: string,
    bias: string | null,
    sum: string | null,
    relu: boolean,
    c: number,
  ): string {
    const attrs: Record<string, number | number[] | string> = { kernel_shape: [1, 1], group: c };
    if (relu) attrs.activation = "Relu";
    const ins = [x, kernel, bias ?? ""];
    if (sum) ins.push(sum);
    return this.b.op("Conv", ins, attrs, NCHWC_DOMAIN);
  }

  /** A [c] vector as a depthwise kernel [c, 1, 1, 1]. */
  #asKernel(v: string, c: number): string {
    return this.b.op("Reshape", [v, this.b.int64s([c, 1, 1, 1])]);
  }

  /** A constant depthwise kernel [c, 1, 1, 1] filled with `v`. */
  #filled(c: number, v: number): string {
    return this.constant(`${c}:${v}`, [c, 1, 1, 1], (data) => data.fill(v));
  }

  /** A blocked activation in plain NCHW (diagnostics: exposeForward). */
  plain(value: string, shape: number[]): string {
    return shape.length === 3
      ? this.b.op("ReorderOutput", [value], { channels: shape[0] }, NCHWC_DOMAIN)
      : value;
  }

  #alias(from: string, to: string): void {
    this.values.set(from, this.values.get(to)!);
    this.shapes.set(from, this.shapes.get(to)!);
  }
}
