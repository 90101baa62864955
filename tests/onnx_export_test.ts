/**
 * ONNX export: onnxruntime on our files must reproduce the tfjs engine's eval-mode logits for
 * every zoo architecture (BatchNorm folded and kept), import must restore graph, weights and
 * metadata, the shared teacher must reproduce PyTorch, and bad input must fail clearly.
 */
import assert from "node:assert/strict";
import { exportOnnx, exportOnnxModel, ONNX_EXPORT_OPSETS } from "../convert/onnx_export.ts";
import { importOnnx } from "../convert/onnx_import.ts";
import { OnnxExportError } from "../convert/onnx_errors.ts";
import { describeOnnx } from "../convert/onnx_describe.ts";
import { PACKAGE_NAME, PACKAGE_VERSION, parseModelMetadata } from "../convert/onnx_metadata.ts";
import { loadOnnxruntime } from "../lib/deps.ts";
import { TfjsEngine } from "../lib/engines/tfjs/engine.ts";
import type { Graph } from "../lib/graph.ts";
import { initStateDict } from "../lib/models/init.ts";
import { buildModel, MODEL_NAMES } from "../lib/models/zoo.ts";
import { Rng } from "../lib/rng.ts";
import { maxAbsDiff, type StateDict } from "../lib/tensor.ts";
import { loadFixture } from "./fixtures.ts";
import { conditionedWeights } from "./conditioned_weights.ts";

const TOL = 1e-4;
const ort = await loadOnnxruntime();
const engine = await TfjsEngine.create("wasm");

/** Logits of ONNX bytes in onnxruntime-node (CPU). */
async function runOrt(bytes: Uint8Array, x: Float32Array, n: number, size = 32): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ input: new ort.Tensor("float32", x, [n, 3, size, size]) });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

async function runTfjs(g: Graph, w: StateDict, x: Float32Array, n: number): Promise<Float32Array> {
  const m = await engine.loadFrozen(g, w);
  try {
    return await m.forward({ x, n, shape: [3, 32, 32] });
  } finally {
    m.dispose();
  }
}

function randomInput(n: number, seed: number, size = 32): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * 3 * size * size }, () => rng.normal());
}

function countOps(bytes: Uint8Array, op: string): number {
  return describeOnnx(bytes).operators[op] ?? 0;
}

Deno.test("every zoo architecture: onnxruntime on our export equals tfjs within 1e-4, BatchNorm folded and kept; import restores it", async () => {
  const n = 2;
  const x = randomInput(n, 7);
  for (const arch of MODEL_NAMES) {
    const g = buildModel(arch, { numClasses: 5 });
    const w = conditionedWeights(g, 11);
    const ref = await runTfjs(g, w, x, n);
    const scale = Math.max(...ref.map(Math.abs));
    assert.ok(scale > 1 && scale < 100, `${arch}: logits scale ${scale}`);
    const bnCount = g.nodes.filter((v) => v.op === "batchnorm").length;
    for (const fold of [true, false]) {
      const bytes = exportOnnx(g, w, { foldBatchNorm: fold });
      const got = await runOrt(bytes, x, n);
      const d = maxAbsDiff(got, ref);
      assert.ok(d <= TOL, `${arch} ${fold ? "folded" : "kept"}: max abs diff ${d}`);
      const bns = countOps(bytes, "BatchNormalization");
      if (!fold) assert.equal(bns, bnCount, arch);
      else if (arch.startsWith("resnet")) assert.equal(bns, 0, arch);
      else assert.ok(bns > 0 && bns < bnCount, `${arch}: pre-activation BatchNorms stay (${bns}/${bnCount})`);
      if (!fold) {
        const back = importOnnx(bytes, `${arch}.onnx`);
        assert.deepEqual(back.graph, g, `${arch}: round-trip graph`);
        assert.deepEqual([...back.weights.keys()], [...w.keys()]);
        for (const [k, t] of w) assert.deepEqual(back.weights.get(k), t, `${arch}: ${k}`);
      }
    }
  }
});

Deno.test("a folded export imports as conv-with-bias and still computes the same logits", async () => {
  const g = buildModel("resnet14", { numClasses: 4 });
  const w = conditionedWeights(g, 3);
  const back = importOnnx(exportOnnx(g, w), "folded.onnx");
  assert.equal(back.graph.arch, "resnet14");
  assert.ok(back.graph.nodes.every((v) => v.op !== "batchnorm"));
  assert.ok(back.graph.nodes.every((v) => v.op !== "conv" || v.bias === `${v.name}.bias`));
  assert.ok(back.graph.params.filter((p) => p.name.endsWith(".weight")).every((p) => w.has(p.name)));
  const x = randomInput(3, 5);
  assert.ok(maxAbsDiff(await runTfjs(back.graph, back.weights, x, 3), await runTfjs(g, w, x, 3)) <= TOL);
});

Deno.test("metadata: everything evaluation needs travels in the file", () => {
  const g = buildModel("resnet8", { numClasses: 3 });
  const bytes = exportOnnx(g, initStateDict(g, 0), {
    dataset: "toy3",
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
    classNames: ["apple", "aquarium_fish", "baby"],
  });
  const imp = importOnnx(bytes, "toy.onnx");
  assert.equal(imp.producer, `${PACKAGE_NAME} ${PACKAGE_VERSION}`);
  assert.equal(imp.opset, 13);
  assert.deepEqual(parseModelMetadata(imp.metadata, "toy.onnx"), {
    arch: "resnet8",
    numClasses: 3,
    inChannels: 3,
    dataset: "toy3",
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
    imageSize: 32,
    classNames: ["apple", "aquarium_fish", "baby"],
    batchNorm: "folded",
    package: PACKAGE_NAME,
    packageVersion: PACKAGE_VERSION,
  });
  const m = exportOnnxModel(g, initStateDict(g, 0));
  assert.deepEqual(m.inputs[0], { name: "input", elemType: 1, dims: ["batch", 3, 32, 32] });
  assert.deepEqual(m.outputs[0], { name: "logits", elemType: 1, dims: ["batch", 3] });
});

Deno.test("opsets 13 to 17 all run in onnxruntime; same input, same bytes", async () => {
  const g = buildModel("wrn_16_1", { numClasses: 6 });
  const w = conditionedWeights(g, 9);
  const x = randomInput(2, 1);
  const ref = await runTfjs(g, w, x, 2);
  for (let opset = ONNX_EXPORT_OPSETS.min; opset <= ONNX_EXPORT_OPSETS.max; opset++) {
    const bytes = exportOnnx(g, w, { opset, foldBatchNorm: opset % 2 === 0 });
    assert.equal(describeOnnx(bytes).opset, opset);
    assert.ok(maxAbsDiff(await runOrt(bytes, x, 2), ref) <= TOL, `opset ${opset}`);
    assert.deepEqual(
      exportOnnx(g, w, { opset, foldBatchNorm: opset % 2 === 0 }),
      bytes,
      `opset ${opset} deterministic`,
    );
  }
  // Symbolic height and width: the network runs on another image size.
  const dynamic = exportOnnx(g, w, { imageSize: null });
  assert.equal((await runOrt(dynamic, randomInput(1, 2, 40), 1, 40)).length, 6);
});

Deno.test("the shared cifar100 resnet20 teacher, re-exported by us, reproduces PyTorch in onnxruntime", async () => {
  const fx = await loadFixture("teacher_logits.json");
  // Weights without a .pth reader: the state dict decoded from PyTorch's own BatchNorm-kept export.
  const torchExport = importOnnx(
    Deno.readFileSync(new URL("./fixtures/onnx/resnet20_cifar100_bn.onnx", import.meta.url)),
    "resnet20_cifar100_bn.onnx",
  );
  const g = buildModel("resnet20", { numClasses: 100 });
  const w: StateDict = new Map(g.params.map((p) => [
    p.name,
    p.dtype === "int64"
      ? { dtype: "int64", shape: [], data: new Float64Array(1) }
      : torchExport.weights.get(p.name)!,
  ]));
  const images = fx.tensors.get("cifar100/images")!.data as Float32Array;
  const seeded = fx.tensors.get("seeded_input")!.data as Float32Array;
  for (const fold of [true, false]) {
    const bytes = exportOnnx(g, w, { foldBatchNorm: fold, dataset: "cifar100" });
    const a = await runOrt(bytes, images, 20);
    const refA = fx.tensors.get("cifar100/resnet20/image_logits")!.data as Float32Array;
    assert.ok(maxAbsDiff(a, refA) <= TOL, `images, fold=${fold}: ${maxAbsDiff(a, refA)}`);
    const b = await runOrt(bytes, seeded, 8);
    const refB = fx.tensors.get("cifar100/resnet20/seeded_logits")!.data as Float32Array;
    assert.ok(maxAbsDiff(b, refB) <= TOL, `seeded, fold=${fold}: ${maxAbsDiff(b, refB)}`);
    for (let i = 0; i < 20; i++) {
      const row = (t: Float32Array) => Array.from(t.subarray(i * 100, i * 100 + 100));
      const top = (r: number[]) => r.indexOf(Math.max(...r));
      assert.equal(top(row(a)), top(row(refA)), `image ${i} top-1`);
    }
  }
});

Deno.test("torch exports imported and re-exported by us give PyTorch's logits in onnxruntime", async () => {
  const fx = await loadFixture("onnx_logits.json");
  const x = fx.tensors.get("seeded_input")!.data as Float32Array;
  for (const name of Object.keys(fx.meta.files as object)) {
    const imp = importOnnx(Deno.readFileSync(new URL(`./fixtures/onnx/${name}`, import.meta.url)), name);
    for (const fold of [true, false]) {
      const got = await runOrt(exportOnnx(imp.graph, imp.weights, { foldBatchNorm: fold }), x, 8);
      const ref = fx.tensors.get(name)!.data as Float32Array;
      assert.ok(maxAbsDiff(got, ref) <= TOL, `${name} fold=${fold}: ${maxAbsDiff(got, ref)}`);
    }
  }
});

Deno.test("bad export input: one clear line each", () => {
  const g = buildModel("resnet8", { numClasses: 3 });
  const w = initStateDict(g, 0);
  const expectError = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof OnnxExportError, String(e));
      assert.match(e.message, /^ONNX export of resnet8: /);
      assert.match(e.message, re);
      return true;
    });
  expectError(() => exportOnnx(g, w, { opset: 12 }), /opset 12 is not supported; choose 13 to 17/);
  expectError(() => exportOnnx(g, w, { opset: 18 }), /opset 18 is not supported/);
  const missing = new Map(w);
  missing.delete("layer2.0.bn1.running_var");
  expectError(() => exportOnnx(g, missing), /weights lack parameter layer2\.0\.bn1\.running_var/);
  const wrong = new Map(w);
  wrong.set("fc.weight", { dtype: "float32", shape: [4, 64], data: new Float32Array(256) });
  expectError(
    () => exportOnnx(g, wrong),
    /parameter fc\.weight has shape \[4,64\], the graph needs \[3,64\]/,
  );
  expectError(() => exportOnnx(g, w, { classNames: ["a", "b"] }), /2 class names for 3 classes/);
  expectError(() => exportOnnx(g, w, { mean: [0.5] }), /mean needs 3 finite numbers/);
});
