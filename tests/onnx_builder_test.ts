/**
 * The package's one ONNX writer (lib/onnx/messages.ts on lib/onnx/protobuf.ts): protobuf wire
 * encoding, models onnxruntime loads and runs with the attribute kinds the compilers use (ints,
 * int lists, floats, strings, other domains), and the exporter's encoding byte-identical to
 * onnx-proto's protobufjs encoder for every field kind.
 */
import assert from "node:assert/strict";
import { floatAttr, OnnxBuilder } from "../lib/onnx/builder.ts";
import { ProtoWriter } from "../lib/onnx/protobuf.ts";
import { createSession, runSession } from "../lib/engines/onnxruntime/session.ts";
import { onnxProto } from "../lib/deps.ts";
import {
  ATTR,
  decodeOnnxModel,
  encodeOnnxModel,
  floatTensor,
  int64Tensor,
  ONNX_DTYPE,
  type OnnxModel,
  type OnnxTensor,
} from "../convert/onnx_proto.ts";

Deno.test("protobuf varints: multi-byte, 64-bit negatives, packed lists", () => {
  assert.deepEqual([...new ProtoWriter().varint(1, 300).finish()], [8, 0xac, 0x02]);
  // int64 -1 is ten bytes of two's complement.
  assert.deepEqual([...new ProtoWriter().varint(2, -1).finish()], [16, ...Array(9).fill(0xff), 0x01]);
  assert.deepEqual([...new ProtoWriter().packedVarints(8, [1, 128]).finish()], [66, 3, 1, 0x80, 0x01]);
  assert.deepEqual([...new ProtoWriter().float(2, 1).finish()], [21, 0, 0, 0x80, 0x3f]);
  assert.throws(() => new ProtoWriter().varint(1, 0.5), /safe integer/);
});

Deno.test("built models run in onnxruntime: conv attributes, float attributes, negative slice steps", async () => {
  const b = new OnnxBuilder("t");
  const x = b.input("x", "float32", [1, 1, 3, 3]);
  // 3x3 all-ones kernel, padding 1: each output is the sum of its neighbourhood.
  const conv = b.op("Conv", [x, b.constant(new Float32Array(9).fill(1), [1, 1, 3, 3])], {
    kernel_shape: [3, 3],
    pads: [1, 1, 1, 1],
  });
  b.output(conv, "sums");
  b.output(b.op("LeakyRelu", [b.op("Neg", [x])], { alpha: floatAttr(0.5) }), "leaky");
  // Reverse the last axis with a negative step.
  const rev = b.op("Slice", [x, b.int64s([-1]), b.int64s([-4]), b.int64s([3]), b.int64s([-1])]);
  b.output(rev, "reversed");
  const s = await createSession(b.toModel(), 1);
  const out = await runSession(s, {
    x: { data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), dims: [1, 1, 3, 3] },
  });
  assert.deepEqual([...out.sums], [12, 21, 16, 27, 45, 33, 24, 39, 28]);
  assert.deepEqual([...out.leaky].slice(0, 2), [-0.5, -1]);
  assert.deepEqual([...out.reversed], [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  await s.release();
});

Deno.test("builder refuses reused names and malformed initializers", () => {
  const b = new OnnxBuilder("t");
  b.input("x", "float32", [1]);
  assert.throws(() => b.input("x", "float32", [1]), /used twice/);
  assert.throws(() => b.initializer("w", new Float32Array(3), [2, 2]), /3 values for dims \[2,2\]/);
  assert.throws(() => b.op("Foo", ["x"], { bad: 0.5 }) && b.toModel(), /not an int/);
  // Equal scalars and int lists are shared, not duplicated.
  assert.equal(b.scalar(2), b.scalar(2));
  assert.equal(b.int64s([1, 2]), b.int64s([1, 2]));
});

Deno.test("one ONNX writer: encodeOnnxModel writes what onnx-proto's protobuf encoder writes, byte for byte", () => {
  const model: OnnxModel = {
    irVersion: 8,
    opsetImports: [{ domain: "", version: 17 }, { domain: "com.microsoft.nchwc", version: 1 }],
    producerName: "writer-test",
    producerVersion: "",
    docString: "every field kind",
    graphName: "g",
    metadata: [["k", "v"], ["empty", ""]],
    inputs: [{ name: "x", elemType: 1, dims: ["batch", 3, null, 32] }, {
      name: "r",
      elemType: 7,
      dims: null,
    }],
    outputs: [{ name: "y", elemType: 1, dims: [] }],
    initializers: [
      floatTensor("w", [2, 2], new Float32Array([1, -2.5, 3e-8, 4])),
      int64Tensor("axes", [3], [-1, 0, 2 ** 40]),
      floatTensor("scalar", [], new Float32Array([7])),
    ],
    nodes: [
      {
        name: "n0",
        opType: "Custom",
        domain: "",
        inputs: ["x", "", "w"],
        outputs: ["y", "aux"],
        attributes: [
          { name: "f", type: ATTR.FLOAT, f: 0 },
          { name: "i", type: ATTR.INT, i: -3 },
          { name: "s", type: ATTR.STRING, s: "relu ü" },
          { name: "t", type: ATTR.TENSOR, t: int64Tensor("t", [1], [5]) },
          { name: "fs", type: ATTR.FLOATS, floats: [0.5, -1] },
          { name: "is", type: ATTR.INTS, ints: [1, -1, 300] },
          { name: "ss", type: ATTR.STRINGS, strings: ["a", ""] },
        ],
      },
      {
        name: "",
        opType: "Identity",
        domain: "com.microsoft.nchwc",
        inputs: ["y"],
        outputs: ["z"],
        attributes: [],
      },
    ],
  };
  const ours = encodeOnnxModel(model);
  // The same model through onnx-proto (protobufjs), the encoder this package used before.
  const tensor = (t: OnnxTensor) => ({
    name: t.name,
    dataType: t.dataType,
    dims: t.dims,
    rawData: new Uint8Array(
      (t.dataType === ONNX_DTYPE.INT64
        ? BigInt64Array.from(t.data, (v) => BigInt(v))
        : Float32Array.from(t.data))
        .buffer,
    ),
  });
  const valueInfo = (v: OnnxModel["inputs"][number]) => ({
    name: v.name,
    type: {
      tensorType: {
        elemType: v.elemType,
        shape: v.dims === null ? undefined : {
          dim: v.dims.map((d) =>
            typeof d === "number" ? { dimValue: d } : typeof d === "string" ? { dimParam: d } : {}
          ),
        },
      },
    },
  });
  const text = new TextEncoder();
  const theirs = onnxProto.ModelProto.encode({
    irVersion: model.irVersion,
    opsetImport: model.opsetImports,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    docString: model.docString,
    metadataProps: model.metadata.map(([key, value]) => ({ key, value })),
    graph: {
      name: model.graphName,
      node: model.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        domain: n.domain,
        input: n.inputs,
        output: n.outputs,
        attribute: n.attributes.map((a) => ({
          ...a,
          s: a.s === undefined ? undefined : text.encode(a.s),
          t: a.t === undefined ? undefined : tensor(a.t),
          strings: a.strings?.map((s) => text.encode(s)),
        })),
      })),
      initializer: model.initializers.map(tensor),
      input: model.inputs.map(valueInfo),
      output: model.outputs.map(valueInfo),
    },
  }).finish();
  assert.deepEqual(ours, new Uint8Array(theirs));
  const back = decodeOnnxModel(ours, "writer.onnx");
  assert.deepEqual(back.nodes[0].attributes.map((a) => a.name), ["f", "i", "s", "t", "fs", "is", "ss"]);
  assert.deepEqual(Array.from(back.initializers[1].data), [-1, 0, 2 ** 40]);
});
