import assert from "node:assert/strict";
import { decodeSafetensors, encodeSafetensors } from "../lib/safetensors.ts";
import type { StateDict } from "../lib/tensor.ts";

Deno.test("safetensors round-trips float32 and int64 tensors with metadata, 8-byte aligned", () => {
  const sd: StateDict = new Map([
    ["a.weight", { dtype: "float32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) }],
    ["a.num_batches_tracked", { dtype: "int64", shape: [], data: new Float64Array([12345]) }],
  ]);
  const bytes = encodeSafetensors(sd, { hello: "world" });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0);
  const back = decodeSafetensors(bytes, "x");
  assert.deepEqual([...back.tensors.keys()], ["a.weight", "a.num_batches_tracked"]);
  assert.deepEqual(back.tensors.get("a.weight"), sd.get("a.weight"));
  assert.deepEqual(back.tensors.get("a.num_batches_tracked"), sd.get("a.num_batches_tracked"));
  assert.equal(back.metadata.hello, "world");
});

Deno.test("corrupt or truncated safetensors give one clear error naming the file", () => {
  const sd: StateDict = new Map([["w", { dtype: "float32", shape: [4], data: new Float32Array(4) }]]);
  const bytes = encodeSafetensors(sd);
  assert.throws(
    () => decodeSafetensors(bytes.subarray(0, bytes.length - 4), "ck.safetensors"),
    /^Error: ck.safetensors: tensor w: data range/,
  );
  assert.throws(
    () => decodeSafetensors(new Uint8Array(2), "ck.safetensors"),
    /ck.safetensors: not a safetensors file/,
  );
  const bad = bytes.slice();
  bad[9] = 0x7b; // break the JSON
  bad[10] = 0x7b;
  assert.throws(() => decodeSafetensors(bad, "ck.safetensors"), /ck.safetensors: corrupt header/);
});
