/**
 * The in-memory ONNX writer: protobuf wire encoding, and models onnxruntime loads and runs with
 * the attribute kinds the compilers use (ints, int lists, floats, strings, other domains).
 */
import assert from "node:assert/strict";
import { floatAttr, OnnxBuilder } from "../lib/onnx/builder.ts";
import { ProtoWriter } from "../lib/onnx/protobuf.ts";
import { createSession, runSession } from "../lib/engines/onnxruntime/session.ts";

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
