/**
 * Canonizer: rewrites an IR {@link Graph} (eval mode) into the layer list LRP walks, with each
 * BatchNorm merged into the convolution before it where the package's one foldability rule
 * (`foldableBatchNorms` of lib/models/batchnorm_fold.ts: the convolution's output feeds only
 * that BatchNorm) allows, with that module's formula W' = W * s, b' = beta + (b - mean) * s,
 * s = gamma / sqrt(var + eps), in tfjs ops on the network's parameters. A BatchNorm that cannot
 * be merged (the WRN's pre-activation BatchNorm after a residual add, or after a stem whose
 * output also feeds an identity shortcut) stays as an elementwise `batchnorm` layer
 * y = s * x + t with t = beta - mean * s. Tensors are tfjs layout (NHWC, conv HWIO, linear
 * [in, out]).
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { canonize } from "./canonizers.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const c = canonize(tf, g, (name) => net.vars.get(name)!);
 * console.log(c.layers.some((l) => l.op === "batchnorm")); // false: every ResNet BatchNorm merges
 * c.dispose(); net.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../../deps.ts";
import type { BatchNormNode, Graph } from "../../../graph.ts";
import { foldableBatchNorms } from "../../../models/batchnorm_fold.ts";
import { type Canonizing, tfjsOp } from "../ops.ts";

/** A convolution (BatchNorm possibly merged in). */
export interface LrpConv {
  /** Layer kind. */
  op: "conv";
  /** Name, `conv+bn` when merged. */
  name: string;
  /** Input value. */
  input: string;
  /** Output value. */
  output: string;
  /** HWIO weight. */
  weight: TfTensor;
  /** Per-output-channel bias, or null. */
  bias: TfTensor | null;
  /** Stride. */
  stride: number;
  /** Symmetric padding. */
  pad: number;
}

/** A fully connected layer. */
export interface LrpLinear {
  /** Layer kind. */
  op: "linear";
  /** Name. */
  name: string;
  /** Input value. */
  input: string;
  /** Output value. */
  output: string;
  /** [in, out] weight. */
  weight: TfTensor;
  /** Bias, or null. */
  bias: TfTensor | null;
}

/** An unmerged eval-mode BatchNorm: y = scale * x + shift per channel. */
export interface LrpAffine {
  /** Layer kind. */
  op: "batchnorm";
  /** Name. */
  name: string;
  /** Input value. */
  input: string;
  /** Output value. */
  output: string;
  /** Per-channel scale. */
  scale: TfTensor;
  /** Per-channel shift. */
  shift: TfTensor;
}

/** A parameter-free layer: ReLU, residual add, global average pooling. */
export interface LrpPlain {
  /** Layer kind. */
  op: "relu" | "add" | "global_avg_pool";
  /** Name. */
  name: string;
  /** Input values (two for `add`). */
  inputs: string[];
  /** Output value. */
  output: string;
}

/** Any canonized layer. */
export type LrpLayer = LrpConv | LrpLinear | LrpAffine | LrpPlain;

/** The canonized network. */
export interface CanonizedGraph {
  /** Input value name. */
  input: string;
  /** Logits value name. */
  output: string;
  /** Layers in execution order. */
  layers: LrpLayer[];
  /** Values known to be >= 0 (ReLU outputs, and pools/sums of them). */
  nonNegative: Set<string>;
  /** Frees the merged tensors (network variables are not touched). */
  dispose(): void;
}

/**
 * Input value names of a canonized layer.
 *
 * @example
 * ```ts
 * import { layerInputs } from "./canonizers.ts";
 * console.log(layerInputs({ op: "add", name: "a", inputs: ["x", "y"], output: "a" })); // ["x", "y"]
 * ```
 */
export function layerInputs(l: LrpLayer): string[] {
  return "inputs" in l ? l.inputs : [l.input];
}

/**
 * Canonizes `graph`; `param(name)` returns a parameter in tfjs layout (the network's variables).
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { canonize } from "./canonizers.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("wrn_16_1", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const c = canonize(tf, g, (name) => net.vars.get(name)!);
 * console.log(c.layers.filter((l) => l.op === "batchnorm").length); // 7 pre-activation BatchNorms stay
 * c.dispose(); net.dispose();
 * ```
 */
export function canonize(tf: Tf, graph: Graph, param: (name: string) => TfTensor): CanonizedGraph {
  const owned: TfTensor[] = [];
  const own = (t: TfTensor) => (owned.push(tf.keep(t)), t);
  const c: Canonizing = {
    tf,
    param,
    own,
    scaleShift: (bn: BatchNormNode) =>
      tf.tidy(() => {
        const scale = tf.div(param(bn.weight), tf.sqrt(tf.add(param(bn.runningVar), bn.eps)));
        const shift = tf.sub(param(bn.bias), tf.mul(param(bn.runningMean), scale));
        return [own(scale), own(shift)];
      }) as [TfTensor, TfTensor],
    foldable: foldableBatchNorms(graph),
    merged: new Set(),
    layers: [],
    nonNegative: new Set(),
  };
  for (const n of graph.nodes) tfjsOp(n).canonize(n, c);
  const { layers, nonNegative } = c;
  return {
    input: graph.input,
    output: graph.output,
    layers,
    nonNegative,
    dispose: () => owned.splice(0).forEach((t) => t.dispose()),
  };
}
