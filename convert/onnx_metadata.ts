/**
 * The `metadata_props` this package writes into exported ONNX files, so evaluation needs no extra
 * flags: architecture, class count, input channels, input size, dataset, normalisation, class
 * names, the BatchNorm treatment and the package that wrote it. Lists are JSON arrays.
 *
 * @example
 * ```ts
 * import { metadataEntries, parseModelMetadata } from "./onnx_metadata.ts";
 * const entries = metadataEntries({ arch: "resnet8", numClasses: 10, inChannels: 3, mean: [0.5, 0.5, 0.5] });
 * const back = parseModelMetadata(Object.fromEntries(entries), "m.onnx");
 * console.log(back.numClasses, back.mean); // 10 [ 0.5, 0.5, 0.5 ]
 * ```
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };
import { OnnxFormatError } from "./onnx_errors.ts";

/** The package name written as producer and into the metadata. */
export const PACKAGE_NAME: string = denoConfig.name;
/** The package version written as producer version and into the metadata. */
export const PACKAGE_VERSION: string = denoConfig.version;

/** Metadata keys, in the order they are written. */
export const METADATA_KEYS = {
  arch: "arch",
  numClasses: "num_classes",
  inChannels: "in_channels",
  dataset: "dataset",
  mean: "mean",
  std: "std",
  imageSize: "image_size",
  classNames: "class_names",
  batchNorm: "batchnorm",
  package: "package",
  packageVersion: "package_version",
} as const;

/** Typed view of the metadata (every field optional: other producers write none of it). */
export interface ModelMetadata {
  /** Zoo architecture name. */
  arch?: string;
  /** Logits width. */
  numClasses?: number;
  /** Image channels. */
  inChannels?: number;
  /** Input height and width the network expects (square images). */
  imageSize?: number;
  /** Dataset the network was trained on, e.g. `cifar100`. */
  dataset?: string;
  /** Per-channel normalisation mean (inputs are `(x / 255 - mean) / std`). */
  mean?: number[];
  /** Per-channel normalisation standard deviation. */
  std?: number[];
  /** Class names, index = class id. */
  classNames?: string[];
  /** `folded` into the convolutions or `kept` as BatchNormalization nodes. */
  batchNorm?: "folded" | "kept";
  /** Package that wrote the file. */
  package?: string;
  /** Its version. */
  packageVersion?: string;
}

/**
 * Key/value pairs for `metadata_props`, fixed order, absent fields left out.
 *
 * @example
 * ```ts
 * import { metadataEntries } from "./onnx_metadata.ts";
 * console.log(metadataEntries({ classNames: ["cat", "dog"] })); // [ [ "class_names", '["cat","dog"]' ] ]
 * ```
 */
export function metadataEntries(m: ModelMetadata): [string, string][] {
  const out: [string, string][] = [];
  for (const [field, key] of Object.entries(METADATA_KEYS) as [keyof ModelMetadata, string][]) {
    const v = m[field];
    if (v === undefined) continue;
    out.push([key, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  return out;
}

/**
 * Parses the package's keys out of a file's metadata; malformed values are an
 * {@link OnnxFormatError} naming `fileName` and the key. Unknown keys are ignored.
 *
 * @example
 * ```ts
 * import { parseModelMetadata } from "./onnx_metadata.ts";
 * try { parseModelMetadata({ num_classes: "ten" }, "m.onnx"); } catch (e) { console.log((e as Error).message); }
 * // m.onnx: metadata num_classes is "ten", not a positive integer
 * ```
 */
export function parseModelMetadata(record: Record<string, string>, fileName: string): ModelMetadata {
  const m: ModelMetadata = {};
  const K = METADATA_KEYS;
  const int = (key: string): number | undefined => {
    const raw = record[key];
    if (raw === undefined) return undefined;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1) {
      throw new OnnxFormatError(
        fileName,
        `metadata ${key} is ${JSON.stringify(raw)}, not a positive integer`,
      );
    }
    return v;
  };
  const list = <T>(key: string, ok: (v: unknown) => v is T, what: string): T[] | undefined => {
    const raw = record[key];
    if (raw === undefined) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    if (!Array.isArray(v) || !v.every(ok)) {
      throw new OnnxFormatError(fileName, `metadata ${key} is not a JSON array of ${what}`);
    }
    return v;
  };
  const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  const isStr = (v: unknown): v is string => typeof v === "string";
  if (record[K.arch] !== undefined) m.arch = record[K.arch];
  m.numClasses = int(K.numClasses);
  m.inChannels = int(K.inChannels);
  m.imageSize = int(K.imageSize);
  if (record[K.dataset] !== undefined) m.dataset = record[K.dataset];
  m.mean = list(K.mean, isNum, "numbers");
  m.std = list(K.std, isNum, "numbers");
  m.classNames = list(K.classNames, isStr, "strings");
  const bn = record[K.batchNorm];
  if (bn !== undefined) {
    if (bn !== "folded" && bn !== "kept") {
      throw new OnnxFormatError(
        fileName,
        `metadata ${K.batchNorm} is ${JSON.stringify(bn)}, not "folded" or "kept"`,
      );
    }
    m.batchNorm = bn;
  }
  if (record[K.package] !== undefined) m.package = record[K.package];
  if (record[K.packageVersion] !== undefined) m.packageVersion = record[K.packageVersion];
  for (const k of Object.keys(m) as (keyof ModelMetadata)[]) if (m[k] === undefined) delete m[k];
  return m;
}
