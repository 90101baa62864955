/** The package's ONNX metadata keys: written in a fixed order, parsed back, malformed values rejected. */
import assert from "node:assert/strict";
import {
  metadataEntries,
  type ModelMetadata,
  PACKAGE_NAME,
  parseModelMetadata,
} from "../convert/onnx_metadata.ts";
import { OnnxFormatError } from "../convert/onnx_errors.ts";

Deno.test("entries round-trip through parsing, in a fixed key order", () => {
  const m: ModelMetadata = {
    arch: "wrn_16_2",
    numClasses: 2,
    inChannels: 1,
    dataset: "fashion",
    mean: [0.28],
    std: [0.35],
    classNames: ["t-shirt", 'trouser "wide"'],
    batchNorm: "kept",
    package: PACKAGE_NAME,
    packageVersion: "9.9.9",
  };
  const entries = metadataEntries(m);
  assert.deepEqual(entries.map(([k]) => k), [
    "arch",
    "num_classes",
    "in_channels",
    "dataset",
    "mean",
    "std",
    "class_names",
    "batchnorm",
    "package",
    "package_version",
  ]);
  assert.deepEqual(parseModelMetadata(Object.fromEntries(entries), "m.onnx"), m);
  assert.deepEqual(metadataEntries({ arch: "resnet8" }), [["arch", "resnet8"]]);
  assert.deepEqual(parseModelMetadata({ producer_note: "other tools' keys are ignored" }, "m.onnx"), {});
});

Deno.test("malformed values name the file and the key", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ num_classes: "-3" }, /^x\.onnx: metadata num_classes is "-3", not a positive integer$/],
    [{ in_channels: "3.5" }, /metadata in_channels is "3\.5"/],
    [{ mean: "[0.5, oops]" }, /^x\.onnx: metadata mean is not a JSON array of numbers$/],
    [{ std: "{}" }, /metadata std is not a JSON array of numbers/],
    [{ class_names: "[1, 2]" }, /metadata class_names is not a JSON array of strings/],
    [{ batchnorm: "fused" }, /metadata batchnorm is "fused", not "folded" or "kept"/],
  ];
  for (const [record, re] of cases) {
    assert.throws(() => parseModelMetadata(record, "x.onnx"), (e: unknown) => {
      assert.ok(e instanceof OnnxFormatError);
      assert.match(e.message, re);
      return true;
    });
  }
});
