/**
 * The one frozen-graph compiler: compiles an {@link EvalNet} into ONNX models for a fixed batch
 * size: the eval forward pass, the input gradient dCE/dx (forward, then the backward of the eval
 * network down to the input only), and the whole oracle (rec_num relevance steps, then the
 * forward on x*) as one graph. The oracle computes any relevance rule: the paper's grad-input
 * (the input gradient) or an LRP rule of lib/oracle/rules.ts as a modified backward pass
 * (lrp_graph.ts). Each layer's passes are one entry of the op table (frozen_ops.ts); the
 * activation layout is a parameter: the portable plain {@link NCHW} (any onnxruntime build and
 * channel count, the default) or onnxruntime's blocked NCHWc (`nchwcLayout` of frozen_nchwc.ts),
 * which the engine prefers where it applies. Weights are constant initializers.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const bytes = compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 4, [3, 32, 32], { kind: "forward" });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */

import { OnnxBuilder } from "../../onnx/builder.ts";
import { type GradReduction, validateOracleOptions } from "../../oracle/options.ts";
import type { RelevancePlan } from "../../oracle/rules.ts";
import type { EvalNet } from "./eval_net.ts";
import { ConstCache, type FrozenFusion, type FrozenLayout, NCHW } from "./frozen_layout.ts";
import { type ForwardValues, type FrozenContext, frozenOp } from "./frozen_ops.ts";
import { gradAccumulator } from "./grad_accumulator.ts";
import { nonNegativeValues } from "./lrp_graph.ts";
import { crossEntropyGrad } from "./loss_ops.ts";

/** What a frozen model computes. Inputs: `x` [n, c, h, w] and, for gradients, `onehot` [n, K]. */
export type FrozenGraphKind =
  | { kind: "forward" }
  | { kind: "input_gradient"; reduction: GradReduction }
  | {
    kind: "oracle";
    gamma: number;
    recNum: number;
    reduction: GradReduction;
    keepInput: boolean;
    /** Output the first step's relevance as `relevance`. */
    keepRelevance?: boolean;
    /** An LRP rule's plan; absent: the paper's grad-input relevance. */
    plan?: RelevancePlan;
  };

/** Names of the graph inputs and outputs. */
export const FROZEN_IO = {
  x: "x",
  onehot: "onehot",
  logits: "logits",
  grad: "grad",
  xStar: "x_star",
  relevance: "relevance",
} as const;

/**
 * Serialises the ONNX model of `spec` for batches of `n` images of shape `image`, with
 * activations in `layout` (default {@link NCHW}).
 * Outputs: `logits` (forward, oracle), `grad` (input_gradient), `x_star` (oracle with keepInput),
 * `relevance` (oracle with keepRelevance).
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozen } from "./frozen_graphs.ts";
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const spec = { kind: "oracle", gamma: 0.5, recNum: 2, reduction: "mean", keepInput: true } as const;
 * console.log(compileFrozen(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 32, 32], spec).length > 0); // true
 * ```
 */
export function compileFrozen(
  net: EvalNet,
  n: number,
  image: readonly [number, number, number],
  spec: FrozenGraphKind,
  layout: FrozenLayout = NCHW,
): Uint8Array {
  layout.check(net);
  const b = new OnnxBuilder(`${net.arch}_${spec.kind}${layout.graphSuffix}`);
  // LRP reads the inputs of every sum and layer, so its graphs keep ReLUs and adds unfused.
  const fuse = !(spec.kind === "oracle" && spec.plan);
  return emitFrozenGraph(b, new FrozenPasses(b, net, n, image, layout, fuse), net, n, image, spec);
}

/** Emits the inputs, body and outputs of `spec` into `b` with the passes of `em`; serialises. */
function emitFrozenGraph(
  b: OnnxBuilder,
  em: FrozenPasses,
  net: EvalNet,
  n: number,
  image: readonly [number, number, number],
  spec: FrozenGraphKind,
): Uint8Array {
  // dCE(net(x), labels)/dx; weights get no gradient.
  const inputGradient = (x: string, onehot: string, reduction: GradReduction) => {
    const fwd = em.forward(x);
    return em.backward(fwd, crossEntropyGrad(b, fwd.logits, onehot, reduction === "mean" ? 1 / n : 1));
  };
  const x = b.input(FROZEN_IO.x, "float32", [n, ...image]);
  if (spec.kind === "forward") {
    b.output(em.forward(x).logits, FROZEN_IO.logits);
    return b.toModel();
  }
  const onehot = b.input(FROZEN_IO.onehot, "float32", [n, net.numClasses]);
  if (spec.kind === "input_gradient") {
    b.output(inputGradient(x, onehot, spec.reduction), FROZEN_IO.grad);
    return b.toModel();
  }
  validateOracleOptions(spec);
  const plan = spec.plan;
  let xs = x;
  let firstRelevance: string | null = null;
  const gamma = b.scalar(spec.gamma);
  for (let r = 0; r < spec.recNum; r++) {
    if (plan) {
      // R = z * (-dCE/dz) at the logits, propagated down; then x* = x + gamma * sign(x) * R.
      const fwd = em.forward(xs);
      const dz = crossEntropyGrad(b, fwd.logits, onehot, spec.reduction === "mean" ? 1 / n : 1);
      const rel = em.relevance(fwd, b.op("Mul", [fwd.logits, b.op("Neg", [dz])]), plan);
      if (r === 0) firstRelevance = rel;
      xs = b.op("Add", [xs, b.op("Mul", [b.op("Mul", [b.op("Sign", [xs]), rel]), gamma])]);
      continue;
    }
    const g = inputGradient(xs, onehot, spec.reduction);
    if (r === 0 && spec.keepRelevance) firstRelevance = b.op("Mul", [xs, b.op("Neg", [g])]);
    // Same association as the reference: x - (gamma * |x|) * g.
    xs = b.op("Sub", [xs, b.op("Mul", [b.op("Mul", [b.op("Abs", [xs]), gamma]), g])]);
  }
  b.output(em.forward(xs).logits, FROZEN_IO.logits);
  if (spec.keepInput) b.output(xs, FROZEN_IO.xStar);
  if (spec.keepRelevance) b.output(firstRelevance!, FROZEN_IO.relevance);
  return b.toModel();
}

/**
 * Emits eval forward, input-gradient and LRP passes in one layout, sharing one set of weight
 * constants; each op's part comes from the op table.
 */
class FrozenPasses implements FrozenContext {
  readonly consts = new ConstCache();
  readonly fusion: FrozenFusion;

  constructor(
    readonly b: OnnxBuilder,
    readonly net: EvalNet,
    readonly n: number,
    readonly image: readonly [number, number, number],
    readonly layout: FrozenLayout,
    fuse: boolean,
  ) {
    this.fusion = layout.fusion(net, fuse);
  }

  /** Emits the eval forward pass on `x`. */
  forward(x: string): ForwardValues {
    const fwd: ForwardValues = {
      logits: "",
      values: new Map([[this.net.input, x]]),
      shapes: new Map<string, number[]>([[this.net.input, [...this.image]]]),
    };
    for (const op of this.net.ops) {
      if (this.fusion.skipped.has(op) || this.fusion.deferred.has(op)) continue;
      frozenOp(op).forward(this, op, fwd);
    }
    fwd.logits = fwd.values.get(this.net.output)!;
    return fwd;
  }

  /** Emits the backward pass of `fwd` from `dLogits` down to the input only; returns dx. */
  backward(fwd: ForwardValues, dLogits: string): string {
    const grads = gradAccumulator(this.b, this.net.output, dLogits);
    for (let i = this.net.ops.length - 1; i >= 0; i--) {
      const op = this.net.ops[i];
      const dy = grads.take(op.output);
      if (dy) frozenOp(op).backward(this, op, dy, fwd, grads);
    }
    const dx = grads.take(this.net.input);
    if (!dx) throw new Error(`${this.net.arch}: the logits do not depend on the input`);
    return dx;
  }

  /** Emits the LRP pass of `plan` from relevance `start` at the logits; returns R at the input. */
  relevance(fwd: ForwardValues, start: string, plan: RelevancePlan): string {
    const state = { plan, nonNegative: nonNegativeValues(this.net) };
    const rel = gradAccumulator(this.b, this.net.output, start);
    for (let i = this.net.ops.length - 1; i >= 0; i--) {
      const op = this.net.ops[i];
      const rOut = rel.take(op.output);
      if (rOut) frozenOp(op).relevance(this, op, rOut, fwd, rel, state);
    }
    const r = rel.take(this.net.input);
    if (!r) throw new Error(`${this.net.arch}: the logits do not depend on the input`);
    return r;
  }
}
