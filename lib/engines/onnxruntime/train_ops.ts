/**
 * The onnxruntime engine's op table for training steps: one entry per IR layer kind
 * (`LAYER_KINDS` of lib/graph.ts) with that layer's train-mode forward op and its backward rule,
 * written once for every activation layout over the small {@link TrainLayout} interface that the
 * NCHW (train_graph.ts) and NCHWc (train_nchwc.ts) compilers implement: convolution and
 * BatchNorm forward and backward, global average pooling forward and backward, and how to set a
 * value. Fusions (NCHWc runs ReLUs and residual adds inside convolutions and BatchNorms) are the
 * layout's concern. Adding a layer type to the training compilers is one entry here (plus a
 * layout primitive if its ops depend on the layout); tests/op_tables_test.ts fails when a kind
 * lacks one.
 *
 * @example
 * ```ts
 * import { TRAIN_OPS } from "./train_ops.ts";
 * console.log(Object.keys(TRAIN_OPS).length); // 6
 * ```
 * @module
 */

import type { BatchNormNode, ConvNode, Graph, GraphNode, LayerKind } from "../../graph.ts";
import type { OnnxBuilder } from "../../onnx/builder.ts";
import type { GradAccumulator } from "./grad_accumulator.ts";
import { reluGrad } from "./relu_grad.ts";

/**
 * What an activation layout gives the training op table: the step's state and the primitives
 * whose ops depend on the layout.
 */
export interface TrainLayout {
  /** The model being written. */
  readonly b: OnnxBuilder;
  /** The network. */
  readonly graph: Graph;
  /** Graph value -> ONNX value of the forward pass. */
  readonly values: Map<string, string>;
  /** Graph value -> per-sample shape. */
  readonly shapes: Map<string, number[]>;
  /** Parameter or buffer -> graph input. */
  readonly params: Map<string, string>;
  /** Parameter -> gradient. */
  readonly grads: Map<string, string>;
  /** A parameter's shape. */
  shapeOf(param: string): number[];
  /** Records graph value `value` as ONNX value `onnx` of per-sample shape `shape`. */
  set(value: string, onnx: string, shape: number[]): void;
  /** Train-mode convolution forward (sets its output). */
  convForward(node: ConvNode): void;
  /** Weight (and bias) gradients of a convolution, and its input gradient pushed to `acc`. */
  convBackward(node: ConvNode, dy: string, acc: GradAccumulator): void;
  /** Train-mode BatchNorm forward on batch statistics (sets its output, saves its statistics). */
  batchNormForward(node: BatchNormNode): void;
  /** Train-mode BatchNorm backward: sets its parameter gradients, returns the input gradient. */
  batchNormBackward(node: BatchNormNode, dy: string): string;
  /** Global average pooling forward to [n, c] rows (sets its output). */
  poolForward(node: GraphNode): void;
  /** Global average pooling backward: the input gradient. */
  poolBackward(node: GraphNode, dy: string): string;
}

/** One layer kind's training rules. */
export interface TrainOp<N extends GraphNode> {
  /** Emits the train-mode forward op(s) of `node` (sets its output value). */
  forward(l: TrainLayout, node: N): void;
  /** Given dL/d(output) `dy`: sets parameter gradients and pushes input gradients to `acc`. */
  backward(l: TrainLayout, node: N, dy: string, acc: GradAccumulator): void;
}

/** {@link TRAIN_OPS}'s type: an entry for every layer kind, typed by its node. */
export type TrainOpTable = { [K in LayerKind]: TrainOp<Extract<GraphNode, { op: K }>> };

/**
 * The training op table, keyed by layer kind.
 *
 * @example
 * ```ts
 * import { LAYER_KINDS } from "../../graph.ts";
 * import { TRAIN_OPS } from "./train_ops.ts";
 * console.log(LAYER_KINDS.every((k) => typeof TRAIN_OPS[k].backward === "function")); // true
 * ```
 */
export const TRAIN_OPS: TrainOpTable = {
  conv: {
    forward: (l, node) => l.convForward(node),
    backward: (l, node, dy, acc) => l.convBackward(node, dy, acc),
  },
  batchnorm: {
    forward: (l, node) => l.batchNormForward(node),
    backward: (l, node, dy, { push }) => push(node.inputs[0], l.batchNormBackward(node, dy)),
  },
  relu: {
    forward(l, node) {
      const input = node.inputs[0];
      l.set(node.output, l.b.op("Relu", [l.values.get(input)!]), l.shapes.get(input)!);
    },
    backward: (l, node, dy, { push }) => push(node.inputs[0], reluGrad(l.b, l.values.get(node.output)!, dy)),
  },
  add: {
    forward(l, node) {
      l.set(
        node.output,
        l.b.op("Add", node.inputs.map((i) => l.values.get(i)!)),
        l.shapes.get(node.inputs[0])!,
      );
    },
    backward(_l, node, dy, { push }) {
      push(node.inputs[0], dy);
      push(node.inputs[1], dy);
    },
  },
  global_avg_pool: {
    forward: (l, node) => l.poolForward(node),
    backward: (l, node, dy, { push }) => push(node.inputs[0], l.poolBackward(node, dy)),
  },
  linear: {
    // The same in every layout: [n, features] rows.
    forward(l, node) {
      const ins = [l.values.get(node.inputs[0])!, l.params.get(node.weight)!];
      if (node.bias) ins.push(l.params.get(node.bias)!);
      l.set(node.output, l.b.op("Gemm", ins, { transB: 1 }), [l.shapeOf(node.weight)[0]]);
    },
    backward(l, node, dy, { push }) {
      const { b } = l;
      const input = node.inputs[0];
      l.grads.set(node.weight, b.op("Gemm", [dy, l.values.get(input)!], { transA: 1 }));
      if (node.bias) l.grads.set(node.bias, b.op("ReduceSum", [dy, b.int64s([0])], { keepdims: 0 }));
      push(input, b.op("MatMul", [dy, l.params.get(node.weight)!]));
    },
  },
};

/**
 * Emits `node`'s train-mode forward through {@link TRAIN_OPS}.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStep } from "./train_graph.ts";
 * const sgd = { momentum: 0, weightDecay: 0, nesterov: false, dampening: 0 };
 * console.log(compileTrainStep(buildModel("resnet8"), { n: 1, image: [3, 8, 8], withTeacher: false, sgd }).length > 0); // true
 * ```
 */
export function trainForward(l: TrainLayout, node: GraphNode): void {
  (TRAIN_OPS[node.op] as TrainOp<GraphNode>).forward(l, node);
}

/**
 * Emits `node`'s backward rule through {@link TRAIN_OPS}.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainStep } from "./train_graph.ts";
 * const sgd = { momentum: 0.9, weightDecay: 0, nesterov: false, dampening: 0 };
 * console.log(compileTrainStep(buildModel("resnet8"), { n: 1, image: [3, 8, 8], withTeacher: false, sgd }).length > 0); // true
 * ```
 */
export function trainBackward(l: TrainLayout, node: GraphNode, dy: string, acc: GradAccumulator): void {
  (TRAIN_OPS[node.op] as TrainOp<GraphNode>).backward(l, node, dy, acc);
}
