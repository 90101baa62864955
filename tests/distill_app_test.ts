/**
 * The application layer of `distill` and `train` on the seeded synthetic dataset with resnet8
 * students (a few seconds each): the run folder's files and the paper-style summary, the
 * exported students checked on onnxruntime, divergence (NaN/inf) stopping with the last good
 * checkpoint, `train` from scratch writing a teacher, `--response plain`, plain progress lines
 * when the output is not a terminal, and `--config file.json` merged under the flags.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { type AppIO, runDistill } from "../app/distill.ts";
import { loadCheckpoint } from "../lib/checkpoint.ts";
import { type DistillConfig, resolveConfig } from "../lib/config.ts";
import { loadDataset } from "../lib/data/load.ts";
import { BatchLoader } from "../lib/data/loader.ts";
import { OnnxClassifier } from "../app/onnx_classifier.ts";
import { MetricsAccumulator } from "../lib/metrics.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { decodeSafetensors } from "../lib/safetensors.ts";
import type { StateDict } from "../lib/tensor.ts";
import { type EpochRecord, NonFiniteLossError, RUN_FILES, type RunSummary } from "../lib/trainer.ts";
import { assertOneLineError, runCli } from "./cli_utils.ts";
import { exists } from "../lib/fs_probe.ts";

/** The synthetic test split: 200 images, so one image is 0.5 percentage points. */
const TEST_IMAGES = 200;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "okd_distill_app_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A seeded (untrained) resnet8 teacher for the synthetic data, as ONNX. */
async function writeTeacher(dir: string, seed = 5): Promise<string> {
  const g = buildModel("resnet8", { numClasses: 10 });
  const file = path.join(dir, "teacher.onnx");
  await Deno.writeFile(file, exportOnnx(g, initStateDict(g, seed), { imageSize: 32 }));
  return file;
}

/** A non-terminal stream that keeps what was written. */
function capture(): { io: AppIO; text: () => string } {
  let out = "";
  return { io: { stream: { write: (s: string) => (out += s) } }, text: () => out };
}

/** A small run: resnet8 student, 64 training images in batches of 16 (4 steps per epoch). */
function smallConfig(dir: string, teacher: string, over: Record<string, unknown> = {}): DistillConfig {
  return resolveConfig({
    data: "synthetic",
    teacher,
    student: "resnet8",
    epochs: 2,
    subset: 64,
    batchSize: 16,
    out: path.join(dir, "run"),
    studentOut: path.join(dir, "student.onnx"),
    ...over,
  });
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(file)) as T;
}

async function readMetrics(runDir: string): Promise<EpochRecord[]> {
  const text = await Deno.readTextFile(path.join(runDir, RUN_FILES.metrics));
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Test top-1 (%) of an ONNX file on onnxruntime, over the whole synthetic test split. */
async function onnxTestTop1(file: string): Promise<number> {
  const ds = await loadDataset("synthetic");
  const clf = await OnnxClassifier.open(file);
  const loader = new BatchLoader(ds, "test", { batchSize: 100, worker: false });
  const acc = new MetricsAccumulator(ds.numClasses);
  try {
    clf.checkFits(ds.shape, ds.numClasses);
    for await (const b of loader.epochBatches()) acc.add(await clf.run(b.x, b.n, b.shape), b.y);
  } finally {
    await loader.close();
    await clf.close();
  }
  const m = acc.result();
  assert.equal(m.count, TEST_IMAGES);
  return m.top1;
}

function assertFiniteWeights(w: StateDict, what: string): void {
  assert.ok(w.size > 10, `${what}: only ${w.size} tensors`);
  for (const [k, t] of w) {
    if (t.dtype !== "float32") continue;
    assert.ok((t.data as Float32Array).every(Number.isFinite), `${what}: ${k} is not finite`);
  }
}

function assertPercent(v: number, what: string): void {
  assert.ok(Number.isFinite(v) && v >= 0 && v <= 100, `${what} = ${v} is not a percentage`);
}

Deno.test("distill writes config, per-epoch metrics and the paper-style summary; its ONNX students agree on onnxruntime", async () => {
  await withTempDir(async (dir) => {
    const config = smallConfig(dir, await writeTeacher(dir), { epochs: 3, schedule: "3" });
    const { io, text } = capture();
    const t0 = performance.now();
    const summary = await runDistill(config, io);
    const wall = (performance.now() - t0) / 1000;
    const runDir = config.out;

    // config.json is the resolved configuration; summary.json is what runDistill returned.
    assert.deepEqual(await readJson(path.join(runDir, RUN_FILES.config)), JSON.parse(JSON.stringify(config)));
    const onDisk = await readJson<RunSummary>(path.join(runDir, RUN_FILES.summary));
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(summary)));
    for (
      const field of [
        "train_losses",
        "train_acc1s",
        "train_acc5s",
        "test_acc1s",
        "test_acc5s",
        "train_acc1_T",
        "max_test_acc",
        "best_test_acc",
        "last_test_acc",
        "args",
        "time_consume",
      ]
    ) {
      assert.ok(field in onDisk, `summary.json lacks ${field}`);
    }
    assert.equal(onDisk.status, "completed");
    assert.equal(onDisk.response, "oracle");
    assert.deepEqual(onDisk.args, JSON.parse(JSON.stringify(config)));
    assert.ok(
      onDisk.time_consume > 0 && onDisk.time_consume <= wall,
      `time ${onDisk.time_consume} vs ${wall}`,
    );

    // One metrics line per epoch, and the summary's per-epoch lists are those lines.
    const lines = await readMetrics(runDir);
    assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3]);
    assert.deepEqual(lines.map((l) => l.lr), [0.05, 0.05, 0.05 * 0.1]);
    assert.deepEqual(onDisk.train_losses, lines.map((l) => l.train_loss));
    assert.deepEqual(onDisk.train_acc1s, lines.map((l) => l.train_top1));
    assert.deepEqual(onDisk.train_acc5s, lines.map((l) => l.train_top5));
    assert.deepEqual(onDisk.test_acc1s, lines.map((l) => l.test_top1));
    assert.deepEqual(onDisk.test_acc5s, lines.map((l) => l.test_top5));
    assert.deepEqual(onDisk.train_acc1_T, lines.map((l) => l.teacher_train_top1));

    // Accuracies in percent: within 0-100, counts of 64 training / 200 test images, top-5 >= top-1.
    for (const l of lines) {
      assert.ok(Number.isFinite(l.train_loss) && l.train_loss > 0);
      for (const k of ["train_top1", "train_top5", "test_top1", "test_top5", "test_ece"] as const) {
        assertPercent(l[k], `epoch ${l.epoch} ${k}`);
      }
      assertPercent(l.teacher_train_top1!, `epoch ${l.epoch} teacher_train_top1`);
      for (const k of ["train_top1", "train_top5", "teacher_train_top1"] as const) {
        assert.ok(Number.isInteger((l[k]! * 64) / 100), `${k} ${l[k]} is not a count of 64 images in %`);
      }
      for (const k of ["test_top1", "test_top5"] as const) {
        assert.ok(Number.isInteger((l[k] * TEST_IMAGES) / 100), `${k} ${l[k]} is not a count of 200 in %`);
      }
      assert.ok(l.train_top5 >= l.train_top1 && l.test_top5 >= l.test_top1);
      assert.ok(l.images_per_sec > 0 && l.epoch_seconds > 0);
    }
    // The student learns the synthetic cues: above chance (10%) on the test split, as a percentage.
    assert.ok(Math.max(...onDisk.test_acc1s) > 20, `test top-1 ${onDisk.test_acc1s}`);

    const best = Math.max(...onDisk.test_acc1s);
    assert.equal(onDisk.best_test_acc.top1, best);
    assert.equal(onDisk.best_test_acc.epoch, onDisk.test_acc1s.indexOf(best) + 1);
    assert.equal(onDisk.best_test_acc.top5, onDisk.test_acc5s[onDisk.best_test_acc.epoch - 1]);
    assert.deepEqual(onDisk.max_test_acc, [best, Math.max(...onDisk.test_acc5s)]);
    assert.deepEqual(onDisk.last_test_acc, { top1: onDisk.test_acc1s[2], top5: onDisk.test_acc5s[2] });
    assert.ok(onDisk.best_test_acc.top1 >= onDisk.last_test_acc.top1);

    // The exported students run on onnxruntime with the accuracies the run reported (within one image).
    const bestFile = path.join(dir, "student.best.onnx");
    const lastTop1 = await onnxTestTop1(config.studentOut);
    assert.ok(
      Math.abs(lastTop1 - onDisk.last_test_acc.top1) <= 100 / TEST_IMAGES,
      `student.onnx: ${lastTop1}% on onnxruntime, ${onDisk.last_test_acc.top1}% in the summary`,
    );
    const bestTop1 = await onnxTestTop1(bestFile);
    assert.ok(
      Math.abs(bestTop1 - onDisk.best_test_acc.top1) <= 100 / TEST_IMAGES,
      `student.best.onnx: ${bestTop1}% on onnxruntime, ${onDisk.best_test_acc.top1}% in the summary`,
    );
    assert.ok(await exists(path.join(runDir, RUN_FILES.checkpoint)));
    const bestWeights =
      decodeSafetensors(await Deno.readFile(path.join(runDir, RUN_FILES.best)), "best").tensors;
    assertFiniteWeights(bestWeights, "best.safetensors");

    assert.match(text(), /^teacher {2}test top-1 \d+\.\d\d%, ECE .*; oracle \(gamma 0\.5\) top-1/m);
    assert.ok(
      text().includes(
        `done     best test top-1 ${best.toFixed(2)}% (epoch ${onDisk.best_test_acc.epoch}), ` +
          `last ${
            onDisk.last_test_acc.top1.toFixed(2)
          }%; student -> ${config.studentOut} (best: ${bestFile})`,
      ),
      text(),
    );
  });
});

Deno.test("a loss that overflows in the first epoch stops distill with one clear line and no checkpoint", async () => {
  await withTempDir(async (dir) => {
    await writeTeacher(dir);
    const r = await runCli([
      "distill",
      "--data",
      "synthetic",
      "--teacher",
      "teacher.onnx",
      "--student",
      "resnet8",
      "--subset",
      "64",
      "--batch-size",
      "16",
      "--epochs",
      "2",
      "--lr",
      "1e30",
      "--test-teacher",
      "false",
      "--out",
      "run",
      "--student-out",
      "s.onnx",
    ], dir);
    assertOneLineError(
      r,
      /loss became (NaN|Infinity|-Infinity) at epoch 1, batch [2-4] \(lr 1e\+30\); stopped\. No checkpoint was written .*try a lower --lr/,
      { onlyLine: true },
    );
    assert.ok(!/^\s+at /m.test(r.stderr), "stack trace printed");
    assert.equal(await exists(path.join(dir, "run", RUN_FILES.checkpoint)), false);
    assert.equal(await exists(path.join(dir, "run", RUN_FILES.summary)), false);
    assert.equal(await exists(path.join(dir, "s.onnx")), false);
    assert.deepEqual(await readMetrics(path.join(dir, "run")), []);
  });
});

Deno.test("divergence in a later epoch (NaN loss, or a last step that breaks the weights) keeps the last good checkpoint", async () => {
  await withTempDir(async (dir) => {
    const teacher = await writeTeacher(dir);
    // Epoch 1 trains at lr 0.05; from epoch 2 the rate is 5e28 and the student blows up. With 4
    // steps per epoch the loss of a later step is NaN; with one step per epoch the loss stays
    // finite and only the weights and the test predictions show it.
    for (
      const [label, subset, message, every] of [
        ["NaN loss", 64, /^loss became (NaN|Infinity|-Infinity) at epoch 2, batch [2-4] /, 0],
        ["broken last step", 16, /^the student diverged in epoch 2 \(lr 5\.0+\d*e\+28\): /, 0],
        // A per-step checkpoint is not written over the last good one by a step that broke the
        // weights (lr 5e298 is infinite in float32; the step's own loss is still finite).
        [
          "broken step, --checkpoint-every 1",
          64,
          /^the student diverged in epoch 2, batch 1 \(lr 5(\.\d+)?e\+298\): \S+ is not finite/,
          1,
        ],
      ] as const
    ) {
      const sub = path.join(dir, `${subset}_${every}`);
      const config = smallConfig(sub, teacher, {
        epochs: 3,
        subset,
        checkpointEvery: every,
        schedule: "2",
        lrDecay: every ? 1e300 : 1e30,
        testTeacher: false,
      });
      const runDir = config.out;
      await assert.rejects(runDistill(config, capture().io), (e: Error) => {
        assert.ok(e instanceof NonFiniteLossError, `${label}: ${e.stack}`);
        assert.match(e.message, message, label);
        assert.ok(
          e.message.includes(
            `The last good checkpoint is kept in ${path.join(runDir, RUN_FILES.checkpoint)}`,
          ),
          e.message,
        );
        assert.ok(!e.message.includes("\n"), "one line");
        return true;
      });
      // The checkpoint is the one written after epoch 1: it continues at epoch 2 from finite
      // weights, the best student (epoch 1).
      const ck = await loadCheckpoint<{ epoch: number; batchInEpoch: number; history: EpochRecord[] }>(
        path.join(runDir, RUN_FILES.checkpoint),
      );
      assert.equal(ck.loop.epoch, 2, `${label}: checkpoint epoch`);
      assert.equal(ck.loop.batchInEpoch, 0);
      assert.deepEqual(ck.loop.history.map((h) => h.epoch), [1]);
      assertFiniteWeights(ck.weights, `${label}: checkpoint`);
      const best = decodeSafetensors(await Deno.readFile(path.join(runDir, RUN_FILES.best)), "best").tensors;
      for (const [k, t] of ck.weights) {
        assert.deepEqual(
          t.data,
          best.get(k)!.data,
          `${label}: checkpoint ${k} differs from the epoch-1 best`,
        );
      }
      // Only finite epochs were recorded, no final student was exported and no summary claims success.
      const lines = await readMetrics(runDir);
      assert.deepEqual(lines.map((l) => l.epoch), [1], label);
      assert.ok(Number.isFinite(lines[0].test_nll));
      assert.equal(await exists(config.studentOut), false);
      assert.equal(await exists(path.join(runDir, RUN_FILES.summary)), false);
    }
  });
});

Deno.test("train (CLI) trains from scratch with CE and writes a teacher ONNX; plain-progress lines on a pipe", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli([
      "train",
      "--data",
      "synthetic",
      "--student",
      "resnet8",
      "--subset",
      "128",
      "--batch-size",
      "16",
      "--epochs",
      "2",
      "--out",
      "run",
    ], dir);
    assert.equal(r.code, 0, r.stderr);
    // Not a terminal: the report goes to stdout as plain lines, without control sequences.
    const out = r.stdout;
    assert.ok(!out.includes("\x1b[") && !out.includes("\r"), "terminal control sequences on a pipe");
    for (const e of [1, 2]) {
      assert.match(
        out,
        new RegExp(
          `^epoch ${e}/2: 8/8 \\(100%\\) \\| loss \\d\\.\\d+ \\| top-1 [\\d.]+% \\| img/s \\d+(\\.\\d+)? \\| lr [\\d.e-]+ \\| took \\d+s \\| run [^|]+ elapsed, ETA [^|]+$`,
          "m",
        ),
      );
    }
    // Without --student-out a trained network goes to weights/<dataset>_<arch>.onnx.
    const teacherFile = path.join(dir, "weights", "synthetic_resnet8.onnx");
    assert.ok(out.includes(`student -> weights/synthetic_resnet8.onnx`), out);
    const summary = await readJson<RunSummary>(path.join(dir, "run", RUN_FILES.summary));
    assert.equal(summary.response, "none");
    assert.deepEqual(summary.train_acc1_T, [null, null]);
    assert.equal(summary.args.ceWeight, 1);
    assert.equal(summary.args.alpha, 0);
    const lines = await readMetrics(path.join(dir, "run"));
    // CE only: the loss is the cross-entropy and there is no KL part.
    for (const l of lines) {
      assert.ok(Math.abs(l.train_loss - l.train_ce) < 1e-6, `loss ${l.train_loss} vs CE ${l.train_ce}`);
      assert.equal(l.train_kd, 0);
    }
    const clf = await OnnxClassifier.open(teacherFile);
    try {
      assert.equal(clf.metadata.dataset, "synthetic");
      assert.deepEqual(clf.metadata.classNames, Array.from({ length: 10 }, (_, k) => `class_${k}`));
    } finally {
      await clf.close();
    }
    const top1 = await onnxTestTop1(teacherFile);
    assert.ok(Math.abs(top1 - summary.last_test_acc.top1) <= 100 / TEST_IMAGES, `${top1} vs summary`);
    assert.ok(top1 > 15, `a teacher trained on the cues should beat chance, got ${top1}%`);

    // --response plain distils from that teacher on x: gamma does not matter, unlike the oracle.
    const run = async (name: string, over: Record<string, unknown>) => {
      const c = smallConfig(path.join(dir, name), teacherFile, { epochs: 1, testTeacher: false, ...over });
      const s = await runDistill(c, capture().io);
      return { s, bytes: await Deno.readFile(c.studentOut) };
    };
    const plainA = await run("plain_a", { response: "plain", gamma: 0.5 });
    const plainB = await run("plain_b", { response: "plain", gamma: 5, reduction: "sum" });
    const oracle = await run("oracle", { response: "oracle", gamma: 5, reduction: "sum" });
    assert.equal(plainA.s.response, "plain");
    assert.equal(plainA.s.status, "completed");
    assertPercent(plainA.s.train_acc1_T[0]!, "plain teacher's train top-1");
    assert.deepEqual(plainA.bytes, plainB.bytes, "plain KD depends on the oracle's gamma");
    assert.deepEqual(plainA.s.train_acc1_T, plainB.s.train_acc1_T);
    assert.notDeepEqual(plainA.bytes, oracle.bytes, "the oracle response made no difference");
    // The oracle knows the label: its supervising logits are right more often than the plain teacher's.
    assert.ok(
      oracle.s.train_acc1_T[0]! > plainA.s.train_acc1_T[0]!,
      `oracle teacher ${oracle.s.train_acc1_T[0]}% vs plain ${
        plainA.s.train_acc1_T[0]
      }% on the training batches`,
    );
  });
});

Deno.test("progress: plain periodic lines with images/s, loss and ETA when the stream is not a terminal", async () => {
  await withTempDir(async (dir) => {
    const config = smallConfig(dir, await writeTeacher(dir), { testTeacher: false });
    let now = 0;
    let out = "";
    // Every reading of the clock advances it by 20 s: past the 30 s line interval every few steps.
    const summary = await runDistill(config, {
      stream: { write: (s: string) => (out += s) },
      clock: () => (now += 20_000),
    });
    assert.equal(summary.status, "completed");
    assert.ok(!out.includes("\x1b[") && !out.includes("\r"), "terminal control sequences");
    for (const e of [1, 2]) {
      const periodic = out.match(
        new RegExp(
          `^epoch ${e}/2: [1-3]/4 \\(\\d+%\\) \\| loss \\d\\.\\d+ \\| top-1 [\\d.]+% \\| img/s [\\d.]+ \\| lr [\\d.e-]+ \\| ETA \\d+(m\\d\\ds|s) \\| run [^|]+ elapsed, ETA [^|]+$`,
          "gm",
        ),
      );
      assert.ok(periodic && periodic.length >= 1, `no periodic line in epoch ${e}:\n${out}`);
      assert.match(
        out,
        new RegExp(`^epoch ${e}/2: 4/4 \\(100%\\) \\| .* \\| took \\d+m\\d\\ds \\| run .*$`, "m"),
      );
      assert.match(out, new RegExp(`^epoch ${e}: loss \\d\\.\\d{4} \\| train top-1 .* img/s$`, "m"));
    }
    // images/s is measured on the injected clock: 16 images per step, 20 s per clock reading.
    const rate = Number(out.match(/^epoch 1\/2: 4\/4 \(100%\) \| .*\| img\/s ([\d.]+)/m)![1]);
    assert.ok(rate > 0 && rate < 1, `img/s ${rate} on a clock that runs 20 s per reading`);
  });
});

Deno.test("--config file.json supplies settings and flags win; a bad file is one line naming it", async () => {
  await withTempDir(async (dir) => {
    await writeTeacher(dir);
    await Deno.writeTextFile(
      path.join(dir, "settings.json"),
      JSON.stringify({
        data: "synthetic",
        teacher: "teacher.onnx",
        student: "resnet8",
        epochs: 5,
        subset: 32,
        "batch-size": 16,
        gamma: 0.25,
        testTeacher: false,
        studentOut: "from_file.onnx",
      }),
    );
    const r = await runCli(
      ["distill", "--config", "settings.json", "--epochs", "1", "--gamma", "0.75", "--out", "run"],
      dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const c = await readJson<DistillConfig>(path.join(dir, "run", RUN_FILES.config));
    assert.equal(c.epochs, 1, "flag --epochs should win over the file");
    assert.equal(c.gamma, 0.75, "flag --gamma should win over the file");
    assert.equal(c.subset, 32);
    assert.equal(c.batchSize, 16);
    assert.equal(c.student, "resnet8");
    assert.equal(c.testTeacher, false);
    assert.equal(c.temperature, 2, "unset settings keep their defaults");
    assert.deepEqual((await readMetrics(path.join(dir, "run"))).map((l) => l.epoch), [1]);
    assert.ok(await exists(path.join(dir, "from_file.onnx")));

    for (
      const [name, body, why] of [
        ["broken.json", "{ epochs: 2", /^error: broken\.json: cannot read settings \(.*JSON/],
        ["list.json", "[1, 2]", /^error: list\.json: settings must be a JSON object/],
        ["zero.json", '{"epochs": 0}', /^error: zero\.json: --epochs must be >= 1, got 0$/],
        ["typo.json", '{"epoch": 3}', /^error: typo\.json: unknown setting "epoch" \(did you mean "epochs/],
      ] as const
    ) {
      await Deno.writeTextFile(path.join(dir, name), body);
      assertOneLineError(await runCli(["distill", "--config", name, "--out", "bad"], dir), why, {
        onlyLine: true,
      });
    }
    assertOneLineError(
      await runCli(["distill", "--config", "missing.json"], dir),
      /^error: missing\.json: cannot read settings \(No such file/,
      { onlyLine: true },
    );
    assert.equal(await exists(path.join(dir, "bad")), false);
  });
});

Deno.test("an LRP oracle runs its teacher on the chosen engine (onnxruntime), like the student", async () => {
  await withTempDir(async (dir) => {
    const config = smallConfig(dir, await writeTeacher(dir), {
      epochs: 1,
      subset: 32,
      relevance: "lrp-epsilon",
      engine: "onnxruntime",
    });
    const { io, text } = capture();
    const summary = await runDistill(config, io);
    assert.equal(summary.engine, "onnxruntime-cpu");
    const out = text();
    assert.doesNotMatch(out, /tfjs/);
    // The teacher's test check is timed on the engine that ran it.
    assert.match(out, /oracle \(gamma 0\.5\).*\[[\d.]+ s on onnxruntime-cpu\]/);
  });
});
