/**
 * Reports how closely the ONNX converters reproduce their references (a report, not a test):
 * torch.onnx.export fixtures imported and run on tfjs vs PyTorch's logits and input gradient,
 * and our exports of every zoo architecture in onnxruntime vs the tfjs engine, with timings.
 *
 *     deno run -A tools/onnx_parity_report.ts [--backend wasm|cpu]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { exportOnnx } from "../convert/onnx_export.ts";
import { importOnnx } from "../convert/onnx_import.ts";
import { loadOnnxruntime } from "../lib/deps.ts";
import { TfjsEngine } from "../lib/engines/tfjs/engine.ts";
import type { TfjsBackendName } from "../lib/engines/tfjs/backend.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";
import { Rng } from "../lib/rng.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { conditionedWeights } from "../tests/conditioned_weights.ts";
import { loadFixture } from "../tests/fixtures.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { backend: { type: "string", default: "wasm" } },
});
const engine = await TfjsEngine.create(args.backend as TfjsBackendName);
const ort = await loadOnnxruntime();
const fixtureUrl = (name: string) => new URL(`../tests/fixtures/${name}`, import.meta.url);
const fmt = (v: number) => v.toExponential(2);
const top1 = (t: Float32Array, k: number) =>
  Array.from({ length: t.length / k }, (_, r) => {
    const row = Array.from(t.subarray(r * k, r * k + k));
    return row.indexOf(Math.max(...row));
  });

console.log(`engine ${engine.name}, onnxruntime-node ${ort.env.versions.common}\n`);
console.log("torch.onnx.export file -> importOnnx -> tfjs, vs PyTorch (8 seeded N(0,1) inputs)");
const onnxFx = await loadFixture("onnx_logits.json");
const seeded = onnxFx.tensors.get("seeded_input")!.data as Float32Array;
for (const name of Object.keys(onnxFx.meta.files as object)) {
  const bytes = await Deno.readFile(fixtureUrl(`onnx/${name}`));
  const t0 = performance.now();
  const imp = importOnnx(bytes, name);
  const t1 = performance.now();
  const m = await engine.loadFrozen(imp.graph, imp.weights);
  const got = await m.forward({ x: seeded, n: 8, shape: [3, 32, 32] });
  m.dispose();
  const ref = onnxFx.tensors.get(name)!.data as Float32Array;
  console.log(
    `  ${name.padEnd(32)} opset ${imp.opset}  max|diff| ${fmt(maxAbsDiff(got, ref))}  ` +
      `max|logit| ${Math.max(...ref.map(Math.abs)).toFixed(2).padStart(7)}  import ${
        (t1 - t0).toFixed(0)
      } ms`,
  );
}

const fx = await loadFixture("teacher_logits.json");
const images = fx.tensors.get("cifar100/images")!.data as Float32Array;
const refImages = fx.tensors.get("cifar100/resnet20/image_logits")!.data as Float32Array;
const refGrad = fx.tensors.get("cifar100/resnet20/seeded_input_grad")!.data as Float32Array;
const y = Int32Array.from(fx.tensors.get("cifar100/seeded_labels")!.data);
console.log("\ncifar100 resnet20 teacher imported from torch: 20 real test images, input gradient (mean CE)");
for (const name of ["resnet20_cifar100_folded.onnx", "resnet20_cifar100_bn.onnx"]) {
  const imp = importOnnx(await Deno.readFile(fixtureUrl(`onnx/${name}`)), name);
  const m = await engine.loadFrozen(imp.graph, imp.weights);
  const logits = await m.forward({ x: images, n: 20, shape: [3, 32, 32] });
  const agree = top1(logits, 100).filter((c, i) => c === top1(refImages, 100)[i]).length;
  const t0 = performance.now();
  const g = await m.inputGradient({ x: seeded, y, n: 8, shape: [3, 32, 32] }, "mean");
  const ms = performance.now() - t0;
  m.dispose();
  console.log(
    `  ${name.padEnd(32)} logits max|diff| ${fmt(maxAbsDiff(logits, refImages))}  top-1 agree ${agree}/20  ` +
      `grad max|diff| ${fmt(maxAbsDiff(g, refGrad))} (max|grad| ${
        fmt(Math.max(...refGrad.map(Math.abs)))
      }, ` +
      `${ms.toFixed(0)} ms for 8 images)`,
  );
}

console.log(
  "\nexportOnnx of every zoo architecture (5 classes, conditioned random weights, 2 inputs): onnxruntime vs tfjs",
);
const rng = new Rng(7);
const x = Float32Array.from({ length: 2 * 3072 }, () => rng.normal());
for (const arch of MODEL_NAMES) {
  const g = buildModel(arch, { numClasses: 5 });
  const w = conditionedWeights(g, 11);
  const m = await engine.loadFrozen(g, w);
  const ref = await m.forward({ x, n: 2, shape: [3, 32, 32] });
  m.dispose();
  const cells: string[] = [];
  for (const fold of [true, false]) {
    const t0 = performance.now();
    const bytes = exportOnnx(g, w, { foldBatchNorm: fold });
    const ms = performance.now() - t0;
    const s = await ort.InferenceSession.create(bytes);
    const out = await s.run({ input: new ort.Tensor("float32", x, [2, 3, 32, 32]) });
    await s.release();
    cells.push(
      `${fold ? "folded" : "kept  "} ${fmt(maxAbsDiff(out.logits.data as Float32Array, ref))} ` +
        `(${(bytes.length / 1e6).toFixed(1)} MB, ${ms.toFixed(0)} ms)`,
    );
  }
  console.log(
    `  ${arch.padEnd(10)} max|logit| ${Math.max(...ref.map(Math.abs)).toFixed(2).padStart(6)}  ${
      cells.join("  ")
    }`,
  );
}
