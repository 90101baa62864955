/**
 * Runs an IR {@link Graph} with tfjs ops: NHWC activations, parameters as tf.Variables in tfjs
 * layout, BatchNorm exactly as torch.nn.BatchNorm2d (biased batch variance to normalise in train
 * mode, unbiased variance into `running_var`, momentum 0.1, `num_batches_tracked`).
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { TfjsNetwork } from "./network.ts";
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * const tf = await initTfjs("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = new TfjsNetwork(tf, g, initStateDict(g, 0));
 * const y = tf.tidy(() => net.forward(tf.zeros([1, 32, 32, 3]), false).logits);
 * console.log(y.shape); // [1, 10]
 * y.dispose(); net.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../deps.ts";
import { type BatchNormNode, type Graph, type GraphNode, valueUseCounts } from "../../graph.ts";
import { type HostTensor, int64Scalar, type StateDict } from "../../tensor.ts";
import { fromTfjsLayout, type ParamRole, toTfjsLayout } from "./layout.ts";
import { tfjsOp } from "./ops.ts";

type Variable = ReturnType<Tf["variable"]>;
type Tensor2D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor2D;

/** Batch statistics one train-mode BatchNorm produced, for the running-stat update. */
export interface BatchNormStats {
  /** The BatchNorm node. */
  node: BatchNormNode;
  /** Per-channel batch mean. */
  mean: TfTensor;
  /** Per-channel biased batch variance. */
  variance: TfTensor;
  /** Elements per channel (N*H*W), for the unbiased correction. */
  count: number;
}

/** Output of a forward pass. */
export interface ForwardResult {
  /** Logits [N, K]. */
  logits: Tensor2D;
  /** Train mode only: statistics to fold into the running buffers. */
  stats: BatchNormStats[];
}

/** A graph bound to tfjs variables. */
export class TfjsNetwork {
  /** Variables by parameter name (tfjs layout). */
  readonly vars = new Map<string, Variable>();
  /** Trainable variables in state-dict order. */
  readonly trainable: Variable[] = [];
  /** Names of {@link trainable}, same order. */
  readonly trainableNames: string[] = [];
  readonly #roles = new Map<string, ParamRole>();
  readonly #tracked = new Map<string, number>();
  readonly #uses: Map<string, number>;

  /** Creates variables for every parameter of `graph` from `weights` (PyTorch layout). */
  constructor(readonly tf: Tf, readonly graph: Graph, weights: StateDict) {
    for (const n of graph.nodes) {
      if (n.op === "conv") this.#roles.set(n.weight, "conv");
      if (n.op === "linear") this.#roles.set(n.weight, "linear");
    }
    this.#uses = valueUseCounts(graph);
    for (const p of graph.params) {
      const t = weights.get(p.name);
      if (!t) throw new Error(`weights lack parameter ${p.name} of ${graph.arch}`);
      if (p.dtype === "int64") {
        this.#tracked.set(p.name, Number(t.data[0] ?? 0));
        continue;
      }
      const arr = toTfjsLayout(this.#roles.get(p.name) ?? "vector", checkShape(p.name, t, p.shape));
      // Unnamed: tfjs variable names are global, and teacher and student share parameter names.
      const v = tf.tidy(() => tf.variable(tf.tensor(arr.data, arr.shape, "float32"), p.kind === "param"));
      this.vars.set(p.name, v);
      if (p.kind === "param") {
        this.trainable.push(v);
        this.trainableNames.push(p.name);
      }
    }
  }

  /**
   * Forward pass on NHWC input. Train mode normalises with batch statistics and returns them;
   * call {@link updateRunningStats} after the optimiser step. With `release` (inference only,
   * never under a gradient tape) activations are disposed after their last reader, so peak
   * memory follows the graph's width, not its depth.
   */
  forward(x: TfTensor, training: boolean, release = false): ForwardResult {
    const values = new Map<string, TfTensor>([[this.graph.input, x]]);
    const remaining = new Map(this.#uses);
    const stats: BatchNormStats[] = [];
    for (const node of this.graph.nodes) {
      const ins = node.inputs.map((i) => values.get(i)!);
      values.set(node.output, this.#apply(node, ins, training, stats));
      for (const i of node.inputs) {
        const left = remaining.get(i)! - 1;
        remaining.set(i, left);
        if (left === 0 && i !== this.graph.input) {
          if (release) values.get(i)!.dispose();
          values.delete(i);
        }
      }
    }
    return { logits: values.get(this.graph.output)! as Tensor2D, stats };
  }

  #apply(node: GraphNode, ins: TfTensor[], training: boolean, stats: BatchNormStats[]): TfTensor {
    return tfjsOp(node).apply(this, node, ins, training, stats);
  }

  /**
   * Folds train-mode batch statistics into the running buffers exactly as PyTorch does:
   * `running = (1 - m) * running + m * stat`, with the unbiased variance `var * n / (n - 1)`.
   */
  updateRunningStats(stats: BatchNormStats[]): void {
    const tf = this.tf;
    for (const s of stats) {
      const m = s.node.momentum;
      const rm = this.vars.get(s.node.runningMean)!;
      const rv = this.vars.get(s.node.runningVar)!;
      const unbiased = s.count > 1 ? s.count / (s.count - 1) : 1;
      tf.tidy(() => {
        rm.assign(tf.add(tf.mul(rm, 1 - m), tf.mul(s.mean, m)));
        rv.assign(tf.add(tf.mul(rv, 1 - m), tf.mul(s.variance, m * unbiased)));
      });
      if (s.node.numBatchesTracked) {
        const k = s.node.numBatchesTracked;
        this.#tracked.set(k, (this.#tracked.get(k) ?? 0) + 1);
      }
    }
  }

  /** Parameters and buffers in PyTorch layout and state-dict order. */
  async stateDict(): Promise<StateDict> {
    const sd: StateDict = new Map();
    for (const p of this.graph.params) {
      if (p.dtype === "int64") {
        sd.set(p.name, int64Scalar(this.#tracked.get(p.name) ?? 0));
        continue;
      }
      const data = (await this.vars.get(p.name)!.data()) as Float32Array;
      sd.set(p.name, fromTfjsLayout(this.#roles.get(p.name) ?? "vector", data, p.shape));
    }
    return sd;
  }

  /** Overwrites every parameter and buffer from a PyTorch-layout state dict. */
  load(weights: StateDict): void {
    for (const p of this.graph.params) {
      const t = weights.get(p.name);
      if (!t) throw new Error(`weights lack parameter ${p.name} of ${this.graph.arch}`);
      if (p.dtype === "int64") {
        this.#tracked.set(p.name, Number(t.data[0] ?? 0));
        continue;
      }
      const arr = toTfjsLayout(this.#roles.get(p.name) ?? "vector", checkShape(p.name, t, p.shape));
      this.tf.tidy(() => this.vars.get(p.name)!.assign(this.tf.tensor(arr.data, arr.shape, "float32")));
    }
  }

  /** Layout role of a parameter (for converting optimiser buffers). */
  roleOf(name: string): ParamRole {
    return this.#roles.get(name) ?? "vector";
  }

  /** Disposes all variables. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

function checkShape(name: string, t: HostTensor, shape: number[]): HostTensor {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`parameter ${name}: expected shape [${shape}], got [${t.shape}]`);
  }
  return t;
}
