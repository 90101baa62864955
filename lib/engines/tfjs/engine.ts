/**
 * The tfjs engine: {@link Engine} on a tfjs backend (wasm by default, cpu, or tensorflow), and the
 * `webgpu` engine: the same engine on tfjs's WebGPU backend (webgpu_backend.ts), where tensors
 * stay on the GPU across a step: the batch goes in, and one small read brings the step's scalars out.
 *
 * @example
 * ```ts
 * import { TfjsEngine } from "./engine.ts";
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * const engine = await TfjsEngine.create("cpu");
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const student = await engine.loadTrainable(g, initStateDict(g, 0), { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 });
 * const batch = { x: new Float32Array(2 * 3 * 32 * 32).fill(0.5), y: new Int32Array([1, 2]), n: 2, shape: [3, 32, 32] as const };
 * const stats = await student.trainStep(batch, null, { ceWeight: 1, alpha: 0, temperature: 1 }, 0.1);
 * console.log(Number.isFinite(stats.loss)); // true
 * student.dispose();
 * ```
 * @module
 */

import type { Tf, TfTensor } from "../../deps.ts";
import type { Graph } from "../../graph.ts";
import type { StateDict } from "../../tensor.ts";
import type {
  Engine,
  FrozenModel,
  GradReduction,
  ImageBatch,
  LabelledBatch,
  LossWeights,
  OptimizerState,
  OracleOptions,
  OracleOutputs,
  OracleResult,
  SgdOptions,
  StepStats,
  TrainableModel,
} from "../engine.ts";
import { oracleOutputs } from "../engine.ts";
import { relevancePlan } from "../../oracle/rules.ts";
import { LrpAnalyzer } from "./lrp/lrp.ts";
import { inputGradient, oracleInput } from "./lrp/relevance.ts";
import { initTfjs, type TfjsBackendName, type TfjsInitOptions } from "./backend.ts";
import { fromTfjsLayout, toTfjsLayout } from "./layout.ts";
import { distillationLoss } from "./losses.ts";
import { TfjsNetwork } from "./network.ts";

type Tensor4D = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor4D;

/** {@link Engine} backed by tfjs. */
export class TfjsEngine implements Engine {
  private constructor(readonly tf: Tf, readonly name: string, readonly backend: TfjsBackendName) {}

  /**
   * Makes this engine's backend the active one. tfjs has one global backend, so two tfjs
   * engines on different backends (say wasm and the cpu reference) would otherwise silently run
   * on whichever was created last; every model call goes through this first.
   */
  readonly activate = async (): Promise<void> => {
    if (this.tf.getBackend() !== this.backend) await this.tf.setBackend(this.backend);
  };

  /**
   * Initialises the backend and returns an engine on it.
   *
   * @example
   * ```ts
   * import { TfjsEngine } from "./engine.ts";
   * console.log((await TfjsEngine.create("cpu")).name); // tfjs-cpu
   * ```
   */
  static async create(backend: TfjsBackendName = "wasm", opts: TfjsInitOptions = {}): Promise<TfjsEngine> {
    const tf = await initTfjs(backend, opts);
    return new TfjsEngine(tf, backend === "webgpu" ? "webgpu" : `tfjs-${backend}`, backend);
  }

  /** See {@link Engine.loadFrozen}. */
  async loadFrozen(graph: Graph, weights: StateDict): Promise<FrozenModel> {
    await this.activate();
    return new TfjsFrozen(new TfjsNetwork(this.tf, graph, weights), this.activate);
  }

  /** See {@link Engine.loadTrainable}. */
  async loadTrainable(graph: Graph, weights: StateDict, sgd: SgdOptions): Promise<TrainableModel> {
    await this.activate();
    return new TfjsTrainable(new TfjsNetwork(this.tf, graph, weights), sgd, this.activate);
  }

  /** See {@link Engine.liveTensors}. */
  liveTensors(): number {
    return this.tf.memory().numTensors;
  }
}

/** NCHW host batch to an NHWC tensor. */
function toNhwc(tf: Tf, b: ImageBatch): Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(b.x, [b.n, ...b.shape]), [0, 2, 3, 1]));
}

/** NHWC tensor back to an NCHW host array. */
async function toNchwHost(tf: Tf, t: TfTensor): Promise<Float32Array> {
  const nchw = tf.transpose(t, [0, 3, 1, 2]);
  const data = (await nchw.data()) as Float32Array;
  nchw.dispose();
  return data;
}

/** Activates the owning engine's backend before a call. */
type Activate = () => Promise<void>;

class TfjsFrozen implements FrozenModel {
  /** Canonized layers for LRP rules, built on first use. */
  #lrp: LrpAnalyzer | null = null;

  constructor(readonly net: TfjsNetwork, readonly activate: Activate) {}

  get graph(): Graph {
    return this.net.graph;
  }

  async forward(batch: ImageBatch): Promise<Float32Array> {
    await this.activate();
    const tf = this.net.tf;
    const x = toNhwc(tf, batch);
    // tidy: ops inside a node (conv then bias add) make intermediates the graph walk never sees.
    const logits = tf.tidy(() => this.net.forward(x, false, true).logits);
    const out = (await logits.data()) as Float32Array;
    x.dispose();
    logits.dispose();
    return out;
  }

  async inputGradient(batch: LabelledBatch, reduction: GradReduction): Promise<Float32Array> {
    await this.activate();
    const tf = this.net.tf;
    const g = tf.tidy(() =>
      inputGradient(tf, this.net, toNhwc(tf, batch), tf.tensor1d(batch.y, "int32"), reduction)
    );
    const out = await toNchwHost(tf, g);
    g.dispose();
    return out;
  }

  async oracle(
    batch: LabelledBatch,
    opts: OracleOptions,
    keep?: boolean | OracleOutputs,
  ): Promise<OracleResult> {
    await this.activate();
    const tf = this.net.tf;
    const plan = relevancePlan(opts, this.graph.inChannels);
    const want = oracleOutputs(keep);
    if (plan) this.#lrp ??= new LrpAnalyzer(tf, this.graph, (n) => this.net.vars.get(n)!);
    const [xStar, logits, relevance] = tf.tidy(() => {
      const y = tf.tensor1d(batch.y, "int32");
      const o = oracleInput(tf, this.net, this.#lrp, plan, toNhwc(tf, batch), y, opts, want.relevance);
      return [o.xStar, this.net.forward(o.xStar, false).logits, o.relevance ?? tf.zeros([0])];
    });
    const result: OracleResult = { logits: (await logits.data()) as Float32Array };
    if (want.xStar) result.xStar = await toNchwHost(tf, xStar);
    if (want.relevance) result.relevance = await toNchwHost(tf, relevance);
    for (const t of [xStar, logits, relevance]) t.dispose();
    return result;
  }

  dispose(): void {
    this.#lrp?.dispose();
    this.net.dispose();
  }
}

class TfjsTrainable implements TrainableModel {
  #step = 0;
  #momentum = new Map<string, TfTensor>();

  constructor(readonly net: TfjsNetwork, readonly sgd: SgdOptions, readonly activate: Activate) {}

  get graph(): Graph {
    return this.net.graph;
  }

  async trainStep(
    batch: LabelledBatch,
    teacherLogits: Float32Array | null,
    w: LossWeights,
    lr: number,
  ): Promise<StepStats> {
    await this.activate();
    const tf = this.net.tf;
    const { momentum, weightDecay, nesterov, dampening } = this.sgd;
    const x = toNhwc(tf, batch);
    const y = tf.tensor1d(batch.y, "int32");
    const t = teacherLogits ? tf.tensor2d(teacherLogits, [batch.n, this.graph.numClasses]) : null;
    let kept: TfTensor[] = [];
    let stats: ReturnType<TfjsNetwork["forward"]>["stats"] = [];
    const { value, grads } = tf.variableGrads(() => {
      const f = this.net.forward(x, true);
      const parts = distillationLoss(tf, f.logits, y, t, w);
      stats = f.stats;
      kept = [parts.ce, parts.kd, f.logits, ...f.stats.flatMap((s) => [s.mean, s.variance])].map((k) =>
        tf.keep(k)
      );
      return parts.loss as import("npm:@tensorflow/tfjs-core@4.22.0").Scalar;
    }, this.net.trainable);
    tf.tidy(() => {
      this.net.trainable.forEach((p, i) => {
        const name = this.net.trainableNames[i];
        let g: TfTensor = grads[p.name];
        if (weightDecay !== 0) g = tf.add(g, tf.mul(p, weightDecay));
        if (momentum !== 0) {
          const prev = this.#momentum.get(name);
          const buf = prev ? tf.add(tf.mul(prev, momentum), tf.mul(g, 1 - dampening)) : tf.clone(g);
          prev?.dispose();
          this.#momentum.set(name, tf.keep(buf));
          g = nesterov ? tf.add(g, tf.mul(buf, momentum)) : buf;
        }
        p.assign(tf.sub(p, tf.mul(g, lr)));
      });
    });
    this.net.updateRunningStats(stats);
    this.#step++;
    const [ceT, kdT, logits] = kept;
    // One read brings every scalar of the step to the host (a GPU round trip each otherwise).
    const scalars = tf.tidy(() =>
      tf.concat([tf.reshape(ceT, [1]), tf.reshape(kdT, [1]), topkHits(tf, logits, y)])
    );
    const [ce, kd, correct1, correct5] = (await scalars.data()) as Float32Array;
    scalars.dispose();
    for (const k of kept) k.dispose();
    for (const g of Object.values(grads)) g.dispose();
    value.dispose();
    x.dispose();
    y.dispose();
    t?.dispose();
    const loss = teacherLogits ? w.ceWeight * ce + w.alpha * w.temperature ** 2 * kd : w.ceWeight * ce;
    return { loss, ce, kd, correct1, correct5 };
  }

  forward(batch: ImageBatch): Promise<Float32Array> {
    return new TfjsFrozen(this.net, this.activate).forward(batch);
  }

  async stateDict(): Promise<StateDict> {
    await this.activate();
    return await this.net.stateDict();
  }

  async optimizerState(): Promise<OptimizerState> {
    await this.activate();
    const momentum: StateDict = new Map();
    for (const p of this.graph.params) {
      const buf = this.#momentum.get(p.name);
      if (!buf) continue;
      momentum.set(
        p.name,
        fromTfjsLayout(this.net.roleOf(p.name), (await buf.data()) as Float32Array, p.shape),
      );
    }
    return { step: this.#step, momentum };
  }

  async load(weights: StateDict, optimizer?: OptimizerState): Promise<void> {
    await this.activate();
    this.net.load(weights);
    if (optimizer) {
      for (const b of this.#momentum.values()) b.dispose();
      this.#momentum.clear();
      this.#step = optimizer.step;
      for (const [name, t] of optimizer.momentum) {
        const arr = toTfjsLayout(this.net.roleOf(name), t);
        this.#momentum.set(name, this.net.tf.tensor(arr.data, arr.shape, "float32"));
      }
    }
  }

  dispose(): void {
    for (const b of this.#momentum.values()) b.dispose();
    this.#momentum.clear();
    this.net.dispose();
  }
}

/** Top-1 and top-5 hit counts of `logits` against `labels`, as a float32 [2] tensor (no host read). */
function topkHits(tf: Tf, logits: TfTensor, labels: TfTensor): TfTensor {
  const k = Math.min(5, logits.shape[1]!);
  // top-k indices are distinct, so the matches in a row are 0 or 1: their sum counts top-k hits.
  const match = tf.cast(tf.equal(tf.topk(logits, k).indices, tf.expandDims(labels, 1)), "float32");
  return tf.stack([tf.sum(tf.slice(match, [0, 0], [-1, 1])), tf.sum(match)]);
}
