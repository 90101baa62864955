/**
 * `deno task convert`: a .pth or ONNX network in, an ONNX file for onnxruntime out, with a
 * summary of what was converted. The output is written to a temporary file and renamed, so a
 * failed conversion leaves nothing behind.
 *
 * @example
 * ```ts ignore
 * import { convertModel } from "./convert.ts";
 * const summary = await convertModel({ from: "teacher.pth", out: "teacher.onnx" });
 * console.log(summary);
 * ```
 * @module
 */

import * as path from "node:path";
import { describeOnnx, formatOnnxDescription } from "../convert/onnx_describe.ts";
import { describeNonFinite, findNonFinite } from "../lib/non_finite.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { decodeOnnxModel } from "../convert/onnx_proto.ts";
import { writeFileAtomic } from "../lib/atomic_file.ts";
import { METADATA_DATASETS } from "../lib/config.ts";
import { countParameters } from "../lib/graph.ts";
import { datasetMetadata } from "../lib/data/metadata.ts";
import { loadModelFile } from "./model_file.ts";
import { checkChannels } from "./normalisation.ts";

/** The flag of {@link ConvertOptions.allowNonFinite}, named by the refusals. */
const ALLOW_FLAG = "--allow-non-finite";

/** Options of {@link convertModel}. */
export interface ConvertOptions {
  /** Source .pth or .onnx file. */
  from: string;
  /** Destination .onnx file. */
  out: string;
  /** Architecture of a .pth source (inferred when absent). */
  arch?: string;
  /** ONNX opset of the output (13 to 17). */
  opset?: number;
  /** Keep BatchNormalization nodes instead of folding them into the convolutions. */
  keepBatchNorm?: boolean;
  /**
   * Write the file even if weights hold NaN/±Inf (refused by default, naming the tensors and
   * `--allow-non-finite`; a source with such weights is refused when read unless this is set).
   */
  allowNonFinite?: boolean;
  /** Dataset metadata to embed (name, normalisation, class names). */
  dataset?: { name: string; mean: number[]; std: number[]; classNames: string[]; imageSize: number };
  /** Normalisation mean to embed (overrides the dataset's and the source's). */
  mean?: number[];
  /** Normalisation std to embed (overrides the dataset's and the source's). */
  std?: number[];
  /** Input height and width (default: the dataset's, else the source's metadata, else 32). */
  imageSize?: number;
}

/**
 * Converts and returns a multi-line human summary.
 *
 * @example
 * ```ts ignore
 * console.log(await convertModel({ from: "a.pth", out: "a.onnx", arch: "resnet56" }));
 * ```
 */
export async function convertModel(o: ConvertOptions): Promise<string> {
  const src = await loadModelFile(o.from, {
    arch: o.arch,
    allowNonFinite: o.allowNonFinite,
    nonFiniteHint: `pass ${ALLOW_FLAG} to convert it anyway`,
  });
  const meta = src.metadata;
  const g = src.graph;
  if (o.dataset && (o.dataset.classNames.length !== g.numClasses || o.dataset.mean.length !== g.inChannels)) {
    const fits = METADATA_DATASETS.filter((d) => {
      const m = datasetMetadata(d);
      return m.classNames.length === g.numClasses && m.mean.length === g.inChannels;
    });
    throw new Error(
      `--dataset ${o.dataset.name} has ${o.dataset.classNames.length} classes of ${o.dataset.mean.length}-channel ` +
        `images but ${o.from} has ${g.numClasses} classes and ${g.inChannels} input channels; ` +
        (fits.length
          ? `pass --dataset ${fits.join(" or --dataset ")}`
          : "leave out --dataset (or pass --mean/--std for its normalisation)"),
    );
  }
  const what = o.dataset?.name ?? meta.dataset ?? path.basename(o.from);
  const bytes = exportOnnx(src.graph, src.weights, {
    opset: o.opset,
    foldBatchNorm: !o.keepBatchNorm,
    imageSize: o.imageSize || o.dataset?.imageSize || meta.imageSize || 32,
    dataset: o.dataset?.name ?? meta.dataset,
    mean: checkChannels(o.mean, "--mean", g.inChannels, what) ?? o.dataset?.mean ?? meta.mean,
    std: checkChannels(o.std, "--std", g.inChannels, what, true) ?? o.dataset?.std ?? meta.std,
    classNames: o.dataset?.classNames ?? meta.classNames,
  });
  // Folding BatchNorm can itself make NaN/Inf (a negative running variance): check what is written.
  const bad = findNonFinite(decodeOnnxModel(bytes, o.out).initializers.map((t) => [t.name, t] as const));
  if (bad.length > 0 && !o.allowNonFinite) {
    throw new Error(
      `${o.out}: not written: the converted weights hold non-finite values: ${describeNonFinite(bad)}; ` +
        `pass ${ALLOW_FLAG} to write it anyway`,
    );
  }
  await writeFileAtomic(o.out, bytes);
  const d = describeOnnx(bytes, o.out);
  return [
    `read    ${o.from}: ${src.description}`,
    `params  ${countParameters(src.graph).toLocaleString("en-US")} trainable`,
    `wrote   ${o.out} (${(bytes.length / 1e6).toFixed(2)} MB)`,
    formatOnnxDescription(d),
  ].join("\n");
}
