/**
 * The model zoo: architecture names to IR graphs.
 *
 * @example
 * ```ts
 * import { buildModel, MODEL_NAMES } from "./zoo.ts";
 * const g = buildModel("wrn_40_2", { numClasses: 100 });
 * console.log(MODEL_NAMES.includes("resnet32x4"), g.numClasses); // true 100
 * ```
 * @module
 */

import type { Graph } from "../graph.ts";
import { cifarResNet, type ModelOptions } from "./resnet.ts";
import { wideResNet } from "./wrn.ts";

/** The named architectures of the paper's experiments (RepDistiller's CIFAR zoo). */
export const MODEL_NAMES = [
  "resnet8",
  "resnet14",
  "resnet20",
  "resnet32",
  "resnet44",
  "resnet56",
  "resnet110",
  "resnet8x4",
  "resnet32x4",
  "wrn_16_1",
  "wrn_16_2",
  "wrn_40_1",
  "wrn_40_2",
] as const;

/** A zoo architecture name. */
export type ModelName = typeof MODEL_NAMES[number];

/**
 * Builds the named architecture. Besides {@link MODEL_NAMES}, any `resnet<6n+2>`,
 * `resnet<6n+2>x4` and `wrn_<6n+4>_<k>` is accepted (architecture inference produces those).
 *
 * @example
 * ```ts
 * import { buildModel } from "./zoo.ts";
 * console.log(buildModel("resnet20", { inChannels: 1, numClasses: 10 }).inChannels); // 1
 * ```
 */
export function buildModel(arch: string, opts: Partial<ModelOptions> = {}): Graph {
  const o: ModelOptions = { numClasses: opts.numClasses ?? 100, inChannels: opts.inChannels ?? 3 };
  if (!Number.isInteger(o.numClasses) || o.numClasses < 1) {
    throw new Error(`numClasses must be a positive integer, got ${o.numClasses}`);
  }
  if (!Number.isInteger(o.inChannels) || o.inChannels < 1) {
    throw new Error(`inChannels must be a positive integer, got ${o.inChannels}`);
  }
  let m = /^resnet(\d+)(x4)?$/.exec(arch);
  if (m) {
    const depth = Number(m[1]);
    const widths = m[2] ? [32, 64, 128, 256] as const : [16, 16, 32, 64] as const;
    return cifarResNet(arch, depth, widths, o);
  }
  m = /^wrn_(\d+)_(\d+)$/.exec(arch);
  if (m) return wideResNet(arch, Number(m[1]), Number(m[2]), o);
  throw new Error(`unknown architecture "${arch}"; known: ${MODEL_NAMES.join(", ")}`);
}
