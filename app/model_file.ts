/**
 * Loads a network from a file the user names: a PyTorch `.pth` checkpoint (architecture
 * inferred from its tensors unless given) or an ONNX file (as written by `torch.onnx.export` or
 * by this package). One entry point for teachers, conversion, evaluation and analysis.
 *
 * @example
 * ```ts
 * import { loadModelFile } from "./model_file.ts";
 * try { await loadModelFile("missing.pth"); } catch (e) { console.log((e as Error).message); }
 * // missing.pth: cannot read the file (No such file or directory ...)
 * ```
 * @module
 */

import * as path from "node:path";
import { fitZooModel } from "../convert/infer_arch.ts";
import { importOnnx } from "../convert/onnx_import.ts";
import { type ModelMetadata, parseModelMetadata } from "../convert/onnx_metadata.ts";
import { readCheckpoint } from "../convert/pth.ts";
import type { Graph } from "../lib/graph.ts";
import type { StateDict } from "../lib/tensor.ts";
import type { NonFinitePolicy } from "../lib/non_finite.ts";

/** A loaded network. */
export interface LoadedModel {
  /** The network. */
  graph: Graph;
  /** Its parameters and buffers (PyTorch layout). */
  weights: StateDict;
  /** One line: what was found (architecture, classes, channels, format). */
  description: string;
  /** File format. */
  format: "pth" | "onnx";
  /** ONNX metadata written by this package (dataset, normalisation, class names), if any. */
  metadata: ModelMetadata;
}

/** Options of {@link loadModelFile}. */
export interface LoadModelOptions extends NonFinitePolicy {
  /** Architecture for a .pth file (checked strictly); inferred when absent. */
  arch?: string;
}

/**
 * Reads `file` (.pth/.pt/.tar or .onnx; decided by content, not only the extension).
 *
 * @example
 * ```ts ignore
 * const teacher = await loadModelFile("weights/cifar100_resnet56.pth");
 * console.log(teacher.description);
 * ```
 */
export async function loadModelFile(file: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new Error(`${file}: cannot read the file (${(e as Error).message.split("\n")[0]})`);
  }
  if (bytes.length === 0) throw new Error(`${file}: the file is empty`);
  if (isOnnx(file, bytes)) {
    const imp = importOnnx(bytes, file, opts);
    const metadata = parseModelMetadata(imp.metadata, file);
    if (opts.arch && metadata.arch && opts.arch !== metadata.arch) {
      throw new Error(`${file}: the ONNX metadata says ${metadata.arch}, but --arch ${opts.arch} was given`);
    }
    const description =
      `${imp.graph.arch} from ONNX (opset ${imp.opset}, ${imp.producer || "unknown producer"}), ` +
      `${imp.graph.inChannels} input channel${
        imp.graph.inChannels === 1 ? "" : "s"
      }, ${imp.graph.numClasses} classes`;
    return { graph: imp.graph, weights: imp.weights, description, format: "onnx", metadata };
  }
  const ck = readCheckpoint(bytes, file, opts);
  const fit = fitZooModel(ck.stateDict, file, { arch: opts.arch });
  return {
    graph: fit.graph,
    weights: fit.stateDict,
    description: `${fit.description} (${ck.format})`,
    format: "pth",
    metadata: {},
  };
}

/** ONNX files are protobuf; PyTorch checkpoints are zip archives (or legacy pickles). */
function isOnnx(file: string, bytes: Uint8Array): boolean {
  const zip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  const pickle = bytes[0] === 0x80;
  if (zip || pickle) return false;
  return path.extname(file).toLowerCase() === ".onnx" || bytes[0] === 0x08; // field 1 (ir_version), varint
}
