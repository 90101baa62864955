import assert from "node:assert/strict";
import { tensorValues, toHostTensor } from "../convert/tensor_view.ts";
import { type TorchDType, TorchStorageRef, TorchTensorRef } from "../convert/torch_pickle.ts";

const storage = (dtype: TorchDType | undefined, numel: number, typeName = "torch.X") =>
  new TorchStorageRef("0", typeName, dtype, "cpu", numel);

Deno.test("tensor view: float16 and bfloat16 bit patterns, including subnormals and infinities", () => {
  const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00, 0xfc00, 0x3555]).buffer);
  const t = toHostTensor(new TorchTensorRef(storage("float16", 6), "float16", 0, [6], [1]), half);
  assert.deepEqual([...t.data], [1, -2, 2 ** -24, Infinity, -Infinity, Math.fround(0.333251953125)]);
  const bf = new Uint8Array(new Uint16Array([0x3f80, 0xc040, 0x7f80, 0x3eaa]).buffer);
  const b = toHostTensor(new TorchTensorRef(storage("bfloat16", 4), "bfloat16", 0, [2, 2], [2, 1]), bf);
  assert.deepEqual([...b.data], [1, -3, Infinity, 0.33203125]);
  assert.equal(b.dtype, "float32");
});

Deno.test("tensor view: big-endian storages (byteorder 'big') read the same values", () => {
  const be = new Uint8Array(8);
  const v = new DataView(be.buffer);
  v.setFloat32(0, 1.25, false);
  v.setFloat32(4, -7.5, false);
  const t = toHostTensor(new TorchTensorRef(storage("float32", 2), "float32", 0, [2], [1]), be, true);
  assert.deepEqual([...t.data], [1.25, -7.5]);
});

Deno.test("tensor view: a stride-0 broadcast and an offset view", () => {
  const bytes = new Uint8Array(new Float32Array([9, 1, 2, 3]).buffer);
  const t = toHostTensor(new TorchTensorRef(storage("float32", 4), "float32", 1, [2, 3], [0, 1]), bytes);
  assert.deepEqual([...t.data], [1, 2, 3, 1, 2, 3]);
  assert.deepEqual(t.shape, [2, 3]);
});

Deno.test("tensor view: integer tensors convert for summaries, are refused as HostTensors", () => {
  const bytes = new Uint8Array(new Int32Array([-4, 5]).buffer);
  const ref = new TorchTensorRef(storage("int32", 2), "int32", 0, [2], [1]);
  assert.deepEqual([...tensorValues(ref, bytes)], [-4, 5]);
  assert.throws(
    () => toHostTensor(ref, bytes),
    /has dtype int32; only floating-point and int64 tensors can be loaded/,
  );
  const unknown = new TorchTensorRef(storage(undefined, 2, "torch.ComplexFloatStorage"), undefined, 0, [1], [
    1,
  ]);
  assert.throws(
    () => toHostTensor(unknown, bytes),
    /storage type torch\.ComplexFloatStorage, which cannot be loaded/,
  );
});

Deno.test("tensor view: reading past the storage is refused, empty tensors are fine", () => {
  const bytes = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
  assert.throws(
    () => toHostTensor(new TorchTensorRef(storage("float32", 3), "float32", 0, [2, 2], [2, 1]), bytes),
    /reads element 3 of storage 0, which holds 3 float32 elements/,
  );
  const huge = new TorchTensorRef(storage("float32", 3), "float32", 0, [2 ** 16, 2 ** 16], [0, 0]);
  assert.throws(() => toHostTensor(huge, bytes), /has 4294967296 elements, more than 1073741824 are refused/);
  const empty = toHostTensor(new TorchTensorRef(storage("float32", 0), "float32", 0, [0, 3], [3, 1]), bytes);
  assert.equal(empty.data.length, 0);
});
