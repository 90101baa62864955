/**
 * Mistakes get one line saying what to do (issue 14 item 6), and normalisation is honoured and
 * reported (item 3): a .pth given to `test`, an unknown architecture at parse time, a
 * `convert --dataset` that does not fit, a YAML syntax error, a teacher scoring below chance, a
 * teacher whose declared normalisation differs from the data's.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { exportOnnx } from "../convert/onnx_export.ts";
import { importOnnx } from "../convert/onnx_import.ts";
import { parseModelMetadata } from "../convert/onnx_metadata.ts";
import { datasetFromArrays } from "../app/data_sources.ts";
import { distill, train } from "../app/library.ts";
import { chooseNormalisation } from "../app/normalisation.ts";
import type { StateDict } from "../lib/tensor.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { assertOneLineError, runCli } from "./cli_utils.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "okd_errors_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("test --model teacher.pth: says to convert it first, and how", async () => {
  await withTempDir(async (dir) => {
    // A zip archive, as torch.save writes.
    await Deno.writeFile(path.join(dir, "teacher.pth"), new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0]));
    assertOneLineError(
      await runCli(["test", "--model", "teacher.pth", "--data", "synthetic"], dir),
      /^error: teacher\.pth is a PyTorch checkpoint; test evaluates ONNX files: convert it first with `deno task convert --from teacher\.pth --out teacher\.onnx --dataset <cifar10\|cifar100\|fashion-mnist>`/,
      { onlyLine: true },
    );
  });
});

Deno.test("--student resnet18: the valid names, at parse time (before any data is read)", async () => {
  await withTempDir(async (dir) => {
    for (const cmd of ["distill", "train"]) {
      assertOneLineError(
        await runCli([cmd, "--data", "no_such_folder", "--student", "resnet18"], dir),
        /^error: --student: "resnet18" is not a zoo architecture; choose one of resnet8, resnet14, resnet20, .*wrn_40_2/,
        { onlyLine: true },
      );
    }
    assertOneLineError(
      await runCli(["distill", "--data", "no_such_folder", "--teacher", "resnet18"], dir),
      /^error: --teacher: "resnet18" is neither a \.pth\/\.onnx file nor a zoo architecture; choose one of resnet8/,
    );
  });
});

Deno.test("convert --dataset cifar10 on a 100-class network names the flag to pass; nothing is written", async () => {
  await withTempDir(async (dir) => {
    const g = buildModel("resnet8", { numClasses: 100 });
    await Deno.writeFile(path.join(dir, "t100.onnx"), exportOnnx(g, initStateDict(g, 0)));
    assertOneLineError(
      await runCli(["convert", "--from", "t100.onnx", "--out", "x.onnx", "--dataset", "cifar10"], dir),
      /^error: --dataset cifar10 has 10 classes of 3-channel images but t100\.onnx has 100 classes and 3 input channels; pass --dataset cifar100$/,
      { onlyLine: true },
    );
    assert.ok(![...Deno.readDirSync(dir)].some((e) => e.name.startsWith("x.onnx")));
  });
});

Deno.test("a YAML config with a syntax error names the file and the line", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      path.join(dir, "run.yaml"),
      "epochs: 3\nbatch_size: 16\nschedule: [2,\nlr: 0.1\n",
    );
    const r = await runCli(["distill", "--config", "run.yaml"], dir);
    assertOneLineError(r, /^error: run\.yaml:\d+:\d+: YAML syntax error: /, { onlyLine: true });
    const line = Number(/run\.yaml:(\d+):/.exec(r.stderr)![1]);
    assert.ok(line >= 3 && line <= 5, `line ${line} should point at the unterminated list`);
  });
});

Deno.test("convert embeds the normalisation and input size; flags override the dataset's", async () => {
  await withTempDir(async (dir) => {
    const g = buildModel("resnet8", { numClasses: 10 });
    await Deno.writeFile(path.join(dir, "t.onnx"), exportOnnx(g, initStateDict(g, 0), { imageSize: null }));
    const ok = await runCli(["convert", "--from", "t.onnx", "--out", "a.onnx", "--dataset", "cifar10"], dir);
    assert.equal(ok.code, 0, ok.stderr);
    const meta = (f: string) =>
      parseModelMetadata(importOnnx(Deno.readFileSync(path.join(dir, f)), f).metadata, f);
    const a = meta("a.onnx");
    assert.deepEqual([a.dataset, a.imageSize, a.mean, a.std?.length], ["cifar10", 32, [
      0.4914,
      0.4822,
      0.4465,
    ], 3]);
    const b = await runCli(
      ["convert", "--from", "a.onnx", "--out", "b.onnx", "--mean", "0.5,0.5,0.5", "--std=0.25,0.25,0.25"],
      dir,
    );
    assert.equal(b.code, 0, b.stderr);
    const m = meta("b.onnx");
    assert.deepEqual([m.dataset, m.imageSize, m.mean, m.std], ["cifar10", 32, [0.5, 0.5, 0.5], [
      0.25,
      0.25,
      0.25,
    ]]);
  });
});

Deno.test("normalisation: flags > teacher metadata > data; a teacher/data mismatch is reported either way", () => {
  const data = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const teacher = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
  const t = chooseNormalisation(data, teacher, {}, 3, "pngs");
  assert.deepEqual([t.source, t.mean], ["teacher", teacher.mean]);
  assert.match(
    t.note!,
    /the teacher declares mean \[0\.4914, 0\.4822, 0\.4465\].* but pngs's statistics are mean \[0\.5, 0\.5, 0\.5\]/,
  );
  const f = chooseNormalisation(data, teacher, { mean: [0.1, 0.2, 0.3], std: [1, 1, 1] }, 3, "pngs");
  assert.deepEqual([f.source, f.mean, f.std], ["flags", [0.1, 0.2, 0.3], [1, 1, 1]]);
  assert.match(f.note!, /using --mean \[0\.1, 0\.2, 0\.3\] --std \[1, 1, 1\] as given/);
  const same = chooseNormalisation(data, data, {}, 3, "pngs");
  assert.equal(same.note, undefined);
  assert.equal(chooseNormalisation(data, {}, {}, 3, "pngs").source, "data");
  assert.throws(
    () => chooseNormalisation(data, {}, { mean: [0.5] }, 3, "pngs"),
    /--mean needs 3 finite numbers/,
  );
});

/** A 2-class teacher that always answers class 0 (zero classifier weights, biased logits). */
function biasedTeacher(meta: { mean?: number[]; std?: number[] }): Uint8Array {
  const g = buildModel("resnet8", { numClasses: 2 });
  const w: StateDict = initStateDict(g, 0);
  w.get("fc.weight")!.data.fill(0);
  (w.get("fc.bias")!.data as Float32Array).set([4, -4]);
  return exportOnnx(g, w, { imageSize: 8, dataset: "toy", ...meta });
}

/** 8x8 images; every test image is class 1, so the biased teacher scores 0 %. */
function toyData() {
  const n = 16, pix = 3 * 8 * 8;
  const images = new Uint8Array(n * pix).map((_, i) => (i * 37) % 256);
  return datasetFromArrays({
    name: "toy",
    shape: [3, 8, 8],
    numClasses: 2,
    train: { images, labels: Array.from({ length: n }, (_, i) => i % 2) },
    test: { images: images.slice(0, 4 * pix), labels: [1, 1, 1, 1] },
  });
}

Deno.test("library distill: a below-chance teacher is warned about; its declared normalisation is used, reported and exported", async () => {
  await withTempDir(async (dir) => {
    const teacherFile = path.join(dir, "teacher.onnx");
    const declared = { mean: [0.3, 0.3, 0.3], std: [0.2, 0.2, 0.2] };
    await Deno.writeFile(teacherFile, biasedTeacher(declared));
    let text = "";
    const steps: number[] = [];
    const epochs: number[] = [];
    const { summary, history } = await distill({
      teacher: teacherFile,
      student: "resnet8",
      epochs: 2,
      batchSize: 8,
      out: path.join(dir, "run"),
      studentOut: path.join(dir, "student.onnx"),
    }, {
      dataset: toyData(),
      stream: { write: (s: string) => (text += s) },
      onProgress: (p) => steps.push(p.step),
      onEpoch: (r) => epochs.push(r.epoch),
    });
    assert.equal(summary.status, "completed");
    assert.match(
      text,
      /^warning: teacher .*teacher\.onnx scores 0\.00% top-1 on toy, below chance \(50\.00% for 2 classes\): check that it was trained on this data/m,
    );
    assert.match(
      text,
      /^note {5}the teacher declares mean \[0\.3, 0\.3, 0\.3\] std \[0\.2, 0\.2, 0\.2\] \(its ONNX metadata\) but toy's statistics are/m,
    );
    assert.deepEqual(epochs, [1, 2]);
    assert.deepEqual(history.map((r) => r.epoch), [1, 2]);
    assert.deepEqual(steps, [1, 2, 1, 2]);
    const f = path.join(dir, "student.onnx");
    const m = parseModelMetadata(importOnnx(Deno.readFileSync(f), f).metadata, f);
    assert.deepEqual([m.mean, m.std, m.imageSize], [declared.mean, declared.std, 8]);

    // --mean/--std override the teacher's declaration (and the mismatch is still reported).
    text = "";
    await distill({
      teacher: teacherFile,
      student: "resnet8",
      epochs: 1,
      batchSize: 8,
      testTeacher: false,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      out: path.join(dir, "run2"),
      studentOut: f,
    }, { dataset: toyData(), stream: { write: (s: string) => (text += s) } });
    assert.match(text, /using --mean \[0\.5, 0\.5, 0\.5\] --std \[0\.25, 0\.25, 0\.25\] as given/);
    const m2 = parseModelMetadata(importOnnx(Deno.readFileSync(f), f).metadata, f);
    assert.deepEqual([m2.mean, m2.std], [[0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]);
  });
});

Deno.test("library train: --mean/--std are used and exported; without them the data's statistics", async () => {
  await withTempDir(async (dir) => {
    const f = path.join(dir, "t.onnx");
    const meta = () => parseModelMetadata(importOnnx(Deno.readFileSync(f), f).metadata, f);
    const common = { student: "resnet8", epochs: 1, batchSize: 8, studentOut: f } as const;
    const { history } = await train({
      ...common,
      mean: [0.2, 0.3, 0.4],
      std: [0.5, 0.5, 0.5],
      out: path.join(dir, "a"),
    }, {
      dataset: toyData(),
    });
    assert.equal(history.length, 1);
    assert.deepEqual([meta().mean, meta().std, meta().imageSize], [[0.2, 0.3, 0.4], [0.5, 0.5, 0.5], 8]);
    const data = toyData();
    await train({ ...common, out: path.join(dir, "b") }, { dataset: data });
    assert.deepEqual([meta().mean, meta().std], [data.mean, data.std]);
  });
});
