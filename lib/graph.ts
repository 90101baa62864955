/**
 * The network IR: a small, framework-neutral DAG of the operators CIFAR ResNets and WRNs need,
 * with parameters named as PyTorch state-dict keys. The model zoo builds it, the ONNX importer
 * produces it, and every engine (tfjs, onnxruntime), exporter and relevance rule walks it.
 * Tensors are NCHW like PyTorch and ONNX; engines choose their own internal layouts.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./graph.ts";
 * const b = new GraphBuilder("tiny", 3, 10);
 * let h = b.conv("conv1", b.input, 3, 8, 3, 1, 1);
 * h = b.relu("relu", h);
 * h = b.globalAvgPool("pool", h);
 * const g = b.finish(b.linear("fc", h, 8, 10));
 * console.log(g.nodes.length, g.params.length); // 4 3
 * ```
 * @module
 */

/** How a parameter is initialised from scratch (PyTorch's defaults for these networks). */
export type ParamInit =
  | "kaiming_normal_fan_out" // conv weights: N(0, sqrt(2 / (k*k*out)))
  | "linear_uniform" // nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  | "ones"
  | "zeros";

/** A parameter or buffer of the network. */
export interface ParamSpec {
  /** State-dict key. */
  name: string;
  /** PyTorch layout. */
  shape: number[];
  /** Trainable parameter, or buffer (BatchNorm statistics). */
  kind: "param" | "buffer";
  /** Element type (`num_batches_tracked` is int64 in PyTorch). */
  dtype: "float32" | "int64";
  /** From-scratch initialisation. */
  init: ParamInit;
}

/** What every node has: a name and its input and output values. */
export interface NodeBase<I extends string[] = [string]> {
  /** Node name: the PyTorch module path (`layer1.0.conv1`). */
  name: string;
  /** Names of the values it reads. */
  inputs: I;
  /** Name of the value it writes. */
  output: string;
}

/** 2-D convolution, NCHW, OIHW weight, symmetric padding. */
export interface ConvNode extends NodeBase {
  /** Operator tag. */
  op: "conv";
  /** State-dict key of the [out, in, k, k] weight. */
  weight: string;
  /** State-dict key of the bias, if any (the CIFAR ResNets have none). */
  bias?: string;
  /** Stride in both directions. */
  stride: number;
  /** Zero padding on every side. */
  pad: number;
}

/** BatchNorm2d: batch statistics in training mode, running statistics in eval mode. */
export interface BatchNormNode extends NodeBase {
  /** Operator tag. */
  op: "batchnorm";
  /** State-dict key of gamma. */
  weight: string;
  /** State-dict key of beta. */
  bias: string;
  /** State-dict key of the running mean. */
  runningMean: string;
  /** State-dict key of the running (unbiased) variance. */
  runningVar: string;
  /** Present for networks trained here (PyTorch's `num_batches_tracked`). */
  numBatchesTracked?: string;
  /** Added to the variance (PyTorch: 1e-5). */
  eps: number;
  /** Running-statistics update weight (PyTorch: 0.1). */
  momentum: number;
}

/** Elementwise max(x, 0). */
export interface ReluNode extends NodeBase {
  /** Operator tag. */
  op: "relu";
}

/** Elementwise sum of two tensors of equal shape (residual connections). */
export interface AddNode extends NodeBase<[string, string]> {
  /** Operator tag. */
  op: "add";
}

/** Mean over H and W: [N, C, H, W] -> [N, C] (pooling plus flatten). */
export interface GlobalAvgPoolNode extends NodeBase {
  /** Operator tag. */
  op: "global_avg_pool";
}

/** Fully connected layer, weight [out, in]. */
export interface LinearNode extends NodeBase {
  /** Operator tag. */
  op: "linear";
  /** State-dict key of the [out, in] weight. */
  weight: string;
  /** State-dict key of the bias, if any. */
  bias?: string;
}

/**
 * Every IR layer kind, the one source of the op set: each engine keys its op table by these
 * (lib/engines/onnxruntime/frozen_ops.ts, lib/engines/tfjs/ops.ts, the exporter's), and a test
 * fails when a table lacks one.
 *
 * @example
 * ```ts
 * import { LAYER_KINDS } from "./graph.ts";
 * console.log(LAYER_KINDS.includes("conv")); // true
 * ```
 */
export const LAYER_KINDS = ["conv", "batchnorm", "relu", "add", "global_avg_pool", "linear"] as const;

/** An IR layer kind. */
export type LayerKind = typeof LAYER_KINDS[number];

/** Any IR node. */
export type GraphNode =
  | ConvNode
  | BatchNormNode
  | ReluNode
  | AddNode
  | GlobalAvgPoolNode
  | LinearNode;

/** Compiles only while {@link LAYER_KINDS} and the node types name the same kinds. */
type LayerKindsMatchNodes = [GraphNode["op"]] extends [LayerKind]
  ? [LayerKind] extends [GraphNode["op"]] ? true : never
  : never;
const _kindsMatch: LayerKindsMatchNodes = true;

/** A whole network: one NCHW image input, one logits output. */
export interface Graph {
  /** Architecture name (`resnet20`, `wrn_40_2`, or `onnx` for imported graphs). */
  arch: string;
  /** Input channels (3 for CIFAR, 1 for Fashion-MNIST). */
  inChannels: number;
  /** Number of classes (logits width). */
  numClasses: number;
  /** Name of the input value. */
  input: string;
  /** Name of the logits value. */
  output: string;
  /** Nodes in a valid execution order. */
  nodes: GraphNode[];
  /** Parameters and buffers in PyTorch state-dict order. */
  params: ParamSpec[];
}

/**
 * Output size of a convolution along one axis (floor division, as PyTorch and ONNX).
 *
 * @example
 * ```ts
 * import { convOut } from "./graph.ts";
 * console.log(convOut(32, { k: 3, stride: 2, pad: 1 })); // 16
 * ```
 */
export function convOut(size: number, op: { k: number; stride: number; pad: number }): number {
  return Math.floor((size + 2 * op.pad - op.k) / op.stride) + 1;
}

/**
 * Builds a {@link Graph} layer by layer, registering parameters with PyTorch names.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./graph.ts";
 * const b = new GraphBuilder("demo", 1, 2);
 * const h = b.globalAvgPool("pool", b.input);
 * console.log(b.finish(b.linear("fc", h, 1, 2)).params.map((p) => p.name)); // ["fc.weight", "fc.bias"]
 * ```
 */
export class GraphBuilder {
  /** Name of the image input value. */
  readonly input = "input";
  readonly #nodes: GraphNode[] = [];
  readonly #params: ParamSpec[] = [];

  /** Starts an empty graph. */
  constructor(readonly arch: string, readonly inChannels: number, readonly numClasses: number) {}

  /** Adds a bias-free (unless `bias`) convolution `name` and returns its output value. */
  conv(
    name: string,
    x: string,
    cin: number,
    cout: number,
    kernel: number,
    stride: number,
    pad: number,
    bias = false,
  ): string {
    const weight = this.#param(`${name}.weight`, [cout, cin, kernel, kernel], "kaiming_normal_fan_out");
    const node: ConvNode = { op: "conv", name, inputs: [x], output: name, weight, stride, pad };
    if (bias) node.bias = this.#param(`${name}.bias`, [cout], "zeros");
    this.#nodes.push(node);
    return name;
  }

  /** Adds a BatchNorm2d `name` over `channels` and returns its output value. */
  batchNorm(name: string, x: string, channels: number): string {
    const node: BatchNormNode = {
      op: "batchnorm",
      name,
      inputs: [x],
      output: name,
      weight: this.#param(`${name}.weight`, [channels], "ones"),
      bias: this.#param(`${name}.bias`, [channels], "zeros"),
      runningMean: this.#param(`${name}.running_mean`, [channels], "zeros", "buffer"),
      runningVar: this.#param(`${name}.running_var`, [channels], "ones", "buffer"),
      numBatchesTracked: this.#param(`${name}.num_batches_tracked`, [], "zeros", "buffer", "int64"),
      eps: 1e-5,
      momentum: 0.1,
    };
    this.#nodes.push(node);
    return name;
  }

  /** Adds a ReLU and returns its output value. */
  relu(name: string, x: string): string {
    this.#nodes.push({ op: "relu", name, inputs: [x], output: name });
    return name;
  }

  /** Adds a residual sum and returns its output value. */
  add(name: string, a: string, b: string): string {
    this.#nodes.push({ op: "add", name, inputs: [a, b], output: name });
    return name;
  }

  /** Adds global average pooling (with flatten) and returns its output value. */
  globalAvgPool(name: string, x: string): string {
    this.#nodes.push({ op: "global_avg_pool", name, inputs: [x], output: name });
    return name;
  }

  /** Adds a linear layer and returns its output value. */
  linear(name: string, x: string, fin: number, fout: number, biasInit: ParamInit = "linear_uniform"): string {
    const weight = this.#param(`${name}.weight`, [fout, fin], "linear_uniform");
    const bias = this.#param(`${name}.bias`, [fout], biasInit);
    this.#nodes.push({ op: "linear", name, inputs: [x], output: name, weight, bias });
    return name;
  }

  /** Returns the finished graph with `output` as the logits. */
  finish(output: string): Graph {
    const g: Graph = {
      arch: this.arch,
      inChannels: this.inChannels,
      numClasses: this.numClasses,
      input: this.input,
      output,
      nodes: [...this.#nodes],
      params: [...this.#params],
    };
    validateGraph(g);
    return g;
  }

  #param(
    name: string,
    shape: number[],
    init: ParamInit,
    kind: ParamSpec["kind"] = "param",
    dtype: ParamSpec["dtype"] = "float32",
  ): string {
    this.#params.push({ name, shape, kind, dtype, init });
    return name;
  }
}

/**
 * Checks that every node reads values defined earlier, names are unique, and parameters exist.
 * Throws an error naming the first problem.
 *
 * @example
 * ```ts
 * import { buildModel } from "./models/zoo.ts";
 * import { validateGraph } from "./graph.ts";
 * validateGraph(buildModel("resnet8")); // no throw
 * ```
 */
export function validateGraph(g: Graph): void {
  const defined = new Set([g.input]);
  const params = new Set(g.params.map((p) => p.name));
  if (params.size !== g.params.length) throw new Error(`graph ${g.arch}: duplicate parameter names`);
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!defined.has(i)) throw new Error(`graph ${g.arch}: node ${n.name} reads undefined value ${i}`);
    }
    for (const p of nodeParams(n)) {
      if (!params.has(p)) throw new Error(`graph ${g.arch}: node ${n.name} uses unknown parameter ${p}`);
    }
    if (defined.has(n.output)) throw new Error(`graph ${g.arch}: value ${n.output} defined twice`);
    defined.add(n.output);
  }
  if (!defined.has(g.output)) throw new Error(`graph ${g.arch}: output ${g.output} is never computed`);
}

/**
 * Names of the parameters and buffers a node reads, in a fixed order.
 *
 * @example
 * ```ts
 * import { nodeParams } from "./graph.ts";
 * console.log(nodeParams({ op: "relu", name: "r", inputs: ["x"], output: "r" })); // []
 * ```
 */
export function nodeParams(n: GraphNode): string[] {
  return (LAYER_PARAMS[n.op] as (n: GraphNode) => string[])(n);
}

/**
 * The IR's own op table: the parameters and buffers each layer kind reads, in a fixed order.
 *
 * @example
 * ```ts
 * import { LAYER_PARAMS } from "./graph.ts";
 * console.log(LAYER_PARAMS.linear({ op: "linear", name: "fc", inputs: ["x"], output: "fc", weight: "fc.weight" })); // ["fc.weight"]
 * ```
 */
export const LAYER_PARAMS: { [K in LayerKind]: (n: Extract<GraphNode, { op: K }>) => string[] } = {
  conv: (n) => n.bias ? [n.weight, n.bias] : [n.weight],
  batchnorm: (n) => {
    const names = [n.weight, n.bias, n.runningMean, n.runningVar];
    return n.numBatchesTracked ? [...names, n.numBatchesTracked] : names;
  },
  relu: () => [],
  add: () => [],
  global_avg_pool: () => [],
  linear: (n) => n.bias ? [n.weight, n.bias] : [n.weight],
};

/**
 * Number of trainable parameters (what `sum(p.numel() for p in model.parameters())` counts).
 *
 * @example
 * ```ts
 * import { buildModel } from "./models/zoo.ts";
 * import { countParameters } from "./graph.ts";
 * console.log(countParameters(buildModel("resnet20", { numClasses: 100 }))); // 278324
 * ```
 */
export function countParameters(g: Graph): number {
  let n = 0;
  for (const p of g.params) if (p.kind === "param") n += p.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * How many nodes read each value, so executors can free activations after their last use.
 *
 * @example
 * ```ts
 * import { buildModel } from "./models/zoo.ts";
 * import { valueUseCounts } from "./graph.ts";
 * console.log(valueUseCounts(buildModel("resnet8")).get("input")); // 1
 * ```
 */
export function valueUseCounts(g: Graph): Map<string, number> {
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  uses.set(g.output, (uses.get(g.output) ?? 0) + 1);
  return uses;
}
