import assert from "node:assert/strict";
import { unpickle } from "../convert/pickle.ts";
import { TorchTensorRef, torchUnpickleOptions } from "../convert/torch_pickle.ts";

// Tiny pickle assembler for the rebuild paths newer torch versions write (torch 1.13 here
// writes only _rebuild_tensor_v2 / _rebuild_parameter, which the .pth fixtures cover).
const enc = new TextEncoder();
const op = (...parts: (number | string | Uint8Array)[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") out.push(...enc.encode(p));
    else out.push(...p);
  }
  return new Uint8Array(out);
};
const glob = (module: string, name: string) => op("c", module, "\n", name, "\n");
const str = (s: string) => op("X", s.length, 0, 0, 0, s);
const int = (n: number) => op("K", n);
const storage = (type: string, key: string, numel: number) =>
  op("(", str("storage"), glob("torch", type), str(key), str("cpu"), int(numel), "t", "Q");
const v2Args = (key: string) =>
  op("(", storage("FloatStorage", key, 2), int(0), int(2), 0x85, int(1), 0x85, 0x89, "}", "t");
const pickle = (...body: Uint8Array[]) => op(0x80, 2, ...body, ".");
const load = (bytes: Uint8Array) => unpickle(bytes, torchUnpickleOptions());

Deno.test("torch pickle: _rebuild_tensor_v3 over an untyped storage takes the dtype argument", () => {
  const t = load(pickle(
    glob("torch._utils", "_rebuild_tensor_v3"),
    op("(", storage("UntypedStorage", "0", 8), int(0), int(2), 0x85, int(1), 0x85, 0x89, "}"),
    glob("torch", "float32"),
    op("t", "R"),
  ));
  assert.ok(t instanceof TorchTensorRef);
  assert.equal(t.dtype, "float32");
  assert.equal(t.storage.dtype, "uint8");
  assert.equal(t.storage.numel, 8);
});

Deno.test("torch pickle: parameters with state and tensor subclasses rebuild through allowed functions", () => {
  const withState = load(pickle(
    glob("torch._utils", "_rebuild_parameter_with_state"),
    op("(", glob("torch._utils", "_rebuild_tensor_v2"), v2Args("0"), "R", 0x88, "}", "}", "t", "R"),
  ));
  assert.ok(withState instanceof TorchTensorRef);
  const subclass = load(pickle(
    glob("torch._tensor", "_rebuild_from_type_v2"),
    op(
      "(",
      glob("torch._utils", "_rebuild_tensor_v2"),
      glob("torch.nn.parameter", "Parameter"),
      v2Args("1"),
      "}",
      "t",
      "R",
    ),
  ));
  assert.ok(subclass instanceof TorchTensorRef);
  assert.deepEqual(subclass.shape, [2]);
  assert.throws(
    () =>
      load(pickle(
        glob("torch._tensor", "_rebuild_from_type_v2"),
        op("(", glob("posix", "system"), glob("torch", "Tensor"), "(", str("ls"), "t", "}", "t", "R"),
      )),
    /calls posix\.system, which is not allowed/,
  );
});

Deno.test("torch pickle: one storage object per key, so views share it", () => {
  const pair = load(pickle(
    op("(", glob("torch._utils", "_rebuild_tensor_v2"), v2Args("7"), "R"),
    op(glob("torch._utils", "_rebuild_tensor_v2"), v2Args("7"), "R", "l"),
  )) as TorchTensorRef[];
  assert.equal(pair[0].storage, pair[1].storage);
});

Deno.test("torch pickle: torch.Size and torch.device are plain data", () => {
  assert.deepEqual(load(pickle(glob("torch", "Size"), op("(", int(3), int(4), "t", 0x85, "R"))), [3, 4]);
  assert.equal(load(pickle(glob("torch", "device"), str("cuda"), int(1), op(0x86, "R"))), "cuda:1");
});

Deno.test("torch pickle: malformed persistent ids and unknown dtypes are named", () => {
  assert.throws(() => load(pickle(op("(", str("module"), "t", "Q"))), /unknown persistent id \["module"\]/);
  assert.throws(
    () =>
      load(pickle(
        glob("torch._utils", "_rebuild_tensor_v3"),
        op("(", storage("UntypedStorage", "0", 8), int(0), int(2), 0x85, int(1), 0x85, 0x89, "}"),
        glob("torch", "complex64"),
        op("t", "R"),
      )),
    /unsupported dtype torch\.complex64/,
  );
  assert.throws(
    () =>
      load(
        pickle(
          glob("torch._utils", "_rebuild_tensor_v2"),
          op("(", int(0), int(0), "(t(t", 0x89, "}", "t", "R"),
        ),
      ),
    /rebuilt from something that is not a storage/,
  );
});
