/**
 * Layer-wise relevance propagation through a canonized CIFAR ResNet / WRN in tfjs ops: the tfjs
 * engine's interpretation of a {@link RelevancePlan} (lib/oracle/rules.ts).
 *
 * Start: R = z * (-dCE(z, y)/dz) at the logits z (CE with the oracle's mean or sum reduction),
 * so that LRP-0 on a ReLU network gives exactly gradient x input, R = x * (-dCE/dx), the
 * paper's relevance. Then, from the logits down:
 *
 * - linear / conv (BatchNorm merged in by the canonizer): the chosen rule (`rules.ts`);
 * - the first conv (reads the normalised image): `lrp-0`, `same` or `zB` (`options.ts`);
 * - ReLU: relevance passes through unchanged;
 * - unmerged BatchNorm (WRN pre-activation, y = s * x + t, x of either sign): a diagonal
 *   linear layer with weight s and bias t under the chosen rule (sign-split form). For LRP-0
 *   that is R_in = s * x / (s * x + t) * R_out, so LRP-0 stays exactly gradient x input; for z+
 *   R_in = R_out where s * x > 0 and 0 where the unit is on only through its shift. Passing
 *   relevance through unchanged instead was rejected: the residual add below divides by the
 *   stream value, which then no longer scales with the relevance it receives (measured: LRP-0
 *   on wrn_16_1 with random BatchNorm shifts blew up by 1e5 relative to gradient x input);
 * - residual add: split in proportion to the rule's contributions of the two summands;
 * - global average pooling: a linear layer with weights 1/HW, same proportional split.
 *
 * Relevance arriving at a value from several readers (a block input feeding both the branch and
 * the shortcut) is summed.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { TfjsNetwork } from "../network.ts";
 * import { buildModel } from "../../../models/zoo.ts";
 * import { initStateDict } from "../../../models/init.ts";
 * import { LrpAnalyzer } from "./lrp.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const lrp = new LrpAnalyzer(tf, g, (name) => net.vars.get(name)!);
 * const r = tf.tidy(() => lrp.relevance(tf.randomNormal([2, 8, 8, 3]), tf.tensor1d([1, 2], "int32"), "lrp-zplus", {}, "mean").relevance);
 * console.log(r.shape); // [2, 8, 8, 3]
 * r.dispose(); lrp.dispose(); net.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../../deps.ts";
import type { Graph } from "../../../graph.ts";
import { canonize, type CanonizedGraph, layerInputs, type LrpLayer } from "./canonizers.ts";
import {
  type GradReduction,
  type LrpParams,
  type ResolvedLrpParams,
  resolveLrpParams,
} from "../../../oracle/options.ts";
import { type LayerRule, type LrpRule, planFor, type RelevancePlan } from "../../../oracle/rules.ts";
import { tfjsOp } from "../ops.ts";

/** How the cross-entropy behind the starting relevance is reduced over the batch. */
export type Reduction = GradReduction;

/** Per-layer relevance totals, one value per sample. */
export interface LayerTrace {
  /** Canonized layer name. */
  name: string;
  /** Layer kind. */
  op: LrpLayer["op"];
  /** Sum of the relevance arriving at the layer's output, [N]. */
  relevanceOut: TfTensor;
  /** Sum of the relevance it passes to its input(s), [N]. */
  relevanceIn: TfTensor;
}

/** Result of one LRP pass (tensors owned by the caller's tidy scope). */
export interface LrpResult {
  /** Relevance at the input, NHWC like `x`. */
  relevance: TfTensor;
  /** Logits on `x` [N, K]. */
  logits: TfTensor;
  /** Per-layer totals, when asked for. */
  trace?: LayerTrace[];
}

/** Forward values of the canonized network. */
export interface CanonizedForward {
  /** Every value by name. */
  values: Map<string, TfTensor>;
  /** Logits. */
  logits: TfTensor;
}

/**
 * The relevance at the logits: z * (-dCE/dz) = z * (onehot(y) - softmax(z)) / (N for `mean`).
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { startingRelevance } from "./lrp.ts";
 * const tf = await initTfjs("cpu");
 * const r = startingRelevance(tf, tf.tensor2d([[2, 0]]), tf.tensor1d([0], "int32"), "sum");
 * console.log(r.dataSync()[0].toFixed(4)); // 0.2384 = 2 * (1 - sigmoid(2))
 * ```
 */
export function startingRelevance(
  tf: Tf,
  logits: TfTensor,
  labels: TfTensor,
  reduction: Reduction,
): TfTensor {
  const [n, k] = logits.shape;
  let c = tf.sub(tf.oneHot(labels, k!), tf.softmax(logits));
  if (reduction === "mean") c = tf.div(c, n!);
  return tf.mul(logits, c);
}

/** LRP over one network; build once per (frozen) network, call per batch inside `tf.tidy`. */
export class LrpAnalyzer {
  /** The canonized layers. */
  readonly canonized: CanonizedGraph;

  /** Canonizes `graph` whose parameters `param(name)` returns in tfjs layout. */
  constructor(readonly tf: Tf, readonly graph: Graph, param: (name: string) => TfTensor) {
    this.canonized = canonize(tf, graph, param);
  }

  /**
   * Eval-mode forward pass of the canonized network (NHWC). Keeps the values LRP reads (inputs
   * of conv, linear, affine, add and pool layers) and the logits; values only a ReLU reads are
   * freed once read, which halves the activations held for the backward pass.
   */
  forward(x: TfTensor): CanonizedForward {
    const tf = this.tf;
    const g = this.canonized;
    const values = new Map<string, TfTensor>([[g.input, x]]);
    const readers = new Map<string, number>();
    const needed = new Set([g.output]);
    for (const l of g.layers) {
      for (const v of layerInputs(l)) {
        readers.set(v, (readers.get(v) ?? 0) + 1);
        if (l.op !== "relu") needed.add(v);
      }
    }
    for (const l of g.layers) {
      const ins = layerInputs(l).map((v) => values.get(v)!);
      const y = tfjsOp(l).lrpForward(tf, l, ins);
      values.set(l.output, y);
      for (const v of layerInputs(l)) {
        const left = readers.get(v)! - 1;
        readers.set(v, left);
        if (left === 0 && !needed.has(v) && v !== g.input) {
          values.get(v)!.dispose();
          values.delete(v);
        }
      }
    }
    return { values, logits: values.get(g.output)! };
  }

  /**
   * Relevance of `x` (NHWC) for labels `y` under an LRP rule, from R = z * (-dCE/dz) at the
   * logits. With `trace`, per-layer relevance totals are returned too.
   */
  relevance(
    x: TfTensor,
    y: TfTensor,
    rule: LrpRule,
    params: LrpParams,
    reduction: Reduction,
    trace = false,
  ): LrpResult {
    const p = resolveLrpParams(params);
    const { values, logits } = this.forward(x);
    const start = startingRelevance(this.tf, logits, y, reduction);
    return this.propagate(values, start, rule, p, trace);
  }

  /** Relevance of `x` (NHWC) for labels `y` under a relevance plan (see {@link relevance}). */
  planRelevance(
    x: TfTensor,
    y: TfTensor,
    plan: RelevancePlan,
    reduction: Reduction,
    trace = false,
  ): LrpResult {
    const { values, logits } = this.forward(x);
    return this.propagatePlan(values, startingRelevance(this.tf, logits, y, reduction), plan, trace);
  }

  /** Propagates a given relevance `start` at the logits down to the input. */
  propagate(
    values: Map<string, TfTensor>,
    start: TfTensor,
    rule: LrpRule,
    p: ResolvedLrpParams,
    trace = false,
  ): LrpResult {
    return this.propagatePlan(values, start, planFor(rule, p, this.graph.inChannels), trace);
  }

  /** Propagates `start` at the logits down to the input under a relevance plan. */
  propagatePlan(
    values: Map<string, TfTensor>,
    start: TfTensor,
    plan: RelevancePlan,
    trace = false,
  ): LrpResult {
    const tf = this.tf;
    const g = this.canonized;
    const { linear: main, first } = plan;
    const p = plan;
    const relevance = new Map<string, TfTensor>([[g.output, start]]);
    const traces: LayerTrace[] = [];
    // Each layer's temporaries live in their own scope and consumed relevance maps are freed,
    // so memory holds the activations plus a few relevance maps, not every intermediate.
    const free = (t: TfTensor) => t !== start && t.dispose();
    const give = (v: string, r: TfTensor) => {
      const had = relevance.get(v);
      relevance.set(v, had ? tf.add(had, r) : r);
      if (had) [had, r].forEach(free);
    };
    const total = (t: TfTensor) => (t.rank > 1 ? tf.sum(t, [...Array(t.rank).keys()].slice(1)) : t);
    for (let i = g.layers.length - 1; i >= 0; i--) {
      const l = g.layers[i];
      const rOut = relevance.get(l.output);
      if (!rOut) continue;
      relevance.delete(l.output);
      const inputs = layerInputs(l);
      const a = inputs.map((v) => values.get(v)!);
      const rule = (l.op === "conv" || l.op === "linear") && l.input === g.input ? first : main;
      const outs = tf.tidy(() => {
        const rIn = layerRelevance(tf, l, rule, a, rOut, p.stabilizer, g.nonNegative);
        return trace ? [...rIn, total(rOut), tf.addN(rIn.map(total))] : rIn;
      });
      if (trace) {
        const [relevanceOut, relevanceIn] = outs.splice(inputs.length, 2);
        traces.push({ name: l.name, op: l.op, relevanceOut, relevanceIn });
      }
      if (l.op !== "relu") free(rOut);
      inputs.forEach((v, j) => give(v, outs[j]));
    }
    const out: LrpResult = {
      relevance: relevance.get(g.input) ?? tf.zerosLike(values.get(g.input)!),
      logits: values.get(g.output)!,
    };
    if (trace) out.trace = traces;
    return out;
  }

  /** Frees the canonized tensors. */
  dispose(): void {
    this.canonized.dispose();
  }
}

/**
 * Relevance at the inputs of one canonized layer given the relevance `rOut` at its output:
 * ReLU passes it on, an unmerged BatchNorm is a diagonal linear layer, adds and pools split it
 * by contributions, conv and linear layers use `rule`.
 *
 * @example
 * ```ts
 * import { initTfjs } from "../backend.ts";
 * import { layerRelevance } from "./lrp.ts";
 * const tf = await initTfjs("cpu");
 * const layer = { op: "add" as const, name: "add", inputs: ["a", "b"], output: "s" };
 * const [ra] = layerRelevance(tf, layer, { name: "zplus" }, [tf.scalar(1), tf.scalar(-1)], tf.scalar(2), 1e-9, new Set());
 * console.log(ra.dataSync()[0].toFixed(3)); // 2.000
 * ```
 */
export function layerRelevance(
  tf: Tf,
  l: LrpLayer,
  rule: LayerRule,
  a: TfTensor[],
  rOut: TfTensor,
  stabilizer: number,
  nonNegative: Set<string>,
): TfTensor[] {
  return tfjsOp(l).relevance(tf, l, rule, a, rOut, stabilizer, nonNegative);
}
