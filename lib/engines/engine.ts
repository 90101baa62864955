/**
 * The one interface every compute engine implements (tfjs on any backend, onnxruntime), so the
 * trainer, the oracle and evaluation never know which one runs. Batches cross this boundary as
 * host arrays: NCHW float32 images, int32 labels, [N, K] float32 logits.
 *
 * @example
 * ```ts
 * import { createEngine } from "./registry.ts";
 * import { buildModel } from "../models/zoo.ts";
 * import { initStateDict } from "../models/init.ts";
 * const engine = await createEngine({ engine: "tfjs", backend: "cpu" });
 * const g = buildModel("resnet8", { numClasses: 10 });
 * const net = await engine.loadFrozen(g, initStateDict(g, 0));
 * const logits = await net.forward({ x: new Float32Array(2 * 3 * 32 * 32), n: 2, shape: [3, 32, 32] });
 * console.log(logits.length); // 20
 * net.dispose();
 * ```
 * @module
 */

import type { ImageBatch, LabelledBatch } from "../batch.ts";
import type { Graph } from "../graph.ts";
import type { GradReduction, OracleOptions } from "../oracle/options.ts";
import type { StateDict } from "../tensor.ts";

export type { ImageBatch, LabelledBatch } from "../batch.ts";
export type { GradReduction, OracleOptions } from "../oracle/options.ts";

/** Which by-products of an oracle pass to return besides the logits on x*. */
export interface OracleOutputs {
  /** The final x*, NCHW like the batch. */
  xStar?: boolean;
  /** The relevance R of the first step (x* = x + gamma * sign(x) * R), NCHW. */
  relevance?: boolean;
}

/** Result of one oracle pass. */
export interface OracleResult {
  /** Teacher logits on the final x*, [n, K]. */
  logits: Float32Array;
  /** The final x*, when asked for. */
  xStar?: Float32Array;
  /** The first step's relevance, when asked for. */
  relevance?: Float32Array;
}

/**
 * What {@link FrozenModel.oracle} returns besides the logits: `true` means x*.
 *
 * @example
 * ```ts
 * import { oracleOutputs } from "./engine.ts";
 * console.log(oracleOutputs(true), oracleOutputs({ relevance: true })); // { xStar: true, relevance: false } { xStar: false, relevance: true }
 * ```
 */
export function oracleOutputs(keep: boolean | OracleOutputs = false): Required<OracleOutputs> {
  return typeof keep === "boolean"
    ? { xStar: keep, relevance: false }
    : { xStar: keep.xStar ?? false, relevance: keep.relevance ?? false };
}

/** A network whose weights never change: teachers, evaluation. BatchNorm in eval mode. */
export interface FrozenModel {
  /** The network's graph. */
  readonly graph: Graph;
  /** Logits [n, K]. */
  forward(batch: ImageBatch): Promise<Float32Array>;
  /** dCE(logits(x), y)/dx with the given reduction, NCHW like `x`; weights get no gradient. */
  inputGradient(batch: LabelledBatch, reduction: GradReduction): Promise<Float32Array>;
  /**
   * Teacher logits on the relevance-reinforced input x* for any relevance rule (see
   * lib/oracle/); `keep` asks for x* itself (`true`) and the first step's relevance.
   */
  oracle(batch: LabelledBatch, opts: OracleOptions, keep?: boolean | OracleOutputs): Promise<OracleResult>;
  /**
   * True when calls run on a thread of their own (see frozen_worker.ts), so they overlap with
   * work on the calling thread, such as the student's step; absent or false otherwise.
   */
  readonly concurrent?: boolean;
  /** Frees engine memory. */
  dispose(): void;
}

/** Loss weights of one distillation step. */
export interface LossWeights {
  /** Weight of CE(student, y). */
  ceWeight: number;
  /** Weight of T^2 * KL(teacher || student). */
  alpha: number;
  /** Softmax temperature. */
  temperature: number;
}

/** SGD hyper-parameters with torch.optim.SGD semantics. */
export interface SgdOptions {
  /** Momentum factor (0 disables the buffer). */
  momentum: number;
  /** L2 penalty added to every parameter's gradient, BatchNorm included. */
  weightDecay: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** Dampening (PyTorch default 0). */
  dampening: number;
}

/** Statistics of one training step (batch means). */
export interface StepStats {
  /** Total loss. */
  loss: number;
  /** Cross-entropy part (unweighted). */
  ce: number;
  /** KL part (unweighted, without T^2). */
  kd: number;
  /** Student top-1 hits in the batch. */
  correct1: number;
  /** Student top-5 hits in the batch. */
  correct5: number;
}

/** Optimiser state for exact resume: momentum buffers keyed by parameter name. */
export interface OptimizerState {
  /** Steps taken. */
  step: number;
  /** Momentum buffers (absent before the first step). */
  momentum: StateDict;
}

/** A network being trained with SGD (BatchNorm in train mode during steps). */
export interface TrainableModel {
  /** The network's graph. */
  readonly graph: Graph;
  /**
   * One SGD step on `ceWeight * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))`.
   * With `teacherLogits` null only the CE term is used (plain training).
   */
  trainStep(
    batch: LabelledBatch,
    teacherLogits: Float32Array | null,
    weights: LossWeights,
    lr: number,
  ): Promise<StepStats>;
  /** Eval-mode logits [n, K]. */
  forward(batch: ImageBatch): Promise<Float32Array>;
  /** Current parameters and buffers, PyTorch layout. */
  stateDict(): Promise<StateDict>;
  /** Optimiser state. */
  optimizerState(): Promise<OptimizerState>;
  /** Restores parameters/buffers and, optionally, optimiser state. */
  load(weights: StateDict, optimizer?: OptimizerState): Promise<void>;
  /** Frees engine memory. */
  dispose(): void;
}

/** A compute engine. */
export interface Engine {
  /** Human-readable name, e.g. `tfjs-wasm` or `onnxruntime-cpu`. */
  readonly name: string;
  /** Loads a frozen (eval-mode) network. */
  loadFrozen(graph: Graph, weights: StateDict): Promise<FrozenModel>;
  /** Loads a trainable network with an SGD optimiser. */
  loadTrainable(graph: Graph, weights: StateDict, sgd: SgdOptions): Promise<TrainableModel>;
  /** Live engine-side tensors (for leak checks); -1 when the engine cannot tell. */
  liveTensors(): number;
}
