/**
 * The onnxruntime engine: {@link Engine} on onnxruntime-node. onnxruntime has no autograd, so
 * each use is compiled from the IR into an ONNX graph that carries its own backward pass:
 * frozen networks get eval forward, input-gradient and whole-oracle graphs with constant
 * (BatchNorm-folded) weights; trainable networks get one graph per batch size for the whole SGD
 * step, with parameters, momentum buffers and running statistics kept on the host between steps.
 * On CPUs with MLAS NCHWc kernels (x86) the graphs are emitted in that blocked layout
 * (frozen_nchwc.ts, train_nchwc.ts); elsewhere, or with `layout: "nchw"`, in plain NCHW.
 * Sessions are compiled once per graph variant and batch size and use every core.
 *
 * @example
 * ```ts
 * import { OnnxruntimeEngine } from "./engine.ts";
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * const engine = new OnnxruntimeEngine();
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const student = await engine.loadTrainable(g, initStateDict(g, 0), { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 });
 * const batch = { x: new Float32Array(2 * 3 * 32 * 32).fill(0.5), y: new Int32Array([1, 2]), n: 2, shape: [3, 32, 32] as const };
 * const stats = await student.trainStep(batch, null, { ceWeight: 1, alpha: 0, temperature: 1 }, 0.1);
 * console.log(Number.isFinite(stats.loss)); // true
 * student.dispose();
 * ```
 * @module
 */

import type { Graph } from "../../graph.ts";
import { type HostTensor, int64Scalar, type StateDict } from "../../tensor.ts";
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
import { type EvalNet, lowerEvalNet } from "./eval_net.ts";
import { compileFrozen, FROZEN_IO, type FrozenGraphKind } from "./frozen_graphs.ts";
import { nchwcLayout } from "./frozen_nchwc.ts";
import { NCHW } from "./frozen_layout.ts";
import { nchwcBlockSize } from "./nchwc.ts";
import { defaultThreads, type Feed, runSession, SessionCache } from "./session.ts";
import { compileTrainStep } from "./train_graph.ts";
import { compileTrainStepNchwc, trainNchwcCompatible } from "./train_nchwc.ts";
import { momentumName, TRAIN_IO, type TrainGraphSpec, updatedName } from "./train_common.ts";
import type { WeightGradMethod } from "./conv_grad.ts";

/** Engine options. */
export interface OnnxruntimeOptions {
  /** Intra-op threads (default: every core). */
  threads?: number;
  /** Sessions kept per model (variants times batch sizes). */
  sessionCapacity?: number;
  /** Weight-gradient formulation of the training graphs. */
  weightGrad?: WeightGradMethod;
  /**
   * Activation layout of the compiled graphs: `nchwc` (onnxruntime's blocked layout, fast),
   * `nchw` (portable), or `auto` (nchwc where this onnxruntime build and the network allow it).
   */
  layout?: "auto" | "nchw" | "nchwc";
}

/** {@link Engine} backed by onnxruntime-node (CPU). */
export class OnnxruntimeEngine implements Engine {
  readonly name = "onnxruntime-cpu";
  readonly #opts: Required<OnnxruntimeOptions>;

  /** An engine with `opts` (threads default to every core). */
  constructor(opts: OnnxruntimeOptions = {}) {
    this.#opts = {
      threads: opts.threads ?? defaultThreads(),
      sessionCapacity: opts.sessionCapacity ?? 6,
      weightGrad: opts.weightGrad ?? "im2col",
      layout: opts.layout ?? "auto",
    };
  }

  /**
   * NCHWc block size to compile `graph` with (0: plain NCHW). The rule is on the graph's
   * convolutions, which its lowered eval net keeps one for one (the frozen layout's own check
   * still guards each compile).
   */
  async #blockFor(graph: Graph): Promise<number> {
    if (this.#opts.layout === "nchw") return 0;
    const block = await nchwcBlockSize();
    if (trainNchwcCompatible(graph, block)) return block;
    if (this.#opts.layout === "nchwc") {
      throw new Error(`${graph.arch} cannot run in NCHWc layout (block size ${block || "unavailable"})`);
    }
    return 0;
  }

  /** See {@link Engine.loadFrozen}. */
  async loadFrozen(graph: Graph, weights: StateDict): Promise<FrozenModel> {
    // Frozen graphs run as fast without a pre-planned memory pattern, in a third less memory.
    const sessions = new SessionCache(this.#opts.sessionCapacity, this.#opts.threads, false);
    const net = lowerEvalNet(graph, weights);
    return new OrtFrozen(graph, net, await this.#blockFor(graph), sessions);
  }

  /** See {@link Engine.loadTrainable}. */
  async loadTrainable(graph: Graph, weights: StateDict, sgd: SgdOptions): Promise<TrainableModel> {
    const block = await this.#blockFor(graph);
    return new OrtTrainable(graph, weights, sgd, this.#opts, block);
  }

  /** Host arrays are plain JS memory and sessions are released with their models: no count. */
  liveTensors(): number {
    return -1;
  }
}

/**
 * The frozen graph the engine runs: NCHWc layout when `block` > 0, else plain NCHW (tools that
 * profile or inspect the engine's graphs call this too).
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { initStateDict } from "../../models/init.ts";
 * import { lowerEvalNet } from "./eval_net.ts";
 * import { compileFrozenGraph } from "./engine.ts";
 * const g = buildModel("resnet8");
 * const bytes = compileFrozenGraph(lowerEvalNet(g, initStateDict(g, 0)), 2, [3, 32, 32], { kind: "forward" }, 0);
 * console.log(bytes.length > 0); // true
 * ```
 */
export function compileFrozenGraph(
  net: EvalNet,
  n: number,
  image: readonly [number, number, number],
  spec: FrozenGraphKind,
  block: number,
): Uint8Array {
  return compileFrozen(net, n, image, spec, block > 0 ? nchwcLayout(block) : NCHW);
}

/**
 * The training-step graph the engine runs: NCHWc layout when `block` > 0, else plain NCHW.
 *
 * @example
 * ```ts
 * import { buildModel } from "../../models/zoo.ts";
 * import { compileTrainGraph } from "./engine.ts";
 * const sgd = { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0 };
 * const spec = { n: 2, image: [3, 32, 32] as const, withTeacher: false, sgd };
 * console.log(compileTrainGraph(buildModel("resnet8"), spec, 0).length > 0); // true
 * ```
 */
export function compileTrainGraph(graph: Graph, spec: TrainGraphSpec, block: number): Uint8Array {
  return block > 0 ? compileTrainStepNchwc(graph, spec, block) : compileTrainStep(graph, spec);
}

/** Rejects batches whose image shape does not fit the graph. */
function checkBatch(graph: Graph, batch: ImageBatch): void {
  const [c, h, w] = batch.shape;
  if (c !== graph.inChannels) {
    throw new Error(`${graph.arch} takes ${graph.inChannels}-channel images, the batch has ${c}`);
  }
  if (batch.x.length !== batch.n * c * h * w) {
    throw new Error(
      `batch has ${batch.x.length} values, ${batch.n}x${c}x${h}x${w} needs ${batch.n * c * h * w}`,
    );
  }
}

/**
 * Labels to a one-hot [n, k] matrix (the graphs take labels in this form).
 *
 * @example
 * ```ts
 * import { oneHot } from "./engine.ts";
 * console.log(oneHot(new Int32Array([1, 0]), 2, 2)); // Float32Array(4) [ 0, 1, 1, 0 ]
 * ```
 */
export function oneHot(labels: Int32Array, n: number, k: number): Float32Array {
  if (labels.length !== n) throw new Error(`batch has ${n} images but ${labels.length} labels`);
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < k)) throw new Error(`label ${y} outside [0, ${k})`);
    out[i * k + y] = 1;
  }
  return out;
}

function imageFeed(batch: ImageBatch): Feed {
  return { data: batch.x, dims: [batch.n, ...batch.shape] };
}

/** Eval-mode model with constant weights; sessions compiled per variant and batch size. */
class OrtFrozen implements FrozenModel {
  constructor(
    readonly graph: Graph,
    readonly net: EvalNet,
    /** NCHWc block size, or 0 for plain NCHW graphs. */
    readonly block: number,
    readonly sessions: SessionCache,
  ) {}

  async forward(batch: ImageBatch): Promise<Float32Array> {
    const out = await this.#run(batch, { kind: "forward" }, { [FROZEN_IO.x]: imageFeed(batch) });
    return out[FROZEN_IO.logits];
  }

  async inputGradient(batch: LabelledBatch, reduction: GradReduction): Promise<Float32Array> {
    const out = await this.#run(batch, { kind: "input_gradient", reduction }, this.#labelledFeeds(batch));
    return out[FROZEN_IO.grad];
  }

  async oracle(
    batch: LabelledBatch,
    opts: OracleOptions,
    keep?: boolean | OracleOutputs,
  ): Promise<OracleResult> {
    const plan = relevancePlan(opts, this.graph.inChannels);
    const want = oracleOutputs(keep);
    const { gamma, recNum, reduction } = opts;
    const spec: FrozenGraphKind = { kind: "oracle", gamma, recNum, reduction, keepInput: want.xStar };
    if (want.relevance) spec.keepRelevance = true;
    if (plan) spec.plan = plan;
    const out = await this.#run(batch, spec, this.#labelledFeeds(batch));
    const result: OracleResult = { logits: out[FROZEN_IO.logits] };
    if (want.xStar) result.xStar = out[FROZEN_IO.xStar];
    if (want.relevance) result.relevance = out[FROZEN_IO.relevance];
    return result;
  }

  dispose(): void {
    void this.sessions.clear();
  }

  #labelledFeeds(batch: LabelledBatch): Record<string, Feed> {
    const k = this.graph.numClasses;
    return {
      [FROZEN_IO.x]: imageFeed(batch),
      [FROZEN_IO.onehot]: { data: oneHot(batch.y, batch.n, k), dims: [batch.n, k] },
    };
  }

  async #run(batch: ImageBatch, spec: FrozenGraphKind, feeds: Record<string, Feed>) {
    checkBatch(this.graph, batch);
    const key = `${JSON.stringify(spec)}:${batch.n}:${batch.shape.join("x")}`;
    const session = await this.sessions.get(
      key,
      () => compileFrozenGraph(this.net, batch.n, batch.shape, spec, this.block),
    );
    return await runSession(session, feeds);
  }
}

/** A student trained by one compiled graph per batch size. */
class OrtTrainable implements TrainableModel {
  /** Float parameters and buffers (PyTorch layout, which is also ONNX's). */
  #tensors = new Map<string, Float32Array>();
  /** `num_batches_tracked` counters. */
  #tracked = new Map<string, number>();
  /** Momentum buffers, absent before the first step (or with momentum 0). */
  #momentum: Map<string, Float32Array> | null = null;
  #step = 0;
  /** Bumped whenever the weights change, so eval sessions are rebuilt only when needed. */
  #version = 0;
  readonly #trainSessions: SessionCache;
  readonly #evalSessions: SessionCache;
  #evalVersion = -1;

  constructor(
    readonly graph: Graph,
    weights: StateDict,
    readonly sgd: SgdOptions,
    readonly opts: Required<OnnxruntimeOptions>,
    /** NCHWc block size for the graphs, or 0 for plain NCHW. */
    readonly block: number,
  ) {
    this.#trainSessions = new SessionCache(opts.sessionCapacity, opts.threads);
    this.#evalSessions = new SessionCache(opts.sessionCapacity, opts.threads, false);
    this.#setWeights(weights);
  }

  async trainStep(
    batch: LabelledBatch,
    teacherLogits: Float32Array | null,
    w: LossWeights,
    lr: number,
  ): Promise<StepStats> {
    checkBatch(this.graph, batch);
    const { n } = batch;
    const k = this.graph.numClasses;
    if (teacherLogits && teacherLogits.length !== n * k) {
      throw new Error(`teacher logits have ${teacherLogits.length} values, ${n}x${k} needed`);
    }
    const withTeacher = teacherLogits !== null;
    const key = `${withTeacher ? "kd" : "ce"}:${n}:${batch.shape.join("x")}`;
    const session = await this.#trainSessions.get(
      key,
      () => {
        const spec = { n, image: batch.shape, withTeacher, sgd: this.sgd, weightGrad: this.opts.weightGrad };
        return compileTrainGraph(this.graph, spec, this.block);
      },
    );
    const first = this.#momentum === null;
    const feeds: Record<string, Feed> = {
      [TRAIN_IO.x]: imageFeed(batch),
      [TRAIN_IO.onehot]: { data: oneHot(batch.y, n, k), dims: [n, k] },
      [TRAIN_IO.lossWeights]: { data: new Float32Array([w.ceWeight, w.alpha, w.temperature]), dims: [3] },
      // PyTorch's first step sets the buffer to the gradient itself: zeros in, no damping.
      [TRAIN_IO.sgd]: { data: new Float32Array([lr, first ? 1 : 1 - this.sgd.dampening]), dims: [2] },
    };
    if (teacherLogits) feeds[TRAIN_IO.teacher] = { data: teacherLogits, dims: [n, k] };
    for (const p of this.graph.params) {
      if (p.dtype !== "float32") continue;
      feeds[p.name] = { data: this.#tensors.get(p.name)!, dims: p.shape };
      if (p.kind === "param" && this.sgd.momentum !== 0) {
        const buf = this.#momentum?.get(p.name) ?? new Float32Array(this.#tensors.get(p.name)!.length);
        feeds[momentumName(p.name)] = { data: buf, dims: p.shape };
      }
    }
    const out = await runSession(session, feeds);
    const momentum = new Map<string, Float32Array>();
    for (const p of this.graph.params) {
      if (p.dtype === "int64") {
        this.#tracked.set(p.name, (this.#tracked.get(p.name) ?? 0) + 1);
        continue;
      }
      this.#tensors.set(p.name, out[updatedName(p.name)]);
      if (p.kind === "param" && this.sgd.momentum !== 0) {
        momentum.set(p.name, out[updatedName(momentumName(p.name))]);
      }
    }
    if (this.sgd.momentum !== 0) this.#momentum = momentum;
    this.#step++;
    this.#version++;
    const [loss, ce, kd] = out[TRAIN_IO.lossParts];
    const [correct1, correct5] = topkHits(out[TRAIN_IO.logits], batch.y, k);
    return { loss, ce, kd, correct1, correct5 };
  }

  async forward(batch: ImageBatch): Promise<Float32Array> {
    checkBatch(this.graph, batch);
    if (this.#evalVersion !== this.#version) {
      await this.#evalSessions.clear();
      this.#evalVersion = this.#version;
    }
    const key = `forward:${batch.n}:${batch.shape.join("x")}`;
    const session = await this.#evalSessions.get(key, () => {
      const net = lowerEvalNet(this.graph, this.#stateDictSync());
      return compileFrozenGraph(net, batch.n, batch.shape, { kind: "forward" }, this.block);
    });
    return (await runSession(session, { [FROZEN_IO.x]: imageFeed(batch) }))[FROZEN_IO.logits];
  }

  stateDict(): Promise<StateDict> {
    return Promise.resolve(this.#stateDictSync());
  }

  optimizerState(): Promise<OptimizerState> {
    const momentum: StateDict = new Map();
    for (const p of this.graph.params) {
      const buf = this.#momentum?.get(p.name);
      if (buf) momentum.set(p.name, { dtype: "float32", shape: [...p.shape], data: buf.slice() });
    }
    return Promise.resolve({ step: this.#step, momentum });
  }

  load(weights: StateDict, optimizer?: OptimizerState): Promise<void> {
    this.#setWeights(weights);
    if (optimizer) {
      this.#step = optimizer.step;
      this.#momentum = null;
      if (optimizer.momentum.size > 0) {
        const bufs = new Map<string, Float32Array>();
        for (const p of this.graph.params) {
          if (p.kind !== "param") continue;
          const t = optimizer.momentum.get(p.name);
          if (!t) throw new Error(`optimizer state lacks the momentum buffer of ${p.name}`);
          bufs.set(p.name, checked(p.name, t, p.shape));
        }
        this.#momentum = bufs;
      }
    }
    return Promise.resolve();
  }

  dispose(): void {
    void this.#trainSessions.clear();
    void this.#evalSessions.clear();
  }

  #setWeights(weights: StateDict): void {
    for (const p of this.graph.params) {
      const t = weights.get(p.name);
      if (!t) throw new Error(`weights lack parameter ${p.name} of ${this.graph.arch}`);
      if (p.dtype === "int64") this.#tracked.set(p.name, Number(t.data[0] ?? 0));
      else this.#tensors.set(p.name, checked(p.name, t, p.shape));
    }
    this.#version++;
  }

  #stateDictSync(): StateDict {
    const sd: StateDict = new Map();
    for (const p of this.graph.params) {
      if (p.dtype === "int64") {
        sd.set(p.name, int64Scalar(this.#tracked.get(p.name) ?? 0));
      } else {
        sd.set(p.name, { dtype: "float32", shape: [...p.shape], data: this.#tensors.get(p.name)!.slice() });
      }
    }
    return sd;
  }
}

/** A float32 copy of `t` after checking its shape against `shape`. */
function checked(name: string, t: HostTensor, shape: number[]): Float32Array {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`parameter ${name}: expected shape [${shape}], got [${t.shape}]`);
  }
  return Float32Array.from(t.data);
}

/** Top-1 and top-5 hits of `logits` [n, k] against `labels` (ties resolved to the lower index). */
function topkHits(logits: Float32Array, labels: Int32Array, k: number): [number, number] {
  let c1 = 0, c5 = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = logits.subarray(i * k, (i + 1) * k);
    const y = labels[i];
    // Rank of the true class: how many classes score higher (or equal with a lower index).
    let rank = 0;
    for (let j = 0; j < k; j++) if (row[j] > row[y] || (row[j] === row[y] && j < y)) rank++;
    if (rank === 0) c1++;
    if (rank < 5) c5++;
  }
  return [c1, c5];
}
