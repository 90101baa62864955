/**
 * The training loop, in one readable function: for each epoch, for each batch, ask the response
 * provider for the teacher's logits (oracle or plain; none for CE-only training), take one SGD
 * step on the student, then evaluate, record metrics, checkpoint atomically and keep the best.
 * With a concurrent provider (a teacher on its own thread) the next batch's response is asked
 * for before the student's step on the current one, so the two run side by side; checkpoints
 * keep the loader position after the current batch, so a resumed run is the same.
 * Engine-, data- and UI-agnostic: everything it touches comes in through {@link TrainerOptions}.
 *
 * @example
 * ```ts ignore
 * import { train } from "./trainer.ts";
 * const summary = await train({ config, student, provider, trainData, testData, runDir, progress });
 * console.log(summary.best_test_acc);
 * ```
 * @module
 */

import * as path from "node:path";
import { writeFileAtomic } from "./atomic_file.ts";
import { type CheckpointRun, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { type DistillConfig, learningRate } from "./config.ts";
import type { LabelledBatch, LossWeights, TrainableModel } from "./engines/engine.ts";
import { argmaxRows, MetricsAccumulator } from "./metrics.ts";
import type { ResponseProvider } from "./oracle.ts";
import type { Progress } from "./progress.ts";
import { checkpointMismatch, runSettings } from "./run_folder.ts";
import { writeRunLogs } from "./run_logs.ts";
import type { StateDict } from "./tensor.ts";
import { countNonFinite, describeNonFinite } from "./non_finite.ts";

/** Shuffled, augmented training batches whose position can be saved and restored exactly. */
export interface TrainBatchSource {
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;
  /** Positions the source at the start of a 1-based epoch (reshuffles). */
  startEpoch(epoch: number): void;
  /** The next batch of the current epoch, or null when it is exhausted. */
  next(): Promise<LabelledBatch | null>;
  /** JSON-serialisable position (epoch, index, RNG), reflecting only batches handed out. */
  state(): unknown;
  /** Restores a position from {@link state}. */
  restore(state: unknown): void;
}

/** Fixed-order evaluation batches. */
export interface EvalBatchSource {
  /** Number of images. */
  readonly count: number;
  /** All batches, in order. */
  batches(): AsyncIterable<LabelledBatch>;
}

/** Per-epoch record (accuracies in percent), one line of metrics.jsonl. */
export interface EpochRecord {
  /** 1-based epoch. */
  epoch: number;
  /** Learning rate used. */
  lr: number;
  /** Mean total loss over training images. */
  train_loss: number;
  /** Mean CE part. */
  train_ce: number;
  /** Mean KL part (without T^2). */
  train_kd: number;
  /** Student top-1 on the training batches, %. */
  train_top1: number;
  /** Student top-5 on the training batches, %. */
  train_top5: number;
  /** Top-1 of the teacher's supervising logits (the oracle teacher on x*), %; null without a teacher. */
  teacher_train_top1: number | null;
  /** Student test top-1, %. */
  test_top1: number;
  /** Student test top-5, %. */
  test_top5: number;
  /** Student test NLL. */
  test_nll: number;
  /** Student test ECE (15 bins), %. */
  test_ece: number;
  /** Training images per second (teacher response and student step together). */
  images_per_sec: number;
  /** Seconds of this epoch (training and evaluation). */
  epoch_seconds: number;
}

/** The run summary (the paper script's fields, accuracies in percent). */
export interface RunSummary {
  /** Mean training loss per epoch. */
  train_losses: number[];
  /** Training top-1 per epoch. */
  train_acc1s: number[];
  /** Training top-5 per epoch. */
  train_acc5s: number[];
  /** Test top-1 per epoch. */
  test_acc1s: number[];
  /** Test top-5 per epoch. */
  test_acc5s: number[];
  /** The oracle teacher's training top-1 per epoch (null without a teacher). */
  train_acc1_T: (number | null)[];
  /** Best test [top-1, top-5] (each the maximum over epochs, as the paper's script). */
  max_test_acc: [number, number];
  /** Best test top-1 and its epoch. */
  best_test_acc: { top1: number; top5: number; epoch: number };
  /** Test accuracy after the last epoch. */
  last_test_acc: { top1: number; top5: number };
  /** Resolved configuration. */
  args: DistillConfig;
  /** Teacher response used. */
  response: string;
  /** Engine name. */
  engine: string;
  /** Seconds spent training and evaluating (summed over resumed segments). */
  time_consume: number;
  /** How the run ended. */
  status: "completed" | "interrupted";
}

/** Sums over the batches of an epoch so far (kept in checkpoints for mid-epoch resume). */
interface EpochAccum {
  images: number;
  loss: number;
  ce: number;
  kd: number;
  hit1: number;
  hit5: number;
  teacherHits: number;
  seconds: number;
}

/** The loop state saved in checkpoints. */
interface LoopState {
  epoch: number;
  batchInEpoch: number;
  accum: EpochAccum;
  loader: unknown;
  history: EpochRecord[];
  best: { top1: number; top5: number; epoch: number };
  elapsed: number;
}

/**
 * Thrown when the loss stops being finite, or the student's weights or test NLL after an epoch
 * do; the last good checkpoint stays on disk.
 */
export class NonFiniteLossError extends Error {
  /** Error name. */
  override name = "NonFiniteLossError";
}

/**
 * Thrown when an evaluation pass (or anything else that cannot stop with a checkpoint) is
 * interrupted (Ctrl-C).
 */
export class InterruptedError extends Error {
  /** Error name. */
  override name = "InterruptedError";
}

/** Everything the loop needs. */
export interface TrainerOptions {
  /** Resolved configuration (epochs, schedule, loss weights). */
  config: DistillConfig;
  /** The student being trained. */
  student: TrainableModel;
  /** Teacher response, or null for CE-only training. */
  provider: ResponseProvider | null;
  /** Training batches. */
  trainData: TrainBatchSource;
  /** Test batches. */
  testData: EvalBatchSource;
  /** Run folder (metrics, summary, checkpoints). */
  runDir: string;
  /** Progress reporter. */
  progress: Progress;
  /** Engine name for the summary. */
  engineName: string;
  /** Milliseconds clock (default performance.now). */
  clock?: () => number;
  /**
   * Aborting stops after the current step (or at once during an evaluation pass) with a
   * checkpoint (Ctrl-C).
   */
  signal?: AbortSignal;
  /** Continue from `<runDir>/checkpoint.safetensors`. */
  resume?: boolean;
  /**
   * Called on resume once the checkpoint is checked and loaded, before the loop writes
   * anything (e.g. to record the resume in the run folder).
   */
  onResumed?: (at: { epoch: number; batch: number }) => Promise<void>;
  /** Called with each finished epoch's record, after it is written to metrics.jsonl. */
  onEpoch?: (record: EpochRecord) => void;
  /** Called with the student weights when the test top-1 improves, and at the end. */
  onWeights?: (kind: "best" | "last", weights: StateDict) => Promise<void>;
}

/** File names inside a run folder. */
export const RUN_FILES = {
  config: "config.json",
  metrics: "metrics.jsonl",
  summary: "summary.json",
  checkpoint: "checkpoint.safetensors",
  best: "best.safetensors",
} as const;

const emptyAccum = (): EpochAccum => ({
  images: 0,
  loss: 0,
  ce: 0,
  kd: 0,
  hit1: 0,
  hit5: 0,
  teacherHits: 0,
  seconds: 0,
});

/**
 * Runs (or resumes) training to the configured number of epochs and returns the summary.
 * Writes `config.json`, `metrics.jsonl`, `summary.json` and checkpoints into `runDir`.
 *
 * @example
 * ```ts ignore
 * const summary = await train(options);
 * ```
 */
export async function train(o: TrainerOptions): Promise<RunSummary> {
  const c = o.config;
  const clock = o.clock ?? (() => performance.now());
  const file = (name: string) => path.join(o.runDir, name);
  const weights: LossWeights = { ceWeight: c.ceWeight, alpha: c.alpha, temperature: c.temperature };
  await Deno.mkdir(o.runDir, { recursive: true });

  let s: LoopState = {
    epoch: 1,
    batchInEpoch: 0,
    accum: emptyAccum(),
    loader: null,
    history: [],
    best: { top1: -1, top5: 0, epoch: 0 },
    elapsed: 0,
  };
  const run: CheckpointRun = { student: c.student, settings: runSettings(c) };
  if (o.resume) {
    // Everything is checked before the first write: a refused resume leaves the folder as it was.
    const ckFile = file(RUN_FILES.checkpoint);
    const ck = await loadCheckpoint<LoopState>(ckFile);
    checkCheckpointFits(ckFile, ck.run, run, ck.weights, await o.student.stateDict());
    if (!ck.loop || typeof ck.loop.epoch !== "number" || typeof ck.loop.batchInEpoch !== "number") {
      throw new Error(`${ckFile}: damaged checkpoint metadata (no training position)`);
    }
    await o.student.load(ck.weights, ck.optimizer);
    s = ck.loop;
    o.trainData.restore(s.loader);
    await o.onResumed?.({ epoch: s.epoch, batch: s.batchInEpoch });
    // The checkpoint is the truth: drop metric lines written after it (a kill between the two).
    await writeFileAtomic(file(RUN_FILES.metrics), s.history.map((r) => JSON.stringify(r) + "\n").join(""));
    o.progress.line(
      `resuming at epoch ${s.epoch}, batch ${s.batchInEpoch} from ${file(RUN_FILES.checkpoint)}`,
    );
  } else {
    await writeFileAtomic(file(RUN_FILES.config), JSON.stringify(c, null, 2) + "\n");
    await writeFileAtomic(file(RUN_FILES.metrics), "");
  }

  // Whether a checkpoint of this run is on disk (a resumed run started from one).
  let checkpointed = Boolean(o.resume);
  // `loader`: the position to resume from (default: the loader's own, when no batch is ahead).
  const checkpoint = async (w?: StateDict, loader: unknown = o.trainData.state()) => {
    s.loader = loader;
    const opt = await o.student.optimizerState();
    if (!w) {
      // A mid-epoch checkpoint (Ctrl-C, --checkpoint-every) must not save a diverged student
      // over the last good one: the last step's update is not covered by a loss.
      w = await o.student.stateDict();
      const bad = [...w].find(([, t]) => t.dtype === "float32" && !t.data.every(Number.isFinite))?.[0];
      if (bad !== undefined) {
        throw new NonFiniteLossError(
          `the student diverged in epoch ${s.epoch}, batch ${s.batchInEpoch} (lr ${
            learningRate(c, s.epoch)
          }): ` +
            `${bad} is not finite; stopped. ${kept()}; try a lower --lr.`,
        );
      }
    }
    await saveCheckpoint(file(RUN_FILES.checkpoint), { weights: w, optimizer: opt, loop: s, run });
    checkpointed = true;
  };
  const kept = () =>
    checkpointed
      ? `The last good checkpoint is kept in ${file(RUN_FILES.checkpoint)}`
      : `No checkpoint was written (it diverged in the first epoch)`;

  const interrupted = async () => {
    o.progress.line(
      `interrupted: checkpoint saved to ${
        file(RUN_FILES.checkpoint)
      }; continue with --resume --out ${o.runDir}`,
    );
    return await finish(o, s, "interrupted");
  };
  const every = c.checkpointEvery ?? 0;
  for (; s.epoch <= c.epochs; s.epoch++) {
    if (o.signal?.aborted && s.batchInEpoch === 0 && checkpointed) return await interrupted();
    const lr = learningRate(c, s.epoch);
    if (s.batchInEpoch === 0) o.trainData.startEpoch(s.epoch);
    const a = s.accum;
    const total = o.trainData.batchesPerEpoch;
    let segmentStart = clock();
    // A checkpoint written after an epoch's last step (Ctrl-C, --checkpoint-every, or during
    // its evaluation) resumes at the evaluation: the loader has already moved on to the next epoch.
    const training = s.batchInEpoch < total;
    if (training) {
      o.progress.begin(`epoch ${s.epoch}/${c.epochs}`, total, {
        offset: (s.epoch - 1) * total,
        steps: c.epochs * total,
        elapsedBefore: s.elapsed,
      });
    }
    // One batch ahead within the epoch when the teacher has a thread of its own: its response
    // for the next batch (it never depends on the student) is computed during this step. Each
    // batch keeps the loader's position right after it was handed out, so a checkpoint taken
    // after its step resumes exactly (the lookahead's response is simply computed again).
    const ahead = o.provider?.concurrent === true;
    let cur = training ? await fetchBatch(o, ahead) : null;
    while (cur) {
      const t0 = clock();
      const next = ahead ? await fetchBatch(o, ahead) : null;
      const batch = cur.batch;
      const teacher = o.provider ? await (cur.teacher ?? o.provider.respond(batch)) : null;
      // A non-finite teacher is not the learning rate's fault: say so before the student sees it.
      const badTeacher = teacher ? countNonFinite("teacher logits", teacher) : undefined;
      if (badTeacher) {
        throw new NonFiniteLossError(
          `the teacher's logits are not finite at epoch ${s.epoch}, batch ${s.batchInEpoch + 1} ` +
            `(${describeNonFinite([badTeacher])}, provider ${
              o.provider!.name
            }); stopped before the student ` +
            `step. ${kept()}. The teacher is at fault, not --lr: check its weights (or lower --gamma).`,
        );
      }
      const st = await o.student.trainStep(batch, teacher, weights, lr);
      if (!Number.isFinite(st.loss)) {
        throw new NonFiniteLossError(
          `loss became ${st.loss} at epoch ${s.epoch}, batch ${s.batchInEpoch + 1} (lr ${lr}); stopped. ` +
            `${kept()}; the teacher's logits were finite, so try a lower --lr.`,
        );
      }
      a.images += batch.n;
      a.loss += st.loss * batch.n;
      a.ce += st.ce * batch.n;
      a.kd += st.kd * batch.n;
      a.hit1 += st.correct1;
      a.hit5 += st.correct5;
      if (teacher) {
        const pred = argmaxRows(teacher, teacher.length / batch.n);
        for (let i = 0; i < batch.n; i++) if (pred[i] === batch.y[i]) a.teacherHits++;
      }
      s.batchInEpoch++;
      const now = clock();
      a.seconds += (now - t0) / 1000;
      o.progress.tick(s.batchInEpoch, {
        loss: a.loss / a.images,
        "top-1": `${((100 * a.hit1) / a.images).toFixed(1)}%`,
        "img/s": a.images / Math.max(a.seconds, 1e-9),
        lr: String(Number(lr.toPrecision(3))),
      });
      // Lets a Ctrl-C through: onnxruntime-node runs each step synchronously behind
      // setImmediate, which alone starves Deno's signal delivery for many steps.
      await yieldToEventLoop();
      if (o.signal?.aborted) {
        o.progress.end();
        s.elapsed += (now - segmentStart) / 1000;
        segmentStart = now;
        await checkpoint(undefined, cur.loader);
        return await interrupted();
      }
      if (every > 0 && ((s.epoch - 1) * total + s.batchInEpoch) % every === 0) {
        s.elapsed += (now - segmentStart) / 1000;
        segmentStart = now;
        await checkpoint(undefined, cur.loader);
      }
      cur = ahead ? next : await fetchBatch(o, ahead);
    }
    if (training) o.progress.end();
    let test;
    try {
      test = await evaluate(o.student, o.testData, o.student.graph.numClasses, o.signal);
    } catch (e) {
      if (!(e instanceof InterruptedError)) throw e;
      s.elapsed += (clock() - segmentStart) / 1000;
      await checkpoint();
      return await interrupted();
    }
    // The last step's update is not covered by a loss: a diverged student shows here, before it
    // can become a checkpoint, a metrics line or the best student.
    const w = await o.student.stateDict();
    const badWeight = [...w].find(([, t]) => t.dtype === "float32" && !t.data.every(Number.isFinite))?.[0];
    if (badWeight !== undefined || !Number.isFinite(test.nll)) {
      throw new NonFiniteLossError(
        `the student diverged in epoch ${s.epoch} (lr ${lr}): ` +
          (badWeight !== undefined ? `${badWeight} is not finite` : `its test NLL is ${test.nll}`) +
          `; stopped. ${kept()}; try a lower --lr.`,
      );
    }
    const now = clock();
    const rec: EpochRecord = {
      epoch: s.epoch,
      lr,
      train_loss: a.loss / a.images,
      train_ce: a.ce / a.images,
      train_kd: a.kd / a.images,
      train_top1: (100 * a.hit1) / a.images,
      train_top5: (100 * a.hit5) / a.images,
      teacher_train_top1: o.provider ? (100 * a.teacherHits) / a.images : null,
      test_top1: test.top1,
      test_top5: test.top5,
      test_nll: test.nll,
      test_ece: test.ece,
      images_per_sec: a.images / Math.max(a.seconds, 1e-9),
      epoch_seconds: (now - segmentStart) / 1000,
    };
    s.elapsed += (now - segmentStart) / 1000;
    s.history.push(rec);
    o.progress.line(
      `epoch ${s.epoch}: loss ${rec.train_loss.toFixed(4)} | train top-1 ${rec.train_top1.toFixed(2)}%` +
        (rec.teacher_train_top1 === null ? "" : ` | teacher ${rec.teacher_train_top1.toFixed(2)}%`) +
        ` | test top-1 ${rec.test_top1.toFixed(2)}% top-5 ${rec.test_top5.toFixed(2)}% | ${
          rec.images_per_sec.toFixed(1)
        } img/s`,
    );
    await Deno.writeTextFile(file(RUN_FILES.metrics), JSON.stringify(rec) + "\n", { append: true });
    await writeRunLogs(o.runDir, s.history); // metrics.csv and curves.png
    o.onEpoch?.(rec);
    if (rec.test_top1 > s.best.top1) {
      s.best = { top1: rec.test_top1, top5: rec.test_top5, epoch: s.epoch };
      await o.onWeights?.("best", w);
    }
    s.batchInEpoch = 0;
    s.accum = emptyAccum();
    s.epoch++;
    await checkpoint(w);
    s.epoch--; // the for-loop increments
  }
  await o.onWeights?.("last", await o.student.stateDict());
  return await finish(o, s, "completed");
}

/**
 * Eval-mode metrics of `model` over `data`.
 *
 * @example
 * ```ts ignore
 * const m = await evaluate(student, testData, 100);
 * ```
 */
export async function evaluate(
  model: { forward(b: LabelledBatch): Promise<Float32Array> },
  data: EvalBatchSource,
  numClasses: number,
  signal?: AbortSignal,
): Promise<ReturnType<MetricsAccumulator["result"]>> {
  const acc = new MetricsAccumulator(numClasses);
  for await (const b of data.batches()) {
    if (signal) {
      await yieldToEventLoop();
      if (signal.aborted) throw new InterruptedError("interrupted during an evaluation pass");
    }
    acc.add(await model.forward(b), b.y);
  }
  return acc.result();
}

/** A training batch, and when fetched ahead the loader's position right after it and its response. */
interface FetchedBatch {
  batch: LabelledBatch;
  /**
   * The loader's position right after this batch (ahead only: otherwise the loader has not moved
   * on, and a checkpoint reads its own state).
   */
  loader?: unknown;
  /** The response, already asked for (ahead only). */
  teacher: Promise<Float32Array> | null;
}

/**
 * The next batch of the epoch (null at its end); fetched ahead (a concurrent provider), also the
 * loader's position after it and its teacher response, asked for at once. A failure of that response
 * surfaces when the batch is reached (it is marked handled here, so it is never an unhandled
 * rejection if the run stops first).
 */
async function fetchBatch(o: TrainerOptions, ahead: boolean): Promise<FetchedBatch | null> {
  const batch = await o.trainData.next();
  if (!batch) return null;
  if (!ahead) return { batch, teacher: null };
  const loader = o.trainData.state();
  const teacher = o.provider!.respond(batch);
  teacher.catch(() => {});
  return { batch, loader, teacher };
}

/** One macrotask turn, so that signal handlers (Ctrl-C) run between synchronous native calls. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Refuses a checkpoint written for another architecture or other settings, or whose tensors do
 * not match the student's names and shapes, naming the file and the differences.
 */
function checkCheckpointFits(
  file: string,
  saved: CheckpointRun | undefined,
  now: CheckpointRun,
  weights: StateDict,
  student: StateDict,
): void {
  const why = checkpointMismatch(file, saved, now);
  if (why) throw new Error(why);
  const bad: string[] = [];
  for (const [k, t] of student) {
    const got = weights.get(k);
    if (!got) bad.push(`${k} missing`);
    else if (got.shape.join("x") !== t.shape.join("x")) {
      bad.push(`${k} is [${got.shape}] in the checkpoint, [${t.shape}] in the student`);
    }
  }
  for (const k of weights.keys()) if (!student.has(k)) bad.push(`${k} is not a ${now.student} tensor`);
  if (bad.length > 0) {
    throw new Error(
      `${file} does not fit the ${now.student} student (${bad.length} tensors differ: ${
        bad.slice(0, 3).join("; ")
      })`,
    );
  }
}

async function finish(o: TrainerOptions, s: LoopState, status: RunSummary["status"]): Promise<RunSummary> {
  const h = s.history;
  const summary: RunSummary = {
    train_losses: h.map((r) => r.train_loss),
    train_acc1s: h.map((r) => r.train_top1),
    train_acc5s: h.map((r) => r.train_top5),
    test_acc1s: h.map((r) => r.test_top1),
    test_acc5s: h.map((r) => r.test_top5),
    train_acc1_T: h.map((r) => r.teacher_train_top1),
    max_test_acc: [Math.max(0, ...h.map((r) => r.test_top1)), Math.max(0, ...h.map((r) => r.test_top5))],
    best_test_acc: { ...s.best, top1: Math.max(0, s.best.top1) },
    last_test_acc: { top1: h.at(-1)?.test_top1 ?? 0, top5: h.at(-1)?.test_top5 ?? 0 },
    args: o.config,
    response: o.provider?.name ?? "none",
    engine: o.engineName,
    time_consume: s.elapsed,
    status,
  };
  await writeFileAtomic(path.join(o.runDir, RUN_FILES.summary), JSON.stringify(summary, null, 2) + "\n");
  return summary;
}
