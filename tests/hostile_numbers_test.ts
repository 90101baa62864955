/**
 * Bad numbers (issue 16, item 4): NaN/Inf weights are refused where a model is read (.pth, ONNX),
 * `convert` writes no ONNX file with NaN/Inf weights unless allowed (naming the tensor, including
 * NaN made by folding BatchNorm), `test --model` computes no metrics from non-finite logits, and
 * the trainer tells a non-finite teacher apart from a too-high learning rate while keeping the
 * last good checkpoint.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { importOnnx } from "../convert/onnx_import.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { readCheckpoint } from "../convert/pth.ts";
import { convertModel } from "../app/convert.ts";
import { evaluateModel } from "../app/evaluate.ts";
import { resolveConfig } from "../lib/config.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { createResponseProvider, type ResponseProvider } from "../lib/oracle.ts";
import { createProgress } from "../lib/progress.ts";
import type { StateDict } from "../lib/tensor.ts";
import { NonFiniteLossError, RUN_FILES, train } from "../lib/trainer.ts";
import { exists } from "../lib/fs_probe.ts";
import { evalSource, makeData as makeShared, MemorySource, tinyGraph } from "./train_sources.ts";
import { assertOneLineError, runCli } from "./cli_utils.ts";

const DIR = Deno.makeTempDirSync({ prefix: "okd_hostile_numbers_" });
globalThis.addEventListener("unload", () => Deno.removeSync(DIR, { recursive: true }));
const file = (name: string) => path.join(DIR, name);
const fixture = (name: string) => new URL(`./fixtures/hostile/${name}`, import.meta.url);

function resnet8(poison?: (sd: StateDict) => void) {
  const g = buildModel("resnet8", { numClasses: 10 });
  const sd = initStateDict(g, 1);
  poison?.(sd);
  return { g, sd };
}

Deno.test("numbers: a .pth with NaN/Inf weights is refused naming the tensor, or listed when allowed", async () => {
  const bytes = await Deno.readFile(fixture("nan_weights.pth"));
  assert.throws(
    () => readCheckpoint(bytes, "nan_weights.pth"),
    /^CheckpointError: nan_weights\.pth: non-finite weights: w \(1 NaN, 1 \+Inf, 1 -Inf of 4 values\)/,
  );
  const ck = readCheckpoint(bytes, "nan_weights.pth", { allowNonFinite: true });
  assert.deepEqual(ck.nonFinite.map((t) => [t.name, t.nan, t.posInf, t.negInf]), [["w", 1, 1, 1]]);
});

Deno.test("numbers: an ONNX file with a NaN weight is refused on import naming the tensor", () => {
  const { g, sd } = resnet8((s) => (s.get("fc.weight")!.data[7] = NaN));
  const bytes = exportOnnx(g, sd);
  assert.throws(
    () => importOnnx(bytes, "nan.onnx"),
    /^OnnxFormatError: nan\.onnx: non-finite weights: fc\.weight \(1 NaN of 640 values\)/,
  );
  const imp = importOnnx(bytes, "nan.onnx", { allowNonFinite: true });
  assert.deepEqual(imp.nonFinite.map((t) => t.name), ["fc.weight"]);
});

Deno.test("numbers: convert writes nothing for non-finite weights, even when only BatchNorm folding makes them", async () => {
  const nanSrc = file("nan_src.onnx");
  const { g, sd } = resnet8((s) => (s.get("conv1.weight")!.data[0] = Infinity));
  await Deno.writeFile(nanSrc, exportOnnx(g, sd, { foldBatchNorm: false }));
  await assert.rejects(
    convertModel({ from: nanSrc, out: file("nan_out.onnx") }),
    /nan_src\.onnx: non-finite weights: conv1\.weight \(1 \+Inf of 432 values\)/,
  );
  assert.ok(!(await exists(file("nan_out.onnx"))));

  // A negative running variance is finite, but folding takes its square root.
  const bnSrc = file("negvar_src.onnx");
  const neg = resnet8((s) => (s.get("bn1.running_var")!.data[3] = -1));
  await Deno.writeFile(bnSrc, exportOnnx(neg.g, neg.sd, { foldBatchNorm: false }));
  await assert.rejects(
    convertModel({ from: bnSrc, out: file("negvar_out.onnx") }),
    /negvar_out\.onnx: not written: the converted weights hold non-finite values: conv1\.weight \(27 NaN of 432 values\), conv1\.bias \(1 NaN of 16 values\); pass --allow-non-finite to write it anyway$/,
  );
  assert.ok(!(await exists(file("negvar_out.onnx"))));
  // Forced, it is written (and the summary says the file is not importable, and why).
  const summary = await convertModel({ from: bnSrc, out: file("negvar_out.onnx"), allowNonFinite: true });
  assert.ok(await exists(file("negvar_out.onnx")));
  assert.match(summary, /non-finite weights/);
});

Deno.test("numbers: convert --allow-non-finite writes what is refused without it (NaN/Inf source, NaN from folding)", async () => {
  const dir = await Deno.makeTempDir({ dir: DIR, prefix: "cli_" });
  const inf = resnet8((s) => (s.get("conv1.weight")!.data[0] = Infinity));
  await Deno.writeFile(path.join(dir, "inf.onnx"), exportOnnx(inf.g, inf.sd, { foldBatchNorm: false }));
  const neg = resnet8((s) => (s.get("bn1.running_var")!.data[3] = -1));
  await Deno.writeFile(path.join(dir, "negvar.onnx"), exportOnnx(neg.g, neg.sd, { foldBatchNorm: false }));
  const cases: [string, RegExp][] = [
    [
      "inf.onnx",
      /^error: inf\.onnx: non-finite weights: conv1\.weight \(1 \+Inf of 432 values\); .*; pass --allow-non-finite to convert it anyway$/,
    ],
    [
      "negvar.onnx",
      /^error: out_negvar\.onnx: not written: the converted weights hold non-finite values: conv1\.weight .*; pass --allow-non-finite to write it anyway$/,
    ],
  ];
  for (const [src, refusal] of cases) {
    const out = `out_${src}`;
    assertOneLineError(await runCli(["convert", "--from", src, "--out", out], dir), refusal);
    assert.ok(!(await exists(path.join(dir, out))), `${out} written without --allow-non-finite`);
    const r = await runCli(["convert", "--from", src, "--out", out, "--allow-non-finite"], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`wrote {3}${out} `));
    const written = await Deno.readFile(path.join(dir, out));
    assert.throws(() => importOnnx(written, out), /non-finite weights: conv1\.weight/);
    assert.ok(importOnnx(written, out, { allowNonFinite: true }).nonFinite.length > 0);
  }
});

Deno.test("numbers: test --model stops on NaN logits and names the output instead of reporting metrics", async () => {
  const { g, sd } = resnet8((s) => (s.get("fc.bias")!.data[2] = NaN));
  const model = file("nan_eval.onnx");
  await Deno.writeFile(model, exportOnnx(g, sd));
  await assert.rejects(
    evaluateModel({ model, data: "synthetic", limit: 32, batchSize: 16 }),
    (e: Error) => {
      assert.match(
        e.message,
        /nan_eval\.onnx: the output logits holds non-finite values \(logits \(16 NaN of 160 values\) for 16 images\); no metrics/,
      );
      assert.ok(!e.message.includes("\n"));
      return true;
    },
  );
});

Deno.test("numbers: test --oracle stops on a teacher whose finite weights overflow to Inf logits", async () => {
  const model = file("finite_eval.onnx");
  const { g, sd } = resnet8();
  await Deno.writeFile(model, exportOnnx(g, sd));
  const teacher = file("overflow_teacher.onnx");
  const t = resnet8((s) => s.get("fc.weight")!.data.fill(3e38));
  await Deno.writeFile(teacher, exportOnnx(t.g, t.sd));
  await assert.rejects(
    evaluateModel({
      model,
      data: "synthetic",
      limit: 16,
      batchSize: 16,
      oracle: {
        teacher,
        gammas: [0],
        recNum: 1,
        reduction: "mean",
        engine: { engine: "tfjs", backend: "cpu" },
      },
    }),
    /overflow_teacher\.onnx: the teacher gives non-finite outputs: teacher logits at gamma 0 \(.*Inf.* of 160 values\); no metrics/,
  );
});

// ---- the trainer ----

/** This file's data: class c brightens its channel by 1. */
const makeData = (n: number, seed: number) => makeShared(n, seed, () => 1);

Deno.test("numbers: a non-finite teacher is named as such (not --lr) and the last good checkpoint is kept", async () => {
  const engine = await createEngine({ engine: "tfjs", backend: "cpu" });
  const quiet = createProgress({ stream: { write: () => {} }, tty: false });
  const config = resolveConfig({ epochs: 2, batchSize: 8, lr: 0.05, schedule: "99", seed: 3 });
  const g = tinyGraph();
  const student = await engine.loadTrainable(g, initStateDict(g, 3), {
    momentum: config.momentum,
    weightDecay: config.weightDecay,
    nesterov: false,
    dampening: 0,
  });
  const teacher = await engine.loadFrozen(tinyGraph(), initStateDict(tinyGraph(), 99));
  const good = createResponseProvider("oracle", teacher, { gamma: 0.5, recNum: 1, reduction: "mean" });
  let calls = 0;
  const poisoned: ResponseProvider = {
    name: good.name,
    respond: async (b) => {
      const logits = await good.respond(b);
      if (++calls === 2) logits[5] = NaN;
      return logits;
    },
  };
  const trainData = makeData(32, 1), testData = makeData(16, 2);
  const dir = file("teacher_nan_run");
  const common = {
    student,
    trainData: new MemorySource(trainData, 8, null),
    testData: evalSource(testData, testData.y.length),
    runDir: dir,
    progress: quiet,
    engineName: engine.name,
  };
  await train({ ...common, config: { ...config, epochs: 1 }, provider: good });
  const before = await Deno.readFile(path.join(dir, RUN_FILES.checkpoint));
  await assert.rejects(
    train({ ...common, config, provider: poisoned, resume: true }),
    (e: Error) => {
      assert.ok(e instanceof NonFiniteLossError);
      assert.match(
        e.message,
        /^the teacher's logits are not finite at epoch 2, batch 2 \(teacher logits \(1 NaN of 32 values\), provider .*\); stopped before the student step\. The last good checkpoint is kept in .*checkpoint\.safetensors\. The teacher is at fault, not --lr/,
      );
      assert.doesNotMatch(e.message, /try a lower --lr/);
      return true;
    },
  );
  assert.deepEqual(await Deno.readFile(path.join(dir, RUN_FILES.checkpoint)), before);
  student.dispose();
  teacher.dispose();
});
