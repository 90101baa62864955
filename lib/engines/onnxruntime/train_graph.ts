/**
 * Compiles one whole SGD training step of an IR {@link Graph} into a single ONNX model for a
 * fixed batch size: the train-mode forward pass (BatchNorm on batch statistics), the
 * (distillation) loss, the backward pass to every parameter, torch.optim.SGD's update (weight
 * decay on every parameter, momentum, optional Nesterov, dampening) and the BatchNorm running
 * statistics. Parameters, momentum buffers and running statistics are graph inputs and their
 * updated values graph outputs, so the host keeps them between steps. This is the portable NCHW
 * form; the engine prefers the blocked form of train_nchwc.ts where it applies.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStep } from "./train_graph.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const sgd = { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 };
 * const bytes = compileTrainStep(g, { n: 4, image: [3, 32, 32], withTeacher: true, sgd });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import { type BatchNormNode, type ConvNode, convOut, type Graph, type GraphNode } from "../../graph.ts";
import { floatAttr } from "../../onnx/builder.ts";
import { convInputGrad, convWeightGrad } from "./conv_grad.ts";
import { poolGradNchw, poolNchw } from "./global_pool.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import type { TrainGraphSpec } from "./train_common.ts";
import { type BnStats, TrainEmitter } from "./train_emitter.ts";

/**
 * Serialises the training-step model of `graph` for `spec`.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStep } from "./train_graph.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * const sgd = { momentum: 0, weightDecay: 0, nesterov: false, dampening: 0 };
 * console.log(compileTrainStep(g, { n: 2, image: [3, 32, 32], withTeacher: false, sgd }).length > 0); // true
 * ```
 */
export function compileTrainStep(graph: Graph, spec: TrainGraphSpec): Uint8Array {
  return new NchwTrainEmitter(graph, spec).emit();
}

/** What the backward pass needs from one train-mode BatchNorm. */
interface BnSaved extends BnStats {
  centered: string;
  invStd: string;
  channels: number;
}

class NchwTrainEmitter extends TrainEmitter<BnSaved> {
  constructor(graph: Graph, spec: TrainGraphSpec) {
    super(graph, spec, `${graph.arch}_train_step`);
  }

  convForward(node: ConvNode): void {
    const input = node.inputs[0];
    const [, h, w] = this.shapes.get(input)!;
    const [co, , k] = this.shapeOf(node.weight);
    const ins = [this.values.get(input)!, this.params.get(node.weight)!];
    if (node.bias) ins.push(this.params.get(node.bias)!);
    const attrs = {
      kernel_shape: [k, k],
      strides: [node.stride, node.stride],
      pads: Array(4).fill(node.pad),
    };
    const geo = { k, stride: node.stride, pad: node.pad };
    this.set(node.output, this.b.op("Conv", ins, attrs), [co, convOut(h, geo), convOut(w, geo)]);
  }

  poolForward(node: GraphNode): void {
    const input = node.inputs[0];
    const [c] = this.shapes.get(input)!;
    this.set(node.output, poolNchw(this.b, this.values.get(input)!), [c]);
  }

  /** Train-mode BatchNorm: normalise with the batch mean and biased variance. */
  batchNormForward(node: BatchNormNode): void {
    const b = this.b;
    const input = node.inputs[0];
    const x = this.values.get(input)!;
    const shape = this.shapes.get(input)!;
    const [channels, h, w] = shape;
    const count = this.n * h * w;
    const axes = b.int64s([0, 2, 3]);
    const mean = b.op("ReduceMean", [x, axes], { keepdims: 1 });
    const centered = b.op("Sub", [x, mean]);
    const variance = b.op("Mul", [this.#channelSum(centered, "ReduceSumSquare"), b.scalar(1 / count)]);
    const invStd = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [variance, b.scalar(node.eps)])])]);
    const flat = (v: string) => b.op("Reshape", [v, b.int64s([channels])]);
    this.bnSaved.set(node.name, {
      centered,
      invStd,
      mean: flat(mean),
      variance: flat(variance),
      count,
      channels,
    });
    // One fused pass: (x - mean) / sqrt(var + eps) * gamma + beta.
    const out = b.op(
      "BatchNormalization",
      [x, this.params.get(node.weight)!, this.params.get(node.bias)!, flat(mean), flat(variance)],
      { epsilon: floatAttr(node.eps) },
    );
    this.set(node.output, out, shape);
  }

  convBackward(node: ConvNode, dy: string, { push }: GradAccumulator): void {
    const { b, graph } = this;
    const input = node.inputs[0];
    const geo = this.convGeometry(node);
    this.grads.set(
      node.weight,
      convWeightGrad(b, this.values.get(input)!, dy, geo, this.spec.weightGrad),
    );
    if (node.bias) {
      this.grads.set(node.bias, b.op("ReduceSum", [dy, b.int64s([0, 2, 3])], { keepdims: 0 }));
    }
    if (input !== graph.input) push(input, convInputGrad(b, dy, this.params.get(node.weight)!, geo));
  }

  poolBackward(node: GraphNode, dy: string): string {
    return poolGradNchw(this.b, this.n, dy, this.shapes.get(node.inputs[0])!);
  }

  /**
   * Train-mode BatchNorm backward (PyTorch's formula): with xc = x - mean,
   * dx = (dy - mean(dy) - xc * invstd^2 * mean(dy * xc)) * gamma * invstd,
   * dgamma = sum(dy * xc) * invstd, dbeta = sum(dy).
   */
  batchNormBackward(node: BatchNormNode, dy: string): string {
    const b = this.b;
    const s = this.bnSaved.get(node.name)!;
    const col = b.int64s([s.channels]);
    const sumDy = this.#channelSum(dy, "ReduceSum");
    const dot = this.#channelSum(b.op("Mul", [dy, s.centered]), "ReduceSum");
    this.grads.set(node.weight, b.op("Reshape", [b.op("Mul", [dot, s.invStd]), col]));
    this.grads.set(node.bias, b.op("Reshape", [sumDy, col]));
    const invM = b.scalar(1 / s.count);
    const gamma = b.op("Reshape", [this.params.get(node.weight)!, b.int64s([1, s.channels, 1, 1])]);
    const scaleDy = b.op("Mul", [gamma, s.invStd]); // A = gamma * invstd
    const k = b.op("Mul", [b.op("Mul", [b.op("Mul", [dot, s.invStd]), s.invStd]), invM]);
    const scaleXc = b.op("Neg", [b.op("Mul", [k, scaleDy])]); // -k * A
    const shift = b.op("Neg", [b.op("Mul", [b.op("Mul", [sumDy, invM]), scaleDy])]); // -mean(dy) * A
    // dy * A + shift in one fused per-channel pass, then + xc * (-k * A).
    const affine = b.op("BatchNormalization", [
      dy,
      b.op("Reshape", [scaleDy, col]),
      b.op("Reshape", [shift, col]),
      this.#zeros(s.channels),
      this.#ones(s.channels),
    ], { epsilon: floatAttr(0) });
    return b.op("Add", [affine, b.op("Mul", [s.centered, scaleXc])]);
  }

  /**
   * Per-channel sums [1, c, 1, 1] of an [n, c, h, w] tensor (of squares with ReduceSumSquare), in
   * three short stages: along rows, over the rows, over the batch. onnxruntime accumulates each
   * reduction in one float32 running sum; over axes [0, 2, 3] at once (N*H*W = 20480 values) the
   * batch variance ends about 1e-5 relative off, enough to flip ReLU kinks downstream (PyTorch
   * sums in double).
   */
  #channelSum(v: string, op: "ReduceSum" | "ReduceSumSquare"): string {
    const b = this.b;
    const rows = b.op(op, [v, b.int64s([3])], { keepdims: 1 });
    const planes = b.op("ReduceSum", [rows, b.int64s([2])], { keepdims: 1 });
    return b.op("ReduceSum", [planes, b.int64s([0])], { keepdims: 1 });
  }

  #zeros(c: number): string {
    return this.#filled(c, 0);
  }

  #ones(c: number): string {
    return this.#filled(c, 1);
  }

  #filled(c: number, v: number): string {
    return this.constant(`${v}:${c}`, [c], (data) => data.fill(v));
  }
}
