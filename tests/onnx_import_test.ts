/**
 * ONNX import against PyTorch: files written by torch.onnx.export (tools/make_onnx_fixtures.py)
 * must give PyTorch's logits and input gradients on the tfjs engine (wasm backend), the imported
 * resnet20 teachers also on the webgpu engine (any adapter, software included), and every
 * malformed or unsupported file must fail with one clear line.
 */
import assert from "node:assert/strict";
import { importOnnx, importOnnxModel, SUPPORTED_ONNX_OPS } from "../convert/onnx_import.ts";
import { OnnxFormatError } from "../convert/onnx_errors.ts";
import { decodeOnnxModel, encodeOnnxModel, int64Tensor, type OnnxModel } from "../convert/onnx_proto.ts";
import { describeOnnx } from "../convert/onnx_describe.ts";
import { TfjsEngine } from "../lib/engines/tfjs/engine.ts";
import type { Engine, FrozenModel } from "../lib/engines/engine.ts";
import { createEngine } from "../lib/engines/registry.ts";
import { engineTest, WEBGPU_ENGINE } from "./engines.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { maxAbsDiff } from "../lib/tensor.ts";
import { loadFixture } from "./fixtures.ts";

const TOL = 1e-4;
const onnxFile = (name: string) => Deno.readFileSync(new URL(`./fixtures/onnx/${name}`, import.meta.url));
const engine = await TfjsEngine.create("wasm");
const onnxFx = await loadFixture("onnx_logits.json");
const teacherFx = await loadFixture("teacher_logits.json");
const seeded = onnxFx.tensors.get("seeded_input")!.data as Float32Array;
const files = onnxFx.meta.files as Record<string, Record<string, unknown>>;

function f32(fx: typeof onnxFx, key: string): Float32Array {
  const t = fx.tensors.get(key);
  assert.ok(t, `fixture tensor ${key}`);
  return t.data as Float32Array;
}

function argmaxRows(logits: Float32Array, k: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < logits.length / k; r++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[r * k + c] > logits[r * k + best]) best = c;
    out.push(best);
  }
  return out;
}

async function withModel<T>(
  bytes: Uint8Array,
  name: string,
  f: (m: FrozenModel) => Promise<T>,
  on: Engine = engine,
): Promise<T> {
  const imp = importOnnx(bytes, name);
  const m = await on.loadFrozen(imp.graph, imp.weights);
  try {
    return await f(m);
  } finally {
    m.dispose();
  }
}

function batch(x: Float32Array, n: number) {
  return { x: x.subarray(0, n * 3072), n, shape: [3, 32, 32] as const };
}

function expectFormatError(f: () => unknown, fileName: string, ...fragments: RegExp[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof OnnxFormatError, `expected OnnxFormatError, got ${e}`);
    assert.ok(e.message.startsWith(`${fileName}: `), e.message);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    for (const r of fragments) assert.match(e.message, r);
    return true;
  });
}

Deno.test("the fixtures exercise the export variants they claim", () => {
  for (const [name, s] of Object.entries(files)) {
    const d = describeOnnx(onnxFile(name), name);
    const ops = d.operators;
    assert.equal(d.opset, s.opset, name);
    const bn = (ops.BatchNormalization ?? 0) > 0;
    // WRN's pre-activation BatchNorms have no convolution to fold into.
    if (!String(s.arch).startsWith("wrn")) assert.equal(bn, s.bn === "keep", `${name} BatchNorm`);
    if (s.head === "matmul") assert.ok(ops.MatMul && !ops.Gemm, `${name} MatMul`);
    if (s.flatten === "view" && s.batch === "dynamic") assert.ok(ops.Shape && ops.Gather && ops.Concat, name);
    if (s.pool === "avgpool") assert.ok(ops.AveragePool && ops.Pad, name);
    if (String(s.pool).startsWith("mean")) assert.ok(ops.ReduceMean, name);
  }
  const opsets = Object.values(files).filter((s) => s.arch === "resnet8").map((s) => s.opset);
  assert.deepEqual(opsets, [11, 12, 13, 14, 15, 16, 17]);
  assert.ok(
    (describeOnnx(onnxFile("resnet20_cifar100_bn.onnx")).operators.Identity ?? 0) > 0,
    "Identity nodes",
  );
});

Deno.test("every torch export imports and gives PyTorch's logits within 1e-4 (tfjs wasm)", async () => {
  for (const name of Object.keys(files)) {
    const ref = f32(onnxFx, name);
    const got = await withModel(onnxFile(name), name, (m) => m.forward(batch(seeded, 8)));
    const k = ref.length / 8;
    assert.ok(maxAbsDiff(got, ref) <= TOL, `${name}: max abs diff ${maxAbsDiff(got, ref)}`);
    assert.deepEqual(argmaxRows(got, k), argmaxRows(ref, k), name);
  }
});

Deno.test("dynamic and static batch exports both run at another batch size", async () => {
  for (const name of ["resnet8_opset13.onnx", "resnet8_opset17.onnx", "resnet8_opset14.onnx"]) {
    const got = await withModel(onnxFile(name), name, (m) => m.forward(batch(seeded, 3)));
    const ref = f32(onnxFx, name).subarray(0, 30);
    assert.ok(maxAbsDiff(got, ref) <= TOL, name);
  }
});

async function resnet20TeacherMatches(on: Engine): Promise<void> {
  const images = f32(teacherFx, "cifar100/images");
  const labels = teacherFx.tensors.get("cifar100/labels")!.data;
  const ref = f32(teacherFx, "cifar100/resnet20/image_logits");
  const n = images.length / 3072;
  assert.equal(n, 20);
  for (const name of ["resnet20_cifar100_folded.onnx", "resnet20_cifar100_bn.onnx"]) {
    const got: Float32Array = await withModel(onnxFile(name), name, (m) => m.forward(batch(images, n)), on);
    assert.ok(maxAbsDiff(got, ref) <= TOL, `${name}: ${maxAbsDiff(got, ref)}`);
    assert.deepEqual(argmaxRows(got, 100), argmaxRows(ref, 100), `${name} top-1`);
    const seededRef = f32(teacherFx, "cifar100/resnet20/seeded_logits");
    const seededGot = await withModel(onnxFile(name), name, (m) => m.forward(batch(seeded, 8)), on);
    assert.ok(maxAbsDiff(seededGot, seededRef) <= TOL, name);
    // The teacher is a real one: most of these test images are classified correctly.
    const hits = argmaxRows(got, 100).filter((c, i) => c === labels[i]).length;
    assert.ok(hits >= 12, `${hits}/20 correct`);
  }
}

async function importedOracleMatches(on: Engine): Promise<void> {
  const y = Int32Array.from(teacherFx.tensors.get("cifar100/seeded_labels")!.data);
  const ref = f32(teacherFx, "cifar100/resnet20/seeded_input_grad");
  const scale = Math.max(...ref.map(Math.abs));
  for (const name of ["resnet20_cifar100_folded.onnx", "resnet20_cifar100_bn.onnx"]) {
    await withModel(onnxFile(name), name, async (m) => {
      const b = { ...batch(seeded, 8), y };
      const g = await m.inputGradient(b, "mean");
      // Stated tolerance: 1e-4 of the largest gradient entry (measured: below 1e-6 of it).
      const gradTol = 1e-4 * scale;
      const diff = maxAbsDiff(g, ref);
      assert.ok(diff <= gradTol, `${name}: gradient max abs diff ${diff} (scale ${scale})`);
      // x* = x - gamma * |x| * g, the teacher's relevance-reinforced input.
      const gamma = 0.5;
      const o = await m.oracle(b, { gamma, recNum: 1, reduction: "mean" }, true);
      const expected = b.x.map((v, i) => v - gamma * Math.abs(v) * ref[i]);
      const maxX = Math.max(...b.x.map(Math.abs));
      assert.ok(maxAbsDiff(o.xStar!, expected) <= gamma * maxX * gradTol, `${name}: x*`);
      assert.ok(maxAbsDiff(o.xStar!, b.x) > 1e-3, "x* moved away from x");
      assert.equal(o.logits.length, 800);
    }, on);
  }
}

const resnet20Test = "the cifar100 resnet20 teacher, BatchNorm folded and kept: real images match PyTorch";
const oracleTest = "an imported teacher serves as oracle: input gradient matches PyTorch's";
Deno.test(resnet20Test, () => resnet20TeacherMatches(engine));
Deno.test(oracleTest, () => importedOracleMatches(engine));
// The same tolerances on the webgpu engine.
Deno.test(engineTest(`${resnet20Test} (${WEBGPU_ENGINE.label})`, WEBGPU_ENGINE), async () => {
  await resnet20TeacherMatches(await createEngine(WEBGPU_ENGINE));
});
Deno.test(engineTest(`${oracleTest} (${WEBGPU_ENGINE.label})`, WEBGPU_ENGINE), async () => {
  await importedOracleMatches(await createEngine(WEBGPU_ENGINE));
});

Deno.test("names: state-dict keys survive, folded convs get module-path names, shared weights stay shared", () => {
  const zooNames = buildModel("resnet20", { numClasses: 100 }).params.filter((p) => p.dtype !== "int64")
    .map((p) => p.name);
  const kept = importOnnx(onnxFile("resnet20_cifar100_bn.onnx"), "bn.onnx");
  assert.deepEqual(kept.graph.params.map((p) => p.name), zooNames);
  assert.equal(kept.producer, "pytorch 1.13.0");
  assert.equal(kept.opset, 13);
  assert.equal(kept.graph.arch, "onnx");
  const folded = importOnnx(onnxFile("resnet20_cifar100_folded.onnx"), "folded.onnx");
  const convs = zooNames.filter((n) => /conv\d?\.weight$|downsample\.0\.weight$/.test(n));
  const expected = [...convs.flatMap((w) => [w, w.replace(/weight$/, "bias")]), "fc.weight", "fc.bias"];
  assert.deepEqual(folded.graph.params.map((p) => p.name), expected);
  assert.ok(folded.graph.nodes.every((n) => n.op !== "batchnorm"));

  const tied = importOnnx(onnxFile("resnet8_opset16.onnx"), "tied.onnx");
  assert.equal(tied.graph.input, "image.nchw:0");
  const c1 = tied.graph.nodes.find((n) => n.name === "layer1.0.conv1");
  const c2 = tied.graph.nodes.find((n) => n.name === "layer1.0.conv2");
  assert.ok(c1?.op === "conv" && c2?.op === "conv");
  assert.equal(c1.weight, c2.weight);
  assert.equal(tied.graph.params.filter((p) => p.name === c1.weight).length, 1);
});

/** The opset-17 fixture rewritten as opset 18 (ReduceMean's axes move to an input). */
function asOpset18(m: OnnxModel): OnnxModel {
  const node = m.nodes.find((n) => n.opType === "ReduceMean")!;
  const axes = node.attributes.find((a) => a.name === "axes")!.ints!;
  node.attributes = node.attributes.filter((a) => a.name !== "axes");
  node.inputs.push("reduce_axes");
  m.initializers.push(int64Tensor("reduce_axes", [axes.length], axes));
  m.opsetImports = [{ domain: "", version: 18 }];
  return m;
}

Deno.test("opset 18 (ReduceMean axes as an input) imports too", async () => {
  const name = "resnet8_opset17.onnx";
  const bytes = encodeOnnxModel(asOpset18(decodeOnnxModel(onnxFile(name), name)));
  const got = await withModel(bytes, "opset18.onnx", (m) => m.forward(batch(seeded, 8)));
  assert.ok(maxAbsDiff(got, f32(onnxFx, name)) <= TOL);
});

Deno.test("initializers also listed as graph inputs (keep_initializers_as_inputs) are not inputs", async () => {
  const name = "resnet8_opset11.onnx";
  const m = decodeOnnxModel(onnxFile(name), name);
  for (const t of m.initializers) m.inputs.push({ name: t.name, elemType: 1, dims: t.dims });
  const got = await withModel(encodeOnnxModel(m), "inputs.onnx", (f) => f.forward(batch(seeded, 8)));
  assert.ok(maxAbsDiff(got, f32(onnxFx, name)) <= TOL);
});

/** Decodes a fixture, lets `edit` break it, and imports it. */
function importEdited(name: string, edit: (m: OnnxModel) => void, label = "edited.onnx") {
  const m = decodeOnnxModel(onnxFile(name), name);
  edit(m);
  return () => importOnnx(encodeOnnxModel(m), label);
}

Deno.test("bad files: one clear line each", () => {
  expectFormatError(
    () => importOnnx(new TextEncoder().encode("this is a CSV file, not a model\n1,2,3\n"), "notes.csv"),
    "notes.csv",
    /not an ONNX model/,
  );
  const bytes = onnxFile("resnet8_opset13.onnx");
  expectFormatError(
    () => importOnnx(bytes.subarray(0, bytes.length >> 1), "half.onnx"),
    "half.onnx",
    /truncated/,
  );

  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      const relu = m.nodes.find((n) => n.opType === "Relu")!;
      relu.opType = "LSTM";
      relu.name = "/rnn/LSTM";
    }, "lstm.onnx"),
    "lstm.onnx",
    /node "\/rnn\/LSTM" \(LSTM\): unsupported operator LSTM; supported: /,
    new RegExp(SUPPORTED_ONNX_OPS.join(", ")),
  );
  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      m.nodes.find((n) => n.opType === "Relu")!.opType = "constructor";
    }, "proto.onnx"),
    "proto.onnx",
    /unsupported operator constructor; supported: /,
  );
  expectFormatError(
    importEdited("resnet20_cifar100_folded.onnx", (m) => {
      m.initializers = m.initializers.filter((t) => t.name !== "fc.weight");
    }, "noweight.onnx"),
    "noweight.onnx",
    /node "\/fc\/Gemm" \(Gemm\): reads "fc\.weight", which is no initializer.*missing initializer/,
  );
  expectFormatError(
    importEdited("resnet20_cifar100_folded.onnx", (m) => {
      m.metadata.push(["num_classes", "10"]);
    }, "meta.onnx"),
    "meta.onnx",
    /the classifier has 100 outputs but metadata num_classes is 10/,
  );
  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      m.inputs[0].dims = ["batch", 3072];
    }, "flat.onnx"),
    "flat.onnx",
    /input "input" has shape \[batch, 3072\]; expected a 4-D NCHW image batch/,
  );
  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      const conv = m.nodes.find((n) => n.opType === "Conv")!;
      conv.attributes.find((a) => a.name === "pads")!.ints = [1, 1, 0, 0];
    }, "pads.onnx"),
    "pads.onnx",
    /Conv\): asymmetric pads \[1,1,0,0\] are not supported/,
  );
  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      const conv = m.nodes.find((n) => n.opType === "Conv")!;
      conv.attributes.find((a) => a.name === "kernel_shape")!.ints = [9, 1];
      conv.attributes.find((a) => a.name === "pads")!.ints = [0, 0, 0, 0];
      m.initializers.find((t) => t.name === conv.inputs[1])!.dims = [16, 3, 9, 1];
    }, "kernel.onnx"),
    "kernel.onnx",
    /non-square kernel 9x1 is not supported/,
  );
  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      m.opsetImports = [{ domain: "", version: 9 }];
    }, "old.onnx"),
    "old.onnx",
    /uses opset 9; supported: 11 to 18/,
  );
  expectFormatError(
    importEdited("resnet8_opset13.onnx", (m) => {
      m.nodes.find((n) => n.opType === "Conv")!.attributes.find((a) => a.name === "group")!.i = 3;
    }, "group.onnx"),
    "group.onnx",
    /grouped convolution \(group=3\) is not supported/,
  );
});

Deno.test("importOnnxModel and importOnnx agree", () => {
  const name = "wrn_16_1_bn.onnx";
  const a = importOnnx(onnxFile(name), name);
  const b = importOnnxModel(decodeOnnxModel(onnxFile(name), name), name);
  assert.deepEqual(a.graph, b.graph);
  assert.deepEqual([...a.weights.keys()], [...b.weights.keys()]);
});
