/**
 * ONNX export of any IR graph (every zoo network): NCHW float32 input `input` with a dynamic
 * batch axis, output `logits` [batch, classes], opset 13 to 17. Eval-mode BatchNorm is folded
 * into the convolution before it by default (BatchNorms without one, as in pre-activation WRN
 * blocks, stay BatchNormalization nodes); `foldBatchNorm: false` keeps them all. Metadata carries
 * what evaluation needs (architecture, classes, channels, dataset, normalisation, class names).
 * The same graph, weights and options always give the same bytes.
 *
 * @example
 * ```ts
 * import { exportOnnx } from "./onnx_export.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const bytes = exportOnnx(g, initStateDict(g, 0), { dataset: "cifar10" });
 * console.log(bytes.length > 300_000); // true
 * ```
 * @module
 */

import { type BatchNormNode, type Graph, type GraphNode, type LayerKind, nodeParams } from "../lib/graph.ts";
import type { HostTensor, StateDict } from "../lib/tensor.ts";
import { foldableBatchNorms, foldBatchNorm } from "./batchnorm_fold.ts";
import { OnnxExportError } from "./onnx_errors.ts";
import { metadataEntries, type ModelMetadata, PACKAGE_NAME, PACKAGE_VERSION } from "./onnx_metadata.ts";
import {
  ATTR,
  encodeOnnxModel,
  floatTensor,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from "./onnx_proto.ts";

/** Operator sets the exporter writes. */
export const ONNX_EXPORT_OPSETS = { min: 13, max: 17, default: 13 } as const;

/** Export settings; everything is optional. */
export interface OnnxExportOptions {
  /** ai.onnx operator set, 13 to 17 (default 13). */
  opset?: number;
  /** Fold eval-mode BatchNorm into the preceding convolution (default true). */
  foldBatchNorm?: boolean;
  /** Fixed input height and width (default 32); null declares them symbolic. */
  imageSize?: number | null;
  /** Dataset name for the metadata, e.g. `cifar100`. */
  dataset?: string;
  /** Per-channel normalisation mean for the metadata. */
  mean?: number[];
  /** Per-channel normalisation standard deviation for the metadata. */
  std?: number[];
  /** Class names for the metadata (one per class). */
  classNames?: string[];
}

/** Names of the exported graph's input and output. */
export const ONNX_IO_NAMES = { input: "input", output: "logits" } as const;

/**
 * Encodes `graph` with `weights` (PyTorch layout) as ONNX bytes.
 *
 * @example
 * ```ts
 * import { exportOnnx } from "./onnx_export.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * const a = exportOnnx(g, initStateDict(g, 3), { opset: 17, foldBatchNorm: false });
 * const b = exportOnnx(g, initStateDict(g, 3), { opset: 17, foldBatchNorm: false });
 * console.log(a.every((v, i) => v === b[i])); // true
 * ```
 */
export function exportOnnx(graph: Graph, weights: StateDict, options: OnnxExportOptions = {}): Uint8Array {
  return encodeOnnxModel(exportOnnxModel(graph, weights, options));
}

/**
 * Same as {@link exportOnnx}, returning the model as plain data (see convert/onnx_proto.ts).
 *
 * @example
 * ```ts
 * import { exportOnnxModel } from "./onnx_export.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const m = exportOnnxModel(g, initStateDict(g, 0));
 * console.log(m.nodes.filter((n) => n.opType === "BatchNormalization").length); // 0
 * ```
 */
export function exportOnnxModel(
  graph: Graph,
  weights: StateDict,
  options: OnnxExportOptions = {},
): OnnxModel {
  return new OnnxWriter(graph, weights, checkOptions(graph, options)).write();
}

interface ResolvedOptions {
  opset: number;
  fold: boolean;
  imageSize: number | null;
  metadata: ModelMetadata;
}

function checkOptions(graph: Graph, o: OnnxExportOptions): ResolvedOptions {
  const fail = (problem: string) => new OnnxExportError(graph.arch, problem);
  const opset = o.opset ?? ONNX_EXPORT_OPSETS.default;
  if (!Number.isInteger(opset) || opset < ONNX_EXPORT_OPSETS.min || opset > ONNX_EXPORT_OPSETS.max) {
    throw fail(
      `opset ${opset} is not supported; choose ${ONNX_EXPORT_OPSETS.min} to ${ONNX_EXPORT_OPSETS.max}`,
    );
  }
  const imageSize = o.imageSize === undefined ? 32 : o.imageSize;
  if (imageSize !== null && (!Number.isInteger(imageSize) || imageSize < 1)) {
    throw fail(`imageSize ${imageSize} is not a positive integer`);
  }
  for (const [key, v] of [["mean", o.mean], ["std", o.std]] as const) {
    if (v && (v.length !== graph.inChannels || v.some((x) => !Number.isFinite(x)))) {
      throw fail(`${key} needs ${graph.inChannels} finite numbers (one per input channel), got [${v}]`);
    }
  }
  if (o.std?.some((x) => x <= 0)) throw fail(`std must be positive, got [${o.std}]`);
  if (o.classNames && o.classNames.length !== graph.numClasses) {
    throw fail(`${o.classNames.length} class names for ${graph.numClasses} classes`);
  }
  const fold = o.foldBatchNorm ?? true;
  const metadata: ModelMetadata = {
    arch: graph.arch,
    numClasses: graph.numClasses,
    inChannels: graph.inChannels,
    imageSize: imageSize ?? undefined,
    dataset: o.dataset,
    mean: o.mean,
    std: o.std,
    classNames: o.classNames,
    batchNorm: fold ? "folded" : "kept",
    package: PACKAGE_NAME,
    packageVersion: PACKAGE_VERSION,
  };
  return { opset, fold, imageSize, metadata };
}

class OnnxWriter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  readonly written = new Set<string>();
  /** IR value -> ONNX value name. */
  readonly valueNames = new Map<string, string>();
  /** ONNX names in use (values and initializers share one namespace). */
  readonly taken = new Set<string>();
  readonly paramUses = new Map<string, number>();

  constructor(readonly graph: Graph, readonly weights: StateDict, readonly o: ResolvedOptions) {}

  fail(problem: string): OnnxExportError {
    return new OnnxExportError(this.graph.arch, problem);
  }

  write(): OnnxModel {
    const g = this.graph;
    for (const p of g.params) this.taken.add(p.name);
    for (const n of g.nodes) {
      for (const p of nodeParams(n)) this.paramUses.set(p, (this.paramUses.get(p) ?? 0) + 1);
    }
    this.nameValue(g.input, ONNX_IO_NAMES.input);
    this.nameValue(g.output, ONNX_IO_NAMES.output);
    for (const n of g.nodes) if (n.output !== g.output) this.nameValue(n.output, n.output);

    const folded = this.o.fold ? foldableBatchNorms(g) : new Map<string, BatchNormNode>();
    const foldedBns = new Set([...folded.values()].map((b) => b.name));
    for (const n of g.nodes) {
      if (foldedBns.has(n.name)) continue;
      this.emit(n, n.op === "conv" ? folded.get(n.name) : undefined);
    }

    const spatial = this.o.imageSize ?? null;
    const hw = spatial === null ? ["height", "width"] : [spatial, spatial];
    return {
      irVersion: this.o.opset <= 14 ? 7 : 8,
      opsetImports: [{ domain: "", version: this.o.opset }],
      producerName: PACKAGE_NAME,
      producerVersion: PACKAGE_VERSION,
      docString: "",
      graphName: g.arch,
      metadata: metadataEntries(this.o.metadata),
      inputs: [{ name: ONNX_IO_NAMES.input, elemType: 1, dims: ["batch", g.inChannels, ...hw] }],
      outputs: [{ name: ONNX_IO_NAMES.output, elemType: 1, dims: ["batch", g.numClasses] }],
      initializers: this.initializers,
      nodes: this.nodes,
    };
  }

  nameValue(ir: string, wanted: string): void {
    let name = wanted;
    for (let k = 1; this.taken.has(name); k++) name = `${wanted}_${k}`;
    this.taken.add(name);
    this.valueNames.set(ir, name);
  }

  freshName(wanted: string): string {
    let name = wanted;
    for (let k = 1; this.taken.has(name); k++) name = `${wanted}_${k}`;
    this.taken.add(name);
    return name;
  }

  v(ir: string): string {
    return this.valueNames.get(ir)!;
  }

  tensor(name: string): HostTensor {
    const t = this.weights.get(name);
    const spec = this.graph.params.find((p) => p.name === name)!;
    if (!t) throw this.fail(`weights lack parameter ${name}`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw this.fail(`parameter ${name} has shape [${t.shape}], the graph needs [${spec.shape}]`);
    }
    return t;
  }

  /** Writes a parameter once, under its own name. */
  initializer(name: string): string {
    if (!this.written.has(name)) {
      const t = this.tensor(name);
      this.initializers.push(floatTensor(name, t.shape, Float32Array.from(t.data)));
      this.written.add(name);
    }
    return name;
  }

  /** Writes folded values: under the parameter's own name when only this node uses it. */
  derived(param: string | undefined, fallback: string, shape: number[], data: Float32Array): string {
    const own = param !== undefined && this.paramUses.get(param) === 1;
    const name = own ? param : this.freshName(fallback);
    this.written.add(name);
    this.initializers.push(floatTensor(name, shape, data));
    return name;
  }

  node(
    opType: string,
    name: string,
    inputs: string[],
    outputs: string[],
    attributes: OnnxAttribute[] = [],
  ): void {
    this.nodes.push({ name, opType, domain: "", inputs, outputs, attributes });
  }

  emit(n: GraphNode, bn: BatchNormNode | undefined): void {
    (EXPORT_OPS[n.op] as ExportOp<GraphNode>)(this, n, bn);
  }
}

/** How the exporter writes one IR node (`bn`: the BatchNorm folded into a conv, if any). */
type ExportOp<N extends GraphNode> = (w: OnnxWriter, n: N, bn: BatchNormNode | undefined) => void;

/**
 * The exporter's op table: one entry per IR layer kind (`LAYER_KINDS` of lib/graph.ts) writing
 * its ONNX nodes; adding a layer type to the export is one entry here (a test checks every kind
 * has one).
 *
 * @example
 * ```ts
 * import { LAYER_KINDS } from "../lib/graph.ts";
 * import { EXPORT_OPS } from "./onnx_export.ts";
 * console.log(LAYER_KINDS.every((k) => typeof EXPORT_OPS[k] === "function")); // true
 * ```
 */
export const EXPORT_OPS: { [K in LayerKind]: ExportOp<Extract<GraphNode, { op: K }>> } = {
  conv(w, n, bn) {
    const attrs = [
      ints("dilations", [1, 1]),
      int("group", 1),
      ints("kernel_shape", w.tensor(n.weight).shape.slice(2)),
      ints("pads", [n.pad, n.pad, n.pad, n.pad]),
      ints("strides", [n.stride, n.stride]),
    ];
    const inputs = [w.v(n.inputs[0])];
    if (bn) {
      const wt = w.tensor(n.weight);
      const f = foldBatchNorm(wt, n.bias ? w.tensor(n.bias).data : undefined, {
        gamma: w.tensor(bn.weight).data,
        beta: w.tensor(bn.bias).data,
        mean: w.tensor(bn.runningMean).data,
        variance: w.tensor(bn.runningVar).data,
        eps: bn.eps,
      });
      inputs.push(w.derived(n.weight, `${n.name}.weight_folded`, wt.shape, f.weight));
      inputs.push(
        w.derived(n.bias, n.bias ? `${n.name}.bias_folded` : `${n.name}.bias`, [wt.shape[0]], f.bias),
      );
      w.node("Conv", n.name, inputs, [w.v(bn.output)], attrs);
    } else {
      inputs.push(w.initializer(n.weight));
      if (n.bias) inputs.push(w.initializer(n.bias));
      w.node("Conv", n.name, inputs, [w.v(n.output)], attrs);
    }
  },
  batchnorm(w, n) {
    w.node(
      "BatchNormalization",
      n.name,
      [
        w.v(n.inputs[0]),
        ...[n.weight, n.bias, n.runningMean, n.runningVar].map((p) => w.initializer(p)),
      ],
      [w.v(n.output)],
      // ONNX momentum weighs the running value; PyTorch's (the IR's) weighs the batch statistic.
      [float("epsilon", n.eps), float("momentum", 1 - n.momentum)],
    );
  },
  relu(w, n) {
    w.node("Relu", n.name, [w.v(n.inputs[0])], [w.v(n.output)]);
  },
  add(w, n) {
    w.node("Add", n.name, n.inputs.map((i) => w.v(i)), [w.v(n.output)]);
  },
  global_avg_pool(w, n) {
    const pooled = w.freshName(`${w.v(n.output)}.nchw`);
    w.node("GlobalAveragePool", n.name, [w.v(n.inputs[0])], [pooled]);
    w.node("Flatten", w.freshName(`${n.name}.flatten`), [pooled], [w.v(n.output)], [
      int("axis", 1),
    ]);
  },
  linear(w, n) {
    const inputs = [w.v(n.inputs[0]), w.initializer(n.weight)];
    if (n.bias) inputs.push(w.initializer(n.bias));
    w.node("Gemm", n.name, inputs, [w.v(n.output)], [
      float("alpha", 1),
      float("beta", 1),
      int("transB", 1),
    ]);
  },
};

function int(name: string, i: number): OnnxAttribute {
  return { name, type: ATTR.INT, i };
}

function ints(name: string, values: number[]): OnnxAttribute {
  return { name, type: ATTR.INTS, ints: values };
}

function float(name: string, f: number): OnnxAttribute {
  return { name, type: ATTR.FLOAT, f };
}
