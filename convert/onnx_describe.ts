/**
 * A short summary of an ONNX file for `deno task convert`: producer, opset, inputs and outputs,
 * operator histogram, stored values, and, when the importer accepts it, the architecture, class
 * count and trainable parameter count (else the reason it does not).
 *
 * @example
 * ```ts
 * import { describeOnnx, formatOnnxDescription } from "./onnx_describe.ts";
 * import { exportOnnx } from "./onnx_export.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const d = describeOnnx(exportOnnx(g, initStateDict(g, 0)), "resnet8.onnx");
 * console.log(d.arch, d.parameters, d.operators.Conv); // resnet8 77706 9
 * console.log(formatOnnxDescription(d).split("\n")[0]); // resnet8.onnx: resnet8, 10 classes, 77,706 parameters
 * ```
 * @module
 */

import { countParameters } from "../lib/graph.ts";
import { numel } from "../lib/tensor.ts";
import { OnnxFormatError } from "./onnx_errors.ts";
import { importOnnxModel } from "./onnx_import.ts";
import { decodeOnnxModel, defaultOpset, type OnnxValueInfo } from "./onnx_proto.ts";

/** What {@link describeOnnx} reports. */
export interface OnnxDescription {
  /** File label. */
  fileName: string;
  /** Producer name and version. */
  producer: string;
  /** ai.onnx operator set (0 when the file declares none). */
  opset: number;
  /** ONNX IR version. */
  irVersion: number;
  /** Graph inputs that are not initializers, with their shapes. */
  inputs: OnnxValueInfo[];
  /** Graph outputs. */
  outputs: OnnxValueInfo[];
  /** Node count per operator type, most frequent first. */
  operators: Record<string, number>;
  /** Number of initializers. */
  initializers: number;
  /** Values stored in initializers (all of them, BatchNorm statistics included). */
  storedValues: number;
  /** `metadata_props`. */
  metadata: Record<string, string>;
  /** Whether {@link importOnnxModel} accepts the file. */
  importable: boolean;
  /** Why not, when it does not. */
  problem?: string;
  /** Architecture (metadata, else `onnx`), when importable. */
  arch?: string;
  /** Logits width, when importable. */
  numClasses?: number;
  /** Trainable parameters of the imported network, when importable. */
  parameters?: number;
}

/**
 * Summarises ONNX bytes. Undecodable bytes throw {@link OnnxFormatError}; a decodable model the
 * importer rejects is described with `importable: false` and the reason.
 *
 * @example
 * ```ts
 * import { describeOnnx } from "./onnx_describe.ts";
 * try { describeOnnx(new Uint8Array(8), "zeros.bin"); } catch (e) { console.log((e as Error).name); } // OnnxFormatError
 * ```
 */
export function describeOnnx(bytes: Uint8Array, fileName = "model.onnx"): OnnxDescription {
  const model = decodeOnnxModel(bytes, fileName);
  const counts = new Map<string, number>();
  for (const n of model.nodes) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
  const operators = Object.fromEntries(
    [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
  );
  const initNames = new Set(model.initializers.map((t) => t.name));
  const d: OnnxDescription = {
    fileName,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(" "),
    opset: defaultOpset(model.opsetImports) ?? 0,
    irVersion: model.irVersion,
    inputs: model.inputs.filter((i) => !initNames.has(i.name)),
    outputs: model.outputs,
    operators,
    initializers: model.initializers.length,
    storedValues: model.initializers.reduce((s, t) => s + numel(t.dims), 0),
    metadata: Object.fromEntries(model.metadata),
    importable: false,
  };
  try {
    const imp = importOnnxModel(model, fileName);
    d.importable = true;
    d.arch = imp.graph.arch;
    d.numClasses = imp.graph.numClasses;
    d.parameters = countParameters(imp.graph);
  } catch (e) {
    if (!(e instanceof OnnxFormatError)) throw e;
    d.problem = e.problem;
  }
  return d;
}

/**
 * Renders a description as a few human-readable lines.
 *
 * @example
 * ```ts
 * import { formatOnnxDescription } from "./onnx_describe.ts";
 * console.log(formatOnnxDescription({
 *   fileName: "m.onnx", producer: "pytorch 1.13.0", opset: 13, irVersion: 7, inputs: [], outputs: [],
 *   operators: { Conv: 2 }, initializers: 2, storedValues: 10, metadata: {}, importable: false, problem: "node x: bad",
 * }).split("\n")[0]); // m.onnx: not importable: node x: bad
 * ```
 */
export function formatOnnxDescription(d: OnnxDescription): string {
  const shape = (v: OnnxValueInfo) => `${v.name} [${v.dims?.map((x) => x ?? "?").join(", ") ?? "?"}]`;
  const lines = [
    d.importable
      ? `${d.fileName}: ${d.arch}, ${d.numClasses} classes, ${
        d.parameters!.toLocaleString("en-US")
      } parameters`
      : `${d.fileName}: not importable: ${d.problem}`,
    `  producer ${d.producer || "unknown"}, opset ${d.opset}, IR version ${d.irVersion}`,
    `  inputs ${d.inputs.map(shape).join(", ")}; outputs ${d.outputs.map(shape).join(", ")}`,
    `  operators ${Object.entries(d.operators).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `  ${d.initializers} initializers, ${d.storedValues.toLocaleString("en-US")} stored values`,
  ];
  const meta = Object.entries(d.metadata).filter(([k]) => k !== "class_names");
  if (meta.length) lines.push(`  metadata ${meta.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  return lines.join("\n");
}
