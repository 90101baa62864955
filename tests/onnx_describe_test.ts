/** The one-screen summary of an ONNX file for `deno task convert`. */
import assert from "node:assert/strict";
import { describeOnnx, formatOnnxDescription } from "../convert/onnx_describe.ts";
import { decodeOnnxModel, encodeOnnxModel } from "../convert/onnx_proto.ts";
import { exportOnnx } from "../convert/onnx_export.ts";
import { buildModel } from "../lib/models/zoo.ts";
import { initStateDict } from "../lib/models/init.ts";
import { countParameters } from "../lib/graph.ts";

const fixture = (name: string) => Deno.readFileSync(new URL(`./fixtures/onnx/${name}`, import.meta.url));

Deno.test("a torch export: producer, opset, operator histogram, parameter count", () => {
  const d = describeOnnx(fixture("resnet8_opset11.onnx"), "r8.onnx");
  assert.equal(d.producer, "pytorch 1.13.0");
  assert.equal(d.opset, 11);
  assert.deepEqual(Object.entries(d.operators).slice(0, 4), [["Conv", 9], ["Relu", 7], ["Add", 3], [
    "Constant",
    3,
  ]]);
  assert.equal(d.importable, true);
  assert.equal(d.arch, "onnx");
  assert.equal(d.numClasses, 10);
  // Folded BatchNorm: every stored value is a trainable parameter.
  // Each convolution feeds a BatchNorm of its width: folding trades 2C affine values for C biases.
  const zoo = buildModel("resnet8", { numClasses: 10 });
  const bnAffine = zoo.nodes.filter((n) => n.op === "batchnorm").length;
  const convBias = zoo.nodes.flatMap((
    n,
  ) => (n.op === "conv" ? [zoo.params.find((p) => p.name === n.weight)!.shape[0]] : []))
    .reduce((a, b) => a + b, 0);
  assert.equal(bnAffine, 9);
  assert.equal(d.parameters, countParameters(zoo) - 2 * convBias + convBias);
  assert.equal(d.parameters, 77_706);
  assert.equal(d.storedValues, d.parameters);
  assert.deepEqual(d.inputs, [{ name: "input", elemType: 1, dims: ["batch", 3, 32, 32] }]);
  const text = formatOnnxDescription(d);
  assert.match(text, /^r8\.onnx: onnx, 10 classes, 77,706 parameters\n/);
  assert.match(text, /producer pytorch 1\.13\.0, opset 11/);
  assert.match(text, /operators Conv 9, Relu 7, Add 3, Constant 3/);
});

Deno.test("our export: the architecture comes from the metadata", () => {
  const g = buildModel("wrn_16_1", { numClasses: 4 });
  const d = describeOnnx(
    exportOnnx(g, initStateDict(g, 0), { dataset: "toy", foldBatchNorm: false }),
    "w.onnx",
  );
  assert.equal(d.arch, "wrn_16_1");
  assert.equal(d.parameters, countParameters(g));
  assert.equal(d.metadata.dataset, "toy");
  assert.match(formatOnnxDescription(d), /metadata arch=wrn_16_1, num_classes=4, in_channels=3, dataset=toy/);
});

Deno.test("a file the importer rejects is still described, with the reason", () => {
  const m = decodeOnnxModel(fixture("resnet8_opset13.onnx"), "x");
  m.nodes.find((n) => n.opType === "Relu")!.opType = "LSTM";
  const d = describeOnnx(encodeOnnxModel(m), "lstm.onnx");
  assert.equal(d.importable, false);
  assert.equal(d.operators.LSTM, 1);
  assert.match(d.problem!, /unsupported operator LSTM/);
  assert.match(formatOnnxDescription(d), /^lstm\.onnx: not importable: node .* unsupported operator LSTM/);
});
