/**
 * ONNX import: turns what `torch.onnx.export` writes for CIFAR ResNets and WRNs (opsets 11 to
 * 18; BatchNorm folded into Conv or kept; Identity and Constant nodes; shared initializers;
 * static or dynamic batch; any input/output names; Flatten or the `x.view(x.size(0), -1)` shape
 * chain; Gemm or MatMul + Add; GlobalAveragePool, a whole-map AveragePool or ReduceMean) into the
 * network IR of lib/graph.ts plus a PyTorch-layout state dict. Shape subgraphs are evaluated
 * symbolically (the batch size stays a symbol), so nothing of them reaches the IR.
 *
 * Anything else is an {@link OnnxFormatError} with one line naming the file and the problem.
 *
 * @example
 * ```ts ignore
 * import { importOnnx } from "./onnx_import.ts";
 * const { graph, weights, metadata } = importOnnx(await Deno.readFile("teacher.onnx"), "teacher.onnx");
 * console.log(graph.numClasses, weights.size, metadata.arch);
 * ```
 * @module
 */

import {
  type BatchNormNode,
  type ConvNode,
  type Graph,
  type GraphNode,
  type LinearNode,
  nodeParams,
  type ParamInit,
  type ParamSpec,
  validateGraph,
} from "../lib/graph.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { int64Scalar, numel, type StateDict } from "../lib/tensor.ts";
import {
  findNonFinite,
  type NonFinitePolicy,
  nonFiniteRefusal,
  type NonFiniteTensor,
} from "../lib/non_finite.ts";
import { OnnxFormatError } from "./onnx_errors.ts";
import { parseModelMetadata } from "./onnx_metadata.ts";
import {
  ATTR,
  decodeOnnxModel,
  defaultOpset,
  ONNX_DTYPE,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from "./onnx_proto.ts";

/** The result of {@link importOnnx}. */
export interface OnnxImport {
  /** The network; `arch` is the metadata's architecture or `onnx`. */
  graph: Graph;
  /** Parameters and buffers by IR parameter name, PyTorch layout. */
  weights: StateDict;
  /** The file's `metadata_props`. */
  metadata: Record<string, string>;
  /** Version of the default (ai.onnx) operator set. */
  opset: number;
  /** Producer name and version, e.g. `pytorch 1.13.0`. */
  producer: string;
  /** Weights holding NaN or ±Inf (only non-empty when `allowNonFinite` let them through). */
  nonFinite: NonFiniteTensor[];
}

/** Options of {@link importOnnx}. */
export type OnnxImportOptions = NonFinitePolicy;

/** Oldest and newest ai.onnx operator sets the importer accepts. */
export const ONNX_IMPORT_OPSETS = { min: 11, max: 18 } as const;

/** A value in the file: a known tensor, a shape vector with symbolic entries, or an activation. */
type Value = ConstValue | SymValue | ActValue;

/** A tensor known at import time (initializer, Constant, or folded from them). */
interface ConstValue {
  kind: "const";
  /** Name it had in the file (Identity outputs get their own). */
  name: string;
  dims: number[];
  data: Float32Array | Float64Array;
  /** Integer element type (shape arithmetic) rather than float. */
  isInt: boolean;
}

/** An entry of a shape vector: known, the batch size, or another unknown size. */
type Sym = number | "batch" | "unknown";

/** A small integer tensor (shape arithmetic) with symbolic entries. */
interface SymValue {
  kind: "sym";
  dims: number[];
  data: Sym[];
}

/**
 * A runtime tensor. `nchw`: a 4-D IR value with per-sample dims [C, H, W]. `nc`: a 2-D IR value
 * [N, C] whose per-sample dims the file may see as [C], [C, 1, 1], ... (product C).
 */
interface ActValue {
  kind: "act";
  ir: string;
  layout: "nchw" | "nc";
  dims: (number | null)[];
  /** The Conv/linear node that produced exactly this value (a bias Add may fold into it). */
  producer?: ConvNode | LinearNode;
}

type Handler = (this: OnnxGraphReader, node: OnnxNode) => Value[];

/**
 * Reads ONNX bytes into the IR. `fileName` only labels errors.
 *
 * @example
 * ```ts
 * import { importOnnx } from "./onnx_import.ts";
 * try { importOnnx(new Uint8Array([1, 2, 3]), "bad.onnx"); } catch (e) { console.log((e as Error).message.startsWith("bad.onnx: ")); } // true
 * ```
 */
export function importOnnx(
  bytes: Uint8Array,
  fileName = "model.onnx",
  options: OnnxImportOptions = {},
): OnnxImport {
  return importOnnxModel(decodeOnnxModel(bytes, fileName), fileName, options);
}

/**
 * Same as {@link importOnnx} on an already decoded model (see convert/onnx_proto.ts).
 *
 * @example
 * ```ts
 * import { importOnnxModel } from "./onnx_import.ts";
 * import { exportOnnxModel } from "./onnx_export.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const back = importOnnxModel(exportOnnxModel(g, initStateDict(g, 0)), "resnet8.onnx");
 * console.log(back.graph.numClasses, back.opset); // 10 13
 * ```
 */
export function importOnnxModel(
  model: OnnxModel,
  fileName = "model.onnx",
  options: OnnxImportOptions = {},
): OnnxImport {
  const imp = new OnnxGraphReader(model, fileName).read();
  if (imp.nonFinite.length > 0 && !options.allowNonFinite) {
    throw new OnnxFormatError(
      fileName,
      nonFiniteRefusal(imp.nonFinite, options.nonFiniteHint),
    );
  }
  return imp;
}

const STATE_DICT_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

class OnnxGraphReader {
  readonly values = new Map<string, Value>();
  readonly uses = new Map<string, number>();
  readonly irNodes: GraphNode[] = [];
  readonly params: ParamSpec[] = [];
  readonly weights: StateDict = new Map();
  readonly taken = new Set<string>();
  readonly nextSuffix = new Map<string, number>();
  readonly constParams = new Map<ConstValue, string>();
  readonly opset: number;
  inputName = "";
  staticBatch: number | null = null;
  nodeIndex = 0;

  constructor(readonly model: OnnxModel, readonly file: string) {
    const opset = defaultOpset(model.opsetImports);
    if (opset === undefined) throw this.error("declares no ai.onnx operator set");
    if (opset < ONNX_IMPORT_OPSETS.min || opset > ONNX_IMPORT_OPSETS.max) {
      throw this.error(
        `uses opset ${opset}; supported: ${ONNX_IMPORT_OPSETS.min} to ${ONNX_IMPORT_OPSETS.max} ` +
          `(re-export with torch.onnx.export(..., opset_version=13))`,
      );
    }
    this.opset = opset;
  }

  error(problem: string): OnnxFormatError {
    return new OnnxFormatError(this.file, problem);
  }

  nodeError(node: OnnxNode, problem: string): OnnxFormatError {
    const name = clip(node.name || `#${this.nodeIndex}`);
    return this.error(`node "${name}" (${clip(node.opType)}): ${problem}`);
  }

  read(): OnnxImport {
    const m = this.model;
    for (const t of m.initializers) this.values.set(t.name, constFrom(t));
    const realInputs = m.inputs.filter((i) => !this.values.has(i.name));
    if (realInputs.length !== 1) {
      throw this.error(
        `has ${realInputs.length} graph inputs (${realInputs.map((i) => i.name).join(", ") || "none"}); ` +
          "expected one image batch",
      );
    }
    const input = realInputs[0];
    if (input.elemType !== ONNX_DTYPE.FLOAT) throw this.error(`input "${input.name}" is not float32`);
    if (!input.dims || input.dims.length !== 4) {
      throw this.error(
        `input "${input.name}" has shape [${
          input.dims?.join(", ") ?? "unknown"
        }]; expected a 4-D NCHW image batch`,
      );
    }
    const [n, c, h, w] = input.dims;
    if (typeof c !== "number" || c < 1) throw this.error(`input "${input.name}" has no fixed channel count`);
    this.staticBatch = typeof n === "number" && n > 0 ? n : null;
    this.inputName = input.name;
    this.taken.add(input.name);
    this.values.set(input.name, {
      kind: "act",
      ir: input.name,
      layout: "nchw",
      dims: [c, typeof h === "number" && h > 0 ? h : null, typeof w === "number" && w > 0 ? w : null],
    });
    if (m.outputs.length !== 1) {
      throw this.error(`has ${m.outputs.length} graph outputs; expected one (logits)`);
    }
    for (const node of m.nodes) {
      for (const i of node.inputs) if (i) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
    }
    const outName = m.outputs[0].name;
    this.uses.set(outName, (this.uses.get(outName) ?? 0) + 1);

    this.checkOperators();
    m.nodes.forEach((node, i) => {
      this.nodeIndex = i;
      this.step(node);
    });

    const out = this.values.get(outName);
    if (!out) throw this.error(`output "${outName}" is never computed`);
    if (out.kind !== "act" || out.layout !== "nc" || out.dims.length !== 1) {
      const shape = out.kind === "act" ? `[batch, ${out.dims.join(", ")}]` : "a constant";
      throw this.error(`output "${outName}" is ${shape}; expected logits [batch, classes]`);
    }
    const numClasses = out.dims[0]!;
    const declared = m.outputs[0].dims;
    if (declared && declared.length === 2 && typeof declared[1] === "number" && declared[1] !== numClasses) {
      throw this.error(
        `output "${outName}" is declared with ${declared[1]} classes but computes ${numClasses}`,
      );
    }

    const metadata = Object.fromEntries(m.metadata);
    const meta = parseModelMetadata(metadata, this.file);
    if (meta.numClasses !== undefined && meta.numClasses !== numClasses) {
      throw this.error(
        `the classifier has ${numClasses} outputs but metadata num_classes is ${meta.numClasses}`,
      );
    }
    if (meta.inChannels !== undefined && meta.inChannels !== c) {
      throw this.error(`the input has ${c} channels but metadata in_channels is ${meta.inChannels}`);
    }

    let graph = this.finishGraph(meta.arch ?? "onnx", c, numClasses, out.ir);
    const zoo = meta.arch ? zooTwin(graph, meta.arch) : undefined;
    if (zoo) {
      graph = zoo;
      for (const p of zoo.params) {
        if (p.dtype === "int64") {
          this.weights.set(p.name, int64Scalar(0));
        }
      }
    }
    const weights: StateDict = new Map(graph.params.map((p) => [p.name, this.weights.get(p.name)!]));
    const producer = [m.producerName, m.producerVersion].filter(Boolean).join(" ");
    return { graph, weights, metadata, opset: this.opset, producer, nonFinite: findNonFinite(weights) };
  }

  /** Drops nodes that do not reach the output, orders params by first use, validates. */
  finishGraph(arch: string, inChannels: number, numClasses: number, output: string): Graph {
    const needed = new Set([output]);
    const kept: GraphNode[] = [];
    for (let i = this.irNodes.length - 1; i >= 0; i--) {
      const node = this.irNodes[i];
      if (!needed.has(node.output)) continue;
      kept.push(node);
      for (const v of node.inputs) needed.add(v);
    }
    kept.reverse();
    const used = new Set(kept.flatMap(nodeParams));
    const graph: Graph = {
      arch,
      inChannels,
      numClasses,
      input: this.inputName,
      output,
      nodes: kept,
      params: this.params.filter((p) => used.has(p.name)),
    };
    try {
      validateGraph(graph);
    } catch (e) {
      throw this.error(`the imported graph is inconsistent: ${(e as Error).message}`);
    }
    return graph;
  }

  /**
   * Refuses a graph with operators there is no handler for before any node is read, naming the
   * operator the model was written with where the graph shows it: a whole-op node (LSTM) before
   * the supported nodes around it (Transpose), and a decomposed layer (GELU as Div, Erf, Mul)
   * by its name rather than by its first piece.
   */
  checkOperators(): void {
    const nodes = this.model.nodes;
    const unsupported = nodes.filter((n) =>
      !Object.hasOwn(HANDLERS, n.opType) && !(n.domain && n.domain !== "ai.onnx")
    );
    if (unsupported.length === 0) return;
    const types = [...new Set(unsupported.map((n) => n.opType))];
    const patterns = decomposedLayers(nodes);
    const whole = unsupported.find((n) => !PRIMITIVE_OPS.has(n.opType));
    const node = whole ?? unsupported[0];
    this.nodeIndex = nodes.indexOf(node);
    const pattern = whole ? undefined : patterns.find((p) => p.ops.includes(node.opType));
    const also = types.filter((t) => t !== node.opType);
    throw this.nodeError(
      node,
      `unsupported operator ${clip(node.opType)}` +
        (pattern ? ` (part of a decomposed ${pattern.layer}: ${pattern.ops.join(", ")})` : "") +
        (!pattern && !whole && patterns.length > 0
          ? ` (the graph holds a decomposed ${patterns.map((p) => p.layer).join(", ")})`
          : "") +
        (also.length > 0
          ? `; the graph also uses ${also.slice(0, 8).join(", ")}${also.length > 8 ? ", ..." : ""}`
          : "") +
        `; supported: ${SUPPORTED_ONNX_OPS.join(", ")}`,
    );
  }

  step(node: OnnxNode): void {
    if (node.domain && node.domain !== "ai.onnx") {
      throw this.nodeError(node, `operator domain "${node.domain}" is not supported (only ai.onnx)`);
    }
    const handler = Object.hasOwn(HANDLERS, node.opType) ? HANDLERS[node.opType] : undefined;
    if (!handler) {
      throw this.nodeError(
        node,
        `unsupported operator ${node.opType}; supported: ${SUPPORTED_ONNX_OPS.join(", ")}`,
      );
    }
    const outs = handler.call(this, node);
    outs.forEach((v, i) => {
      const name = node.outputs[i];
      if (name) this.values.set(name, v);
    });
  }

  // ---- inputs and attributes ----

  input(node: OnnxNode, i: number): Value | undefined {
    const name = node.inputs[i];
    if (!name) return undefined;
    const v = this.values.get(name);
    if (!v) {
      throw this.nodeError(
        node,
        `reads "${name}", which is no initializer, graph input or earlier node output (missing initializer?)`,
      );
    }
    return v;
  }

  required(node: OnnxNode, i: number): Value {
    const v = this.input(node, i);
    if (!v) throw this.nodeError(node, `input ${i} is missing`);
    return v;
  }

  act(node: OnnxNode, i: number, layout?: ActValue["layout"]): ActValue {
    const v = this.required(node, i);
    if (v.kind !== "act") throw this.nodeError(node, `input ${i} must be a runtime tensor, not a constant`);
    if (layout === "nchw" && v.layout !== "nchw") {
      throw this.nodeError(node, `needs an [N, C, H, W] input, got [N, ${v.dims.join(", ")}] after pooling`);
    }
    return v;
  }

  constant(node: OnnxNode, i: number, what: string): ConstValue {
    const v = this.required(node, i);
    if (v.kind === "const") return v;
    if (v.kind === "sym" && v.data.every((d) => typeof d === "number")) {
      return {
        kind: "const",
        name: node.inputs[i],
        dims: v.dims,
        data: Float64Array.from(v.data as number[]),
        isInt: true,
      };
    }
    throw this.nodeError(node, `${what} ("${node.inputs[i]}") must be a constant (initializer or Constant)`);
  }

  /** A const or shape value as a list of entries. */
  symbolic(node: OnnxNode, i: number): SymValue {
    const v = this.required(node, i);
    if (v.kind === "sym") return v;
    if (v.kind === "const") return { kind: "sym", dims: v.dims, data: Array.from(v.data) };
    throw this.nodeError(node, `input ${i} must be a constant or shape value, not a runtime tensor`);
  }

  ints(node: OnnxNode, i: number, what: string): number[] {
    return Array.from(this.constant(node, i, what).data);
  }

  /** Optional axes: attribute in older opsets, input `inputIndex` in newer ones. */
  axes(node: OnnxNode, inputIndex: number): number[] | undefined {
    const a = attr(node, "axes");
    if (a?.ints) return a.ints;
    return node.inputs[inputIndex] ? this.ints(node, inputIndex, "axes") : undefined;
  }

  noExtraOutputs(node: OnnxNode, what: string): void {
    for (const o of node.outputs.slice(1)) {
      if (o && this.uses.get(o)) {
        throw this.nodeError(node, `its ${what} output "${o}" is used; not supported`);
      }
    }
  }

  // ---- naming ----

  unique(base: string): string {
    let name = base;
    // Resume from the last suffix tried for this base: many equal names cost linear time.
    let k = this.nextSuffix.get(base) ?? 1;
    while (this.taken.has(name)) name = `${base}_${k++}`;
    this.nextSuffix.set(base, k);
    this.taken.add(name);
    return name;
  }

  /**
   * IR node name. PyTorch 1.13 names nodes by module scope (`/layer1/layer1.0/conv1/Conv`),
   * which becomes the module path (`layer1.0.conv1`), so folded parameters get state-dict names.
   */
  irName(node: OnnxNode, ownsParams: boolean): string {
    const raw = node.name;
    if (!raw.startsWith("/")) return this.unique(raw || `${snake(node.opType)}_${this.nodeIndex}`);
    const parts = raw.split("/").filter(Boolean);
    const op = snake(parts.pop() ?? node.opType);
    // A scope repeats its parent's name as a prefix for container children (`downsample`,
    // `downsample.0`); the module path keeps the longer form once.
    let path = "", prev = "";
    for (const p of parts) {
      if (prev && p.startsWith(`${prev}.`)) path = path.slice(0, path.length - prev.length) + p;
      else path = path ? `${path}.${p}` : p;
      prev = p;
    }
    return this.unique(ownsParams ? path || op : path ? `${path}.${op}` : op);
  }

  /**
   * Registers the IR parameter for a constant. The same constant always maps to the same
   * parameter (shared initializers stay shared); transformed data (`data`) gets its own.
   */
  param(
    c: ConstValue,
    owner: string,
    role: string,
    spec: { shape: number[]; kind: ParamSpec["kind"]; init: ParamInit },
    data?: Float32Array,
  ): string {
    if (!data) {
      const known = this.constParams.get(c);
      if (known) return known;
    }
    const name = STATE_DICT_KEY.test(c.name) && !this.taken.has(c.name)
      ? this.unique(c.name)
      : this.unique(`${owner}.${role}`);
    if (!data) this.constParams.set(c, name);
    const values = data ?? Float32Array.from(c.data);
    this.params.push({ name, shape: [...spec.shape], kind: spec.kind, dtype: "float32", init: spec.init });
    this.weights.set(name, { dtype: "float32", shape: [...spec.shape], data: values });
    return name;
  }

  emit(node: GraphNode): void {
    this.irNodes.push(node);
  }

  globalPool(node: OnnxNode, x: ActValue, keepDims: boolean): ActValue {
    const name = this.irName(node, false);
    this.emit({ op: "global_avg_pool", name, inputs: [x.ir], output: name });
    const c = x.dims[0]!;
    return { kind: "act", ir: name, layout: "nc", dims: keepDims ? [c, 1, 1] : [c] };
  }

  /** `conv(x) + b` or `x @ W + b` with a constant per-channel b: becomes the producer's bias. */
  foldBias(node: OnnxNode, x: ActValue, c: ConstValue, xName: string): ActValue {
    const p = x.producer;
    if (!p || this.uses.get(xName) !== 1) {
      throw this.nodeError(
        node,
        "adds a constant to a tensor that is not the sole output of a Conv, Gemm or MatMul",
      );
    }
    const channels = this.weights.get(p.weight)!.shape[0];
    const k = numel(c.dims);
    const okShape = p.op === "conv"
      ? k === channels && c.dims.length >= 3 && c.dims.slice(-2).every((d) => d === 1)
      : k === channels && c.dims.slice(0, -1).every((d) => d === 1);
    if (!okShape) {
      throw this.nodeError(node, `constant of shape [${c.dims}] is not a per-channel bias of ${channels}`);
    }
    const init = p.op === "conv" ? "zeros" : linearBiasInit(p.weight, p.name);
    if (p.bias) {
      const shared = this.irNodes.filter((n) => nodeParams(n).includes(p.bias!)).length > 1;
      if (shared) throw this.nodeError(node, "adds a bias to a layer whose own bias is shared");
      const old = this.weights.get(p.bias)!;
      old.data = Float32Array.from(old.data, (v, i) => v + c.data[i]);
    } else {
      p.bias = this.param(
        c,
        p.name,
        "bias",
        { shape: [channels], kind: "param", init },
        Float32Array.from(c.data),
      );
      // Parameters follow first use: the bias goes right after its weight.
      const wi = this.params.findIndex((q) => q.name === p.weight);
      this.params.splice(wi + 1, 0, this.params.pop()!);
    }
    return { ...x, producer: undefined };
  }
}

// ---- operator handlers ----

const HANDLERS: Record<string, Handler> = {
  Identity(node) {
    const v = this.required(node, 0);
    return [
      v.kind === "const"
        ? { ...v, name: node.outputs[0] }
        : v.kind === "act"
        ? { ...v, producer: undefined }
        : v,
    ];
  },

  Dropout(node) {
    const training = node.inputs[2] ? this.constant(node, 2, "training_mode").data[0] : 0;
    if (training) throw this.nodeError(node, "runs in training mode; export the model in eval mode");
    this.noExtraOutputs(node, "mask");
    return HANDLERS.Identity.call(this, node);
  },

  Constant(node) {
    const a = node.attributes[0];
    const name = node.outputs[0];
    if (!a) throw this.nodeError(node, "has no value attribute");
    switch (a.name) {
      case "value":
        return [{ ...constFrom(a.t!), name }];
      case "value_float":
        return [{ kind: "const", name, dims: [], data: new Float32Array([a.f!]), isInt: false }];
      case "value_floats":
        return [{
          kind: "const",
          name,
          dims: [a.floats!.length],
          data: Float32Array.from(a.floats!),
          isInt: false,
        }];
      case "value_int":
        return [{ kind: "const", name, dims: [], data: new Float64Array([a.i!]), isInt: true }];
      case "value_ints":
        return [{
          kind: "const",
          name,
          dims: [a.ints!.length],
          data: Float64Array.from(a.ints!),
          isInt: true,
        }];
      default:
        throw this.nodeError(node, `Constant ${a.name} is not supported (only numeric tensors)`);
    }
  },

  Conv(node) {
    const x = this.act(node, 0, "nchw");
    const w = this.constant(node, 1, "the weight");
    const b = node.inputs[2] ? this.constant(node, 2, "the bias") : undefined;
    if (w.dims.length !== 4) throw this.nodeError(node, `weight has shape [${w.dims}]; expected 4-D OIHW`);
    const [cout, cin, kh, kw] = w.dims;
    const group = attrInt(node, "group", 1);
    if (group !== 1) throw this.nodeError(node, `grouped convolution (group=${group}) is not supported`);
    const dil = attrInts(node, "dilations") ?? [1, 1];
    if (dil.some((d) => d !== 1)) throw this.nodeError(node, `dilations [${dil}] are not supported (only 1)`);
    const ks = attrInts(node, "kernel_shape") ?? [kh, kw];
    if (ks.length !== 2 || ks[0] !== kh || ks[1] !== kw) {
      throw this.nodeError(node, `kernel_shape [${ks}] does not match the weight's [${kh}, ${kw}]`);
    }
    if (kh !== kw) throw this.nodeError(node, `non-square kernel ${kh}x${kw} is not supported`);
    const strides = attrInts(node, "strides") ?? [1, 1];
    if (strides.length !== 2 || strides[0] !== strides[1]) {
      throw this.nodeError(node, `unequal strides [${strides}] are not supported`);
    }
    const autoPad = attrString(node, "auto_pad") ?? "NOTSET";
    let pads = attrInts(node, "pads") ?? [0, 0, 0, 0];
    if (autoPad === "VALID") pads = [0, 0, 0, 0];
    else if (autoPad !== "NOTSET" && autoPad !== "") {
      throw this.nodeError(node, `auto_pad ${autoPad} is not supported; export with explicit pads`);
    }
    if (pads.length !== 4 || pads.some((p) => p !== pads[0])) {
      throw this.nodeError(node, `asymmetric pads [${pads}] are not supported (all four must be equal)`);
    }
    if (cin !== x.dims[0]) {
      throw this.nodeError(node, `weight expects ${cin} input channels, the input has ${x.dims[0]}`);
    }
    if (b && numel(b.dims) !== cout) {
      throw this.nodeError(node, `bias has ${numel(b.dims)} values for ${cout} channels`);
    }
    const pad = pads[0], stride = strides[0];
    const size = (d: number | null) => d === null ? null : Math.floor((d + 2 * pad - kh) / stride) + 1;
    const [oh, ow] = [size(x.dims[1]), size(x.dims[2])];
    if ((oh !== null && oh < 1) || (ow !== null && ow < 1)) {
      throw this.nodeError(node, `a ${kh}x${kh} kernel does not fit the ${x.dims[1]}x${x.dims[2]} input`);
    }
    const name = this.irName(node, true);
    const conv: ConvNode = {
      op: "conv",
      name,
      inputs: [x.ir],
      output: name,
      weight: this.param(w, name, "weight", { shape: w.dims, kind: "param", init: "kaiming_normal_fan_out" }),
      stride,
      pad,
    };
    if (b) conv.bias = this.param(b, name, "bias", { shape: [cout], kind: "param", init: "zeros" });
    this.emit(conv);
    return [{ kind: "act", ir: name, layout: "nchw", dims: [cout, oh, ow], producer: conv }];
  },

  BatchNormalization(node) {
    const x = this.act(node, 0, "nchw");
    if (attrInt(node, "training_mode", 0) !== 0) {
      throw this.nodeError(node, "runs in training mode; export the model in eval mode");
    }
    this.noExtraOutputs(node, "training statistics");
    const c = x.dims[0]!;
    const parts = [
      ["scale", "weight", "param", "ones"],
      ["B", "bias", "param", "zeros"],
      ["mean", "running_mean", "buffer", "zeros"],
      ["var", "running_var", "buffer", "ones"],
    ] as const;
    const consts = parts.map(([what], i) => {
      const v = this.constant(node, i + 1, what);
      if (numel(v.dims) !== c) {
        throw this.nodeError(node, `${what} has ${numel(v.dims)} values for ${c} channels`);
      }
      return v;
    });
    const name = this.irName(node, true);
    const [weight, bias, runningMean, runningVar] = consts.map((v, i) =>
      this.param(v, name, parts[i][1], { shape: [c], kind: parts[i][2], init: parts[i][3] })
    );
    const bn: BatchNormNode = {
      op: "batchnorm",
      name,
      inputs: [x.ir],
      output: name,
      weight,
      bias,
      runningMean,
      runningVar,
      eps: float32Decimal(attrFloat(node, "epsilon", 1e-5)),
      // ONNX momentum weighs the running value; PyTorch's weighs the new batch statistic.
      momentum: Number((1 - float32Decimal(attrFloat(node, "momentum", 0.9))).toPrecision(12)),
    };
    this.emit(bn);
    return [{ kind: "act", ir: name, layout: "nchw", dims: [...x.dims] }];
  },

  Relu(node) {
    const x = this.act(node, 0);
    const name = this.irName(node, false);
    this.emit({ op: "relu", name, inputs: [x.ir], output: name });
    return [{ kind: "act", ir: name, layout: x.layout, dims: [...x.dims] }];
  },

  Add(node) {
    const a = this.required(node, 0), b = this.required(node, 1);
    if (a.kind === "act" && b.kind === "act") {
      const same = a.layout === b.layout &&
        (a.layout === "nc"
          ? numel(a.dims as number[]) === numel(b.dims as number[])
          : a.dims.every((d, i) => d === null || b.dims[i] === null || d === b.dims[i]));
      if (!same) {
        throw this.nodeError(
          node,
          `adds tensors of different shapes [${a.dims}] and [${b.dims}] (broadcasting is not supported)`,
        );
      }
      const name = this.irName(node, false);
      this.emit({ op: "add", name, inputs: [a.ir, b.ir], output: name });
      return [{ kind: "act", ir: name, layout: a.layout, dims: a.dims.map((d, i) => d ?? b.dims[i]) }];
    }
    const [x, c, xi] = a.kind === "act" ? [a, b, 0] : [b, a, 1];
    if (x.kind !== "act" || c.kind !== "const") {
      throw this.nodeError(node, "adds two constants or shape values; only activation + bias is supported");
    }
    return [this.foldBias(node, x, c, node.inputs[xi])];
  },

  GlobalAveragePool(node) {
    return [this.globalPool(node, this.act(node, 0, "nchw"), true)];
  },

  AveragePool(node) {
    const x = this.act(node, 0, "nchw");
    const k = attrInts(node, "kernel_shape") ?? [];
    const pads = attrInts(node, "pads") ?? [0, 0, 0, 0];
    if (pads.some((p) => p !== 0)) {
      throw this.nodeError(node, `padded average pooling (pads [${pads}]) is not supported`);
    }
    if (x.dims[1] === null || x.dims[2] === null) {
      throw this.nodeError(node, "needs a known spatial size to tell whether it pools the whole map");
    }
    if (k.length !== 2 || k[0] !== x.dims[1] || k[1] !== x.dims[2]) {
      throw this.nodeError(
        node,
        `kernel [${k}] on a ${x.dims[1]}x${x.dims[2]} map is not global pooling (the only pooling supported)`,
      );
    }
    return [this.globalPool(node, x, true)];
  },

  ReduceMean(node) {
    const x = this.act(node, 0, "nchw");
    const axes = (this.axes(node, 1) ?? []).map((a) => (a < 0 ? a + 4 : a)).sort();
    if (axes.length !== 2 || axes[0] !== 2 || axes[1] !== 3) {
      throw this.nodeError(node, `reduces axes [${axes}]; only the spatial mean over [2, 3] is supported`);
    }
    return [this.globalPool(node, x, attrInt(node, "keepdims", 1) !== 0)];
  },

  Pad(node) {
    const x = this.required(node, 0);
    const mode = attrString(node, "mode") ?? "constant";
    const pads = attrInts(node, "pads") ?? (node.inputs[1] ? this.ints(node, 1, "pads") : []);
    if (mode !== "constant" || pads.some((p) => p !== 0)) {
      throw this.nodeError(node, `${mode} padding [${pads}] is not supported (only all-zero pads)`);
    }
    return [x];
  },

  Flatten(node) {
    const x = this.required(node, 0);
    const rank = 1 + (x.kind === "act" ? x.dims.length : x.dims.length - 1);
    let axis = attrInt(node, "axis", 1);
    if (axis < 0) axis += rank;
    if (x.kind !== "act") {
      const d = x.dims;
      const lead = d.slice(0, axis).reduce((p, q) => p * q, 1);
      return [{ ...x, dims: [lead, numel(d) / lead] }];
    }
    if (axis !== 1) throw this.nodeError(node, `flattens from axis ${axis}; only axis 1 keeps the batch`);
    if (x.layout === "nchw") {
      throw this.nodeError(node, "flattens a [C, H, W] map before global pooling; not supported");
    }
    return [{ ...x, dims: [numel(x.dims as number[])], producer: undefined }];
  },

  Reshape(node) {
    const x = this.required(node, 0);
    const target = this.symbolic(node, 1).data;
    const allowZero = attrInt(node, "allowzero", 0) === 1;
    if (x.kind !== "act") {
      if (x.kind === "sym") throw this.nodeError(node, "reshaping shape values is not supported");
      return [{
        ...x,
        dims: resolveShape(target.map((t) => (typeof t === "number" ? t : NaN)), x.dims, allowZero),
      }];
    }
    if (x.layout === "nchw") {
      throw this.nodeError(node, "reshapes a [C, H, W] map before global pooling; not supported");
    }
    const per = x.dims as number[];
    const full: Sym[] = ["batch", ...per];
    const dims = target.map((t, i) => (t === 0 && !allowZero && i < full.length ? full[i] : t));
    const [first, ...rest] = dims;
    const batchOk = first === "batch" || first === -1 ||
      (typeof first === "number" && first === this.staticBatch);
    if (!batchOk || rest.some((d) => typeof d !== "number")) {
      throw this.nodeError(node, `reshapes to [${dims}], which does not keep the batch axis first`);
    }
    const restNums = rest as number[];
    const c = numel(per);
    let out: number[];
    if (first === -1) {
      if (restNums.some((d) => d < 0)) {
        throw this.nodeError(node, `reshapes to [${dims}] with two unknown sizes`);
      }
      out = restNums;
    } else {
      out = resolveShape(restNums, per, false, c);
    }
    if (numel(out) !== c) throw this.nodeError(node, `reshapes ${c} values per sample into [${out}]`);
    return [{ ...x, dims: out, producer: undefined }];
  },

  Squeeze(node) {
    const x = this.required(node, 0);
    const axes = this.axes(node, 1);
    if (x.kind !== "act") {
      const r = x.dims.length;
      const drop = new Set(
        (axes ?? x.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + r : a)),
      );
      return [{ ...x, dims: x.dims.filter((_, i) => !drop.has(i)) }];
    }
    if (x.layout === "nchw") {
      throw this.nodeError(node, "squeezes a [C, H, W] map before global pooling; not supported");
    }
    const r = 1 + x.dims.length;
    const drop = new Set(
      (axes ?? x.dims.flatMap((d, i) => (d === 1 ? [i + 1] : []))).map((a) => (a < 0 ? a + r : a)),
    );
    if (drop.has(0)) throw this.nodeError(node, "squeezes the batch axis");
    const dims = x.dims.filter((d, i) => {
      if (!drop.has(i + 1)) return true;
      if (d !== 1) throw this.nodeError(node, `squeezes axis ${i + 1} of size ${d}`);
      return false;
    });
    return [{ ...x, dims, producer: undefined }];
  },

  Unsqueeze(node) {
    const x = this.required(node, 0);
    const axes = this.axes(node, 1);
    if (!axes) throw this.nodeError(node, "has no axes");
    const rank = (x.kind === "act" ? 1 + x.dims.length : x.dims.length) + axes.length;
    const norm = axes.map((a) => (a < 0 ? a + rank : a)).sort((p, q) => p - q);
    if (x.kind !== "act") {
      const dims = [...x.dims];
      for (const a of norm) dims.splice(a, 0, 1);
      return [{ ...x, dims }];
    }
    if (x.layout === "nchw") throw this.nodeError(node, "unsqueezes a [C, H, W] map; not supported");
    if (norm.includes(0)) throw this.nodeError(node, "inserts an axis before the batch axis");
    const full: (number | null)[] = [null, ...x.dims];
    for (const a of norm) full.splice(a, 0, 1);
    return [{ ...x, dims: full.slice(1), producer: undefined }];
  },

  Shape(node) {
    const x = this.required(node, 0);
    const full: Sym[] = x.kind === "act" ? ["batch", ...x.dims.map((d) => d ?? "unknown")] : x.dims;
    const r = full.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const part = full.slice(clamp(attrInt(node, "start", 0)), clamp(attrInt(node, "end", r)));
    return [symOrConst(node.outputs[0], [part.length], part)];
  },

  Gather(node) {
    const data = this.symbolic(node, 0);
    const idx = this.constant(node, 1, "indices");
    const axis = attrInt(node, "axis", 0);
    if (data.dims.length !== 1 || (axis !== 0 && axis !== -1)) {
      throw this.nodeError(node, "only gathering from a 1-D shape vector is supported");
    }
    const n = data.data.length;
    const picked = Array.from(idx.data, (i) => {
      const j = i < 0 ? i + n : i;
      if (j < 0 || j >= n) throw this.nodeError(node, `index ${i} is out of range for ${n} entries`);
      return data.data[j];
    });
    return [symOrConst(node.outputs[0], idx.dims, picked)];
  },

  Concat(node) {
    const parts = node.inputs.map((_, i) => this.symbolic(node, i));
    if (parts.some((p) => p.dims.length !== 1)) {
      throw this.nodeError(node, "only concatenating 1-D shape vectors is supported");
    }
    const data = parts.flatMap((p) => p.data);
    return [symOrConst(node.outputs[0], [data.length], data)];
  },

  Cast(node) {
    const x = this.required(node, 0);
    const to = attrInt(node, "to", 0);
    if (x.kind === "act") throw this.nodeError(node, "casting runtime tensors is not supported");
    if (x.kind === "sym") return [x];
    const isInt = to !== ONNX_DTYPE.FLOAT && to !== ONNX_DTYPE.DOUBLE && to !== 10 && to !== 16;
    const data = isInt
      ? Float64Array.from(x.data, Math.trunc)
      : to === ONNX_DTYPE.FLOAT
      ? Float32Array.from(x.data)
      : Float64Array.from(x.data);
    return [{ ...x, name: node.outputs[0], data, isInt }];
  },

  Transpose(node) {
    const x = this.required(node, 0);
    if (x.kind !== "const") throw this.nodeError(node, "transposing runtime tensors is not supported");
    const r = x.dims.length;
    const perm = attrInts(node, "perm") ?? [...Array(r).keys()].reverse();
    return [{ ...transposeConst(x, perm), name: node.outputs[0] }];
  },

  Gemm(node) {
    const x = this.act(node, 0);
    if (x.layout !== "nc" || x.dims.length !== 1) {
      throw this.nodeError(node, `needs a [batch, features] input, got [batch, ${x.dims.join(", ")}]`);
    }
    if (attrInt(node, "transA", 0) !== 0) throw this.nodeError(node, "transA=1 is not supported");
    const b = this.constant(node, 1, "the weight");
    if (b.dims.length !== 2) throw this.nodeError(node, `weight has shape [${b.dims}]; expected 2-D`);
    const transB = attrInt(node, "transB", 0) !== 0;
    const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
    const [out, fin] = transB ? b.dims : [b.dims[1], b.dims[0]];
    if (fin !== x.dims[0]) {
      throw this.nodeError(node, `weight expects ${fin} features, the input has ${x.dims[0]}`);
    }
    const name = this.irName(node, true);
    let wData: Float32Array | undefined;
    if (!transB) wData = transposeConst(b, [1, 0]).data as Float32Array;
    if (alpha !== 1) wData = Float32Array.from(wData ?? b.data, (v) => v * alpha);
    const weight = this.param(
      b,
      name,
      "weight",
      { shape: [out, fin], kind: "param", init: "linear_uniform" },
      wData,
    );
    const lin: LinearNode = { op: "linear", name, inputs: [x.ir], output: name, weight };
    const c = node.inputs[2] ? this.constant(node, 2, "the bias") : undefined;
    if (c) {
      const k = numel(c.dims);
      if (k !== out && k !== 1) throw this.nodeError(node, `bias has ${k} values for ${out} outputs`);
      let cData: Float32Array | undefined;
      if (k === 1) cData = new Float32Array(out).fill(c.data[0]);
      if (beta !== 1) cData = Float32Array.from(cData ?? c.data, (v) => v * beta);
      lin.bias = this.param(c, name, "bias", {
        shape: [out],
        kind: "param",
        init: linearBiasInit(weight, name),
      }, cData);
    }
    this.emit(lin);
    return [{ kind: "act", ir: name, layout: "nc", dims: [out], producer: lin }];
  },

  MatMul(node) {
    const x = this.act(node, 0);
    if (x.layout !== "nc" || x.dims.length !== 1) {
      throw this.nodeError(node, `needs a [batch, features] input, got [batch, ${x.dims.join(", ")}]`);
    }
    const b = this.constant(node, 1, "the weight");
    if (b.dims.length !== 2 || b.dims[0] !== x.dims[0]) {
      throw this.nodeError(node, `weight of shape [${b.dims}] does not take ${x.dims[0]} features`);
    }
    const name = this.irName(node, true);
    const weight = this.param(b, name, "weight", {
      shape: [b.dims[1], b.dims[0]],
      kind: "param",
      init: "linear_uniform",
    }, transposeConst(b, [1, 0]).data as Float32Array);
    const lin: LinearNode = { op: "linear", name, inputs: [x.ir], output: name, weight };
    this.emit(lin);
    return [{ kind: "act", ir: name, layout: "nc", dims: [b.dims[1]], producer: lin }];
  },
};

/**
 * Operator types the importer understands.
 *
 * @example
 * ```ts
 * import { SUPPORTED_ONNX_OPS } from "./onnx_import.ts";
 * console.log(SUPPORTED_ONNX_OPS.includes("Gemm"), SUPPORTED_ONNX_OPS.includes("LSTM")); // true false
 * ```
 */
export const SUPPORTED_ONNX_OPS: readonly string[] = Object.keys(HANDLERS).sort();

/** Elementwise and reduction ops that exporters use to spell out a layer (GELU, LayerNorm, ...). */
const PRIMITIVE_OPS = new Set([
  "Div",
  "Mul",
  "Sub",
  "Pow",
  "Sqrt",
  "Erf",
  "Tanh",
  "Exp",
  "Sigmoid",
  "ReduceSum",
  "ReduceMax",
  "Neg",
  "Reciprocal",
  "Where",
  "Expand",
  "Slice",
  "Split",
  "Clip",
  "Max",
  "Min",
  "HardSigmoid",
  "Equal",
  "Less",
  "Greater",
  "Not",
  "Range",
  "ConstantOfShape",
]);

/** Layers that exporters decompose, recognised by the op types present in the graph. */
const DECOMPOSED: { layer: string; needs: string[]; ops: string[] }[] = [
  { layer: "GELU", needs: ["Erf"], ops: ["Div", "Erf", "Add", "Mul"] },
  { layer: "GELU (tanh approximation)", needs: ["Tanh", "Pow"], ops: ["Pow", "Mul", "Add", "Tanh"] },
  {
    layer: "LayerNorm",
    needs: ["ReduceMean", "Sub", "Pow", "Sqrt", "Div"],
    ops: ["ReduceMean", "Sub", "Pow", "Sqrt", "Div"],
  },
  {
    layer: "Softmax",
    needs: ["Exp", "ReduceSum", "Div"],
    ops: ["ReduceMax", "Sub", "Exp", "ReduceSum", "Div"],
  },
  { layer: "SiLU/Swish", needs: ["Sigmoid", "Mul"], ops: ["Sigmoid", "Mul"] },
  { layer: "Hardswish", needs: ["HardSigmoid", "Mul"], ops: ["HardSigmoid", "Mul"] },
];

/** The decomposed layers whose pieces all occur in `nodes`. */
function decomposedLayers(nodes: readonly OnnxNode[]): { layer: string; ops: string[] }[] {
  const present = new Set(nodes.map((n) => n.opType));
  return DECOMPOSED.filter((d) => d.needs.every((op) => present.has(op)))
    .map((d) => ({ layer: d.layer, ops: d.ops.filter((op) => present.has(op)) }));
}

// ---- helpers ----

/** A name from the file, shortened for an error message. */
function clip(s: string, max = 100): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

function attr(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attributes.find((a) => a.name === name);
}

function attrInt(node: OnnxNode, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.type === ATTR.INT ? a.i! : fallback;
}

function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.type === ATTR.FLOAT ? a.f! : fallback;
}

function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const a = attr(node, name);
  return a?.type === ATTR.INTS ? a.ints : undefined;
}

function attrString(node: OnnxNode, name: string): string | undefined {
  const a = attr(node, name);
  return a?.type === ATTR.STRING ? a.s : undefined;
}

function constFrom(t: OnnxTensor): ConstValue {
  const isInt = t.dataType !== ONNX_DTYPE.FLOAT && t.dataType !== ONNX_DTYPE.DOUBLE;
  return { kind: "const", name: t.name, dims: [...t.dims], data: t.data, isInt };
}

function symOrConst(name: string, dims: number[], data: Sym[]): ConstValue | SymValue {
  if (data.every((d) => typeof d === "number")) {
    return { kind: "const", name, dims, data: Float64Array.from(data as number[]), isInt: true };
  }
  return { kind: "sym", dims, data };
}

/** Reshape target with 0 (copy) and one -1 (infer) resolved against `dims` (`total` values). */
function resolveShape(target: number[], dims: number[], allowZero: boolean, total = numel(dims)): number[] {
  const out = target.map((t, i) => (t === 0 && !allowZero ? dims[i] : t));
  const known = out.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
  return out.map((d) => (d === -1 ? total / known : d));
}

function transposeConst(x: ConstValue, perm: number[]): ConstValue {
  const r = x.dims.length;
  const dims = perm.map((p) => x.dims[p]);
  const srcStrides = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; i--) {
    srcStrides[i] = s;
    s *= x.dims[i];
  }
  const out = x.data instanceof Float32Array
    ? new Float32Array(x.data.length)
    : new Float64Array(x.data.length);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < r; k++) src += idx[k] * srcStrides[perm[k]];
    out[o] = x.data[src];
    for (let k = r - 1; k >= 0; k--) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return { ...x, dims, data: out };
}

/** nn.Linear's bias init needs the weight as `<same prefix>.weight`; otherwise zeros. */
function linearBiasInit(weight: string, owner: string): ParamInit {
  return weight === `${owner}.weight` ? "linear_uniform" : "zeros";
}

/** `GlobalAveragePool_1` -> `global_average_pool_1`. */
function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Shortest decimal that reads back as the same float32 (ONNX float attributes are float32). */
function float32Decimal(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === Math.fround(x)) return v;
  }
  return x;
}

/**
 * The zoo graph of `arch` when the imported graph is exactly it (but for the BatchNorm batch
 * counters ONNX does not carry), so an imported export of ours is the zoo network again.
 */
function zooTwin(g: Graph, arch: string): Graph | undefined {
  let zoo: Graph;
  try {
    zoo = buildModel(arch, { numClasses: g.numClasses, inChannels: g.inChannels });
  } catch {
    return undefined;
  }
  const strip = (n: GraphNode) => {
    const copy: Record<string, unknown> = { ...n };
    delete copy.numBatchesTracked;
    return canonical(copy);
  };
  const sameNodes = zoo.nodes.length === g.nodes.length &&
    zoo.nodes.every((n, i) => strip(n) === strip(g.nodes[i]));
  const zooParams = zoo.params.filter((p) => p.dtype !== "int64");
  const sameParams = zooParams.length === g.params.length &&
    zooParams.every((p, i) => canonical({ ...p, init: "" }) === canonical({ ...g.params[i], init: "" }));
  const same = sameNodes && sameParams && zoo.input === g.input && zoo.output === g.output;
  return same ? zoo : undefined;
}

function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, val) =>
      val && typeof val === "object" && !Array.isArray(val)
        ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : 1)))
        : val,
  );
}
