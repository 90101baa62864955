/** The plain-data ONNX layer: lossless decode/encode, every stored tensor encoding, clear errors. */
import assert from "node:assert/strict";
import {
  decodeOnnxModel,
  encodeOnnxModel,
  floatTensor,
  int64Tensor,
  type OnnxModel,
  type OnnxTensor,
} from "../convert/onnx_proto.ts";
import { OnnxFormatError } from "../convert/onnx_errors.ts";
import { onnxProto } from "../lib/deps.ts";
import { Buffer } from "node:buffer";

const fixture = (name: string) => Deno.readFileSync(new URL(`./fixtures/onnx/${name}`, import.meta.url));

function model(initializers: OnnxTensor[]): OnnxModel {
  return {
    irVersion: 8,
    opsetImports: [{ domain: "", version: 13 }],
    producerName: "test",
    producerVersion: "1",
    docString: "",
    graphName: "g",
    metadata: [["k", "v"]],
    inputs: [{ name: "x", elemType: 1, dims: ["batch", 3, null, 4] }],
    outputs: [{ name: "y", elemType: 1, dims: null }],
    initializers,
    nodes: [{ name: "n", opType: "Identity", domain: "", inputs: ["x"], outputs: ["y"], attributes: [] }],
  };
}

Deno.test("a torch export decodes, re-encodes and decodes to the same model", () => {
  for (const name of ["resnet8_opset11.onnx", "resnet20_cifar100_bn.onnx"]) {
    const a = decodeOnnxModel(fixture(name), name);
    const b = decodeOnnxModel(encodeOnnxModel(a), name);
    assert.deepEqual(b, a);
    assert.equal(a.producerName, "pytorch");
    // Node Buffers (node:fs) decode the same: raw tensor bytes must not alias Buffer's shared pool.
    assert.deepEqual(decodeOnnxModel(Buffer.from(encodeOnnxModel(a)), name), a);
    assert.ok(a.nodes.length > 20 && a.initializers.length > 10);
  }
});

Deno.test("tensors: raw and typed-field storage of FLOAT, DOUBLE, INT32, INT64 all decode", () => {
  const t = [
    floatTensor("f", [2], new Float32Array([1.5, -2])),
    int64Tensor("i", [3], [-1, 0, 2 ** 40]),
    { name: "d", dataType: 11, dims: [1], data: new Float64Array([0.25]) },
    { name: "s", dataType: 6, dims: [], data: new Float64Array([-7]) },
  ];
  const back = decodeOnnxModel(encodeOnnxModel(model(t)), "raw.onnx");
  assert.deepEqual(back.initializers, t);
  assert.deepEqual(back.inputs[0].dims, ["batch", 3, null, 4]);
  assert.equal(back.outputs[0].dims, null);
  // Older exporters use the typed repeated fields instead of raw_data.
  const typed = onnxProto.ModelProto.encode({
    irVersion: 6,
    graph: {
      node: [{ opType: "Identity", input: ["x"], output: ["y"] }],
      initializer: [
        { name: "f", dataType: 1, dims: [2], floatData: [3, 4] },
        { name: "i", dataType: 7, dims: [2], int64Data: [5, -6] },
      ],
    },
  }).finish();
  const m = decodeOnnxModel(typed, "typed.onnx");
  assert.deepEqual(m.initializers[0].data, new Float32Array([3, 4]));
  assert.deepEqual(m.initializers[1].data, new Float64Array([5, -6]));
});

Deno.test("unreadable tensors and files: one line naming the file", () => {
  const check = (bytes: Uint8Array, re: RegExp) =>
    assert.throws(() => decodeOnnxModel(bytes, "f.onnx"), (e: unknown) => {
      assert.ok(e instanceof OnnxFormatError);
      assert.match(e.message, /^f\.onnx: /);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  const graph = (initializer: unknown[]) =>
    onnxProto.ModelProto.encode(
      {
        irVersion: 8,
        graph: { node: [{ opType: "Identity", input: ["x"], output: ["y"] }], initializer },
      } as Parameters<typeof onnxProto.ModelProto.encode>[0],
    ).finish();
  check(
    graph([{ name: "h", dataType: 10, dims: [1], rawData: new Uint8Array(2) }]),
    /tensor "h" has element type FLOAT16/,
  );
  check(
    graph([{ name: "e", dataType: 1, dims: [1], dataLocation: 1 }]),
    /tensor "e" keeps its data in an external file/,
  );
  check(
    graph([{ name: "w", dataType: 1, dims: [3], rawData: new Uint8Array(8) }]),
    /tensor "w" holds 2 values but its shape \[3\] needs 3/,
  );
  check(new Uint8Array(0), /not an ONNX model: no IR version or no graph nodes/);
  check(new TextEncoder().encode("PK\u0003\u0004 a zip file"), /not an ONNX model/);
  const full = fixture("resnet8_opset13.onnx");
  check(full.subarray(0, full.length - 1000), /truncated/);
});
