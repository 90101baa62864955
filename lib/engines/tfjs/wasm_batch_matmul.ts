/**
 * `BatchMatMul` for the wasm backend on XNNPACK's GEMM: a product `A[M, K] B[K, N]` is a 1x1
 * convolution of M "pixels" with K channels by a `[1, 1, K, N]` filter. When B is shared by all
 * batches, the batches of A stack into one tall convolution; when A is shared, the transposed
 * product `B^T A^T` stacks the batches of B the same way; otherwise each output batch is its own
 * convolution. Transposed operands are materialised with the Transpose kernel first.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * const tf = await initTfjs("wasm"); // registers the kernel
 * const c = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]]));
 * console.log(Array.from(c.dataSync())); // [17, 39]
 * ```
 * @module
 */

import type { Tf, TfjsWasmBackend, TfKernelConfig, TfTensorInfo } from "../../deps.ts";
import { WasmOps } from "./wasm_ops.ts";

/** Attributes tfjs passes to `BatchMatMul`. */
interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** NumPy broadcast of two batch shapes; throws on a mismatch. */
function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1, db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`BatchMatMul: batch dimensions [${a}] and [${b}] do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Flat index into a (broadcast) operand's batch for flat output batch `o`. */
function operandBatch(o: number, outDims: readonly number[], dims: readonly number[]): number {
  let idx = 0, stride = 1;
  for (let i = outDims.length - 1, j = dims.length - 1; i >= 0; i--, j--) {
    const coord = o % outDims[i];
    o = Math.floor(o / outDims[i]);
    if (j >= 0) {
      if (dims[j] !== 1) idx += coord * stride;
      stride *= dims[j];
    }
  }
  return idx;
}

/** `[batch, rows, cols]` view of `x`, transposed to `[batch, cols, rows]` when asked. */
function asRows(ops: WasmOps, x: TfTensorInfo, batch: number, transposed: boolean): TfTensorInfo {
  const r = x.shape.length;
  const [p, q] = [x.shape[r - 2], x.shape[r - 1]];
  const view = ops.reshape(x, [batch, p, q]);
  if (!transposed) return view;
  const t = ops.transpose(view, [0, 2, 1]);
  ops.dispose(view);
  return t;
}

/** One GEMM `[m, k] x [k, n]` as a 1x1 XNNPACK convolution. */
function gemm(ops: WasmOps, a: TfTensorInfo, b: TfTensorInfo, m: number, k: number, n: number): TfTensorInfo {
  const x = ops.reshape(a, [1, 1, m, k]);
  const f = ops.reshape(b, [1, 1, k, n]);
  const y = ops.conv2d(x, f, { strides: [1, 1], dilations: [1, 1], pads: [[0, 0], [0, 0]] });
  ops.dispose(x, f);
  return y;
}

/**
 * `a @ b` over broadcast batch dimensions, with optional transposes of the last two axes.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { batchMatMul } from "./wasm_batch_matmul.ts";
 * import { WasmOps } from "./wasm_ops.ts";
 * import type { TfjsWasmBackend } from "../../deps.ts";
 * const tf = await initTfjs("wasm");
 * const ops = new WasmOps(tf, tf.backend() as unknown as TfjsWasmBackend);
 * const a = ops.output([2, 1]), b = ops.output([2, 1]);
 * ops.f32(a).set([1, 2]); ops.f32(b).set([3, 4]);
 * const c = batchMatMul(ops, a, b, { transposeA: true, transposeB: false });
 * console.log(c.shape, Array.from(ops.f32(c))); // [1, 1] [11]
 * ops.dispose(a, b, c);
 * ```
 */
export function batchMatMul(
  ops: WasmOps,
  a: TfTensorInfo,
  b: TfTensorInfo,
  attrs: MatMulAttrs,
): TfTensorInfo {
  const { transposeA, transposeB } = attrs;
  if (a.dtype !== "float32" || b.dtype !== "float32") {
    throw new Error(`wasm BatchMatMul needs float32 tensors, got ${a.dtype} and ${b.dtype}`);
  }
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) {
    throw new Error(`BatchMatMul needs rank >= 2 operands, got [${a.shape}] and [${b.shape}]`);
  }
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const ka = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (ka !== kb) {
    throw new Error(
      `BatchMatMul: inner dimensions ${ka} and ${kb} of [${a.shape}] and [${b.shape}] differ ` +
        `(transposeA=${transposeA}, transposeB=${transposeB})`,
    );
  }
  const k = ka;
  const dimsA = a.shape.slice(0, -2), dimsB = b.shape.slice(0, -2);
  const outDims = broadcastShapes(dimsA, dimsB);
  const batchA = numel(dimsA), batchB = numel(dimsB), batch = numel(outDims);
  const outShape = [...outDims, m, n];
  if (batch === 0 || m === 0 || n === 0) return ops.output(outShape);
  if (k === 0) {
    const z = ops.output(outShape);
    ops.f32(z).fill(0);
    return z;
  }

  if (batchB === 1) {
    // B shared: all batches of A form one tall GEMM.
    const a3 = asRows(ops, a, batchA, transposeA); // [batchA, m, k]
    const bk = asRows(ops, b, 1, transposeB); // [1, k, n]
    const y = gemm(ops, a3, bk, batchA * m, k, n);
    ops.dispose(a3, bk);
    return finish(ops, y, outShape);
  }
  if (batchA === 1) {
    // A shared: C^T = B^T A^T, all batches of B^T form one tall GEMM, then transpose back.
    const bt = asRows(ops, b, batchB, !transposeB); // [batchB, n, k]
    const at = asRows(ops, a, 1, !transposeA); // [1, k, m]
    const yt = gemm(ops, bt, at, batchB * n, k, m);
    ops.dispose(bt, at);
    const y3 = ops.reshape(yt, [batchB, n, m]);
    ops.dispose(yt);
    const y = ops.transpose(y3, [0, 2, 1]);
    ops.dispose(y3);
    return finish(ops, y, outShape);
  }
  const a3 = asRows(ops, a, batchA, transposeA); // [batchA, m, k]
  const b3 = asRows(ops, b, batchB, transposeB); // [batchB, k, n]
  const parts: TfTensorInfo[] = [];
  for (let o = 0; o < batch; o++) {
    const ia = operandBatch(o, outDims, dimsA), ib = operandBatch(o, outDims, dimsB);
    const ai = ops.slice(a3, [ia, 0, 0], [1, m, k]);
    const bi = ops.slice(b3, [ib, 0, 0], [1, k, n]);
    const yi = gemm(ops, ai, bi, m, k, n); // [1, 1, m, n]
    parts.push(ops.reshape(yi, [1, m, n]));
    ops.dispose(ai, bi, yi);
  }
  ops.dispose(a3, b3);
  const y = ops.concat(parts, 0);
  ops.dispose(...parts);
  return finish(ops, y, outShape);
}

function finish(ops: WasmOps, y: TfTensorInfo, outShape: number[]): TfTensorInfo {
  const out = ops.reshape(y, outShape);
  ops.dispose(y);
  return out;
}

/**
 * The kernel registration record.
 *
 * @example
 * ```ts
 * import { initTfjs } from "./backend.ts";
 * import { batchMatMulConfig } from "./wasm_batch_matmul.ts";
 * const tf = await initTfjs("cpu");
 * console.log(batchMatMulConfig(tf).kernelName); // BatchMatMul
 * ```
 */
export function batchMatMulConfig(tf: Tf): TfKernelConfig {
  return {
    kernelName: "BatchMatMul",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const ops = new WasmOps(tf, backend as unknown as TfjsWasmBackend);
      return batchMatMul(ops, inputs.a!, inputs.b!, attrs as unknown as MatMulAttrs);
    },
  };
}
