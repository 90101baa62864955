/**
 * What every compiled training step shares, whatever its activation layout: the graph's inputs
 * and outputs (names and order), torch.optim.SGD's update and BatchNorm's running statistics.
 *
 * @example
 * ```ts
 * import { momentumName, updatedName } from "./train_common.ts";
 * console.log(updatedName(momentumName("fc.weight"))); // fc.weight:momentum:new
 * ```
 * @module
 */

import type { BatchNormNode, Graph } from "../../graph.ts";
import type { OnnxBuilder } from "../../onnx/builder.ts";
import type { SgdOptions } from "../engine.ts";
import type { WeightGradMethod } from "./conv_grad.ts";
import { distillationLoss } from "./loss_ops.ts";

/** What a training graph is specialised for. */
export interface TrainGraphSpec {
  /** Batch size. */
  n: number;
  /** One image, [c, h, w]. */
  image: readonly [number, number, number];
  /** Whether teacher logits are an input (distillation) or not (plain CE training). */
  withTeacher: boolean;
  /** Optimiser settings (baked into the graph). */
  sgd: SgdOptions;
  /** Weight-gradient formulation of the convolutions (NCHW graphs). */
  weightGrad?: WeightGradMethod;
  /**
   * Diagnostics only: also output every forward activation, in NCHW, as
   * {@link forwardName}`(value)` (tools/forward_error_report.ts). Off in the engine's graphs.
   */
  exposeForward?: boolean;
}

/**
 * The graph output carrying forward activation `value` when {@link TrainGraphSpec.exposeForward}
 * is set. Where a layout computes several graph values in one fused op (NCHWc: BatchNorm, the
 * residual add and the ReLU), only the last of them exists, under its own name.
 *
 * @example
 * ```ts
 * import { forwardName } from "./train_common.ts";
 * console.log(forwardName("layer1.0.bn1")); // forward:layer1.0.bn1
 * ```
 */
export function forwardName(value: string): string {
  return `forward:${value}`;
}

/**
 * Names of the training graph's fixed inputs and outputs. Besides these, every float parameter
 * and buffer is an input under its state-dict name, its updated value an output under
 * {@link updatedName}, and each momentum buffer an input under {@link momentumName} and an output
 * under `updatedName(momentumName(p))`.
 * `loss_weights` is `[ceWeight, alpha, T]`; `sgd` is `[lr, dampingScale]` where `dampingScale`
 * is `1 - dampening`, or 1 at the first step (when the buffers are fed as zeros).
 * `loss_parts` is `[loss, ce, kd]`.
 */
export const TRAIN_IO = {
  x: "x",
  onehot: "onehot",
  teacher: "teacher",
  lossWeights: "loss_weights",
  sgd: "sgd",
  lossParts: "loss_parts",
  logits: "logits",
} as const;

/**
 * The graph name of a tensor's updated value.
 *
 * @example
 * ```ts
 * import { updatedName } from "./train_common.ts";
 * console.log(updatedName("fc.weight")); // fc.weight:new
 * ```
 */
export function updatedName(name: string): string {
  return `${name}:new`;
}

/**
 * The graph name of a parameter's momentum buffer.
 *
 * @example
 * ```ts
 * import { momentumName } from "./train_common.ts";
 * console.log(momentumName("fc.weight")); // fc.weight:momentum
 * ```
 */
export function momentumName(name: string): string {
  return `${name}:momentum`;
}

/** The fixed inputs of a training graph, and every float parameter/buffer by state-dict name. */
export interface TrainInputs {
  x: string;
  onehot: string;
  teacher: string | null;
  lossWeights: string;
  sgd: string;
  params: Map<string, string>;
}

/**
 * Declares the inputs of a training graph for `graph` and `spec`.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { buildModel } from "../../models/zoo.ts";
 * import { declareTrainInputs } from "./train_common.ts";
 * const sgd = { momentum: 0.9, weightDecay: 0, nesterov: false, dampening: 0 };
 * const io = declareTrainInputs(new OnnxBuilder("t"), buildModel("resnet8"), { n: 2, image: [3, 32, 32], withTeacher: false, sgd });
 * console.log(io.teacher, io.params.has("fc.weight")); // null true
 * ```
 */
export function declareTrainInputs(b: OnnxBuilder, graph: Graph, spec: TrainGraphSpec): TrainInputs {
  const k = graph.numClasses;
  const io: TrainInputs = {
    x: b.input(TRAIN_IO.x, "float32", [spec.n, ...spec.image]),
    onehot: b.input(TRAIN_IO.onehot, "float32", [spec.n, k]),
    teacher: spec.withTeacher ? b.input(TRAIN_IO.teacher, "float32", [spec.n, k]) : null,
    lossWeights: b.input(TRAIN_IO.lossWeights, "float32", [3]),
    sgd: b.input(TRAIN_IO.sgd, "float32", [2]),
    params: new Map(),
  };
  for (const p of graph.params) {
    if (p.dtype === "float32") io.params.set(p.name, b.input(p.name, "float32", p.shape));
  }
  return io;
}

/**
 * torch.optim.SGD on every parameter: `g += wd * p`; with momentum `buf = m * buf + (1 - d) * g`
 * (the first step feeds zeros and scale 1, giving `buf = g`), `g = nesterov ? g + m * buf : buf`;
 * then `p -= lr * g`. Declares the momentum inputs and the updated outputs.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { GraphBuilder } from "../../graph.ts";
 * import { emitSgdUpdate } from "./train_common.ts";
 * const gb = new GraphBuilder("t", 1, 2);
 * const g = gb.finish(gb.linear("fc", gb.globalAvgPool("p", gb.input), 1, 2));
 * const b = new OnnxBuilder("sgd");
 * const params = new Map(g.params.map((p) => [p.name, b.input(p.name, "float32", p.shape)]));
 * const grads = new Map(g.params.map((p) => [p.name, b.input(`d_${p.name}`, "float32", p.shape)]));
 * emitSgdUpdate(b, g, params, grads, b.input("sgd", "float32", [2]), { momentum: 0.9, weightDecay: 1e-4, nesterov: true, dampening: 0 });
 * console.log(b.nodeCount > 0); // true
 * ```
 */
export function emitSgdUpdate(
  b: OnnxBuilder,
  graph: Graph,
  params: Map<string, string>,
  grads: Map<string, string>,
  sgd: string,
  opts: SgdOptions,
): void {
  const { momentum, weightDecay, nesterov } = opts;
  const lr = b.op("Gather", [sgd, b.int64s([0])]);
  const dampingScale = b.op("Gather", [sgd, b.int64s([1])]);
  for (const p of graph.params) {
    if (p.kind !== "param") continue;
    const param = params.get(p.name)!;
    let g = grads.get(p.name);
    if (!g) throw new Error(`${graph.arch}: parameter ${p.name} gets no gradient`);
    if (weightDecay !== 0) g = b.op("Add", [g, b.op("Mul", [param, b.scalar(weightDecay)])]);
    let step = g;
    if (momentum !== 0) {
      const bufIn = b.input(momentumName(p.name), "float32", p.shape);
      const buf = b.op("Add", [b.op("Mul", [bufIn, b.scalar(momentum)]), b.op("Mul", [g, dampingScale])]);
      b.output(buf, updatedName(momentumName(p.name)));
      step = nesterov ? b.op("Add", [g, b.op("Mul", [buf, b.scalar(momentum)])]) : buf;
    }
    b.output(b.op("Sub", [param, b.op("Mul", [step, lr])]), updatedName(p.name));
  }
}

/**
 * BatchNorm running statistics, as PyTorch updates them:
 * `running = (1 - m) * running + m * stat`, with the unbiased variance `var * n / (n - 1)`.
 * `mean` and `variance` are [C] batch statistics over `count` values per channel.
 *
 * @example
 * ```ts
 * import { OnnxBuilder } from "../../onnx/builder.ts";
 * import { GraphBuilder } from "../../graph.ts";
 * import { emitRunningStats } from "./train_common.ts";
 * const gb = new GraphBuilder("t", 1, 2);
 * const node = gb.finish(gb.batchNorm("bn", gb.input, 1)).nodes[0];
 * const b = new OnnxBuilder("rs");
 * const params = new Map(["bn.running_mean", "bn.running_var"].map((k) => [k, b.input(k, "float32", [1])]));
 * if (node.op === "batchnorm") emitRunningStats(b, node, params, b.input("m", "float32", [1]), b.input("v", "float32", [1]), 8);
 * console.log(b.nodeCount); // 8
 * ```
 */
export function emitRunningStats(
  b: OnnxBuilder,
  node: BatchNormNode,
  params: Map<string, string>,
  mean: string,
  variance: string,
  count: number,
): void {
  const m = node.momentum;
  const blend = (running: string, stat: string, statScale: number) =>
    b.op("Add", [
      b.op("Mul", [params.get(running)!, b.scalar(1 - m)]),
      b.op("Mul", [stat, b.scalar(m * statScale)]),
    ]);
  b.output(blend(node.runningMean, mean, 1), updatedName(node.runningMean));
  const unbiased = count > 1 ? count / (count - 1) : 1;
  b.output(blend(node.runningVar, variance, unbiased), updatedName(node.runningVar));
}

/** What a layout-specific training-step emitter records while its passes run. */
export interface TrainStepState {
  /** Graph value -> ONNX value of the forward pass (the image is set by {@link emitTrainStep}). */
  values: Map<string, string>;
  /** Graph value -> per-sample shape [c, h, w] or [features]. */
  shapes: Map<string, number[]>;
  /** Parameter or buffer -> its graph input (filled by {@link emitTrainStep}). */
  params: Map<string, string>;
  /** Parameter -> its gradient (filled by the backward pass). */
  grads: Map<string, string>;
  /** BatchNorm node -> its batch statistics [c] and element count (filled by the forward pass). */
  bnSaved: Map<string, { mean: string; variance: string; count: number }>;
  /** An activation of per-sample shape `shape` in plain NCHW (for exposeForward; default: as is). */
  plain?(value: string, shape: number[]): string;
}

/**
 * Emits a whole training step into `b` and serialises it: the inputs, `forward` (filling
 * `state.values`), the distillation loss, `backward` from dLogits (filling `state.grads`), the
 * SGD update, the BatchNorm running statistics and the outputs. What every layout shares.
 */
export function emitTrainStep(
  b: OnnxBuilder,
  graph: Graph,
  spec: TrainGraphSpec,
  state: TrainStepState,
  forward: () => void,
  backward: (dLogits: string) => void,
): Uint8Array {
  const io = declareTrainInputs(b, graph, spec);
  for (const [k, v] of io.params) state.params.set(k, v);
  state.values.set(graph.input, io.x);
  state.shapes.set(graph.input, [...spec.image]);
  forward();
  if (spec.exposeForward) exposeForward(b, graph, state);
  const logits = state.values.get(graph.output)!;
  const loss = distillationLoss(b, logits, io.onehot, io.teacher, io.lossWeights, spec.n);
  backward(loss.dLogits);
  emitSgdUpdate(b, graph, state.params, state.grads, io.sgd, spec.sgd);
  for (const node of graph.nodes) {
    if (node.op !== "batchnorm") continue;
    const s = state.bnSaved.get(node.name)!;
    emitRunningStats(b, node, state.params, s.mean, s.variance, s.count);
  }
  b.output(loss.parts, TRAIN_IO.lossParts);
  b.output(logits, TRAIN_IO.logits);
  return b.toModel();
}

/** Outputs each distinct forward activation once, under the last graph value that names it. */
function exposeForward(b: OnnxBuilder, graph: Graph, state: TrainStepState): void {
  const last = new Map<string, string>();
  for (const node of graph.nodes) {
    const v = state.values.get(node.output);
    if (v) last.set(v, node.output);
  }
  for (const [onnx, value] of last) {
    const shape = state.shapes.get(value)!;
    b.output(state.plain ? state.plain(onnx, shape) : onnx, forwardName(value));
  }
}
