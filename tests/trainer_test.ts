/**
 * The training loop on a tiny network and an in-memory dataset (tfjs cpu engine): metrics and
 * summary files, exact resume after an interruption (mid-epoch and at an epoch boundary),
 * non-finite loss handling with the last good checkpoint kept, and the oracle teacher accuracy.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { trainSource } from "../app/data_sources.ts";
import { loadCheckpoint } from "../lib/checkpoint.ts";
import { resolveConfig } from "../lib/config.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
import type { TrainableModel } from "../lib/engines/engine.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { initStateDict } from "../lib/models/init.ts";
import { createResponseProvider } from "../lib/oracle.ts";
import { createProgress } from "../lib/progress.ts";
import { maxAbsDiff, type StateDict } from "../lib/tensor.ts";
import {
  type EvalBatchSource,
  NonFiniteLossError,
  RUN_FILES,
  train,
  type TrainBatchSource,
} from "../lib/trainer.ts";
import { evalSource, makeData, MemorySource, tinyGraph } from "./train_sources.ts";

const engine = await createEngine({ engine: "tfjs", backend: "cpu" });
const trainData = makeData(40, 1);
const testData = makeData(24, 2);
const quiet = createProgress({ stream: { write: () => {} }, tty: false });

async function setup(overrides: Record<string, unknown>) {
  const config = resolveConfig({ epochs: 3, batchSize: 8, lr: 0.1, schedule: "2", seed: 3, ...overrides });
  const g = tinyGraph();
  const student = await engine.loadTrainable(g, initStateDict(g, config.seed), {
    momentum: config.momentum,
    weightDecay: config.weightDecay,
    nesterov: false,
    dampening: 0,
  });
  const teacherGraph = tinyGraph();
  const teacher = await engine.loadFrozen(teacherGraph, initStateDict(teacherGraph, 99));
  const provider = createResponseProvider("oracle", teacher, { gamma: 0.5, recNum: 1, reduction: "mean" });
  return { config, student, provider, teacher };
}

/**
 * Resumes the run in `runDir` with a fresh student and checks that it completes bitwise at
 * `want`, with one metrics line per epoch (3); returns the setup for disposal.
 */
async function resumeExactly(
  runDir: string,
  want: StateDict,
  trainData: TrainBatchSource,
  overrides: Record<string, unknown>,
) {
  const c = await setup(overrides);
  const resumed = await train({
    config: c.config,
    student: c.student,
    provider: c.provider,
    trainData,
    testData: evalSource(testData),
    runDir,
    progress: quiet,
    engineName: engine.name,
    resume: true,
  });
  assert.equal(resumed.status, "completed");
  const got = await weightsOf(c.student);
  for (const [k, t] of want) {
    assert.equal(maxAbsDiff(got.get(k)!.data, t.data), 0, `${k} differs after resume`);
  }
  const lines = (await Deno.readTextFile(path.join(runDir, RUN_FILES.metrics))).trim().split("\n");
  assert.equal(lines.length, 3);
  return c;
}

async function weightsOf(m: TrainableModel): Promise<StateDict> {
  return await m.stateDict();
}

Deno.test("a run writes config, per-epoch metrics and the paper-style summary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_train_" });
  const { config, student, provider, teacher } = await setup({});
  const exported: string[] = [];
  const summary = await train({
    config,
    student,
    provider,
    trainData: new MemorySource(trainData, 8, 3),
    testData: evalSource(testData),
    runDir: dir,
    progress: quiet,
    engineName: engine.name,
    onWeights: (kind) => Promise.resolve(void exported.push(kind)),
  });
  assert.equal(summary.status, "completed");
  assert.equal(summary.test_acc1s.length, 3);
  assert.ok(summary.train_acc1_T.every((v) => v !== null && v >= 0 && v <= 100));
  assert.equal(summary.max_test_acc[0], Math.max(...summary.test_acc1s));
  const lines = (await Deno.readTextFile(path.join(dir, RUN_FILES.metrics))).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3]);
  assert.deepEqual(lines.map((l) => l.lr), [0.1, 0.1 * 0.1, 0.1 * 0.1]);
  assert.ok(exported.includes("best") && exported.at(-1) === "last");
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(path.join(dir, RUN_FILES.config))),
    JSON.parse(JSON.stringify(config)),
  );
  student.dispose();
  teacher.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** The package's real loader (it runs on across epochs: its state after an epoch's last batch is the next epoch). */
function loaderSource(): TrainBatchSource {
  const ds = makeSyntheticDataset({ numClasses: 4, trainCount: 40, testCount: 8, shape: [3, 8, 8], seed: 5 });
  return trainSource(new BatchLoader(ds, "train", { batchSize: 8, seed: 3, worker: false }));
}

for (
  const [where, abortAtCall, source] of [
    // 5 batches per epoch; call 6 ends epoch 1, call 12 epoch 2.
    ["in the middle of epoch 1", 3, "memory"],
    // An interrupt during an epoch's last step lets the epoch finish.
    ["during the last step of epoch 1", 5, "memory"],
    ["in the middle of epoch 2", 8, "memory"],
    ["during the last step of epoch 2", 11, "memory"],
    ["in the middle of epoch 2", 8, "loader"],
    ["during the last step of epoch 1", 5, "loader"],
  ] as const
) {
  const makeSource = () => source === "memory" ? new MemorySource(trainData, 8, 3) : loaderSource();
  Deno.test(`a run interrupted ${where} resumes exactly: same final weights as an uninterrupted one (${source} source)`, async () => {
    const dirA = await Deno.makeTempDir({ prefix: "okd_train_a_" });
    const dirB = await Deno.makeTempDir({ prefix: "okd_train_b_" });
    const a = await setup({});
    await train({
      config: a.config,
      student: a.student,
      provider: a.provider,
      trainData: makeSource(),
      testData: evalSource(testData),
      runDir: dirA,
      progress: quiet,
      engineName: engine.name,
    });
    const want = await weightsOf(a.student);

    // Interrupt, then resume with fresh objects.
    const b = await setup({});
    const ac = new AbortController();
    let calls = 0;
    const counting = makeSource();
    assert.equal(counting.batchesPerEpoch, 5);
    const origNext = counting.next.bind(counting);
    counting.next = async () => {
      if (++calls === abortAtCall) ac.abort();
      return await origNext();
    };
    const first = await train({
      config: b.config,
      student: b.student,
      provider: b.provider,
      trainData: counting,
      testData: evalSource(testData),
      runDir: dirB,
      progress: quiet,
      engineName: engine.name,
      signal: ac.signal,
    });
    assert.equal(first.status, "interrupted");
    b.student.dispose();
    const c = await resumeExactly(dirB, want, makeSource(), {});
    for (const o of [a, c]) {
      o.student.dispose();
      o.teacher.dispose();
    }
    b.teacher.dispose();
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  });
}

Deno.test("a non-finite loss stops the run with a clear message and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_train_nan_" });
  // Epoch 1 at a sane rate writes a checkpoint; from epoch 2 the schedule poisons the rate (a
  // resume may not change --lr, so the same settings must do both).
  const { config, student, provider, teacher } = await setup({
    epochs: 3,
    lr: 0.05,
    lrDecay: 1e31,
    schedule: "2",
  });
  await train({
    config: { ...config, epochs: 1 },
    student,
    provider,
    trainData: new MemorySource(trainData, 8, 3),
    testData: evalSource(testData),
    runDir: dir,
    progress: quiet,
    engineName: engine.name,
  });
  const before = await Deno.readFile(path.join(dir, RUN_FILES.checkpoint));
  await assert.rejects(
    train({
      config,
      student,
      provider,
      trainData: new MemorySource(trainData, 8, 3),
      testData: evalSource(testData),
      runDir: dir,
      progress: quiet,
      engineName: engine.name,
      resume: true,
    }),
    (e: Error) => {
      assert.ok(e instanceof NonFiniteLossError);
      assert.match(
        e.message,
        /loss became (NaN|Infinity|-Infinity) at epoch 2, batch \d+ .*last good checkpoint is kept in .*checkpoint\.safetensors/,
      );
      return true;
    },
  );
  assert.deepEqual(await Deno.readFile(path.join(dir, RUN_FILES.checkpoint)), before);
  student.dispose();
  teacher.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** An evaluation source that calls `onBatch` (1-based count over all passes) before each batch. */
function hookedEval(onBatch: (n: number) => void): EvalBatchSource {
  const base = evalSource(testData);
  let n = 0;
  return {
    count: base.count,
    async *batches() {
      for await (const b of base.batches()) {
        onBatch(++n);
        yield b;
      }
    },
  };
}

for (
  const [what, source, every, crashAtCall, evalCrash, want] of [
    // 5 steps per epoch; checkpoints every 2 steps: steps 2, 4, (5: epoch end), 6, ...
    ["killed mid-epoch 2", "memory", 2, 9, 0, { epoch: 2, batchInEpoch: 1 }],
    ["killed mid-epoch 2", "loader", 2, 9, 0, { epoch: 2, batchInEpoch: 1 }],
    ["killed mid-epoch 1", "loader", 3, 5, 0, { epoch: 1, batchInEpoch: 3 }],
    // Every 5 steps: the checkpoint after epoch 1's last step comes before its evaluation.
    ["killed in epoch 1's evaluation", "loader", 5, 0, 1, { epoch: 1, batchInEpoch: 5 }],
  ] as const
) {
  Deno.test(`--checkpoint-every ${every}: a run ${what} loses at most ${every} steps and resumes exactly (${source} source)`, async () => {
    const makeSource = () => source === "memory" ? new MemorySource(trainData, 8, 3) : loaderSource();
    const dirA = await Deno.makeTempDir({ prefix: "okd_every_a_" });
    const dirB = await Deno.makeTempDir({ prefix: "okd_every_b_" });
    const a = await setup({});
    await train({
      config: a.config,
      student: a.student,
      provider: a.provider,
      trainData: makeSource(),
      testData: evalSource(testData),
      runDir: dirA,
      progress: quiet,
      engineName: engine.name,
    });
    const wantWeights = await weightsOf(a.student);

    // A crash (what kill -9 leaves: the last checkpoint and nothing after it).
    const b = await setup({ checkpointEvery: every });
    let calls = 0;
    const crashing = makeSource();
    const origNext = crashing.next.bind(crashing);
    crashing.next = async () => {
      if (++calls === crashAtCall) throw new Error("killed");
      return await origNext();
    };
    await assert.rejects(
      train({
        config: b.config,
        student: b.student,
        provider: b.provider,
        trainData: crashing,
        testData: hookedEval((n) => {
          if (n === evalCrash) throw new Error("killed");
        }),
        runDir: dirB,
        progress: quiet,
        engineName: engine.name,
      }),
      /killed/,
    );
    const ck = await loadCheckpoint<{ epoch: number; batchInEpoch: number }>(
      path.join(dirB, RUN_FILES.checkpoint),
    );
    assert.deepEqual({ epoch: ck.loop.epoch, batchInEpoch: ck.loop.batchInEpoch }, want);
    assert.equal(ck.run?.student, b.config.student);
    b.student.dispose();

    const c = await resumeExactly(dirB, wantWeights, makeSource(), { checkpointEvery: every });
    for (const o of [a, c]) {
      o.student.dispose();
      o.teacher.dispose();
    }
    b.teacher.dispose();
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  });
}

Deno.test("Ctrl-C during an evaluation pass stops it at once with a checkpoint; the resumed run is exact", async () => {
  const dirA = await Deno.makeTempDir({ prefix: "okd_evalint_a_" });
  const dirB = await Deno.makeTempDir({ prefix: "okd_evalint_b_" });
  const a = await setup({});
  await train({
    config: a.config,
    student: a.student,
    provider: a.provider,
    trainData: loaderSource(),
    testData: evalSource(testData),
    runDir: dirA,
    progress: quiet,
    engineName: engine.name,
  });
  const want = await weightsOf(a.student);
  const b = await setup({});
  const ac = new AbortController();
  let evalBatches = 0;
  // Epoch 2's evaluation (test batches 3 and 4): Ctrl-C before its second batch.
  const first = await train({
    config: b.config,
    student: b.student,
    provider: b.provider,
    trainData: loaderSource(),
    testData: hookedEval((n) => {
      evalBatches = n;
      if (n === 3) ac.abort();
    }),
    runDir: dirB,
    progress: quiet,
    engineName: engine.name,
    signal: ac.signal,
  });
  assert.equal(first.status, "interrupted");
  assert.equal(evalBatches, 3, "the evaluation pass went on after Ctrl-C");
  const ck = await loadCheckpoint<{ epoch: number; batchInEpoch: number }>(
    path.join(dirB, RUN_FILES.checkpoint),
  );
  assert.deepEqual([ck.loop.epoch, ck.loop.batchInEpoch], [2, 5]);
  const c = await resumeExactly(dirB, want, loaderSource(), {});
  for (const o of [a, b, c]) {
    o.student.dispose();
    o.teacher.dispose();
  }
  await Deno.remove(dirA, { recursive: true });
  await Deno.remove(dirB, { recursive: true });
});

Deno.test("a checkpoint of another architecture or other settings is refused by name, before anything is written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_train_mismatch_" });
  const a = await setup({ epochs: 1 });
  await train({
    config: a.config,
    student: a.student,
    provider: a.provider,
    trainData: new MemorySource(trainData, 8, 3),
    testData: evalSource(testData),
    runDir: dir,
    progress: quiet,
    engineName: engine.name,
  });
  const snapshot = async () =>
    Object.fromEntries(
      await Promise.all(
        [...Deno.readDirSync(dir)].map(async (e) => [e.name, await Deno.readFile(path.join(dir, e.name))]),
      ),
    );
  const before = await snapshot();
  for (
    const [over, want] of [
      [
        { lr: 0.2 },
        /checkpoint\.safetensors was written with other settings than this run's: --lr 0\.1 -> 0\.2/,
      ],
      [
        { student: "resnet8" },
        /checkpoint\.safetensors holds a resnet20 student, but this run builds a resnet8/,
      ],
    ] as const
  ) {
    const b = await setup({ epochs: 2, ...over });
    await assert.rejects(
      train({
        config: b.config,
        student: b.student,
        provider: b.provider,
        trainData: new MemorySource(trainData, 8, 3),
        testData: evalSource(testData),
        runDir: dir,
        progress: quiet,
        engineName: engine.name,
        resume: true,
      }),
      (e: Error) => want.test(e.message),
    );
    b.student.dispose();
    b.teacher.dispose();
  }
  assert.deepEqual(await snapshot(), before, "a refused resume changed the run folder");
  a.student.dispose();
  a.teacher.dispose();
  await Deno.remove(dir, { recursive: true });
});
