/**
 * The skeleton both training-step compilers (NCHW, train_graph.ts; NCHWc, train_nchwc.ts) share:
 * the state a step records, the step itself ({@link emitTrainStep}), and the forward and reverse
 * passes over the graph, dispatched per layer kind through the op table `TRAIN_OPS`
 * (train_ops.ts). A layout supplies the {@link TrainLayout} primitives whose ops depend on the
 * layout (convolution, BatchNorm, global average pooling) and, optionally, fused groups.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStep } from "./train_graph.ts";
 * const sgd = { momentum: 0, weightDecay: 0, nesterov: false, dampening: 0 };
 * const bytes = compileTrainStep(buildModel("resnet8"), { n: 2, image: [3, 32, 32], withTeacher: false, sgd });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import type { BatchNormNode, ConvNode, Graph, GraphNode } from "../../graph.ts";
import type { ConvGeometry } from "./conv_grad.ts";
import { OnnxBuilder } from "../../onnx/builder.ts";
import { type GradAccumulator, gradAccumulator } from "./grad_accumulator.ts";
import { emitTrainStep, type TrainGraphSpec, type TrainStepState } from "./train_common.ts";
import { trainBackward, trainForward, type TrainLayout } from "./train_ops.ts";

/** What every layout's BatchNorm forward pass saves for the running statistics. */
export interface BnStats {
  /** Batch mean [c] (any shape with c values). */
  mean: string;
  /** Biased batch variance [c]. */
  variance: string;
  /** Values per channel (N*H*W). */
  count: number;
}

/**
 * A training-step compiler for one activation layout. Subclasses implement the layout's
 * {@link TrainLayout} primitives (and may fuse ops in {@link forwardFused}); {@link emit} runs
 * the whole step.
 */
export abstract class TrainEmitter<Saved extends BnStats> implements TrainStepState, TrainLayout {
  /** The model being written. */
  readonly b: OnnxBuilder;
  /** Batch size. */
  readonly n: number;
  /** Graph value -> ONNX value of the forward pass. */
  readonly values = new Map<string, string>();
  /** Graph value -> per-sample shape. */
  readonly shapes = new Map<string, number[]>();
  /** Parameter or buffer -> graph input. */
  readonly params = new Map<string, string>();
  /** Parameter -> gradient. */
  readonly grads = new Map<string, string>();
  /** BatchNorm node -> what its backward rule and the running statistics need. */
  readonly bnSaved = new Map<string, Saved>();
  readonly #paramShapes: Map<string, number[]>;
  /** Constants by what they hold, so each is one initializer however often it is used. */
  readonly #constants = new Map<string, string>();

  constructor(readonly graph: Graph, readonly spec: TrainGraphSpec, modelName: string) {
    this.b = new OnnxBuilder(modelName);
    this.n = spec.n;
    this.#paramShapes = new Map(graph.params.map((p) => [p.name, p.shape]));
  }

  /** Sizes of convolution `node` in this graph: batch, channels, kernel, stride, padding, extents. */
  protected convGeometry(node: ConvNode): ConvGeometry {
    const [co, ci, k] = this.shapeOf(node.weight);
    const [, h, w] = this.shapes.get(node.inputs[0])!;
    const [, oh, ow] = this.shapes.get(node.output)!;
    return { n: this.n, ci, co, k, stride: node.stride, pad: node.pad, h, w, oh, ow };
  }

  /** The constant `key` of shape `dims`, zeros then `fill`ed, made on first use. */
  protected constant(key: string, dims: number[], fill: (data: Float32Array) => void): string {
    let name = this.#constants.get(key);
    if (!name) {
      const data = new Float32Array(dims.reduce((a, d) => a * d, 1));
      fill(data);
      this.#constants.set(key, name = this.b.constant(data, dims));
    }
    return name;
  }

  /** Serialises the whole training step. */
  emit(): Uint8Array {
    return emitTrainStep(this.b, this.graph, this.spec, this, () => this.forward(), (d) => this.backward(d));
  }

  /**
   * The train-mode forward pass: fills {@link values}, {@link shapes} and {@link bnSaved}, node by
   * node through {@link TRAIN_OPS} except where {@link forwardFused} emits a node itself.
   */
  protected forward(): void {
    for (const node of this.graph.nodes) {
      if (!this.forwardFused(node)) trainForward(this, node);
    }
  }

  /**
   * The layout's hook for fused groups: emits `node` (or skips it, when a fused op elsewhere
   * computes it) and returns true, or returns false to emit it through {@link TRAIN_OPS}.
   * Default: no fusion.
   */
  protected forwardFused(_node: GraphNode): boolean {
    return false;
  }

  /** Train-mode convolution forward (sets its output). */
  abstract convForward(node: ConvNode): void;

  /** Weight (and bias) gradients of a convolution, and its input gradient pushed to `acc`. */
  abstract convBackward(node: ConvNode, dy: string, acc: GradAccumulator): void;

  /** Train-mode BatchNorm forward on batch statistics (sets its output, fills {@link bnSaved}). */
  abstract batchNormForward(node: BatchNormNode): void;

  /** Train-mode BatchNorm backward: sets its parameter gradients, returns the input gradient. */
  abstract batchNormBackward(node: BatchNormNode, dy: string): string;

  /** Global average pooling forward to [n, c] rows (sets its output). */
  abstract poolForward(node: GraphNode): void;

  /** Global average pooling backward: the input gradient. */
  abstract poolBackward(node: GraphNode, dy: string): string;

  /** The reverse pass from dLogits, node by node through {@link TRAIN_OPS}. */
  protected backward(dLogits: string): void {
    const { b, graph } = this;
    const acc = gradAccumulator(b, graph.output, dLogits, graph.input);
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      const node = graph.nodes[i];
      const dy = acc.take(node.output);
      if (dy) trainBackward(this, node, dy, acc);
    }
  }

  /** Records graph value `value` as ONNX value `onnx` of per-sample shape `shape`. */
  set(value: string, onnx: string, shape: number[]): void {
    this.values.set(value, onnx);
    this.shapes.set(value, shape);
  }

  /** A parameter's shape. */
  shapeOf(param: string): number[] {
    return this.#paramShapes.get(param)!;
  }
}
