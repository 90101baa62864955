/**
 * The tfjs engine's op table: one entry per IR layer kind (`LAYER_KINDS` of lib/graph.ts) with
 * everything the engine does with that layer: its forward in train and eval mode
 * ({@link TfjsNetwork}), its canonized LRP layer (`canonize`, BatchNorm merged by the package's
 * one foldability rule), the canonized layer's forward, and its relevance rule. Adding a layer
 * type to the tfjs engine is one entry here; a test fails when a kind lacks one.
 *
 * @example
 * ```ts
 * import { LAYER_KINDS } from "../../graph.ts";
 * import { TFJS_OPS } from "./ops.ts";
 * console.log(LAYER_KINDS.every((k) => typeof TFJS_OPS[k].apply === "function")); // true
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../deps.ts";
import type { BatchNormNode, GraphNode, LayerKind } from "../../graph.ts";
import type { LayerRule } from "../../oracle/rules.ts";
import type { LrpAffine, LrpConv, LrpLayer, LrpLinear, LrpPlain } from "./lrp/canonizers.ts";
import { addRelevance, convOp, denseOp, diagonalOp, linearRelevance, poolRelevance } from "./lrp/rules.ts";
import type { BatchNormStats } from "./network.ts";
import { BATCH_NORM_TRAIN } from "./wasm_batch_norm.ts";

type Tensor4D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;
type Tensor2D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor2D;

/** The IR node of layer kind `K`. */
export type TfjsNodeOf<K extends LayerKind> = Extract<GraphNode, { op: K }>;

/** The canonized LRP layer of kind `K`. */
export type LrpLayerOf<K extends LayerKind> = LrpLayer & { op: K };

/** What a layer's forward reads: the backend and the network's variables (tfjs layout). */
export interface TfjsForwardContext {
  /** The tfjs namespace. */
  readonly tf: Tf;
  /** Variables by parameter name. */
  readonly vars: ReadonlyMap<string, TfTensor>;
}

/** What canonizing a layer reads and writes (see `canonize`). */
export interface Canonizing {
  /** The tfjs namespace. */
  readonly tf: Tf;
  /** A parameter in tfjs layout. */
  param(name: string): TfTensor;
  /** Keeps `t` past the tidy scope, owned by the canonized graph. */
  own(t: TfTensor): TfTensor;
  /** A BatchNorm's per-channel scale and shift (owned). */
  scaleShift(bn: BatchNormNode): [TfTensor, TfTensor];
  /** Conv name -> the BatchNorm merged into it (the one foldability rule). */
  foldable: Map<string, BatchNormNode>;
  /** BatchNorms merged into a convolution (skipped when reached). */
  merged: Set<string>;
  /** The layers so far. */
  layers: LrpLayer[];
  /** Values known to be >= 0. */
  nonNegative: Set<string>;
}

/** One layer kind in the tfjs engine. */
export interface TfjsOp<N extends GraphNode = GraphNode, L extends LrpLayer = LrpLayer> {
  /** The IR node's forward (train mode: batch statistics, pushed to `stats`). */
  apply(
    c: TfjsForwardContext,
    node: N,
    ins: TfTensor[],
    training: boolean,
    stats: BatchNormStats[],
  ): TfTensor;
  /** Appends the node's canonized LRP layer (if not merged into an earlier one). */
  canonize(node: N, c: Canonizing): void;
  /** The canonized layer's eval forward. */
  lrpForward(tf: Tf, layer: L, ins: TfTensor[]): TfTensor;
  /** Relevance at the layer's inputs given `rOut` at its output (see `layerRelevance`). */
  relevance(
    tf: Tf,
    layer: L,
    rule: LayerRule,
    a: TfTensor[],
    rOut: TfTensor,
    stabilizer: number,
    nonNegative: Set<string>,
  ): TfTensor[];
}

/** The tfjs entry of every IR layer kind. */
export type TfjsOpTable = { [K in LayerKind]: TfjsOp<TfjsNodeOf<K>, LrpLayerOf<K>> };

/**
 * The entry for an IR node or a canonized layer.
 *
 * @example
 * ```ts
 * import { tfjsOp } from "./ops.ts";
 * console.log(typeof tfjsOp({ op: "relu", name: "r", inputs: ["x"], output: "r" }).apply); // function
 * ```
 */
export function tfjsOp(x: GraphNode | LrpLayer): TfjsOp {
  return TFJS_OPS[x.op] as unknown as TfjsOp;
}

const withBias = (tf: Tf, y: TfTensor, bias: TfTensor | null | undefined) => bias ? tf.add(y, bias) : y;

/** Canonizes a parameter-free node; `nonNegative` propagates through ReLUs, sums and pools. */
function canonizePlain(node: TfjsNodeOf<"relu" | "add" | "global_avg_pool">, c: Canonizing): void {
  if (node.op === "relu" || node.inputs.every((v) => c.nonNegative.has(v))) c.nonNegative.add(node.output);
  c.layers.push({ op: node.op, name: node.name, inputs: [...node.inputs], output: node.output });
}

/** Relevance through a conv or linear layer under `rule`. */
function weightedRelevance(
  tf: Tf,
  l: LrpConv | LrpLinear,
  rule: LayerRule,
  a: TfTensor[],
  rOut: TfTensor,
  stabilizer: number,
  nonNegative: Set<string>,
): TfTensor[] {
  const op = l.op === "conv" ? convOp(tf, l.stride, l.pad) : denseOp(tf);
  return [linearRelevance(tf, rule, op, a[0], l.weight, l.bias, rOut, stabilizer, nonNegative.has(l.input))];
}

/**
 * The table.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { TFJS_OPS } from "./ops.ts";
 * const tf = await initTfjs("cpu");
 * const layer = { op: "relu" as const, name: "r", inputs: ["x"], output: "r" };
 * console.log(TFJS_OPS.relu.lrpForward(tf, layer, [tf.tensor1d([-1, 2])]).arraySync()); // [0, 2]
 * ```
 */
export const TFJS_OPS: TfjsOpTable = {
  conv: {
    apply({ tf, vars }, node, ins) {
      const y = tf.conv2d(
        ins[0] as Tensor4D,
        vars.get(node.weight)! as unknown as Tensor4D,
        node.stride,
        node.pad,
      );
      return withBias(tf, y, node.bias ? vars.get(node.bias)! : null);
    },
    canonize(n, c) {
      const { tf, param, own } = c;
      const next = c.foldable.get(n.name);
      const bias = n.bias ? c.param(n.bias) : null;
      if (next) {
        const [scale, shift] = c.scaleShift(next);
        // b' = beta + (b - mean) * s, which is the shift beta - mean * s without a conv bias.
        const [w, b] = tf.tidy(() => [
          own(tf.mul(param(n.weight), scale)),
          own(
            bias
              ? tf.add(param(next.bias), tf.mul(tf.sub(bias, param(next.runningMean)), scale))
              : tf.clone(shift),
          ),
        ]);
        c.merged.add(next.name);
        c.layers.push({
          op: "conv",
          name: `${n.name}+${next.name}`,
          input: n.inputs[0],
          output: next.output,
          weight: w,
          bias: b,
          stride: n.stride,
          pad: n.pad,
        });
        return;
      }
      c.layers.push({
        op: "conv",
        name: n.name,
        input: n.inputs[0],
        output: n.output,
        weight: param(n.weight),
        bias,
        stride: n.stride,
        pad: n.pad,
      });
    },
    lrpForward: (tf, l, ins) => withBias(tf, convOp(tf, l.stride, l.pad).apply(ins[0], l.weight), l.bias),
    relevance: weightedRelevance,
  },
  batchnorm: {
    apply({ tf, vars }, node, ins, training, stats) {
      const gamma = vars.get(node.weight)!;
      const beta = vars.get(node.bias)!;
      if (!training) {
        return tf.batchNorm(
          ins[0],
          vars.get(node.runningMean)!,
          vars.get(node.runningVar)!,
          beta,
          gamma,
          node.eps,
        );
      }
      const [n, h, w] = ins[0].shape;
      if (tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend())) {
        // One fused kernel (and one for its gradient) where the backend has it.
        const [y, mean, variance] = tf.engine().runKernel(
          BATCH_NORM_TRAIN,
          { x: ins[0], scale: gamma, offset: beta },
          { varianceEpsilon: node.eps },
        ) as TfTensor[];
        stats.push({ node, mean, variance, count: n * h * w });
        return y;
      }
      const { mean, variance } = tf.moments(ins[0], [0, 1, 2]);
      stats.push({ node, mean, variance, count: n * h * w });
      return tf.batchNorm(ins[0], mean, variance, beta, gamma, node.eps);
    },
    canonize(n, c) {
      if (c.merged.has(n.name)) return;
      const [scale, shift] = c.scaleShift(n);
      c.layers.push({ op: "batchnorm", name: n.name, input: n.inputs[0], output: n.output, scale, shift });
    },
    lrpForward: (tf, l: LrpAffine, ins) => tf.add(tf.mul(ins[0], l.scale), l.shift),
    relevance: (tf, l, rule, a, rOut, stabilizer) => [
      linearRelevance(tf, rule, diagonalOp(tf), a[0], l.scale, l.shift, rOut, stabilizer, false),
    ],
  },
  relu: {
    apply: ({ tf }, _node, ins) => tf.relu(ins[0]),
    canonize: canonizePlain,
    lrpForward: (tf, _l, ins) => tf.relu(ins[0]),
    relevance: (_tf, _l, _rule, _a, rOut) => [rOut],
  },
  add: {
    apply: ({ tf }, _node, ins) => tf.add(ins[0], ins[1]),
    canonize: canonizePlain,
    lrpForward: (tf, _l, ins) => tf.add(ins[0], ins[1]),
    relevance: (tf, _l, rule, a, rOut, stabilizer) => addRelevance(tf, rule, a, rOut, stabilizer),
  },
  global_avg_pool: {
    apply: ({ tf }, _node, ins) => tf.mean(ins[0], [1, 2]),
    canonize: canonizePlain,
    lrpForward: (tf, _l: LrpPlain, ins) => tf.mean(ins[0], [1, 2]),
    relevance: (tf, _l, rule, a, rOut, stabilizer) => [poolRelevance(tf, rule, a[0], rOut, stabilizer)],
  },
  linear: {
    apply({ tf, vars }, node, ins) {
      const y = tf.matMul(ins[0] as Tensor2D, vars.get(node.weight)! as unknown as Tensor2D);
      return withBias(tf, y, node.bias ? vars.get(node.bias)! : null);
    },
    canonize(n, c) {
      c.layers.push({
        op: "linear",
        name: n.name,
        input: n.inputs[0],
        output: n.output,
        weight: c.param(n.weight),
        bias: n.bias ? c.param(n.bias) : null,
      });
    },
    lrpForward: (tf, l, ins) => withBias(tf, denseOp(tf).apply(ins[0], l.weight), l.bias),
    relevance: weightedRelevance,
  },
};
