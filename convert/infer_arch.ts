/**
 * Which zoo architecture a state dict is, read from its keys and shapes alone: CIFAR ResNets
 * (`resnet<6n+2>`, `resnet<6n+2>x4`) and Wide ResNets (`wrn_<6n+4>_<k>`) in the RepDistiller
 * layout, their class count and input channels. And the strict check of a state dict against
 * an explicit architecture, which names the first tensor that does not fit.
 *
 * @example
 * ```ts
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * import { inferArchitecture } from "./infer_arch.ts";
 * const sd = initStateDict(buildModel("wrn_16_2", { numClasses: 10 }), 0);
 * console.log(inferArchitecture(sd, "w.pth").description);
 * // wrn_16_2: 3 stages x 2 pre-activation BasicBlocks, widths 16/32/64/128, 3 input channels, 10 classes
 * ```
 * @module
 */

import type { Graph } from "../lib/graph.ts";
import { buildModel } from "../lib/models/zoo.ts";
import type { HostTensor, StateDict } from "../lib/tensor.ts";
import { CheckpointError } from "./checkpoint_error.ts";

/** What {@link inferArchitecture} concluded. */
export interface InferredArchitecture {
  /** Zoo name, for `buildModel`. */
  arch: string;
  /** CIFAR ResNet or Wide ResNet. */
  family: "resnet" | "wrn";
  /** Network depth (6n+2 for ResNets, 6n+4 for WRNs). */
  depth: number;
  /** BasicBlocks in each of the three stages. */
  blocksPerStage: number;
  /** Stem width and the three stage widths. */
  widths: [number, number, number, number];
  /** Image channels the first convolution reads. */
  inChannels: number;
  /** Logits width. */
  numClasses: number;
  /** One line: `resnet56: 3 stages x 9 BasicBlocks, widths 16/16/32/64, 3 input channels, 100 classes`. */
  description: string;
}

/**
 * Infers the zoo architecture of `sd` and checks every tensor against it. `fileName` labels
 * errors; an unknown layout is a {@link CheckpointError} that says what was found.
 *
 * @example
 * ```ts
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * import { inferArchitecture } from "./infer_arch.ts";
 * const a = inferArchitecture(initStateDict(buildModel("resnet8x4", { numClasses: 100 }), 0), "t.pth");
 * console.log(a.arch, a.numClasses, a.inChannels); // resnet8x4 100 3
 * ```
 */
export function inferArchitecture(sd: StateDict, fileName: string): InferredArchitecture {
  const fail = (problem: string): never => {
    throw new CheckpointError(fileName, problem);
  };
  const keys = [...sd.keys()];
  if (keys.length === 0) fail("the state dict is empty");
  const has = (k: string) => sd.has(k);
  const shapeOf = (k: string) => sd.get(k)!.shape;
  const conv1 = sd.get("conv1.weight");
  const resnetLike = has("layer1.0.conv1.weight");
  const wrnLike = has("block1.layer.0.conv1.weight");
  if (!conv1 || conv1.shape.length !== 4 || (!resnetLike && !wrnLike)) {
    fail(
      `unknown layout: expected conv1.weight with layer1..3 (CIFAR ResNet) or block1..3.layer ` +
        `(Wide ResNet); found keys ${keys.slice(0, 6).join(", ")}${keys.length > 6 ? ", ..." : ""}`,
    );
  }
  const fc = sd.get("fc.weight");
  if (!fc || fc.shape.length !== 2) {
    const alt = keys.find((k) => /^(linear|classifier|head)\.weight$/.test(k));
    fail(`no classifier fc.weight${alt ? ` (found ${alt}; the zoo names it fc)` : ""}: not a zoo layout`);
  }
  const inChannels = conv1!.shape[1];
  const numClasses = fc!.shape[0];

  const stageBlocks = (pattern: (s: number) => RegExp) =>
    [1, 2, 3].map((s) => {
      const ids = new Set<number>();
      for (const k of keys) {
        const m = pattern(s).exec(k);
        if (m) ids.add(Number(m[1]));
      }
      const count = ids.size;
      for (let i = 0; i < count; i++) if (!ids.has(i)) fail(`stage ${s} skips block ${i}`);
      return count;
    });

  let inferred: Omit<InferredArchitecture, "description">;
  if (resnetLike) {
    if (keys.some((k) => k.startsWith("layer4."))) {
      fail("an ImageNet-style ResNet (it has layer4); the zoo's CIFAR ResNets have three stages");
    }
    if (keys.some((k) => /^layer\d\.\d+\.conv3\./.test(k))) {
      fail("a ResNet of Bottleneck blocks (conv3); the zoo's CIFAR ResNets use BasicBlocks");
    }
    const counts = stageBlocks((s) => new RegExp(`^layer${s}\\.(\\d+)\\.`));
    if (counts[0] === 0 || counts.some((c) => c !== counts[0])) {
      fail(`a ResNet with ${counts.join("/")} blocks per stage; the zoo's have equal stages`);
    }
    const widths: [number, number, number, number] = [
      conv1!.shape[0],
      shapeOf("layer1.0.conv1.weight")[0],
      has("layer2.0.conv1.weight") ? shapeOf("layer2.0.conv1.weight")[0] : 0,
      has("layer3.0.conv1.weight") ? shapeOf("layer3.0.conv1.weight")[0] : 0,
    ];
    const x4 = sameWidths(widths, [32, 64, 128, 256]);
    if (!x4 && !sameWidths(widths, [16, 16, 32, 64])) {
      fail(
        `a CIFAR ResNet with widths ${widths.join("/")}; the zoo has 16/16/32/64 (resnetN) and ` +
          `32/64/128/256 (resnetNx4)`,
      );
    }
    for (let s = 1; s <= 3; s++) {
      // Where the block changes stride or width, the zoo's shortcut is a 1x1 conv + BatchNorm.
      const needsProjection = s > 1 || widths[0] !== widths[1];
      if (needsProjection && !has(`layer${s}.0.downsample.0.weight`)) {
        fail(
          `layer${s}.0 has a shortcut without parameters (option-A zero-padding shortcuts, as in ` +
            `pytorch_resnet_cifar10); the zoo's ResNets use 1x1-conv shortcuts (RepDistiller layout)`,
        );
      }
    }
    const depth = 6 * counts[0] + 2;
    inferred = {
      arch: `resnet${depth}${x4 ? "x4" : ""}`,
      family: "resnet",
      depth,
      blocksPerStage: counts[0],
      widths,
      inChannels,
      numClasses,
    };
  } else {
    const counts = stageBlocks((s) => new RegExp(`^block${s}\\.layer\\.(\\d+)\\.`));
    if (counts[0] === 0 || counts.some((c) => c !== counts[0])) {
      fail(`a Wide ResNet with ${counts.join("/")} blocks per stage; the zoo's have equal stages`);
    }
    const widths: [number, number, number, number] = [
      conv1!.shape[0],
      shapeOf("block1.layer.0.conv1.weight")[0],
      has("block2.layer.0.conv1.weight") ? shapeOf("block2.layer.0.conv1.weight")[0] : 0,
      has("block3.layer.0.conv1.weight") ? shapeOf("block3.layer.0.conv1.weight")[0] : 0,
    ];
    const k = widths[1] / 16;
    if (!Number.isInteger(k) || k < 1 || !sameWidths(widths, [16, 16 * k, 32 * k, 64 * k])) {
      fail(`a Wide ResNet with widths ${widths.join("/")}; the zoo's are 16/16k/32k/64k`);
    }
    const depth = 6 * counts[0] + 4;
    inferred = {
      arch: `wrn_${depth}_${k}`,
      family: "wrn",
      depth,
      blocksPerStage: counts[0],
      widths,
      inChannels,
      numClasses,
    };
  }
  const blockKind = inferred.family === "wrn" ? "pre-activation BasicBlocks" : "BasicBlocks";
  const description = `${inferred.arch}: 3 stages x ${inferred.blocksPerStage} ${blockKind}, widths ` +
    `${inferred.widths.join("/")}, ${inChannels} input channel${inChannels === 1 ? "" : "s"}, ` +
    `${numClasses} class${numClasses === 1 ? "" : "es"}`;
  // The key scan found the shape of the network; the full check proves every tensor fits it.
  checkStateDictAgainst(buildModel(inferred.arch, { numClasses, inChannels }), sd, fileName, false);
  return { ...inferred, description };
}

function sameWidths(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Checks `sd` against `graph` strictly and returns a state dict with exactly the graph's
 * parameters, in graph order (tensor arrays are shared with `sd`, converted only where the
 * dtype differs). A missing `num_batches_tracked` (checkpoints older than PyTorch 0.4.1) is
 * filled with 0, as PyTorch does. Otherwise any difference is a {@link CheckpointError} that
 * names the first offending tensor with both shapes and lists missing and unexpected keys.
 *
 * @example
 * ```ts
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * import { checkStateDictAgainst } from "./infer_arch.ts";
 * const sd = initStateDict(buildModel("resnet8", { numClasses: 10 }), 0);
 * try {
 *   checkStateDictAgainst(buildModel("resnet8", { numClasses: 100 }), sd, "r8.pth");
 * } catch (e) {
 *   console.log((e as Error).message.includes("fc.weight: the file has [10, 64], resnet8 expects [100, 64]")); // true
 * }
 * ```
 */
export function checkStateDictAgainst(graph: Graph, sd: StateDict, fileName: string, hint = true): StateDict {
  const out: StateDict = new Map();
  const expected = new Set<string>();
  let first = "";
  const mismatched: string[] = [];
  const missing: string[] = [];
  for (const p of graph.params) {
    expected.add(p.name);
    const t = sd.get(p.name);
    if (!t) {
      if (p.name.endsWith(".num_batches_tracked")) {
        out.set(p.name, { dtype: p.dtype, shape: [...p.shape], data: new Float64Array(1) });
        continue;
      }
      missing.push(p.name);
      first ||= `${p.name}: missing from the file, ${graph.arch} expects ${fmtShape(p.shape)}`;
      continue;
    }
    if (!sameWidths(t.shape, p.shape)) {
      mismatched.push(p.name);
      first ||= `${p.name}: the file has ${fmtShape(t.shape)}, ${graph.arch} expects ${fmtShape(p.shape)}`;
      continue;
    }
    out.set(p.name, withDType(t, p.dtype));
  }
  const unexpected = [...sd.keys()].filter((k) => !expected.has(k));
  if (!first && unexpected.length === 0) return out;
  if (!first) {
    first = `${unexpected[0]}: not a tensor of ${graph.arch}, the file has ${
      fmtShape(sd.get(unexpected[0])!.shape)
    }`;
  }
  const parts = [
    `does not fit ${graph.arch} (${graph.inChannels} input channels, ${graph.numClasses} classes)`,
  ];
  parts.push(`first offending tensor ${first}`);
  if (mismatched.length) parts.push(`${mismatched.length} with another shape`);
  if (missing.length) parts.push(`${missing.length} missing (${listNames(missing)})`);
  if (unexpected.length) parts.push(`${unexpected.length} unexpected (${listNames(unexpected)})`);
  if (hint) {
    try {
      const a = inferArchitecture(sd, fileName);
      parts.push(
        `the file looks like ${a.arch} with ${a.numClasses} classes and ${a.inChannels} input channels`,
      );
    } catch {
      // No zoo architecture fits: nothing to suggest.
    }
  }
  throw new CheckpointError(fileName, parts.join("; "));
}

function withDType(t: HostTensor, dtype: HostTensor["dtype"]): HostTensor {
  if (t.dtype === dtype) return t;
  const data = dtype === "int64" ? Float64Array.from(t.data) : Float32Array.from(t.data);
  return { dtype, shape: [...t.shape], data };
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

function listNames(names: string[]): string {
  return names.slice(0, 4).join(", ") + (names.length > 4 ? ", ..." : "");
}

/** Options of {@link fitZooModel}. */
export interface FitOptions {
  /** Architecture to check against instead of inferring one. */
  arch?: string;
  /** Classes, when not read from `fc.weight`. */
  numClasses?: number;
  /** Input channels, when not read from `conv1.weight`. */
  inChannels?: number;
}

/**
 * The zoo graph for a loaded state dict, inferred or explicit, with the strict state dict for
 * it and a one-line description.
 *
 * @example
 * ```ts
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * import { fitZooModel } from "./infer_arch.ts";
 * const sd = initStateDict(buildModel("resnet20", { numClasses: 10 }), 0);
 * const { graph, description } = fitZooModel(sd, "t.pth", { arch: "resnet20" });
 * console.log(graph.numClasses, description); // 10 resnet20 (explicit), 3 input channels, 10 classes
 * ```
 */
export function fitZooModel(
  sd: StateDict,
  fileName: string,
  opts: FitOptions = {},
): { graph: Graph; stateDict: StateDict; description: string } {
  if (!opts.arch) {
    const a = inferArchitecture(sd, fileName);
    if (opts.numClasses !== undefined && opts.numClasses !== a.numClasses) {
      throw new CheckpointError(
        fileName,
        `has ${a.numClasses} classes (${a.arch}), ${opts.numClasses} were asked for`,
      );
    }
    if (opts.inChannels !== undefined && opts.inChannels !== a.inChannels) {
      throw new CheckpointError(
        fileName,
        `reads ${a.inChannels} input channels, ${opts.inChannels} were asked for`,
      );
    }
    const graph = buildModel(a.arch, { numClasses: a.numClasses, inChannels: a.inChannels });
    return { graph, stateDict: checkStateDictAgainst(graph, sd, fileName), description: a.description };
  }
  const numClasses = opts.numClasses ?? sd.get("fc.weight")?.shape[0];
  const inChannels = opts.inChannels ?? sd.get("conv1.weight")?.shape[1];
  let graph: Graph;
  try {
    graph = buildModel(opts.arch, { numClasses, inChannels });
  } catch (e) {
    throw new CheckpointError(fileName, (e as Error).message);
  }
  const stateDict = checkStateDictAgainst(graph, sd, fileName);
  const description = `${graph.arch} (explicit), ${graph.inChannels} input channel` +
    `${graph.inChannels === 1 ? "" : "s"}, ${graph.numClasses} classes`;
  return { graph, stateDict, description };
}
