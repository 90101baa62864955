/**
 * The whole job as library calls, the layer the CLI commands are thin wrappers over: run a
 * distillation or a training with progress and per-epoch callbacks and get the history back,
 * evaluate any network on a dataset, load a teacher by file or zoo name.
 *
 * @example
 * ```ts
 * import { datasetFromArrays } from "./data_sources.ts";
 * import { evaluateNetwork } from "./library.ts";
 * import { createEngine } from "../lib/engines/registry.ts";
 * import { buildModel } from "../lib/models/zoo.ts";
 * import { initStateDict } from "../lib/models/init.ts";
 * const ds = datasetFromArrays({
 *   shape: [3, 8, 8], numClasses: 2,
 *   train: { images: new Uint8Array(4 * 192), labels: new Int32Array([0, 1, 0, 1]) },
 *   test: { images: new Uint8Array(2 * 192).fill(7), labels: new Int32Array([0, 1]) },
 * });
 * const g = buildModel("resnet8", { numClasses: 2 });
 * const net = await (await createEngine({ engine: "tfjs", backend: "cpu" })).loadFrozen(g, initStateDict(g, 0));
 * const m = await evaluateNetwork(net, ds);
 * console.log(m.count, m.top1 === 50); // 2 true
 * ```
 * @module
 */

import {
  type DistillConfig,
  resolveConfig,
  resolveFields,
  type Settings,
  TRAIN_FIELDS,
  trainAsDistill,
  type TrainConfig,
} from "../lib/config.ts";
import type { ImageDataset } from "../lib/data/dataset.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import type { ImageBatch } from "../lib/engines/engine.ts";
import { type ClassificationMetrics, MetricsAccumulator } from "../lib/metrics.ts";
import type { Progress, ProgressFields, ProgressStream } from "../lib/progress.ts";
import type { RunPhase } from "../lib/interrupt.ts";
import type { EpochRecord, RunSummary } from "../lib/trainer.ts";
import { type AppIO, runDistill } from "./distill.ts";
import type { LoadedModel } from "./model_file.ts";
import { resolveTeacher } from "./teachers.ts";

/** One training step's progress, as the progress bar shows it. */
export interface StepProgress {
  /** What is running, e.g. `epoch 3/240`. */
  label: string;
  /** Steps done in this task. */
  step: number;
  /** Steps in this task. */
  steps: number;
  /** Running values: `loss`, `top1` (%), `img/s`. */
  fields: ProgressFields;
}

/** Options of {@link distill} and {@link train}. */
export interface RunOptions {
  /** Called after every training step. */
  onProgress?: (p: StepProgress) => void;
  /** Called after every epoch with its record (a line of metrics.jsonl). */
  onEpoch?: (r: EpochRecord) => void;
  /** Where the human report goes (default: nowhere). */
  stream?: ProgressStream;
  /** Aborting stops after the current step with a checkpoint. */
  signal?: AbortSignal;
  /** Told when the run moves between setting up and training (the CLI's Ctrl-C handling). */
  onPhase?: (phase: RunPhase) => void;
  /** An in-memory dataset instead of `config.data` (see `datasetFromArrays`). */
  dataset?: ImageDataset;
  /** Folder for downloaded teachers and default model paths (default `weights`). */
  weightsDir?: string;
  /** Milliseconds clock. */
  clock?: () => number;
}

/** What a run returns. */
export interface RunResult {
  /** The run summary (also `summary.json` in the run folder). */
  summary: RunSummary;
  /** One record per epoch (also `metrics.jsonl`). */
  history: EpochRecord[];
}

const SILENT: ProgressStream = { write: () => true };

/**
 * Distills a student from a teacher (the paper's method with the defaults), writing the run
 * folder and the student ONNX; settings not given keep the defaults of `deno task distill`.
 *
 * @example
 * ```ts ignore
 * const { history } = await distill({ data: "synthetic", teacher: "teacher.onnx", student: "resnet8", epochs: 2 },
 *   { onEpoch: (r) => console.log(r.epoch, r.test_top1) });
 * ```
 */
export async function distill(config: Settings<DistillConfig>, o: RunOptions = {}): Promise<RunResult> {
  return await run(resolveConfig(config as Record<string, unknown>), "distill", o);
}

/**
 * Trains the `student` architecture from scratch with cross-entropy (e.g. a teacher for a new
 * dataset); settings not given keep the defaults of `deno task train`.
 *
 * @example
 * ```ts ignore
 * const { summary } = await train({ data: "synthetic", student: "resnet8", epochs: 2, studentOut: "t.onnx" });
 * ```
 */
export async function train(config: Settings<TrainConfig>, o: RunOptions = {}): Promise<RunResult> {
  return await run(
    trainAsDistill(resolveFields(TRAIN_FIELDS, config as Record<string, unknown>)),
    "train",
    o,
  );
}

async function run(c: DistillConfig, mode: "distill" | "train", o: RunOptions): Promise<RunResult> {
  const history: EpochRecord[] = [];
  const io: AppIO = {
    stream: o.stream ?? SILENT,
    clock: o.clock,
    signal: o.signal,
    onPhase: o.onPhase,
    weightsDir: o.weightsDir,
    dataset: o.dataset,
    observe: (progress) => observeProgress(progress, o.onProgress),
    onEpoch: (r) => {
      history.push(r);
      o.onEpoch?.(r);
    },
  };
  const summary = await runDistill(c, io, mode);
  return { summary, history };
}

/**
 * Wraps a progress reporter so that step progress also reaches a callback.
 *
 * @example
 * ```ts
 * import { observeProgress } from "./library.ts";
 * const steps: number[] = [];
 * const p = observeProgress({ begin() {}, tick() {}, end() {}, line() {} }, (s) => steps.push(s.step));
 * p.begin("epoch 1/1", 2); p.tick(1); p.tick(2); p.end();
 * console.log(steps); // [ 1, 2 ]
 * ```
 */
export function observeProgress(inner: Progress, onProgress?: (p: StepProgress) => void): Progress {
  let label = "", steps = 0;
  return {
    begin(l, total, run) {
      label = l;
      steps = total;
      inner.begin(l, total, run);
    },
    tick(done, fields) {
      inner.tick(done, fields);
      onProgress?.({ label, step: done, steps, fields: fields ?? {} });
    },
    end: () => inner.end(),
    line: (t) => inner.line(t),
  };
}

/** Options of {@link evaluateNetwork}. */
export interface EvaluateNetworkOptions {
  /** Images per forward call (default 256). */
  batchSize?: number;
  /** Only the first N test images. */
  limit?: number;
  /** Which split (default test). */
  split?: "train" | "test";
}

/**
 * Accuracy (top-1/top-5), NLL, ECE, MCE, entropy, per-class accuracy and the reliability bins
 * of any network (a loaded teacher, a student, anything with `forward`) on a dataset split.
 * For an ONNX file use `evaluateModel`.
 *
 * @example
 * ```ts ignore
 * const m = await evaluateNetwork(teacher, dataset, { limit: 1000 });
 * console.log(m.top1, m.ece);
 * ```
 */
export async function evaluateNetwork(
  model: { forward(b: ImageBatch): Promise<Float32Array> },
  dataset: ImageDataset,
  o: EvaluateNetworkOptions = {},
): Promise<ClassificationMetrics> {
  const loader = new BatchLoader(dataset, o.split ?? "test", {
    batchSize: o.batchSize ?? 256,
    limit: o.limit,
    worker: false,
  });
  const acc = new MetricsAccumulator(dataset.numClasses);
  try {
    for await (const b of loader.epochBatches()) acc.add(await model.forward(b), b.y);
  } finally {
    await loader.close();
  }
  return acc.result();
}

/** Options of {@link loadTeacher}. */
export interface LoadTeacherOptions {
  /** Dataset name (picks the paper's published checkpoint for a zoo name). */
  dataset?: string;
  /** Download a missing published checkpoint (default true). */
  download?: boolean;
  /** Where checkpoints are kept (default `weights`). */
  weightsDir?: string;
  /** Architecture of a .pth file (inferred when absent). */
  arch?: string;
}

/**
 * A teacher by file (.pth / .onnx) or zoo name (the paper's published checkpoint for
 * `dataset`): graph, weights, a description and the ONNX metadata (normalisation, classes).
 *
 * @example
 * ```ts ignore
 * const t = await loadTeacher("resnet56", { dataset: "cifar100" });
 * const net = await (await createEngine({ engine: "onnxruntime" })).loadFrozen(t.graph, t.weights);
 * ```
 */
export async function loadTeacher(spec: string, o: LoadTeacherOptions = {}): Promise<LoadedModel> {
  return await resolveTeacher(spec, {
    dataset: o.dataset ?? "cifar100",
    weightsDir: o.weightsDir ?? "weights",
    download: o.download ?? true,
    arch: o.arch,
  });
}
