/**
 * The skeleton both training-step compilers (NCHW, train_graph.ts; NCHWc, train_nchwc.ts) share:
 * the state a step records, the step itself ({@link emitTrainStep}), and the reverse pass over
 * the graph with the layout-free rules (ReLU, residual add, linear layer) written once. A layout
 * supplies its forward pass and the backward rules whose ops depend on the layout (convolution,
 * BatchNorm, global average pooling).
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
import { OnnxBuilder } from "../../onnx/builder.ts";
import { type GradAccumulator, gradAccumulator } from "./grad_accumulator.ts";
import { reluGrad } from "./relu_grad.ts";
import { emitTrainStep, type TrainGraphSpec, type TrainStepState } from "./train_common.ts";

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
 * A training-step compiler for one activation layout. Subclasses emit the forward pass and the
 * layout's backward rules; {@link emit} runs the whole step.
 */
export abstract class TrainEmitter<Saved extends BnStats> implements TrainStepState {
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

  constructor(readonly graph: Graph, readonly spec: TrainGraphSpec, modelName: string) {
    this.b = new OnnxBuilder(modelName);
    this.n = spec.n;
    this.#paramShapes = new Map(graph.params.map((p) => [p.name, p.shape]));
  }

  /** Serialises the whole training step. */
  emit(): Uint8Array {
    return emitTrainStep(this.b, this.graph, this.spec, this, () => this.forward(), (d) => this.backward(d));
  }

  /** The train-mode forward pass: fills {@link values}, {@link shapes} and {@link bnSaved}. */
  protected abstract forward(): void;

  /** Weight (and bias) gradients of a convolution, and its input gradient pushed to `acc`. */
  protected abstract convBackward(node: ConvNode, dy: string, acc: GradAccumulator): void;

  /** Train-mode BatchNorm backward: sets its parameter gradients, returns the input gradient. */
  protected abstract batchNormBackward(node: BatchNormNode, dy: string): string;

  /** Global average pooling backward: the input gradient. */
  protected abstract poolBackward(node: GraphNode, dy: string): string;

  /** The reverse pass from dLogits, node by node. */
  protected backward(dLogits: string): void {
    const { b, graph } = this;
    const acc = gradAccumulator(b, graph.output, dLogits, graph.input);
    const { push, take } = acc;
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      const node = graph.nodes[i];
      const dy = take(node.output);
      if (!dy) continue;
      const input = node.inputs[0];
      switch (node.op) {
        case "conv":
          this.convBackward(node, dy, acc);
          break;
        case "batchnorm":
          push(input, this.batchNormBackward(node, dy));
          break;
        case "relu":
          push(input, reluGrad(b, this.values.get(node.output)!, dy));
          break;
        case "add":
          push(node.inputs[0], dy);
          push(node.inputs[1], dy);
          break;
        case "global_avg_pool":
          push(input, this.poolBackward(node, dy));
          break;
        case "linear": {
          this.grads.set(node.weight, b.op("Gemm", [dy, this.values.get(input)!], { transA: 1 }));
          if (node.bias) this.grads.set(node.bias, b.op("ReduceSum", [dy, b.int64s([0])], { keepdims: 0 }));
          push(input, b.op("MatMul", [dy, this.params.get(node.weight)!]));
          break;
        }
      }
    }
  }

  /** The linear layer's forward op (the same in every layout: [n, features] rows). */
  protected linearForward(node: GraphNode & { op: "linear" }, input: string): string {
    const ins = [input, this.params.get(node.weight)!];
    if (node.bias) ins.push(this.params.get(node.bias)!);
    return this.b.op("Gemm", ins, { transB: 1 });
  }

  /** A parameter's shape. */
  protected shapeOf(param: string): number[] {
    return this.#paramShapes.get(param)!;
  }
}
