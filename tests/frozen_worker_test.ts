/**
 * The teacher on a worker thread of its own (lib/engines/frozen_worker.ts) and the trainer's
 * one-batch lookahead: the worker's answers equal the in-thread model's bitwise at equal
 * threads, batches travel without copies and come back, a failing teacher gives a clear error
 * and no hang, and training with the overlap gives bitwise the same student as without it,
 * interrupted and resumed included.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { runDistill } from "../app/distill.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { loadCheckpoint } from "../lib/checkpoint.ts";
import { runCli } from "./cli_utils.ts";
import { loadFrozenInWorker, planOverlap } from "../lib/engines/frozen_worker.ts";
import type { FrozenModel, TrainableModel } from "../lib/engines/engine.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { resolveConfig } from "../lib/config.ts";
import { GraphBuilder } from "../lib/graph.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { createResponseProvider, registerResponseProvider, type ResponseProvider } from "../lib/oracle.ts";
import { createProgress, type Progress } from "../lib/progress.ts";
import { Rng } from "../lib/rng.ts";
import { maxAbsDiff, type StateDict } from "../lib/tensor.ts";
import { RUN_FILES, train } from "../lib/trainer.ts";
import { evalSource, makeData, MemorySource, PIX } from "./train_sources.ts";

const ORT = { engine: "onnxruntime", threads: 1 } as const;
const ORACLE = { gamma: 0.5, recNum: 1, reduction: "mean" } as const;

function randomBatch(n: number, shape: readonly [number, number, number], classes: number, seed: number) {
  const r = new Rng(seed);
  const x = new Float32Array(n * shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < x.length; i++) x[i] = r.normal();
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % classes);
  return { x, y, n, shape };
}

function bitwiseEqual(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, `${what}: lengths differ`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) {
      assert.fail(`${what}: element ${i} is ${a[i]} in the worker, ${b[i]} in-thread`);
    }
  }
}

Deno.test("the worker's forward, input gradient and oracle equal the in-thread model's bitwise; x travels and comes back", async () => {
  const g = buildModel("resnet8", { numClasses: 10 });
  const w = initStateDict(g, 4);
  const worker = await loadFrozenInWorker(ORT, g, w);
  const local = await (await createEngine(ORT)).loadFrozen(g, w);
  try {
    assert.equal(worker.concurrent, true);
    assert.equal(worker.engineName, "onnxruntime-cpu");
    const b = randomBatch(3, [3, 32, 32], 10, 1);
    const copy = b.x.slice();
    const pending = worker.oracle(b, ORACLE, { xStar: true, relevance: true });
    assert.equal(b.x.length, 0, "the batch's images are transferred, not copied");
    const got = await pending;
    bitwiseEqual(b.x, copy, "x after the call");
    const want = await local.oracle(b, ORACLE, { xStar: true, relevance: true });
    bitwiseEqual(got.logits, want.logits, "oracle logits");
    bitwiseEqual(got.xStar!, want.xStar!, "x*");
    bitwiseEqual(got.relevance!, want.relevance!, "relevance");
    bitwiseEqual(await worker.forward(b), await local.forward(b), "forward");
    bitwiseEqual(await worker.inputGradient(b, "sum"), await local.inputGradient(b, "sum"), "input gradient");
    // A view into a larger buffer is copied (the buffer is not taken from its owner).
    const big = new Float32Array(b.x.length + 5);
    big.set(b.x, 5);
    const view = { ...b, x: big.subarray(5) };
    bitwiseEqual(await worker.forward(view), await local.forward(b), "forward of a view");
    assert.equal(big.length, b.x.length + 5);
  } finally {
    worker.dispose();
    local.dispose();
  }
});

Deno.test("a teacher that fails in its worker gives a clear error, its batch back, and no hang", async () => {
  const g = buildModel("resnet8", { numClasses: 10 });
  await assert.rejects(
    loadFrozenInWorker(ORT, g, new Map()),
    /the teacher could not be built in its worker: weights lack parameter conv1\.weight of resnet8/,
  );
  const worker = await loadFrozenInWorker(ORT, g, initStateDict(g, 0));
  const bad = randomBatch(2, [1, 32, 32], 10, 0);
  await assert.rejects(worker.oracle(bad, ORACLE), /resnet8 takes 3-channel images, the batch has 1/);
  assert.equal(bad.x.length, 2 * 32 * 32, "the failed call's images are back");
  const good = randomBatch(2, [3, 32, 32], 10, 0);
  const inFlight = worker.forward(good);
  worker.dispose();
  await assert.rejects(inFlight, /the teacher's worker was disposed/);
  await assert.rejects(worker.forward(randomBatch(1, [3, 32, 32], 10, 0)), /disposed/);
});

Deno.test("planOverlap: threads never depend on the overlap; auto is off; on refuses a GPU engine", () => {
  const on = planOverlap(
    { engine: "onnxruntime" },
    { overlap: "on", teacherThreads: 0, studentThreads: 1 },
    4,
  );
  const off = planOverlap(
    { engine: "onnxruntime" },
    { overlap: "off", teacherThreads: 0, studentThreads: 1 },
    4,
  );
  assert.deepEqual([on.overlap, on.teacherThreads, on.studentThreads], [true, 4, 1]);
  assert.deepEqual([off.overlap, off.teacherThreads, off.studentThreads], [false, 4, 1]);
  const auto = planOverlap({ engine: "onnxruntime" }, {
    overlap: "auto",
    teacherThreads: 0,
    studentThreads: 0,
  }, 2);
  assert.equal(auto.overlap, false);
  assert.match(auto.reason, /auto/);
  assert.equal(
    planOverlap({ engine: "webgpu" }, { overlap: "auto", teacherThreads: 0, studentThreads: 0 }, 2).overlap,
    false,
  );
  assert.throws(
    () => planOverlap({ engine: "webgpu" }, { overlap: "on", teacherThreads: 0, studentThreads: 0 }, 2),
    /--overlap on needs a CPU engine/,
  );
});

// ---- the trainer with a teacher one batch ahead -------------------------------------------

function smallGraph(name: string) {
  const b = new GraphBuilder(name, 3, 4);
  let h = b.relu("relu1", b.batchNorm("bn1", b.conv("conv1", b.input, 3, 8, 3, 1, 1), 8));
  const r = b.batchNorm("bn2", b.conv("conv2", h, 8, 8, 3, 1, 1), 8);
  h = b.relu("relu2", b.add("add", r, h));
  return b.finish(b.linear("fc", b.globalAvgPool("pool", h), 8, 4));
}

const data = makeData(36, 7);
/** Seeded shuffled batches of 8, fresh arrays per batch (the worker takes them while in flight). */
const newSource = () => new MemorySource(data, 8, 1);
const testData = evalSource({ x: data.x.slice(0, 12 * PIX), y: data.y.slice(0, 12) }, 12);
const quiet = createProgress({ stream: { write: () => {} }, tty: false });
/** A silent progress reporter that calls `onStep` after every training step. */
const counting = (onStep: () => void): Progress => ({
  begin: (l, t, r) => quiet.begin(l, t, r),
  tick: (d, f) => {
    onStep();
    quiet.tick(d, f);
  },
  end: () => quiet.end(),
  line: (t) => quiet.line(t),
});
const config = resolveConfig({ epochs: 2, batchSize: 8, lr: 0.05, schedule: "2", seed: 1 });

async function setup(
  overlap: boolean,
): Promise<{ student: TrainableModel; teacher: FrozenModel; provider: ResponseProvider }> {
  const engine = await createEngine(ORT);
  const tg = smallGraph("teacher");
  const teacher = overlap
    ? await loadFrozenInWorker(ORT, tg, initStateDict(tg, 9))
    : await engine.loadFrozen(tg, initStateDict(tg, 9));
  const sg = smallGraph("student");
  const student = await engine.loadTrainable(sg, initStateDict(sg, 1), {
    momentum: 0.9,
    weightDecay: 5e-4,
    nesterov: false,
    dampening: 0,
  });
  return { student, teacher, provider: createResponseProvider("oracle", teacher, ORACLE) };
}

async function run(overlap: boolean, opts: { dir?: string; abortAt?: number; resume?: boolean } = {}) {
  const s = await setup(overlap);
  assert.equal(s.provider.concurrent, overlap);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "okd_overlap_" });
  const ac = new AbortController();
  let steps = 0;
  const progress = counting(() => {
    if (++steps === opts.abortAt) ac.abort();
  });
  try {
    const summary = await train({
      config,
      student: s.student,
      provider: s.provider,
      trainData: newSource(),
      testData,
      runDir: dir,
      progress,
      engineName: "onnxruntime-cpu",
      signal: ac.signal,
      resume: opts.resume,
    });
    return { summary, weights: await s.student.stateDict(), dir };
  } finally {
    s.student.dispose();
    s.teacher.dispose();
  }
}

function sameWeights(got: StateDict, want: StateDict, what: string) {
  for (const [k, t] of want) assert.equal(maxAbsDiff(got.get(k)!.data, t.data), 0, `${k} differs ${what}`);
}

Deno.test("a registered provider answers on its teacher's thread unless it says otherwise", () => {
  const teacher = (concurrent: boolean) => ({
    concurrent,
    forward: () => Promise.resolve(new Float32Array(1)),
  });
  registerResponseProvider("test-doubled", (t) => ({ name: "test-doubled", respond: (b) => t.forward(b) }));
  registerResponseProvider(
    "test-inline",
    (t) => ({ name: "test-inline", concurrent: false, respond: (b) => t.forward(b) }),
  );
  for (const on of [true, false]) {
    const t = teacher(on) as unknown as FrozenModel;
    assert.equal(createResponseProvider("test-doubled", t, ORACLE).concurrent, on);
    assert.equal(createResponseProvider("test-inline", t, ORACLE).concurrent, false);
  }
});

Deno.test("training with the teacher one batch ahead on its worker gives bitwise the same student as without", async () => {
  const off = await run(false);
  const on = await run(true);
  assert.equal(on.summary.status, "completed");
  sameWeights(on.weights, off.weights, "with the overlap");
  assert.deepEqual(on.summary.train_acc1_T, off.summary.train_acc1_T);
  for (const d of [off.dir, on.dir]) await Deno.remove(d, { recursive: true });
});

Deno.test("a run with the overlap interrupted mid-epoch resumes exactly (the lookahead's response is recomputed)", async () => {
  const whole = await run(true);
  // 5 steps per epoch: stop after step 2 of epoch 1, while batch 3's response is in flight.
  const first = await run(true, { abortAt: 2 });
  assert.equal(first.summary.status, "interrupted");
  const resumed = await run(true, { dir: first.dir, resume: true });
  assert.equal(resumed.summary.status, "completed");
  sameWeights(resumed.weights, whole.weights, "after the interrupted run resumed");
  for (const d of [whole.dir, first.dir]) await Deno.remove(d, { recursive: true });
});

Deno.test("a teacher failing on the batch fetched ahead stops the run when that batch is reached, with its error", async () => {
  const s = await setup(false);
  let calls = 0;
  const failing: ResponseProvider = {
    name: "failing",
    concurrent: true,
    respond: (b) =>
      ++calls === 3 ? Promise.reject(new Error("teacher broke on batch 3")) : s.provider.respond(b),
  };
  const dir = await Deno.makeTempDir({ prefix: "okd_overlap_" });
  let stepsDone = 0;
  await assert.rejects(
    train({
      config,
      student: s.student,
      provider: failing,
      trainData: newSource(),
      testData,
      runDir: dir,
      progress: counting(() => void stepsDone++),
      engineName: "onnxruntime-cpu",
    }),
    /teacher broke on batch 3/,
  );
  assert.equal(stepsDone, 2, "the two batches before the failing one were trained");
  s.student.dispose();
  s.teacher.dispose();
  await Deno.remove(dir, { recursive: true });
});

// ---- the application: --overlap through distill and the CLI ------------------------------

async function writeTeacher(dir: string): Promise<string> {
  const g = buildModel("resnet8", { numClasses: 10 });
  const file = path.join(dir, "teacher.onnx");
  await Deno.writeFile(file, exportOnnx(g, initStateDict(g, 5), { imageSize: 32 }));
  return file;
}

Deno.test("distill --overlap on and off write bitwise the same student checkpoint; the line says which", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_overlap_app_" });
  try {
    const teacher = await writeTeacher(dir);
    const weights: StateDict[] = [];
    for (const overlap of ["on", "off"] as const) {
      let out = "";
      const c = resolveConfig({
        data: "synthetic",
        teacher,
        student: "resnet8",
        epochs: 1,
        subset: 48,
        batchSize: 16,
        testTeacher: false,
        engine: "onnxruntime",
        overlap,
        teacherThreads: 1,
        studentThreads: 1,
        out: path.join(dir, `run_${overlap}`),
        studentOut: path.join(dir, `student_${overlap}.onnx`),
      });
      await runDistill(c, { stream: { write: (s: string) => (out += s) } });
      assert.match(out, new RegExp(`overlap  ${overlap}`));
      weights.push((await loadCheckpoint(path.join(dir, `run_${overlap}`, RUN_FILES.checkpoint))).weights);
    }
    sameWeights(weights[0], weights[1], "between --overlap on and off");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CLI with --overlap on finishes and exits (the teacher's worker does not keep it alive)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "okd_overlap_cli_" });
  try {
    const teacher = await writeTeacher(dir);
    const r = await runCli([
      "distill",
      ...["--data", "synthetic", "--teacher", teacher, "--student", "resnet8", "--epochs", "1"],
      ...["--subset", "32", "--batch-size", "16", "--no-test-teacher", "--engine", "onnxruntime"],
      ...["--overlap", "on", "--out", path.join(dir, "run"), "--student-out", path.join(dir, "s.onnx")],
    ], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout + r.stderr,
      /overlap {2}on: the teacher answers one batch ahead on a worker thread/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
