/**
 * The PyTorch side of unpickling a checkpoint: the few torch functions a `data.pkl` may call
 * (tensor and parameter rebuilders, `torch.Size`, `torch.device`) and the persistent ids that
 * name storages. Nothing is read here: tensors come back as {@link TorchTensorRef}s (storage
 * key, dtype, offset, shape, strides) that `tensor_view.ts` later turns into host tensors.
 *
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * import { torchUnpickleOptions, TorchTensorRef } from "./torch_pickle.ts";
 * // torch.save(torch.zeros(2)) data.pkl, protocol 2
 * const pkl = new Uint8Array([
 *   0x80, 2, 0x63, ...new TextEncoder().encode("torch._utils\n_rebuild_tensor_v2\n"), 0x28,
 *   0x28, 0x58, 7, 0, 0, 0, ...new TextEncoder().encode("storage"),
 *   0x63, ...new TextEncoder().encode("torch\nFloatStorage\n"),
 *   0x58, 1, 0, 0, 0, 0x30, 0x58, 3, 0, 0, 0, ...new TextEncoder().encode("cpu"), 0x4b, 2, 0x74, 0x51,
 *   0x4b, 0, 0x4b, 2, 0x85, 0x4b, 1, 0x85, 0x89, 0x63, ...new TextEncoder().encode("collections\nOrderedDict\n"),
 *   0x29, 0x52, 0x74, 0x52, 0x2e,
 * ]);
 * const t = unpickle(pkl, torchUnpickleOptions()) as TorchTensorRef;
 * console.log(t.storage.key, t.storage.dtype, t.shape); // 0 float32 [ 2 ]
 * ```
 * @module
 */

import { type PyCallable, PyGlobal, shortRepr, type UnpickleOptions } from "./pickle.ts";

/** Most dimensions a tensor may declare (PyTorch itself stops at 64). */
const MAX_DIMS = 64;

/** Element types a torch storage can hold that this reader knows about. */
export type TorchDType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<TorchDType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Legacy typed-storage class names (`torch.FloatStorage`, ...) to dtypes. */
const STORAGE_DTYPES: Readonly<Record<string, TorchDType>> = {
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  // Untyped storages count bytes; a tensor over one names its dtype itself (_rebuild_tensor_v3).
  UntypedStorage: "uint8",
  _UntypedStorage: "uint8",
};

/** `torch.float32`-style dtype globals (the argument of `_rebuild_tensor_v3`). */
const DTYPE_GLOBALS: Readonly<Record<string, TorchDType>> = {
  float32: "float32",
  float: "float32",
  float64: "float64",
  double: "float64",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
};

/** One storage of the archive: `<prefix>/data/<key>`. */
export class TorchStorageRef {
  /**
   * `dtype` is undefined for storage types this reader cannot decode (complex, quantized), named
   * by `typeName`; `numel` counts elements of `dtype` as the pickle says.
   */
  constructor(
    readonly key: string,
    readonly typeName: string,
    readonly dtype: TorchDType | undefined,
    readonly location: string,
    readonly numel: number,
  ) {}
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TorchTensorRef {
  /** Offsets and strides count elements of `dtype`. */
  constructor(
    readonly storage: TorchStorageRef,
    readonly dtype: TorchDType | undefined,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  /** Number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

function intList(x: unknown, what: string): number[] {
  if (Array.isArray(x) && x.length > MAX_DIMS) {
    throw new Error(`tensor ${what} has ${x.length} dimensions (at most ${MAX_DIMS})`);
  }
  if (!Array.isArray(x) || !x.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 0)) {
    throw new Error(`tensor ${what} is not a tuple of non-negative integers`);
  }
  return x as number[];
}

function tensorFrom(storage: unknown, offset: unknown, size: unknown, stride: unknown, dtype?: TorchDType) {
  if (!(storage instanceof TorchStorageRef)) {
    throw new Error("a tensor is rebuilt from something that is not a storage");
  }
  if (typeof offset !== "number" || !Number.isInteger(offset) || offset < 0) {
    throw new Error("a tensor has an invalid storage offset");
  }
  const shape = intList(size, "size");
  const strides = intList(stride, "stride");
  if (shape.length !== strides.length) {
    throw new Error(`a tensor has ${shape.length} dimensions but ${strides.length} strides`);
  }
  return new TorchTensorRef(storage, dtype ?? storage.dtype, offset, [...shape], [...strides]);
}

function torchCallables(): Record<string, PyCallable> {
  const table: Record<string, PyCallable> = {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    "torch._utils._rebuild_tensor_v2": (a) => tensorFrom(a[0], a[1], a[2], a[3]),
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
    "torch._utils._rebuild_tensor_v3": (a) => {
      const g = a[6];
      const dtype = g instanceof PyGlobal && g.module === "torch" ? DTYPE_GLOBALS[g.name] : undefined;
      if (!dtype) {
        throw new Error(`a tensor has an unsupported dtype ${shortRepr(g)}`);
      }
      return tensorFrom(a[0], a[1], a[2], a[3], dtype);
    },
    // (data, requires_grad, backward_hooks[, state]): a Parameter is its data here.
    "torch._utils._rebuild_parameter": (a) => a[0],
    "torch._utils._rebuild_parameter_with_state": (a) => a[0],
    // (func, new_type, args, state): tensor subclasses; rebuild with func if it is allowed.
    "torch._tensor._rebuild_from_type_v2": (a) => {
      const [func, , args] = a;
      if (!(func instanceof PyGlobal)) throw new Error("_rebuild_from_type_v2 without a function");
      const f = table[func.qualifiedName];
      if (!f || func.qualifiedName === "torch._tensor._rebuild_from_type_v2") {
        throw new Error(`the pickle calls ${func.qualifiedName}, which is not allowed`);
      }
      return f(Array.isArray(args) ? args : []);
    },
    "torch.Size": (a) => [...intList(a[0] ?? [], "size")],
    // torch.device("cuda", 0) → "cuda:0", as plain data.
    "torch.device": (a) => {
      const parts = a.filter((x) => x !== null && x !== undefined);
      if (parts.length > 2 || !parts.every((x) => typeof x === "string" || typeof x === "number")) {
        throw new Error(`torch.device called with ${shortRepr(a)}`);
      }
      return parts.join(":");
    },
  };
  return table;
}

/**
 * Unpickle options for a checkpoint's `data.pkl`: torch's rebuilders plus a persistent-id
 * resolver that maps `('storage', torch.FloatStorage, key, location, numel)` to one shared
 * {@link TorchStorageRef} per key.
 *
 * @example
 * ```ts
 * import { torchUnpickleOptions } from "./torch_pickle.ts";
 * const o = torchUnpickleOptions();
 * console.log(Object.keys(o.callables!).includes("torch._utils._rebuild_tensor_v2")); // true
 * ```
 */
export function torchUnpickleOptions(): UnpickleOptions {
  const storages = new Map<string, TorchStorageRef>();
  return {
    callables: torchCallables(),
    persistentLoad: (pid) => {
      if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
        throw new Error(`unknown persistent id ${describe(pid)} (not a torch storage)`);
      }
      const [, type, key, location, numel] = pid;
      if (
        !(type instanceof PyGlobal) || typeof key !== "string" || typeof numel !== "number" ||
        (typeof location !== "string" && location !== null)
      ) {
        throw new Error(`malformed storage reference ${describe(pid)}`);
      }
      const known = storages.get(key);
      if (known) return known;
      const typeName = type.qualifiedName;
      const torchStorage = type.module === "torch" || type.module === "torch.storage";
      const ref = new TorchStorageRef(
        key,
        typeName,
        torchStorage ? STORAGE_DTYPES[type.name] : undefined,
        location ?? "",
        numel,
      );
      storages.set(key, ref);
      return ref;
    },
  };
}

function describe(x: unknown): string {
  return shortRepr(x);
}
