/**
 * `deno task test --model m.onnx` (app/evaluate.ts, app/onnx_classifier.ts): device
 * choice and the CUDA fallback; a model exported here needs no flags (dataset, normalisation,
 * class names from its metadata) and flags override them; every metric matches a small
 * reference implementation run on the same ONNX file's logits; the table, `--json` and
 * `--plots` show them; the oracle comparison (gamma 0 is the plain teacher, gamma > 0 moves it,
 * LRP relevance on the chosen engine); any classifier ONNX runs (undeclared shapes, a fixed batch size);
 * bad input is one clear error each.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { exportOnnx, exportOnnxModel } from "../convert/onnx_export.ts";
import { encodeOnnxModel, int64Tensor, type OnnxModel } from "../convert/onnx_proto.ts";
import { evaluateModel, type EvaluationReport, formatReport } from "../app/evaluate.ts";
import { runDistill } from "../app/distill.ts";
import { resolveConfig } from "../lib/config.ts";
import type { ImageDataset } from "../lib/data/dataset.ts";
import { makeSyntheticDataset } from "../lib/data/synthetic.ts";
import { loadOnnxruntime } from "../lib/deps.ts";
import type { ClassificationMetrics } from "../lib/metrics.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { OnnxBuilder } from "../lib/onnx/builder.ts";
import { encodeRgbPng } from "../lib/plots/raster.ts";
import { assertOneLineError, runCli } from "./cli_utils.ts";
import { picture, pixelStats } from "./png_utils.ts";

const ort = await loadOnnxruntime();

// Everything this file writes goes into one folder, removed when the test module ends.
const DIR = Deno.makeTempDirSync({ prefix: "okd_eval_" });
globalThis.addEventListener("unload", () => Deno.removeSync(DIR, { recursive: true }));
const file = (name: string) => path.join(DIR, name);

/** The synthetic test split `--data synthetic` evaluates (loadDataset's defaults). */
const SYNTHETIC: ImageDataset = makeSyntheticDataset();

/**
 * A resnet8 trained for one short epoch on the synthetic data (about a second): its predictions
 * differ between images and classes, unlike seeded weights that answer one class for all.
 * Exported by `train`, so its metadata names the dataset, normalisation and class names.
 */
let trainedModel: Promise<string> | undefined;
function trained(): Promise<string> {
  trainedModel ??= (async () => {
    const out = file("trained.onnx");
    await runDistill(
      resolveConfig({
        data: "synthetic",
        student: "resnet8",
        response: "plain",
        ceWeight: 1,
        alpha: 0,
        epochs: 1,
        batchSize: 32,
        subset: 320,
        lr: 0.05,
        testTeacher: false,
        out: file("train_run"),
        studentOut: out,
      }, {}),
      { stream: { write: () => {} }, weightsDir: file("weights") },
      "train",
    );
    return out;
  })();
  return trainedModel;
}

// ---------------------------------------------------------------------------------------------
// Reference implementation: normalise the raw pixels, run the ONNX file with onnxruntime directly,
// and compute the metrics from the logits in float64 with plain loops.

function normalise(ds: ImageDataset, mean: number[], std: number[], count: number): Float32Array {
  const [c, h, w] = ds.shape;
  const x = new Float32Array(count * c * h * w);
  for (let i = 0; i < count; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < h * w; p++) {
        const o = (i * c + ch) * h * w + p;
        x[o] = (ds.test.images[o] / 255 - mean[ch]) / std[ch];
      }
    }
  }
  return x;
}

async function referenceLogits(model: string, x: Float32Array, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const out = await session.run({
      [session.inputNames[0]]: new ort.Tensor("float32", x, [n, ...SYNTHETIC.shape]),
    });
    return Float32Array.from(out[session.outputNames[0]].data as Float32Array);
  } finally {
    await session.release();
  }
}

interface Reference {
  top1: number;
  top5: number;
  nll: number;
  ece: number;
  mce: number;
  perClass: number[];
  binCounts: number[];
}

function referenceMetrics(logits: Float32Array, labels: ArrayLike<number>, k: number): Reference {
  const n = labels.length;
  const BINS = 15;
  let hit1 = 0, hit5 = 0, nll = 0;
  const conf: number[] = [], correct: boolean[] = [];
  const classHit = new Array(k).fill(0), classN = new Array(k).fill(0);
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * k, (i + 1) * k));
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    const y = labels[i];
    nll += logZ - row[y];
    const pred = row.indexOf(max);
    const order = row.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0]).map(([, j]) => j);
    hit1 += pred === y ? 1 : 0;
    hit5 += order.slice(0, 5).includes(y) ? 1 : 0;
    conf.push(Math.exp(max - logZ));
    correct.push(pred === y);
    classN[y]++;
    classHit[y] += pred === y ? 1 : 0;
  }
  // ECE/MCE over 15 equal-width bins (lo, hi] of the top-class confidence (Guo et al.).
  let ece = 0, mce = 0;
  const binCounts: number[] = [];
  for (let b = 0; b < BINS; b++) {
    const lo = b / BINS, hi = (b + 1) / BINS;
    const members = conf.map((_, i) => i).filter((i) => (conf[i] > lo || b === 0) && conf[i] <= hi);
    binCounts.push(members.length);
    if (members.length === 0) continue;
    const acc = members.filter((i) => correct[i]).length / members.length;
    const avg = members.reduce((s, i) => s + conf[i], 0) / members.length;
    ece += (members.length / n) * Math.abs(acc - avg);
    mce = Math.max(mce, Math.abs(acc - avg));
  }
  return {
    top1: (100 * hit1) / n,
    top5: (100 * hit5) / n,
    nll: nll / n,
    ece: 100 * ece,
    mce: 100 * mce,
    perClass: classHit.map((h, j) => (100 * h) / classN[j]),
    binCounts,
  };
}

async function reference(model: string, mean: number[], std: number[], count = SYNTHETIC.test.count) {
  const logits = await referenceLogits(model, normalise(SYNTHETIC, mean, std, count), count);
  return referenceMetrics(logits, SYNTHETIC.test.labels.subarray(0, count), SYNTHETIC.numClasses);
}

function close(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} (tolerance ${tol})`);
}

function assertMatches(m: ClassificationMetrics, ref: Reference, what: string): void {
  assert.equal(m.top1, ref.top1, `${what}: top-1`);
  assert.equal(m.top5, ref.top5, `${what}: top-5`);
  close(m.nll, ref.nll, 1e-6, `${what}: NLL`);
  close(m.ece, ref.ece, 1e-4, `${what}: ECE`);
  close(m.mce, ref.mce, 1e-4, `${what}: MCE`);
  assert.deepEqual(m.perClass, ref.perClass, `${what}: per-class accuracy`);
  assert.deepEqual(m.bins.map((b) => b.count), ref.binCounts, `${what}: reliability bins`);
}

// ---------------------------------------------------------------------------------------------

Deno.test("devices: CPU by default; auto falls back to the CPU with a note; cuda without its provider is one error line saying how to install it", async () => {
  const model = await trained();
  const cpu = await evaluateModel({ model, limit: 64 });
  assert.equal(cpu.device, "cpu");
  assert.equal(cpu.deviceNote, undefined);
  assert.match(formatReport(cpu), /^device {3}cpu$/m);

  const auto = await evaluateModel({ model, limit: 64, device: "auto" });
  const r = await runCli(["test", "--model", model, "--device", "cuda", "--limit", "16"], DIR);
  if (auto.device === "cuda") {
    // A machine with onnxruntime's CUDA provider: both use it.
    assert.equal(auto.deviceNote, undefined);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^device {3}cuda$/m);
    return;
  }
  assert.equal(auto.device, "cpu");
  assert.match(auto.deviceNote ?? "", /CUDA unavailable/);
  assert.match(formatReport(auto), /^device {3}cpu \(--device auto fell back to the CPU: CUDA unavailable/m);
  assert.equal(auto.metrics.top1, cpu.metrics.top1);
  assert.equal(auto.metrics.nll, cpu.metrics.nll);
  assertOneLineError(
    r,
    /CUDA execution provider unavailable .*npm install onnxruntime-node@[\d.]+ --onnxruntime-node-install-cuda=v12.*or use --device cpu/,
  );
});

Deno.test("a model exported here needs no flags: dataset, normalisation and class names from its metadata; --mean/--std override them, another --data brings its class names", async () => {
  const g = buildModel("resnet8", { numClasses: 10 });
  const model = file("seeded.onnx");
  const mean = [0.3, 0.6, 0.45], std = [0.2, 0.3, 0.25]; // not the synthetic data's own statistics
  const classNames = Array.from({ length: 10 }, (_, k) => `shape-${k}`);
  await Deno.writeFile(
    model,
    exportOnnx(g, initStateDict(g, 0), { dataset: "synthetic", mean, std, classNames }),
  );
  const r = await evaluateModel({ model });
  assert.equal(r.dataset, "synthetic");
  assert.equal(r.metrics.count, SYNTHETIC.test.count);
  assert.deepEqual(r.classNames, classNames);
  const want = await reference(model, mean, std);
  assertMatches(r.metrics, want, "metadata normalisation");
  const own = await reference(model, SYNTHETIC.mean, SYNTHETIC.std);
  assert.ok(Math.abs(own.nll - want.nll) > 1e-3, "the data's own statistics give another result");

  const mean2 = [0.5, 0.5, 0.5], std2 = [0.5, 0.5, 0.5];
  const over = await evaluateModel({ model, mean: mean2, std: std2 });
  assertMatches(over.metrics, await reference(model, mean2, std2), "--mean/--std");
  assert.ok(Math.abs(over.metrics.nll - r.metrics.nll) > 1e-3, "--mean/--std changed nothing");

  // --data naming the same dataset keeps the metadata's class names; another dataset has its own.
  assert.deepEqual((await evaluateModel({ model, data: "synthetic", limit: 8 })).classNames, classNames);
  const folder = file("png_set");
  const folderClasses = Array.from({ length: 10 }, (_, k) => `kind${k}`);
  for (const [k, cls] of folderClasses.entries()) {
    for (const split of ["train", "test"]) {
      await Deno.mkdir(path.join(folder, split, cls), { recursive: true });
      const rgb = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * (k + 3) + k * 40) % 256);
      await Deno.writeFile(path.join(folder, split, cls, "a.png"), encodeRgbPng(rgb, 32, 32));
    }
  }
  const other = await evaluateModel({ model, data: folder });
  assert.equal(other.metrics.count, 10);
  assert.deepEqual(other.classNames, folderClasses);

  // Without any metadata, --data is needed and the data's own normalisation applies.
  const bare = file("bare.onnx");
  await Deno.writeFile(bare, exportOnnx(g, initStateDict(g, 0)));
  await assert.rejects(evaluateModel({ model: bare }), /bare\.onnx: .*does not say which dataset.*--data/);
  const plain = await evaluateModel({ model: bare, data: "synthetic" });
  assertMatches(plain.metrics, own, "the data's normalisation");
  assert.deepEqual(plain.classNames, SYNTHETIC.classNames);
});

Deno.test("metrics (top-1, top-5, NLL, ECE, MCE, per-class, img/s) match an independent computation from the model's logits; the table shows them", async () => {
  const model = await trained();
  const r = await evaluateModel({ model, batchSize: 64 });
  const ref = await reference(model, SYNTHETIC.mean, SYNTHETIC.std);
  assertMatches(r.metrics, ref, "trained resnet8");
  // A useful check needs a model that is neither perfect nor constant.
  assert.ok(ref.top1 > 20 && ref.top1 < 100, `top-1 ${ref.top1}`);
  assert.ok(new Set(ref.perClass).size > 2, `per-class ${ref.perClass}`);
  assert.ok(ref.binCounts.filter((c) => c > 0).length >= 3, `bins ${ref.binCounts}`);
  assert.equal(r.metrics.bins.length, 15);
  assert.ok(r.imagesPerSec > 0 && Number.isFinite(r.imagesPerSec), `img/s ${r.imagesPerSec}`);
  assert.ok(r.seconds > 0);

  const table = formatReport(r);
  assert.match(table, /synthetic test split, 200 images/);
  const row = table.split("\n").find((l) => /^\s+[\d.]+%\s+[\d.]+%/.test(l));
  assert.ok(row, table);
  const cells = row.trim().split(/\s+/);
  assert.deepEqual(cells, [
    `${r.metrics.top1.toFixed(2)}%`,
    `${r.metrics.top5.toFixed(2)}%`,
    r.metrics.nll.toFixed(4),
    `${r.metrics.ece.toFixed(2)}%`,
    `${r.metrics.mce.toFixed(2)}%`,
    r.imagesPerSec.toFixed(0),
  ]);
  // Per-class line: the three worst and three best classes with their accuracies.
  const pc = r.metrics.perClass;
  const line = table.split("\n").find((l) => l.startsWith("per-class top-1: worst "));
  assert.ok(line, table);
  const [worst, best] = line.slice("per-class top-1: worst ".length).split("; best ").map((part) =>
    part.split(", ").map((e) => {
      const [, k, v] = e.match(/^class_(\d+) ([\d.]+)%$/)!;
      assert.equal(v, pc[Number(k)].toFixed(1), e);
      return Number(v);
    })
  );
  assert.equal(worst.length, 3);
  assert.equal(best.length, 3);
  assert.equal(worst[0], Number(Math.min(...pc).toFixed(1)));
  assert.equal(best[0], Number(Math.max(...pc).toFixed(1)));
});

/** A decoded PNG of a sane size that is not blank. */
function assertPicture(bytes: Uint8Array, what: string): void {
  const img = picture(bytes);
  assert.ok(img.width >= 300 && img.width <= 4000, `${what}: width ${img.width}`);
  assert.ok(img.height >= 200 && img.height <= 4000, `${what}: height ${img.height}`);
  const { variance, colours, dark } = pixelStats(img);
  assert.ok(variance > 100, `${what}: nearly blank (luminance variance ${variance})`);
  assert.ok(colours.size >= 8, `${what}: only ${colours.size} colours`);
  assert.ok(dark > 500, `${what}: no text or axes (${dark} dark pixels)`);
}

Deno.test("CLI: --json prints the report as parseable JSON; --plots writes a reliability diagram and a confidence histogram that decode and are not blank", async () => {
  const model = await trained();
  const r = await runCli(["test", "--model", model, "--limit", "100", "--json", "--plots", "plots"], DIR);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as EvaluationReport;
  assert.equal(report.dataset, "synthetic");
  assert.equal(report.device, "cpu");
  const m = report.metrics;
  for (const key of ["top1", "top5", "nll", "ece", "mce"] as const) {
    assert.equal(typeof m[key], "number", key);
  }
  assert.equal(m.count, 100);
  assert.equal(m.perClass.length, 10);
  assert.equal(m.bins.length, 15);
  assert.ok(report.imagesPerSec > 0);
  assertMatches(m, await reference(model, SYNTHETIC.mean, SYNTHETIC.std, 100), "--json");

  const want = ["trained_reliability.png", "trained_confidence.png"];
  assert.deepEqual(report.plots?.map((p) => path.basename(p)), want);
  const reliability = await Deno.readFile(path.join(DIR, "plots", want[0]));
  const histogram = await Deno.readFile(path.join(DIR, "plots", want[1]));
  assertPicture(reliability, want[0]);
  assertPicture(histogram, want[1]);
  assert.notDeepEqual(reliability, histogram);
  // The readable report lists the files instead.
  const text = await runCli(["test", "--model", model, "--limit", "16", "--plots", "plots2"], DIR);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^plots {4}.*plots2\/trained_reliability\.png, .*plots2\/trained_confidence\.png$/m,
  );
});

Deno.test("--oracle: gamma 0 is the plain teacher, gamma > 0 (x*) moves it; --relevance lrp-epsilon runs the teacher on the chosen engine", async () => {
  const teacher = await trained();
  const limit = 64;
  const plain = (await evaluateModel({ model: teacher, limit })).metrics;
  const oracle = (relevance: "grad-input" | "lrp-epsilon", gammas: number[], plotsDir?: string) =>
    evaluateModel({
      model: teacher,
      limit,
      plotsDir,
      oracle: {
        teacher,
        gammas,
        recNum: 1,
        reduction: "sum",
        relevance,
        lrp: { epsilon: 0.25, gamma: 0.25 },
        engine: { engine: "onnxruntime", backend: "wasm" },
      },
    });
  const g = await oracle("grad-input", [0, 0.5], file("oracle_plots"));
  assert.equal(g.oracle?.relevance, "grad-input");
  assert.equal(g.oracle?.engine, "onnxruntime-cpu");
  assert.deepEqual(g.oracle?.rows.map((r) => r.gamma), [0, 0.5]);
  const [x, xStar] = g.oracle!.rows.map((r) => r.metrics);
  assert.equal(x.count, limit);
  assert.equal(x.top1, plain.top1);
  assert.equal(x.top5, plain.top5);
  assert.deepEqual(x.perClass, plain.perClass);
  close(x.nll, plain.nll, 1e-5, "gamma 0 NLL");
  close(x.ece, plain.ece, 1e-3, "gamma 0 ECE");
  // x* = x - gamma |x| dCE/dx lowers each image's loss to first order.
  assert.ok(xStar.nll < x.nll - 1e-4, `oracle NLL ${xStar.nll} vs teacher ${x.nll}`);
  assert.ok(Math.abs(xStar.ece - x.ece) > 1e-3, "oracle ECE unchanged");
  const table = formatReport(g);
  assert.match(table, /^oracle {3}relevance grad-input on onnxruntime-cpu$/m);
  assert.match(table, new RegExp(`^  0\\.5 +x\\* +${xStar.top1.toFixed(2)}% +${xStar.ece.toFixed(2)}%`, "m"));
  assert.deepEqual(g.plots?.map((p) => path.basename(p)), [
    "trained_reliability.png",
    "trained_confidence.png",
    "trained_teacher_trained_x_reliability.png",
    "trained_oracle_trained_gamma0.5_reliability.png",
  ]);
  assertPicture(await Deno.readFile(g.plots![3]), "oracle reliability");

  const lrp = await oracle("lrp-epsilon", [0, 0.5]);
  assert.equal(lrp.oracle?.relevance, "lrp-epsilon");
  assert.equal(lrp.oracle?.engine, "onnxruntime-cpu");
  assert.match(formatReport(lrp), /^oracle {3}relevance lrp-epsilon on onnxruntime-cpu$/m);
  const [lx, lxStar] = lrp.oracle!.rows.map((r) => r.metrics);
  assert.equal(lx.top1, plain.top1);
  close(lx.nll, plain.nll, 1e-4, "lrp gamma 0 NLL");
  assert.ok(Math.abs(lxStar.nll - lx.nll) > 1e-4, "lrp-epsilon x* did not move the teacher");
  assert.ok(Math.abs(lxStar.nll - xStar.nll) > 1e-5, "lrp-epsilon gave the grad-input x*");
});

// ---------------------------------------------------------------------------------------------
// Models from other producers.

/** A linear classifier on the per-channel means, built by hand with `classes` outputs. */
function pooledLinear(outShape: number[] | "scalar", seed = 1): Uint8Array {
  const b = new OnnxBuilder("pooled_linear");
  const x = b.input("image", "float32", ["N", 3, 32, 32]);
  const f = b.op("Flatten", [b.op("GlobalAveragePool", [x])]);
  const width = outShape === "scalar" ? 10 : outShape.reduce((a, v) => a * v, 1);
  const w = Float32Array.from({ length: 3 * width }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 3);
  const y = b.op("MatMul", [f, b.constant(w, [3, width])]);
  const out = outShape === "scalar"
    ? b.op("ReduceMean", [y], { keepdims: 0 })
    : b.op("Reshape", [y, b.int64s([-1, ...outShape])]);
  b.output(out, "scores");
  return b.toModel(13);
}

/** The package's resnet8 export with its graph edited (shapes re-declared, nodes added). */
function editedExport(classes: number, edit: (m: OnnxModel) => void): Uint8Array {
  const g = buildModel("resnet8", { numClasses: classes });
  const m = exportOnnxModel(g, initStateDict(g, 0));
  edit(m);
  return encodeOnnxModel(m);
}

Deno.test("any classifier ONNX runs: undeclared input/output shapes, other I/O names, a fixed batch size", async () => {
  // No output shape declared (the builder writes none): checked on the first batch instead.
  const linear = file("linear.onnx");
  await Deno.writeFile(linear, pooledLinear([10]));
  const r = await evaluateModel({ model: linear, data: "synthetic", batchSize: 64 });
  assertMatches(r.metrics, await reference(linear, SYNTHETIC.mean, SYNTHETIC.std), "undeclared output");
  const noInputShape = file("no_input_shape.onnx");
  await Deno.writeFile(noInputShape, editedExport(10, (m) => (m.inputs[0].dims = null)));
  assert.equal((await evaluateModel({ model: noInputShape, data: "synthetic", limit: 8 })).metrics.count, 8);

  // Exported without a dynamic batch axis: fed batches of exactly 8, the last one padded.
  const dynamic = file("dynamic.onnx"), fixed = file("fixed8.onnx");
  await Deno.writeFile(dynamic, editedExport(10, () => {}));
  await Deno.writeFile(
    fixed,
    editedExport(10, (m) => {
      m.inputs[0].dims = [8, 3, 32, 32];
      m.outputs[0].dims = [8, 10];
    }),
  );
  const a = await evaluateModel({ model: dynamic, data: "synthetic", limit: 50, batchSize: 32 });
  const b = await evaluateModel({ model: fixed, data: "synthetic", limit: 50, batchSize: 32 });
  assert.equal(b.metrics.count, 50);
  assert.equal(b.metrics.top1, a.metrics.top1);
  assert.deepEqual(b.metrics.perClass, a.metrics.perClass);
  close(b.metrics.nll, a.metrics.nll, 1e-6, "fixed-batch NLL");
});

Deno.test("bad input is one clear error each: output not one score per class, class count differs from the data's, bad --mean/--std", async () => {
  const model = await trained();
  // Declared [N, 10, 2] output: refused before any image is read.
  const pairs = file("pairs.onnx");
  await Deno.writeFile(
    pairs,
    editedExport(20, (m) => {
      m.initializers.push(int64Tensor("pair_shape", [3], [-1, 10, 2]));
      m.nodes.push({
        name: "pairs",
        opType: "Reshape",
        domain: "",
        inputs: ["logits", "pair_shape"],
        outputs: ["pairs"],
        attributes: [],
      });
      m.outputs = [{ name: "pairs", elemType: 1, dims: ["batch", 10, 2] }];
    }),
  );
  await assert.rejects(
    evaluateModel({ model: pairs, data: "synthetic" }),
    /pairs\.onnx: the output pairs is \[N, 10, 2\], not one score per class \[N, classes\]/,
  );
  // The same shapes undeclared (hand-built): refused on the first batch, with the shape seen.
  const pairs2 = file("pairs_undeclared.onnx");
  await Deno.writeFile(pairs2, pooledLinear([10, 2]));
  await assert.rejects(
    evaluateModel({ model: pairs2, data: "synthetic", limit: 16 }),
    /pairs_undeclared\.onnx: the output scores has shape \[16, 10, 2\] for 16 images, not one score per class \[16, 10\]/,
  );
  const scalar = file("scalar.onnx");
  await Deno.writeFile(scalar, pooledLinear("scalar"));
  await assert.rejects(
    evaluateModel({ model: scalar, data: "synthetic", limit: 16 }),
    /scalar\.onnx: the output scores has shape \[\] for 16 images, not one score per class/,
  );

  // A 100-class model on the 10-class synthetic set: declared and undeclared class counts.
  const g100 = buildModel("resnet8", { numClasses: 100 });
  const wide = file("wide100.onnx");
  await Deno.writeFile(wide, exportOnnx(g100, initStateDict(g100, 0)));
  await assert.rejects(
    evaluateModel({ model: wide, data: "synthetic" }),
    /wide100\.onnx: the model scores 100 classes, but the dataset has 10/,
  );
  const wide2 = file("wide20_undeclared.onnx");
  await Deno.writeFile(wide2, pooledLinear([20]));
  await assert.rejects(
    evaluateModel({ model: wide2, data: "synthetic", limit: 16 }),
    /wide20_undeclared\.onnx: the model scores 20 classes, but the dataset has 10/,
  );

  // Normalisation of the wrong length or a zero std would silently give NaN metrics.
  await assert.rejects(
    evaluateModel({ model, mean: [0.5] }),
    /--mean needs 3 finite numbers \(one per channel of synthetic's images\), got \[0\.5\]/,
  );
  await assert.rejects(
    evaluateModel({ model, std: [0.5, 0, 0.5] }),
    /--std needs 3 positive numbers .*got \[0\.5, 0, 0\.5\]/,
  );
  assertOneLineError(
    await runCli(["test", "--model", model, "--mean", "0.5,0.5"], DIR),
    /--mean needs 3 finite numbers/,
  );
});
