/**
 * `deno task distill` and `deno task train`: everything between a resolved configuration and a
 * trained student on disk. Loads the dataset and the teacher, refuses a teacher whose classes or
 * channels do not fit the data before any training, builds the student, runs the training loop
 * and exports the last and the best student as ONNX with dataset metadata.
 *
 * @example
 * ```ts ignore
 * import { runDistill } from "./distill.ts";
 * import { resolveConfig } from "../lib/config.ts";
 * const summary = await runDistill(resolveConfig({ data: "synthetic", teacher: "t.onnx", epochs: 1 }), io);
 * ```
 * @module
 */

import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { removeDeadTemps, writeFileAtomic } from "../lib/atomic_file.ts";
import type { DistillConfig } from "../lib/config.ts";
import type { ImageDataset } from "../lib/data/dataset.ts";
import { loadDataset } from "../lib/data/load.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import type { FrozenModel, GradReduction, OracleOptions } from "../lib/engines/engine.ts";
import { loadFrozenInWorker, planOverlap } from "../lib/engines/frozen_worker.ts";
import { defaultThreads } from "../lib/engines/onnxruntime/session.ts";
import {
  createEngine,
  type EngineChoice,
  type EngineName,
  resolveEngineChoice,
} from "../lib/engines/registry.ts";
import type { TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { countParameters } from "../lib/graph.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import {
  createResponseProvider,
  oracleIsPlain,
  oracleResponse,
  type RelevanceRule,
  validateOracleOptions,
} from "../lib/oracle/mod.ts";
import { createProgress, type Progress, type ProgressStream } from "../lib/progress.ts";
import type { RunPhase } from "../lib/interrupt.ts";
import {
  checkNewRunFolder,
  checkWritable,
  clearRunFiles,
  describeChanges,
  planResume,
  recordResume,
  type ResumePlan,
  RunLock,
  TEACHER_TEST_FILE,
  type TeacherTest,
} from "../lib/run_folder.ts";
import { encodeSafetensors } from "../lib/safetensors.ts";
import type { StateDict } from "../lib/tensor.ts";
import {
  type EpochRecord,
  evaluate,
  InterruptedError,
  RUN_FILES,
  type RunSummary,
  train,
} from "../lib/trainer.ts";
import { evalSource, trainSource } from "./data_sources.ts";
import { belowChanceWarning, chooseNormalisation } from "./normalisation.ts";
import { teacherForDataset } from "./teachers.ts";

/** Where the application writes and how it is interrupted. */
export interface AppIO {
  /** Progress and report output. */
  stream: ProgressStream;
  /** Milliseconds clock. */
  clock?: () => number;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
  /**
   * Told when the run moves from setting up (nothing to save: Ctrl-C may quit at once) to
   * training and evaluating (Ctrl-C stops with a checkpoint), and back.
   */
  onPhase?: (phase: RunPhase) => void;
  /** Folder for downloaded teachers and exported models (default `weights`). */
  weightsDir?: string;
  /** An in-memory dataset used instead of loading `config.data`. */
  dataset?: ImageDataset;
  /** Wraps the progress reporter the training loop gets (library step callbacks). */
  observe?: (progress: Progress) => Progress;
  /** Called with each finished epoch's record (library callbacks). */
  onEpoch?: (record: EpochRecord) => void;
}

/** Batch size for evaluation passes (no gradients, so larger is faster). */
const EVAL_BATCH = 256;

/**
 * Runs a distillation (`mode` "distill": teacher response + CE) or plain CE training of the
 * `student` architecture (`mode` "train", for new datasets' teachers) and returns the summary.
 *
 * @example
 * ```ts ignore
 * await runDistill(config, { stream: Deno.stdout }, "train");
 * ```
 */
export async function runDistill(
  c: DistillConfig,
  io: AppIO,
  mode: "distill" | "train" = "distill",
): Promise<RunSummary> {
  const progress = createProgress({ stream: io.stream, clock: io.clock });
  const weightsDir = io.weightsDir ?? "weights";
  if (c.resume && !c.out) throw new Error("--resume needs --out <run folder> naming the run to continue");
  io.onPhase?.("setup");
  // The run folder is judged first, reading only: a refused command changes nothing in it.
  let plan: ResumePlan | null = null;
  if (c.resume) plan = await planResume(c.out, c);
  else if (c.out) await checkNewRunFolder(c.out, c.overwrite);

  let dataset = io.dataset ?? await loadDataset(c.data, {
    dataDir: c.dataDir,
    download: c.download,
    onProgress: dataProgress(progress),
    hint: `Pass --data-dir <folder> holding the files${c.download ? "" : ", or allow --download"}.`,
  });
  const [cin, h, w] = dataset.shape;
  progress.line(
    `data     ${dataset.name}: ${dataset.train.count} train / ${dataset.test.count} test images, ` +
      `${cin}x${h}x${w}, ${dataset.numClasses} classes`,
  );

  // What `auto` picked, and why; then the teacher's thread (overlap) and each side's threads.
  const { choice, reason } = await resolveEngineChoice({
    engine: c.engine as EngineName,
    backend: c.backend as TfjsBackendName,
  });
  if (reason) progress.line(reason);
  const threading = planOverlap(choice, c, defaultThreads());
  const studentChoice: EngineChoice = { ...choice, threads: threading.studentThreads };
  const teacherChoice: EngineChoice = { ...choice, threads: threading.teacherThreads };
  const engine = await createEngine(studentChoice);
  progress.line(`engine   ${engine.name}`);

  if (mode === "train" && (c.mean.length || c.std.length)) {
    const norm = chooseNormalisation(dataset, {}, c, cin, dataset.name);
    dataset = { ...dataset, mean: norm.mean, std: norm.std };
  }
  let teacher: FrozenModel | null = null;
  let teacherEngine = engine.name;
  let teacherName = "scratch";
  if (mode === "distill") {
    const t = await teacherForDataset(c.teacher, dataset, {
      weightsDir,
      download: c.download,
      arch: c.teacherArch,
      onProgress: (bytes, total) =>
        progress.line(`download ${c.teacher}: ${bytes}${total ? "/" + total : ""} bytes`),
      onInfo: (line) => progress.line(line),
    });
    const norm = chooseNormalisation(dataset, t.metadata, c, cin, dataset.name);
    if (norm.note) progress.line(`note     ${norm.note}`);
    dataset = { ...dataset, mean: norm.mean, std: norm.std };
    teacherName = t.graph.arch === "onnx" ? path.basename(c.teacher).replace(/\.\w+$/, "") : t.graph.arch;
    progress.line(`teacher  ${t.description}`);
    progress.line(`overlap  ${threading.reason.replace(/^overlap /, "")}`);
    if (threading.overlap) {
      const w = await loadFrozenInWorker(teacherChoice, t.graph, t.weights);
      teacher = w;
      teacherEngine = `${w.engineName} (worker)`;
    } else {
      const own = threading.teacherThreads === threading.studentThreads
        ? engine
        : await createEngine(teacherChoice);
      teacher = await own.loadFrozen(t.graph, t.weights);
    }
  }

  const graph = buildModel(c.student, { numClasses: dataset.numClasses, inChannels: cin });
  const student = await engine.loadTrainable(graph, initStateDict(graph, c.seed), {
    momentum: c.momentum,
    weightDecay: c.weightDecay,
    nesterov: c.nesterov,
    dampening: 0,
  }).catch((e) => {
    teacher?.dispose(); // a teacher's worker would keep the process alive
    throw e;
  });
  progress.line(`student  ${c.student}: ${countParameters(graph).toLocaleString("en-US")} parameters`);

  const runDir = c.out ||
    path.join("runs", `${mode === "train" ? "train" : teacherName}_to_${c.student}_${stamp()}`);
  const studentOut = c.studentOut ||
    path.join(weightsDir, `${dataset.name.replace(/[^\w-]+/g, "_")}_${c.student}.onnx`);
  const bestOut = studentOut.replace(/(\.onnx)?$/, ".best.onnx");
  progress.line(`run      ${runDir}`);

  let lock: RunLock | null = null;
  const releaseOnExit = () => lock?.releaseSync();
  globalThis.addEventListener("unload", releaseOnExit);
  const leave = async () => {
    globalThis.removeEventListener("unload", releaseOnExit);
    await lock?.release();
    io.onPhase?.("setup");
    student.dispose();
    teacher?.dispose();
  };
  try {
    // Outputs are checked writable before any work, then the folder is locked and re-checked.
    await checkWritable(studentOut, "--student-out");
    await checkWritable(bestOut, "--student-out (best)");
    lock = await RunLock.acquire(runDir);
    if (!c.resume) {
      await checkNewRunFolder(runDir, c.overwrite);
      if (c.overwrite) await clearRunFiles(runDir);
    }
    // Temporary files of writers killed mid-write (kill -9, power loss).
    await removeDeadTemps(runDir);
    await removeDeadTemps(path.dirname(studentOut), [path.basename(studentOut), path.basename(bestOut)]);
  } catch (e) {
    await leave();
    throw e;
  }
  if (plan && !plan.hasCheckpoint) {
    progress.line(`resume   ${runDir} has no checkpoint yet: starting its run from its config.json`);
  }

  const trainLoader = new BatchLoader(dataset, "train", {
    batchSize: c.batchSize,
    seed: c.seed,
    subset: c.subset > 0 ? c.subset : undefined,
  });
  const testLoader = new BatchLoader(dataset, "test", { batchSize: EVAL_BATCH, worker: false });
  try {
    const provider = teacher ? createResponseProvider(c.response, teacher, oracleOptions(c)) : null;
    io.onPhase?.("training");
    if (teacher && c.testTeacher && !plan?.hasCheckpoint) {
      const t = await reportTeacher(teacher, testLoader, dataset, c, progress, teacherEngine, io.signal)
        .catch(
          (e) => {
            if (e instanceof InterruptedError) {
              throw new InterruptedError("interrupted during the teacher's test check; nothing was trained");
            }
            throw e;
          },
        );
      // Recorded for sweep reports: the teacher's own test accuracy, plain and as the oracle.
      await Deno.mkdir(runDir, { recursive: true });
      await writeFileAtomic(path.join(runDir, TEACHER_TEST_FILE), JSON.stringify(t, null, 2) + "\n");
    }

    const exportStudent = async (file: string, weights: StateDict) => {
      await writeFileAtomic(
        file,
        exportOnnx(graph, weights, {
          imageSize: h === w ? h : null,
          dataset: dataset.name,
          mean: dataset.mean,
          std: dataset.std,
          classNames: dataset.classNames,
        }),
      );
    };
    const observed = io.observe?.(progress);
    const config = { ...c, out: runDir, overwrite: false };
    const summary = await train({
      config,
      student,
      provider,
      trainData: trainSource(trainLoader),
      testData: evalSource(testLoader),
      runDir,
      progress: observed ?? progress,
      onEpoch: io.onEpoch,
      engineName: engine.name,
      clock: io.clock,
      signal: io.signal,
      resume: Boolean(plan?.hasCheckpoint),
      onResumed: async (at) => {
        if (plan!.changes.length > 0) {
          progress.line(
            `resume   changed on resume (recorded in ${path.join(runDir, "resume_log.jsonl")}): ` +
              describeChanges(plan!.changes),
          );
        }
        await recordResume(runDir, config, plan!.changes, at);
      },
      onWeights: async (kind, weights) => {
        if (kind === "best") {
          await writeFileAtomic(path.join(runDir, RUN_FILES.best), encodeSafetensors(weights));
          await exportStudent(bestOut, weights);
        } else {
          await exportStudent(studentOut, weights);
        }
      },
    });
    if (summary.status === "completed") {
      progress.line(
        `done     best test top-1 ${
          summary.best_test_acc.top1.toFixed(2)
        }% (epoch ${summary.best_test_acc.epoch}), ` +
          `last ${summary.last_test_acc.top1.toFixed(2)}%; student -> ${studentOut} (best: ${bestOut}); ` +
          `metrics in ${runDir}`,
      );
    }
    return summary;
  } finally {
    await trainLoader.close();
    await testLoader.close();
    await leave();
  }
}

/**
 * The oracle settings of a configuration.
 *
 * @example
 * ```ts
 * import { oracleOptions } from "./distill.ts";
 * import { resolveConfig } from "../lib/config.ts";
 * console.log(oracleOptions(resolveConfig()).relevance); // grad-input
 * ```
 */
export function oracleOptions(c: DistillConfig): OracleOptions {
  const opts: OracleOptions = {
    gamma: c.gamma,
    recNum: c.recNum,
    reduction: c.reduction as GradReduction,
    relevance: c.relevance as RelevanceRule,
    lrp: { epsilon: c.lrpEpsilon, gamma: c.lrpGamma },
  };
  validateOracleOptions(opts);
  return opts;
}

async function reportTeacher(
  teacher: FrozenModel,
  loader: BatchLoader,
  dataset: ImageDataset,
  c: DistillConfig,
  progress: Progress,
  engine: string,
  signal?: AbortSignal,
): Promise<TeacherTest> {
  const t0 = performance.now();
  const plain = await evaluate(teacher, evalSource(loader), teacher.graph.numClasses, signal);
  const warning = belowChanceWarning(
    plain.top1,
    teacher.graph.numClasses,
    `teacher ${c.teacher}`,
    dataset.name,
  );
  if (warning) progress.line(warning);
  let line = `teacher  test top-1 ${plain.top1.toFixed(2)}%, ECE ${plain.ece.toFixed(2)}%`;
  const opts = oracleOptions(c);
  if (c.response === "oracle" && !oracleIsPlain(opts)) {
    // In training batches: with the mean reduction, x* depends on the batch size.
    const batched = new BatchLoader(dataset, "test", { batchSize: c.batchSize, worker: false });
    const oracle = await evaluate(
      { forward: async (b) => (await oracleResponse(teacher, b, opts)).logits },
      evalSource(batched),
      teacher.graph.numClasses,
      signal,
    ).finally(() => batched.close());
    line += `; oracle (gamma ${c.gamma}) top-1 ${oracle.top1.toFixed(2)}%, ECE ${oracle.ece.toFixed(2)}%`;
    progress.line(`${line} [${((performance.now() - t0) / 1000).toFixed(1)} s on ${engine}]`);
    return { plain: pick(plain), oracle: { ...pick(oracle), gamma: c.gamma } };
  }
  progress.line(`${line} [${((performance.now() - t0) / 1000).toFixed(1)} s on ${engine}]`);
  return { plain: pick(plain), oracle: null };
}

const pick = (m: { top1: number; ece: number; nll: number }) => ({ top1: m.top1, ece: m.ece, nll: m.nll });

function dataProgress(progress: Progress) {
  let last = 0;
  return (p: { stage: string; what: string; done: number; total: number | null }) => {
    const now = performance.now();
    if (now - last < 2000 && p.done !== p.total) return;
    last = now;
    progress.line(`${p.stage.padEnd(8)} ${p.what}: ${p.done}${p.total ? "/" + p.total : ""}`);
  };
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "_");
}
